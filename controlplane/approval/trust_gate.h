// The control plane's side of the trust policy (DESIGN.md section 3,
// docs/security.md). The control plane does not hold the trust root and
// cannot make approvals; it only
//   - keeps the newest policy signed by the pinned root (published with
//     `wbctl trust publish`, or read from trust_policy_file at start) and
//     sends it to agents, which verify it again;
//   - uses it to tell operators early what a decision needs: decisions wait
//     in PENDING_APPROVAL until enough valid approvals arrived;
//   - keeps a rate budget per agent in memory (the agent's own count, kept
//     in its journal, is the one a compromised control plane cannot skip).
// Without a pinned root (development) nothing needs approval.
//
// Thread-safe.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock/clock.h"
#include "common/crypto/crypto.h"
#include "common/trust/policy.h"
#include "controlplane/store/store.h"
#include "writeback/v1/envelope.pb.h"

namespace wb::controlplane {

class TrustGate {
 public:
  // Loads the stored policy and then offers `initial` (from
  // trust_policy_file) if it is newer. `store` and `clock` must outlive
  // the gate. Errors name where the bad policy came from.
  static absl::StatusOr<std::unique_ptr<TrustGate>> Create(
      std::optional<crypto::Ed25519PublicKey> root, std::string trust_domain,
      crypto::Ed25519PublicKey dispatch_key, Store* store, const Clock* clock,
      const std::optional<writeback::v1::SignedEnvelope>& initial);

  bool root_pinned() const { return root_.has_value(); }
  // The policy in force, or null.
  std::shared_ptr<const trust::VerifiedPolicy> policy() const;

  // Verifies `env` against the root (newer version, this trust domain,
  // lists this control plane's dispatch key), stores it durably and makes
  // it current. Errors: FAILED_PRECONDITION (no root pinned, not newer, the
  // dispatch key missing), UNAUTHENTICATED, INVALID_ARGUMENT.
  absl::StatusOr<std::shared_ptr<const trust::VerifiedPolicy>> Publish(
      const writeback::v1::SignedEnvelope& env);

  // Reserves `n` tasks of `agent_id`'s budget at `now_ms`, or
  // RESOURCE_EXHAUSTED naming the budget. Always OK without a policy.
  absl::Status TakeBudget(absl::string_view agent_id, size_t n, int64_t now_ms);

 private:
  TrustGate() = default;

  std::optional<crypto::Ed25519PublicKey> root_;
  std::string trust_domain_;
  std::optional<crypto::Ed25519PublicKey> dispatch_key_;
  Store* store_ = nullptr;
  const Clock* clock_ = nullptr;

  absl::Mutex publish_mu_;  // one Publish at a time
  mutable absl::Mutex mu_;
  std::shared_ptr<const trust::VerifiedPolicy> policy_ ABSL_GUARDED_BY(mu_);
  absl::Mutex budget_mu_;
  // Per agent: (time, tasks) of reservations inside the longest window.
  absl::flat_hash_map<std::string, std::deque<std::pair<int64_t, size_t>>> used_
      ABSL_GUARDED_BY(budget_mu_);
};

}  // namespace wb::controlplane
