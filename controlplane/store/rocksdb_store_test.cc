#include "controlplane/store/rocksdb_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/temp_dir.h"
#include "controlplane/audit/raw_db_testing.h"
#include "controlplane/store/store_contract.h"

namespace wb::controlplane {
namespace {

using store_testing::kAgentA;
using store_testing::MakeDecision;
using store_testing::MakeTask;
using store_testing::StoreContractTest;
using store_testing::StoreFactory;
using ::testing::ElementsAre;

INSTANTIATE_TEST_SUITE_P(RocksDb, StoreContractTest,
                         ::testing::Values(StoreFactory{
                             "rocksdb",
                             [](const std::string& dir) -> std::unique_ptr<Store> {
                               auto s = RocksDbStore::Open(dir + "/db");
                               EXPECT_TRUE(s.ok()) << s.status();
                               return s.ok() ? std::unique_ptr<Store>(std::move(*s)) : nullptr;
                             }}),
                         [](const ::testing::TestParamInfo<StoreFactory>& info) {
                           return info.param.name;
                         });

TEST(RocksDbStoreTest, ReopenKeepsEverything) {
  wb::testing::TempDir dir;
  const std::string path = dir.Sub("db");
  uint64_t v1 = 0;
  {
    auto store = RocksDbStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    v1 = *(*store)->NextDecisionVersion();
    auto d = MakeDecision("d-1", v1, 5000, {"t-1", "t-2"});
    auto t1 = MakeTask("t-1", "d-1", kAgentA, 0);
    auto t2 = MakeTask("t-2", "d-1", kAgentA, 1);
    ASSERT_TRUE((*store)->CreateDecision(d, {t1, t2}, "req-1", {}).ok());
    t1.set_state(writeback::v1::TASK_STATE_VERIFIED);
    ASSERT_TRUE((*store)->SaveProgress(d, false, {t1}, {}).ok());
    writeback::v1::AgentRecord a;
    a.set_agent_id(kAgentA);
    a.set_result_public_key(std::string(32, 'k'));
    ASSERT_TRUE((*store)->PutAgent(a).ok());
  }
  auto store = RocksDbStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  auto d = (*store)->GetDecision("d-1");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->parsed().version(), v1);
  EXPECT_EQ((*store)->GetTask("t-1")->state(), writeback::v1::TASK_STATE_VERIFIED);
  EXPECT_EQ(*(*store)->FindDecisionByRequestId("req-1"), "d-1");
  EXPECT_EQ((*store)->GetAgent(kAgentA)->result_public_key(), std::string(32, 'k'));
  auto outbox = (*store)->PeekOutbox(kAgentA, 10, nullptr);
  ASSERT_TRUE(outbox.ok());
  EXPECT_THAT(*outbox, ElementsAre("t-2"));
  auto expired = (*store)->ExpiredDecisions(6000, 10);
  ASSERT_TRUE(expired.ok());
  EXPECT_THAT(*expired, ElementsAre("d-1"));
  EXPECT_GT(*(*store)->NextDecisionVersion(), v1);
}

// A store written before the state index existed (its keys removed by
// hand) gets it built when it opens, once.
TEST(RocksDbStoreTest, OpenBuildsTheStateIndexOfAnOlderStore) {
  wb::testing::TempDir dir;
  const std::string path = dir.Sub("db");
  {
    auto store = RocksDbStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    for (int v = 1; v <= 12; ++v) {
      auto d = MakeDecision(absl::StrCat("d-", v), v, 5000, {});
      if (v % 3 == 0) d.set_state(writeback::v1::DECISION_STATE_VERIFIED);
      ASSERT_TRUE((*store)->CreateDecision(d, {}, "", {}).ok());
    }
  }
  {
    audit::testing::RawDb raw(path);
    size_t removed = 0;
    for (const char* prefix : {"dstate/", "dsi/", "migration/dstate"}) {
      for (const auto& k : raw.KeysIn("meta", prefix)) {
        raw.DeleteIn("meta", k);
        ++removed;
      }
    }
    EXPECT_EQ(removed, 12u + 12u + 1u);
  }
  auto store = RocksDbStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  auto verified = (*store)->ListDecisions(100, writeback::v1::DECISION_STATE_VERIFIED);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_THAT(store_testing::Ids(*verified), ElementsAre("d-12", "d-9", "d-6", "d-3"));
  auto dispatched = (*store)->ListDecisions(100, writeback::v1::DECISION_STATE_DISPATCHED);
  ASSERT_TRUE(dispatched.ok());
  EXPECT_EQ(dispatched->size(), 8u);
  // The index is maintained from there on.
  auto d = *(*store)->GetDecision("d-1");
  d.set_state(writeback::v1::DECISION_STATE_VERIFIED);
  ASSERT_TRUE((*store)->SaveProgress(d, true, {}, {}).ok());
  EXPECT_EQ((*store)->ListDecisions(100, writeback::v1::DECISION_STATE_VERIFIED)->size(), 5u);
  EXPECT_EQ((*store)->ListDecisions(100, writeback::v1::DECISION_STATE_DISPATCHED)->size(), 7u);
}

TEST(RocksDbStoreTest, VersionCounterNeverGoesBackAcrossRestarts) {
  wb::testing::TempDir dir;
  const std::string path = dir.Sub("db");
  {
    auto store = RocksDbStore::Open(path);
    ASSERT_TRUE(store.ok());
    uint64_t a = *(*store)->NextDecisionVersion();
    uint64_t b = *(*store)->NextDecisionVersion();
    // The higher version is stored first, the lower one second: the counter
    // must stay at the higher one.
    ASSERT_TRUE((*store)->CreateDecision(MakeDecision("d-b", b, 5000, {}), {}, "", {}).ok());
    ASSERT_TRUE((*store)->CreateDecision(MakeDecision("d-a", a, 5000, {}), {}, "", {}).ok());
    // Reserved but never stored: may be skipped, must not matter.
    (void)*(*store)->NextDecisionVersion();
  }
  auto store = RocksDbStore::Open(path);
  ASSERT_TRUE(store.ok());
  auto b = (*store)->GetDecision("d-b");
  ASSERT_TRUE(b.ok());
  EXPECT_GT(*(*store)->NextDecisionVersion(), b->parsed().version());
}

TEST(RocksDbStoreTest, ClosedStoreRefusesCalls) {
  wb::testing::TempDir dir;
  auto store = RocksDbStore::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok());
  (*store)->Close();
  (*store)->Close();  // idempotent
  EXPECT_EQ((*store)->PutAgent(writeback::v1::AgentRecord()).code(),
            absl::StatusCode::kInvalidArgument);
  writeback::v1::AgentRecord a;
  a.set_agent_id(kAgentA);
  EXPECT_EQ((*store)->PutAgent(a).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*store)->GetTask("t").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*store)->NextDecisionVersion().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(RocksDbStoreTest, OpenFailsClearlyOnAnUnusableDirectory) {
  wb::testing::TempDir dir;
  auto store = RocksDbStore::Open("");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(store.status().message()), ::testing::HasSubstr("data_dir"));
}

}  // namespace
}  // namespace wb::controlplane
