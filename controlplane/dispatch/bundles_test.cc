// Air-gapped bundles on the control plane (bundles.cc) against a real
// RocksDB store: exported tasks are never sent online; a result bundle is
// recorded exactly as online results are; every refused import records
// nothing (decision state, tasks and audit chain unchanged).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/bundle/bundle.h"
#include "common/envelope/envelope.h"
#include "common/testing/temp_dir.h"
#include "controlplane/dispatch/dispatcher.h"
#include "controlplane/dispatch/test_hello.h"
#include "controlplane/store/rocksdb_store.h"

namespace wb::controlplane {
namespace {

using ::testing::HasSubstr;
using writeback::v1::SignedEnvelope;
using writeback::v1::TaskRecord;

constexpr char kAgentA[] = "spiffe://writeback.test/agent/a";
constexpr char kAgentB[] = "spiffe://writeback.test/agent/b";
constexpr char kOperator[] = "spiffe://writeback.test/operator/alice";
constexpr char kCp[] = "spiffe://writeback.test/controlplane/cp";
const std::string kFingerprint = "SHA256:" + std::string(43, 'A');

class FakeSession : public AgentSession {
 public:
  void Wake() override {}
  void End(const absl::Status&) override {}
};

class BundlesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = RocksDbStore::Open(dir_.Sub("db"));
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    DispatcherOptions o;
    o.controlplane_id = kCp;
    o.default_ttl_seconds = 3600;
    o.max_in_flight = 2;
    auto d = Dispatcher::Create(store_.get(), &clock_, dispatch_key_, &sessions_, o);
    ASSERT_TRUE(d.ok()) << d.status();
    d_ = std::move(*d);
    // Both agents connected once (result keys registered), then went away.
    ASSERT_TRUE(d_->BindInstance(kOperator, "hosts", kAgentA, "test").ok());
    ASSERT_TRUE(d_->BindInstance(kOperator, "other", kAgentB, "test").ok());
    ASSERT_TRUE(d_->Hello(kAgentA, MakeTestHello(kAgentA, key_a_, "hosts", {"remove_key"})).ok());
    ASSERT_TRUE(d_->Hello(kAgentB, MakeTestHello(kAgentB, key_b_, "other", {"remove_key"})).ok());
  }

  std::string Submit(std::vector<std::string> users, const std::string& instance = "hosts") {
    writeback::v1::SubmitDecisionRequest r;
    auto* s = r.mutable_spec();
    s->set_connector_instance(instance);
    s->set_operation("remove_key");
    s->mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(kFingerprint);
    for (const auto& u : users) s->add_targets()->set_object(u);
    s->set_reason("stale deploy key");
    auto resp = d_->Submit(kOperator, r);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->decision_id() : "";
  }

  TaskRecord Task(const std::string& id) { return *store_->GetTask(id); }
  writeback::v1::DecisionRecord Decision(const std::string& id) { return *store_->GetDecision(id); }

  // The agent's answer to one task as the executor would sign it.
  SignedEnvelope Result(
      const SignedEnvelope& task_env, writeback::v1::Outcome outcome,
      const crypto::Ed25519PrivateKey& key, const std::string& agent = kAgentA,
      writeback::v1::RejectReason reason = writeback::v1::REJECT_REASON_UNSPECIFIED) {
    writeback::v1::Task t;
    EXPECT_TRUE(t.ParseFromString(task_env.payload()));
    writeback::v1::Result r;
    r.set_task_id(t.task_id());
    r.set_agent_id(agent);
    writeback::v1::DecisionStatement statement;
    EXPECT_TRUE(statement.ParseFromString(t.statement()));
    r.set_decision_id(statement.decision_id());
    r.set_decision_version(t.decision_version());
    r.set_task_digest(crypto::Sha256(task_env.payload()));
    r.set_outcome(outcome);
    r.set_reject_reason(reason);
    r.mutable_verification()->set_outcome(outcome);
    return envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT, r.SerializeAsString(), key);
  }

  // A result bundle file answering every task of `bundle_file`.
  std::string ResultFile(
      const std::string& bundle_file, writeback::v1::Outcome outcome,
      const crypto::Ed25519PrivateKey& key, const std::string& agent = kAgentA,
      writeback::v1::RejectReason reason = writeback::v1::REJECT_REASON_UNSPECIFIED) {
    auto b = bundle::ParseTaskBundle(bundle_file, "t");
    EXPECT_TRUE(b.ok()) << b.status();
    writeback::v1::BundleManifest m;
    EXPECT_TRUE(m.ParseFromString(b->manifest().payload()));
    std::vector<SignedEnvelope> results;
    for (const auto& t : b->tasks()) results.push_back(Result(t, outcome, key, agent, reason));
    return bundle::MakeResultBundle(agent, b->manifest(), m, std::move(results), clock_.NowUnixMs(),
                                    key)
        .SerializeAsString();
  }

  uint64_t AuditSeq() { return store_->AuditHead()->seq; }

  // Imports `file`, expects a refusal naming `words`, and that nothing
  // changed: audit chain, decision state, and no task got a result.
  void ExpectRefusedAndNothingRecorded(const std::string& file, const std::string& words,
                                       const std::string& decision_id) {
    const uint64_t seq = AuditSeq();
    const auto state = Decision(decision_id).state();
    auto r = d_->ImportBundle(kOperator, file);
    ASSERT_FALSE(r.ok()) << words;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(words));
    EXPECT_EQ(AuditSeq(), seq) << words;
    EXPECT_EQ(Decision(decision_id).state(), state) << words;
    const auto d = Decision(decision_id);
    for (const auto& id : d.task_ids()) {
      EXPECT_FALSE(Task(id).has_signed_result()) << words;
    }
  }

  wb::testing::TempDir dir_;
  FakeClock clock_;
  crypto::Ed25519PrivateKey dispatch_key_ = crypto::Ed25519PrivateKey::Generate();
  crypto::Ed25519PrivateKey key_a_ = crypto::Ed25519PrivateKey::Generate();
  crypto::Ed25519PrivateKey key_b_ = crypto::Ed25519PrivateKey::Generate();
  SessionRegistry sessions_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<Dispatcher> d_;
};

TEST_F(BundlesTest, ExportedTasksTravelOfflineAndAreNeverSentOnline) {
  const std::string id = Submit({"deploy", "ci", "backup"});
  auto e = d_->ExportBundle(kOperator, kAgentA, 7 * 24 * 3600);
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->tasks_size(), 3);
  // The decision expires in an hour: every task says its expiry was shortened.
  EXPECT_THAT(e->tasks(0).detail(), HasSubstr("shortened to the decision's own expiry"));
  EXPECT_EQ(e->tasks(0).expires_at_unix_ms(), Decision(id).parsed().expires_at_unix_ms());

  // The file is a valid bundle for agent a, and the stored tasks are its tasks.
  auto b = bundle::ParseTaskBundle(e->bundle_file(), "t");
  ASSERT_TRUE(b.ok()) << b.status();
  envelope::Keyring keys;
  keys.Add(dispatch_key_.public_key());
  auto m = bundle::CheckTaskBundle(*b, keys, kAgentA, clock_.Now(), absl::Seconds(60));
  ASSERT_TRUE(m.ok()) << m.status();
  for (int i = 0; i < 3; ++i) {
    TaskRecord t = Task(m->entries(i).task_id());
    EXPECT_EQ(t.bundle_id(), e->bundle_id());
    EXPECT_EQ(t.signed_task().payload(), b->tasks(i).payload());
    EXPECT_EQ(t.state(), writeback::v1::TASK_STATE_QUEUED);
  }

  // The agent connects: nothing is sent online, nothing redelivered.
  FakeSession session;
  sessions_.Register(kAgentA, &session, clock_.NowUnixMs());
  auto next = d_->NextTasks(kAgentA, {}, 64);
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(next->empty());
  auto again = d_->Redeliver(kAgentA, {m->entries(0).task_id()});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());

  // A second export has nothing left: they travel in the first bundle.
  auto e2 = d_->ExportBundle(kOperator, kAgentA, 0);
  ASSERT_FALSE(e2.ok());
  EXPECT_THAT(std::string(e2.status().message()),
              HasSubstr(absl::StrCat("travelling in bundle ", e->bundle_id())));

  // Tasks queued while the agent is connected: the first max_in_flight (2)
  // may be on its stream and stay online; the rest can be exported.
  const std::string later = Submit({"u1", "u2", "u3"});
  auto e3 = d_->ExportBundle(kOperator, kAgentA, 0);
  ASSERT_TRUE(e3.ok()) << e3.status();
  EXPECT_EQ(e3->tasks_size(), 1);
  ASSERT_EQ(e3->skipped_size(), 5);
  int in_flight = 0;
  for (const auto& s : e3->skipped()) {
    if (s.detail() == "may be in flight on the agent's live stream") ++in_flight;
  }
  EXPECT_EQ(in_flight, 2);
  auto online = d_->NextTasks(kAgentA, {}, 64);
  ASSERT_TRUE(online.ok());
  EXPECT_EQ(online->size(), 2u);
  for (const auto& t : *online) EXPECT_EQ(t.decision_id(), later);
  sessions_.Unregister(kAgentA, &session);
}

TEST_F(BundlesTest, ImportRecordsResultsExactlyAsOnline) {
  const std::string id = Submit({"deploy", "ci"});
  auto e = d_->ExportBundle(kOperator, kAgentA, 3600);
  ASSERT_TRUE(e.ok()) << e.status();
  const uint64_t seq = AuditSeq();
  auto r = d_->ImportBundle(kOperator,
                            ResultFile(e->bundle_file(), writeback::v1::OUTCOME_VERIFIED, key_a_));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->recorded(), 2u);
  EXPECT_EQ(r->results(1).status(), "recorded");
  EXPECT_EQ(r->results(1).decision_state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(Decision(id).state(), writeback::v1::DECISION_STATE_VERIFIED);
  // Results (with their state changes) and one BUNDLE_IMPORTED event.
  EXPECT_GT(AuditSeq(), seq + 2);
}

TEST_F(BundlesTest, RefusedImportsRecordNothing) {
  const std::string id = Submit({"deploy", "ci"});
  auto e = d_->ExportBundle(kOperator, kAgentA, 3600);
  ASSERT_TRUE(e.ok()) << e.status();
  const std::string good = ResultFile(e->bundle_file(), writeback::v1::OUTCOME_VERIFIED, key_a_);

  // Another agent's result bundle for a's bundle.
  ExpectRefusedAndNothingRecorded(
      ResultFile(e->bundle_file(), writeback::v1::OUTCOME_VERIFIED, key_b_, kAgentB),
      absl::StrCat("was exported to agent ", kAgentA, ", not to ", kAgentB), id);
  // Signed by b's key but claiming to be a.
  ExpectRefusedAndNothingRecorded(
      ResultFile(e->bundle_file(), writeback::v1::OUTCOME_VERIFIED, key_b_, kAgentA),
      "not signed by the result key registered for agent", id);
  // Tampered: one byte of the signed bundle.
  {
    auto f = bundle::ParseResultBundleFile(good, "r");
    ASSERT_TRUE(f.ok());
    f->mutable_bundle()->mutable_payload()->back() ^= 1;
    ExpectRefusedAndNothingRecorded(f->SerializeAsString(), "tampered with", id);
  }
  // An unknown bundle: a manifest this control plane never signed.
  {
    auto b = bundle::ParseTaskBundle(e->bundle_file(), "t");
    writeback::v1::BundleManifest m;
    ASSERT_TRUE(m.ParseFromString(b->manifest().payload()));
    m.set_bundle_id("b-forged");
    auto stranger = crypto::Ed25519PrivateKey::Generate();
    auto menv = envelope::Sign(writeback::v1::PAYLOAD_TYPE_BUNDLE_MANIFEST, m.SerializeAsString(),
                               stranger);
    std::vector<SignedEnvelope> results = {
        Result(b->tasks(0), writeback::v1::OUTCOME_VERIFIED, key_a_)};
    ExpectRefusedAndNothingRecorded(
        bundle::MakeResultBundle(kAgentA, menv, m, results, 1, key_a_).SerializeAsString(),
        "unknown bundle b-forged", id);
  }
  // A result for a task the bundle never carried (a task of another bundle).
  {
    const std::string other = Submit({"extra"});
    auto e2 = d_->ExportBundle(kOperator, kAgentA, 3600);
    ASSERT_TRUE(e2.ok()) << e2.status();
    auto b = bundle::ParseTaskBundle(e->bundle_file(), "t");
    auto b2 = bundle::ParseTaskBundle(e2->bundle_file(), "t");
    writeback::v1::BundleManifest m;
    ASSERT_TRUE(m.ParseFromString(b->manifest().payload()));
    std::vector<SignedEnvelope> results = {
        Result(b->tasks(0), writeback::v1::OUTCOME_VERIFIED, key_a_),
        Result(b2->tasks(0), writeback::v1::OUTCOME_VERIFIED, key_a_)};
    ExpectRefusedAndNothingRecorded(
        bundle::MakeResultBundle(kAgentA, b->manifest(), m, results, 1, key_a_).SerializeAsString(),
        absl::StrCat("did not carry this task"), id);
    EXPECT_FALSE(Task(Decision(other).task_ids(0)).has_signed_result());
  }
  // A result whose digest answers other bytes (the agent's own tampering).
  {
    auto b = bundle::ParseTaskBundle(e->bundle_file(), "t");
    writeback::v1::BundleManifest m;
    ASSERT_TRUE(m.ParseFromString(b->manifest().payload()));
    SignedEnvelope altered = b->tasks(1);
    writeback::v1::Task t;
    ASSERT_TRUE(t.ParseFromString(altered.payload()));
    t.set_expires_at_unix_ms(t.expires_at_unix_ms() + 1);
    altered.set_payload(t.SerializeAsString());
    std::vector<SignedEnvelope> results = {
        Result(b->tasks(0), writeback::v1::OUTCOME_VERIFIED, key_a_),
        Result(altered, writeback::v1::OUTCOME_VERIFIED, key_a_)};
    ExpectRefusedAndNothingRecorded(
        bundle::MakeResultBundle(kAgentA, b->manifest(), m, results, 1, key_a_).SerializeAsString(),
        "task_digest: does not answer the task bundle", id);
  }
  // A task bundle given instead of a result bundle.
  ExpectRefusedAndNothingRecorded(e->bundle_file(), "is a task bundle, not a result bundle", id);

  // The genuine one is recorded; replaying it afterwards is refused.
  auto r = d_->ImportBundle(kOperator, good);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Decision(id).state(), writeback::v1::DECISION_STATE_VERIFIED);
  const uint64_t seq = AuditSeq();
  auto replay = d_->ImportBundle(kOperator, good);
  ASSERT_FALSE(replay.ok());
  EXPECT_EQ(replay.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(replay.status().message()), HasSubstr("was already imported"));
  EXPECT_EQ(AuditSeq(), seq);
}

TEST_F(BundlesTest, AnExpiredBundleIsReissuedUnderNewTaskIds) {
  const std::string id = Submit({"deploy"});
  auto e = d_->ExportBundle(kOperator, kAgentA, 60);
  ASSERT_TRUE(e.ok()) << e.status();
  const std::string old_id = e->tasks(0).task_id();
  clock_.Advance(absl::Seconds(61));  // the trip took too long
  auto e2 = d_->ExportBundle(kOperator, kAgentA, 600);
  ASSERT_TRUE(e2.ok()) << e2.status();
  ASSERT_EQ(e2->tasks_size(), 1);
  const std::string new_id = e2->tasks(0).task_id();
  EXPECT_NE(new_id, old_id);
  EXPECT_EQ(e2->tasks(0).reissue_of_task_id(), old_id);
  EXPECT_EQ(Task(old_id).state(), writeback::v1::TASK_STATE_SUPERSEDED);
  EXPECT_EQ(Task(old_id).reissued_as_task_id(), new_id);
  EXPECT_EQ(Decision(id).task_ids(0), new_id);
  EXPECT_EQ(Decision(id).state(), writeback::v1::DECISION_STATE_DISPATCHED);

  // The agent applied the first bundle too late: its refusals (EXPIRED)
  // applied nothing and are not recorded.
  auto late = d_->ImportBundle(
      kOperator, ResultFile(e->bundle_file(), writeback::v1::OUTCOME_REJECTED, key_a_, kAgentA,
                            writeback::v1::REJECT_REASON_EXPIRED));
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(late->not_recorded(), 1u);
  EXPECT_THAT(late->results(0).status(), HasSubstr("already re-issued as " + new_id));
  EXPECT_EQ(Decision(id).state(), writeback::v1::DECISION_STATE_DISPATCHED);
  // The second bundle's result makes the decision VERIFIED.
  auto r = d_->ImportBundle(kOperator,
                            ResultFile(e2->bundle_file(), writeback::v1::OUTCOME_VERIFIED, key_a_));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Decision(id).state(), writeback::v1::DECISION_STATE_VERIFIED);
}

TEST_F(BundlesTest, AnEarlierBundleAppliedInTimeStillCounts) {
  const std::string id = Submit({"deploy"});
  auto e = d_->ExportBundle(kOperator, kAgentA, 60);
  ASSERT_TRUE(e.ok()) << e.status();
  const std::string old_id = e->tasks(0).task_id();
  clock_.Advance(absl::Seconds(61));
  auto e2 = d_->ExportBundle(kOperator, kAgentA, 600);  // re-issued: the first seemed lost
  ASSERT_TRUE(e2.ok()) << e2.status();
  const std::string new_id = e2->tasks(0).task_id();
  // The agent had applied the first bundle in time; its results arrive now.
  auto r = d_->ImportBundle(kOperator,
                            ResultFile(e->bundle_file(), writeback::v1::OUTCOME_VERIFIED, key_a_));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->results(0).status(), HasSubstr("the re-issue " + new_id + " is withdrawn"));
  EXPECT_EQ(Decision(id).state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(Decision(id).task_ids(0), old_id);
  EXPECT_EQ(Task(new_id).state(), writeback::v1::TASK_STATE_CANCELED);
  // The second bundle, applied anyway: the agent refused the repeat
  // (ROLLBACK). Recorded on the withdrawn task; the decision stays VERIFIED.
  auto late = d_->ImportBundle(
      kOperator, ResultFile(e2->bundle_file(), writeback::v1::OUTCOME_REJECTED, key_a_, kAgentA,
                            writeback::v1::REJECT_REASON_ROLLBACK));
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(Task(new_id).state(), writeback::v1::TASK_STATE_REJECTED);
  EXPECT_EQ(Decision(id).state(), writeback::v1::DECISION_STATE_VERIFIED);
}

TEST_F(BundlesTest, TaskCountsFollowReissuesAndAdoptedResults) {
  auto expect_counts_match = [&](const std::string& id, const std::string& when) {
    SCOPED_TRACE(when);
    const auto d = Decision(id);
    ASSERT_TRUE(d.has_task_counts());
    writeback::v1::TaskStateCounts scan;
    for (const auto& t : d.task_ids()) ASSERT_TRUE(CountTask(HeadOf(Task(t)), +1, &scan));
    EXPECT_EQ(d.task_counts().ShortDebugString(), scan.ShortDebugString());
  };
  const std::string id = Submit({"deploy", "backup"});
  auto e = d_->ExportBundle(kOperator, kAgentA, 60);
  ASSERT_TRUE(e.ok()) << e.status();
  expect_counts_match(id, "exported");
  clock_.Advance(absl::Seconds(61));
  auto e2 = d_->ExportBundle(kOperator, kAgentA, 600);  // re-issued under new ids
  ASSERT_TRUE(e2.ok()) << e2.status();
  expect_counts_match(id, "re-issued");
  // The first bundle's results arrive after all: the re-issues are withdrawn.
  auto r = d_->ImportBundle(kOperator,
                            ResultFile(e->bundle_file(), writeback::v1::OUTCOME_VERIFIED, key_a_));
  ASSERT_TRUE(r.ok()) << r.status();
  expect_counts_match(id, "earlier results adopted");
  EXPECT_EQ(Decision(id).state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(Decision(id).task_counts().verified(), 2u);
}

TEST_F(BundlesTest, ExportErrorsNameTheReason) {
  auto unknown = d_->ExportBundle(kOperator, "spiffe://writeback.test/agent/nobody", 0);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  auto nothing = d_->ExportBundle(kOperator, kAgentA, 0);
  EXPECT_EQ(nothing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(nothing.status().message()), HasSubstr("has no queued tasks to export"));
  Submit({"deploy"});
  auto trip = d_->ExportBundle(kOperator, kAgentA, 10);
  EXPECT_EQ(trip.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(trip.status().message()), HasSubstr("trip_seconds"));
}

}  // namespace
}  // namespace wb::controlplane
