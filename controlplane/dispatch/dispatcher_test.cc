#include "controlplane/dispatch/dispatcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/audit/chain.h"
#include "common/envelope/envelope.h"
#include "common/testing/temp_dir.h"
#include "controlplane/dispatch/test_hello.h"
#include "controlplane/store/rocksdb_store.h"

namespace wb::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using writeback::v1::SubmitDecisionRequest;
using writeback::v1::TaskRecord;

constexpr char kAgentA[] = "spiffe://writeback.test/agent/a";
constexpr char kAgentB[] = "spiffe://writeback.test/agent/b";
constexpr char kOperator[] = "spiffe://writeback.test/operator/alice";
const std::string kFingerprint = "SHA256:" + std::string(43, 'A');

class FakeSession : public AgentSession {
 public:
  void Wake() override { ++wakes; }
  void End(const absl::Status& why) override { ended = why; }
  std::atomic<int> wakes{0};
  absl::Status ended;
};

SubmitDecisionRequest MakeRequest(std::vector<std::string> users,
                                  const std::string& instance = "hosts") {
  SubmitDecisionRequest r;
  auto* s = r.mutable_spec();
  s->set_connector_instance(instance);
  s->set_operation("remove_key");
  s->mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(kFingerprint);
  for (const auto& u : users) s->add_targets()->set_object(u);
  s->set_reason("stale deploy key");
  s->set_reference("JIRA-1");
  return r;
}

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = RocksDbStore::Open(dir_.Sub("db"));
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    MakeDispatcher();
    Bind("hosts", kAgentA);
    ASSERT_TRUE(d_->Hello(kAgentA, MakeTestHello(kAgentA, agent_key_)).ok());
    sessions_.Register(kAgentA, &session_, clock_.NowUnixMs());
  }

  // What `wbctl instance bind` does.
  void Bind(const std::string& instance, const std::string& agent) {
    auto b = d_->BindInstance(kOperator, instance, agent, "test");
    ASSERT_TRUE(b.ok()) << b.status();
    ASSERT_FALSE(b->pending_approval());
  }
  void TearDown() override { sessions_.Unregister(kAgentA, &session_); }

  void MakeDispatcher() {
    DispatcherOptions o;
    o.controlplane_id = "spiffe://writeback.test/controlplane/cp";
    o.default_ttl_seconds = 600;
    auto d = Dispatcher::Create(store_.get(), &clock_, dispatch_key_, &sessions_, o);
    ASSERT_TRUE(d.ok()) << d.status();
    d_ = std::move(*d);
  }

  std::vector<TaskRecord> Tasks(const std::string& decision_id) {
    std::vector<TaskRecord> out;
    auto d = store_->GetDecision(decision_id);
    EXPECT_TRUE(d.ok());
    for (const auto& id : d->task_ids()) out.push_back(*store_->GetTask(id));
    return out;
  }

  writeback::v1::SignedEnvelope SignedResult(const TaskRecord& t, writeback::v1::Outcome outcome,
                                             const crypto::Ed25519PrivateKey& key,
                                             const std::string& agent = kAgentA) {
    writeback::v1::Result r;
    r.set_task_id(t.task_id());
    r.set_agent_id(agent);
    r.set_decision_id(t.decision_id());
    r.set_task_digest(crypto::Sha256(t.signed_task().payload()));
    r.set_outcome(outcome);
    r.mutable_verification()->set_outcome(outcome);
    r.mutable_verification()->set_detail("key absent after apply");
    return envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT, r.SerializeAsString(), key);
  }

  std::string SubmitOk(std::vector<std::string> users) {
    auto r = d_->Submit(kOperator, MakeRequest(std::move(users)));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->decision_id() : "";
  }

  size_t DecisionCount() {
    return store_->ListDecisions(1000, writeback::v1::DECISION_STATE_UNSPECIFIED)->size();
  }

  wb::testing::TempDir dir_;
  FakeClock clock_;
  crypto::Ed25519PrivateKey dispatch_key_ = crypto::Ed25519PrivateKey::Generate();
  crypto::Ed25519PrivateKey agent_key_ = crypto::Ed25519PrivateKey::Generate();
  SessionRegistry sessions_;
  FakeSession session_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<Dispatcher> d_;
};

TEST(SummarizeTasksTest, States) {
  using writeback::v1::TaskState;
  auto sum = [](std::vector<TaskState> s) { return SummarizeTasks(s); };
  EXPECT_EQ(sum({writeback::v1::TASK_STATE_VERIFIED, writeback::v1::TASK_STATE_DELIVERED}).state,
            writeback::v1::DECISION_STATE_DISPATCHED);
  EXPECT_EQ(sum({writeback::v1::TASK_STATE_VERIFIED, writeback::v1::TASK_STATE_VERIFIED}).state,
            writeback::v1::DECISION_STATE_VERIFIED);
  auto failed = sum({writeback::v1::TASK_STATE_VERIFIED, writeback::v1::TASK_STATE_APPLIED,
                     writeback::v1::TASK_STATE_VERIFIED});
  EXPECT_EQ(failed.state, writeback::v1::DECISION_STATE_FAILED);
  EXPECT_EQ(failed.detail, "1 of 3 tasks unverified");
  auto mixed = sum({writeback::v1::TASK_STATE_FAILED, writeback::v1::TASK_STATE_REJECTED,
                    writeback::v1::TASK_STATE_EXPIRED});
  EXPECT_EQ(mixed.state, writeback::v1::DECISION_STATE_FAILED);
  EXPECT_EQ(mixed.detail, "1 of 3 tasks failed, 1 of 3 tasks rejected, 1 of 3 tasks expired");
  EXPECT_EQ(sum({writeback::v1::TASK_STATE_EXPIRED, writeback::v1::TASK_STATE_EXPIRED}).state,
            writeback::v1::DECISION_STATE_EXPIRED);
}

// The decision's stored task counts equal a count of its tasks as stored,
// and (without covered tasks) say the decision's state.
void ExpectCountsMatchTasks(Store* store, const std::string& decision_id, const std::string& when) {
  SCOPED_TRACE(when);
  auto d = store->GetDecision(decision_id);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(d->has_task_counts());
  writeback::v1::TaskStateCounts scan;
  for (const auto& id : d->task_ids()) {
    auto t = store->GetTask(id);
    ASSERT_TRUE(t.ok()) << t.status();
    ASSERT_TRUE(CountTask(HeadOf(*t), +1, &scan));
    EXPECT_EQ(store->GetTaskHead(id)->ShortDebugString(), HeadOf(*t).ShortDebugString());
  }
  EXPECT_EQ(d->task_counts().ShortDebugString(), scan.ShortDebugString());
  if (scan.covered() == 0) {
    EXPECT_EQ(SummarizeCounts(scan).state, d->state());
    EXPECT_EQ(SummarizeCounts(scan).detail, d->state_detail());
  }
}

TEST(SummarizeCountsTest, SameAsSummarizingTheStates) {
  using writeback::v1::TaskState;
  const TaskState all[] = {writeback::v1::TASK_STATE_QUEUED,    writeback::v1::TASK_STATE_DELIVERED,
                           writeback::v1::TASK_STATE_APPLIED,   writeback::v1::TASK_STATE_VERIFIED,
                           writeback::v1::TASK_STATE_FAILED,    writeback::v1::TASK_STATE_REJECTED,
                           writeback::v1::TASK_STATE_EXPIRED,   writeback::v1::TASK_STATE_CANCELED,
                           writeback::v1::TASK_STATE_SUPERSEDED};
  // Every multiset of up to three states.
  std::vector<std::vector<TaskState>> sets = {{}};
  for (int round = 0; round < 3; ++round) {
    const size_t n = sets.size();
    for (size_t i = 0; i < n; ++i) {
      for (TaskState s : all) {
        if (!sets[i].empty() && s < sets[i].back()) continue;
        auto more = sets[i];
        more.push_back(s);
        sets.push_back(more);
      }
    }
  }
  for (const auto& states : sets) {
    writeback::v1::TaskStateCounts c;
    for (TaskState s : states) {
      writeback::v1::TaskHead h;
      h.set_state(s);
      ASSERT_TRUE(CountTask(h, +1, &c));
    }
    EXPECT_EQ(SummarizeCounts(c).state, SummarizeTasks(states).state);
    EXPECT_EQ(SummarizeCounts(c).detail, SummarizeTasks(states).detail);
  }
  writeback::v1::TaskStateCounts c;
  writeback::v1::TaskHead h;
  h.set_state(writeback::v1::TASK_STATE_VERIFIED);
  EXPECT_FALSE(CountTask(h, -1, &c));  // never below zero
}

TEST(TaskStateForResultTest, Outcomes) {
  writeback::v1::Result r;
  r.set_outcome(writeback::v1::OUTCOME_ALREADY_COMPLIANT);
  EXPECT_EQ(TaskStateForResult(r), writeback::v1::TASK_STATE_VERIFIED);
  r.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
  EXPECT_EQ(TaskStateForResult(r), writeback::v1::TASK_STATE_APPLIED);
  r.set_outcome(writeback::v1::OUTCOME_REJECTED);
  r.set_reject_reason(writeback::v1::REJECT_REASON_BAD_SIGNATURE);
  EXPECT_EQ(TaskStateForResult(r), writeback::v1::TASK_STATE_REJECTED);
  r.set_reject_reason(writeback::v1::REJECT_REASON_EXPIRED);
  EXPECT_EQ(TaskStateForResult(r), writeback::v1::TASK_STATE_EXPIRED);
  r.set_outcome(writeback::v1::OUTCOME_UNSPECIFIED);
  EXPECT_EQ(TaskStateForResult(r), writeback::v1::TASK_STATE_UNSPECIFIED);
}

TEST_F(DispatcherTest, SubmitBuildsSignedTasksFromOneStatement) {
  const int wakes_before = session_.wakes;
  auto resp = d_->Submit(kOperator, MakeRequest({"alice", "bob"}));
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_THAT(resp->decision_id(), ::testing::MatchesRegex("d-[0-9a-f]{24}"));
  EXPECT_EQ(resp->state(), writeback::v1::DECISION_STATE_DISPATCHED);
  EXPECT_GT(session_.wakes, wakes_before);

  auto d = store_->GetDecision(resp->decision_id());
  ASSERT_TRUE(d.ok());
  writeback::v1::DecisionStatement st;
  ASSERT_TRUE(st.ParseFromString(d->statement()));
  EXPECT_EQ(st.requester(), kOperator);
  EXPECT_EQ(st.version(), resp->version());
  EXPECT_EQ(st.created_at_unix_ms(), clock_.NowUnixMs());
  EXPECT_EQ(st.expires_at_unix_ms(), clock_.NowUnixMs() + 600'000);  // config default ttl

  auto tasks = Tasks(resp->decision_id());
  ASSERT_EQ(tasks.size(), 2u);
  for (size_t i = 0; i < tasks.size(); ++i) {
    const auto& rec = tasks[i];
    EXPECT_THAT(rec.task_id(), ::testing::MatchesRegex("t-[0-9a-f]{24}"));
    EXPECT_EQ(rec.state(), writeback::v1::TASK_STATE_QUEUED);
    ASSERT_TRUE(envelope::VerifyWithKey(rec.signed_task(), writeback::v1::PAYLOAD_TYPE_TASK,
                                        dispatch_key_.public_key())
                    .ok());
    writeback::v1::Task t;
    ASSERT_TRUE(t.ParseFromString(rec.signed_task().payload()));
    EXPECT_EQ(t.task_id(), rec.task_id());
    EXPECT_EQ(t.audience(), kAgentA);
    EXPECT_EQ(t.statement(), d->statement());  // the exact bytes
    EXPECT_EQ(t.target_index(), i);
    EXPECT_EQ(t.target().object(), st.targets(i).object());
    EXPECT_EQ(t.connector_instance(), "hosts");
    EXPECT_EQ(t.operation(), "remove_key");
    EXPECT_EQ(t.decision_version(), st.version());
    EXPECT_EQ(t.not_before_unix_ms(), t.issued_at_unix_ms());
    EXPECT_EQ(t.expires_at_unix_ms(), st.expires_at_unix_ms());
    EXPECT_EQ(t.dispatch_key_id(), dispatch_key_.key_id());
  }
  auto next = d_->NextTasks(kAgentA, {}, 10);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->size(), 2u);
  EXPECT_EQ((*next)[0].task_id(), tasks[0].task_id());
}

TEST_F(DispatcherTest, VersionsIncreaseAcrossDecisions) {
  auto a = d_->Submit(kOperator, MakeRequest({"alice"}));
  auto b = d_->Submit(kOperator, MakeRequest({"alice"}));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_GT(b->version(), a->version());
}

struct BadSpec {
  std::string name;
  std::function<void(SubmitDecisionRequest*)> mutate;
  std::string field;
};

TEST_F(DispatcherTest, InvalidSpecsAreRefusedNamingTheFieldAndStoreNothing) {
  const std::vector<BadSpec> cases = {
      {"unknown instance", [](auto* r) { r->mutable_spec()->set_connector_instance("x"); },
       "spec.connector_instance: unknown instance 'x'"},
      {"no instance", [](auto* r) { r->mutable_spec()->clear_connector_instance(); },
       "spec.connector_instance"},
      {"op not advertised", [](auto* r) { r->mutable_spec()->set_operation("exclusive_set"); },
       "spec.operation"},
      {"bad fingerprint",
       [](auto* r) {
         r->mutable_spec()->mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(
             "MD5:x");
       },
       "spec.params.ssh_authorized_keys.fingerprint"},
      {"no params", [](auto* r) { r->mutable_spec()->clear_params(); }, "spec.params"},
      {"no targets", [](auto* r) { r->mutable_spec()->clear_targets(); }, "spec.targets"},
      {"bad target", [](auto* r) { r->mutable_spec()->add_targets()->set_object("Root;rm"); },
       "spec.targets[1].object"},
      {"duplicate target", [](auto* r) { r->mutable_spec()->add_targets()->set_object("alice"); },
       "spec.targets[1].object: duplicate of spec.targets[0]"},
      {"too many targets",
       [](auto* r) {
         for (int i = 0; i < kMaxTargets; ++i) {
           r->mutable_spec()->add_targets()->set_object(absl::StrCat("u", i));
         }
       },
       "spec.targets: at most 1000"},
      {"no reason", [](auto* r) { r->mutable_spec()->clear_reason(); }, "spec.reason"},
      {"long reason", [](auto* r) { r->mutable_spec()->set_reason(std::string(1025, 'r')); },
       "spec.reason"},
      {"long reference", [](auto* r) { r->mutable_spec()->set_reference(std::string(257, 'r')); },
       "spec.reference"},
      {"ttl too short", [](auto* r) { r->mutable_spec()->set_ttl_seconds(59); },
       "spec.ttl_seconds"},
      {"ttl too long", [](auto* r) { r->mutable_spec()->set_ttl_seconds(kMaxTtlSeconds + 1); },
       "spec.ttl_seconds"},
      {"control char in request id", [](auto* r) { r->set_request_id("a\nb"); }, "request_id"},
  };
  for (const auto& c : cases) {
    SubmitDecisionRequest req = MakeRequest({"alice"});
    c.mutate(&req);
    auto r = d_->Submit(kOperator, req);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.field)) << c.name;
  }
  EXPECT_EQ(DecisionCount(), 0u);
  auto out = store_->PeekOutbox(kAgentA, 10, nullptr);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->empty());
}

TEST_F(DispatcherTest, TtlBoundsAreAccepted) {
  auto req = MakeRequest({"alice"});
  req.mutable_spec()->set_ttl_seconds(kMinTtlSeconds);
  auto r = d_->Submit(kOperator, req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(store_->GetDecision(r->decision_id())->parsed().expires_at_unix_ms(),
            clock_.NowUnixMs() + 60'000);
}

TEST_F(DispatcherTest, RequestIdMakesSubmitIdempotent) {
  auto req = MakeRequest({"alice"});
  req.set_request_id("req-42");
  auto first = d_->Submit(kOperator, req);
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = d_->Submit(kOperator, req);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->decision_id(), first->decision_id());
  EXPECT_EQ(again->version(), first->version());
  EXPECT_EQ(DecisionCount(), 1u);

  // Concurrent submits of one new request id make one decision.
  req.set_request_id("req-43");
  std::vector<std::string> ids(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto r = d_->Submit(kOperator, req);
      if (r.ok()) ids[i] = r->decision_id();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(ids[0].empty());
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_EQ(DecisionCount(), 2u);
}

TEST_F(DispatcherTest, HelloChecksIdentityKeyAndInstanceOwnership) {
  auto other_key = crypto::Ed25519PrivateKey::Generate();
  auto w = d_->Hello(kAgentA, MakeTestHello(kAgentB, other_key));
  EXPECT_EQ(w.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("hello.agent_id"));

  w = d_->Hello(kAgentA, MakeTestHello(kAgentA, other_key));
  EXPECT_EQ(w.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(w.status().message(), "result key changed");

  // Another agent offering A's instance is refused for that instance (the
  // rest of its Hello is served), and decisions still go to A.
  w = d_->Hello(kAgentB, MakeTestHello(kAgentB, other_key, "hosts"));
  ASSERT_TRUE(w.ok()) << w.status();
  auto b_rec = store_->GetAgent(kAgentB);
  ASSERT_TRUE(b_rec.ok());
  EXPECT_EQ(b_rec->instances_size(), 0);
  ASSERT_EQ(b_rec->refused_instances_size(), 1);
  EXPECT_EQ(b_rec->refused_instances(0).instance().name(), "hosts");
  EXPECT_THAT(b_rec->refused_instances(0).reason(), HasSubstr(kAgentA));
  const std::string id = SubmitOk({"alice"});
  EXPECT_EQ(Tasks(id)[0].agent_id(), kAgentA);
  EXPECT_EQ(store_->GetDecision(id)->parsed().agent_id(), kAgentA);

  auto bad = MakeTestHello(kAgentB, other_key, "db");
  bad.set_result_public_key("short");
  EXPECT_THAT(std::string(d_->Hello(kAgentB, bad).status().message()),
              HasSubstr("hello.result_public_key"));

  // An unbound instance is refused too, until an operator binds it: then it
  // is served without a reconnect.
  w = d_->Hello(kAgentB, MakeTestHello(kAgentB, other_key, "db"));
  ASSERT_TRUE(w.ok()) << w.status();
  auto unbound = d_->Submit(kOperator, MakeRequest({"alice"}, "db"));
  EXPECT_EQ(unbound.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(unbound.status().message()), HasSubstr("not bound to any agent"));
  Bind("db", kAgentB);
  EXPECT_EQ(store_->GetAgent(kAgentB)->instances_size(), 1);
  EXPECT_EQ(store_->GetAgent(kAgentB)->refused_instances_size(), 0);
  auto bound = d_->Submit(kOperator, MakeRequest({"alice"}, "db"));
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_EQ(Tasks(bound->decision_id())[0].agent_id(), kAgentB);
  EXPECT_EQ(w->controlplane_id(), "spiffe://writeback.test/controlplane/cp");
  EXPECT_EQ(w->server_time_unix_ms(), clock_.NowUnixMs());
  EXPECT_EQ(w->heartbeat_interval_seconds(), 10u);
  EXPECT_EQ(w->max_in_flight(), 64u);

  // Same key again is fine; the record follows the latest hello.
  auto again = MakeTestHello(kAgentA, agent_key_);
  again.set_version("0.2.0");
  ASSERT_TRUE(d_->Hello(kAgentA, again).ok());
  auto rec = store_->GetAgent(kAgentA);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->version(), "0.2.0");
  EXPECT_EQ(rec->result_key_id(), agent_key_.key_id());
  EXPECT_EQ(rec->labels().at("site"), "lab");
}

TEST_F(DispatcherTest, AgentsSurviveARestart) {
  d_.reset();
  MakeDispatcher();
  auto other_key = crypto::Ed25519PrivateKey::Generate();
  EXPECT_EQ(d_->Hello(kAgentA, MakeTestHello(kAgentA, other_key)).status().message(),
            "result key changed");
  EXPECT_TRUE(d_->Submit(kOperator, MakeRequest({"alice"})).ok());
}

TEST_F(DispatcherTest, VerifiedResultsFinishTheDecision) {
  const std::string id = SubmitOk({"alice", "bob"});
  auto tasks = Tasks(id);
  ASSERT_TRUE(d_->AckTask(kAgentA, tasks[0].task_id()).ok());
  auto t0 = store_->GetTask(tasks[0].task_id());
  EXPECT_EQ(t0->state(), writeback::v1::TASK_STATE_DELIVERED);
  EXPECT_EQ(t0->delivery_attempts(), 1u);
  EXPECT_EQ(t0->delivered_at_unix_ms(), clock_.NowUnixMs());

  auto ack = d_->IntakeResult(kAgentA,
                              SignedResult(tasks[0], writeback::v1::OUTCOME_VERIFIED, agent_key_));
  EXPECT_TRUE(ack.accepted()) << ack.error();
  EXPECT_EQ(ack.task_id(), tasks[0].task_id());
  EXPECT_EQ(store_->GetDecision(id)->state(), writeback::v1::DECISION_STATE_DISPATCHED);
  // Finished tasks leave the outbox.
  auto next = d_->NextTasks(kAgentA, {}, 10);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].task_id(), tasks[1].task_id());

  ack = d_->IntakeResult(
      kAgentA, SignedResult(tasks[1], writeback::v1::OUTCOME_ALREADY_COMPLIANT, agent_key_));
  EXPECT_TRUE(ack.accepted()) << ack.error();
  auto d = store_->GetDecision(id);
  EXPECT_EQ(d->state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(d->finished_at_unix_ms(), clock_.NowUnixMs());
  auto t1 = store_->GetTask(tasks[1].task_id());
  EXPECT_EQ(t1->state(), writeback::v1::TASK_STATE_VERIFIED);
  EXPECT_EQ(t1->result().outcome(), writeback::v1::OUTCOME_ALREADY_COMPLIANT);
  EXPECT_TRUE(t1->has_signed_result());

  // An ack after the result changes nothing.
  ASSERT_TRUE(d_->AckTask(kAgentA, tasks[1].task_id()).ok());
  EXPECT_EQ(store_->GetTask(tasks[1].task_id())->state(), writeback::v1::TASK_STATE_VERIFIED);
  EXPECT_EQ(d_->rejected_results(), 0u);
}

TEST_F(DispatcherTest, AnUnverifiedTaskFailsTheDecisionWithACount) {
  const std::string id = SubmitOk({"alice", "bob", "carol"});
  auto tasks = Tasks(id);
  const writeback::v1::Outcome outcomes[] = {writeback::v1::OUTCOME_VERIFIED,
                                             writeback::v1::OUTCOME_UNVERIFIED,
                                             writeback::v1::OUTCOME_VERIFIED};
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(
        d_->IntakeResult(kAgentA, SignedResult(tasks[i], outcomes[i], agent_key_)).accepted());
  }
  auto d = store_->GetDecision(id);
  EXPECT_EQ(d->state(), writeback::v1::DECISION_STATE_FAILED);
  EXPECT_EQ(d->state_detail(), "1 of 3 tasks unverified");
  EXPECT_EQ(store_->GetTask(tasks[1].task_id())->state(), writeback::v1::TASK_STATE_APPLIED);
}

TEST_F(DispatcherTest, RejectedForExpiryMarksTheTaskExpired) {
  const std::string id = SubmitOk({"alice"});
  auto t = Tasks(id)[0];
  writeback::v1::Result r;
  r.set_task_id(t.task_id());
  r.set_agent_id(kAgentA);
  r.set_task_digest(crypto::Sha256(t.signed_task().payload()));
  r.set_outcome(writeback::v1::OUTCOME_REJECTED);
  r.set_reject_reason(writeback::v1::REJECT_REASON_EXPIRED);
  auto ack = d_->IntakeResult(kAgentA, envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT,
                                                      r.SerializeAsString(), agent_key_));
  EXPECT_TRUE(ack.accepted()) << ack.error();
  EXPECT_EQ(store_->GetTask(t.task_id())->state(), writeback::v1::TASK_STATE_EXPIRED);
  EXPECT_EQ(store_->GetDecision(id)->state(), writeback::v1::DECISION_STATE_EXPIRED);
}

TEST_F(DispatcherTest, BadResultsAreRefusedCountedAndChangeNothing) {
  const std::string id = SubmitOk({"alice"});
  auto t = Tasks(id)[0];
  auto other_key = crypto::Ed25519PrivateKey::Generate();
  Bind("db", kAgentB);
  ASSERT_TRUE(d_->Hello(kAgentB, MakeTestHello(kAgentB, other_key, "db")).ok());

  struct Case {
    std::string name;
    std::string agent;
    writeback::v1::SignedEnvelope env;
    std::string error;
  };
  auto wrong_digest = [&] {
    writeback::v1::Result r;
    r.set_task_id(t.task_id());
    r.set_agent_id(kAgentA);
    r.set_task_digest(crypto::Sha256("something else"));
    r.set_outcome(writeback::v1::OUTCOME_VERIFIED);
    return envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT, r.SerializeAsString(), agent_key_);
  }();
  auto as_task_type = SignedResult(t, writeback::v1::OUTCOME_VERIFIED, agent_key_);
  as_task_type =
      envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, as_task_type.payload(), agent_key_);
  auto tampered = SignedResult(t, writeback::v1::OUTCOME_VERIFIED, agent_key_);
  tampered.mutable_payload()->back() ^= 1;
  auto unknown_task = t;
  unknown_task.set_task_id("t-000000000000000000000000");

  const std::vector<Case> cases = {
      {"signed with another key", kAgentA,
       SignedResult(t, writeback::v1::OUTCOME_VERIFIED, other_key), "registered result key"},
      {"tampered payload", kAgentA, tampered, "registered result key"},
      {"wrong payload type", kAgentA, as_task_type, "payload_type"},
      {"task of another agent", kAgentB,
       SignedResult(t, writeback::v1::OUTCOME_VERIFIED, other_key, kAgentB),
       "not addressed to this agent"},
      {"claims another agent", kAgentA,
       SignedResult(t, writeback::v1::OUTCOME_VERIFIED, agent_key_, kAgentB), "result.agent_id"},
      {"wrong digest", kAgentA, wrong_digest, "result.task_digest"},
      {"unknown task", kAgentA,
       SignedResult(unknown_task, writeback::v1::OUTCOME_VERIFIED, agent_key_), "unknown task"},
      {"no outcome", kAgentA, SignedResult(t, writeback::v1::OUTCOME_UNSPECIFIED, agent_key_),
       "result.outcome"},
  };
  uint64_t rejected = 0;
  for (const auto& c : cases) {
    auto ack = d_->IntakeResult(c.agent, c.env);
    EXPECT_FALSE(ack.accepted()) << c.name;
    EXPECT_THAT(ack.error(), HasSubstr(c.error)) << c.name;
    EXPECT_EQ(d_->rejected_results(), ++rejected) << c.name;
  }
  auto stored = store_->GetTask(t.task_id());
  EXPECT_EQ(stored->state(), writeback::v1::TASK_STATE_QUEUED);
  EXPECT_FALSE(stored->has_signed_result());
  EXPECT_EQ(store_->GetDecision(id)->state(), writeback::v1::DECISION_STATE_DISPATCHED);
}

TEST_F(DispatcherTest, DuplicateResultIsAckedAndChangesNothing) {
  const std::string id = SubmitOk({"alice"});
  auto t = Tasks(id)[0];
  ASSERT_TRUE(
      d_->IntakeResult(kAgentA, SignedResult(t, writeback::v1::OUTCOME_VERIFIED, agent_key_))
          .accepted());
  auto before = store_->GetTask(t.task_id());
  clock_.Advance(absl::Minutes(1));
  auto ack = d_->IntakeResult(kAgentA, SignedResult(t, writeback::v1::OUTCOME_FAILED, agent_key_));
  EXPECT_TRUE(ack.accepted());
  auto after = store_->GetTask(t.task_id());
  EXPECT_EQ(after->SerializeAsString(), before->SerializeAsString());
  EXPECT_EQ(store_->GetDecision(id)->state(), writeback::v1::DECISION_STATE_VERIFIED);
}

TEST_F(DispatcherTest, NextTasksKeepsDecisionOrderAndSkipsInFlight) {
  const std::string first = SubmitOk({"alice", "bob"});
  const std::string second = SubmitOk({"carol"});
  auto t1 = Tasks(first);
  auto t2 = Tasks(second);
  auto next = d_->NextTasks(kAgentA, {}, 10);
  ASSERT_TRUE(next.ok());
  std::vector<std::string> ids;
  for (const auto& t : *next) ids.push_back(t.task_id());
  EXPECT_THAT(ids, ElementsAre(t1[0].task_id(), t1[1].task_id(), t2[0].task_id()));

  next = d_->NextTasks(kAgentA, {t1[0].task_id()}, 1);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].task_id(), t1[1].task_id());
}

TEST_F(DispatcherTest, SweepExpiresOpenTasksUsingTheInjectedClock) {
  const std::string all_open = SubmitOk({"alice", "bob"});
  const std::string half_done = SubmitOk({"carol", "dave"});
  const std::string done = SubmitOk({"erin"});
  auto half = Tasks(half_done);
  ASSERT_TRUE(
      d_->IntakeResult(kAgentA, SignedResult(half[0], writeback::v1::OUTCOME_VERIFIED, agent_key_))
          .accepted());
  ASSERT_TRUE(d_->IntakeResult(kAgentA, SignedResult(Tasks(done)[0],
                                                     writeback::v1::OUTCOME_VERIFIED, agent_key_))
                  .accepted());

  // At the expiry instant nothing is past it yet.
  clock_.Advance(absl::Seconds(600));
  auto n = d_->SweepExpired();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0u);

  clock_.Advance(absl::Milliseconds(1));
  n = d_->SweepExpired();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 3u);
  auto d = store_->GetDecision(all_open);
  EXPECT_EQ(d->state(), writeback::v1::DECISION_STATE_EXPIRED);
  EXPECT_EQ(d->finished_at_unix_ms(), clock_.NowUnixMs());
  for (const auto& t : Tasks(all_open)) {
    EXPECT_EQ(t.state(), writeback::v1::TASK_STATE_EXPIRED);
    EXPECT_EQ(t.finished_at_unix_ms(), clock_.NowUnixMs());
  }
  d = store_->GetDecision(half_done);
  EXPECT_EQ(d->state(), writeback::v1::DECISION_STATE_FAILED);
  EXPECT_EQ(d->state_detail(), "1 of 2 tasks expired");
  EXPECT_EQ(store_->GetDecision(done)->state(), writeback::v1::DECISION_STATE_VERIFIED);
  auto out = d_->NextTasks(kAgentA, {}, 10);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->empty());
  // Nothing left to expire.
  EXPECT_EQ(*d_->SweepExpired(), 0u);

  // A late but genuine result for an expired task is still recorded.
  auto late = Tasks(all_open);
  EXPECT_TRUE(
      d_->IntakeResult(kAgentA, SignedResult(late[0], writeback::v1::OUTCOME_VERIFIED, agent_key_))
          .accepted());
  EXPECT_EQ(store_->GetTask(late[0].task_id())->state(), writeback::v1::TASK_STATE_VERIFIED);
  d = store_->GetDecision(all_open);
  EXPECT_EQ(d->state(), writeback::v1::DECISION_STATE_FAILED);
  EXPECT_EQ(d->state_detail(), "1 of 2 tasks expired");
}

TEST_F(DispatcherTest, CancelWithdrawsOpenTasksAndALateResultIsStillRecorded) {
  const std::string id = SubmitOk({"alice", "bob", "carol"});
  auto tasks = Tasks(id);
  ASSERT_TRUE(d_->AckTask(kAgentA, tasks[1].task_id()).ok());  // DELIVERED
  ASSERT_TRUE(
      d_->IntakeResult(kAgentA, SignedResult(tasks[2], writeback::v1::OUTCOME_VERIFIED, agent_key_))
          .accepted());
  auto c = d_->Cancel(kOperator, id);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->tasks_canceled, 2u);
  EXPECT_EQ(c->state, writeback::v1::DECISION_STATE_CANCELED);
  EXPECT_EQ(c->state_detail, "2 of 3 tasks canceled, 1 of 3 tasks verified");
  EXPECT_EQ(store_->GetTask(tasks[0].task_id())->state(), writeback::v1::TASK_STATE_CANCELED);
  EXPECT_EQ(store_->GetTask(tasks[1].task_id())->state(), writeback::v1::TASK_STATE_CANCELED);
  // Withdrawn: nothing left to send.
  auto next = d_->NextTasks(kAgentA, {}, 10);
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(next->empty());
  // Finished decisions cannot be canceled again.
  EXPECT_EQ(d_->Cancel(kOperator, id).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(d_->Cancel(kOperator, "d-missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(d_->Cancel(kOperator, "").status().code(), absl::StatusCode::kInvalidArgument);
  // The delivered task was applied after all: its result is the truth.
  ASSERT_TRUE(
      d_->IntakeResult(kAgentA, SignedResult(tasks[1], writeback::v1::OUTCOME_VERIFIED, agent_key_))
          .accepted());
  EXPECT_EQ(store_->GetTask(tasks[1].task_id())->state(), writeback::v1::TASK_STATE_VERIFIED);
  EXPECT_EQ(store_->GetDecision(id)->state(), writeback::v1::DECISION_STATE_CANCELED);
}

TEST_F(DispatcherTest, ANewerDecisionTakesOverQueuedOlderTasksOnlyWhereItCoversThem) {
  const std::string older = SubmitOk({"alice", "bob"});
  const std::string delivered = SubmitOk({"carol"});
  auto old_tasks = Tasks(older);
  ASSERT_TRUE(d_->AckTask(kAgentA, Tasks(delivered)[0].task_id()).ok());
  // The same operation and parameters for alice and carol: it covers them.
  const std::string newer = SubmitOk({"alice", "carol"});
  auto new_tasks = Tasks(newer);
  // alice's older task was still QUEUED: taken over, never delivered.
  auto alice = *store_->GetTask(old_tasks[0].task_id());
  EXPECT_EQ(alice.state(), writeback::v1::TASK_STATE_SUPERSEDED);
  EXPECT_EQ(alice.covered_by_task_id(), new_tasks[0].task_id());
  EXPECT_EQ(alice.covered_by_decision_id(), newer);
  EXPECT_THAT(alice.covered_because(), HasSubstr("same parameters"));
  ASSERT_EQ(new_tasks[0].covers_size(), 1);
  EXPECT_EQ(new_tasks[0].covers(0).task_id(), alice.task_id());
  // bob is not a target of the newer decision; carol's task was delivered.
  EXPECT_EQ(store_->GetTask(old_tasks[1].task_id())->state(), writeback::v1::TASK_STATE_QUEUED);
  EXPECT_EQ(Tasks(delivered)[0].state(), writeback::v1::TASK_STATE_DELIVERED);
  auto next = d_->NextTasks(kAgentA, {}, 10);
  ASSERT_TRUE(next.ok());
  std::vector<std::string> ids;
  for (const auto& t : *next) ids.push_back(t.task_id());
  EXPECT_THAT(ids, ElementsAre(old_tasks[1].task_id(), Tasks(delivered)[0].task_id(),
                               new_tasks[0].task_id(), new_tasks[1].task_id()));
  // bob verified: the older decision waits for the task covering alice.
  ASSERT_TRUE(d_->IntakeResult(kAgentA, SignedResult(old_tasks[1], writeback::v1::OUTCOME_VERIFIED,
                                                     agent_key_))
                  .accepted());
  auto d = store_->GetDecision(older);
  EXPECT_EQ(d->state(), writeback::v1::DECISION_STATE_DISPATCHED);
  EXPECT_EQ(d->state_detail(),
            absl::StrCat("1 of 2 tasks covered by decision ", newer, ", waiting for it"));
  // The covering task verified: so is the older decision, never CANCELED.
  ASSERT_TRUE(d_->IntakeResult(kAgentA, SignedResult(new_tasks[0], writeback::v1::OUTCOME_VERIFIED,
                                                     agent_key_))
                  .accepted());
  d = store_->GetDecision(older);
  EXPECT_EQ(d->state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(d->state_detail(),
            absl::StrCat("all 2 tasks verified (1 of 2 covered by decision ", newer, ")"));
  // The newer decision itself waits for carol.
  EXPECT_EQ(store_->GetDecision(newer)->state(), writeback::v1::DECISION_STATE_DISPATCHED);
}

TEST_F(DispatcherTest, DecisionsThatDoNotCoverEachOtherBothRunInSubmitOrder) {
  // The sequence the first test round found: remove key K0, then key K1 of
  // the same user, while the agent is away.
  SubmitDecisionRequest k0 = MakeRequest({"deploy"});
  SubmitDecisionRequest k1 = MakeRequest({"deploy"});
  k1.mutable_spec()->mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(
      "SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB");
  auto first = d_->Submit(kOperator, k0);
  auto second = d_->Submit(kOperator, k1);
  ASSERT_TRUE(first.ok() && second.ok());
  auto t0 = Tasks(first->decision_id())[0];
  auto t1 = Tasks(second->decision_id())[0];
  EXPECT_EQ(t0.state(), writeback::v1::TASK_STATE_QUEUED);
  EXPECT_TRUE(t0.covered_by_task_id().empty());
  auto next = d_->NextTasks(kAgentA, {}, 10);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->size(), 2u);
  EXPECT_EQ((*next)[0].task_id(), t0.task_id());
  EXPECT_EQ((*next)[1].task_id(), t1.task_id());
  for (const auto& t : {t0, t1}) {
    ASSERT_TRUE(
        d_->IntakeResult(kAgentA, SignedResult(t, writeback::v1::OUTCOME_VERIFIED, agent_key_))
            .accepted());
  }
  EXPECT_EQ(store_->GetDecision(first->decision_id())->state(),
            writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(store_->GetDecision(second->decision_id())->state(),
            writeback::v1::DECISION_STATE_VERIFIED);
}

TEST_F(DispatcherTest, ACanceledCoveringDecisionGivesTheTasksItCoveredBack) {
  const std::string older = SubmitOk({"alice"});
  const std::string newer = SubmitOk({"alice"});
  const auto old_task = Tasks(older)[0];
  EXPECT_EQ(store_->GetTask(old_task.task_id())->state(), writeback::v1::TASK_STATE_SUPERSEDED);
  // Only an operator's cancel of the NEWER decision: the older one runs.
  ASSERT_TRUE(d_->Cancel(kOperator, newer).ok());
  auto back = *store_->GetTask(old_task.task_id());
  EXPECT_EQ(back.state(), writeback::v1::TASK_STATE_QUEUED);
  EXPECT_TRUE(back.covered_by_task_id().empty());
  auto next = d_->NextTasks(kAgentA, {}, 10);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].task_id(), old_task.task_id());
  ASSERT_TRUE(
      d_->IntakeResult(kAgentA, SignedResult(old_task, writeback::v1::OUTCOME_VERIFIED, agent_key_))
          .accepted());
  EXPECT_EQ(store_->GetDecision(older)->state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(store_->GetDecision(newer)->state(), writeback::v1::DECISION_STATE_CANCELED);
}

TEST_F(DispatcherTest, ACoveredDecisionFailsWithItsCoveringTask) {
  const std::string older = SubmitOk({"alice"});
  const std::string newer = SubmitOk({"alice"});
  ASSERT_TRUE(d_->IntakeResult(kAgentA, SignedResult(Tasks(newer)[0], writeback::v1::OUTCOME_FAILED,
                                                     agent_key_))
                  .accepted());
  auto d = store_->GetDecision(older);
  EXPECT_EQ(d->state(), writeback::v1::DECISION_STATE_FAILED);
  EXPECT_THAT(d->state_detail(), HasSubstr(absl::StrCat("covered by decision ", newer)));
  // An operator can still cancel nothing: the older decision is finished.
  EXPECT_EQ(d_->Cancel(kOperator, older).status().code(), absl::StatusCode::kFailedPrecondition);
}

// "KIND actor old->new" of the audit chain entries about `decision_id`.
std::vector<std::string> AuditOf(Store* store, const std::string& decision_id) {
  std::vector<std::string> out;
  EXPECT_TRUE(store
                  ->ScanAudit(1,
                              [&](uint64_t, absl::string_view value) {
                                writeback::v1::AuditEntry entry;
                                writeback::v1::AuditEvent e;
                                EXPECT_TRUE(entry.ParseFromArray(value.data(),
                                                                 static_cast<int>(value.size())));
                                EXPECT_TRUE(e.ParseFromString(entry.event()));
                                if (e.decision_id() != decision_id) return true;
                                std::string line =
                                    absl::StrCat(audit::KindName(e.kind()), " ",
                                                 e.actor().substr(e.actor().rfind('/') + 1));
                                if (!e.new_state().empty()) {
                                  absl::StrAppend(&line, " ", e.old_state(), "->", e.new_state());
                                }
                                out.push_back(line);
                                return true;
                              })
                  .ok());
  return out;
}

TEST_F(DispatcherTest, ExpiryTakeOverAndCancelAreInTheAuditChain) {
  const std::string older = SubmitOk({"alice"});
  const std::string newer = SubmitOk({"alice"});  // takes over older's queued task
  const std::string canceled = SubmitOk({"bob"});
  ASSERT_TRUE(d_->Cancel(kOperator, canceled).ok());
  clock_.Advance(absl::Seconds(601));
  ASSERT_EQ(*d_->SweepExpired(), 1u);  // newer's task; older's follows it

  EXPECT_THAT(
      AuditOf(store_.get(), older),
      ElementsAre("DECISION_SUBMITTED alice ->DECISION_STATE_DISPATCHED",
                  "DECISION_DISPATCHED cp ->TASK_STATE_QUEUED",
                  "TASK_STATE_CHANGED cp TASK_STATE_QUEUED->TASK_STATE_SUPERSEDED",
                  "TASK_STATE_CHANGED cp TASK_STATE_SUPERSEDED->TASK_STATE_EXPIRED",
                  "DECISION_STATE_CHANGED cp DECISION_STATE_DISPATCHED->DECISION_STATE_EXPIRED"));
  EXPECT_THAT(
      AuditOf(store_.get(), newer),
      ElementsAre("DECISION_SUBMITTED alice ->DECISION_STATE_DISPATCHED",
                  "DECISION_DISPATCHED cp ->TASK_STATE_QUEUED",
                  "TASK_STATE_CHANGED cp TASK_STATE_QUEUED->TASK_STATE_EXPIRED",
                  "DECISION_STATE_CHANGED cp DECISION_STATE_DISPATCHED->DECISION_STATE_EXPIRED"));
  EXPECT_THAT(
      AuditOf(store_.get(), canceled),
      ElementsAre(
          "DECISION_SUBMITTED alice ->DECISION_STATE_DISPATCHED",
          "DECISION_DISPATCHED cp ->TASK_STATE_QUEUED", "DECISION_CANCELED alice",
          "TASK_STATE_CHANGED alice TASK_STATE_QUEUED->TASK_STATE_CANCELED",
          "DECISION_STATE_CHANGED alice DECISION_STATE_DISPATCHED->DECISION_STATE_CANCELED"));
  // An expired task's late result is recorded, with the changes it causes.
  const auto late = Tasks(newer)[0];
  ASSERT_TRUE(
      d_->IntakeResult(kAgentA, SignedResult(late, writeback::v1::OUTCOME_VERIFIED, agent_key_))
          .accepted());
  auto after = AuditOf(store_.get(), newer);
  ASSERT_EQ(after.size(), 7u);
  EXPECT_EQ(after[4], "TASK_RESULT a");
  EXPECT_EQ(after[5], "TASK_STATE_CHANGED a TASK_STATE_EXPIRED->TASK_STATE_VERIFIED");
  EXPECT_EQ(after[6],
            absl::StrCat("DECISION_STATE_CHANGED a DECISION_STATE_EXPIRED->",
                         writeback::v1::DecisionState_Name(store_->GetDecision(newer)->state())));
}

TEST_F(DispatcherTest, TaskCountsStayEqualToTheTasksThroughEveryChange) {
  const std::string d1 = SubmitOk({"alice", "bob", "carol", "dave"});
  const auto t1 = Tasks(d1);
  ExpectCountsMatchTasks(store_.get(), d1, "submitted");
  ASSERT_TRUE(d_->AckTask(kAgentA, t1[0].task_id()).ok());
  ASSERT_TRUE(
      d_->IntakeResult(kAgentA, SignedResult(t1[1], writeback::v1::OUTCOME_VERIFIED, agent_key_))
          .accepted());
  ExpectCountsMatchTasks(store_.get(), d1, "ack and result");
  // A duplicate result changes nothing.
  ASSERT_TRUE(
      d_->IntakeResult(kAgentA, SignedResult(t1[1], writeback::v1::OUTCOME_VERIFIED, agent_key_))
          .accepted());
  ExpectCountsMatchTasks(store_.get(), d1, "duplicate result");

  // Take-over of carol (queued), not of alice (delivered).
  const std::string d2 = SubmitOk({"carol", "erin"});
  ExpectCountsMatchTasks(store_.get(), d1, "taken over");
  ExpectCountsMatchTasks(store_.get(), d2, "taking over");
  EXPECT_EQ(store_->GetDecision(d1)->task_counts().covered(), 1u);
  // The covering decision canceled: carol is given back.
  ASSERT_TRUE(d_->Cancel(kOperator, d2).ok());
  ExpectCountsMatchTasks(store_.get(), d1, "given back");
  ExpectCountsMatchTasks(store_.get(), d2, "canceled");
  EXPECT_EQ(store_->GetDecision(d1)->task_counts().covered(), 0u);
  // Taken over again; the covering task fails: d1 follows it (still covered).
  const std::string d3 = SubmitOk({"carol"});
  ASSERT_TRUE(d_->IntakeResult(
                    kAgentA, SignedResult(Tasks(d3)[0], writeback::v1::OUTCOME_FAILED, agent_key_))
                  .accepted());
  ExpectCountsMatchTasks(store_.get(), d1, "covering task failed");
  ExpectCountsMatchTasks(store_.get(), d3, "failed");
  EXPECT_EQ(store_->GetDecision(d3)->state(), writeback::v1::DECISION_STATE_FAILED);

  // Restart: the counts are durable.
  d_.reset();
  store_.reset();
  auto s = RocksDbStore::Open(dir_.Sub("db"));
  ASSERT_TRUE(s.ok()) << s.status();
  store_ = std::move(*s);
  MakeDispatcher();
  ExpectCountsMatchTasks(store_.get(), d1, "after restart");

  // A decision stored before the counts existed: counted once, then kept.
  auto legacy = *store_->GetDecision(d1);
  legacy.clear_task_counts();
  ASSERT_TRUE(store_->SaveProgress(legacy, true, {}, {}).ok());
  ASSERT_FALSE(store_->GetDecision(d1)->has_task_counts());
  ASSERT_TRUE(
      d_->IntakeResult(kAgentA, SignedResult(t1[3], writeback::v1::OUTCOME_UNVERIFIED, agent_key_))
          .accepted());
  ExpectCountsMatchTasks(store_.get(), d1, "counted after migration");

  // Expiry of what is left open, then a late result for an expired task.
  const std::string d4 = SubmitOk({"frank", "gina"});
  clock_.Advance(absl::Seconds(601));
  ASSERT_TRUE(d_->SweepExpired().ok());
  ExpectCountsMatchTasks(store_.get(), d1, "expired");
  ExpectCountsMatchTasks(store_.get(), d4, "expired");
  EXPECT_EQ(store_->GetDecision(d4)->state(), writeback::v1::DECISION_STATE_EXPIRED);
  ASSERT_TRUE(d_->IntakeResult(kAgentA, SignedResult(Tasks(d4)[0], writeback::v1::OUTCOME_VERIFIED,
                                                     agent_key_))
                  .accepted());
  ExpectCountsMatchTasks(store_.get(), d4, "late result");
  EXPECT_EQ(store_->GetDecision(d4)->state(), writeback::v1::DECISION_STATE_FAILED);
}

TEST_F(DispatcherTest, HeartbeatUpdatesLastSeenAndHealth) {
  clock_.Advance(absl::Seconds(5));
  writeback::v1::Heartbeat hb;
  auto* h = hb.add_instances();
  h->set_name("hosts");
  h->set_healthy(false);
  h->set_health_detail("cannot read /home");
  ASSERT_TRUE(d_->Heartbeat(kAgentA, hb).ok());
  auto agents = d_->Agents();
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].last_seen_unix_ms(), clock_.NowUnixMs());
  ASSERT_EQ(agents[0].instances_size(), 1);
  EXPECT_FALSE(agents[0].instances(0).healthy());
  // Health changes are persisted at once.
  EXPECT_EQ(store_->GetAgent(kAgentA)->instances(0).health_detail(), "cannot read /home");
  EXPECT_EQ(d_->Heartbeat(kAgentB, hb).code(), absl::StatusCode::kNotFound);
}

TEST(SessionRegistryTest, NewSessionEndsTheOlderOne) {
  SessionRegistry reg;
  FakeSession a, b;
  reg.Register(kAgentA, &a, 10);
  reg.Register(kAgentA, &b, 20);
  EXPECT_EQ(a.ended.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(b.ended.ok());
  EXPECT_EQ(*reg.ConnectedSince(kAgentA), 20);
  reg.Unregister(kAgentA, &a);  // the older one leaving does not remove the newer
  EXPECT_EQ(reg.size(), 1u);
  reg.Wake(kAgentA);
  EXPECT_EQ(b.wakes, 1);
  EXPECT_EQ(a.wakes, 0);
  reg.Unregister(kAgentA, &b);
  EXPECT_FALSE(reg.ConnectedSince(kAgentA).has_value());
}

TEST(SessionRegistryTest, WakeDueWakesOnlyTheStreamsWithATimeoutDue) {
  SessionRegistry reg;
  FakeSession a, b, idle;
  reg.Register(kAgentA, &a, 10);
  reg.Register(kAgentB, &b, 10);
  reg.Register("spiffe://writeback.test/agent/idle", &idle, 10);
  reg.WakeAt(kAgentA, &a, 1000);
  reg.WakeAt(kAgentB, &b, 5000);
  reg.WakeAt(kAgentB, &a, 100);  // not B's live session: ignored
  EXPECT_EQ(reg.WakeDue(999), 0u);
  EXPECT_EQ(reg.WakeDue(1000), 1u);
  EXPECT_EQ(a.wakes, 1);
  EXPECT_EQ(reg.WakeDue(2000), 0u);  // a request is used once
  reg.WakeAt(kAgentB, &b, 3000);     // replaces the earlier one
  EXPECT_EQ(reg.WakeDue(4000), 1u);
  EXPECT_EQ(b.wakes, 1);
  reg.WakeAt(kAgentA, &a, 6000);
  reg.WakeAt(kAgentA, &a, 0);  // canceled
  reg.WakeAt(kAgentB, &b, 6000);
  reg.Unregister(kAgentB, &b);  // leaving forgets its request
  EXPECT_EQ(reg.WakeDue(10000), 0u);
  EXPECT_EQ(a.wakes, 1);
  EXPECT_EQ(b.wakes, 1);
  EXPECT_EQ(idle.wakes, 0);
  reg.Unregister(kAgentA, &a);
  reg.Unregister("spiffe://writeback.test/agent/idle", &idle);
}

}  // namespace
}  // namespace wb::controlplane
