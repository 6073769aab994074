#include "agent/trust/agent_trust.h"

#include "absl/strings/str_cat.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"

namespace wb::agent {
namespace {
constexpr char kPolicyMeta[] = "trust_policy";
}  // namespace

AgentTrust::AgentTrust(envelope::Keyring dispatch_keys) : pinned_(std::move(dispatch_keys)) {}

absl::StatusOr<std::unique_ptr<AgentTrust>> AgentTrust::WithRoot(
    crypto::Ed25519PublicKey root, std::string trust_domain, Journal* journal, const Clock* clock,
    const std::optional<writeback::v1::SignedEnvelope>& bootstrap) {
  std::unique_ptr<AgentTrust> t(new AgentTrust());
  t->root_ = std::move(root);
  t->trust_domain_ = std::move(trust_domain);
  t->journal_ = journal;
  t->clock_ = clock;
  WB_ASSIGN_OR_RETURN(std::optional<std::string> stored, journal->GetMeta(kPolicyMeta));
  if (stored.has_value()) {
    writeback::v1::SignedEnvelope env;
    if (!env.ParseFromString(*stored)) {
      return absl::DataLossError("journal: the stored trust policy is corrupt");
    }
    // A stored policy was accepted before: only its signature and content
    // are checked again (its issue time may be behind a clock that moved).
    auto v = trust::VerifyPolicy(env, *t->root_, 1, absl::InfiniteFuture());
    if (!v.ok()) {
      return absl::DataLossError(
          absl::StrCat("journal: the stored trust policy does not verify: ", v.status().message()));
    }
    t->policy_ = std::make_shared<const trust::VerifiedPolicy>(*std::move(v));
  }
  if (bootstrap.has_value()) {
    auto taken = t->Offer(*bootstrap);
    if (!taken.ok() &&
        !(t->policy_ && taken.status().code() == absl::StatusCode::kFailedPrecondition)) {
      return absl::Status(taken.status().code(),
                          absl::StrCat("trust_policy_file: ", taken.status().message()));
    }
  }
  return t;
}

std::shared_ptr<const trust::VerifiedPolicy> AgentTrust::policy() const {
  std::lock_guard<std::mutex> l(mu_);
  return policy_;
}

bool AgentTrust::ready() const { return !root_pinned() || policy() != nullptr; }

std::string AgentTrust::Describe() const {
  if (!root_pinned()) return "pinned dispatch keys, no trust root (approvals not enforced)";
  auto p = policy();
  if (p == nullptr) return "trust root pinned, no trust policy yet";
  return absl::StrCat("trust policy v", p->version());
}

absl::StatusOr<bool> AgentTrust::Offer(const writeback::v1::SignedEnvelope& env) {
  if (!root_pinned()) {
    return absl::FailedPreconditionError("no trust root is pinned: policies are not used");
  }
  std::lock_guard<std::mutex> offer_lock(offer_mu_);
  auto current = policy();
  if (current != nullptr && current->envelope.payload() == env.payload() &&
      current->envelope.signature() == env.signature()) {
    return false;
  }
  if (current != nullptr) {
    writeback::v1::TrustPolicy offered;
    if (offered.ParseFromString(env.payload()) && offered.version() == current->version()) {
      return absl::FailedPreconditionError(
          absl::StrCat("trust policy: a different policy with the version held (v",
                       current->version(), ") is refused: every change needs a higher version"));
    }
  }
  const uint64_t min_version = current == nullptr ? 1 : current->version() + 1;
  WB_ASSIGN_OR_RETURN(trust::VerifiedPolicy v,
                      trust::VerifyPolicy(env, *root_, min_version, clock_->Now()));
  if (v.policy.trust_domain() != trust_domain_) {
    return absl::InvalidArgumentError(
        absl::StrCat("trust_policy.trust_domain: '", v.policy.trust_domain(),
                     "' is not this agent's trust domain '", trust_domain_, "'"));
  }
  WB_RETURN_IF_ERROR(journal_->PutMeta(kPolicyMeta, env.SerializeAsString()));
  auto next = std::make_shared<const trust::VerifiedPolicy>(std::move(v));
  {
    std::lock_guard<std::mutex> l(mu_);
    policy_ = next;
  }
  log::Info("trust policy accepted", {{"version", absl::StrCat(next->version())},
                                      {"dispatch_keys", absl::StrCat(next->dispatch_keys.size())},
                                      {"approvers", absl::StrCat(next->approvers.size())}});
  return true;
}

}  // namespace wb::agent
