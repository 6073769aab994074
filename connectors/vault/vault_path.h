// Names and paths of the Vault / OpenBao HTTP API, validated and encoded.
//
// Every name that reaches a URL (mounts, secret paths, role and policy names,
// lease prefixes) is checked against a grammar and refused, never "cleaned":
// '/'-separated components of printable ASCII, none empty (no leading,
// trailing or doubled '/'), none "." or "..". Each component is then
// percent-encoded on its own (RFC 3986: only A-Z a-z 0-9 - . _ ~ stay as
// they are), so no character of a name can change the shape of the URL
// ('?', '#', '%', ' ' and the like all travel encoded).
//
// Pure functions, thread-safe. Errors are INVALID_ARGUMENT naming the field.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/actions/vault_names.h"

namespace wb::connectors::vault {

// The grammars are the control plane's too (common/actions/vault_names.h).
using actions::vault::ValidateAccessor;
using actions::vault::ValidatePath;
using actions::vault::ValidatePolicyName;
// X-Vault-Namespace values: a path as above, or empty.
absl::Status ValidateNamespace(absl::string_view field, absl::string_view ns);

// Percent-encodes one component (RFC 3986 unreserved characters stay).
std::string EncodeComponent(absl::string_view component);
// Encodes each '/'-separated component of an already validated path.
std::string EncodePath(absl::string_view path);

}  // namespace wb::connectors::vault
