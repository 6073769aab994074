#include "controlplane/reverify/reverifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/envelope/envelope.h"
#include "common/testing/temp_dir.h"
#include "controlplane/fleet/events.h"
#include "controlplane/fleet/observed_store.h"
#include "controlplane/fleet/tracker.h"
#include "controlplane/store/rocksdb_store.h"

namespace wb::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using writeback::v1::DecisionRecord;
using writeback::v1::Event;
using writeback::v1::TaskRecord;

constexpr char kAgent[] = "spiffe://writeback.test/agent/a";
constexpr char kOperator[] = "spiffe://writeback.test/operator/alice";
const std::string kFingerprint = "SHA256:" + std::string(43, 'B');

class CountingSession : public AgentSession {
 public:
  void Wake() override { ++wakes; }
  void End(const absl::Status&) override {}
  std::atomic<int> wakes{0};
};

class ReverifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = RocksDbStore::Open(dir_.Sub("db"));
    ASSERT_TRUE(s.ok()) << s.status();
    rocks_ = std::move(*s);
    observed_ = std::make_unique<ObservedStore>(rocks_.get(), &tracker_, nullptr);
    DispatcherOptions o;
    o.controlplane_id = "spiffe://writeback.test/controlplane/cp";
    o.default_ttl_seconds = 3600;
    auto d = Dispatcher::Create(observed_.get(), &clock_, dispatch_key_, &sessions_, o);
    ASSERT_TRUE(d.ok()) << d.status();
    dispatcher_ = std::move(*d);
    writeback::v1::Hello h;
    h.set_agent_id(kAgent);
    h.set_version("0.1.0");
    h.set_result_public_key(agent_key_.public_key().raw());
    auto* inst = h.add_instances();
    inst->set_name("hosts");
    inst->set_type("ssh_authorized_keys");
    inst->add_operations("remove_key");
    ASSERT_TRUE(
        dispatcher_->BindInstance("spiffe://writeback.test/operator/alice", "hosts", kAgent, "test")
            .ok());
    ASSERT_TRUE(dispatcher_->Hello(kAgent, h).ok());
    sessions_.Register(kAgent, &session_, clock_.NowUnixMs());

    ReverifyOptions ro;
    ro.intervals["ssh_authorized_keys/remove_key"] = absl::Minutes(5);
    reverifier_ = std::make_unique<Reverifier>(observed_.get(), &clock_, dispatcher_.get(),
                                               &sessions_, &tracker_, &bus_, nullptr, ro);
    ASSERT_TRUE(reverifier_->Start(1000).ok());
  }
  void TearDown() override { sessions_.Unregister(kAgent, &session_); }

  // Answers every open task of the agent's outbox with `outcome`.
  size_t Answer(writeback::v1::Outcome outcome, absl::string_view detail = "observed") {
    auto tasks = dispatcher_->NextTasks(kAgent, {}, 100);
    EXPECT_TRUE(tasks.ok()) << tasks.status();
    for (const TaskRecord& t : *tasks) {
      writeback::v1::Task task;
      EXPECT_TRUE(envelope::VerifyWithKey(t.signed_task(), writeback::v1::PAYLOAD_TYPE_TASK,
                                          dispatch_key_.public_key())
                      .ok());
      EXPECT_TRUE(task.ParseFromString(t.signed_task().payload()));
      writeback::v1::Result r;
      r.set_task_id(t.task_id());
      r.set_agent_id(kAgent);
      r.set_decision_id(t.decision_id());
      r.set_task_digest(crypto::Sha256(t.signed_task().payload()));
      r.set_outcome(outcome);
      r.set_verify_only(task.verify_only());
      r.mutable_verification()->set_outcome(outcome);
      r.mutable_verification()->set_detail(std::string(detail));
      auto ack = dispatcher_->IntakeResult(
          kAgent,
          envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT, r.SerializeAsString(), agent_key_));
      EXPECT_TRUE(ack.accepted()) << ack.error();
    }
    return tasks->size();
  }

  std::string SubmitVerified(std::vector<std::string> users) {
    writeback::v1::SubmitDecisionRequest req;
    auto* s = req.mutable_spec();
    s->set_connector_instance("hosts");
    s->set_operation("remove_key");
    s->mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(kFingerprint);
    for (const auto& u : users) s->add_targets()->set_object(u);
    s->set_reason("leaked deploy key");
    s->set_reference("INC-7");
    auto r = dispatcher_->Submit(kOperator, req);
    EXPECT_TRUE(r.ok()) << r.status();
    Answer(writeback::v1::OUTCOME_VERIFIED);
    EXPECT_EQ(Get(r->decision_id()).state(), writeback::v1::DECISION_STATE_VERIFIED);
    return r->decision_id();
  }

  DecisionRecord Get(const std::string& id) { return *rocks_->GetDecision(id); }

  std::vector<Event> EventsOf(writeback::v1::EventKind kind) {
    std::vector<Event> out;
    for (const Event& e : bus_.Since(0, 10000)) {
      if (e.kind() == kind) out.push_back(e);
    }
    return out;
  }

  wb::testing::TempDir dir_;
  FakeClock clock_;
  crypto::Ed25519PrivateKey dispatch_key_ = crypto::Ed25519PrivateKey::Generate();
  crypto::Ed25519PrivateKey agent_key_ = crypto::Ed25519PrivateKey::Generate();
  SessionRegistry sessions_;
  CountingSession session_;
  EventBus bus_{&clock_};
  Tracker tracker_{&bus_, nullptr};
  std::unique_ptr<RocksDbStore> rocks_;
  std::unique_ptr<ObservedStore> observed_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<Reverifier> reverifier_;
};

TEST(ReverifyOptionsTest, IntervalsByTypeAndOperation) {
  writeback::v1::ReverifyConfig c;
  c.set_default_interval_seconds(3600);
  (*c.mutable_interval_seconds())["ssh_authorized_keys/remove_key"] = 60;
  (*c.mutable_interval_seconds())["lock"] = 0;
  auto o = ReverifyOptionsFromConfig(c);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->intervals.at("ssh_authorized_keys/remove_key"), absl::Seconds(60));
  EXPECT_EQ(o->default_interval, absl::Hours(1));
  EXPECT_EQ(o->task_ttl, absl::Seconds(600));

  (*c.mutable_interval_seconds())["a/b/c"] = 5;
  auto bad = ReverifyOptionsFromConfig(c);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("reverify.interval_seconds[a/b/c]"));

  writeback::v1::ReverifyConfig ttl;
  ttl.set_task_ttl_seconds(5);
  EXPECT_THAT(ReverifyOptionsFromConfig(ttl).status().message(),
              HasSubstr("reverify.task_ttl_seconds"));
}

TEST(ReverifyOptionsTest, RemediatesFromReason) {
  EXPECT_EQ(RemediatesFromReason("re-issue of drifted decision d-123: leaked key"), "d-123");
  EXPECT_EQ(RemediatesFromReason("leaked key"), "");
}

TEST_F(ReverifierTest, IntervalLookupPrefersTypeAndOperation) {
  EXPECT_EQ(reverifier_->IntervalFor("ssh_authorized_keys", "remove_key"), absl::Minutes(5));
  EXPECT_EQ(reverifier_->IntervalFor("postgres", "remove_key"), absl::ZeroDuration());
}

TEST_F(ReverifierTest, NothingIsIssuedBeforeTheIntervalPassed) {
  const std::string id = SubmitVerified({"alice"});
  ASSERT_TRUE(reverifier_->Sweep().ok());  // schedules it
  ASSERT_TRUE(reverifier_->NextDue(id).has_value());
  EXPECT_EQ(*reverifier_->NextDue(id), clock_.Now() + absl::Minutes(5));
  clock_.Advance(absl::Minutes(4));
  EXPECT_EQ(*reverifier_->Sweep(), 0u);
  EXPECT_EQ(Get(id).reverify_task_ids_size(), 0);
}

TEST_F(ReverifierTest, FailedVerifyTurnsTheDecisionDriftedAndItStays) {
  const std::string id = SubmitVerified({"alice", "bob"});
  ASSERT_TRUE(reverifier_->Sweep().ok());
  clock_.Advance(absl::Minutes(5));
  const int wakes = session_.wakes.load();
  ASSERT_EQ(*reverifier_->Sweep(), 1u);
  EXPECT_GT(session_.wakes.load(), wakes);

  DecisionRecord d = Get(id);
  ASSERT_EQ(d.reverify_task_ids_size(), 2);
  EXPECT_EQ(d.last_reverify_at_unix_ms(), clock_.NowUnixMs());
  // The verify-only tasks are signed, for the same statement, and queued.
  auto tasks = dispatcher_->NextTasks(kAgent, {}, 10);
  ASSERT_TRUE(tasks.ok());
  ASSERT_EQ(tasks->size(), 2u);
  for (const TaskRecord& t : *tasks) {
    EXPECT_TRUE(t.verify_only());
    writeback::v1::Task task;
    ASSERT_TRUE(task.ParseFromString(t.signed_task().payload()));
    EXPECT_TRUE(task.verify_only());
    EXPECT_EQ(task.statement(), d.statement());
    EXPECT_EQ(task.audience(), kAgent);
    // Their own lifetime (reverify.task_ttl_seconds), not the statement's:
    // observing goes on after the decision's apply window.
    EXPECT_EQ(task.expires_at_unix_ms(), clock_.NowUnixMs() + 600'000);
  }
  // A second round is not stacked on an open one.
  clock_.Advance(absl::Minutes(5));
  EXPECT_EQ(*reverifier_->Sweep(), 0u);
  EXPECT_EQ(reverifier_->ReverifyNow(id).status().code(), absl::StatusCode::kFailedPrecondition);

  ASSERT_EQ(Answer(writeback::v1::OUTCOME_FAILED, "key SHA256:BBB present again"), 2u);
  // The dispatcher stored the results without touching the decision.
  EXPECT_EQ(Get(id).state(), writeback::v1::DECISION_STATE_VERIFIED);
  ASSERT_TRUE(reverifier_->Sweep().ok());
  d = Get(id);
  EXPECT_EQ(d.state(), writeback::v1::DECISION_STATE_DRIFTED);
  EXPECT_THAT(d.state_detail(), HasSubstr("2 of 2 target(s) drifted"));
  EXPECT_THAT(d.state_detail(), HasSubstr("present again"));
  EXPECT_GT(d.drifted_at_unix_ms(), 0);
  ASSERT_EQ(EventsOf(writeback::v1::EVENT_KIND_DRIFT_DETECTED).size(), 1u);
  EXPECT_EQ(EventsOf(writeback::v1::EVENT_KIND_DRIFT_DETECTED)[0].decision_id(), id);
  EXPECT_EQ(tracker_.DecisionsByState().at("DRIFTED"), 1u);

  // A later failed round keeps it DRIFTED (the dispatcher does not recompute
  // it back to VERIFIED from its original tasks).
  ASSERT_TRUE(reverifier_->ReverifyNow(id).ok());
  Answer(writeback::v1::OUTCOME_FAILED, "key SHA256:BBB present again");
  ASSERT_TRUE(reverifier_->Sweep().ok());
  EXPECT_EQ(Get(id).state(), writeback::v1::DECISION_STATE_DRIFTED);
  EXPECT_EQ(EventsOf(writeback::v1::EVENT_KIND_DRIFT_DETECTED).size(), 1u);
}

TEST_F(ReverifierTest, CannotTellTurnsAVerifiedDecisionUnverifiableUntilObservedAgain) {
  const std::string id = SubmitVerified({"alice"});
  ASSERT_TRUE(reverifier_->ReverifyNow(id).ok());
  Answer(writeback::v1::OUTCOME_UNVERIFIED, "authorized_keys is a FIFO: not read");
  ASSERT_TRUE(reverifier_->Sweep().ok());
  DecisionRecord d = Get(id);
  EXPECT_EQ(d.state(), writeback::v1::DECISION_STATE_UNVERIFIABLE);
  EXPECT_THAT(d.state_detail(), HasSubstr("1 of 1 target(s) cannot be observed"));
  EXPECT_THAT(d.state_detail(), HasSubstr("FIFO"));
  EXPECT_GT(d.unverifiable_at_unix_ms(), 0);
  ASSERT_EQ(EventsOf(writeback::v1::EVENT_KIND_UNVERIFIABLE).size(), 1u);
  EXPECT_EQ(tracker_.DecisionsByState().at("UNVERIFIABLE"), 1u);
  // Still scheduled, and an observation that succeeds brings it back.
  EXPECT_TRUE(reverifier_->NextDue(id).has_value());
  ASSERT_TRUE(reverifier_->ReverifyNow(id).ok());
  Answer(writeback::v1::OUTCOME_VERIFIED);
  ASSERT_TRUE(reverifier_->Sweep().ok());
  d = Get(id);
  EXPECT_EQ(d.state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_THAT(d.state_detail(), HasSubstr("observable again"));
  EXPECT_EQ(d.unverifiable_at_unix_ms(), 0);
  EXPECT_EQ(EventsOf(writeback::v1::EVENT_KIND_OBSERVABLE_AGAIN).size(), 1u);
  EXPECT_TRUE(EventsOf(writeback::v1::EVENT_KIND_DRIFT_DETECTED).empty());
}

TEST_F(ReverifierTest, ARefusalOrNoAnswerIsCannotTellToo) {
  const std::string id = SubmitVerified({"alice"});
  ASSERT_TRUE(reverifier_->ReverifyNow(id).ok());
  auto tasks = dispatcher_->NextTasks(kAgent, {}, 10);
  ASSERT_EQ(tasks->size(), 1u);
  writeback::v1::Result r;
  r.set_task_id((*tasks)[0].task_id());
  r.set_agent_id(kAgent);
  r.set_decision_id(id);
  r.set_task_digest(crypto::Sha256((*tasks)[0].signed_task().payload()));
  r.set_outcome(writeback::v1::OUTCOME_REJECTED);
  r.set_reject_reason(writeback::v1::REJECT_REASON_NOT_ALLOWED);
  r.set_message("operation 'remove_key' is not allowed on instance 'hosts'");
  ASSERT_TRUE(dispatcher_
                  ->IntakeResult(kAgent, envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT,
                                                        r.SerializeAsString(), agent_key_))
                  .accepted());
  ASSERT_TRUE(reverifier_->Sweep().ok());
  EXPECT_EQ(Get(id).state(), writeback::v1::DECISION_STATE_UNVERIFIABLE);
  EXPECT_THAT(Get(id).state_detail(), HasSubstr("the agent refused to look: NOT_ALLOWED"));

  // The agent is away: the round's task expires without an answer.
  ASSERT_TRUE(reverifier_->ReverifyNow(id).ok());
  Answer(writeback::v1::OUTCOME_VERIFIED);
  ASSERT_TRUE(reverifier_->Sweep().ok());
  ASSERT_EQ(Get(id).state(), writeback::v1::DECISION_STATE_VERIFIED);
  ASSERT_TRUE(reverifier_->ReverifyNow(id).ok());
  clock_.Advance(absl::Minutes(11));       // past the task's 10 min
  auto st = reverifier_->ReverifyNow(id);  // expires the silent round first
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(Get(id).state(), writeback::v1::DECISION_STATE_UNVERIFIABLE);
  EXPECT_THAT(Get(id).state_detail(), HasSubstr("no answer from"));
}

TEST_F(ReverifierTest, DriftResolvesWhenEveryTargetVerifiesAgain) {
  const std::string id = SubmitVerified({"alice"});
  ASSERT_TRUE(reverifier_->ReverifyNow(id).ok());
  Answer(writeback::v1::OUTCOME_FAILED);
  ASSERT_TRUE(reverifier_->Sweep().ok());
  ASSERT_EQ(Get(id).state(), writeback::v1::DECISION_STATE_DRIFTED);
  ASSERT_TRUE(reverifier_->ReverifyNow(id).ok());
  Answer(writeback::v1::OUTCOME_VERIFIED);
  ASSERT_TRUE(reverifier_->Sweep().ok());
  DecisionRecord d = Get(id);
  EXPECT_EQ(d.state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_THAT(d.state_detail(), HasSubstr("drift resolved"));
  EXPECT_EQ(EventsOf(writeback::v1::EVENT_KIND_DRIFT_RESOLVED).size(), 1u);
  // The audit chain has each decision state change and each verify-only task.
  std::vector<std::string> changes;
  size_t verify_only = 0;
  ASSERT_TRUE(
      rocks_
          ->ScanAudit(
              1,
              [&](uint64_t, absl::string_view value) {
                writeback::v1::AuditEntry entry;
                writeback::v1::AuditEvent e;
                EXPECT_TRUE(entry.ParseFromArray(value.data(), static_cast<int>(value.size())));
                EXPECT_TRUE(e.ParseFromString(entry.event()));
                if (e.kind() == writeback::v1::AUDIT_EVENT_KIND_DECISION_STATE_CHANGED) {
                  changes.push_back(absl::StrCat(e.old_state(), "->", e.new_state(), " by ",
                                                 e.actor().substr(e.actor().rfind('/') + 1)));
                }
                if (e.detail() == "verify-only task") ++verify_only;
                return true;
              })
          .ok());
  EXPECT_THAT(changes, ElementsAre("DECISION_STATE_DISPATCHED->DECISION_STATE_VERIFIED by a",
                                   "DECISION_STATE_VERIFIED->DECISION_STATE_DRIFTED by cp",
                                   "DECISION_STATE_DRIFTED->DECISION_STATE_VERIFIED by cp"));
  EXPECT_EQ(verify_only, 2u);
  // A resolved drift is no new time-to-verified sample.
  ASSERT_EQ(tracker_.TtvByConnector().size(), 1u);
  EXPECT_EQ(tracker_.TtvByConnector()[0].count(), 1u);
}

TEST_F(ReverifierTest, ANewerDecisionOnTheSameTargetDoesNotSilenceTheOlderOne) {
  // Revoke key A (decision 1), then key B of the same user (decision 2).
  const std::string first = SubmitVerified({"alice"});
  writeback::v1::SubmitDecisionRequest req;
  auto* s = req.mutable_spec();
  s->set_connector_instance("hosts");
  s->set_operation("remove_key");
  s->mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(
      "SHA256:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC");
  s->add_targets()->set_object("alice");
  s->set_reason("second key");
  auto second = dispatcher_->Submit(kOperator, req);
  ASSERT_TRUE(second.ok());
  Answer(writeback::v1::OUTCOME_VERIFIED);
  ASSERT_TRUE(reverifier_->Sweep().ok());
  // Decision 1 keeps its own verify-only task for alice (nothing covers it).
  auto r = reverifier_->ReverifyNow(first);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->task_ids_size(), 1);
  Answer(writeback::v1::OUTCOME_FAILED, "key A present again");  // A put back
  ASSERT_TRUE(reverifier_->Sweep().ok());
  EXPECT_EQ(Get(first).state(), writeback::v1::DECISION_STATE_DRIFTED);
  EXPECT_EQ(Get(second->decision_id()).state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_TRUE(reverifier_->NextDue(first).has_value());
}

TEST_F(ReverifierTest, ATargetIsWatchedThroughANewerDecisionOnlyWhileItCoversAndHolds) {
  const std::string first = SubmitVerified({"alice"});
  // exclusive_set keeping nothing covers "remove key A"; re-verified too.
  writeback::v1::SubmitDecisionRequest req;
  auto* s = req.mutable_spec();
  s->set_connector_instance("hosts");
  s->set_operation("remove_key");  // the agent allows only remove_key here...
  s->mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(kFingerprint);
  s->add_targets()->set_object("alice");
  s->set_reason("the same key again, by another ticket");
  auto second = dispatcher_->Submit(kOperator, req);  // ...same effect: it covers
  ASSERT_TRUE(second.ok());
  Answer(writeback::v1::OUTCOME_VERIFIED);
  ASSERT_TRUE(reverifier_->Sweep().ok());
  ASSERT_EQ(Get(second->decision_id()).state(), writeback::v1::DECISION_STATE_VERIFIED);
  auto r = reverifier_->ReverifyNow(first);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->task_ids_size(), 0);  // watched through the newer one
  DecisionRecord d = Get(first);
  EXPECT_EQ(d.watched_through().at("alice"), second->decision_id());
  EXPECT_EQ(d.state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_THAT(d.state_detail(), HasSubstr("watched through decision"));
  // The newer one drifts: the older one is observed on its own again.
  ASSERT_TRUE(reverifier_->ReverifyNow(second->decision_id()).ok());
  Answer(writeback::v1::OUTCOME_FAILED, "key present again");
  ASSERT_TRUE(reverifier_->Sweep().ok());
  ASSERT_EQ(Get(second->decision_id()).state(), writeback::v1::DECISION_STATE_DRIFTED);
  r = reverifier_->ReverifyNow(first);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->task_ids_size(), 1);
  Answer(writeback::v1::OUTCOME_FAILED, "key present again");
  ASSERT_TRUE(reverifier_->Sweep().ok());
  EXPECT_EQ(Get(first).state(), writeback::v1::DECISION_STATE_DRIFTED);
  EXPECT_TRUE(Get(first).watched_through().empty());
}

TEST_F(ReverifierTest, RetiredDecisionsAreNoLongerReverified) {
  const std::string id = SubmitVerified({"alice"});
  ASSERT_TRUE(reverifier_->Sweep().ok());
  ASSERT_TRUE(reverifier_->NextDue(id).has_value());
  EXPECT_EQ(reverifier_->Retire(kOperator, id, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto r = reverifier_->Retire(kOperator, id, "host decommissioned (CHG-12)");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->retired_from(), writeback::v1::DECISION_STATE_VERIFIED);
  DecisionRecord d = Get(id);
  EXPECT_EQ(d.state(), writeback::v1::DECISION_STATE_RETIRED);
  EXPECT_EQ(d.retired_by(), kOperator);
  EXPECT_EQ(d.retired_reason(), "host decommissioned (CHG-12)");
  EXPECT_FALSE(reverifier_->NextDue(id).has_value());
  EXPECT_EQ(reverifier_->ReverifyNow(id).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reverifier_->Retire(kOperator, id, "again").status().code(),
            absl::StatusCode::kFailedPrecondition);
  clock_.Advance(absl::Minutes(10));
  EXPECT_EQ(*reverifier_->Sweep(), 0u);
  bool audited = false;
  ASSERT_TRUE(rocks_
                  ->ScanAudit(1,
                              [&](uint64_t, absl::string_view value) {
                                writeback::v1::AuditEntry entry;
                                writeback::v1::AuditEvent e;
                                EXPECT_TRUE(entry.ParseFromArray(value.data(),
                                                                 static_cast<int>(value.size())));
                                EXPECT_TRUE(e.ParseFromString(entry.event()));
                                audited |=
                                    e.kind() == writeback::v1::AUDIT_EVENT_KIND_DECISION_RETIRED &&
                                    e.actor() == kOperator && e.decision_id() == id;
                                return true;
                              })
                  .ok());
  EXPECT_TRUE(audited);
}

TEST_F(ReverifierTest, RemediateReissuesOnlyTheDriftedTargetsOnce) {
  const std::string id = SubmitVerified({"alice", "bob"});
  ASSERT_TRUE(reverifier_->ReverifyNow(id).ok());
  auto tasks = dispatcher_->NextTasks(kAgent, {}, 10);
  ASSERT_EQ(tasks->size(), 2u);
  // bob's key is back; alice is fine.
  for (const TaskRecord& t : *tasks) {
    writeback::v1::Result r;
    r.set_task_id(t.task_id());
    r.set_agent_id(kAgent);
    r.set_decision_id(t.decision_id());
    r.set_task_digest(crypto::Sha256(t.signed_task().payload()));
    const bool bob = t.target_index() == 1;
    r.set_outcome(bob ? writeback::v1::OUTCOME_FAILED : writeback::v1::OUTCOME_VERIFIED);
    ASSERT_TRUE(dispatcher_
                    ->IntakeResult(kAgent, envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT,
                                                          r.SerializeAsString(), agent_key_))
                    .accepted());
  }
  ASSERT_TRUE(reverifier_->Sweep().ok());
  ASSERT_EQ(Get(id).state(), writeback::v1::DECISION_STATE_DRIFTED);

  EXPECT_EQ(reverifier_->Remediate(kOperator, "nope").status().code(), absl::StatusCode::kNotFound);
  auto r = reverifier_->Remediate(kOperator, id);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string again = r->remediation_decision_id();
  ASSERT_FALSE(again.empty());
  DecisionRecord n = Get(again);
  ASSERT_EQ(n.parsed().targets_size(), 1);
  EXPECT_EQ(n.parsed().targets(0).object(), "bob");
  EXPECT_EQ(RemediatesFromReason(n.parsed().reason()), id);
  EXPECT_GT(n.parsed().version(), Get(id).parsed().version());
  EXPECT_EQ(Get(id).remediated_by(), again);
  // Repeating the command finds the same re-issue.
  auto twice = reverifier_->Remediate(kOperator, id);
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->remediation_decision_id(), again);
  EXPECT_EQ(EventsOf(writeback::v1::EVENT_KIND_REMEDIATION_ISSUED).size(), 1u);
}

TEST_F(ReverifierTest, OnlyReverifiableDecisionsAndEvenPastTheStatementsExpiry) {
  writeback::v1::SubmitDecisionRequest req;
  auto* s = req.mutable_spec();
  s->set_connector_instance("hosts");
  s->set_operation("remove_key");
  s->mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(kFingerprint);
  s->add_targets()->set_object("carol");
  s->set_reason("r");
  auto open = dispatcher_->Submit(kOperator, req);
  ASSERT_TRUE(open.ok());
  auto st = reverifier_->ReverifyNow(open->decision_id());
  EXPECT_EQ(st.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.status().message(), HasSubstr("only VERIFIED, DRIFTED or UNVERIFIABLE"));
  EXPECT_EQ(reverifier_->Remediate(kOperator, open->decision_id()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  Answer(writeback::v1::OUTCOME_VERIFIED);

  // The statement (1 h) expired: the decision can no longer be applied, but
  // it is still watched.
  const std::string id = open->decision_id();
  clock_.Advance(absl::Hours(2));
  auto late = reverifier_->ReverifyNow(id);
  ASSERT_TRUE(late.ok()) << late.status();
  auto tasks = dispatcher_->NextTasks(kAgent, {}, 10);
  ASSERT_EQ(tasks->size(), 1u);
  writeback::v1::Task task;
  ASSERT_TRUE(task.ParseFromString((*tasks)[0].signed_task().payload()));
  EXPECT_GT(task.expires_at_unix_ms(), Get(id).parsed().expires_at_unix_ms());
}

}  // namespace
}  // namespace wb::controlplane
