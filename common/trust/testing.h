// Test helpers: a small valid trust policy with generated keys.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "writeback/v1/trust.pb.h"

namespace wb::trust::testing {

struct PolicyKeys {
  crypto::Ed25519PrivateKey root = crypto::Ed25519PrivateKey::Generate();
  crypto::Ed25519PrivateKey dispatch = crypto::Ed25519PrivateKey::Generate();
  std::vector<crypto::Ed25519PrivateKey> approvers;  // approver i is operator "approver-i"
};

inline std::string OperatorId(const std::string& domain, int i) {
  return absl::StrCat("spiffe://", domain, "/operator/approver-", i);
}

// Version `version`, `n_approvers` approvers, thresholds disable 1,
// revoke 1, rotate 1, delete 2, grant 2 (capped at n_approvers), a default
// budget of 1000 tasks an hour.
inline writeback::v1::TrustPolicy MakePolicy(PolicyKeys& keys, const std::string& domain,
                                             uint64_t version, int n_approvers = 3) {
  while (static_cast<int>(keys.approvers.size()) < n_approvers) {
    keys.approvers.push_back(crypto::Ed25519PrivateKey::Generate());
  }
  writeback::v1::TrustPolicy p;
  p.set_trust_domain(domain);
  p.set_version(version);
  p.set_issued_at_unix_ms(1'700'000'000'000);
  auto* d = p.add_dispatch_keys();
  d->set_name("dispatch");
  d->set_public_key(keys.dispatch.public_key().raw());
  for (int i = 0; i < n_approvers; ++i) {
    auto* a = p.add_approvers();
    a->set_name(absl::StrCat("approver-", i));
    a->set_identity(OperatorId(domain, i));
    a->set_public_key(keys.approvers[i].public_key().raw());
  }
  const uint32_t n = static_cast<uint32_t>(n_approvers);
  auto& t = *p.mutable_approval_thresholds();
  t["disable"] = std::min(1u, n);
  t["revoke"] = std::min(1u, n);
  t["rotate"] = std::min(1u, n);
  t["delete"] = std::min(2u, n);
  t["grant"] = std::min(2u, n);
  p.mutable_default_rate_budget()->set_max_tasks(1000);
  p.mutable_default_rate_budget()->set_window_seconds(3600);
  return p;
}

}  // namespace wb::trust::testing
