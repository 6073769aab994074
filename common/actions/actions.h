// The catalogue of typed actions: which connector types exist, which
// operations each has, and validation of their parameters and targets.
// Shared by the control plane (refuse bad decisions at submit), the agent and
// the connectors (refuse again: never trust the sender). Pure functions,
// thread-safe. Errors are INVALID_ARGUMENT naming the field and the reason.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/status/macros.h"
#include "writeback/v1/action.pb.h"

namespace wb::actions {

// Every connector type this build knows, e.g. "ssh_authorized_keys".
const std::vector<std::string>& ConnectorTypes();
// Operations of a connector type; empty for an unknown type.
const std::vector<std::string>& OperationsOf(absl::string_view connector_type);
// The connector type that the set member of `params` belongs to, or "".
absl::string_view ParamsConnectorType(const writeback::v1::ActionParams& params);

// Validates operation + params for `connector_type`. `field_prefix` is
// prepended to field names in errors (e.g. "spec.").
absl::Status ValidateAction(absl::string_view connector_type, absl::string_view operation,
                            const writeback::v1::ActionParams& params,
                            absl::string_view field_prefix = "");
// Validates one target object for `connector_type`.
absl::Status ValidateTargetObject(absl::string_view connector_type, absl::string_view object,
                                  absl::string_view field = "target");

// Grammars shared by several connectors.
// "SHA256:" + 43 characters of unpadded standard base64.
absl::Status ValidateSshFingerprint(absl::string_view field, absl::string_view fp);
// Debian's user-name grammar: [a-z_][a-z0-9_-]{0,31} with an optional final '$'.
absl::Status ValidatePosixUserName(absl::string_view field, absl::string_view name);
// Valid UTF-8 text, at most max_len bytes, without the characters that
// change or hide what is displayed: control characters (C0, DEL, C1),
// bidirectional controls, zero-width and other invisible format characters
// (common/text/display.h). The error names the field and the character.
absl::Status ValidateText(absl::string_view field, absl::string_view text, size_t max_len,
                          bool allow_empty);

}  // namespace wb::actions
