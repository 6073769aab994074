#include "agent/agent.h"

#include <gtest/gtest.h>

#include <functional>
#include <mutex>

#include "absl/strings/match.h"
#include "agent/relay/relay.h"
#include "agent/testing/fake_connector.h"
#include "agent/testing/fake_controlplane.h"
#include "agent/testing/task_factory.h"
#include "common/config/config.h"
#include "common/fs/fs.h"
#include "common/pki/pki.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"

namespace wb::agent {
namespace {

using testing::FakeControlPlane;
using testing::FakeTarget;
using testing::MakeSignedTask;
using testing::TaskSpec;
using wb::testing::WaitFor;
using writeback::v1::AgentConfig;
using writeback::v1::Result;

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki::PkiSpec spec;
    spec.agents = {"a1", "a2"};
    auto p = pki::Pki::Init(dir_.Sub("pki"), spec, absl::Now());
    ASSERT_TRUE(p.ok()) << p.status();
    pki_ = std::make_unique<pki::Pki>(std::move(*p));
    auto k = crypto::Ed25519PrivateKey::LoadFile(pki_->dispatch_key_file());
    ASSERT_TRUE(k.ok()) << k.status();
    dispatch_ = std::make_unique<crypto::Ed25519PrivateKey>(*k);
    testing::RegisterFakeConnector(registry_, target_);
  }

  AgentConfig Config(int port) const {
    AgentConfig c;
    c.set_agent_id(pki_->agent("a1").spiffe_id);
    c.set_controlplane_address(absl::StrCat("127.0.0.1:", port));
    c.set_controlplane_id(pki_->controlplane_id());
    *c.mutable_tls() = pki_->agent("a1").tls;
    c.set_data_dir(dir_.Sub("data"));
    c.set_result_key_file(pki_->agent_result_key_file("a1"));
    c.add_dispatch_public_key_files(pki_->dispatch_pub_file());
    c.set_reconnect_initial_ms(20);
    c.set_reconnect_max_ms(200);
    (*c.mutable_labels())["site"] = "fra1";
    auto* conn = c.add_connectors();
    conn->set_name("ssh-main");
    conn->set_type("ssh_authorized_keys");
    conn->add_allowed_operations("remove_key");
    conn->mutable_ssh_authorized_keys()->set_path_template("/home/{user}/.ssh/authorized_keys");
    return c;
  }

  std::unique_ptr<Agent> MakeAgent(const AgentConfig& cfg) {
    auto a = Agent::Create(cfg, registry_);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? std::move(*a) : nullptr;
  }

  TaskSpec Spec(const std::string& id) const {
    TaskSpec s;
    s.task_id = id;
    s.audience = pki_->agent("a1").spiffe_id;
    s.now = absl::Now();
    return s;
  }

  // Parses a result after verifying it with the key the agent announced.
  static Result VerifiedResult(const writeback::v1::SignedEnvelope& env,
                               const writeback::v1::Hello& hello) {
    auto key = crypto::Ed25519PublicKey::FromRaw(hello.result_public_key());
    EXPECT_TRUE(key.ok());
    Result r;
    if (!key.ok()) return r;
    EXPECT_TRUE(envelope::VerifyWithKey(env, writeback::v1::PAYLOAD_TYPE_RESULT, *key).ok());
    EXPECT_TRUE(r.ParseFromString(env.payload()));
    return r;
  }

  wb::testing::TempDir dir_;
  std::unique_ptr<pki::Pki> pki_;
  std::unique_ptr<crypto::Ed25519PrivateKey> dispatch_;
  std::shared_ptr<FakeTarget> target_ = std::make_shared<FakeTarget>();
  connectors::Registry registry_;
};

TEST_F(AgentTest, RunsASignedTaskAndReturnsAVerifiableResult) {
  FakeControlPlane cp;
  ASSERT_TRUE(cp.Start(pki_->controlplane().tls).ok());
  auto agent = MakeAgent(Config(cp.port()));
  ASSERT_NE(agent, nullptr);
  ASSERT_TRUE(agent->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return agent->connected(); }));

  ASSERT_EQ(cp.hellos().size(), 1u);
  const writeback::v1::Hello hello = cp.hellos()[0];
  EXPECT_EQ(hello.agent_id(), "spiffe://writeback.test/agent/a1");
  EXPECT_EQ(cp.peers()[0], hello.agent_id());
  EXPECT_EQ(hello.version(), AgentVersion());
  ASSERT_EQ(hello.instances_size(), 1);
  EXPECT_EQ(hello.instances(0).name(), "ssh-main");
  EXPECT_EQ(hello.instances(0).type(), "ssh_authorized_keys");
  EXPECT_EQ(hello.instances(0).operations_size(), 1);
  EXPECT_TRUE(hello.instances(0).healthy());
  EXPECT_EQ(hello.labels().at("site"), "fra1");
  EXPECT_EQ(hello.result_public_key().size(), 32u);
  EXPECT_EQ(crypto::KeyIdOf(hello.result_public_key()), agent->result_key_id());

  cp.SendTask(MakeSignedTask(Spec("task-1"), *dispatch_));
  ASSERT_TRUE(WaitFor([&] { return cp.results().size() == 1; }));
  EXPECT_EQ(cp.acks(), std::vector<std::string>{"task-1"});
  Result r = VerifiedResult(cp.results()[0], hello);
  EXPECT_EQ(r.task_id(), "task-1");
  EXPECT_EQ(r.agent_id(), hello.agent_id());
  EXPECT_EQ(r.outcome(), writeback::v1::OUTCOME_VERIFIED) << r.message();
  EXPECT_EQ(target_->applies_count(), 1);
  // The control plane acknowledged it: the outbox empties.
  ASSERT_TRUE(WaitFor([&] { return agent->unacknowledged_results().value_or(99) == 0; }));

  // A refusal is reported the same way.
  TaskSpec other = Spec("task-2");
  other.audience = pki_->agent("a2").spiffe_id;
  cp.SendTask(MakeSignedTask(other, *dispatch_));
  ASSERT_TRUE(WaitFor([&] { return cp.results().size() == 2; }));
  r = VerifiedResult(cp.results()[1], hello);
  EXPECT_EQ(r.outcome(), writeback::v1::OUTCOME_REJECTED);
  EXPECT_EQ(r.reject_reason(), writeback::v1::REJECT_REASON_WRONG_AUDIENCE);
  EXPECT_EQ(target_->applies_count(), 1);
}

TEST_F(AgentTest, HeartbeatsCarryConnectorHealth) {
  FakeControlPlane cp;
  ASSERT_TRUE(cp.Start(pki_->controlplane().tls).ok());
  {
    std::lock_guard<std::mutex> l(target_->mu);
    target_->check_error = absl::UnavailableError("authorized_keys directory unreadable");
  }
  auto agent = MakeAgent(Config(cp.port()));
  ASSERT_TRUE(agent->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return !cp.heartbeats().empty(); }));
  const auto hb = cp.heartbeats()[0];
  ASSERT_EQ(hb.instances_size(), 1);
  EXPECT_FALSE(hb.instances(0).healthy());
  EXPECT_NE(hb.instances(0).health_detail().find("unreadable"), std::string::npos);
}

TEST_F(AgentTest, ReconnectsAfterControlPlaneRestartAndResendsUnackedResult) {
  FakeControlPlane::Options no_ack;
  no_ack.auto_ack = false;
  auto cp = std::make_unique<FakeControlPlane>(no_ack);
  ASSERT_TRUE(cp->Start(pki_->controlplane().tls).ok());
  const int port = cp->port();
  auto agent = MakeAgent(Config(port));
  ASSERT_TRUE(agent->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return agent->connected(); }));
  const auto task = MakeSignedTask(Spec("task-1"), *dispatch_);
  cp->SendTask(task);
  ASSERT_TRUE(WaitFor([&] { return cp->results().size() == 1; }));
  const std::string first = cp->results()[0].payload();
  EXPECT_EQ(agent->unacknowledged_results().value_or(0), 1u);

  cp->Stop();  // "crash" before acknowledging
  ASSERT_TRUE(WaitFor([&] { return !agent->connected(); }));
  cp = std::make_unique<FakeControlPlane>();  // acknowledges results
  ASSERT_TRUE(cp->Start(pki_->controlplane().tls, port).ok());
  ASSERT_TRUE(WaitFor([&] { return agent->connected(); }));
  ASSERT_TRUE(WaitFor([&] { return !cp->results().empty(); }));
  EXPECT_EQ(cp->results()[0].payload(), first);
  ASSERT_TRUE(WaitFor([&] { return agent->unacknowledged_results().value_or(99) == 0; }));

  // Redelivered by the new control plane: the stored result, no new apply.
  cp->SendTask(task);
  ASSERT_TRUE(WaitFor([&] { return cp->results().size() == 2; }));
  EXPECT_EQ(cp->results()[1].payload(), first);
  EXPECT_EQ(target_->applies_count(), 1);
}

TEST_F(AgentTest, RestartedAgentDoesNotReapplyARedeliveredTask) {
  FakeControlPlane cp;
  ASSERT_TRUE(cp.Start(pki_->controlplane().tls).ok());
  const auto task = MakeSignedTask(Spec("task-1"), *dispatch_);
  {
    auto agent = MakeAgent(Config(cp.port()));
    ASSERT_TRUE(agent->Start().ok());
    cp.SendTask(task);
    ASSERT_TRUE(WaitFor([&] { return cp.results().size() == 1; }));
    // Stopped only once the result is acknowledged: otherwise the restarted
    // agent also re-sends it from its outbox (a third result, and the count
    // below could pass 2 between two polls).
    ASSERT_TRUE(WaitFor([&] { return agent->unacknowledged_results().value_or(99) == 0; }));
  }
  auto agent = MakeAgent(Config(cp.port()));
  ASSERT_TRUE(agent->Start().ok());
  cp.SendTask(task);
  ASSERT_TRUE(WaitFor([&] { return cp.results().size() == 2; }));
  EXPECT_EQ(cp.results()[1].payload(), cp.results()[0].payload());
  EXPECT_EQ(target_->applies_count(), 1);
}

TEST_F(AgentTest, RefusesAControlPlaneWithAnotherIdentity) {
  FakeControlPlane cp;
  ASSERT_TRUE(cp.Start(pki_->controlplane().tls).ok());
  AgentConfig cfg = Config(cp.port());
  cfg.set_controlplane_id("spiffe://writeback.test/controlplane/impostor-check");
  auto agent = MakeAgent(cfg);
  ASSERT_TRUE(agent->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return agent->connect_attempts() >= 3; }));
  EXPECT_FALSE(agent->connected());
  EXPECT_TRUE(cp.hellos().empty());
}

// Issue 15: refusals of tasks with ids injected on the way used to stay in
// the outbox and be sent again on every connection. What the control plane
// says it does not know is dropped, and counted.
TEST_F(AgentTest, ResultsForTasksTheControlPlaneDoesNotKnowAreDroppedAndCounted) {
  FakeControlPlane::Options fo;
  fo.refuse_results = writeback::v1::RESULT_REFUSAL_UNKNOWN_TASK;
  FakeControlPlane cp(fo);
  ASSERT_TRUE(cp.Start(pki_->controlplane().tls).ok());
  const AgentConfig cfg = Config(cp.port());
  auto agent = MakeAgent(cfg);
  ASSERT_NE(agent, nullptr);
  ASSERT_TRUE(agent->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return agent->connected(); }));
  const auto forger = crypto::Ed25519PrivateKey::Generate();
  for (const char* id : {"injected-1", "injected-2"}) {
    cp.SendTask(MakeSignedTask(Spec(id), forger));  // not signed by the dispatch key
  }
  ASSERT_TRUE(WaitFor([&] {
    auto n = agent->unacknowledged_results();
    return agent->results_dropped_unknown_task() == 2 && n.ok() && *n == 0;
  }));
  EXPECT_EQ(agent->results_refused(), 2u);
  EXPECT_EQ(target_->applies_count(), 0);
  ASSERT_TRUE(WaitFor([&] {
    auto st = Agent::ReadStatusFile(cfg);
    return st.ok() && st->results_dropped_unknown_task_total() == 2 && st->connected();
  }));
  // Nothing is sent again on the next connection.
  const size_t sent = cp.results().size();
  agent.reset();  // stops it and closes its journal
  auto again = MakeAgent(cfg);
  ASSERT_NE(again, nullptr);
  ASSERT_TRUE(again->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return cp.hellos().size() == 2 && again->connected(); }));
  ASSERT_TRUE(WaitFor([&] { return !cp.heartbeats().empty(); }));
  EXPECT_EQ(cp.results().size(), sent);
}

// The status file carries the control plane's own words when it refuses
// the agent (`writeback-agent status` prints them).
TEST_F(AgentTest, TheControlPlanesRefusalIsInTheStatusFile) {
  FakeControlPlane::Options fo;
  fo.refuse_hello = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                 "hello.instances[0].name: instance 'ssh-main' is served by agent "
                                 "spiffe://writeback.test/agent/a2");
  FakeControlPlane cp(fo);
  ASSERT_TRUE(cp.Start(pki_->controlplane().tls).ok());
  const AgentConfig cfg = Config(cp.port());
  auto agent = MakeAgent(cfg);
  ASSERT_TRUE(agent->Start().ok());
  ASSERT_TRUE(WaitFor([&] {
    auto st = Agent::ReadStatusFile(cfg);
    return st.ok() && st->refused();
  }));
  auto st = Agent::ReadStatusFile(cfg);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_FALSE(st->connected());
  EXPECT_EQ(st->stream_end_code(), "FAILED_PRECONDITION");
  EXPECT_EQ(st->stream_end_message(), fo.refuse_hello.error_message());
  EXPECT_EQ(agent->last_stream_end().code(), absl::StatusCode::kFailedPrecondition);
  agent->Stop();
  // Stopping does not turn the last answer into CANCELLED.
  st = Agent::ReadStatusFile(cfg);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->stream_end_code(), "FAILED_PRECONDITION");
}

TEST_F(AgentTest, StopIsIdempotent) {
  auto agent = MakeAgent(Config(1));
  ASSERT_TRUE(agent->Start().ok());
  agent->Stop();
  agent->Stop();
  EXPECT_FALSE(agent->connected());
  EXPECT_FALSE(agent->Start().ok());
}

// Each bad config is refused with an error that names the field.
struct ConfigCase {
  const char* field;
  std::function<void(AgentConfig&, const std::string& tmp)> mutate;
};

TEST_F(AgentTest, BadConfigErrorsNameTheField) {
  ASSERT_TRUE(fs::WriteFileAtomic(dir_.Sub("not-a-key.pem"), "garbage").ok());
  ASSERT_TRUE(fs::WriteFileAtomic(dir_.Sub("a-file"), "x").ok());
  const std::vector<ConfigCase> cases = {
      {"agent_id", [](AgentConfig& c, auto&) { c.clear_agent_id(); }},
      {"agent_id", [](AgentConfig& c, auto&) { c.set_agent_id("https://a1"); }},
      {"agent_id",
       [](AgentConfig& c, auto&) { c.set_agent_id("spiffe://writeback.test/operator/a1"); }},
      {"controlplane_address", [](AgentConfig& c, auto&) { c.clear_controlplane_address(); }},
      {"controlplane_id",
       [](AgentConfig& c, auto&) { c.set_controlplane_id("spiffe://writeback.test/operator/cp"); }},
      // An agent identity is a relay (docs/networks.md), but not this agent.
      {"controlplane_id", [](AgentConfig& c, auto&) { c.set_controlplane_id(c.agent_id()); }},
      {"relay.listen_address",
       [](AgentConfig& c, auto&) { c.mutable_relay()->set_listen_address("0.0.0.0:7443"); }},
      {"relay.listen_address",
       [](AgentConfig& c, auto&) { c.mutable_relay()->set_listen_address("[::]:7443"); }},
      {"relay.listen_address",
       [](AgentConfig& c, auto&) { c.mutable_relay()->set_listen_address("relay.example:7443"); }},
      {"relay.listen_address",
       [](AgentConfig& c, auto&) { c.mutable_relay()->set_listen_address("10.0.0.1"); }},
      {"relay.listen_address",
       [](AgentConfig& c, auto&) { c.mutable_relay()->set_listen_address("10.0.0.1:70000"); }},
      {"tls.ca_file", [](AgentConfig& c, auto&) { c.mutable_tls()->clear_ca_file(); }},
      {"tls.cert_file",
       [](AgentConfig& c, auto& t) { c.mutable_tls()->set_cert_file(t + "/missing.crt"); }},
      {"tls.key_file",
       [](AgentConfig& c, auto& t) { c.mutable_tls()->set_key_file(t + "/missing.key"); }},
      // The certificate of another agent.
      {"tls.cert_file",
       [](AgentConfig& c, auto& t) {
         c.mutable_tls()->set_cert_file(t + "/pki/agents/a2/tls.crt");
       }},
      {"result_key_file", [](AgentConfig& c, auto&) { c.clear_result_key_file(); }},
      {"result_key_file",
       [](AgentConfig& c, auto& t) { c.set_result_key_file(t + "/not-a-key.pem"); }},
      {"dispatch_public_key_files",
       [](AgentConfig& c, auto&) { c.clear_dispatch_public_key_files(); }},
      {"dispatch_public_key_files[1]",
       [](AgentConfig& c, auto& t) { c.add_dispatch_public_key_files(t + "/missing.pub"); }},
      {"data_dir", [](AgentConfig& c, auto&) { c.clear_data_dir(); }},
      {"data_dir", [](AgentConfig& c, auto& t) { c.set_data_dir(t + "/a-file"); }},
      {"max_clock_skew_seconds",
       [](AgentConfig& c, auto&) { c.set_max_clock_skew_seconds(86400); }},
      {"reconnect_max_ms",
       [](AgentConfig& c, auto&) {
         c.set_reconnect_initial_ms(5000);
         c.set_reconnect_max_ms(100);
       }},
      {"log_level", [](AgentConfig& c, auto&) { c.set_log_level("loud"); }},
      {"connectors[1].name", [](AgentConfig& c, auto&) { *c.add_connectors() = c.connectors(0); }},
      {"connectors[0].name",
       [](AgentConfig& c, auto&) { c.mutable_connectors(0)->set_name("A B"); }},
      {"connectors[0].type",
       [](AgentConfig& c, auto&) { c.mutable_connectors(0)->set_type("postgres_role"); }},
      {"connectors[0].allowed_operations[1]",
       [](AgentConfig& c, auto&) { c.mutable_connectors(0)->add_allowed_operations("drop_db"); }},
  };
  for (const auto& tc : cases) {
    AgentConfig cfg = Config(1);
    tc.mutate(cfg, dir_.path());
    SCOPED_TRACE(cfg.ShortDebugString());
    absl::Status s = Agent::CheckConfig(cfg, registry_);
    ASSERT_FALSE(s.ok()) << tc.field;
    EXPECT_TRUE(absl::StartsWith(s.message(), std::string(tc.field) + ":") ||
                absl::StartsWith(s.message(), std::string(tc.field) + "."))
        << "want field " << tc.field << ", got: " << s.message();
    EXPECT_FALSE(Agent::Create(cfg, registry_).ok());
  }
  EXPECT_TRUE(Agent::CheckConfig(Config(1), registry_).ok());
}

TEST_F(AgentTest, ExampleConfigLoadsAndValidates) {
  AgentConfig cfg;
  absl::Status s = config::LoadYamlFile(WB_SOURCE_DIR "/deploy/agent.example.yaml", &cfg);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(cfg.agent_id(), "spiffe://writeback.test/agent/web-01");
  EXPECT_EQ(cfg.controlplane_id(), "spiffe://writeback.test/controlplane/cp");
  EXPECT_EQ(cfg.dispatch_public_key_files_size(), 1);
  ASSERT_EQ(cfg.connectors_size(), 1);
  EXPECT_EQ(cfg.connectors(0).type(), "ssh_authorized_keys");
  EXPECT_EQ(cfg.connectors(0).allowed_operations_size(), 2);
  EXPECT_EQ(cfg.connectors(0).ssh_authorized_keys().allowed_users_size(), 2);
  EXPECT_EQ(cfg.labels().at("site"), "fra1");

  // With its files pointed at a real PKI, it passes full validation with
  // the connectors built into the binary.
  auto ident = pki_->AddAgent("web-01", absl::Now());
  ASSERT_TRUE(ident.ok()) << ident.status();
  *cfg.mutable_tls() = ident->tls;
  cfg.set_result_key_file(pki_->agent_result_key_file("web-01"));
  cfg.set_dispatch_public_key_files(0, pki_->dispatch_pub_file());
  cfg.set_data_dir(dir_.Sub("example-data"));
  connectors::Registry builtin;
  connectors::RegisterBuiltinConnectors(builtin);
  s = Agent::CheckConfig(cfg, builtin);
  EXPECT_TRUE(s.ok()) << s;
}

// The relay examples (docs/networks.md): a DMZ relay, and an agent behind it.
TEST_F(AgentTest, RelayExampleConfigsLoadAndValidate) {
  connectors::Registry builtin;
  connectors::RegisterBuiltinConnectors(builtin);
  for (const std::string name : {"dmz-relay", "cell-01"}) {
    AgentConfig cfg;
    absl::Status s = config::LoadYamlFile(
        absl::StrCat(WB_SOURCE_DIR "/deploy/agent-", name, ".example.yaml"), &cfg);
    ASSERT_TRUE(s.ok()) << name << ": " << s;
    EXPECT_EQ(cfg.agent_id(), "spiffe://writeback.test/agent/" + name);
    auto ident = pki_->AddAgent(name, absl::Now());
    ASSERT_TRUE(ident.ok()) << ident.status();
    *cfg.mutable_tls() = ident->tls;
    cfg.set_result_key_file(pki_->agent_result_key_file(name));
    cfg.set_dispatch_public_key_files(0, pki_->dispatch_pub_file());
    cfg.set_data_dir(dir_.Sub(name + "-data"));
    s = Agent::CheckConfig(cfg, builtin);
    EXPECT_TRUE(s.ok()) << name << ": " << s;
    if (name == "dmz-relay") {
      EXPECT_EQ(cfg.relay().listen_address(), "10.20.0.1:7443");
      auto opts = RelayOptionsFromConfig(cfg);
      ASSERT_TRUE(opts.ok()) << opts.status();
      EXPECT_EQ(opts->upstream_id, "spiffe://writeback.test/controlplane/cp");
      EXPECT_EQ(opts->trust_domain, "writeback.test");
    } else {
      EXPECT_FALSE(cfg.has_relay());
      EXPECT_EQ(cfg.controlplane_id(), "spiffe://writeback.test/agent/dmz-relay");
    }
  }
}

TEST(RelayListenAddressTest, OnlySpecificAddresses) {
  for (const char* ok : {"10.20.0.1:7443", "127.0.0.1:0", "[fd00::1]:7443"}) {
    EXPECT_TRUE(ValidateRelayListenAddress(ok).ok()) << ok;
  }
  for (const char* bad : {"", "0.0.0.0:7443", "[::]:7443", ":7443", "host:7443", "10.0.0.1",
                          "10.0.0.1:-1", "10.0.0.1:65536", "[fd00::1]7443"}) {
    absl::Status s = ValidateRelayListenAddress(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_TRUE(absl::StartsWith(s.message(), "relay.listen_address:")) << s.message();
  }
}

}  // namespace
}  // namespace wb::agent
