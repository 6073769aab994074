// Test helper: the trust policy the trust end-to-end tests use — approvers
// admin, alice and bob (operators of `domain`), the control plane's dispatch
// key, thresholds disable/rotate 1, revoke `revoke_threshold`, delete and
// grant 2, a default budget of `max_tasks` an hour.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto/crypto.h"
#include "gtest/gtest.h"
#include "writeback/v1/trust.pb.h"

namespace wb::e2e {

inline writeback::v1::TrustPolicy ThreeApproverPolicy(
    const std::string& domain, uint64_t version, const std::string& dispatch_pub_file,
    const std::vector<crypto::Ed25519PrivateKey>& approver_keys, uint32_t max_tasks = 100,
    uint32_t revoke_threshold = 1) {
  writeback::v1::TrustPolicy p;
  p.set_trust_domain(domain);
  p.set_version(version);
  p.set_issued_at_unix_ms(absl::ToUnixMillis(absl::Now()));
  auto dk = crypto::Ed25519PublicKey::LoadFile(dispatch_pub_file);
  EXPECT_TRUE(dk.ok()) << dk.status();
  auto* d = p.add_dispatch_keys();
  d->set_name("cp");
  d->set_public_key(dk.ok() ? dk->raw() : std::string());
  const char* names[] = {"admin", "alice", "bob"};
  for (int i = 0; i < 3 && i < static_cast<int>(approver_keys.size()); ++i) {
    auto* a = p.add_approvers();
    a->set_name(names[i]);
    a->set_identity(absl::StrCat("spiffe://", domain, "/operator/", names[i]));
    a->set_public_key(approver_keys[static_cast<size_t>(i)].public_key().raw());
  }
  auto& t = *p.mutable_approval_thresholds();
  t["disable"] = 1;
  t["revoke"] = revoke_threshold;
  t["rotate"] = 1;
  t["delete"] = 2;
  t["grant"] = 2;
  p.mutable_default_rate_budget()->set_max_tasks(max_tasks);
  p.mutable_default_rate_budget()->set_window_seconds(3600);
  return p;
}

}  // namespace wb::e2e
