#include "common/trust/approvals.h"

#include <cstdio>
#include <random>

#include "common/trust/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::trust {
namespace {

using ::testing::HasSubstr;
using writeback::v1::Approval;
using writeback::v1::DecisionStatement;
using Approvals = google::protobuf::RepeatedPtrField<Approval>;

constexpr char kDomain[] = "writeback.test";
const absl::Time kNow = absl::FromUnixMillis(1'700'000'100'000);

VerifiedPolicy Verified(const writeback::v1::TrustPolicy& p,
                        const crypto::Ed25519PrivateKey& root) {
  auto v = VerifyPolicy(*SignPolicy(p, root), root.public_key(), 1, kNow);
  EXPECT_TRUE(v.ok()) << v.status();
  return *std::move(v);
}

DecisionStatement Statement(uint64_t version, const std::string& requester,
                            const std::string& operation) {
  DecisionStatement st;
  st.set_decision_id(absl::StrCat("d-", version));
  st.set_version(version);
  st.set_requester(requester);
  st.set_connector_instance("pg-main");
  st.set_operation(operation);
  st.add_targets()->set_object(absl::StrCat("svc_", version));
  st.set_reason("stale service account");
  return st;
}

TEST(Approvals, ThresholdMetByDistinctApproversWhoAreNotTheRequester) {
  testing::PolicyKeys keys;
  VerifiedPolicy policy = Verified(testing::MakePolicy(keys, kDomain, 1), keys.root);
  const DecisionStatement st = Statement(1, testing::OperatorId(kDomain, 0), "drop_role");
  const std::string bytes = st.SerializeAsString();
  Approvals a;
  *a.Add() = Approve(bytes, keys.approvers[1], kNow);
  ApprovalCount one = CountApprovals(policy, "postgres", bytes, st, a);
  EXPECT_EQ(one.action_class, "delete");
  EXPECT_EQ(one.required, 2u);
  EXPECT_FALSE(one.satisfied());
  EXPECT_THAT(one.Explain(), HasSubstr("1 of 2 required for class delete"));
  *a.Add() = Approve(bytes, keys.approvers[2], kNow);
  EXPECT_TRUE(CountApprovals(policy, "postgres", bytes, st, a).satisfied());
  // A disable needs one; an operation without a class can never be satisfied.
  DecisionStatement lock = Statement(2, testing::OperatorId(kDomain, 0), "disable_login");
  Approvals b;
  *b.Add() = Approve(lock.SerializeAsString(), keys.approvers[1], kNow);
  EXPECT_TRUE(CountApprovals(policy, "postgres", lock.SerializeAsString(), lock, b).satisfied());
  EXPECT_FALSE(
      CountApprovals(policy, "no_such_type", lock.SerializeAsString(), lock, b).satisfied());
}

// The negative cases, generated over many statements: each case
// holds one approval that must not count next to one that does, against a
// threshold of 2, so the case is accepted only if the bad approval counts.
TEST(Approvals, GeneratedNegativeCasesAreNeverAcceptedAndTheValidCaseIs) {
  testing::PolicyKeys keys;
  // Policy v2 has approvers 0..3; approver 4 was in v1 and has been removed.
  writeback::v1::TrustPolicy p = testing::MakePolicy(keys, kDomain, 2, 5);
  p.mutable_approvers()->RemoveLast();
  VerifiedPolicy policy = Verified(p, keys.root);
  const crypto::Ed25519PrivateKey& removed = keys.approvers[4];
  const crypto::Ed25519PrivateKey forger = crypto::Ed25519PrivateKey::Generate();
  const char* kOps[] = {"drop_role", "delete_user", "kv_destroy"};
  const char* kTypes[] = {"postgres", "redis", "vault"};
  std::mt19937 rng(8);

  enum Kind { kSameKeyTwice, kRequester, kOtherDigest, kRemoved, kForged, kWrongType, kCount };
  const char* kNames[] = {"same key twice",
                          "approver is the requester",
                          "approval of another statement",
                          "approver removed from policy",
                          "forged signature",
                          "signature of another payload type"};
  size_t negatives = 0, accepted_negatives = 0, positives = 0, accepted_positives = 0;
  size_t per_kind[kCount] = {};
  for (uint64_t v = 1; v <= 200; ++v) {
    const int op = static_cast<int>(v % 3);
    const int requester = static_cast<int>(rng() % 4);
    const int good = (requester + 1 + static_cast<int>(rng() % 3)) % 4;  // not the requester
    int other = (good + 1) % 4;
    if (other == requester) other = (other + 1) % 4;
    const DecisionStatement st = Statement(v, testing::OperatorId(kDomain, requester), kOps[op]);
    const std::string bytes = st.SerializeAsString();
    const Approval valid = Approve(bytes, keys.approvers[good], kNow);

    for (int k = 0; k < kCount; ++k) {
      Approvals a;
      *a.Add() = valid;
      Approval bad;
      switch (k) {
        case kSameKeyTwice:
          bad = Approve(bytes, keys.approvers[good], kNow + absl::Seconds(1));
          break;
        case kRequester:
          bad = Approve(bytes, keys.approvers[requester], kNow);
          break;
        case kOtherDigest:
          bad = Approve(Statement(v + 1000, st.requester(), kOps[op]).SerializeAsString(),
                        keys.approvers[other], kNow);
          break;
        case kRemoved:
          bad = Approve(bytes, removed, kNow);
          break;
        case kForged:
          bad = Approve(bytes, forger, kNow);
          bad.set_approver_key_id(keys.approvers[other].key_id());
          break;
        case kWrongType:
          bad = Approve(bytes, keys.approvers[other], kNow);
          bad.set_signature(keys.approvers[other].Sign(
              envelope::SigningInput(writeback::v1::PAYLOAD_TYPE_TASK, bad.statement_digest())));
          break;
      }
      // Both orders: the bad approval first or second.
      for (int order = 0; order < 2; ++order) {
        Approvals case_approvals;
        if (order == 0) {
          *case_approvals.Add() = valid;
          *case_approvals.Add() = bad;
        } else {
          *case_approvals.Add() = bad;
          *case_approvals.Add() = valid;
        }
        ApprovalCount c = CountApprovals(policy, kTypes[op], bytes, st, case_approvals);
        ++negatives;
        ++per_kind[k];
        if (c.satisfied()) {
          ++accepted_negatives;
          ADD_FAILURE() << kNames[k] << " accepted for version " << v << ": " << c.Explain();
        }
        EXPECT_EQ(c.valid, 1u) << kNames[k] << ": " << c.Explain();
      }
    }
    Approvals ok;
    *ok.Add() = valid;
    *ok.Add() = Approve(bytes, keys.approvers[other], kNow);
    ++positives;
    if (CountApprovals(policy, kTypes[op], bytes, st, ok).satisfied()) ++accepted_positives;
  }
  std::printf("approvals: %zu negative cases (", negatives);
  for (int k = 0; k < kCount; ++k) std::printf("%s%s %zu", k ? ", " : "", kNames[k], per_kind[k]);
  std::printf("), accepted %zu; valid cases %zu, accepted %zu\n", accepted_negatives, positives,
              accepted_positives);
  EXPECT_GE(negatives, 1000u);
  EXPECT_EQ(accepted_negatives, 0u);
  EXPECT_EQ(accepted_positives, positives);
}

}  // namespace
}  // namespace wb::trust
