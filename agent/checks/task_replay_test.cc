// Replay and rollback against the agent's real journal (RocksDB in a temp
// dir; issue 8, "Replay and rollback"): 1,000 tasks are accepted and
// journaled as applied, then each is delivered again — the same bytes, the
// same bytes after an agent restart (journal reopened), an older decision
// version for the same target signed by the real dispatch key, and a newer
// task for the same target once its lifetime is over. (The same version under
// a new task id is accepted only in a verify_only task: re-verification tasks carry it.) Nothing
// may be accepted for a second application: a repeat returns the stored result (kDuplicate, never
// run), everything else is refused with its reason code. Counts are printed.
//
// RestoredStateDirectory: the journal directory is restored from a copy made
// before the tasks were applied; the state anchor (a file outside it) makes
// the agent refuse every replay of them (ROLLBACK), also after a restart.
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/checks/task_checks.h"
#include "agent/journal/journal.h"
#include "agent/testing/task_factory.h"
#include "common/crypto/crypto.h"
#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"

namespace wb::agent {
namespace {

using writeback::v1::SignedEnvelope;

constexpr char kAgentId[] = "spiffe://writeback.test/agent/a1";
constexpr int kTasks = 1000;

TEST(TaskReplayTest, NothingIsAppliedTwiceOrRolledBack) {
  const auto key = crypto::Ed25519PrivateKey::Generate();
  envelope::Keyring keyring;
  keyring.Add(key.public_key());
  CheckContext ctx;
  ctx.agent_id = kAgentId;
  ctx.dispatch_keys = &keyring;
  ctx.instances["ssh-main"] = {"ssh_authorized_keys", {"remove_key"}};
  wb::testing::TempDir dir;
  auto journal = Journal::Open(dir.Sub("journal"));
  ASSERT_TRUE(journal.ok()) << journal.status();
  std::mt19937 rng(1129);

  struct Sent {
    testing::TaskSpec spec;
    SignedEnvelope env;
  };
  std::vector<Sent> sent;
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  for (int i = 0; i < kTasks; ++i) {
    testing::TaskSpec s;
    s.audience = kAgentId;
    s.task_id = absl::StrCat("task-", i);
    s.decision_id = absl::StrCat("dec-", i);
    s.version = 10 + rng() % 1000;
    s.object = absl::StrCat("user", i);  // one target per task
    s.now = t0;
    s.ttl = absl::Hours(1);
    ctx.now = t0 + absl::Minutes(1);
    SignedEnvelope env = testing::MakeSignedTask(s, key);
    TaskCheck c = CheckTask(env, ctx, journal->get());
    ASSERT_EQ(c.verdict, Verdict::kAccept) << i << ": " << c.message;
    // Journaled as the executor does once applied: DONE with its result,
    // the target's version raised.
    JournalTask j;
    j.set_task_id(s.task_id);
    j.set_state(writeback::agent::v1::JOURNAL_STATE_INTENT);
    j.set_task_digest(c.task_digest);
    *j.mutable_signed_task() = env;
    j.set_connector_instance(s.instance);
    j.set_object(s.object);
    j.set_decision_version(s.version);
    ASSERT_TRUE((*journal)->PutTask(&j).ok());
    j.set_state(writeback::agent::v1::JOURNAL_STATE_DONE);
    j.mutable_signed_result()->set_payload(absl::StrCat("result-", i));
    ASSERT_TRUE((*journal)->Complete(j, /*bump_version=*/true).ok());
    sent.push_back({s, env});
  }

  long replays = 0, accepted = 0, duplicates = 0;
  std::map<std::string, long> refused;
  auto replay = [&](const SignedEnvelope& env, const std::string& what) {
    ++replays;
    TaskCheck c = CheckTask(env, ctx, journal->get());
    switch (c.verdict) {
      case Verdict::kAccept:
        ++accepted;
        ADD_FAILURE() << "accepted again: " << what;
        break;
      case Verdict::kDuplicate:
        ++duplicates;
        EXPECT_TRUE(c.seen.has_value() && c.seen->state == SeenTask::State::kDone) << what;
        break;
      case Verdict::kReject:
        EXPECT_NE(c.reason, writeback::v1::REJECT_REASON_UNSPECIFIED) << what;
        refused[writeback::v1::RejectReason_Name(c.reason)]++;
        break;
      case Verdict::kError:
        ADD_FAILURE() << "history error: " << c.message;
        break;
    }
  };

  auto all_kinds = [&](const std::string& when) {
    for (const Sent& s : sent) {
      // The same signed bytes again.
      replay(s.env, absl::StrCat(when, " same task ", s.spec.task_id));
      // An older decision for the same target, new task id, validly signed.
      testing::TaskSpec older = s.spec;
      older.task_id += "-older";
      older.decision_id += "-older";
      older.version = s.spec.version - 1 - rng() % 9;
      replay(testing::MakeSignedTask(older, key), absl::StrCat(when, " older ", older.task_id));
    }
  };
  all_kinds("live:");

  // Agent restart: the journal is closed and opened again.
  journal->reset();
  journal = Journal::Open(dir.Sub("journal"));
  ASSERT_TRUE(journal.ok()) << journal.status();
  all_kinds("after restart:");

  // After the tasks' lifetime: never applied, whatever the id.
  ctx.now = t0 + absl::Hours(3);
  for (const Sent& s : sent) {
    testing::TaskSpec fresh = s.spec;
    fresh.task_id += "-late";
    fresh.version = s.spec.version + 1;  // newer, but expired
    replay(testing::MakeSignedTask(fresh, key), "expired");
  }

  std::printf(
      "replay: tasks applied once %d; replays %ld; accepted %ld; answered from the "
      "journal %ld\n",
      kTasks, replays, accepted, duplicates);
  for (const auto& [reason, n] : refused) std::printf("  refused %s: %ld\n", reason.c_str(), n);
  EXPECT_EQ(accepted, 0);
  EXPECT_EQ(duplicates, 2 * kTasks);  // the same bytes, live and after restart
  EXPECT_EQ(refused["REJECT_REASON_ROLLBACK"], 2 * kTasks);
  EXPECT_EQ(refused["REJECT_REASON_EXPIRED"], kTasks);
}

TEST(TaskReplayTest, RestoredStateDirectoryRefusesEveryReplay) {
  namespace stdfs = std::filesystem;
  const auto key = crypto::Ed25519PrivateKey::Generate();
  envelope::Keyring keyring;
  keyring.Add(key.public_key());
  CheckContext ctx;
  ctx.agent_id = kAgentId;
  ctx.dispatch_keys = &keyring;
  ctx.instances["ssh-main"] = {"ssh_authorized_keys", {"remove_key"}};
  wb::testing::TempDir dir;
  const std::string state = dir.Sub("state/journal");
  const std::string anchor = dir.Sub("state.anchor");  // outside the state directory
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  ctx.now = t0 + absl::Minutes(1);

  // The old copy: taken before any of the tasks arrived.
  {
    auto j = Journal::Open(state, anchor);
    ASSERT_TRUE(j.ok()) << j.status();
  }
  stdfs::copy(dir.Sub("state"), dir.Sub("backup"), stdfs::copy_options::recursive);

  std::vector<SignedEnvelope> applied;
  {
    auto journal = Journal::Open(state, anchor);
    ASSERT_TRUE(journal.ok()) << journal.status();
    for (int i = 0; i < kTasks; ++i) {
      testing::TaskSpec s;
      s.audience = kAgentId;
      s.task_id = absl::StrCat("task-", i);
      s.decision_id = absl::StrCat("dec-", i);
      s.version = 10 + static_cast<uint64_t>(i);
      s.object = absl::StrCat("user", i);
      s.now = t0 - absl::Seconds(kTasks - i);  // issued one after the other
      s.ttl = absl::Hours(1);
      SignedEnvelope env = testing::MakeSignedTask(s, key);
      TaskCheck c = CheckTask(env, ctx, journal->get());
      ASSERT_EQ(c.verdict, Verdict::kAccept) << c.message;
      JournalTask j;
      j.set_task_id(s.task_id);
      j.set_state(writeback::agent::v1::JOURNAL_STATE_QUEUED);
      j.set_task_digest(c.task_digest);
      *j.mutable_signed_task() = env;
      j.set_connector_instance(s.instance);
      j.set_object(s.object);
      j.set_decision_version(s.version);
      ASSERT_TRUE((*journal)->PutTask(&j).ok());
      ASSERT_TRUE((*journal)->RaiseAnchor(c.task.issued_at_unix_ms()).ok());
      j.set_state(writeback::agent::v1::JOURNAL_STATE_DONE);
      ASSERT_TRUE((*journal)->Complete(j, /*bump_version=*/true).ok());
      applied.push_back(env);
    }
  }
  // The state directory is restored from the old copy.
  stdfs::remove_all(dir.Sub("state"));
  stdfs::copy(dir.Sub("backup"), dir.Sub("state"), stdfs::copy_options::recursive);

  long replays = 0, accepted = 0;
  std::map<std::string, long> refused;
  for (const char* when : {"after restore", "after restore and restart"}) {
    auto journal = Journal::Open(state, anchor);
    ASSERT_TRUE(journal.ok()) << journal.status();
    EXPECT_GT((*journal)->ReplayFloorMs(), 0) << when;
    for (const SignedEnvelope& env : applied) {
      ++replays;
      TaskCheck c = CheckTask(env, ctx, journal->get());
      if (c.verdict == Verdict::kAccept) {
        ++accepted;
        ADD_FAILURE() << when << ": replay accepted";
      } else {
        refused[writeback::v1::RejectReason_Name(c.reason)]++;
      }
    }
    // A task issued after the anchor is accepted as usual.
    testing::TaskSpec fresh;
    fresh.audience = kAgentId;
    fresh.task_id = absl::StrCat("fresh-", when);
    fresh.object = "newuser";
    fresh.now = t0 + absl::Seconds(1);
    EXPECT_EQ(CheckTask(testing::MakeSignedTask(fresh, key), ctx, journal->get()).verdict,
              Verdict::kAccept)
        << when;
  }
  std::printf(
      "replay after restoring the state directory from an old copy: %ld replays, %ld "
      "accepted\n",
      replays, accepted);
  for (const auto& [reason, n] : refused) std::printf("  refused %s: %ld\n", reason.c_str(), n);
  EXPECT_EQ(accepted, 0);
  EXPECT_EQ(refused["REJECT_REASON_ROLLBACK"], 2 * kTasks);
}

}  // namespace
}  // namespace wb::agent
