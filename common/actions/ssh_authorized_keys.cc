#include "absl/strings/str_cat.h"
#include "common/actions/actions.h"
#include "common/actions/spec.h"

namespace wb::actions {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status ValidateSsh(absl::string_view operation, const writeback::v1::ActionParams& params,
                         const std::string& f) {
  const auto& p = params.ssh_authorized_keys();
  if (operation == "remove_key") {
    WB_RETURN_IF_ERROR(ValidateSshFingerprint(f + "fingerprint", p.fingerprint()));
    if (!p.comment().empty()) return Invalid(f + "comment", "not used by remove_key");
    if (p.keep_fingerprints_size() > 0) {
      return Invalid(f + "keep_fingerprints", "not used by remove_key");
    }
    return absl::OkStatus();
  }
  if (operation == "remove_by_comment") {
    WB_RETURN_IF_ERROR(ValidateText(f + "comment", p.comment(), 1024, false));
    if (!p.fingerprint().empty()) {
      return Invalid(f + "fingerprint", "not used by remove_by_comment");
    }
    if (p.keep_fingerprints_size() > 0) {
      return Invalid(f + "keep_fingerprints", "not used by remove_by_comment");
    }
    return absl::OkStatus();
  }
  // exclusive_set
  if (!p.fingerprint().empty()) return Invalid(f + "fingerprint", "not used by exclusive_set");
  if (!p.comment().empty()) return Invalid(f + "comment", "not used by exclusive_set");
  if (p.keep_fingerprints_size() > 1000) {
    return Invalid(f + "keep_fingerprints", "at most 1000 entries");
  }
  for (int i = 0; i < p.keep_fingerprints_size(); ++i) {
    WB_RETURN_IF_ERROR(ValidateSshFingerprint(absl::StrCat(f, "keep_fingerprints[", i, "]"),
                                              p.keep_fingerprints(i)));
  }
  return absl::OkStatus();
}

}  // namespace

const ConnectorSpec& SshAuthorizedKeysSpec() {
  static const auto* spec = new ConnectorSpec{
      "ssh_authorized_keys",
      {"remove_key", "remove_by_comment", "exclusive_set"},
      ValidateSsh,
      [](absl::string_view object, absl::string_view field) {
        return ValidatePosixUserName(field, object);
      },
  };
  return *spec;
}

}  // namespace wb::actions
