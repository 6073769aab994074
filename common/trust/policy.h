// The trust policy (proto/writeback/v1/trust.proto): validation, signing by
// the offline root, and verification against a pinned root key. Used by
// `wbctl trust sign` (sign), the control plane (verify before distributing,
// count approvals for early feedback) and agents (verify, then enforce).
//
// A verified policy is immutable; share it as shared_ptr<const ...>.
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "writeback/v1/envelope.pb.h"
#include "writeback/v1/trust.pb.h"

namespace wb::trust {

inline constexpr uint32_t kMaxRateWindowSeconds = 7 * 24 * 3600;
inline constexpr int kMaxKeys = 64;
inline constexpr int kMaxApprovers = 256;
// A policy issued further in the future than this (by the verifier's clock)
// is refused: it would stay "newer" than every honest update.
inline constexpr absl::Duration kMaxIssuedAtSkew = absl::Hours(1);

struct Approver {
  std::string name;
  std::string identity;  // operator SPIFFE ID
  crypto::Ed25519PublicKey key;
};

struct RateBudget {
  uint32_t max_tasks = 0;
  absl::Duration window;
};

// A policy whose root signature and content have been checked.
struct VerifiedPolicy {
  writeback::v1::SignedEnvelope envelope;  // exactly as signed by the root
  writeback::v1::TrustPolicy policy;       // parsed from envelope.payload
  envelope::Keyring dispatch_keys;
  std::vector<Approver> approvers;

  uint64_t version() const { return policy.version(); }
  // Approvals required for `action_class`; nullopt for a class the policy
  // does not list (the caller refuses the task).
  std::optional<uint32_t> ThresholdFor(absl::string_view action_class) const;
  // The approver holding `key_id`, or null.
  const Approver* FindApprover(absl::string_view key_id) const;
  // `agent_id`'s budget (its own entry, else the default).
  RateBudget BudgetFor(absl::string_view agent_id) const;
};

// Checks every field; INVALID_ARGUMENT naming the field, e.g.
// "trust_policy.approvers[1].identity: not an operator identity of trust
// domain example.com". Rules: trust_domain set; version > 0; 1..64 dispatch
// keys, each 32 bytes, distinct; approvers with unique names, identities and
// keys, identities operator SPIFFE IDs of the trust domain; every action
// class listed (and no other), each threshold at most the number of
// approvers; rate budgets with max_tasks >= 1 and a window of 1 s to 7 days,
// per-agent entries keyed by agent SPIFFE IDs of the trust domain.
absl::Status ValidatePolicy(const writeback::v1::TrustPolicy& policy);

// Validates `policy` and signs its serialization with the root key.
absl::StatusOr<writeback::v1::SignedEnvelope> SignPolicy(const writeback::v1::TrustPolicy& policy,
                                                         const crypto::Ed25519PrivateKey& root);

// Reads a signed policy file written by `wbctl trust sign` (a serialized
// SignedEnvelope of payload type TRUST_POLICY). Does not verify it.
// INVALID_ARGUMENT naming the path when it is not one.
absl::StatusOr<writeback::v1::SignedEnvelope> ReadSignedPolicyFile(const std::string& path);

// Verifies the root's signature over the exact payload (before parsing),
// parses (unknown fields refused), validates, and requires
// version >= min_version and issued_at <= now + kMaxIssuedAtSkew.
// Errors: UNAUTHENTICATED (not signed by `root`), INVALID_ARGUMENT
// (malformed or invalid; names the field), FAILED_PRECONDITION (version
// too old: a rollback).
absl::StatusOr<VerifiedPolicy> VerifyPolicy(const writeback::v1::SignedEnvelope& env,
                                            const crypto::Ed25519PublicKey& root,
                                            uint64_t min_version, absl::Time now);

}  // namespace wb::trust
