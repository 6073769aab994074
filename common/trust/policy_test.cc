#include "common/trust/policy.h"

#include "common/trust/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::trust {
namespace {

using ::testing::HasSubstr;
using writeback::v1::TrustPolicy;

constexpr char kDomain[] = "writeback.test";
const absl::Time kNow = absl::FromUnixMillis(1'700'000'100'000);

class PolicyTest : public ::testing::Test {
 protected:
  testing::PolicyKeys keys_;
  TrustPolicy policy_ = testing::MakePolicy(keys_, kDomain, 3);
};

TEST_F(PolicyTest, SignedPolicyVerifiesAndExposesKeysApproversThresholdsBudgets) {
  auto env = SignPolicy(policy_, keys_.root);
  ASSERT_TRUE(env.ok()) << env.status();
  auto v = VerifyPolicy(*env, keys_.root.public_key(), 3, kNow);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->version(), 3u);
  EXPECT_NE(v->dispatch_keys.Find(keys_.dispatch.key_id()), nullptr);
  ASSERT_NE(v->FindApprover(keys_.approvers[1].key_id()), nullptr);
  EXPECT_EQ(v->FindApprover(keys_.approvers[1].key_id())->name, "approver-1");
  EXPECT_EQ(v->FindApprover(keys_.dispatch.key_id()), nullptr);
  EXPECT_EQ(v->ThresholdFor("delete"), 2u);
  EXPECT_EQ(v->ThresholdFor("nonsense"), std::nullopt);
  EXPECT_EQ(v->BudgetFor("spiffe://writeback.test/agent/a").max_tasks, 1000u);
  EXPECT_EQ(v->BudgetFor("spiffe://writeback.test/agent/a").window, absl::Hours(1));
}

TEST_F(PolicyTest, PerAgentBudgetReplacesTheDefault) {
  auto& b = (*policy_.mutable_agent_rate_budgets())["spiffe://writeback.test/agent/a"];
  b.set_max_tasks(5);
  b.set_window_seconds(60);
  auto v = VerifyPolicy(*SignPolicy(policy_, keys_.root), keys_.root.public_key(), 1, kNow);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->BudgetFor("spiffe://writeback.test/agent/a").max_tasks, 5u);
  EXPECT_EQ(v->BudgetFor("spiffe://writeback.test/agent/b").max_tasks, 1000u);
}

TEST_F(PolicyTest, OtherSignerTamperingOldVersionAndFutureIssueAreRefused) {
  auto env = *SignPolicy(policy_, keys_.root);
  // Signed by another key (e.g. a stolen dispatch key).
  auto other = *SignPolicy(policy_, keys_.dispatch);
  EXPECT_EQ(VerifyPolicy(other, keys_.root.public_key(), 1, kNow).status().code(),
            absl::StatusCode::kUnauthenticated);
  // One payload byte changed.
  auto tampered = env;
  tampered.mutable_payload()->back() ^= 1;
  EXPECT_EQ(VerifyPolicy(tampered, keys_.root.public_key(), 1, kNow).status().code(),
            absl::StatusCode::kUnauthenticated);
  // Signed as another payload type.
  auto as_task = envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, env.payload(), keys_.root);
  EXPECT_FALSE(VerifyPolicy(as_task, keys_.root.public_key(), 1, kNow).ok());
  // Rollback.
  auto old = VerifyPolicy(env, keys_.root.public_key(), 4, kNow);
  EXPECT_EQ(old.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(old.status().message(), HasSubstr("rollback"));
  // Issued far in the future.
  policy_.set_issued_at_unix_ms(absl::ToUnixMillis(kNow + absl::Hours(2)));
  auto future = VerifyPolicy(*SignPolicy(policy_, keys_.root), keys_.root.public_key(), 1, kNow);
  EXPECT_THAT(future.status().message(), HasSubstr("issued_at_unix_ms"));
}

TEST_F(PolicyTest, UnknownFieldsUnderAValidSignatureAreRefused) {
  std::string payload = policy_.SerializeAsString();
  payload += std::string("\xf8\x07\x01", 3);  // field 127, varint 1
  auto env = envelope::Sign(writeback::v1::PAYLOAD_TYPE_TRUST_POLICY, payload, keys_.root);
  auto v = VerifyPolicy(env, keys_.root.public_key(), 1, kNow);
  EXPECT_THAT(v.status().message(), HasSubstr("unknown fields"));
}

struct BadCase {
  const char* name;
  std::function<void(TrustPolicy&)> edit;
  const char* field;
};

TEST_F(PolicyTest, EveryInvalidFieldIsNamed) {
  const crypto::Ed25519PrivateKey extra = crypto::Ed25519PrivateKey::Generate();
  const std::vector<BadCase> cases = {
      {"no domain", [](TrustPolicy& p) { p.clear_trust_domain(); }, "trust_domain"},
      {"version 0", [](TrustPolicy& p) { p.set_version(0); }, "version"},
      {"no dispatch key", [](TrustPolicy& p) { p.clear_dispatch_keys(); }, "dispatch_keys"},
      {"short key", [](TrustPolicy& p) { p.mutable_dispatch_keys(0)->set_public_key("abc"); },
       "dispatch_keys[0].public_key"},
      {"same dispatch key twice",
       [](TrustPolicy& p) { *p.add_dispatch_keys() = p.dispatch_keys(0); },
       "dispatch_keys[1].public_key"},
      {"approver not an operator",
       [](TrustPolicy& p) {
         p.mutable_approvers(1)->set_identity("spiffe://writeback.test/agent/x");
       },
       "approvers[1].identity"},
      {"approver of another domain",
       [](TrustPolicy& p) {
         p.mutable_approvers(1)->set_identity("spiffe://other.test/operator/x");
       },
       "approvers[1].identity"},
      {"same approver key twice",
       [](TrustPolicy& p) { p.mutable_approvers(2)->set_public_key(p.approvers(0).public_key()); },
       "approvers[2].public_key"},
      {"same identity twice",
       [](TrustPolicy& p) { p.mutable_approvers(2)->set_identity(p.approvers(0).identity()); },
       "approvers[2].identity"},
      {"approver key is the dispatch key",
       [](TrustPolicy& p) {
         p.mutable_approvers(2)->set_public_key(p.dispatch_keys(0).public_key());
       },
       "approvers[2].public_key"},
      {"class missing", [](TrustPolicy& p) { p.mutable_approval_thresholds()->erase("delete"); },
       "approval_thresholds.delete"},
      {"unknown class",
       [](TrustPolicy& p) { (*p.mutable_approval_thresholds())["format_disk"] = 1; },
       "approval_thresholds.format_disk"},
      {"threshold above approvers",
       [](TrustPolicy& p) { (*p.mutable_approval_thresholds())["grant"] = 4; },
       "approval_thresholds.grant"},
      {"no default budget", [](TrustPolicy& p) { p.clear_default_rate_budget(); },
       "default_rate_budget"},
      {"zero tasks", [](TrustPolicy& p) { p.mutable_default_rate_budget()->set_max_tasks(0); },
       "default_rate_budget.max_tasks"},
      {"window too long",
       [](TrustPolicy& p) { p.mutable_default_rate_budget()->set_window_seconds(8 * 86400); },
       "default_rate_budget.window_seconds"},
      {"budget for a non-agent",
       [](TrustPolicy& p) {
         auto& b = (*p.mutable_agent_rate_budgets())["spiffe://writeback.test/operator/o"];
         b.set_max_tasks(1);
         b.set_window_seconds(1);
       },
       "agent_rate_budgets[spiffe://writeback.test/operator/o]"},
  };
  for (const BadCase& c : cases) {
    TrustPolicy p = policy_;
    c.edit(p);
    absl::Status s = ValidatePolicy(p);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("trust_policy.", c.field))) << c.name;
    EXPECT_FALSE(SignPolicy(p, keys_.root).ok()) << c.name;
  }
}

}  // namespace
}  // namespace wb::trust
