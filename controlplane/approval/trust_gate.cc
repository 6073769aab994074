#include "controlplane/approval/trust_gate.h"

#include "absl/strings/str_cat.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"

namespace wb::controlplane {

absl::StatusOr<std::unique_ptr<TrustGate>> TrustGate::Create(
    std::optional<crypto::Ed25519PublicKey> root, std::string trust_domain,
    crypto::Ed25519PublicKey dispatch_key, Store* store, const Clock* clock,
    const std::optional<writeback::v1::SignedEnvelope>& initial) {
  std::unique_ptr<TrustGate> g(new TrustGate());
  g->root_ = std::move(root);
  g->trust_domain_ = std::move(trust_domain);
  g->dispatch_key_ = std::move(dispatch_key);
  g->store_ = store;
  g->clock_ = clock;
  if (!g->root_pinned()) {
    if (initial.has_value()) {
      return absl::InvalidArgumentError("trust_policy_file: requires trust_root_public_key_file");
    }
    return g;
  }
  WB_ASSIGN_OR_RETURN(std::optional<writeback::v1::SignedEnvelope> stored, store->GetTrustPolicy());
  if (stored.has_value()) {
    auto v = trust::VerifyPolicy(*stored, *g->root_, 1, absl::InfiniteFuture());
    if (!v.ok()) {
      return absl::DataLossError(
          absl::StrCat("store: the stored trust policy does not verify against the trust root: ",
                       v.status().message()));
    }
    if (v->dispatch_keys.Find(g->dispatch_key_->key_id()) == nullptr) {
      log::Error(
          "the trust policy does not list this control plane's dispatch key: agents will "
          "refuse its tasks until a policy that lists it is published",
          {{"dispatch_key_id", g->dispatch_key_->key_id()},
           {"policy_version", absl::StrCat(v->version())}});
    }
    absl::MutexLock l(&g->mu_);
    g->policy_ = std::make_shared<const trust::VerifiedPolicy>(*std::move(v));
  }
  if (initial.has_value()) {
    auto current = g->policy();
    const bool same = current != nullptr && current->envelope.payload() == initial->payload();
    if (!same) {
      auto taken = g->Publish(*initial);
      const bool older =
          taken.status().code() == absl::StatusCode::kFailedPrecondition && current != nullptr;
      if (!taken.ok() && !older) {
        return absl::Status(taken.status().code(),
                            absl::StrCat("trust_policy_file: ", taken.status().message()));
      }
    }
  }
  return g;
}

std::shared_ptr<const trust::VerifiedPolicy> TrustGate::policy() const {
  absl::MutexLock l(&mu_);
  return policy_;
}

absl::StatusOr<std::shared_ptr<const trust::VerifiedPolicy>> TrustGate::Publish(
    const writeback::v1::SignedEnvelope& env) {
  if (!root_pinned()) {
    return absl::FailedPreconditionError(
        "no trust root is pinned (trust_root_public_key_file): policies cannot be verified");
  }
  absl::MutexLock publish_lock(&publish_mu_);
  auto current = policy();
  const uint64_t min_version = current == nullptr ? 1 : current->version() + 1;
  WB_ASSIGN_OR_RETURN(trust::VerifiedPolicy v,
                      trust::VerifyPolicy(env, *root_, min_version, clock_->Now()));
  if (v.policy.trust_domain() != trust_domain_) {
    return absl::InvalidArgumentError(
        absl::StrCat("trust_policy.trust_domain: '", v.policy.trust_domain(),
                     "' is not this control plane's trust domain '", trust_domain_, "'"));
  }
  if (v.dispatch_keys.Find(dispatch_key_->key_id()) == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("trust_policy.dispatch_keys: does not list this control plane's dispatch key ",
                     dispatch_key_->key_id(), ": agents would refuse every task it signs"));
  }
  WB_RETURN_IF_ERROR(store_->PutTrustPolicy(env));
  auto next = std::make_shared<const trust::VerifiedPolicy>(std::move(v));
  {
    absl::MutexLock l(&mu_);
    policy_ = next;
  }
  log::Info("trust policy published", {{"version", absl::StrCat(next->version())}});
  return next;
}

absl::Status TrustGate::TakeBudget(absl::string_view agent_id, size_t n, int64_t now_ms) {
  auto p = policy();
  if (p == nullptr) return absl::OkStatus();
  const trust::RateBudget budget = p->BudgetFor(agent_id);
  const int64_t window_ms = absl::ToInt64Milliseconds(budget.window);
  absl::MutexLock l(&budget_mu_);
  auto& used = used_[std::string(agent_id)];
  while (!used.empty() &&
         used.front().first <= now_ms - int64_t{trust::kMaxRateWindowSeconds} * 1000) {
    used.pop_front();
  }
  size_t in_window = 0;
  for (const auto& [at, k] : used) {
    if (at > now_ms - window_ms) in_window += k;
  }
  if (in_window + n > budget.max_tasks) {
    return absl::ResourceExhaustedError(
        absl::StrCat("rate budget of ", agent_id, ": ", in_window, " tasks in the last ",
                     absl::FormatDuration(budget.window), " and ", n, " more would exceed the ",
                     budget.max_tasks, " that trust policy v", p->version(), " allows"));
  }
  used.emplace_back(now_ms, n);
  return absl::OkStatus();
}

}  // namespace wb::controlplane
