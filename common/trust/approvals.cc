#include "common/trust/approvals.h"

#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/actions/action_class.h"
#include "common/envelope/envelope.h"

namespace wb::trust {

std::string StatementDigest(absl::string_view statement_bytes) {
  return crypto::Sha256(statement_bytes);
}

writeback::v1::Approval Approve(absl::string_view statement_bytes,
                                const crypto::Ed25519PrivateKey& key, absl::Time now) {
  const std::string digest = StatementDigest(statement_bytes);
  writeback::v1::Approval a;
  a.set_approver_key_id(key.key_id());
  a.set_statement_digest(digest);
  a.set_signature(
      key.Sign(envelope::SigningInput(writeback::v1::PAYLOAD_TYPE_DECISION_APPROVAL, digest)));
  a.set_signed_at_unix_ms(absl::ToUnixMillis(now));
  return a;
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

ApprovalCount CountApprovals(
    const VerifiedPolicy& policy, absl::string_view connector_type,
    absl::string_view statement_bytes, const writeback::v1::DecisionStatement& statement,
    const google::protobuf::RepeatedPtrField<writeback::v1::Approval>& approvals) {
  ApprovalCount out;
  out.action_class = std::string(actions::ActionClassOf(connector_type, statement.operation()));
  std::optional<uint32_t> threshold =
      out.action_class.empty() ? std::nullopt : policy.ThresholdFor(out.action_class);
  out.required = threshold.value_or(std::numeric_limits<uint32_t>::max());
  const std::string digest = StatementDigest(statement_bytes);
  const std::string signed_input =
      envelope::SigningInput(writeback::v1::PAYLOAD_TYPE_DECISION_APPROVAL, digest);
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
    } else if (who->identity == statement.requester()) {
      problem = absl::StrCat(who->name, " requested this decision and cannot approve it");
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

}  // namespace wb::trust
