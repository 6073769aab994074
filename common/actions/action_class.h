// Action classes: how much an operation can hurt, which decides how many
// approvals it needs under the trust policy (common/trust). The mapping is
// compiled into every agent and control plane, so a control plane cannot
// relabel a deletion as something milder. Pure functions, thread-safe.
//
//   disable  cuts access off reversibly: lock, expire, disable login, end
//            sessions
//   revoke   removes one grant or credential that can be issued again:
//            an SSH key, a group membership, privileges, a token, a lease,
//            a soft-deleted secret version
//   rotate   replaces or removes a password or secret value
//   delete   destroys something that cannot be brought back: an account,
//            a role, a directory entry, a file, destroyed secret versions;
//            and every `exec` operation (the program's effect is opaque)
//   grant    can widen access: replacing a Vault policy document
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace wb::actions {

// Every class, in increasing order of harm.
const std::vector<std::string>& ActionClasses();

// The class of `operation` of `connector_type`; "" for an unknown pair
// (callers refuse those: every known operation has a class).
absl::string_view ActionClassOf(absl::string_view connector_type, absl::string_view operation);

}  // namespace wb::actions
