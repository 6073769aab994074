// The "posix_account" connector type: local accounts changed with the
// system's own tools (connectors/posix_account, docs/connectors/
// posix_account.md).
#include "absl/strings/str_cat.h"
#include "common/actions/actions.h"
#include "common/actions/spec.h"

namespace wb::actions {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

bool IsNoLoginShell(absl::string_view shell) {
  return shell == "/usr/sbin/nologin" || shell == "/sbin/nologin" || shell == "/bin/false" ||
         shell == "/usr/bin/false";
}

absl::Status ValidatePosixAccount(absl::string_view operation,
                                  const writeback::v1::ActionParams& params, const std::string& f) {
  const auto& p = params.posix_account();
  if (operation == "set_shell") {
    if (!p.shell().empty() && !IsNoLoginShell(p.shell())) {
      return Invalid(f + "shell",
                     "must be one of /usr/sbin/nologin, /sbin/nologin, /bin/false, "
                     "/usr/bin/false (or empty for /usr/sbin/nologin)");
    }
  } else if (!p.shell().empty()) {
    return Invalid(f + "shell", absl::StrCat("not used by ", operation));
  }
  if (operation == "remove_group") {
    if (p.group().empty()) return Invalid(f + "group", "required by remove_group");
    WB_RETURN_IF_ERROR(ValidatePosixUserName(f + "group", p.group()));
  } else if (!p.group().empty()) {
    return Invalid(f + "group", absl::StrCat("not used by ", operation));
  }
  if (operation != "delete" && p.keep_home()) {
    return Invalid(f + "keep_home", absl::StrCat("not used by ", operation));
  }
  return absl::OkStatus();
}

}  // namespace

const ConnectorSpec& PosixAccountSpec() {
  static const auto* spec = new ConnectorSpec{
      "posix_account",
      {"lock", "expire", "set_shell", "remove_group", "delete"},
      ValidatePosixAccount,
      [](absl::string_view object, absl::string_view field) {
        return ValidatePosixUserName(field, object);
      },
  };
  return *spec;
}

}  // namespace wb::actions
