// The operators'-view commands run in-process (RunWbctl) against a fake
// AdminService over real mTLS, and their formatting.
#include <gmock/gmock.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/command.h"
#include "cli/commands/view_format.h"
#include "common/pki/pki.h"
#include "common/testing/temp_dir.h"
#include "common/tls/tls.h"
#include "writeback/v1/admin_service.grpc.pb.h"

namespace wb::cli {
namespace {

namespace v1 = writeback::v1;
using ::testing::HasSubstr;

constexpr int64_t kNowMs = 1'800'000'000'000;  // FakeClock's default

v1::AgentStatus MakeAgent(const std::string& name, v1::AgentState state, int64_t seen_ago_ms) {
  v1::AgentStatus a;
  a.set_agent_id("spiffe://writeback.test/agent/" + name);
  a.set_state(state);
  a.set_version("0.1.0");
  a.set_last_seen_unix_ms(kNowMs - seen_ago_ms);
  (*a.mutable_labels())["site"] = "paris";
  (*a.mutable_labels())["segment"] = "pci";
  a.set_queue_depth(2);
  a.set_applied(5);
  a.set_failed(1);
  auto* i = a.add_instances();
  i->set_name("hosts-" + name);
  i->set_type("ssh_authorized_keys");
  i->set_healthy(state == v1::AGENT_STATE_ONLINE);
  i->set_health_detail(state == v1::AGENT_STATE_ONLINE ? "ok" : "unreachable");
  a.set_unhealthy_instances(state == v1::AGENT_STATE_ONLINE ? 0 : 1);
  return a;
}

class FakeViewAdmin final : public v1::AdminService::Service {
 public:
  grpc::Status FleetStatus(grpc::ServerContext*, const v1::FleetStatusRequest* req,
                           v1::FleetStatusResponse* resp) override {
    std::lock_guard<std::mutex> l(mu);
    fleet_reqs.push_back(*req);
    auto* s = resp->mutable_summary();
    s->set_agents(2);
    s->set_online(1);
    s->set_offline(1);
    (*s->mutable_decisions_by_state())["VERIFIED"] = 3;
    (*s->mutable_decisions_by_state())["DRIFTED"] = 1;
    *resp->add_agents() = MakeAgent("b2", v1::AGENT_STATE_OFFLINE, 600'000);
    *resp->add_agents() = MakeAgent("a1", v1::AGENT_STATE_ONLINE, 2'000);
    return grpc::Status::OK;
  }
  grpc::Status GetAgent(grpc::ServerContext*, const v1::GetAgentRequest* req,
                        v1::GetAgentResponse* resp) override {
    if (req->agent_id() != "a1")
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "agent_id: no agent");
    *resp->mutable_agent() = MakeAgent("a1", v1::AGENT_STATE_ONLINE, 2'000);
    auto* t = resp->add_open_tasks();
    t->set_task_id("t-9");
    t->set_target("deploy");
    t->set_state(v1::TASK_STATE_DELIVERED);
    return grpc::Status::OK;
  }
  grpc::Status WatchDecision(grpc::ServerContext*, const v1::WatchDecisionRequest* req,
                             grpc::ServerWriter<v1::WatchDecisionResponse>* w) override {
    if (req->decision_id() != "d-1")
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "decision d-x not found");
    for (int done = 0; done <= 2; ++done) {
      v1::WatchDecisionResponse m;
      m.mutable_decision()->mutable_statement()->set_decision_id("d-1");
      m.mutable_decision()->set_state(done < 2 ? v1::DECISION_STATE_DISPATCHED : final_state);
      m.set_tasks_done(done);
      m.set_tasks_total(2);
      if (done > 0) {
        m.mutable_event()->set_kind(v1::EVENT_KIND_TASK_RESULT);
        m.mutable_event()->set_target(done == 1 ? "alice" : "bob");
        m.mutable_event()->set_outcome(v1::OUTCOME_VERIFIED);
      }
      w->Write(m);
    }
    return grpc::Status::OK;
  }
  grpc::Status ReverifyDecision(grpc::ServerContext*, const v1::ReverifyDecisionRequest* req,
                                v1::ReverifyDecisionResponse* resp) override {
    std::lock_guard<std::mutex> l(mu);
    reverify_reqs.push_back(*req);
    resp->set_decision_id(req->decision_id());
    resp->set_state(v1::DECISION_STATE_DRIFTED);
    if (req->remediate()) {
      resp->set_remediation_decision_id("d-2");
    } else {
      resp->add_task_ids("t-a");
    }
    return grpc::Status::OK;
  }
  grpc::Status TailEvents(grpc::ServerContext*, const v1::TailEventsRequest* req,
                          grpc::ServerWriter<v1::TailEventsResponse>* w) override {
    {
      std::lock_guard<std::mutex> l(mu);
      tail_reqs.push_back(*req);
    }
    v1::TailEventsResponse m;
    m.mutable_event()->set_seq(7);
    m.mutable_event()->set_at_unix_ms(kNowMs);
    m.mutable_event()->set_kind(v1::EVENT_KIND_DRIFT_DETECTED);
    m.mutable_event()->set_decision_id("d-1");
    m.mutable_event()->set_detail("1 of 1 target(s) drifted: bob");
    w->Write(m);
    return grpc::Status::OK;
  }

  std::mutex mu;
  std::vector<v1::FleetStatusRequest> fleet_reqs;
  std::vector<v1::ReverifyDecisionRequest> reverify_reqs;
  std::vector<v1::TailEventsRequest> tail_reqs;
  v1::DecisionState final_state = v1::DECISION_STATE_VERIFIED;
};

class ViewCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki::PkiSpec spec;
    spec.operators = {"alice"};
    auto p = pki::Pki::Init(tmp_.Sub("pki"), spec, absl::Now());
    ASSERT_TRUE(p.ok()) << p.status();
    pki_ = std::make_unique<pki::Pki>(*std::move(p));
    auto creds = tls::MakeServerCredentials(pki_->controlplane().tls, true);
    ASSERT_TRUE(creds.ok()) << creds.status();
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", *creds, &port);
    b.RegisterService(&fake_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  int Run(std::vector<std::string> args) {
    const auto op = pki_->operator_identity("alice");
    for (const std::string& a :
         {std::string("--address"), address_, std::string("--controlplane-id"),
          pki_->controlplane_id(), std::string("--ca"), op.tls.ca_file(), std::string("--cert"),
          op.tls.cert_file(), std::string("--key"), op.tls.key_file()}) {
      args.push_back(a);
    }
    out_.str("");
    err_.str("");
    RunOptions r;
    r.out = &out_;
    r.err = &err_;
    r.clock = &clock_;
    r.sleep = [this](absl::Duration d) { clock_.Advance(d); };
    return RunWbctl(args, r);
  }

  wb::testing::TempDir tmp_;
  std::unique_ptr<pki::Pki> pki_;
  FakeViewAdmin fake_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  FakeClock clock_;
  std::ostringstream out_, err_;
};

TEST_F(ViewCommandsTest, FleetStatusTableWorstFirstAndJson) {
  ASSERT_EQ(Run({"fleet", "status"}), 0) << err_.str();
  const std::string out = out_.str();
  EXPECT_THAT(out, HasSubstr("Agents: 2 (1 online, 0 stale, 1 offline)"));
  EXPECT_THAT(out, HasSubstr("Decisions: 3 VERIFIED, 1 DRIFTED"));
  std::vector<std::string> lines = absl::StrSplit(out, '\n');
  size_t header = 0;
  while (header < lines.size() && lines[header].rfind("AGENT ", 0) != 0) ++header;
  ASSERT_LT(header + 2, lines.size()) << out;
  EXPECT_THAT(lines[header + 1], HasSubstr("b2"));
  EXPECT_THAT(lines[header + 1], HasSubstr("OFFLINE"));
  EXPECT_THAT(lines[header + 1], HasSubstr("10m ago"));
  EXPECT_THAT(lines[header + 2], HasSubstr("a1"));
  EXPECT_THAT(lines[header + 2], HasSubstr("ONLINE"));

  ASSERT_EQ(Run({"fleet", "status", "-o", "json", "--state", "offline", "--site", "paris"}), 0);
  auto j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j["agents"].size(), 2u);
  EXPECT_EQ(j["summary"]["offline"], 1);
  ASSERT_EQ(fake_.fleet_reqs.size(), 2u);
  EXPECT_EQ(fake_.fleet_reqs[1].state(), v1::AGENT_STATE_OFFLINE);
  EXPECT_EQ(fake_.fleet_reqs[1].site(), "paris");

  EXPECT_EQ(Run({"fleet", "status", "--check"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("1 of 2 agents are not ONLINE"));
  EXPECT_EQ(Run({"fleet", "status", "--state", "gone"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--state"));
}

TEST_F(ViewCommandsTest, AgentShow) {
  ASSERT_EQ(Run({"agent", "show", "a1"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("spiffe://writeback.test/agent/a1"));
  EXPECT_THAT(out_.str(), HasSubstr("ONLINE"));
  EXPECT_THAT(out_.str(), HasSubstr("hosts-a1"));
  EXPECT_THAT(out_.str(), HasSubstr("t-9"));
  EXPECT_EQ(Run({"agent", "show", "zz"}), 4);
  ASSERT_EQ(Run({"agent", "show", "a1", "-o", "yaml"}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("open_tasks:"));
}

TEST_F(ViewCommandsTest, WatchPrintsProgressAndExitsByFinalState) {
  ASSERT_EQ(Run({"decision", "watch", "d-1"}), 0) << err_.str();
  std::vector<std::string> lines = absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << out_.str();
  EXPECT_THAT(lines[0], HasSubstr("tasks 0/2 done"));
  EXPECT_THAT(lines[1], HasSubstr("tasks 1/2 done  [TASK_RESULT alice VERIFIED]"));
  EXPECT_THAT(lines[2], HasSubstr("VERIFIED  tasks 2/2 done"));

  fake_.final_state = v1::DECISION_STATE_FAILED;
  EXPECT_EQ(Run({"decision", "watch", "d-1", "-o", "json"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("ended FAILED"));
  lines = absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  for (const auto& l : lines) EXPECT_NO_THROW(nlohmann::json::parse(l)) << l;
  EXPECT_EQ(Run({"decision", "watch", "d-x"}), 4);
}

TEST_F(ViewCommandsTest, ReverifyRemediateAndTail) {
  ASSERT_EQ(Run({"decision", "reverify", "d-1"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("1 verify-only task(s) sent: t-a"));
  ASSERT_EQ(Run({"decision", "remediate", "d-1"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("re-issued as decision d-2"));
  ASSERT_EQ(fake_.reverify_reqs.size(), 2u);
  EXPECT_FALSE(fake_.reverify_reqs[0].remediate());
  EXPECT_TRUE(fake_.reverify_reqs[1].remediate());

  ASSERT_EQ(Run({"events", "tail", "--backlog", "5", "--decision", "d-1"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("#7  DRIFT_DETECTED  decision=d-1"));
  ASSERT_EQ(fake_.tail_reqs.size(), 1u);
  EXPECT_EQ(fake_.tail_reqs[0].backlog(), 5u);
  EXPECT_TRUE(fake_.tail_reqs[0].follow());
  ASSERT_EQ(Run({"events", "tail", "--no-follow", "-o", "json"}), 0);
  EXPECT_FALSE(fake_.tail_reqs[1].follow());
  EXPECT_EQ(nlohmann::json::parse(out_.str())["event"]["seq"], "7");
}

TEST(ViewFormatTest, SinceAndStates) {
  const absl::Time now = absl::FromUnixMillis(kNowMs);
  EXPECT_EQ(*ParseSince("2h", now), kNowMs - 2 * 3600 * 1000);
  EXPECT_EQ(*ParseSince("90s", now), kNowMs - 90 * 1000);
  EXPECT_EQ(*ParseSince("2027-01-15T07:00:00Z", now), kNowMs - 3600 * 1000);
  EXPECT_THAT(ParseSince("yesterday", now).status().message(), HasSubstr("--since"));
  EXPECT_EQ(*ParseAgentState("stale"), v1::AGENT_STATE_STALE);
  EXPECT_FALSE(ParseAgentState("unspecified").ok());
  EXPECT_EQ(ShortId("spiffe://writeback.test/agent/a1"), "a1");
  v1::Event e;
  e.set_seq(3);
  e.set_kind(v1::EVENT_KIND_AGENT_STATE);
  e.set_agent_id("spiffe://writeback.test/agent/a1");
  e.set_agent_state(v1::AGENT_STATE_STALE);
  e.set_detail("bad\x1b[31m");
  const std::string line = EventLine(e);
  EXPECT_THAT(line, HasSubstr("AGENT_STATE  agent=a1  state=STALE"));
  EXPECT_EQ(line.find('\x1b'), std::string::npos);  // control characters escaped
}

}  // namespace
}  // namespace wb::cli
