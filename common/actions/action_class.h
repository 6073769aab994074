// Operation traits: what the agent and the control plane know about each
// (connector type, operation) pair without asking the connector. The table is
// compiled into every agent and control plane, so a control plane cannot
// relabel a deletion as something milder. Pure functions, thread-safe.
//
// Action classes: how much an operation can hurt, which decides how many
// approvals it needs under the trust policy (common/trust).
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
//
// Idempotency: whether the agent may run plan → apply → verify again for a
// task whose apply was interrupted (agent killed after journaling the
// intent, apply outcome unknown; agent/executor, docs/delivery.md). An
// operation is idempotent here when its effect is a state that PlanChange
// recognises: a re-run on a target the interrupted run already changed finds
// nothing to change (so it neither acts twice nor fails a precondition the
// first run used up), and a re-run on an untouched target makes the change.
// Not idempotent: operations whose effect is an event (ending the sessions
// that exist when they run), rotations whose re-run would end sessions
// opened with the new secret, operations whose target is relative to the
// moment ("the latest version"), and deletions (a re-run would destroy, for
// good, an object created under the same name since the interrupted run).
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace wb::actions {

enum class Idempotency {
  kIdempotent,     // re-run after an interrupted apply
  kNotIdempotent,  // never re-run: verify only, and say why
  // The connector type cannot know (exec: an operator's program); the
  // instance's configuration declares it (ExecConfig.idempotent_operations).
  kDeclaredByInstance,
};

struct OperationTraits {
  absl::string_view action_class;
  Idempotency idempotency = Idempotency::kNotIdempotent;
  // kNotIdempotent and kDeclaredByInstance: why a re-run is not safe in
  // general, in words for results and docs ("it ends the sessions that…").
  absl::string_view not_idempotent_because;
  // The whole effect is momentary (it ends what exists when it runs:
  // sessions, connections, leases under a prefix) and leaves nothing lasting
  // to observe later: the decision is VERIFIED by the observation right
  // after the apply and is not re-verified (controlplane/reverify), since
  // sessions opened later are legitimate, not drift.
  bool momentary = false;
};

// Every class, in increasing order of harm.
const std::vector<std::string>& ActionClasses();

// The traits of `operation` of `connector_type`; null for an unknown pair
// (callers refuse those: every known operation has traits).
const OperationTraits* OperationTraitsOf(absl::string_view connector_type,
                                         absl::string_view operation);

// The class of `operation` of `connector_type`; "" for an unknown pair.
absl::string_view ActionClassOf(absl::string_view connector_type, absl::string_view operation);

}  // namespace wb::actions
