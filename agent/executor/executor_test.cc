#include "agent/executor/executor.h"

#include <gtest/gtest.h>

#include <functional>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/testing/fake_connector.h"
#include "agent/testing/task_factory.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"

namespace wb::agent {
namespace {

using testing::FakeConnector;
using testing::FakeTarget;
using testing::MakeSignedTask;
using testing::MakeStatement;
using testing::MakeTaskFor;
using testing::SignTask;
using testing::TaskSpec;
using wb::testing::WaitFor;
using writeback::v1::Result;
using writeback::v1::SignedEnvelope;

constexpr char kAgentId[] = "spiffe://writeback.test/agent/a1";

// Records what the executor reports, in order.
class RecordingSink : public Executor::Sink {
 public:
  void OnTaskAck(const std::string& task_id) override {
    std::lock_guard<std::mutex> l(mu_);
    events_.push_back("ack:" + task_id);
  }
  void OnResult(const std::string& task_id, const SignedEnvelope& result) override {
    std::lock_guard<std::mutex> l(mu_);
    events_.push_back("result:" + task_id);
    results_.push_back(result);
  }
  size_t result_count() const {
    std::lock_guard<std::mutex> l(mu_);
    return results_.size();
  }
  SignedEnvelope result(size_t i) const {
    std::lock_guard<std::mutex> l(mu_);
    return results_.at(i);
  }
  std::vector<std::string> events() const {
    std::lock_guard<std::mutex> l(mu_);
    return events_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> events_;
  std::vector<SignedEnvelope> results_;
};

class ExecutorTest : public ::testing::Test {
 protected:
  ExecutorTest()
      : dispatch_(crypto::Ed25519PrivateKey::Generate()),
        result_key_(crypto::Ed25519PrivateKey::Generate()),
        target_(std::make_shared<FakeTarget>()),
        connector_("ssh-main", target_),
        ext_target_(std::make_shared<FakeTarget>()),
        ext_connector_("ext", ext_target_) {}

  void SetUp() override { OpenAgent(); }

  // Creates journal + executor on the same directory (an agent "restart").
  void OpenAgent(bool start = true, uint32_t max_in_flight = 64,
                 size_t max_unauthenticated_results = 256) {
    executor_.reset();
    journal_.reset();
    auto j = Journal::Open(dir_.Sub("journal"));
    ASSERT_TRUE(j.ok()) << j.status();
    journal_ = std::move(*j);
    Executor::Options o;
    o.agent_id = kAgentId;
    o.dispatch_keys.Add(dispatch_.public_key());
    o.result_key = result_key_;
    o.instances["ssh-main"] = {&connector_, {"ssh_authorized_keys", {"remove_key"}}, {}};
    // An exec instance; whether its program is idempotent is its config's say.
    Executor::Instance ext{&ext_connector_, {"exec", {"revoke"}}, {}};
    if (ext_declared_idempotent_) ext.declared_idempotent.insert("revoke");
    o.instances["ext"] = std::move(ext);
    o.max_in_flight = max_in_flight;
    o.max_unauthenticated_results = max_unauthenticated_results;
    sink_ = std::make_unique<RecordingSink>();
    executor_ = std::make_unique<Executor>(std::move(o), journal_.get(), &clock_, sink_.get());
    if (start) {
      ASSERT_TRUE(executor_->Start().ok());
    }
  }

  TaskSpec Spec(const std::string& id = "task-1") const {
    TaskSpec s;
    s.task_id = id;
    s.audience = kAgentId;
    s.now = clock_.Now();
    return s;
  }

  // Waits for the n-th result and returns it parsed, after checking its
  // signature with the agent's result key.
  Result WaitResult(size_t n = 1) {
    EXPECT_TRUE(WaitFor([&] { return sink_->result_count() >= n; }));
    if (sink_->result_count() < n) return Result();
    SignedEnvelope env = sink_->result(n - 1);
    EXPECT_TRUE(
        envelope::VerifyWithKey(env, writeback::v1::PAYLOAD_TYPE_RESULT, result_key_.public_key())
            .ok());
    Result r;
    EXPECT_TRUE(r.ParseFromString(env.payload()));
    return r;
  }

  // An exec task (operation "revoke") for instance "ext".
  SignedEnvelope ExecTask(const std::string& id) const {
    TaskSpec s = Spec(id);
    s.instance = "ext";
    s.operation = "revoke";
    writeback::v1::DecisionStatement st = MakeStatement(s);
    st.mutable_params()->mutable_exec();  // replaces the ssh params
    return SignTask(MakeTaskFor(s, st.SerializeAsString(), dispatch_.key_id()), dispatch_);
  }

  // What a crash right after journaling the intent leaves behind.
  void JournalIntent(const SignedEnvelope& task, const std::string& instance,
                     const std::string& object = "alice") {
    writeback::v1::Task t;
    ASSERT_TRUE(t.ParseFromString(task.payload()));
    JournalTask e;
    e.set_task_id(t.task_id());
    e.set_state(writeback::agent::v1::JOURNAL_STATE_INTENT);
    e.set_task_digest(crypto::Sha256(task.payload()));
    *e.mutable_signed_task() = task;
    e.set_connector_instance(instance);
    e.set_object(object);
    e.set_decision_version(t.decision_version());
    ASSERT_TRUE(journal_->PutTask(&e).ok());
  }

  wb::testing::TempDir dir_;
  FakeClock clock_;
  crypto::Ed25519PrivateKey dispatch_;
  crypto::Ed25519PrivateKey result_key_;
  std::shared_ptr<FakeTarget> target_;
  FakeConnector connector_;
  std::shared_ptr<FakeTarget> ext_target_;
  FakeConnector ext_connector_;
  bool ext_declared_idempotent_ = false;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<RecordingSink> sink_;
  std::unique_ptr<Executor> executor_;
};

TEST_F(ExecutorTest, AppliesVerifiesAndReportsASignedResult) {
  SignedEnvelope task = MakeSignedTask(Spec(), dispatch_);
  executor_->Submit(task);
  Result r = WaitResult();
  EXPECT_EQ(writeback::v1::Outcome_Name(r.outcome()), "OUTCOME_VERIFIED") << r.message();
  EXPECT_EQ(r.task_id(), "task-1");
  EXPECT_EQ(r.agent_id(), kAgentId);
  EXPECT_EQ(r.decision_id(), "dec-1");
  EXPECT_EQ(r.decision_version(), 1u);
  EXPECT_EQ(r.task_digest(), crypto::Sha256(task.payload()));
  EXPECT_EQ(r.agent_time_unix_ms(), clock_.NowUnixMs());
  EXPECT_FALSE(r.recovered());
  EXPECT_FALSE(r.plan().no_change());
  EXPECT_EQ(r.applied().changes_size(), 1);
  EXPECT_EQ(r.verification().after_size(), 1);
  EXPECT_EQ(target_->applies_count(), 1);
  EXPECT_TRUE(target_->is_compliant("alice"));
  // Acknowledged (journaled) before the result.
  EXPECT_EQ(sink_->events(), (std::vector<std::string>{"ack:task-1", "result:task-1"}));
  // The result waits in the outbox until acknowledged.
  auto out = journal_->Outbox();
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].signed_result().payload(), sink_->result(0).payload());
  EXPECT_EQ(*journal_->AppliedVersion("ssh-main", "alice"), 1u);
}

TEST_F(ExecutorTest, SameTaskTwiceActsOnceAndReturnsTheStoredResult) {
  SignedEnvelope task = MakeSignedTask(Spec(), dispatch_);
  executor_->Submit(task);
  WaitResult(1);
  ASSERT_TRUE(journal_->RemoveOutbox("task-1").ok());  // control plane acked it
  executor_->Submit(task);
  WaitResult(2);
  EXPECT_EQ(target_->applies_count(), 1);
  EXPECT_EQ(sink_->result(1).payload(), sink_->result(0).payload());
  EXPECT_EQ(sink_->result(1).signature(), sink_->result(0).signature());
  // Resent results are kept until acknowledged again.
  EXPECT_EQ(journal_->Outbox()->size(), 1u);
}

TEST_F(ExecutorTest, RedeliveryAfterRestartDoesNotReapply) {
  SignedEnvelope task = MakeSignedTask(Spec(), dispatch_);
  executor_->Submit(task);
  WaitResult(1);
  const std::string first = sink_->result(0).payload();
  OpenAgent();  // destroy and recreate executor + journal on the same dir
  executor_->Submit(task);
  WaitResult(1);
  EXPECT_EQ(target_->applies_count(), 1);
  EXPECT_EQ(sink_->result(0).payload(), first);
}

TEST_F(ExecutorTest, InterruptedIdempotentApplyIsFinishedOnStartAndReportedOnce) {
  // The old sequence: killed right after journaling the intent, before
  // anything reached the target. remove_key is idempotent: after the restart
  // the apply is finished, not reported FAILED.
  SignedEnvelope task = MakeSignedTask(Spec(), dispatch_);
  JournalIntent(task, "ssh-main");
  ASSERT_FALSE(target_->is_compliant("alice"));

  OpenAgent();
  Result r = WaitResult();
  EXPECT_TRUE(r.recovered());
  EXPECT_EQ(writeback::v1::Outcome_Name(r.outcome()), "OUTCOME_VERIFIED") << r.message();
  EXPECT_TRUE(absl::StrContains(r.message(), "ran again to finish the interrupted apply"))
      << r.message();
  EXPECT_EQ(target_->applies_count(), 1);
  EXPECT_TRUE(target_->is_compliant("alice"));
  EXPECT_FALSE(r.plan().no_change());
  EXPECT_EQ(r.applied().changes_size(), 1);
  EXPECT_EQ(r.task_digest(), crypto::Sha256(task.payload()));
  // Reported once: journaled DONE with that result, version applied.
  auto stored = journal_->GetTask("task-1");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->state(), writeback::agent::v1::JOURNAL_STATE_DONE);
  EXPECT_EQ((*stored)->signed_result().payload(), sink_->result(0).payload());
  EXPECT_EQ(*journal_->AppliedVersion("ssh-main", "alice"), 1u);
  EXPECT_TRUE(journal_->PendingTasks()->empty());
  // Another restart finds nothing to recover; a redelivery returns the
  // stored result without acting.
  OpenAgent();
  executor_->Submit(task);
  WaitResult(1);
  EXPECT_EQ(sink_->result_count(), 1u);
  EXPECT_EQ(sink_->result(0).payload(), (*stored)->signed_result().payload());
  EXPECT_EQ(target_->applies_count(), 1);
}

TEST_F(ExecutorTest, InterruptedApplyThatTookEffectIsVerifiedNotAppliedTwice) {
  // A crash between apply and journaling: INTENT in the journal, the key
  // already gone from the target.
  SignedEnvelope task = MakeSignedTask(Spec(), dispatch_);
  JournalIntent(task, "ssh-main");
  target_->set_compliant("alice", true);

  OpenAgent();
  Result r = WaitResult();
  EXPECT_TRUE(r.recovered());
  // Not ALREADY_COMPLIANT: the interrupted run may have made the change.
  EXPECT_EQ(writeback::v1::Outcome_Name(r.outcome()), "OUTCOME_VERIFIED") << r.message();
  EXPECT_TRUE(r.plan().no_change());
  EXPECT_EQ(target_->applies_count(), 0);
  EXPECT_EQ(target_->verifies_count(), 1);
  // Now DONE: a redelivery returns that result without acting.
  executor_->Submit(task);
  WaitResult(2);
  EXPECT_EQ(sink_->result(1).payload(), sink_->result(0).payload());
  EXPECT_EQ(target_->applies_count(), 0);
}

TEST_F(ExecutorTest, ExpiredInterruptedTaskIsNotRerunOnlyVerified) {
  JournalIntent(MakeSignedTask(Spec(), dispatch_), "ssh-main");
  clock_.Advance(absl::Hours(2));  // the task's lifetime is 1 h
  OpenAgent();
  Result r = WaitResult();
  EXPECT_TRUE(r.recovered());
  EXPECT_EQ(r.outcome(), writeback::v1::OUTCOME_FAILED);  // what Verify observes
  EXPECT_TRUE(absl::StrContains(r.message(), "not re-run: the task is no longer valid"))
      << r.message();
  EXPECT_TRUE(absl::StrContains(r.message(), "REJECT_REASON_EXPIRED")) << r.message();
  EXPECT_EQ(target_->calls(), 1);  // Verify only
  EXPECT_EQ(target_->verifies_count(), 1);
  EXPECT_TRUE(journal_->PendingTasks()->empty());
}

TEST_F(ExecutorTest, InterruptedTaskOlderThanOneAppliedSinceIsNotRerun) {
  // Version 2 for the same target was applied; an interrupted version 1
  // would be a rollback.
  executor_->Submit(MakeSignedTask(
      [&] {
        TaskSpec s = Spec("task-2");
        s.decision_id = "dec-2";
        s.version = 2;
        return s;
      }(),
      dispatch_));
  WaitResult(1);
  target_->set_compliant("alice", false);  // the key came back meanwhile
  JournalIntent(MakeSignedTask(Spec("task-1"), dispatch_), "ssh-main");
  OpenAgent();
  Result r = WaitResult();
  EXPECT_EQ(r.task_id(), "task-1");
  EXPECT_TRUE(r.recovered());
  EXPECT_EQ(r.outcome(), writeback::v1::OUTCOME_FAILED);
  EXPECT_TRUE(absl::StrContains(r.message(), "REJECT_REASON_ROLLBACK")) << r.message();
  EXPECT_EQ(target_->applies_count(), 1);  // version 2's, nothing more
}

TEST_F(ExecutorTest, NonIdempotentInterruptedApplyIsOnlyVerifiedAndSaysWhy) {
  // exec "revoke" not declared idempotent by the instance: today's behaviour.
  JournalIntent(ExecTask("task-x"), "ext");
  OpenAgent();
  Result r = WaitResult();
  EXPECT_TRUE(r.recovered());
  EXPECT_EQ(r.outcome(), writeback::v1::OUTCOME_FAILED) << r.message();
  EXPECT_TRUE(absl::StrContains(
      r.message(), "not re-run: operation 'revoke' of connector 'ext' (exec) is not idempotent"))
      << r.message();
  EXPECT_TRUE(absl::StrContains(r.message(), "exec.idempotent_operations")) << r.message();
  EXPECT_EQ(ext_target_->applies_count(), 0);
  EXPECT_EQ(ext_target_->calls(), 1);  // Verify only
  EXPECT_TRUE(journal_->PendingTasks()->empty());
}

TEST_F(ExecutorTest, ExecOperationDeclaredIdempotentIsFinished) {
  ext_declared_idempotent_ = true;
  JournalIntent(ExecTask("task-x"), "ext");
  OpenAgent();
  Result r = WaitResult();
  EXPECT_TRUE(r.recovered());
  EXPECT_EQ(writeback::v1::Outcome_Name(r.outcome()), "OUTCOME_VERIFIED") << r.message();
  EXPECT_EQ(ext_target_->applies_count(), 1);
}

TEST(ExecutorInstance, FromConfigTakesTheExecDeclarations) {
  writeback::v1::ConnectorInstanceConfig cfg;
  cfg.set_name("ext");
  cfg.set_type("exec");
  cfg.add_allowed_operations("remove");
  cfg.add_allowed_operations("revoke");
  cfg.mutable_exec()->add_idempotent_operations("remove");
  Executor::Instance inst = Executor::InstanceFromConfig(cfg, nullptr);
  EXPECT_EQ(inst.policy.connector_type, "exec");
  EXPECT_EQ(inst.policy.operations, (std::set<std::string>{"remove", "revoke"}));
  EXPECT_EQ(inst.declared_idempotent, std::set<std::string>{"remove"});
}

TEST_F(ExecutorTest, QueuedTasksRunAfterRestart) {
  OpenAgent(/*start=*/false);
  executor_->Submit(MakeSignedTask(Spec(), dispatch_));
  EXPECT_EQ(sink_->events(), std::vector<std::string>{"ack:task-1"});
  OpenAgent();  // "crash" before it ran; nothing was applied
  Result r = WaitResult();
  EXPECT_EQ(r.outcome(), writeback::v1::OUTCOME_VERIFIED);
  EXPECT_FALSE(r.recovered());
  EXPECT_EQ(target_->applies_count(), 1);
}

TEST_F(ExecutorTest, NoChangeIsAlreadyCompliantWithoutApply) {
  target_->set_compliant("alice", true);
  executor_->Submit(MakeSignedTask(Spec(), dispatch_));
  Result r = WaitResult();
  EXPECT_EQ(r.outcome(), writeback::v1::OUTCOME_ALREADY_COMPLIANT);
  EXPECT_TRUE(r.plan().no_change());
  EXPECT_FALSE(r.message().empty());
  EXPECT_EQ(target_->applies_count(), 0);
  EXPECT_EQ(target_->verifies_count(), 1);
}

TEST_F(ExecutorTest, UnobservableEffectIsUnverified) {
  target_->verify_unobservable = true;
  executor_->Submit(MakeSignedTask(Spec(), dispatch_));
  EXPECT_EQ(WaitResult().outcome(), writeback::v1::OUTCOME_UNVERIFIED);
}

TEST_F(ExecutorTest, ConnectorErrorsAreFailedWithTheMessage) {
  target_->apply_error = absl::PermissionDeniedError("cannot write authorized_keys");
  executor_->Submit(MakeSignedTask(Spec(), dispatch_));
  Result r = WaitResult();
  EXPECT_EQ(r.outcome(), writeback::v1::OUTCOME_FAILED);
  EXPECT_NE(r.message().find("cannot write authorized_keys"), std::string::npos) << r.message();

  target_->apply_error = absl::OkStatus();
  target_->plan_error = absl::UnavailableError("target unreachable");
  TaskSpec s = Spec("task-2");
  s.object = "bob";
  executor_->Submit(MakeSignedTask(s, dispatch_));
  r = WaitResult(2);
  EXPECT_EQ(r.outcome(), writeback::v1::OUTCOME_FAILED);
  EXPECT_NE(r.message().find("target unreachable"), std::string::npos) << r.message();
}

// Every refusal is reported as a signed REJECTED result, and nothing reaches
// the connector.
struct RejectCase {
  const char* name;
  writeback::v1::RejectReason reason;
  std::function<SignedEnvelope(const TaskSpec&, const crypto::Ed25519PrivateKey&)> make;
};

// Anyone on the path can make up task ids: refusals of tasks that are not
// authentic are kept in the outbox only up to a bound; beyond it they are
// still reported once, and counted.
TEST_F(ExecutorTest, RefusalsOfUnauthenticTasksAreBoundedInTheOutbox) {
  OpenAgent(true, 64, /*max_unauthenticated_results=*/2);
  auto forger = crypto::Ed25519PrivateKey::Generate();
  for (int i = 0; i < 5; ++i)
    executor_->Submit(MakeSignedTask(Spec(absl::StrCat("x-", i)), forger));
  ASSERT_TRUE(WaitFor([&] { return sink_->result_count() == 5; }));
  EXPECT_EQ(executor_->refusals_not_kept(), 3u);
  auto out = journal_->Outbox();
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[0].task_id(), "x-0");
  EXPECT_TRUE((*out)[0].unauthenticated());
  EXPECT_EQ(target_->applies_count(), 0);
}

TEST_F(ExecutorTest, RejectedTasksNeverReachTheConnector) {
  auto other_key = crypto::Ed25519PrivateKey::Generate();
  std::vector<RejectCase> cases = {
      {"altered", writeback::v1::REJECT_REASON_BAD_SIGNATURE,
       [](const TaskSpec& s, const crypto::Ed25519PrivateKey& k) {
         SignedEnvelope e = MakeSignedTask(s, k);
         std::string p = e.payload();
         p.back() ^= 1;
         e.set_payload(p);
         return e;
       }},
      {"unknown-key", writeback::v1::REJECT_REASON_UNKNOWN_KEY,
       [&](const TaskSpec& s, const crypto::Ed25519PrivateKey&) {
         return MakeSignedTask(s, other_key);
       }},
      {"audience", writeback::v1::REJECT_REASON_WRONG_AUDIENCE,
       [](TaskSpec s, const crypto::Ed25519PrivateKey& k) {
         s.audience = "spiffe://writeback.test/agent/a2";
         return MakeSignedTask(s, k);
       }},
      {"expired", writeback::v1::REJECT_REASON_EXPIRED,
       [](TaskSpec s, const crypto::Ed25519PrivateKey& k) {
         s.now -= absl::Hours(3);
         return MakeSignedTask(s, k);
       }},
      {"not-yet", writeback::v1::REJECT_REASON_NOT_YET_VALID,
       [](TaskSpec s, const crypto::Ed25519PrivateKey& k) {
         s.not_before_offset = absl::Minutes(10);
         return MakeSignedTask(s, k);
       }},
      {"instance", writeback::v1::REJECT_REASON_NOT_ALLOWED,
       [](TaskSpec s, const crypto::Ed25519PrivateKey& k) {
         s.instance = "pg-main";
         return MakeSignedTask(s, k);
       }},
      {"operation", writeback::v1::REJECT_REASON_NOT_ALLOWED,
       [](TaskSpec s, const crypto::Ed25519PrivateKey& k) {
         s.operation = "remove_by_comment";
         return MakeSignedTask(s, k);
       }},
      {"mismatch", writeback::v1::REJECT_REASON_TARGET_MISMATCH,
       [](TaskSpec s, const crypto::Ed25519PrivateKey& k) {
         std::string statement = MakeStatement(s).SerializeAsString();
         s.object = "root";
         return SignTask(MakeTaskFor(s, statement, k.key_id()), k);
       }},
      {"params", writeback::v1::REJECT_REASON_INVALID_PARAMS,
       [](TaskSpec s, const crypto::Ed25519PrivateKey& k) {
         s.fingerprint = "SHA256:short";
         return MakeSignedTask(s, k);
       }},
  };
  size_t n = 0;
  for (const auto& rc : cases) {
    SCOPED_TRACE(rc.name);
    SignedEnvelope env = rc.make(Spec(std::string("task-") + rc.name), dispatch_);
    executor_->Submit(env);
    Result r = WaitResult(++n);
    EXPECT_EQ(r.outcome(), writeback::v1::OUTCOME_REJECTED);
    EXPECT_EQ(writeback::v1::RejectReason_Name(r.reject_reason()),
              writeback::v1::RejectReason_Name(rc.reason))
        << r.message();
    EXPECT_EQ(r.task_id(), std::string("task-") + rc.name);
    EXPECT_EQ(r.task_digest(), crypto::Sha256(env.payload()));
    EXPECT_FALSE(r.message().empty());
  }
  EXPECT_EQ(target_->calls(), 0);
  // Every refusal waits in the outbox until acknowledged.
  EXPECT_EQ(journal_->Outbox()->size(), cases.size());
  // Authentic refusals are journaled (a redelivery returns the same);
  // unauthenticated ones are not recorded as tasks.
  EXPECT_TRUE(journal_->GetTask("task-expired")->has_value());
  EXPECT_FALSE(journal_->GetTask("task-unknown-key")->has_value());
  EXPECT_FALSE(journal_->GetTask("task-altered")->has_value());
  executor_->Submit(cases[3].make(Spec("task-expired"), dispatch_));
  WaitResult(++n);
  EXPECT_EQ(sink_->result(n - 1).payload(), sink_->result(3).payload());
}

TEST_F(ExecutorTest, OlderDecisionForTheSameTargetIsRollback) {
  TaskSpec newer = Spec("task-new");
  newer.version = 5;
  executor_->Submit(MakeSignedTask(newer, dispatch_));
  EXPECT_EQ(WaitResult(1).outcome(), writeback::v1::OUTCOME_VERIFIED);
  target_->set_compliant("alice", false);
  TaskSpec older = Spec("task-old");
  older.version = 4;
  executor_->Submit(MakeSignedTask(older, dispatch_));
  Result r = WaitResult(2);
  EXPECT_EQ(r.reject_reason(), writeback::v1::REJECT_REASON_ROLLBACK);
  EXPECT_EQ(target_->applies_count(), 1);
}

TEST_F(ExecutorTest, RollbackIsRecheckedWhenQueuedBehindANewerTask) {
  OpenAgent(/*start=*/false);
  TaskSpec newer = Spec("task-new");
  newer.version = 5;
  TaskSpec older = Spec("task-old");
  older.version = 4;
  executor_->Submit(MakeSignedTask(newer, dispatch_));
  executor_->Submit(MakeSignedTask(older, dispatch_));  // passes at arrival
  ASSERT_TRUE(executor_->Start().ok());
  WaitResult(2);
  Result first, second;
  ASSERT_TRUE(first.ParseFromString(sink_->result(0).payload()));
  ASSERT_TRUE(second.ParseFromString(sink_->result(1).payload()));
  EXPECT_EQ(first.task_id(), "task-new");
  EXPECT_EQ(first.outcome(), writeback::v1::OUTCOME_VERIFIED);
  EXPECT_EQ(second.task_id(), "task-old");
  EXPECT_EQ(second.reject_reason(), writeback::v1::REJECT_REASON_ROLLBACK);
}

TEST_F(ExecutorTest, TaskThatExpiresWhileQueuedIsRejectedAtExecution) {
  OpenAgent(/*start=*/false);
  executor_->Submit(MakeSignedTask(Spec(), dispatch_));
  clock_.Advance(absl::Hours(2));
  ASSERT_TRUE(executor_->Start().ok());
  Result r = WaitResult();
  EXPECT_EQ(r.reject_reason(), writeback::v1::REJECT_REASON_EXPIRED);
  EXPECT_EQ(target_->calls(), 0);
}

TEST_F(ExecutorTest, SameTargetRunsInArrivalOrder) {
  OpenAgent(/*start=*/false);
  std::vector<std::string> ids;
  for (int i = 1; i <= 6; ++i) {
    TaskSpec s = Spec("t" + std::to_string(i));
    s.version = static_cast<uint64_t>(i);
    s.object = (i % 2 == 0) ? "bob" : "alice";
    ids.push_back(s.task_id);
    executor_->Submit(MakeSignedTask(s, dispatch_));
  }
  ASSERT_TRUE(executor_->Start().ok());
  WaitResult(6);
  std::vector<std::string> alice, bob;
  for (size_t i = 0; i < 6; ++i) {
    Result r;
    ASSERT_TRUE(r.ParseFromString(sink_->result(i).payload()));
    // No task was refused as a rollback: each ran after the older ones.
    EXPECT_NE(r.outcome(), writeback::v1::OUTCOME_REJECTED) << r.message();
    (r.decision_version() % 2 == 0 ? bob : alice).push_back(r.task_id());
  }
  EXPECT_EQ(alice, (std::vector<std::string>{"t1", "t3", "t5"}));
  EXPECT_EQ(bob, (std::vector<std::string>{"t2", "t4", "t6"}));
}

TEST_F(ExecutorTest, QueueIsBoundedByMaxInFlight) {
  OpenAgent(/*start=*/false, /*max_in_flight=*/1);
  executor_->Submit(MakeSignedTask(Spec("t1"), dispatch_));
  EXPECT_EQ(executor_->in_flight(), 1u);
  TaskSpec s2 = Spec("t2");
  s2.object = "bob";
  std::thread second([&] { executor_->Submit(MakeSignedTask(s2, dispatch_)); });
  ASSERT_TRUE(executor_->Start().ok());
  second.join();
  WaitResult(2);
  // t2 was only taken (journaled, acknowledged) once t1 had finished.
  EXPECT_EQ(sink_->events(),
            (std::vector<std::string>{"ack:t1", "result:t1", "ack:t2", "result:t2"}));
}

TEST_F(ExecutorTest, StopUnblocksASubmitterWaitingForRoom) {
  OpenAgent(/*start=*/false, /*max_in_flight=*/1);
  executor_->Submit(MakeSignedTask(Spec("t1"), dispatch_));
  TaskSpec s2 = Spec("t2");
  s2.object = "bob";
  std::thread second([&] { executor_->Submit(MakeSignedTask(s2, dispatch_)); });
  executor_->Stop();
  second.join();
  EXPECT_EQ(sink_->events(), std::vector<std::string>{"ack:t1"});
  EXPECT_FALSE(journal_->GetTask("t2")->has_value());
}

}  // namespace
}  // namespace wb::agent
