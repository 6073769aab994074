#include "common/trust/approvals.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/actions/action_class.h"
#include "common/envelope/envelope.h"

namespace wb::trust {

std::string StatementDigest(absl::string_view statement_bytes) {
  return crypto::Sha256(statement_bytes);
}

namespace {

// `key`'s signature over the digest of `statement_bytes`, under `type`.
writeback::v1::Approval SignDigest(writeback::v1::PayloadType type,
                                   absl::string_view statement_bytes,
                                   const crypto::Ed25519PrivateKey& key, absl::Time now) {
  const std::string digest = StatementDigest(statement_bytes);
  writeback::v1::Approval a;
  a.set_approver_key_id(key.key_id());
  a.set_statement_digest(digest);
  a.set_signature(key.Sign(envelope::SigningInput(type, digest)));
  a.set_signed_at_unix_ms(absl::ToUnixMillis(now));
  return a;
}

}  // namespace

writeback::v1::Approval Approve(absl::string_view statement_bytes,
                                const crypto::Ed25519PrivateKey& key, absl::Time now) {
  return SignDigest(writeback::v1::PAYLOAD_TYPE_DECISION_APPROVAL, statement_bytes, key, now);
}

std::string ApprovalCount::Explain() const {
  std::string out =
      required == std::numeric_limits<uint32_t>::max()
          ? absl::StrCat("approvals: the operation has no action class in the trust policy")
          : absl::StrCat("approvals: ", valid, " of ", required, " required for class ",
                         action_class);
  std::vector<std::string> why;
  for (size_t i = 0; i < problems.size(); ++i) {
    if (!problems[i].empty()) why.push_back(absl::StrCat("approvals[", i, "]: ", problems[i]));
  }
  if (!why.empty()) absl::StrAppend(&out, " (", absl::StrJoin(why, "; "), ")");
  return out;
}

namespace {

// THE rule (see the header), for a digest signed under `payload_type`.
ApprovalCount Count(const VerifiedPolicy& policy, writeback::v1::PayloadType payload_type,
                    const std::string& digest, absl::string_view requester,
                    std::string action_class, std::optional<uint32_t> threshold,
                    absl::string_view what,
                    const google::protobuf::RepeatedPtrField<writeback::v1::Approval>& approvals) {
  ApprovalCount out;
  out.action_class = std::move(action_class);
  out.required = threshold.value_or(std::numeric_limits<uint32_t>::max());
  const std::string signed_input = envelope::SigningInput(payload_type, digest);
  std::set<std::string> counted_keys, counted_identities;
  for (const auto& a : approvals) {
    std::string problem;
    const Approver* who = policy.FindApprover(a.approver_key_id());
    if (who == nullptr) {
      problem = absl::StrCat("key ", a.approver_key_id(), " is not an approver in trust policy v",
                             policy.version());
    } else if (!crypto::ConstantTimeEquals(a.statement_digest(), digest)) {
      problem = "approves a different statement (digest mismatch)";
    } else if (!who->key.Verify(signed_input, a.signature())) {
      problem = absl::StrCat("signature by ", who->name, " does not verify");
    } else if (who->identity == requester) {
      problem = absl::StrCat(who->name, " requested this ", what, " and cannot approve it");
    } else if (counted_keys.contains(who->key.raw()) ||
               counted_identities.contains(who->identity)) {
      problem = absl::StrCat(who->name, " already counted");
    } else {
      counted_keys.insert(who->key.raw());
      counted_identities.insert(who->identity);
      ++out.valid;
    }
    out.problems.push_back(std::move(problem));
  }
  return out;
}

}  // namespace

ApprovalCount CountApprovals(
    const VerifiedPolicy& policy, absl::string_view connector_type,
    absl::string_view statement_bytes, const writeback::v1::DecisionStatement& statement,
    const google::protobuf::RepeatedPtrField<writeback::v1::Approval>& approvals) {
  std::string action_class(actions::ActionClassOf(connector_type, statement.operation()));
  std::optional<uint32_t> threshold =
      action_class.empty() ? std::nullopt : policy.ThresholdFor(action_class);
  return Count(policy, writeback::v1::PAYLOAD_TYPE_DECISION_APPROVAL,
               StatementDigest(statement_bytes), statement.requester(), std::move(action_class),
               threshold, "decision", approvals);
}

writeback::v1::Approval ApproveRebind(absl::string_view statement_bytes,
                                      const crypto::Ed25519PrivateKey& key, absl::Time now) {
  return SignDigest(writeback::v1::PAYLOAD_TYPE_REBIND_APPROVAL, statement_bytes, key, now);
}

uint32_t RebindThreshold(const VerifiedPolicy& policy) {
  uint32_t most = 0;
  for (const std::string& c : actions::ActionClasses()) {
    most = std::max(most, policy.ThresholdFor(c).value_or(0));
  }
  return most;
}

ApprovalCount CountRebindApprovals(
    const VerifiedPolicy& policy, absl::string_view statement_bytes,
    const writeback::v1::BindingStatement& statement,
    const google::protobuf::RepeatedPtrField<writeback::v1::Approval>& approvals) {
  return Count(policy, writeback::v1::PAYLOAD_TYPE_REBIND_APPROVAL,
               StatementDigest(statement_bytes), statement.requester(), "rebind",
               RebindThreshold(policy), "rebind", approvals);
}

}  // namespace wb::trust
