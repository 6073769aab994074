// Trust end to end (issue 8): a control plane and an agent that pin an
// offline trust root, a signed policy with approvers and thresholds, the
// approval flow through the real API, and the agent refusing what a
// control plane that skips approvals or budgets sends it.
#include <fstream>
#include <sstream>

#include "agent/agent.h"
#include "common/fs/fs.h"
#include "common/trust/approvals.h"
#include "common/trust/policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/trust_fixture.h"
#include "tests/integration/ssh_test_keys.h"

namespace wb::e2e {
namespace {

using ::testing::HasSubstr;
using writeback::v1::DecisionState;

constexpr char kDomain[] = "writeback.test";

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class TrustE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = crypto::Ed25519PrivateKey::Generate();
    for (int i = 0; i < 3; ++i) approver_keys_.push_back(crypto::Ed25519PrivateKey::Generate());
    key_ = MakeSshKey("leaked@ci");
  }

  // Approvers: admin (who submits), alice, bob (tests/e2e/trust_fixture.h).
  writeback::v1::TrustPolicy Policy(uint64_t version, const std::string& dispatch_pub_file,
                                    uint32_t max_tasks = 100, uint32_t revoke_threshold = 1) {
    return ThreeApproverPolicy(kDomain, version, dispatch_pub_file, approver_keys_, max_tasks,
                               revoke_threshold);
  }

  std::string WriteSigned(const writeback::v1::TrustPolicy& p, const std::string& path) {
    auto env = trust::SignPolicy(p, root_);
    EXPECT_TRUE(env.ok()) << env.status();
    EXPECT_TRUE(fs::WriteFileAtomic(path, env->SerializeAsString()).ok());
    return path;
  }

  // One agent "a1" with an ssh_authorized_keys instance on files under dir.
  // `cp_root`: the control plane pins the root and loads the policy;
  // otherwise it runs without (a control plane that skips approvals).
  absl::StatusOr<std::unique_ptr<Harness>> Start(bool cp_root, uint32_t agent_budget = 100,
                                                 uint32_t agent_revoke_threshold = 1,
                                                 uint32_t cp_budget = 100) {
    keys_dir_ = std::make_unique<testing::TempDir>();
    Harness::Options o;
    writeback::v1::ConnectorInstanceConfig c;
    c.set_name("ssh-main");
    c.set_type("ssh_authorized_keys");
    c.add_allowed_operations("remove_key");
    c.mutable_ssh_authorized_keys()->set_path_template(keys_dir_->path() +
                                                       "/{user}/authorized_keys");
    o.agents["a1"] = {c};
    const std::string root_pub = keys_dir_->Sub("root.pub");
    EXPECT_TRUE(fs::WriteFileAtomic(root_pub, root_.public_key().ToPem()).ok());
    const std::string policy_dir = keys_dir_->path();
    o.tweak_agent = [=, this](writeback::v1::AgentConfig& a) {
      const std::string dispatch_pub = a.dispatch_public_key_files(0);
      a.clear_dispatch_public_key_files();
      a.set_trust_root_public_key_file(root_pub);
      a.set_trust_policy_file(
          WriteSigned(Policy(1, dispatch_pub, agent_budget, agent_revoke_threshold),
                      policy_dir + "/agent-policy.signed"));
    };
    if (cp_root) {
      o.tweak_controlplane = [=, this](writeback::v1::ControlPlaneConfig& cp) {
        // The harness's PKI writes dispatch.pub next to dispatch.key.
        std::string pub = cp.dispatch_key_file();
        pub.replace(pub.size() - 3, 3, "pub");
        cp.set_trust_root_public_key_file(root_pub);
        cp.set_trust_policy_file(
            WriteSigned(Policy(1, pub, cp_budget), policy_dir + "/cp-policy.signed"));
      };
    }
    return Harness::Start(o);
  }

  void PlantKey(const std::string& user) {
    ASSERT_TRUE(fs::MakeDirs(keys_dir_->path() + "/" + user).ok());
    ASSERT_TRUE(
        fs::WriteFileAtomic(keys_dir_->path() + "/" + user + "/authorized_keys", key_.line + "\n")
            .ok());
  }
  std::string Keys(const std::string& user) {
    return ReadAll(keys_dir_->path() + "/" + user + "/authorized_keys");
  }

  grpc::Status Approve(Harness& h, const std::string& id, int approver, int as_operator = 1) {
    auto view = h.Get(id);
    EXPECT_TRUE(view.ok()) << view.status();
    const char* names[] = {"admin", "alice", "bob"};
    auto stub = h.OperatorStub(names[as_operator]);
    EXPECT_TRUE(stub.ok());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    writeback::v1::ApproveDecisionRequest req;
    req.set_decision_id(id);
    *req.mutable_approval() =
        trust::Approve(view->statement_bytes(), approver_keys_[approver], absl::Now());
    writeback::v1::ApproveDecisionResponse resp;
    return (*stub)->ApproveDecision(&ctx, req, &resp);
  }

  crypto::Ed25519PrivateKey root_ = crypto::Ed25519PrivateKey::Generate();
  std::vector<crypto::Ed25519PrivateKey> approver_keys_;
  SshTestKey key_;
  std::unique_ptr<testing::TempDir> keys_dir_;
};

TEST_F(TrustE2eTest, DecisionWaitsForAnApprovalByAnotherApproverThenIsVerified) {
  auto h = Start(/*cp_root=*/true);
  ASSERT_TRUE(h.ok()) << h.status();
  PlantKey("deploy");
  auto r = (*h)->Submit(SshRemoveKeySpec("ssh-main", {"deploy"}, key_.fingerprint));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->state(), writeback::v1::DECISION_STATE_PENDING_APPROVAL);
  auto view = (*h)->Get(r->decision_id());
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->action_class(), "revoke");
  EXPECT_EQ(view->approvals_required(), 1u);
  EXPECT_EQ(view->tasks_size(), 0);

  // The requester (admin) cannot approve their own decision.
  grpc::Status own = Approve(**h, r->decision_id(), /*approver=*/0, /*as_operator=*/0);
  EXPECT_EQ(own.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(own.error_message(), HasSubstr("requested this decision"));
  // A key that is not in the policy.
  {
    auto stub = (*h)->OperatorStub("alice");
    grpc::ClientContext ctx;
    writeback::v1::ApproveDecisionRequest req;
    req.set_decision_id(r->decision_id());
    *req.mutable_approval() =
        trust::Approve(view->statement_bytes(), crypto::Ed25519PrivateKey::Generate(), absl::Now());
    writeback::v1::ApproveDecisionResponse resp;
    grpc::Status s = (*stub)->ApproveDecision(&ctx, req, &resp);
    EXPECT_THAT(s.error_message(), HasSubstr("is not an approver"));
  }
  EXPECT_THAT(Keys("deploy"), HasSubstr(key_.line));

  ASSERT_TRUE(Approve(**h, r->decision_id(), /*approver=*/1).ok());
  auto done = (*h)->WaitTerminal(r->decision_id());
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(DecisionState_Name(done->state()), "DECISION_STATE_VERIFIED") << done->state_detail();
  EXPECT_THAT(Keys("deploy"), ::testing::Not(HasSubstr(key_.line)));
  ASSERT_EQ(done->approvals_size(), 1);
  EXPECT_EQ(done->approvals(0).approver_name(), "alice");
  EXPECT_TRUE(done->approvals(0).counts());
  // The agent holds the policy it was given.
  EXPECT_EQ((*h)->agent("a1")->trust_state(), "trust policy v1");
}

TEST_F(TrustE2eTest, AgentRefusesTasksFromAControlPlaneThatSkipsApprovals) {
  auto h = Start(/*cp_root=*/false);  // the control plane dispatches at once
  ASSERT_TRUE(h.ok()) << h.status();
  PlantKey("deploy");
  auto r = (*h)->Submit(SshRemoveKeySpec("ssh-main", {"deploy"}, key_.fingerprint));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->state(), writeback::v1::DECISION_STATE_DISPATCHED);
  auto done = (*h)->WaitTerminal(r->decision_id());
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->tasks_size(), 1);
  EXPECT_EQ(done->tasks(0).reject_reason(), writeback::v1::REJECT_REASON_INSUFFICIENT_APPROVALS)
      << done->tasks(0).message();
  EXPECT_THAT(Keys("deploy"), HasSubstr(key_.line));  // nothing happened
}

TEST_F(TrustE2eTest, AgentEnforcesItsRateBudgetWhateverTheControlPlaneSends) {
  // The agent's policy lets "revoke" run without approval but allows it one
  // task an hour; the control plane runs without a root, so it neither
  // counts nor waits.
  auto h = Start(/*cp_root=*/false, /*agent_budget=*/1, /*agent_revoke_threshold=*/0);
  ASSERT_TRUE(h.ok()) << h.status();
  PlantKey("deploy");
  PlantKey("build");
  auto first = (*h)->Submit(SshRemoveKeySpec("ssh-main", {"deploy"}, key_.fingerprint));
  ASSERT_TRUE(first.ok()) << first.status();
  auto done = (*h)->WaitTerminal(first->decision_id());
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(DecisionState_Name(done->state()), "DECISION_STATE_VERIFIED") << done->state_detail();

  auto second = (*h)->Submit(SshRemoveKeySpec("ssh-main", {"build"}, key_.fingerprint));
  ASSERT_TRUE(second.ok()) << second.status();
  auto refused = (*h)->WaitTerminal(second->decision_id());
  ASSERT_TRUE(refused.ok()) << refused.status();
  ASSERT_EQ(refused->tasks_size(), 1);
  EXPECT_EQ(refused->tasks(0).reject_reason(), writeback::v1::REJECT_REASON_RATE_LIMITED)
      << refused->tasks(0).message();
  EXPECT_THAT(refused->tasks(0).message(), HasSubstr("rate budget spent"));
  EXPECT_THAT(Keys("build"), HasSubstr(key_.line));  // not applied

  // The count is in the journal: a restarted agent still refuses.
  (*h)->StopAgent("a1");
  ASSERT_TRUE((*h)->StartAgent("a1").ok());
  ASSERT_TRUE((*h)->WaitAgentConnected("a1").ok());
  auto third = (*h)->Submit(SshRemoveKeySpec("ssh-main", {"build"}, key_.fingerprint, "again"));
  ASSERT_TRUE(third.ok()) << third.status();
  auto again = (*h)->WaitTerminal(third->decision_id());
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->tasks_size(), 1);
  EXPECT_EQ(again->tasks(0).reject_reason(), writeback::v1::REJECT_REASON_RATE_LIMITED);
}

TEST_F(TrustE2eTest, ControlPlaneRefusesDecisionsOverTheAgentsBudget) {
  auto h = Start(/*cp_root=*/true, 100, 1, /*cp_budget=*/2);
  ASSERT_TRUE(h.ok()) << h.status();
  auto ok = (*h)->Submit(SshRemoveKeySpec("ssh-main", {"u1", "u2"}, key_.fingerprint));
  ASSERT_TRUE(ok.ok()) << ok.status();
  auto over = (*h)->Submit(SshRemoveKeySpec("ssh-main", {"u3"}, key_.fingerprint));
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted) << over.status();
  EXPECT_THAT(over.status().message(), HasSubstr("rate budget"));
}

TEST_F(TrustE2eTest, NewerPolicyPublishedOnTheApiReachesTheConnectedAgent) {
  auto h = Start(/*cp_root=*/true);
  ASSERT_TRUE(h.ok()) << h.status();
  std::string pub = (*h)->controlplane_config().dispatch_key_file();
  pub.replace(pub.size() - 3, 3, "pub");
  auto v2 = trust::SignPolicy(Policy(2, pub), root_);
  ASSERT_TRUE(v2.ok());
  auto stub = (*h)->OperatorStub("admin");
  grpc::ClientContext ctx;
  writeback::v1::PublishTrustPolicyRequest req;
  *req.mutable_policy() = *v2;
  writeback::v1::PublishTrustPolicyResponse resp;
  ASSERT_TRUE((*stub)->PublishTrustPolicy(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.version(), 2u);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while ((*h)->agent("a1")->trust_state() != "trust policy v2" && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ((*h)->agent("a1")->trust_state(), "trust policy v2");

  // An older version, or one signed by another key, is refused by the API.
  for (auto env : {*trust::SignPolicy(Policy(1, pub), root_),
                   *trust::SignPolicy(Policy(3, pub), crypto::Ed25519PrivateKey::Generate())}) {
    grpc::ClientContext c2;
    writeback::v1::PublishTrustPolicyRequest r2;
    *r2.mutable_policy() = env;
    grpc::Status s = (*stub)->PublishTrustPolicy(&c2, r2, &resp);
    EXPECT_FALSE(s.ok());
  }
}

}  // namespace
}  // namespace wb::e2e
