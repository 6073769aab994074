// The "sudoers" connector type: drop-ins in a sudoers.d directory
// (connectors/sudoers, docs/connectors/sudoers.md).
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/actions/actions.h"
#include "common/actions/spec.h"

namespace wb::actions {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status ValidateSudoers(absl::string_view operation, const writeback::v1::ActionParams& params,
                             const std::string& f) {
  const auto& p = params.sudoers();
  if (operation == "remove_user_rules") {
    if (p.user().empty()) return Invalid(f + "user", "required by remove_user_rules");
    return ValidatePosixUserName(f + "user", p.user());
  }
  if (!p.user().empty()) return Invalid(f + "user", absl::StrCat("not used by ", operation));
  return absl::OkStatus();
}

// sudo reads only drop-ins whose name has no '.' and does not end in '~';
// this grammar is stricter still: [A-Za-z0-9_-]{1,255}.
absl::Status ValidateDropInName(absl::string_view object, absl::string_view field) {
  if (object.empty() || object.size() > 255) {
    return Invalid(field, "drop-in file name must be 1 to 255 characters");
  }
  for (char c : object) {
    if (c == '.') {
      return Invalid(field,
                     "drop-in file name must not contain '.' (sudo ignores such files, so they "
                     "grant nothing)");
    }
    if (!(absl::ascii_isalnum(c) || c == '_' || c == '-')) {
      return Invalid(field, "drop-in file name may contain only A-Z, a-z, 0-9, '_' and '-'");
    }
  }
  return absl::OkStatus();
}

}  // namespace

const ConnectorSpec& SudoersSpec() {
  static const auto* spec = new ConnectorSpec{
      "sudoers",
      {"remove_file", "remove_user_rules"},
      ValidateSudoers,
      ValidateDropInName,
  };
  return *spec;
}

}  // namespace wb::actions
