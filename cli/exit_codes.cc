#include "cli/exit_codes.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace wb::cli {

int ExitCodeFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return kExitUsage;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    default:
      return kExitFailed;
  }
}

int ExitCodeFor(grpc::StatusCode code) {
  return ExitCodeFor(static_cast<absl::StatusCode>(static_cast<int>(code)));
}

absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view address) {
  if (status.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(static_cast<int>(status.error_code()));
  const std::string& msg = status.error_message();
  switch (code) {
    case absl::StatusCode::kUnavailable:
      return absl::Status(code,
                          absl::StrCat("control plane at ", address, " is unavailable: ", msg));
    case absl::StatusCode::kDeadlineExceeded:
      return absl::Status(
          code, absl::StrCat("control plane at ", address, " did not answer in time: ", msg));
    case absl::StatusCode::kUnauthenticated:
      return absl::Status(
          code, absl::StrCat("control plane at ", address, " did not authenticate us: ", msg));
    case absl::StatusCode::kPermissionDenied:
      return absl::Status(code,
                          absl::StrCat("control plane at ", address, " denied the request: ", msg));
    default:
      return absl::Status(code, msg);
  }
}

}  // namespace wb::cli
