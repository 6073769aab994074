// Overlapping decisions (docs/delivery.md "Overlapping decisions"): when
// does a newer decision's effect on a target provably contain an older
// one's, on the same target (same connector instance, same object)?
//
// Used by the control plane for two things only:
//   - a newer decision takes over an older decision's task for the same
//     target that was not delivered yet (the older task becomes SUPERSEDED
//     and counts as the covering task counts);
//   - re-verification of the older decision's target is watched through the
//     newer decision while the newer one is VERIFIED (e.g. a deleted
//     account can no longer be observed as "locked").
// Anything not listed here is not covered: both decisions run, in submit
// order, and each is re-verified against its own effect.
//
// The rules, per connector type (older ⊆ newer):
//   every type           the same operation with the same parameters
//   ssh_authorized_keys  exclusive_set whose kept set excludes F ⊇ remove_key F
//   posix_account        delete ⊇ lock, expire, set_shell, remove_group
//   sudoers              remove_file ⊇ remove_user_rules
//   secret_file          delete_file ⊇ every other operation;
//                        remove_ini_section S ⊇ remove_ini_key in section S
//   postgres             drop_role ⊇ disable_login, terminate_sessions,
//                        revoke_privileges, reduce_to_read_only,
//                        expire_password; disable_login (sessions ended) ⊇
//                        terminate_sessions
//   redis                delete_user ⊇ disable_user, kill_connections,
//                        reset_passwords, remove_permissions; disable_user
//                        (connections killed) ⊇ kill_connections
//   ldap                 delete_entry ⊇ lock, remove_password, and
//                        remove_from_groups unless it keeps group memberships
//   vault                kv_delete_metadata ⊇ kv_delete, kv_destroy (same mount)
//   exec                 only the same operation and parameters (opaque)
// Rotations (set_password, rotate_password, replace_password) are never
// covered by another operation: their effect includes the new value.
//
// Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "writeback/v1/action.pb.h"

namespace wb::actions {

struct Effect {
  absl::string_view operation;
  const writeback::v1::ActionParams& params;
};

// If `newer` (applied to a target of `connector_type`) provably contains
// `older`'s effect on the same target: the rule that says so (for state
// details and the audit chain), e.g. "delete removes the account that lock
// locked". nullopt otherwise.
std::optional<std::string> Covers(absl::string_view connector_type, const Effect& newer,
                                  const Effect& older);

}  // namespace wb::actions
