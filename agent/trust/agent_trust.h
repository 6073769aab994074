// What an agent trusts to check tasks with (DESIGN.md section 3):
//   - pinned mode (no trust root configured; development only): the
//     dispatch keys from the agent's config, no approvals, no rate budget;
//   - root mode: the trust root's public key is pinned and everything else
//     (dispatch keys, approvers, thresholds, the agent's rate budget) comes
//     from the newest trust policy the root signed. Policies arrive from the
//     control plane (Welcome, or pushed on the stream) or from a file; one
//     is taken only if the root signed it, it names this agent's trust
//     domain and its version is higher than the one held (an equal version
//     with the same bytes is a no-op). The accepted policy is written to the
//     journal's meta column family before it is used, so a restart never
//     falls back to an older one.
// Until a root-mode agent holds a policy it refuses every task
// (UNKNOWN_KEY) and reports NOT READY.
//
// Thread-safe: Offer serializes updates; readers take a snapshot.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "agent/journal/journal.h"
#include "common/clock/clock.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "common/trust/policy.h"
#include "writeback/v1/envelope.pb.h"

namespace wb::agent {

class AgentTrust {
 public:
  // Pinned mode.
  explicit AgentTrust(envelope::Keyring dispatch_keys);
  // Root mode. Loads the policy kept in `journal` (if any) and then offers
  // `bootstrap` (a policy read from trust_policy_file, if any). A stored
  // policy that no longer verifies is an error (DATA_LOSS): the state
  // directory was altered. `journal` and `clock` must outlive this.
  static absl::StatusOr<std::unique_ptr<AgentTrust>> WithRoot(
      crypto::Ed25519PublicKey root, std::string trust_domain, Journal* journal, const Clock* clock,
      const std::optional<writeback::v1::SignedEnvelope>& bootstrap);

  bool root_pinned() const { return root_.has_value(); }
  // The current policy; null in pinned mode or before the first one.
  std::shared_ptr<const trust::VerifiedPolicy> policy() const;
  // The pinned dispatch keys (pinned mode).
  const envelope::Keyring& pinned_keys() const { return pinned_; }
  // Can check tasks: pinned mode, or a policy is held.
  bool ready() const;
  // Human-readable state for logs and status, e.g. "trust policy v3".
  std::string Describe() const;

  // Offers a signed policy. Returns true if it became the current one,
  // false if it is the one already held. Errors: FAILED_PRECONDITION in
  // pinned mode or for an older/equal-but-different version, and
  // VerifyPolicy's errors; the current policy is unchanged on error.
  absl::StatusOr<bool> Offer(const writeback::v1::SignedEnvelope& env);

 private:
  AgentTrust() = default;

  envelope::Keyring pinned_;
  std::optional<crypto::Ed25519PublicKey> root_;
  std::string trust_domain_;
  Journal* journal_ = nullptr;
  const Clock* clock_ = nullptr;

  std::mutex offer_mu_;  // one update at a time
  mutable std::mutex mu_;
  std::shared_ptr<const trust::VerifiedPolicy> policy_;  // guarded by mu_
};

}  // namespace wb::agent
