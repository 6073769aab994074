// Approvals (DESIGN.md section 3): an approver signs SHA-256 of a
// decision's exact statement bytes with their own Ed25519 key
// (`wbctl decision approve`). The signature covers the envelope signing
// input of PAYLOAD_TYPE_DECISION_APPROVAL for that digest, so it can never
// pass as a signature of anything else. Approval.signed_at_unix_ms is
// informational (not signed).
//
// CountApprovals is THE rule, applied by agents to every task and by the
// control plane before dispatching. An approval counts only if:
//   - its key is an approver key of the policy (approver still in it),
//   - its statement_digest is this statement's digest,
//   - its signature verifies over that digest,
//   - the approver's identity is not the statement's requester,
//   - no approval from the same key or the same approver counted already.
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/crypto/crypto.h"
#include "common/trust/policy.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "writeback/v1/decision.pb.h"

namespace wb::trust {

// SHA-256 of the statement bytes (raw 32 bytes).
std::string StatementDigest(absl::string_view statement_bytes);

// `key`'s approval of the statement whose exact bytes are `statement_bytes`.
writeback::v1::Approval Approve(absl::string_view statement_bytes,
                                const crypto::Ed25519PrivateKey& key, absl::Time now);

struct ApprovalCount {
  std::string action_class;  // "" if the operation has none
  uint32_t required = 0;     // UINT32_MAX: nothing can satisfy it
  uint32_t valid = 0;        // approvals that count (distinct approvers)
  // One entry per input approval: "" if it counted, else why not.
  std::vector<std::string> problems;

  bool satisfied() const { return valid >= required; }
  // E.g. "approvals: 1 of 2 required for class delete (approvals[1]: the
  // requester cannot approve their own decision)".
  std::string Explain() const;
};

// Evaluates `approvals` of the statement (`statement_bytes`, parsed as
// `statement`) whose operation belongs to `connector_type`.
ApprovalCount CountApprovals(
    const VerifiedPolicy& policy, absl::string_view connector_type,
    absl::string_view statement_bytes, const writeback::v1::DecisionStatement& statement,
    const google::protobuf::RepeatedPtrField<writeback::v1::Approval>& approvals);

// Rebinding a connector instance to another agent (root mode,
// docs/security.md "Instance bindings"): approvers sign SHA-256 of the
// BindingStatement's exact bytes under PAYLOAD_TYPE_REBIND_APPROVAL (so a
// rebind approval never passes as a decision approval, nor the reverse).
// The same rule as CountApprovals; the threshold is the highest of any
// action class in the policy (the new agent can do all of them).
writeback::v1::Approval ApproveRebind(absl::string_view statement_bytes,
                                      const crypto::Ed25519PrivateKey& key, absl::Time now);
uint32_t RebindThreshold(const VerifiedPolicy& policy);
ApprovalCount CountRebindApprovals(
    const VerifiedPolicy& policy, absl::string_view statement_bytes,
    const writeback::v1::BindingStatement& statement,
    const google::protobuf::RepeatedPtrField<writeback::v1::Approval>& approvals);

}  // namespace wb::trust
