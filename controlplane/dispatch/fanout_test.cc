// Fan-out cost: a task names its statement by digest for agents that
// announced the feature, so a task's size does not grow with the decision's
// number of targets (issue 16); agents that did not announce it get the
// statement embedded, as before.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/clock/clock.h"
#include "common/crypto/crypto.h"
#include "common/protocol/features.h"
#include "common/testing/temp_dir.h"
#include "common/trust/approvals.h"
#include "controlplane/dispatch/dispatcher.h"
#include "controlplane/dispatch/test_hello.h"
#include "controlplane/store/rocksdb_store.h"

namespace wb::controlplane {
namespace {

constexpr char kAgent[] = "spiffe://writeback.test/agent/a";
constexpr char kOldAgent[] = "spiffe://writeback.test/agent/old";
constexpr char kOperator[] = "spiffe://writeback.test/operator/alice";

class FanOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = RocksDbStore::Open(dir_.Sub("db"));
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    DispatcherOptions o;
    o.controlplane_id = "spiffe://writeback.test/controlplane/cp";
    auto d = Dispatcher::Create(store_.get(), &clock_, dispatch_key_, &sessions_, o);
    ASSERT_TRUE(d.ok()) << d.status();
    d_ = std::move(*d);
    for (auto [instance, agent, feature] :
         {std::tuple{"hosts", kAgent, true}, std::tuple{"old-hosts", kOldAgent, false}}) {
      ASSERT_TRUE(d_->BindInstance(kOperator, instance, agent, "test").ok());
      std::vector<std::string> features;
      if (feature) features.emplace_back(protocol::kFeatureStatementDigest);
      ASSERT_TRUE(
          d_->Hello(agent, MakeTestHello(agent, agent_key_, instance, {"remove_key"}, features))
              .ok());
    }
  }

  std::string Submit(const std::string& instance, int targets) {
    writeback::v1::SubmitDecisionRequest r;
    auto* s = r.mutable_spec();
    s->set_connector_instance(instance);
    s->set_operation("remove_key");
    s->mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint("SHA256:" +
                                                                        std::string(43, 'A'));
    for (int i = 0; i < targets; ++i) s->add_targets()->set_object(absl::StrCat("svc", 100000 + i));
    s->set_reason("stale deploy key");
    auto resp = d_->Submit(kOperator, r);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->decision_id() : "";
  }

  // The largest stored task of the decision, and the decision.
  size_t LargestTask(const std::string& decision_id, writeback::v1::DecisionRecord* d) {
    *d = *store_->GetDecision(decision_id);
    size_t largest = 0;
    for (const auto& id : d->task_ids()) {
      largest = std::max(largest, store_->GetTask(id)->ByteSizeLong());
    }
    return largest;
  }

  wb::testing::TempDir dir_;
  FakeClock clock_;
  crypto::Ed25519PrivateKey dispatch_key_ = crypto::Ed25519PrivateKey::Generate();
  crypto::Ed25519PrivateKey agent_key_ = crypto::Ed25519PrivateKey::Generate();
  SessionRegistry sessions_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<Dispatcher> d_;
};

TEST_F(FanOutTest, TaskSizeDoesNotGrowWithTheDecision) {
  writeback::v1::DecisionRecord small, large;
  const size_t small_task = LargestTask(Submit("hosts", 10), &small);
  const size_t large_task = LargestTask(Submit("hosts", 2000), &large);
  ASSERT_EQ(large.task_ids_size(), 2000);
  std::printf("stored task: %zu bytes (10 targets), %zu bytes (2,000 targets); statement %zu B\n",
              small_task, large_task, large.statement().size());
  // Only the task's own fields differ (index widths, ids): the bound
  // is 1.5x; the statement (all targets) is in none of them.
  EXPECT_LE(large_task * 2, small_task * 3);
  EXPECT_LT(large_task, large.statement().size() / 10);

  // Each task names the statement by digest and carries none of it.
  auto t = store_->GetTask(large.task_ids(1999));
  ASSERT_TRUE(t.ok());
  writeback::v1::Task task;
  ASSERT_TRUE(task.ParseFromString(t->signed_task().payload()));
  EXPECT_TRUE(task.statement().empty());
  EXPECT_EQ(task.statement_digest(), trust::StatementDigest(large.statement()));
  EXPECT_EQ(t->statement_digest(), task.statement_digest());
  EXPECT_EQ(task.target().object(), "svc101999");
  auto bytes = d_->StatementOf(large.parsed().decision_id(), task.statement_digest());
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, large.statement());
  EXPECT_FALSE(d_->StatementOf(large.parsed().decision_id(), crypto::Sha256("other")).ok());
}

TEST_F(FanOutTest, AgentWithoutTheFeatureGetsTheStatementInEveryTask) {
  writeback::v1::DecisionRecord d;
  LargestTask(Submit("old-hosts", 3), &d);
  for (const auto& id : d.task_ids()) {
    auto t = store_->GetTask(id);
    ASSERT_TRUE(t.ok());
    writeback::v1::Task task;
    ASSERT_TRUE(task.ParseFromString(t->signed_task().payload()));
    EXPECT_EQ(task.statement(), d.statement());
    EXPECT_TRUE(task.statement_digest().empty());
    EXPECT_TRUE(t->statement_digest().empty());
  }
}

}  // namespace
}  // namespace wb::controlplane
