// The contract test suite of controlplane::Store, run against every
// implementation. An implementation's test file instantiates it:
//   INSTANTIATE_TEST_SUITE_P(RocksDb, StoreContractTest,
//                            ::testing::Values(StoreFactory{...}));
// Test-only header.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/audit/verifier.h"
#include "common/crypto/crypto.h"
#include "common/testing/temp_dir.h"
#include "controlplane/store/store.h"

namespace wb::controlplane::store_testing {

struct StoreFactory {
  std::string name;
  // Opens a fresh store whose files (if any) live under `dir`.
  std::function<std::unique_ptr<Store>(const std::string& dir)> open;
};

inline writeback::v1::DecisionRecord MakeDecision(const std::string& id, uint64_t version,
                                                  int64_t expires_ms,
                                                  const std::vector<std::string>& task_ids) {
  writeback::v1::DecisionRecord d;
  d.mutable_parsed()->set_decision_id(id);
  d.mutable_parsed()->set_version(version);
  d.mutable_parsed()->set_expires_at_unix_ms(expires_ms);
  d.set_statement(d.parsed().SerializeAsString());
  d.set_state(writeback::v1::DECISION_STATE_DISPATCHED);
  for (const auto& t : task_ids) d.add_task_ids(t);
  return d;
}

inline writeback::v1::AuditEvent MakeEvent(writeback::v1::AuditEventKind kind,
                                           const std::string& detail) {
  writeback::v1::AuditEvent e;
  e.set_kind(kind);
  e.set_actor("spiffe://writeback.test/operator/alice");
  e.set_time_unix_ms(1000);
  e.set_detail(detail);
  return e;
}

// Every stored chain entry, decoded (fails the test on a decoding error).
inline std::vector<writeback::v1::AuditEvent> ChainEvents(Store* store) {
  std::vector<writeback::v1::AuditEvent> out;
  absl::Status s = store->ScanAudit(1, [&](uint64_t seq, absl::string_view value) {
    writeback::v1::AuditEntry entry;
    writeback::v1::AuditEvent e;
    EXPECT_TRUE(entry.ParseFromArray(value.data(), static_cast<int>(value.size()))) << seq;
    EXPECT_TRUE(e.ParseFromString(entry.event())) << seq;
    out.push_back(e);
    return true;
  });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

inline audit::VerifyReport VerifyStore(Store* store,
                                       std::optional<audit::ChainHead> anchor = std::nullopt) {
  return audit::VerifyChain(
      [store](uint64_t from, const audit::EntryFn& fn) { return store->ScanAudit(from, fn); },
      std::move(anchor));
}

inline writeback::v1::TaskRecord MakeTask(const std::string& id, const std::string& decision_id,
                                          const std::string& agent, uint32_t index) {
  writeback::v1::TaskRecord t;
  t.set_task_id(id);
  t.set_decision_id(decision_id);
  t.set_agent_id(agent);
  t.set_target_index(index);
  t.set_state(writeback::v1::TASK_STATE_QUEUED);
  t.mutable_signed_task()->set_payload(absl::StrCat("payload-", id));
  return t;
}

class StoreContractTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override { store_ = GetParam().open(dir_.path()); }
  std::vector<std::string> Outbox(const std::string& agent) {
    auto r = store_->PeekOutbox(agent, 1000, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<std::string>{};
  }

  wb::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

inline const char kAgentA[] = "spiffe://writeback.test/agent/a";
inline const char kAgentB[] = "spiffe://writeback.test/agent/b";

TEST_P(StoreContractTest, CreateThenReadBack) {
  auto d = MakeDecision("d-1", 1, 5000, {"t-1", "t-2"});
  std::vector<writeback::v1::TaskRecord> tasks = {MakeTask("t-1", "d-1", kAgentA, 0),
                                                  MakeTask("t-2", "d-1", kAgentA, 1)};
  ASSERT_TRUE(store_->CreateDecision(d, tasks, "req-1", {}).ok());

  auto got = store_->GetDecision("d-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->statement(), d.statement());
  EXPECT_EQ(got->task_ids_size(), 2);
  auto t = store_->GetTask("t-2");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->signed_task().payload(), "payload-t-2");
  auto req = store_->FindDecisionByRequestId("req-1");
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(*req, "d-1");
  EXPECT_THAT(Outbox(kAgentA), ::testing::ElementsAre("t-1", "t-2"));
  EXPECT_TRUE(Outbox(kAgentB).empty());
}

TEST_P(StoreContractTest, MissingRecordsAreNotFoundNamingTheId) {
  auto d = store_->GetDecision("d-nope");
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(d.status().message()), ::testing::HasSubstr("d-nope"));
  EXPECT_EQ(store_->GetTask("t-nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetAgent("a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->FindDecisionByRequestId("r").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreContractTest, OutboxIsInDecisionOrderPerAgent) {
  // Created out of version order on purpose.
  ASSERT_TRUE(store_
                  ->CreateDecision(
                      MakeDecision("d-9", 9, 5000, {"t-9a", "t-9b"}),
                      {MakeTask("t-9a", "d-9", kAgentA, 0), MakeTask("t-9b", "d-9", kAgentB, 1)},
                      "", {})
                  .ok());
  ASSERT_TRUE(store_
                  ->CreateDecision(
                      MakeDecision("d-3", 3, 5000, {"t-3b", "t-3a"}),
                      {MakeTask("t-3b", "d-3", kAgentA, 1), MakeTask("t-3a", "d-3", kAgentA, 0)},
                      "", {})
                  .ok());
  EXPECT_THAT(Outbox(kAgentA), ::testing::ElementsAre("t-3a", "t-3b", "t-9a"));
  EXPECT_THAT(Outbox(kAgentB), ::testing::ElementsAre("t-9b"));

  auto skipped = store_->PeekOutbox(kAgentA, 1, [](absl::string_view id) { return id == "t-3a"; });
  ASSERT_TRUE(skipped.ok());
  EXPECT_THAT(*skipped, ::testing::ElementsAre("t-3b"));
}

TEST_P(StoreContractTest, FinishedTasksLeaveTheOutboxAndFinishedDecisionsTheExpiryIndex) {
  auto d = MakeDecision("d-1", 1, 5000, {"t-1", "t-2"});
  auto t1 = MakeTask("t-1", "d-1", kAgentA, 0);
  auto t2 = MakeTask("t-2", "d-1", kAgentA, 1);
  ASSERT_TRUE(store_->CreateDecision(d, {t1, t2}, "", {}).ok());
  auto expired = store_->ExpiredDecisions(5001, 100);
  ASSERT_TRUE(expired.ok());
  EXPECT_THAT(*expired, ::testing::ElementsAre("d-1"));
  expired = store_->ExpiredDecisions(5000, 100);  // strictly before
  ASSERT_TRUE(expired.ok());
  EXPECT_TRUE(expired->empty());

  t1.set_state(writeback::v1::TASK_STATE_DELIVERED);
  ASSERT_TRUE(store_->SaveProgress(d, false, {t1}, {}).ok());
  EXPECT_THAT(Outbox(kAgentA), ::testing::ElementsAre("t-1", "t-2"));

  t1.set_state(writeback::v1::TASK_STATE_VERIFIED);
  ASSERT_TRUE(store_->SaveProgress(d, false, {t1}, {}).ok());
  EXPECT_THAT(Outbox(kAgentA), ::testing::ElementsAre("t-2"));
  EXPECT_EQ(store_->GetTask("t-1")->state(), writeback::v1::TASK_STATE_VERIFIED);

  t2.set_state(writeback::v1::TASK_STATE_FAILED);
  d.set_state(writeback::v1::DECISION_STATE_FAILED);
  d.set_state_detail("1 of 2 tasks failed");
  ASSERT_TRUE(store_->SaveProgress(d, true, {t2}, {}).ok());
  EXPECT_TRUE(Outbox(kAgentA).empty());
  EXPECT_EQ(store_->GetDecision("d-1")->state_detail(), "1 of 2 tasks failed");
  expired = store_->ExpiredDecisions(999999, 100);
  ASSERT_TRUE(expired.ok());
  EXPECT_TRUE(expired->empty());
}

TEST_P(StoreContractTest, TaskCountsTravelWithEveryTaskWriteAndHeadsFollowTheTasks) {
  auto d = MakeDecision("d-1", 1, 5000, {"t-1", "t-2"});
  d.mutable_task_counts()->set_unfinished(2);
  auto t1 = MakeTask("t-1", "d-1", kAgentA, 0);
  auto t2 = MakeTask("t-2", "d-1", kAgentA, 1);
  ASSERT_TRUE(store_->CreateDecision(d, {t1, t2}, "", {}).ok());
  EXPECT_EQ(store_->GetDecision("d-1")->task_counts().unfinished(), 2u);
  auto h = store_->GetTaskHead("t-1");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->state(), writeback::v1::TASK_STATE_QUEUED);
  EXPECT_FALSE(h->offline());
  EXPECT_FALSE(h->covered());
  EXPECT_EQ(store_->GetTaskHead("t-nope").status().code(), absl::StatusCode::kNotFound);

  // Only the counts change with the task: the decision itself is not
  // rewritten, its counts are.
  t1.set_state(writeback::v1::TASK_STATE_VERIFIED);
  d.mutable_task_counts()->set_unfinished(1);
  d.mutable_task_counts()->set_verified(1);
  d.set_state_detail("not written");
  ASSERT_TRUE(store_->SaveProgress(d, false, {t1}, {}).ok());
  auto got = store_->GetDecision("d-1");
  EXPECT_EQ(got->task_counts().unfinished(), 1u);
  EXPECT_EQ(got->task_counts().verified(), 1u);
  EXPECT_EQ(got->state_detail(), "");
  EXPECT_EQ(store_->GetTaskHead("t-1")->state(), writeback::v1::TASK_STATE_VERIFIED);

  // Taken over (covered) and exported (offline) show in the heads.
  t2.set_state(writeback::v1::TASK_STATE_SUPERSEDED);
  t2.set_covered_by_task_id("t-9");
  d.mutable_task_counts()->set_unfinished(0);
  d.mutable_task_counts()->set_covered(1);
  ASSERT_TRUE(store_->SaveProgressBatch({DecisionUpdate{d, false, {t2}}}, {}).ok());
  EXPECT_TRUE(store_->GetTaskHead("t-2")->covered());
  EXPECT_EQ(store_->GetDecision("d-1")->task_counts().covered(), 1u);
  t2.set_state(writeback::v1::TASK_STATE_QUEUED);
  t2.clear_covered_by_task_id();
  t2.set_bundle_id("b-1");
  ASSERT_TRUE(store_->SaveProgress(d, false, {t2}, {}).ok());
  EXPECT_TRUE(store_->GetTaskHead("t-2")->offline());
  EXPECT_FALSE(store_->GetTaskHead("t-2")->covered());

  // A decision written without counts reads back without them.
  d.clear_task_counts();
  ASSERT_TRUE(store_->SaveProgress(d, true, {}, {}).ok());
  EXPECT_FALSE(store_->GetDecision("d-1")->has_task_counts());
}

TEST_P(StoreContractTest, OutboxScansSeeEntriesPutBackBeforeTheFinishedFront) {
  // Three decisions; the first two finish (the outbox's front empties),
  // then a task of the first comes back (a covered task given back).
  std::vector<writeback::v1::DecisionRecord> ds;
  std::vector<writeback::v1::TaskRecord> ts;
  for (int v = 1; v <= 3; ++v) {
    const std::string id = absl::StrCat("d-", v);
    ds.push_back(MakeDecision(id, v, 5000, {absl::StrCat("t-", v)}));
    ts.push_back(MakeTask(absl::StrCat("t-", v), id, kAgentA, 0));
    ASSERT_TRUE(store_->CreateDecision(ds.back(), {ts.back()}, "", {}).ok());
  }
  EXPECT_THAT(Outbox(kAgentA), ::testing::ElementsAre("t-1", "t-2", "t-3"));
  for (int i = 0; i < 2; ++i) {
    ts[i].set_state(writeback::v1::TASK_STATE_VERIFIED);
    ASSERT_TRUE(store_->SaveProgress(ds[i], false, {ts[i]}, {}).ok());
    EXPECT_EQ(Outbox(kAgentA).front(), absl::StrCat("t-", i + 2));
  }
  ts[0].set_state(writeback::v1::TASK_STATE_QUEUED);
  ASSERT_TRUE(store_->SaveProgress(ds[0], false, {ts[0]}, {}).ok());
  EXPECT_THAT(Outbox(kAgentA), ::testing::ElementsAre("t-1", "t-3"));
  // Emptied, then filled again.
  for (int i : {0, 2}) {
    ts[i].set_state(writeback::v1::TASK_STATE_CANCELED);
    ASSERT_TRUE(store_->SaveProgress(ds[i], false, {ts[i]}, {}).ok());
  }
  EXPECT_TRUE(Outbox(kAgentA).empty());
  EXPECT_TRUE(Outbox(kAgentA).empty());
  ts[1].set_state(writeback::v1::TASK_STATE_QUEUED);
  ASSERT_TRUE(store_->SaveProgress(ds[1], false, {ts[1]}, {}).ok());
  EXPECT_THAT(Outbox(kAgentA), ::testing::ElementsAre("t-2"));
  EXPECT_TRUE(Outbox(kAgentB).empty());
}

TEST_P(StoreContractTest, SaveProgressRefusesTasksOfAnotherDecision) {
  auto d = MakeDecision("d-1", 1, 5000, {"t-1"});
  ASSERT_TRUE(store_->CreateDecision(d, {MakeTask("t-1", "d-1", kAgentA, 0)}, "", {}).ok());
  auto s = store_->SaveProgress(d, false, {MakeTask("t-x", "d-2", kAgentA, 0)}, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetTask("t-x").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreContractTest, SeveralDecisionsChangeInOneWrite) {
  // An older decision's task taken over by a newer one, in the write that
  // creates the newer one; then a result of the newer task finishing both.
  auto older = MakeDecision("d-old", 1, 9000, {"t-old"});
  auto old_task = MakeTask("t-old", "d-old", "agent-a", 0);
  ASSERT_TRUE(store_->CreateDecision(older, {old_task}, "", {}).ok());
  auto newer = MakeDecision("d-new", 2, 9000, {"t-new"});
  auto new_task = MakeTask("t-new", "d-new", "agent-a", 0);
  old_task.set_state(writeback::v1::TASK_STATE_SUPERSEDED);
  old_task.set_covered_by_task_id("t-new");
  ASSERT_TRUE(
      store_
          ->CreateDecision(
              newer, {new_task}, "", {DecisionUpdate{older, false, {old_task}}},
              {MakeEvent(writeback::v1::AUDIT_EVENT_KIND_DECISION_SUBMITTED, "with a take-over")})
          .ok());
  EXPECT_EQ(store_->GetTask("t-old")->covered_by_task_id(), "t-new");
  EXPECT_THAT(Outbox("agent-a"), ::testing::ElementsAre("t-new"));

  new_task.set_state(writeback::v1::TASK_STATE_VERIFIED);
  newer.set_state(writeback::v1::DECISION_STATE_VERIFIED);
  older.set_state(writeback::v1::DECISION_STATE_VERIFIED);
  ASSERT_TRUE(
      store_
          ->SaveProgressBatch(
              {DecisionUpdate{newer, true, {new_task}}, DecisionUpdate{older, true, {}}}, {})
          .ok());
  EXPECT_EQ(store_->GetDecision("d-old")->state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(store_->GetDecision("d-new")->state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_TRUE(Outbox("agent-a").empty());
  auto expired = store_->ExpiredDecisions(10000, 10);
  ASSERT_TRUE(expired.ok());
  EXPECT_TRUE(expired->empty());

  // All or nothing: a task under the wrong decision refuses the whole batch.
  older.set_state(writeback::v1::DECISION_STATE_FAILED);
  auto s = store_->SaveProgressBatch(
      {DecisionUpdate{older, true, {}}, DecisionUpdate{newer, false, {old_task}}}, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetDecision("d-old")->state(), writeback::v1::DECISION_STATE_VERIFIED);
}

TEST_P(StoreContractTest, InstanceBindingsRoundTripWithTheirAuditEvents) {
  auto none = store_->ListBindings();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  writeback::v1::InstanceBinding b;
  b.set_instance("ssh-a");
  b.set_agent_id("spiffe://writeback.test/agent/a1");
  b.set_bound_by("spiffe://writeback.test/operator/alice");
  ASSERT_TRUE(
      store_->PutBinding(b, {MakeEvent(writeback::v1::AUDIT_EVENT_KIND_INSTANCE_BOUND, "bound")})
          .ok());
  b.set_previous_agent_id(b.agent_id());
  b.clear_agent_id();
  ASSERT_TRUE(
      store_
          ->PutBinding(b, {MakeEvent(writeback::v1::AUDIT_EVENT_KIND_INSTANCE_UNBOUND, "unbound")})
          .ok());
  writeback::v1::InstanceBinding other;
  other.set_instance("db");
  other.set_agent_id("spiffe://writeback.test/agent/a2");
  ASSERT_TRUE(store_->PutBinding(other, {}).ok());
  auto all = store_->ListBindings();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].instance(), "db");
  EXPECT_EQ((*all)[1].instance(), "ssh-a");
  EXPECT_TRUE((*all)[1].agent_id().empty());
  EXPECT_EQ((*all)[1].previous_agent_id(), "spiffe://writeback.test/agent/a1");
  auto events = ChainEvents(store_.get());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind(), writeback::v1::AUDIT_EVENT_KIND_INSTANCE_BOUND);
  EXPECT_EQ(events[1].kind(), writeback::v1::AUDIT_EVENT_KIND_INSTANCE_UNBOUND);
  writeback::v1::InstanceBinding nameless;
  EXPECT_EQ(store_->PutBinding(nameless, {}).code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreContractTest, ListDecisionsNewestFirstWithLimitAndFilter) {
  for (int v = 1; v <= 5; ++v) {
    auto d = MakeDecision(absl::StrCat("d-", v), v, 5000, {});
    if (v % 2 == 0) d.set_state(writeback::v1::DECISION_STATE_VERIFIED);
    ASSERT_TRUE(store_->CreateDecision(d, {}, "", {}).ok());
  }
  auto all = store_->ListDecisions(100, writeback::v1::DECISION_STATE_UNSPECIFIED);
  ASSERT_TRUE(all.ok());
  std::vector<std::string> ids;
  for (const auto& d : *all) ids.push_back(d.parsed().decision_id());
  EXPECT_THAT(ids, ::testing::ElementsAre("d-5", "d-4", "d-3", "d-2", "d-1"));

  auto two = store_->ListDecisions(2, writeback::v1::DECISION_STATE_UNSPECIFIED);
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].parsed().decision_id(), "d-5");

  auto verified = store_->ListDecisions(100, writeback::v1::DECISION_STATE_VERIFIED);
  ASSERT_TRUE(verified.ok());
  ids.clear();
  for (const auto& d : *verified) ids.push_back(d.parsed().decision_id());
  EXPECT_THAT(ids, ::testing::ElementsAre("d-4", "d-2"));
}

// Ids of `list`, in order.
inline std::vector<std::string> Ids(const std::vector<writeback::v1::DecisionRecord>& list) {
  std::vector<std::string> ids;
  for (const auto& d : list) ids.push_back(d.parsed().decision_id());
  return ids;
}

// Every page of `q` (limit = page size), calling `between` after each page.
inline std::vector<std::string> WalkPages(Store* store, DecisionQuery q,
                                          const std::function<void(int page)>& between) {
  std::vector<std::string> seen;
  for (int page = 0;; ++page) {
    auto list = store->QueryDecisions(q);
    EXPECT_TRUE(list.ok()) << list.status();
    if (!list.ok() || list->empty()) break;
    EXPECT_LE(list->size(), q.limit);
    for (const auto& d : *list) {
      EXPECT_TRUE(q.before_version == 0 || d.parsed().version() < q.before_version);
      seen.push_back(d.parsed().decision_id());
    }
    q.before_version = list->back().parsed().version();
    if (between) between(page);
    if (page > 1000) {
      ADD_FAILURE() << "paging does not end";
      break;
    }
  }
  return seen;
}

TEST_P(StoreContractTest, PagingWalksEveryDecisionOnceWhileDecisionsAreAddedAndChanged) {
  std::vector<writeback::v1::DecisionRecord> made;
  for (int v = 1; v <= 25; ++v) {
    made.push_back(MakeDecision(absl::StrCat("d-", v), v, 5000, {}));
    ASSERT_TRUE(store_->CreateDecision(made.back(), {}, "", {}).ok());
  }
  int next = 26;
  DecisionQuery q;
  q.limit = 4;
  auto seen = WalkPages(store_.get(), q, [&](int page) {
    // A new decision (newer than the walk's start) and a state change of one
    // already listed and one not yet listed, between every two pages.
    auto d = MakeDecision(absl::StrCat("d-", next), next, 5000, {});
    ++next;
    ASSERT_TRUE(store_->CreateDecision(d, {}, "", {}).ok());
    for (int i : {24 - 4 * page, 2 + page}) {
      if (i < 0 || i >= 25) continue;
      made[i].set_state(writeback::v1::DECISION_STATE_VERIFIED);
      ASSERT_TRUE(store_->SaveProgress(made[i], true, {}, {}).ok());
    }
  });
  std::vector<std::string> want;
  for (int v = 25; v >= 1; --v) want.push_back(absl::StrCat("d-", v));
  EXPECT_EQ(seen, want);  // each once, newest first, none of the newer ones
}

TEST_P(StoreContractTest, StateIndexFollowsEveryStateChangeAndSurvivesReopen) {
  using writeback::v1::DecisionState;
  const std::vector<DecisionState> states = {
      writeback::v1::DECISION_STATE_PENDING_APPROVAL, writeback::v1::DECISION_STATE_DISPATCHED,
      writeback::v1::DECISION_STATE_VERIFIED, writeback::v1::DECISION_STATE_FAILED,
      writeback::v1::DECISION_STATE_DRIFTED};
  std::vector<writeback::v1::DecisionRecord> made;
  for (int v = 1; v <= 30; ++v) {
    made.push_back(MakeDecision(absl::StrCat("d-", v), v, 5000, {}));
    made.back().set_state(states[v % states.size()]);
    ASSERT_TRUE(store_->CreateDecision(made.back(), {}, "", {}).ok());
  }
  // Brute force: the decisions in `wanted` states, newest first.
  auto expect_index = [&](const std::string& when) {
    for (DecisionState st : states) {
      std::vector<std::string> want;
      for (auto it = made.rbegin(); it != made.rend(); ++it) {
        if (it->state() == st) want.push_back(it->parsed().decision_id());
      }
      auto got = store_->ListDecisions(1000, st);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(Ids(*got), want) << when << ": " << writeback::v1::DecisionState_Name(st);
      // The same by pages of 3, and as part of a two-state query.
      DecisionQuery q;
      q.states = {st};
      q.limit = 3;
      EXPECT_EQ(WalkPages(store_.get(), q, nullptr), want) << when;
    }
    DecisionQuery open;
    open.states = {writeback::v1::DECISION_STATE_DISPATCHED,
                   writeback::v1::DECISION_STATE_PENDING_APPROVAL};
    open.limit = 4;
    std::vector<std::string> want;
    for (auto it = made.rbegin(); it != made.rend(); ++it) {
      if (IsOpenDecisionState(it->state())) want.push_back(it->parsed().decision_id());
    }
    EXPECT_EQ(WalkPages(store_.get(), open, nullptr), want) << when;
  };
  expect_index("created");

  // SaveProgress, SaveProgressBatch, CreateDecision's `others`, unchanged
  // rewrites, and a decision changed twice in one batch.
  made[0].set_state(writeback::v1::DECISION_STATE_VERIFIED);
  ASSERT_TRUE(store_->SaveProgress(made[0], true, {}, {}).ok());
  ASSERT_TRUE(store_->SaveProgress(made[1], true, {}, {}).ok());  // same state again
  std::vector<DecisionUpdate> batch;
  for (int i : {2, 3, 4, 2}) {
    made[i].set_state(i == 2 && !batch.empty() ? writeback::v1::DECISION_STATE_DRIFTED
                                               : writeback::v1::DECISION_STATE_FAILED);
    batch.push_back({made[i], true, {}});
  }
  ASSERT_TRUE(store_->SaveProgressBatch(batch, {}).ok());
  made[5].set_state(writeback::v1::DECISION_STATE_VERIFIED);
  made.push_back(MakeDecision("d-31", 31, 5000, {}));
  ASSERT_TRUE(store_->CreateDecision(made.back(), {}, "", {{made[5], true, {}}}, {}).ok());
  expect_index("changed");

  // Concurrent writers changing their own decisions (group commit).
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 10; ++round) {
        for (size_t i = static_cast<size_t>(t); i < made.size(); i += 4) {
          made[i].set_state(states[(i + static_cast<size_t>(round)) % states.size()]);
          EXPECT_TRUE(store_->SaveProgress(made[i], true, {}, {}).ok());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  expect_index("concurrent");

  store_.reset();
  store_ = GetParam().open(dir_.path());
  ASSERT_NE(store_, nullptr);
  expect_index("reopened");
}

TEST_P(StoreContractTest, VersionsIncrease) {
  auto a = store_->NextDecisionVersion();
  auto b = store_->NextDecisionVersion();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_GT(*b, *a);
}

TEST_P(StoreContractTest, AgentsRoundTrip) {
  writeback::v1::AgentRecord a;
  a.set_agent_id(kAgentA);
  a.set_result_public_key(std::string(32, 'k'));
  (*a.mutable_labels())["site"] = "paris";
  ASSERT_TRUE(store_->PutAgent(a).ok());
  a.set_version("1.2");
  ASSERT_TRUE(store_->PutAgent(a).ok());
  writeback::v1::AgentRecord b;
  b.set_agent_id(kAgentB);
  ASSERT_TRUE(store_->PutAgent(b).ok());

  auto got = store_->GetAgent(kAgentA);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version(), "1.2");
  EXPECT_EQ(got->labels().at("site"), "paris");
  auto all = store_->ListAgents();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
}

TEST_P(StoreContractTest, ConcurrentWritersAllLand) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 20;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([this, i] {
      for (int j = 0; j < kPerThread; ++j) {
        auto v = store_->NextDecisionVersion();
        ASSERT_TRUE(v.ok());
        std::string id = absl::StrCat("d-", i, "-", j);
        std::string tid = absl::StrCat("t-", i, "-", j);
        ASSERT_TRUE(store_
                        ->CreateDecision(MakeDecision(id, *v, 5000, {tid}),
                                         {MakeTask(tid, id, kAgentA, 0)}, "", {})
                        .ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Outbox(kAgentA).size(), static_cast<size_t>(kThreads * kPerThread));
  auto all = store_->ListDecisions(1000, writeback::v1::DECISION_STATE_UNSPECIFIED);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), static_cast<size_t>(kThreads * kPerThread));
}

// ---- The audit chain ----

TEST_P(StoreContractTest, AuditEventsAreAppendedWithTheWritesTheyDescribe) {
  using writeback::v1::AUDIT_EVENT_KIND_DECISION_SUBMITTED;
  using writeback::v1::AUDIT_EVENT_KIND_TASK_STATE_CHANGED;
  using writeback::v1::AUDIT_EVENT_KIND_TRUST_POLICY_CHANGED;
  auto head = store_->AuditHead();
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->seq, 0u);
  EXPECT_TRUE(VerifyStore(store_.get()).ok);

  auto d = MakeDecision("d-1", 1, 5000, {"t-1"});
  auto t = MakeTask("t-1", "d-1", kAgentA, 0);
  ASSERT_TRUE(store_
                  ->CreateDecision(d, {t}, "",
                                   {MakeEvent(AUDIT_EVENT_KIND_DECISION_SUBMITTED, "one"),
                                    MakeEvent(AUDIT_EVENT_KIND_DECISION_SUBMITTED, "two")})
                  .ok());
  t.set_state(writeback::v1::TASK_STATE_DELIVERED);
  ASSERT_TRUE(
      store_->SaveProgress(d, false, {t}, {MakeEvent(AUDIT_EVENT_KIND_TASK_STATE_CHANGED, "three")})
          .ok());
  // Events alone; and a SaveProgress with nothing but an event.
  ASSERT_TRUE(store_->AppendAudit({MakeEvent(AUDIT_EVENT_KIND_TRUST_POLICY_CHANGED, "four")}).ok());
  ASSERT_TRUE(
      store_->SaveProgress(d, false, {}, {MakeEvent(AUDIT_EVENT_KIND_TASK_STATE_CHANGED, "five")})
          .ok());
  ASSERT_TRUE(store_->AppendAudit({}).ok());  // nothing

  auto events = ChainEvents(store_.get());
  ASSERT_EQ(events.size(), 5u);
  std::string prev(32, '\0');
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].seq(), i + 1);
    EXPECT_EQ(events[i].detail(),
              std::vector<std::string>({"one", "two", "three", "four", "five"})[i]);
    EXPECT_EQ(events[i].prev_hash(), prev) << "seq " << i + 1;
    prev = audit::EntryHash(events[i].SerializeAsString());
  }
  head = store_->AuditHead();
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq, 5u);
  EXPECT_EQ(head->hash, prev);
  auto report = VerifyStore(store_.get(), head.ok() ? std::optional(*head) : std::nullopt);
  EXPECT_TRUE(report.ok) << report.broken_reason;
  EXPECT_EQ(report.entries_checked, 5u);
  EXPECT_EQ(report.head.seq, 5u);
  EXPECT_TRUE(report.anchor_checked);

  // Scans start where asked and stop when told.
  std::vector<uint64_t> seqs;
  ASSERT_TRUE(store_
                  ->ScanAudit(3,
                              [&](uint64_t seq, absl::string_view) {
                                seqs.push_back(seq);
                                return seqs.size() < 2;
                              })
                  .ok());
  EXPECT_THAT(seqs, ::testing::ElementsAre(3u, 4u));
}

TEST_P(StoreContractTest, AnEventWithoutAKindIsRefusedAndNothingIsWritten) {
  auto d = MakeDecision("d-1", 1, 5000, {"t-1"});
  auto s =
      store_->CreateDecision(d, {MakeTask("t-1", "d-1", kAgentA, 0)}, "",
                             {MakeEvent(writeback::v1::AUDIT_EVENT_KIND_DECISION_SUBMITTED, ""),
                              writeback::v1::AuditEvent()});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("audit_events[1].kind"));
  EXPECT_EQ(store_->GetDecision("d-1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->AppendAudit({writeback::v1::AuditEvent()}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->AuditHead()->seq, 0u);
}

TEST_P(StoreContractTest, ConcurrentAppendsKeepOneValidChain) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([this, i] {
      for (int j = 0; j < kPerThread; ++j) {
        const std::string detail = absl::StrCat(i, "/", j);
        if (j % 2 == 0) {
          ASSERT_TRUE(
              store_
                  ->AppendAudit({MakeEvent(writeback::v1::AUDIT_EVENT_KIND_AGENT_RENEWED, detail)})
                  .ok());
        } else {
          const std::string id = absl::StrCat("d-", i, "-", j);
          ASSERT_TRUE(
              store_
                  ->CreateDecision(
                      MakeDecision(id, static_cast<uint64_t>(i * 100 + j + 1), 5000, {}), {}, "",
                      {MakeEvent(writeback::v1::AUDIT_EVENT_KIND_DECISION_SUBMITTED, detail)})
                  .ok());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  constexpr uint64_t kTotal = kThreads * kPerThread;
  auto report = VerifyStore(store_.get());
  EXPECT_TRUE(report.ok) << report.broken_reason;
  EXPECT_EQ(report.entries_checked, kTotal);
  EXPECT_EQ(store_->AuditHead()->seq, kTotal);
  std::set<std::string> details;
  for (const auto& e : ChainEvents(store_.get())) details.insert(e.detail());
  EXPECT_EQ(details.size(), kTotal);  // every append landed exactly once
  std::printf("audit chain: %llu concurrent appends from %d threads, verified\n",
              static_cast<unsigned long long>(kTotal), kThreads);
}

}  // namespace wb::controlplane::store_testing
