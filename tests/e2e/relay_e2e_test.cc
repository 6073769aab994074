// Relays end to end, in one process on loopback (docs/networks.md; the
// namespaced network test is tests/netns): an agent that can only reach a
// relay enrols through it, connects through it (one relay, or two chained)
// and its decision ends VERIFIED; the fleet view shows its path and, when the
// relay is lost, that it is unreachable through it. A relay that alters a
// task gets it refused by the agent; a relay cannot speak for an agent
// without the agent's own signed proof, nor replay one; banning a relay ends
// the streams it carries.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "agent/agent.h"
#include "agent/identity/identity.h"
#include "agent/relay/relay.h"
#include "common/crypto/crypto.h"
#include "common/crypto/csr.h"
#include "common/crypto/join_token.h"
#include "common/fs/fs.h"
#include "common/relay/relay.h"
#include "common/tls/tls.h"
#include "connectors/registry.h"
#include "controlplane/dispatch/dispatcher.h"
#include "controlplane/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"
#include "tests/integration/ssh_test_keys.h"
#include "writeback/v1/agent_service.grpc.pb.h"
#include "writeback/v1/enrollment.grpc.pb.h"

namespace wb::e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kE1[] = "spiffe://writeback.test/agent/e1";
constexpr char kDmz[] = "spiffe://writeback.test/agent/dmz";
constexpr char kCell[] = "spiffe://writeback.test/agent/cell";

template <typename Pred>
bool PollUntil(Pred pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return pred();
}

void FlipLastByte(std::string* bytes) { (*bytes)[bytes->size() - 1] ^= 0x01; }

writeback::v1::ConnectorInstanceConfig SshInstance(const std::string& name,
                                                   const std::string& dir) {
  writeback::v1::ConnectorInstanceConfig c;
  c.set_name(name);
  c.set_type("ssh_authorized_keys");
  c.add_allowed_operations("remove_key");
  c.mutable_ssh_authorized_keys()->set_path_template(dir + "/{user}/authorized_keys");
  return c;
}

class RelayE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Harness::Options o;
    o.agents["dmz"] = {SshInstance("ssh-dmz", dir_.Sub("dmz"))};
    o.agents["cell"] = {SshInstance("ssh-cell", dir_.Sub("cell"))};
    o.enrollment = true;
    // The shortest delivery timeout: a task the agent did not take (its
    // statement altered on the way) comes again within seconds.
    o.tweak_controlplane = [](writeback::v1::ControlPlaneConfig& c) {
      c.set_delivery_timeout_seconds(5);
    };
    auto h = Harness::Start(o);
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = *std::move(h);
    registry_ = std::make_unique<connectors::Registry>();
    connectors::RegisterBuiltinConnectors(*registry_);

    // e1: the CA certificate and its relay's identity; it never learns the
    // control plane's address.
    const std::string d = dir_.Sub("e1");
    auto cfg = h_->NewAgentConfig("dmz", "e1", d);
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    cfg_ = *std::move(cfg);
    *cfg_.add_connectors() = SshInstance("ssh-e1", d);
  }

  std::string CpAddress() const { return absl::StrCat("127.0.0.1:", h_->port()); }

  // The relay of harness agent `id`, forwarding to `upstream`.
  std::unique_ptr<agent::Relay> StartRelay(
      const std::string& id, const std::string& upstream_address, const std::string& upstream_id,
      std::function<void(writeback::v1::ControlMessage&)> tamper = nullptr) {
    writeback::v1::AgentConfig c = h_->agent_config(id);
    c.mutable_relay()->set_listen_address("127.0.0.1:0");
    auto o = agent::RelayOptionsFromConfig(c);
    EXPECT_TRUE(o.ok()) << o.status();
    if (!o.ok()) return nullptr;
    o->upstream_address = upstream_address;
    o->upstream_id = upstream_id;
    o->tamper_for_test = std::move(tamper);
    auto r = agent::Relay::Start(*std::move(o));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : nullptr;
  }

  // Relay "dmz" passing every control message through `tamper`, and e1
  // enrolled and started behind it (*e1 null if that failed).
  std::unique_ptr<agent::Relay> TamperingDmzWithE1(
      std::function<void(writeback::v1::ControlMessage&)> tamper,
      std::unique_ptr<agent::Agent>* e1) {
    auto relay = StartRelay("dmz", CpAddress(), h_->agent_config("dmz").controlplane_id(),
                            std::move(tamper));
    if (relay == nullptr) return nullptr;
    PointE1At(*relay, kDmz);
    *e1 = EnrolAndStartE1();
    return relay;
  }

  void PointE1At(const agent::Relay& relay, const std::string& relay_id) {
    cfg_.set_controlplane_address(absl::StrCat("127.0.0.1:", relay.port()));
    cfg_.set_controlplane_id(relay_id);
  }

  absl::StatusOr<std::string> Token() {
    grpc::ClientContext ctx;
    writeback::v1::CreateJoinTokenRequest req;
    req.set_agent_id("e1");
    req.add_instances("ssh-e1");  // bound to it when it enrols
    writeback::v1::CreateJoinTokenResponse resp;
    grpc::Status s = h_->admin().CreateJoinToken(&ctx, req, &resp);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    return resp.token();
  }

  std::unique_ptr<agent::Agent> EnrolAndStartE1() {
    auto token = Token();
    EXPECT_TRUE(token.ok()) << token.status();
    if (!token.ok()) return nullptr;
    absl::Status enrolled = agent::Enroll(cfg_, *token, false);
    EXPECT_TRUE(enrolled.ok()) << enrolled;
    if (!enrolled.ok()) return nullptr;
    auto a = agent::Agent::Create(cfg_, *registry_);
    EXPECT_TRUE(a.ok()) << a.status();
    if (!a.ok()) return nullptr;
    EXPECT_TRUE((*a)->Start().ok());
    EXPECT_TRUE(PollUntil([&] { return (*a)->connected(); }, absl::Seconds(30)))
        << "e1 did not connect through its relay";
    return *std::move(a);
  }

  absl::StatusOr<writeback::v1::AgentStatus> Status(const std::string& id) {
    grpc::ClientContext ctx;
    writeback::v1::GetAgentRequest req;
    req.set_agent_id(id);
    writeback::v1::GetAgentResponse resp;
    grpc::Status s = h_->admin().GetAgent(&ctx, req, &resp);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    return resp.agent();
  }

  // A key on e1's target and a decision removing it.
  std::string SubmitRemoval(SshTestKey* key) {
    *key = MakeSshKey("leaked@relay");
    const std::string home = dir_.Sub("e1/deploy");
    EXPECT_TRUE(fs::MakeDirs(home).ok());
    EXPECT_TRUE(fs::WriteFileAtomic(home + "/authorized_keys", key->line + "\n").ok());
    auto r = h_->Submit(SshRemoveKeySpec("ssh-e1", {"deploy"}, key->fingerprint));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->decision_id() : "";
  }

  std::string E1Keys() {
    return fs::ReadFile(dir_.Sub("e1/deploy/authorized_keys")).value_or("<unreadable>");
  }

  testing::TempDir dir_;
  std::unique_ptr<Harness> h_;
  std::unique_ptr<connectors::Registry> registry_;
  writeback::v1::AgentConfig cfg_;
};

TEST_F(RelayE2eTest, AgentBehindARelayEnrolsConnectsAndItsDecisionIsVerified) {
  auto relay = StartRelay("dmz", CpAddress(), h_->agent_config("dmz").controlplane_id());
  ASSERT_NE(relay, nullptr);
  PointE1At(*relay, kDmz);
  auto a = EnrolAndStartE1();
  ASSERT_NE(a, nullptr);
  auto st = Status("e1");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_THAT(st->relay_path(), ElementsAre(kDmz));
  EXPECT_EQ(st->state(), writeback::v1::AGENT_STATE_ONLINE);

  SshTestKey key;
  const std::string id = SubmitRemoval(&key);
  auto done = h_->WaitTerminal(id);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(DecisionState_Name(done->state()), "DECISION_STATE_VERIFIED") << done->state_detail();
  EXPECT_THAT(E1Keys(), ::testing::Not(HasSubstr(key.line)));
  std::printf("relay: e1 enrolled and verified through %s (%llu stream(s) forwarded)\n", kDmz,
              static_cast<unsigned long long>(relay->forwarded_streams()));

  // The relay host is lost: its own stream and the ones it carried end.
  relay->Stop();
  h_->StopAgent("dmz");
  ASSERT_TRUE(PollUntil(
      [&] {
        auto s = Status("e1");
        return s.ok() && s->unreachable_via() == kDmz;
      },
      absl::Seconds(30)))
      << "the fleet view does not show e1 unreachable through the lost relay";
  st = Status("e1");
  ASSERT_TRUE(st.ok());
  EXPECT_NE(st->state(), writeback::v1::AGENT_STATE_ONLINE);
  EXPECT_THAT(st->state_reason(), HasSubstr("unreachable through relay"));
  std::printf("relay lost: e1 %s (%s)\n", AgentState_Name(st->state()).c_str(),
              st->state_reason().c_str());
  a->Stop();
}

TEST_F(RelayE2eTest, RelaysChainAndThePathIsShown) {
  auto dmz = StartRelay("dmz", CpAddress(), h_->agent_config("dmz").controlplane_id());
  ASSERT_NE(dmz, nullptr);
  auto cell = StartRelay("cell", absl::StrCat("127.0.0.1:", dmz->port()), kDmz);
  ASSERT_NE(cell, nullptr);
  PointE1At(*cell, kCell);
  auto a = EnrolAndStartE1();
  ASSERT_NE(a, nullptr);
  auto st = Status("e1");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_THAT(st->relay_path(), ElementsAre(kCell, kDmz));

  SshTestKey key;
  auto done = h_->WaitTerminal(SubmitRemoval(&key));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(DecisionState_Name(done->state()), "DECISION_STATE_VERIFIED") << done->state_detail();
  EXPECT_THAT(E1Keys(), ::testing::Not(HasSubstr(key.line)));
  std::printf("relay chain: e1 > cell > dmz > control plane, decision VERIFIED\n");
  a->Stop();
}

TEST_F(RelayE2eTest, TaskAlteredByARelayIsRefusedByTheAgent) {
  std::atomic<int> altered{0};
  std::unique_ptr<agent::Agent> a;
  auto relay = TamperingDmzWithE1(
      [&](writeback::v1::ControlMessage& m) {
        if (!m.has_task() || m.task().payload().empty()) return;
        FlipLastByte(m.mutable_task()->mutable_payload());
        altered.fetch_add(1);
      },
      &a);
  ASSERT_NE(relay, nullptr);
  ASSERT_NE(a, nullptr);
  SshTestKey key;
  const std::string id = SubmitRemoval(&key);
  auto& d = h_->controlplane()->dispatcher();
  ASSERT_TRUE(PollUntil([&] { return d.altered_deliveries() >= 1; }, absl::Seconds(30)))
      << "the control plane never heard that e1 refused the altered task";
  EXPECT_GE(altered.load(), 1);
  auto v = h_->Get(id);
  ASSERT_TRUE(v.ok());
  EXPECT_NE(DecisionState_Name(v->state()), "DECISION_STATE_VERIFIED");
  EXPECT_THAT(E1Keys(), HasSubstr(key.line)) << "an altered task changed the target";
  std::printf("tampering relay: %d task(s) altered, %llu refused by the agent, target unchanged\n",
              altered.load(), static_cast<unsigned long long>(d.altered_deliveries()));
  a->Stop();
}

// A statement travels once per stream, apart from its tasks: a relay that
// alters it gains nothing. The agent takes no task whose statement does not
// hash to the digest the signed task names, records no refusal, and the
// redelivery brings the statement again.
TEST_F(RelayE2eTest, StatementAlteredByARelayIsNotTakenAndComesAgain) {
  std::atomic<int> statements{0};
  std::atomic<int> altered{0};
  std::unique_ptr<agent::Agent> a;
  auto relay = TamperingDmzWithE1(
      [&](writeback::v1::ControlMessage& m) {
        if (!m.has_statement()) return;
        if (statements.fetch_add(1) > 0) return;  // the first one only
        FlipLastByte(m.mutable_statement());
        altered.fetch_add(1);
      },
      &a);
  ASSERT_NE(relay, nullptr);
  ASSERT_NE(a, nullptr);
  SshTestKey key;
  const std::string id = SubmitRemoval(&key);
  auto done = h_->WaitTerminal(id);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(DecisionState_Name(done->state()), "DECISION_STATE_VERIFIED") << done->state_detail();
  EXPECT_EQ(altered.load(), 1);
  EXPECT_GE(statements.load(), 2) << "the statement was not sent again with the redelivery";
  EXPECT_THAT(E1Keys(), ::testing::Not(HasSubstr(key.line)));
  EXPECT_EQ(h_->controlplane()->dispatcher().altered_deliveries(), 0u);
  std::printf(
      "statement altered once on the way: task not taken, redelivered with %d statement "
      "message(s) in all, VERIFIED\n",
      statements.load());
  a->Stop();
}

// A relay holds only its own keys: whatever it sends for an agent without
// that agent's fresh, unused proof is refused.
TEST_F(RelayE2eTest, RelayCannotSpeakForAnAgentOrReplayItsProof) {
  auto relay = StartRelay("dmz", CpAddress(), h_->agent_config("dmz").controlplane_id());
  ASSERT_NE(relay, nullptr);
  PointE1At(*relay, kDmz);
  auto a = EnrolAndStartE1();
  ASSERT_NE(a, nullptr);
  a->Stop();
  auto e1_key = crypto::Ed25519PrivateKey::LoadFile(cfg_.result_key_file());
  ASSERT_TRUE(e1_key.ok());

  // The dmz relay's own credentials, straight to the control plane.
  auto creds = tls::MakeChannelCredentials(h_->agent_config("dmz").tls(),
                                           h_->agent_config("dmz").controlplane_id());
  ASSERT_TRUE(creds.ok());
  auto channel = grpc::CreateCustomChannel(CpAddress(), *creds, tls::DefaultChannelArgs());
  auto stub = writeback::v1::AgentService::NewStub(channel);
  auto open = [&](const std::string& path, const writeback::v1::AgentMessage& first) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!path.empty()) ctx.AddMetadata(relay::kRelayPathHeader, path);
    auto s = stub->Connect(&ctx);
    s->Write(first);
    writeback::v1::ControlMessage m;
    const bool welcomed = s->Read(&m) && m.has_welcome();
    if (welcomed) ctx.TryCancel();
    grpc::Status st = s->Finish();
    return welcomed ? std::string("WELCOMED") : st.error_message();
  };
  writeback::v1::Hello hello;
  hello.set_agent_id(kE1);
  hello.set_version("forged");
  hello.set_result_public_key(e1_key->public_key().raw());
  writeback::v1::AgentMessage m;
  *m.mutable_hello() = hello;

  EXPECT_THAT(open(kDmz, m), HasSubstr("connect_proof: required"));
  auto relay_key = crypto::Ed25519PrivateKey::LoadFile(h_->agent_config("dmz").result_key_file());
  ASSERT_TRUE(relay_key.ok());
  *m.mutable_connect_proof() = relay::MakeConnectProof(hello, *relay_key, absl::Now());
  EXPECT_THAT(open(kDmz, m), HasSubstr("not signed by the result key registered"));
  // A path that does not end with the relay's own certificate.
  *m.mutable_connect_proof() = relay::MakeConnectProof(hello, *e1_key, absl::Now());
  EXPECT_THAT(open(kCell, m), HasSubstr("is not the certificate's identity"));
  // A real proof (as if captured from e1) is accepted once, never again.
  EXPECT_EQ(open(kDmz, m), "WELCOMED");
  EXPECT_THAT(open(kDmz, m), HasSubstr("already used"));
  // An agent with no registered key cannot be introduced by a relay.
  writeback::v1::Hello stranger = hello;
  stranger.set_agent_id("spiffe://writeback.test/agent/stranger");
  *m.mutable_hello() = stranger;
  *m.mutable_connect_proof() = relay::MakeConnectProof(stranger, *e1_key, absl::Now());
  EXPECT_THAT(open(kDmz, m), HasSubstr("has no registered result key"));
}

// A relay sees enrolment requests. The token itself never travels; what
// does (its digest, a signature binding it to the agent's CSR and result
// key) cannot enrol anyone else, and a refused attempt does not spend it.
TEST_F(RelayE2eTest, EnrolmentSeenOnTheWayCannotBeReusedForOtherKeys) {
  auto token = Token();
  ASSERT_TRUE(token.ok()) << token.status();
  auto token_key = crypto::JoinTokenKey(*token);
  ASSERT_TRUE(token_key.ok());
  auto agent_result = crypto::Ed25519PrivateKey::Generate();
  auto csr = crypto::MakeCsr(crypto::GenerateP256KeyPem(), kE1);
  ASSERT_TRUE(csr.ok());
  writeback::v1::EnrollRequest seen;
  seen.set_csr_pem(*csr);
  seen.set_result_public_key(agent_result.public_key().raw());
  seen.set_token_digest(crypto::Sha256(*token));
  seen.set_token_signature(
      token_key->Sign(crypto::EnrollmentBinding(seen.csr_pem(), seen.result_public_key())));
  EXPECT_EQ(seen.SerializeAsString().find(*token), std::string::npos);

  auto creds = tls::MakeChannelCredentials(h_->agent_config("dmz").tls(),
                                           h_->agent_config("dmz").controlplane_id());
  ASSERT_TRUE(creds.ok());
  auto stub = writeback::v1::EnrollmentService::NewStub(
      grpc::CreateCustomChannel(CpAddress(), *creds, tls::DefaultChannelArgs()));
  auto enrol = [&](const writeback::v1::EnrollRequest& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    writeback::v1::EnrollResponse resp;
    return stub->Enroll(&ctx, req, &resp);
  };
  // The relay's own CSR, and its own result key, with what it saw.
  writeback::v1::EnrollRequest swapped = seen;
  auto relay_csr = crypto::MakeCsr(crypto::GenerateP256KeyPem(), kE1);
  ASSERT_TRUE(relay_csr.ok());
  swapped.set_csr_pem(*relay_csr);
  grpc::Status s = enrol(swapped);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  swapped = seen;
  swapped.set_result_public_key(crypto::Ed25519PrivateKey::Generate().public_key().raw());
  s = enrol(swapped);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  // The agent's own request still works (the token was not spent), once.
  s = enrol(seen);
  EXPECT_TRUE(s.ok()) << s.error_message();
  s = enrol(seen);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

// What the relay itself checks before forwarding anything.
TEST_F(RelayE2eTest, RelayChecksItsDownstreamPeers) {
  writeback::v1::AgentConfig c = h_->agent_config("dmz");
  c.mutable_relay()->set_listen_address("127.0.0.1:0");
  c.mutable_relay()->set_max_downstream_streams(1);
  auto o = agent::RelayOptionsFromConfig(c);
  ASSERT_TRUE(o.ok()) << o.status();
  auto relay = agent::Relay::Start(*std::move(o));
  ASSERT_TRUE(relay.ok()) << relay.status();
  const std::string addr = absl::StrCat("127.0.0.1:", (*relay)->port());
  // Opens a stream to the relay with `tls`, says Hello as `agent_id`, and
  // returns "WELCOMED" or the status message.
  auto open = [&](const writeback::v1::TlsConfig& tls, const std::string& agent_id,
                  grpc::ClientContext* keep = nullptr) {
    auto creds = tls::MakeChannelCredentials(tls, kDmz);
    if (!creds.ok()) return std::string(creds.status().message());
    auto stub = writeback::v1::AgentService::NewStub(
        grpc::CreateCustomChannel(addr, *creds, tls::DefaultChannelArgs()));
    grpc::ClientContext own;
    grpc::ClientContext* ctx = keep != nullptr ? keep : &own;
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto s = stub->Connect(ctx);
    writeback::v1::AgentMessage m;
    m.mutable_hello()->set_agent_id(agent_id);
    s->Write(m);
    writeback::v1::ControlMessage reply;
    if (s->Read(&reply)) return std::string("WELCOMED");
    return s->Finish().error_message();
  };
  // An operator's certificate is not a downstream agent.
  auto op = h_->pki().AddOperator("eve", absl::Now());
  ASSERT_TRUE(op.ok());
  EXPECT_THAT(open(op->tls, kCell), HasSubstr("needs an agent certificate"));
  // An agent saying Hello as another agent.
  EXPECT_THAT(open(h_->agent_config("cell").tls(), kE1),
              HasSubstr("is not the downstream certificate's identity"));
  // One stream at most (max_downstream_streams: 1): e1 holds it.
  PointE1At(**relay, kDmz);
  auto a = EnrolAndStartE1();
  ASSERT_NE(a, nullptr);
  EXPECT_THAT(open(h_->agent_config("cell").tls(), kCell), HasSubstr("downstream streams already"));
  a->Stop();
}

TEST_F(RelayE2eTest, BanningARelayEndsTheStreamsItCarries) {
  auto relay = StartRelay("dmz", CpAddress(), h_->agent_config("dmz").controlplane_id());
  ASSERT_NE(relay, nullptr);
  PointE1At(*relay, kDmz);
  auto a = EnrolAndStartE1();
  ASSERT_NE(a, nullptr);
  grpc::ClientContext ctx;
  writeback::v1::BanAgentRequest req;
  req.set_agent_id("dmz");
  req.set_reason("relay host compromised (test)");
  writeback::v1::BanAgentResponse resp;
  ASSERT_TRUE(h_->admin().BanAgent(&ctx, req, &resp).ok());
  EXPECT_TRUE(resp.stream_ended());             // the relay's own
  EXPECT_EQ(resp.relayed_streams_ended(), 1u);  // e1's, through it
  ASSERT_TRUE(PollUntil([&] { return !a->connected(); }, absl::Seconds(10)))
      << "e1's stream through the banned relay is still open";
  const int attempts = a->connect_attempts();
  ASSERT_TRUE(PollUntil([&] { return a->connect_attempts() >= attempts + 2; }, absl::Seconds(30)));
  EXPECT_FALSE(a->connected()) << "e1 reconnected through a banned relay";
  a->Stop();
}

}  // namespace
}  // namespace wb::e2e
