// Unit tests of the event feed, the tracker and the fleet model.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/envelope/envelope.h"
#include "common/testing/temp_dir.h"
#include "controlplane/fleet/events.h"
#include "controlplane/fleet/fleet_model.h"
#include "controlplane/fleet/observed_store.h"
#include "controlplane/fleet/tracker.h"
#include "controlplane/store/rocksdb_store.h"

namespace wb::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using writeback::v1::AgentState;
using writeback::v1::Event;
using writeback::v1::TaskRecord;

// ---------------------------------------------------------------- events

TEST(EventBusTest, StampsKeepsAndReportsDrops) {
  FakeClock clock;
  EventBus bus(&clock, /*capacity=*/3);
  for (int i = 0; i < 5; ++i) {
    Event e;
    e.set_detail(absl::StrCat("e", i));
    Event out = bus.Publish(e);
    EXPECT_EQ(out.seq(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(out.at_unix_ms(), clock.NowUnixMs());
  }
  EXPECT_EQ(bus.last_seq(), 5u);
  uint64_t dropped = 0;
  auto since = bus.Since(0, 100, &dropped);
  EXPECT_EQ(dropped, 2u);  // events 1 and 2 fell out of the ring
  ASSERT_EQ(since.size(), 3u);
  EXPECT_EQ(since.front().seq(), 3u);
  since = bus.Since(4, 100, &dropped);
  EXPECT_EQ(dropped, 0u);
  ASSERT_EQ(since.size(), 1u);
  EXPECT_EQ(since[0].detail(), "e4");
  EXPECT_TRUE(bus.Since(5, 100).empty());
  ASSERT_EQ(bus.Last(2).size(), 2u);
  EXPECT_EQ(bus.Last(2)[1].seq(), 5u);
}

TEST(EventBusTest, WaitersWakeOnPublishAndOnClose) {
  FakeClock clock;
  EventBus bus(&clock);
  EXPECT_FALSE(bus.WaitNewer(0, absl::ZeroDuration()));
  std::thread t([&] { bus.Publish(Event()); });
  EXPECT_TRUE(bus.WaitNewer(0, absl::Seconds(30)));
  t.join();
  std::thread c([&] { bus.Close(); });
  EXPECT_FALSE(bus.WaitNewer(1, absl::Seconds(30)));
  c.join();
  EXPECT_TRUE(bus.closed());
}

TEST(EventBusTest, ListenersSeeEveryEvent) {
  FakeClock clock;
  EventBus bus(&clock);
  std::vector<uint64_t> seen;
  bus.AddListener([&](const Event& e) { seen.push_back(e.seq()); });
  bus.Publish(Event());
  bus.Publish(Event());
  EXPECT_THAT(seen, ElementsAre(1u, 2u));
}

// ---------------------------------------------------------------- agent states

TEST(AgentStateTest, Rule) {
  FleetOptions o;  // 10 s heartbeats, stale after 3, offline after 10
  const int64_t now = 1'000'000'000;
  uint32_t missed = 0;
  std::string why;
  auto state = [&](bool connected, int64_t silent_ms) {
    return ComputeAgentState(connected, now - silent_ms, now, o, &missed, &why);
  };
  EXPECT_EQ(state(true, 0), writeback::v1::AGENT_STATE_ONLINE);
  EXPECT_EQ(state(true, 29'999), writeback::v1::AGENT_STATE_ONLINE);
  EXPECT_EQ(missed, 2u);
  EXPECT_EQ(state(true, 30'000), writeback::v1::AGENT_STATE_STALE);
  EXPECT_EQ(missed, 3u);
  EXPECT_THAT(why, HasSubstr("3 heartbeats missed"));
  EXPECT_EQ(state(true, 100'000), writeback::v1::AGENT_STATE_OFFLINE);
  EXPECT_EQ(state(false, 5'000), writeback::v1::AGENT_STATE_STALE);
  EXPECT_THAT(why, HasSubstr("disconnected"));
  EXPECT_EQ(state(false, 30'000), writeback::v1::AGENT_STATE_OFFLINE);
  EXPECT_EQ(ComputeAgentState(false, 0, now, o, &missed, &why), writeback::v1::AGENT_STATE_OFFLINE);
  EXPECT_EQ(why, "never seen");
  EXPECT_EQ(AgentStateName(writeback::v1::AGENT_STATE_STALE), "STALE");
}

TEST(PercentileTest, NearestRank) {
  std::vector<int64_t> v{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(Percentile(v, 50), 5);
  EXPECT_EQ(Percentile(v, 90), 9);
  EXPECT_EQ(Percentile(v, 99), 10);
  EXPECT_EQ(Percentile({}, 50), 0);
  EXPECT_EQ(Percentile({7}, 99), 7);
}

// ---------------------------------------------------------------- tracker + fleet

constexpr char kOperator[] = "spiffe://writeback.test/operator/alice";

class FakeSession : public AgentSession {
 public:
  void Wake() override {}
  void End(const absl::Status&) override {}
};

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = RocksDbStore::Open(dir_.Sub("db"));
    ASSERT_TRUE(s.ok()) << s.status();
    rocks_ = std::move(*s);
    Open();
  }

  void Open() {
    tracker_ = std::make_unique<Tracker>(&bus_, nullptr);
    ASSERT_TRUE(tracker_->Rebuild(*rocks_, 1000).ok());
    observed_ = std::make_unique<ObservedStore>(rocks_.get(), tracker_.get(), nullptr);
    DispatcherOptions o;
    o.controlplane_id = "spiffe://writeback.test/controlplane/cp";
    auto d = Dispatcher::Create(observed_.get(), &clock_, dispatch_key_, &sessions_, o);
    ASSERT_TRUE(d.ok()) << d.status();
    dispatcher_ = std::move(*d);
    FleetOptions fo;
    fo.heartbeat_interval_seconds = 10;
    fleet_ =
        std::make_unique<FleetModel>(&clock_, fo, dispatcher_.get(), &sessions_, tracker_.get());
  }

  std::string Agent(const std::string& name) { return "spiffe://writeback.test/agent/" + name; }

  void Hello(const std::string& name, const std::string& site, const std::string& segment,
             bool healthy = true) {
    writeback::v1::Hello h;
    h.set_agent_id(Agent(name));
    h.set_version("0.1.0");
    h.set_result_public_key(keys_.at(name).public_key().raw());
    auto* inst = h.add_instances();
    inst->set_name("hosts-" + name);
    inst->set_type("ssh_authorized_keys");
    inst->add_operations("remove_key");
    inst->set_healthy(healthy);
    inst->set_health_detail(healthy ? "ok" : "cannot read /home");
    (*h.mutable_labels())["site"] = site;
    (*h.mutable_labels())["segment"] = segment;
    ASSERT_TRUE(dispatcher_
                    ->BindInstance("spiffe://writeback.test/operator/alice", "hosts-" + name,
                                   Agent(name), "test")
                    .ok());
    ASSERT_TRUE(dispatcher_->Hello(Agent(name), h).ok());
  }

  std::string Submit(const std::string& name, std::vector<std::string> users) {
    writeback::v1::SubmitDecisionRequest req;
    auto* s = req.mutable_spec();
    s->set_connector_instance("hosts-" + name);
    s->set_operation("remove_key");
    s->mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint("SHA256:" +
                                                                        std::string(43, 'C'));
    for (const auto& u : users) s->add_targets()->set_object(u);
    s->set_reason("r");
    auto r = dispatcher_->Submit(kOperator, req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r->decision_id();
  }

  void Result(const std::string& name, const TaskRecord& t, writeback::v1::Outcome o,
              writeback::v1::RejectReason reason = writeback::v1::REJECT_REASON_UNSPECIFIED) {
    writeback::v1::Result r;
    r.set_task_id(t.task_id());
    r.set_agent_id(Agent(name));
    r.set_decision_id(t.decision_id());
    r.set_task_digest(crypto::Sha256(t.signed_task().payload()));
    r.set_outcome(o);
    r.set_reject_reason(reason);
    r.set_message("done");
    ASSERT_TRUE(
        dispatcher_
            ->IntakeResult(Agent(name), envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT,
                                                       r.SerializeAsString(), keys_.at(name)))
            .accepted());
  }

  std::vector<TaskRecord> Outbox(const std::string& name) {
    return *dispatcher_->NextTasks(Agent(name), {}, 100);
  }

  std::vector<writeback::v1::EventKind> Kinds() {
    std::vector<writeback::v1::EventKind> out;
    for (const Event& e : bus_.Since(0, 10000)) out.push_back(e.kind());
    return out;
  }

  wb::testing::TempDir dir_;
  FakeClock clock_;
  crypto::Ed25519PrivateKey dispatch_key_ = crypto::Ed25519PrivateKey::Generate();
  std::map<std::string, crypto::Ed25519PrivateKey> keys_{
      {"a", crypto::Ed25519PrivateKey::Generate()}, {"b", crypto::Ed25519PrivateKey::Generate()}};
  SessionRegistry sessions_;
  FakeSession session_a_;
  EventBus bus_{&clock_};
  std::unique_ptr<RocksDbStore> rocks_;
  std::unique_ptr<Tracker> tracker_;
  std::unique_ptr<ObservedStore> observed_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<FleetModel> fleet_;
};

TEST_F(FleetTest, CountsFollowTasksAndResults) {
  Hello("a", "paris", "pci");
  const std::string d1 = Submit("a", {"u1", "u2", "u3", "u4"});
  AgentCounters c = tracker_->Counters(Agent("a"));
  EXPECT_EQ(c.queued, 4u);
  EXPECT_EQ(c.delivered, 0u);
  auto tasks = Outbox("a");
  ASSERT_EQ(tasks.size(), 4u);
  ASSERT_TRUE(dispatcher_->AckTask(Agent("a"), tasks[0].task_id()).ok());
  ASSERT_TRUE(dispatcher_->AckTask(Agent("a"), tasks[1].task_id()).ok());
  c = tracker_->Counters(Agent("a"));
  EXPECT_EQ(c.queued, 2u);
  EXPECT_EQ(c.delivered, 2u);
  clock_.Advance(absl::Seconds(7));
  Result("a", tasks[0], writeback::v1::OUTCOME_VERIFIED);
  Result("a", tasks[1], writeback::v1::OUTCOME_FAILED);
  Result("a", tasks[2], writeback::v1::OUTCOME_REJECTED, writeback::v1::REJECT_REASON_ROLLBACK);
  Result("a", tasks[3], writeback::v1::OUTCOME_UNVERIFIED);
  c = tracker_->Counters(Agent("a"));
  EXPECT_EQ(c.queued + c.delivered, 0u);
  EXPECT_EQ(c.applied, 2u);  // VERIFIED + UNVERIFIED
  EXPECT_EQ(c.verified, 1u);
  EXPECT_EQ(c.failed, 1u);
  EXPECT_EQ(c.refused, 1u);
  EXPECT_EQ(c.last_verified_at_unix_ms, clock_.NowUnixMs());
  EXPECT_EQ(tracker_->DecisionsByState().at("FAILED"), 1u);
  EXPECT_EQ(tracker_->DecisionsByState().at("DISPATCHED"), 0u);

  // The feed tells the story in order.
  auto kinds = Kinds();
  auto pos = [&](writeback::v1::EventKind k) {
    return std::find(kinds.begin(), kinds.end(), k) - kinds.begin();
  };
  EXPECT_LT(pos(writeback::v1::EVENT_KIND_DECISION_SUBMITTED),
            pos(writeback::v1::EVENT_KIND_TASK_DELIVERED));
  EXPECT_LT(pos(writeback::v1::EVENT_KIND_TASK_RESULT),
            pos(writeback::v1::EVENT_KIND_DECISION_STATE));
  const Event last = bus_.Last(1)[0];
  EXPECT_EQ(last.kind(), writeback::v1::EVENT_KIND_DECISION_STATE);
  EXPECT_EQ(last.decision_id(), d1);
  EXPECT_EQ(last.decision_state(), writeback::v1::DECISION_STATE_FAILED);
  EXPECT_THAT(last.detail(), HasSubstr("DISPATCHED -> FAILED"));
}

TEST_F(FleetTest, TimeToVerifiedPercentilesBySiteAndConnector) {
  Hello("a", "paris", "pci");
  Hello("b", "lyon", "ot");
  for (int i = 1; i <= 10; ++i) {
    const std::string name = i % 2 ? "a" : "b";
    Submit(name, {"u"});
    clock_.Advance(absl::Seconds(i));
    for (const auto& t : Outbox(name)) Result(name, t, writeback::v1::OUTCOME_VERIFIED);
  }
  auto by_type = tracker_->TtvByConnector();
  ASSERT_EQ(by_type.size(), 1u);
  EXPECT_EQ(by_type[0].key(), "ssh_authorized_keys");
  EXPECT_EQ(by_type[0].count(), 10u);
  EXPECT_EQ(by_type[0].p50_ms(), 5000);
  EXPECT_EQ(by_type[0].p90_ms(), 9000);
  EXPECT_EQ(by_type[0].max_ms(), 10000);
  auto by_site = tracker_->TtvBySite();
  ASSERT_EQ(by_site.size(), 2u);
  EXPECT_EQ(by_site[0].key(), "lyon");  // 2, 4, 6, 8, 10 s
  EXPECT_EQ(by_site[0].p50_ms(), 6000);
  EXPECT_EQ(by_site[1].key(), "paris");  // 1, 3, 5, 7, 9 s
  EXPECT_EQ(by_site[1].p50_ms(), 5000);
  EXPECT_EQ(tracker_->RecentTtv(3).size(), 3u);
  EXPECT_EQ(tracker_->RecentTtv(3).back().ttv_ms, 10000);

  // After a restart the model is rebuilt from the store.
  tracker_.reset();
  Open();
  EXPECT_EQ(tracker_->TtvByConnector()[0].count(), 10u);
  EXPECT_EQ(tracker_->DecisionsByState().at("VERIFIED"), 10u);
  EXPECT_EQ(tracker_->Counters(Agent("a")).verified, 5u);
}

TEST_F(FleetTest, StatusSortsWorstFirstAndBuildsTheGrid) {
  Hello("a", "paris", "pci");
  Hello("b", "paris", "ot", /*healthy=*/false);
  sessions_.Register(Agent("a"), &session_a_, clock_.NowUnixMs());
  clock_.Advance(absl::Seconds(5));
  fleet_->SetCertExpiry(Agent("a"), 1'900'000'000'000);
  Submit("a", {"u1", "u2"});

  auto st = fleet_->Status({});
  const auto& sum = st.summary();
  EXPECT_EQ(sum.agents(), 2u);
  EXPECT_EQ(sum.online(), 1u);
  EXPECT_EQ(sum.stale(), 1u);  // b: not connected, seen 5 s ago
  EXPECT_EQ(sum.queue_depth(), 2u);
  EXPECT_EQ(sum.unhealthy_instances(), 1u);
  EXPECT_EQ(sum.decisions_by_state().at("DISPATCHED"), 1u);
  ASSERT_EQ(st.agents_size(), 2);
  EXPECT_EQ(st.agents(0).agent_id(), Agent("b"));
  EXPECT_EQ(st.agents(0).state(), writeback::v1::AGENT_STATE_STALE);
  EXPECT_EQ(st.agents(1).state(), writeback::v1::AGENT_STATE_ONLINE);
  EXPECT_EQ(st.agents(1).queue_depth(), 2u);
  EXPECT_EQ(st.agents(1).cert_not_after_unix_ms(), 1'900'000'000'000);
  EXPECT_EQ(st.agents(1).labels().at("site"), "paris");
  ASSERT_EQ(st.grid_size(), 2);
  EXPECT_EQ(st.grid(0).segment(), "ot");
  EXPECT_EQ(st.grid(0).stale(), 1u);
  EXPECT_EQ(st.grid(1).segment(), "pci");
  EXPECT_EQ(st.grid(1).online(), 1u);

  writeback::v1::FleetStatusRequest only_online;
  only_online.set_state(writeback::v1::AGENT_STATE_ONLINE);
  auto filtered = fleet_->Status(only_online);
  ASSERT_EQ(filtered.agents_size(), 1);
  EXPECT_EQ(filtered.summary().agents(), 2u);  // the summary is of the whole fleet

  auto one = fleet_->Agent("a");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->agent_id(), Agent("a"));
  EXPECT_TRUE(fleet_->Agent(Agent("b")).ok());
  EXPECT_EQ(fleet_->Agent("zz").status().code(), absl::StatusCode::kNotFound);

  // Agent state changes become events (the first tick only records).
  fleet_->Tick(&bus_);
  const uint64_t before = bus_.last_seq();
  clock_.Advance(absl::Minutes(10));
  fleet_->Tick(&bus_);
  std::vector<std::string> changes;
  for (const Event& e : bus_.Since(before, 100)) {
    if (e.kind() == writeback::v1::EVENT_KIND_AGENT_STATE) changes.push_back(e.detail());
  }
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_THAT(changes, ::testing::Each(HasSubstr("-> OFFLINE")));
  sessions_.Unregister(Agent("a"), &session_a_);
}

}  // namespace
}  // namespace wb::controlplane
