// Names in the Vault / OpenBao HTTP API that reach a URL: one grammar for
// the control plane (validating a decision) and the vault connector (which
// also percent-encodes every component: connectors/vault/vault_path.h).
// Every name is checked and refused, never "cleaned".
//
// Pure functions, thread-safe. Errors are INVALID_ARGUMENT naming the field.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace wb::actions::vault {

// A '/'-separated Vault path (mount, secret path, lease id or prefix):
// printable ASCII, at most 1024 bytes, no empty component (leading, trailing
// or doubled '/'), no "." or ".." component.
absl::Status ValidatePath(absl::string_view field, absl::string_view path);
// Token and secret-id accessors: [A-Za-z0-9._-]{1,128}, not "." or "..".
absl::Status ValidateAccessor(absl::string_view field, absl::string_view accessor);
// AppRole role names: [A-Za-z0-9][A-Za-z0-9_.@-]{0,127}.
absl::Status ValidateRoleName(absl::string_view field, absl::string_view name);
// ACL policy names: [a-z0-9][a-z0-9_.-]{0,127}; "root" is refused (Vault
// cannot change it, and nothing should try).
absl::Status ValidatePolicyName(absl::string_view field, absl::string_view name);

}  // namespace wb::actions::vault
