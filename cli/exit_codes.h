// wbctl's exit codes and how errors map onto them (documented in
// docs/wbctl.md). Pure functions, thread-safe.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace wb::cli {

enum ExitCode : int {
  kExitOk = 0,
  // The operation failed: e.g. `--wait` ended in FAILED/EXPIRED/CANCELED,
  // or the server reported an error that is not one of the classes below.
  kExitFailed = 1,
  // Usage error or invalid input, including the server's INVALID_ARGUMENT.
  kExitUsage = 2,
  // Could not reach or authenticate to the control plane (UNAVAILABLE,
  // UNAUTHENTICATED, PERMISSION_DENIED, DEADLINE_EXCEEDED).
  kExitUnreachable = 3,
  // The named object does not exist (NOT_FOUND).
  kExitNotFound = 4,
};

// The exit code for a status code (absl and gRPC codes share numbering).
int ExitCodeFor(absl::StatusCode code);
int ExitCodeFor(grpc::StatusCode code);

// A gRPC status as an absl::Status with the same code and message. For the
// connectivity classes the message gains context naming `address`, e.g.
// "control plane at 127.0.0.1:7443 is unavailable: ...".
absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view address);

}  // namespace wb::cli
