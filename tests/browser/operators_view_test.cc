// The operators' view end to end, with a real control plane and real (or
// simulated) agents over mTLS:
//   - /metrics parses and its counters move with a decision; /healthz,
//     /readyz, the gRPC health service and server reflection answer;
//   - drift: after VERIFIED, the revoked key is restored behind the agent's
//     back; re-verification turns the decision DRIFTED in `wbctl decision
//     get` and on the dashboard's JSON, and `wbctl decision remediate`
//     fixes it again;
//   - `wbctl fleet status` against 50 simulated agents.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/crypto/crypto.h"
#include "common/pki/pki.h"
#include "common/status/macros.h"
#include "common/tls/tls.h"
#include "controlplane/metrics/exposition.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/browser/view_test_support.h"
#include "tests/e2e/harness.h"
#include "tests/integration/ssh_test_keys.h"
#include "writeback/v1/admin_service.pb.h"
#include "writeback/v1/agent_service.grpc.pb.h"

namespace wb::e2e {
namespace {

using ::testing::HasSubstr;
namespace exposition = controlplane::exposition;

writeback::v1::DecisionView ParseView(const std::string& json) {
  writeback::v1::DecisionView v;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &v).ok()) << json;
  return v;
}

class ViewE2ETest : public ::testing::Test {
 protected:
  void StartHarness(std::function<void(writeback::v1::ControlPlaneConfig&)> tweak = nullptr) {
    leaked_ = MakeSshKey("leaked@ci");
    kept_ = MakeSshKey("ops@bastion");
    original_ = absl::StrCat(kept_.line, "\n", leaked_.line, "\n");
    sandbox_.Write("deploy", original_);
    sandbox_.Write("backup", absl::StrCat(leaked_.line, "\n"));
    Harness::Options o;
    o.agents["a1"] = {sandbox_.Instance("web-ssh")};
    o.tweak_agent = [](writeback::v1::AgentConfig& a) { (*a.mutable_labels())["site"] = "paris"; };
    o.tweak_controlplane = [&](writeback::v1::ControlPlaneConfig& c) {
      c.set_web_listen_address("127.0.0.1:0");
      c.set_web_port_file(tmp_.Sub("web.port"));
      if (tweak) tweak(c);
    };
    auto h = Harness::Start(o);
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = std::move(*h);
    port_ = ReadPort(tmp_.Sub("web.port"));
    ASSERT_GT(port_, 0);
    // wbctl's configuration, as an operator.
    wbctl_config_ = tmp_.Sub("wbctl.yaml");
    ASSERT_TRUE(h_->WriteWbctlConfig("ops", wbctl_config_).ok());
  }

  ProgramResult Wbctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {WBCTL_PATH, "--config", wbctl_config_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProgram(argv, tmp_.path(), absl::Seconds(60));
  }

  exposition::Samples Scrape() {
    HttpResult r = HttpGet(port_, "/metrics");
    EXPECT_EQ(r.status, 200);
    EXPECT_THAT(r.content_type, HasSubstr("text/plain"));
    auto s = exposition::Parse(r.body);
    EXPECT_TRUE(s.ok()) << s.status() << "\n" << r.body;
    return s.ok() ? *s : exposition::Samples{};
  }

  testing::TempDir tmp_;
  KeysSandbox sandbox_;
  SshTestKey leaked_, kept_;
  std::string original_;
  std::unique_ptr<Harness> h_;
  int port_ = 0;
  std::string wbctl_config_;
};

TEST_F(ViewE2ETest, MetricsMoveWithADecisionAndHealthAnswers) {
  // Reflection is off by default (docs/security.md); this test turns it on.
  StartHarness([](writeback::v1::ControlPlaneConfig& c) { c.set_grpc_reflection(true); });
  EXPECT_EQ(HttpGet(port_, "/healthz").status, 200);
  EXPECT_EQ(HttpGet(port_, "/readyz").status, 200);

  const exposition::Samples before = Scrape();
  using exposition::Sum;
  EXPECT_EQ(Sum(before, "writeback_agents", "state=\"online\""), 1);

  auto sub = h_->Submit(SshRemoveKeySpec("web-ssh", {"deploy", "backup"}, leaked_.fingerprint));
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto done = h_->WaitTerminal(sub->decision_id());
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->state(), writeback::v1::DECISION_STATE_VERIFIED);
  // The verdict is in the store; the gauges follow at the next scrape.
  const exposition::Samples after = Scrape();
  EXPECT_EQ(Sum(after, "writeback_task_results_total", "outcome=\"verified\"") -
                Sum(before, "writeback_task_results_total", "outcome=\"verified\""),
            2);
  EXPECT_EQ(Sum(after, "writeback_time_to_verified_seconds_count",
                "connector_type=\"ssh_authorized_keys\"") -
                Sum(before, "writeback_time_to_verified_seconds_count"),
            1);
  EXPECT_EQ(Sum(after, "writeback_decisions", "state=\"verified\""), 1);
  EXPECT_GT(Sum(after, "writeback_store_write_seconds_count"),
            Sum(before, "writeback_store_write_seconds_count"));
  EXPECT_EQ(Sum(after, "writeback_queue_depth"), 0);

  // The same decision on the dashboard's JSON, with its timeline.
  HttpResult d = HttpGet(port_, "/api/decisions/" + sub->decision_id());
  ASSERT_EQ(d.status, 200);
  writeback::v1::DecisionView v = ParseView(d.body);
  EXPECT_EQ(v.state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_GT(v.timeline().verified_at_unix_ms(), 0);
  EXPECT_GE(v.timeline().verified_at_unix_ms(), v.timeline().applied_at_unix_ms());
  EXPECT_GE(v.timeline().applied_at_unix_ms(), v.timeline().delivered_at_unix_ms());
  EXPECT_EQ(HttpGet(port_, "/api/decisions/d-nope").status, 404);

  // gRPC health answers without a client certificate; server reflection
  // lists the API.
  auto ca = fs::ReadFile(h_->pki().ca_file());
  ASSERT_TRUE(ca.ok());
  grpc::SslCredentialsOptions so;
  so.pem_root_certs = *ca;
  auto ch = grpc::CreateChannel(absl::StrCat("localhost:", h_->port()), grpc::SslCredentials(so));
  grpc::GenericStub generic(ch);
  grpc::CompletionQueue cq;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::ByteBuffer req;  // HealthCheckRequest{} is zero bytes
    grpc::Slice empty;
    req = grpc::ByteBuffer(&empty, 1);
    auto call = generic.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", req, &cq);
    call->StartCall();
    grpc::ByteBuffer resp;
    grpc::Status st;
    call->Finish(&resp, &st, reinterpret_cast<void*>(1));
    void* tag;
    bool ok;
    ASSERT_TRUE(cq.Next(&tag, &ok));
    ASSERT_TRUE(st.ok()) << st.error_message();
    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(resp.Dump(&slices).ok());
    std::string bytes;
    for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    EXPECT_EQ(bytes, std::string("\x08\x01", 2));  // status: SERVING
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto call = generic.PrepareCall(
        &ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
    void* tag;
    bool ok;
    call->StartCall(reinterpret_cast<void*>(1));
    ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
    const std::string list_services("\x3a\x01*", 3);  // list_services: "*"
    grpc::Slice s(list_services);
    grpc::ByteBuffer req(&s, 1);
    call->Write(req, reinterpret_cast<void*>(2));
    ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
    grpc::ByteBuffer resp;
    call->Read(&resp, reinterpret_cast<void*>(3));
    ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(resp.Dump(&slices).ok());
    std::string bytes;
    for (auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    EXPECT_THAT(bytes, HasSubstr("writeback.v1.AdminService"));
    EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
    call->WritesDone(reinterpret_cast<void*>(4));
    ASSERT_TRUE(cq.Next(&tag, &ok));
    grpc::Status st;
    call->Finish(&st, reinterpret_cast<void*>(5));
    ASSERT_TRUE(cq.Next(&tag, &ok));
  }
  // ...but the API itself still wants an operator.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Slice empty;
    grpc::ByteBuffer req(&empty, 1);
    auto call = generic.PrepareUnaryCall(&ctx, "/writeback.v1.AdminService/FleetStatus", req, &cq);
    call->StartCall();
    grpc::ByteBuffer resp;
    grpc::Status st;
    call->Finish(&resp, &st, reinterpret_cast<void*>(1));
    void* tag;
    bool ok;
    ASSERT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(ViewE2ETest, RestoredKeyTurnsTheDecisionDriftedAndRemediationFixesIt) {
  constexpr int kPeriodSeconds = 2;
  StartHarness([](writeback::v1::ControlPlaneConfig& c) {
    (*c.mutable_reverify()->mutable_interval_seconds())["ssh_authorized_keys/remove_key"] =
        kPeriodSeconds;
  });
  auto sub = h_->Submit(SshRemoveKeySpec("web-ssh", {"deploy"}, leaked_.fingerprint));
  ASSERT_TRUE(sub.ok()) << sub.status();
  const std::string id = sub->decision_id();
  auto done = h_->WaitTerminal(id);
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->state(), writeback::v1::DECISION_STATE_VERIFIED);
  ASSERT_THAT(sandbox_.Read("deploy"), ::testing::Not(HasSubstr(leaked_.line)));

  // Someone puts the key back behind the agent's back.
  sandbox_.Write("deploy", original_);
  HttpResult last;
  ASSERT_TRUE(wb::testing::WaitFor(
      [&] {
        last = HttpGet(port_, "/api/decisions/" + id);
        return last.status == 200 &&
               ParseView(last.body).state() == writeback::v1::DECISION_STATE_DRIFTED;
      },
      std::chrono::seconds(60), std::chrono::milliseconds(100)))
      << last.body;
  writeback::v1::DecisionView v = ParseView(last.body);
  EXPECT_THAT(v.state_detail(), HasSubstr("1 of 1 target(s) drifted: deploy"));
  EXPECT_GT(v.drifted_at_unix_ms(), 0);
  ASSERT_EQ(v.reverifications_size(), 1);
  EXPECT_EQ(v.reverifications(0).outcome(), writeback::v1::OUTCOME_FAILED);
  // Re-verification only looked: the key is still there.
  EXPECT_THAT(sandbox_.Read("deploy"), HasSubstr(leaked_.line));

  // The same in `wbctl decision get` and in the dashboard's drift list.
  ProgramResult get = Wbctl({"decision", "get", id});
  EXPECT_EQ(get.exit_code, 0) << get.err;
  EXPECT_THAT(get.out, HasSubstr("DRIFTED"));
  ProgramResult get_json = Wbctl({"decision", "get", id, "-o", "json"});
  ASSERT_EQ(get_json.exit_code, 0) << get_json.err;
  EXPECT_EQ(nlohmann::json::parse(get_json.out)["state"], "DECISION_STATE_DRIFTED");
  HttpResult drift = HttpGet(port_, "/api/drift");
  EXPECT_THAT(drift.body, HasSubstr(id));

  // One command re-issues it; the new decision removes the key again.
  ProgramResult rem = Wbctl({"decision", "remediate", id, "-o", "json"});
  ASSERT_EQ(rem.exit_code, 0) << rem.err;
  const std::string again = nlohmann::json::parse(rem.out)["remediation_decision_id"];
  ASSERT_FALSE(again.empty());
  ProgramResult watch = Wbctl({"decision", "watch", again, "--timeout", "60s"});
  EXPECT_EQ(watch.exit_code, 0) << watch.out << watch.err;
  EXPECT_THAT(watch.out, HasSubstr("VERIFIED"));
  EXPECT_THAT(sandbox_.Read("deploy"), ::testing::Not(HasSubstr(leaked_.line)));
  EXPECT_THAT(sandbox_.Read("deploy"), HasSubstr(kept_.line));
  // ...and the next round finds the original decision fixed.
  ASSERT_TRUE(wb::testing::WaitFor(
      [&] {
        last = HttpGet(port_, "/api/decisions/" + id);
        return last.status == 200 &&
               ParseView(last.body).state() == writeback::v1::DECISION_STATE_VERIFIED;
      },
      std::chrono::seconds(60), std::chrono::milliseconds(100)))
      << last.body;
  EXPECT_EQ(ParseView(last.body).remediated_by(), again);

  // The event feed told the story.
  ProgramResult tail =
      Wbctl({"events", "tail", "--no-follow", "--backlog", "1000", "--decision", id});
  ASSERT_EQ(tail.exit_code, 0) << tail.err;
  EXPECT_THAT(tail.out, HasSubstr("DRIFT_DETECTED"));
  EXPECT_THAT(tail.out, HasSubstr("REMEDIATION_ISSUED"));
  EXPECT_THAT(tail.out, HasSubstr("DRIFT_RESOLVED"));
}

// An agent of our own protocol, without connectors: it says hello and keeps
// its stream open.
class SimulatedAgent {
 public:
  absl::Status Connect(Harness& h, const std::string& name, const std::string& site,
                       const std::string& segment, bool healthy) {
    WB_ASSIGN_OR_RETURN(pki::Identity id, h.pki().AddAgent(name, absl::Now()));
    WB_ASSIGN_OR_RETURN(auto creds, tls::MakeChannelCredentials(id.tls, h.pki().controlplane_id()));
    channel_ = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", h.port()), creds,
                                         tls::DefaultChannelArgs());
    stub_ = writeback::v1::AgentService::NewStub(channel_);
    stream_ = stub_->Connect(&ctx_);
    writeback::v1::AgentMessage m;
    auto* hello = m.mutable_hello();
    hello->set_agent_id(id.spiffe_id);
    hello->set_version("0.1.0-sim");
    hello->set_result_public_key(key_.public_key().raw());
    auto* inst = hello->add_instances();
    inst->set_name("ssh-" + name);
    inst->set_type("ssh_authorized_keys");
    inst->add_operations("remove_key");
    inst->set_healthy(healthy);
    inst->set_health_detail(healthy ? "ok" : "cannot read /home");
    (*hello->mutable_labels())["site"] = site;
    (*hello->mutable_labels())["segment"] = segment;
    if (!stream_->Write(m)) return absl::UnavailableError("hello not sent");
    writeback::v1::ControlMessage welcome;
    if (!stream_->Read(&welcome) || !welcome.has_welcome()) {
      return absl::UnavailableError(absl::StrCat(name, ": no welcome"));
    }
    return absl::OkStatus();
  }
  void Disconnect() {
    if (!stream_) return;
    stream_->WritesDone();
    ctx_.TryCancel();
    stream_->Finish();
    stream_.reset();
  }
  ~SimulatedAgent() { Disconnect(); }

 private:
  crypto::Ed25519PrivateKey key_ = crypto::Ed25519PrivateKey::Generate();
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<writeback::v1::AgentService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<
      grpc::ClientReaderWriter<writeback::v1::AgentMessage, writeback::v1::ControlMessage>>
      stream_;
};

TEST_F(ViewE2ETest, FleetStatusOfFiftyAgents) {
  // Heartbeats every 5 minutes: the simulated agents stay ONLINE for the
  // whole test without sending any.
  StartHarness([](writeback::v1::ControlPlaneConfig& c) { c.set_heartbeat_interval_seconds(300); });
  constexpr int kAgents = 50;
  std::vector<std::unique_ptr<SimulatedAgent>> sims;
  for (int i = 0; i < kAgents; ++i) {
    auto a = std::make_unique<SimulatedAgent>();
    const std::string name = absl::StrCat("sim-", i < 10 ? "0" : "", i);
    ASSERT_TRUE(h_->Bind("ssh-" + name, name).ok());
    ASSERT_TRUE(a->Connect(*h_, name, i % 2 ? "paris" : "lyon", i % 5 == 0 ? "pci" : "office",
                           /*healthy=*/i != 7)
                    .ok())
        << name;
    sims.push_back(std::move(a));
  }
  // Three go away.
  for (int i : {3, 17, 42}) sims[i]->Disconnect();
  const int total = kAgents + 1;  // and the harness's real agent a1
  ASSERT_TRUE(wb::testing::WaitFor(
      [&] {
        ProgramResult r = Wbctl({"fleet", "status", "-o", "json"});
        if (r.exit_code != 0) return false;
        auto j = nlohmann::json::parse(r.out, nullptr, false);
        return !j.is_discarded() && j["summary"]["stale"] == 3;
      },
      std::chrono::seconds(60), std::chrono::milliseconds(200)));

  ProgramResult json = Wbctl({"fleet", "status", "-o", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["summary"]["agents"], total);
  EXPECT_EQ(j["summary"]["online"], total - 3);
  EXPECT_EQ(j["summary"]["unhealthy_instances"], 1);
  ASSERT_EQ(j["agents"].size(), static_cast<size_t>(total));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(j["agents"][i]["state"], "AGENT_STATE_STALE");
  EXPECT_THAT(std::string(j["agents"][3]["agent_id"]), HasSubstr("sim-07"));  // unhealthy next
  size_t cells = 0;
  for (const auto& c : j["grid"]) cells += c["online"].get<int>() + c["stale"].get<int>();
  EXPECT_EQ(cells, static_cast<size_t>(total));

  ProgramResult table = Wbctl({"fleet", "status"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr(absl::StrCat("Agents: ", total, " (", total - 3,
                                                " online, 3 stale, 0 offline)")));
  std::vector<std::string> lines = absl::StrSplit(table.out, '\n', absl::SkipEmpty());
  size_t header = 0;
  while (header < lines.size() && lines[header].rfind("AGENT ", 0) != 0) ++header;
  ASSERT_EQ(lines.size() - header - 1, static_cast<size_t>(total)) << table.out;
  std::set<std::string> stale;
  for (size_t i = header + 1; i < header + 4; ++i) {
    EXPECT_THAT(lines[i], HasSubstr("STALE"));
    stale.insert(lines[i].substr(0, lines[i].find(' ')));
  }
  EXPECT_EQ(stale, (std::set<std::string>{"sim-03", "sim-17", "sim-42"}));
  for (size_t i = header + 4; i < lines.size(); ++i) EXPECT_THAT(lines[i], HasSubstr("ONLINE"));

  EXPECT_EQ(Wbctl({"fleet", "status", "--check"}).exit_code, 1);
  ProgramResult paris = Wbctl({"fleet", "status", "--site", "paris", "-o", "json"});
  ASSERT_EQ(paris.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(paris.out)["agents"].size(), 26u);  // 25 sims + a1

  ProgramResult one = Wbctl({"agent", "show", "sim-07"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_THAT(one.out, HasSubstr("UNHEALTHY"));
  EXPECT_THAT(one.out, HasSubstr("cannot read /home"));
  EXPECT_EQ(Wbctl({"agent", "show", "nobody"}).exit_code, 4);
}

}  // namespace
}  // namespace wb::e2e
