#include "agent/journal/journal.h"

#include <gtest/gtest.h>

#include "common/crypto/crypto.h"
#include "common/testing/temp_dir.h"

namespace wb::agent {
namespace {

using writeback::agent::v1::JOURNAL_STATE_DONE;
using writeback::agent::v1::JOURNAL_STATE_INTENT;
using writeback::agent::v1::JOURNAL_STATE_QUEUED;

JournalTask Entry(const std::string& id, writeback::agent::v1::JournalState state,
                  uint64_t version = 1, const std::string& object = "alice") {
  JournalTask t;
  t.set_task_id(id);
  t.set_state(state);
  t.set_task_digest("digest-" + id);
  t.mutable_signed_task()->set_payload("task-bytes-" + id);
  t.set_connector_instance("ssh-main");
  t.set_object(object);
  t.set_decision_version(version);
  return t;
}

writeback::v1::SignedEnvelope Result(const std::string& text) {
  writeback::v1::SignedEnvelope e;
  e.set_payload(text);
  e.set_payload_type(writeback::v1::PAYLOAD_TYPE_RESULT);
  return e;
}

class JournalTest : public ::testing::Test {
 protected:
  std::unique_ptr<Journal> Open() {
    auto j = Journal::Open(dir_.Sub("journal"));
    EXPECT_TRUE(j.ok()) << j.status();
    return j.ok() ? std::move(*j) : nullptr;
  }
  wb::testing::TempDir dir_;
};

TEST_F(JournalTest, UnknownTaskIsNotSeen) {
  auto j = Open();
  auto seen = j->FindTask("nope");
  ASSERT_TRUE(seen.ok());
  EXPECT_FALSE(seen->has_value());
  auto v = j->AppliedVersion("ssh-main", "alice");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 0u);
}

TEST_F(JournalTest, IntentAndDonePersistAcrossReopen) {
  {
    auto j = Open();
    JournalTask queued = Entry("t1", JOURNAL_STATE_QUEUED);
    ASSERT_TRUE(j->PutTask(&queued).ok());
    auto t1 = j->GetTask("t1");
    ASSERT_TRUE(t1.ok() && t1->has_value());
    JournalTask intent = **t1;
    intent.set_state(JOURNAL_STATE_INTENT);
    ASSERT_TRUE(j->PutTask(&intent).ok());

    JournalTask done = Entry("t2", JOURNAL_STATE_QUEUED);
    ASSERT_TRUE(j->PutTask(&done).ok());
    auto t2 = j->GetTask("t2");
    ASSERT_TRUE(t2.ok() && t2->has_value());
    done = **t2;
    *done.mutable_signed_result() = Result("result-t2");
    ASSERT_TRUE(j->Complete(done, true).ok());
  }
  auto j = Open();
  auto t1 = j->GetTask("t1");
  ASSERT_TRUE(t1.ok() && t1->has_value());
  EXPECT_EQ((*t1)->state(), JOURNAL_STATE_INTENT);
  EXPECT_EQ((*t1)->signed_task().payload(), "task-bytes-t1");
  auto t2 = j->GetTask("t2");
  ASSERT_TRUE(t2.ok() && t2->has_value());
  EXPECT_EQ((*t2)->state(), JOURNAL_STATE_DONE);

  // Only the unfinished task is pending.
  auto pending = j->PendingTasks();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].task_id(), "t1");
  EXPECT_EQ((*pending)[0].state(), JOURNAL_STATE_INTENT);
}

TEST_F(JournalTest, SeenTaskReturnsStoredResult) {
  auto j = Open();
  JournalTask t = Entry("t1", JOURNAL_STATE_QUEUED);
  ASSERT_TRUE(j->PutTask(&t).ok());
  auto seen = j->FindTask("t1");
  ASSERT_TRUE(seen.ok() && seen->has_value());
  EXPECT_EQ((*seen)->state, SeenTask::State::kQueued);
  EXPECT_EQ((*seen)->task_digest, "digest-t1");

  *t.mutable_signed_result() = Result("the-result");
  ASSERT_TRUE(j->Complete(t, false).ok());
  seen = j->FindTask("t1");
  ASSERT_TRUE(seen.ok() && seen->has_value());
  EXPECT_EQ((*seen)->state, SeenTask::State::kDone);
  EXPECT_EQ((*seen)->signed_result.payload(), "the-result");
}

TEST_F(JournalTest, VersionTrackingKeepsTheHighestPerTarget) {
  auto j = Open();
  JournalTask a = Entry("a", JOURNAL_STATE_QUEUED, 5);
  *a.mutable_signed_result() = Result("ra");
  ASSERT_TRUE(j->Complete(a, true).ok());
  JournalTask b = Entry("b", JOURNAL_STATE_QUEUED, 3);
  *b.mutable_signed_result() = Result("rb");
  ASSERT_TRUE(j->Complete(b, true).ok());  // lower: does not lower the mark
  JournalTask c = Entry("c", JOURNAL_STATE_QUEUED, 9, "bob");
  *c.mutable_signed_result() = Result("rc");
  ASSERT_TRUE(j->Complete(c, false).ok());  // not bumped (e.g. a refusal)

  EXPECT_EQ(*j->AppliedVersion("ssh-main", "alice"), 5u);
  EXPECT_EQ(*j->AppliedVersion("ssh-main", "bob"), 0u);
  EXPECT_EQ(*j->AppliedVersion("other", "alice"), 0u);
  j.reset();
  j = Open();
  EXPECT_EQ(*j->AppliedVersion("ssh-main", "alice"), 5u);
}

TEST_F(JournalTest, OutboxHoldsResultsUntilRemovedAcrossReopen) {
  {
    auto j = Open();
    for (const char* id : {"t3", "t1", "t2"}) {
      JournalTask t = Entry(id, JOURNAL_STATE_QUEUED);
      ASSERT_TRUE(j->PutTask(&t).ok());
      auto stored = j->GetTask(id);
      ASSERT_TRUE(stored.ok() && stored->has_value());
      t = **stored;
      *t.mutable_signed_result() = Result(std::string("r-") + id);
      ASSERT_TRUE(j->Complete(t, true).ok());
    }
    ASSERT_TRUE(j->RemoveOutbox("t1").ok());
  }
  auto j = Open();
  auto out = j->Outbox();
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 2u);
  // Insertion order, not key order.
  EXPECT_EQ((*out)[0].task_id(), "t3");
  EXPECT_EQ((*out)[1].task_id(), "t2");
  EXPECT_EQ((*out)[1].signed_result().payload(), "r-t2");

  // A result for an unjournaled refusal goes to the outbox alone; new
  // entries sort after the ones that survived the reopen.
  ASSERT_TRUE(j->PutOutbox("forged", Result("r-forged")).ok());
  out = j->Outbox();
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 3u);
  EXPECT_EQ((*out)[2].task_id(), "forged");
  EXPECT_FALSE(j->GetTask("forged")->has_value());
}

// Refusals of tasks whose ids anyone on the path could have made up are
// bounded, and never take the place of a real task's result.
TEST_F(JournalTest, UnauthenticatedRefusalsAreBoundedAndReplaceNothing) {
  auto j = Open();
  JournalTask t = Entry("real", JOURNAL_STATE_QUEUED);
  ASSERT_TRUE(j->PutTask(&t).ok());
  *t.mutable_signed_result() = Result("r-real");
  ASSERT_TRUE(j->Complete(t, true).ok());
  auto kept = j->PutUnauthenticatedOutbox("real", Result("forged"), 10);
  ASSERT_TRUE(kept.ok());
  EXPECT_FALSE(*kept);  // the real result stays
  for (int i = 0; i < 3; ++i) {
    kept = j->PutUnauthenticatedOutbox("injected-" + std::to_string(i), Result("r"), 2);
    ASSERT_TRUE(kept.ok());
    EXPECT_EQ(*kept, i < 2) << i;
  }
  auto out = j->Outbox();
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 3u);
  EXPECT_EQ((*out)[0].task_id(), "real");
  EXPECT_EQ((*out)[0].signed_result().payload(), "r-real");
  EXPECT_FALSE((*out)[0].unauthenticated());
  EXPECT_TRUE((*out)[1].unauthenticated());
  // Room again once one is acknowledged (or dropped).
  ASSERT_TRUE(j->RemoveOutbox("injected-0").ok());
  kept = j->PutUnauthenticatedOutbox("injected-9", Result("r"), 2);
  ASSERT_TRUE(kept.ok());
  EXPECT_TRUE(*kept);
}

TEST_F(JournalTest, PendingTasksKeepArrivalOrderAcrossReopen) {
  {
    auto j = Open();
    for (const char* id : {"z", "a", "m"}) {
      JournalTask t = Entry(id, JOURNAL_STATE_QUEUED);
      ASSERT_TRUE(j->PutTask(&t).ok());
    }
  }
  auto j = Open();
  JournalTask b = Entry("b", JOURNAL_STATE_QUEUED);
  ASSERT_TRUE(j->PutTask(&b).ok());
  auto pending = j->PendingTasks();
  ASSERT_TRUE(pending.ok());
  std::vector<std::string> ids;
  for (const auto& t : *pending) ids.push_back(t.task_id());
  EXPECT_EQ(ids, (std::vector<std::string>{"z", "a", "m", "b"}));
}

TEST_F(JournalTest, SecondOpenerOfTheSameDirIsRefused) {
  auto j = Open();
  auto second = Journal::Open(dir_.Sub("journal"));
  EXPECT_FALSE(second.ok());
}

TEST_F(JournalTest, RejectsBadInput) {
  auto j = Open();
  JournalTask no_id = Entry("", JOURNAL_STATE_QUEUED);
  EXPECT_FALSE(j->PutTask(&no_id).ok());
  JournalTask done = Entry("t", JOURNAL_STATE_DONE);
  EXPECT_FALSE(j->PutTask(&done).ok());
  EXPECT_FALSE(Journal::Open("").ok());
}

TEST_F(JournalTest, StatementIsKeptWhileATaskNotDoneNamesIt) {
  const std::string statement = "statement bytes";
  const std::string digest = crypto::Sha256(statement);
  auto named = [&](const std::string& id) {
    JournalTask t = Entry(id, JOURNAL_STATE_QUEUED);
    t.set_statement_digest(digest);
    return t;
  };
  JournalTask t1 = named("t1");
  JournalTask t2 = named("t2");
  {
    auto j = Open();
    // The first task must bring the statement; the second may not.
    JournalTask bare = named("t0");
    EXPECT_FALSE(j->PutTask(&bare).ok());
    EXPECT_EQ(j->FindStatement(digest), nullptr);
    ASSERT_TRUE(j->PutTask(&t1, statement).ok());
    ASSERT_TRUE(j->PutTask(&t2).ok());
    ASSERT_NE(j->FindStatement(digest), nullptr);
    EXPECT_EQ(*j->FindStatement(digest), statement);
    t1.set_state(JOURNAL_STATE_INTENT);
    ASSERT_TRUE(j->PutTask(&t1).ok());  // the same task again: no new reference
    t1.mutable_signed_result()->set_payload("r1");
    ASSERT_TRUE(j->Complete(t1, true).ok());
    EXPECT_NE(j->FindStatement(digest), nullptr);  // t2 still names it
    EXPECT_EQ(j->StatementsKept(), 1u);
  }
  {
    auto j = Open();  // counted again from the pending tasks
    EXPECT_NE(j->FindStatement(digest), nullptr);
    t2.mutable_signed_result()->set_payload("r2");
    ASSERT_TRUE(j->Complete(t2, true).ok());
    EXPECT_EQ(j->FindStatement(digest), nullptr);  // the last one took it along
    EXPECT_EQ(j->StatementsKept(), 0u);
    // Named again later by a new task of the same decision: written again.
    JournalTask t3 = named("t3");
    ASSERT_TRUE(j->PutTask(&t3, statement).ok());
    EXPECT_NE(j->FindStatement(digest), nullptr);
  }
}

}  // namespace
}  // namespace wb::agent
