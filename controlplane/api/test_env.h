// Test-only: a real control plane on 127.0.0.1:0 with a fresh PKI, clients
// with any identity, and a fake agent speaking the AgentService protocol.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "common/pki/pki.h"
#include "common/testing/temp_dir.h"
#include "common/tls/tls.h"
#include "controlplane/dispatch/dispatcher.h"
#include "controlplane/dispatch/test_hello.h"
#include "controlplane/server.h"
#include "gtest/gtest.h"
#include "writeback/v1/admin_service.grpc.pb.h"
#include "writeback/v1/agent_service.grpc.pb.h"

namespace wb::controlplane::test {

inline const std::string kFingerprint = "SHA256:" + std::string(43, 'A');

class TestEnv {
 public:
  // PKI with agents a1, a2, operator alice, an operator of another trust
  // domain (signed by our CA) and the control plane; then a started server.
  static std::unique_ptr<TestEnv> Start(
      const Clock* clock = SystemClock::Get(), ControlPlaneOptions opts = {},
      std::function<void(writeback::v1::ControlPlaneConfig&)> tweak = nullptr) {
    auto env = std::unique_ptr<TestEnv>(new TestEnv());
    env->clock_ = clock;
    env->opts_ = std::move(opts);
    pki::PkiSpec spec;
    spec.agents = {"a1", "a2"};
    spec.operators = {"alice"};
    auto p = pki::Pki::Init(env->dir_.Sub("pki"), spec, absl::Now());
    if (!p.ok()) {
      ADD_FAILURE() << p.status();
      return nullptr;
    }
    env->pki_ = std::make_unique<pki::Pki>(*std::move(p));
    auto foreign = env->pki_->AddRaw("foreign", "spiffe://other.test/operator/eve", absl::Hours(24),
                                     absl::Now());
    if (!foreign.ok()) {
      ADD_FAILURE() << foreign.status();
      return nullptr;
    }
    env->foreign_ = *foreign;
    auto& cfg = env->cfg_;
    cfg.set_listen_address("127.0.0.1:0");
    cfg.set_trust_domain(env->pki_->trust_domain());
    *cfg.mutable_tls() = env->pki_->controlplane().tls;
    cfg.set_data_dir(env->dir_.Sub("data"));
    cfg.set_dispatch_key_file(env->pki_->dispatch_key_file());
    cfg.set_log_format("text");
    if (tweak) tweak(cfg);
    if (absl::Status s = env->StartServer(); !s.ok()) {
      ADD_FAILURE() << s;
      return nullptr;
    }
    // What an operator does (wbctl instance bind): "hosts" is a1's, "db"
    // a2's.
    for (const auto& [instance, agent] : {std::pair<std::string, std::string>{"hosts", "a1"},
                                          std::pair<std::string, std::string>{"db", "a2"}}) {
      auto b = env->cp_->dispatcher().BindInstance(
          tls::MakeSpiffeId(env->pki_->trust_domain(), tls::IdentityClass::kOperator, "alice"),
          instance, env->AgentId(agent), "test env");
      if (!b.ok()) {
        ADD_FAILURE() << b.status();
        return nullptr;
      }
    }
    return env;
  }

  absl::Status StartServer() {
    auto cp = ControlPlane::Create(cfg_, clock_, opts_);
    if (!cp.ok()) return cp.status();
    cp_ = std::move(*cp);
    if (absl::Status s = cp_->Start(); !s.ok()) return s;
    // A restart reuses the port.
    cfg_.set_listen_address(absl::StrCat("127.0.0.1:", cp_->port()));
    return absl::OkStatus();
  }
  void StopServer() {
    if (cp_) cp_->Shutdown();
    cp_.reset();
  }

  std::shared_ptr<grpc::Channel> Channel(const writeback::v1::TlsConfig& tls) {
    auto creds = tls::MakeChannelCredentials(tls, pki_->controlplane_id());
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port()), *creds,
                                     tls::DefaultChannelArgs());
  }
  // TLS config without a client certificate.
  writeback::v1::TlsConfig NoCert() {
    writeback::v1::TlsConfig t;
    t.set_ca_file(pki_->ca_file());
    return t;
  }
  std::unique_ptr<writeback::v1::AdminService::Stub> Admin(const writeback::v1::TlsConfig& tls) {
    return writeback::v1::AdminService::NewStub(Channel(tls));
  }
  std::unique_ptr<writeback::v1::AdminService::Stub> Operator() {
    return Admin(pki_->operator_identity("alice").tls);
  }

  std::string AgentId(const std::string& name) { return pki_->agent(name).spiffe_id; }
  crypto::Ed25519PrivateKey AgentResultKey(const std::string& name) {
    auto k = crypto::Ed25519PrivateKey::LoadFile(pki_->agent_result_key_file(name));
    EXPECT_TRUE(k.ok()) << k.status();
    return *k;
  }
  crypto::Ed25519PublicKey DispatchPublicKey() {
    auto k = crypto::Ed25519PublicKey::LoadFile(pki_->dispatch_pub_file());
    EXPECT_TRUE(k.ok()) << k.status();
    return *k;
  }

  pki::Pki& pki() { return *pki_; }
  const pki::Identity& foreign() const { return foreign_; }
  ControlPlane& cp() { return *cp_; }
  int port() const { return cp_ ? cp_->port() : 0; }
  const std::string& dir() const { return dir_.path(); }

 private:
  TestEnv() = default;
  wb::testing::TempDir dir_;
  std::unique_ptr<pki::Pki> pki_;
  pki::Identity foreign_;
  writeback::v1::ControlPlaneConfig cfg_;
  const Clock* clock_ = nullptr;
  ControlPlaneOptions opts_;
  std::unique_ptr<ControlPlane> cp_;
};

inline void SetDeadline(grpc::ClientContext* ctx, int seconds = 20) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
}

inline writeback::v1::DecisionSpec SshSpec(const std::vector<std::string>& users,
                                           const std::string& instance = "hosts") {
  writeback::v1::DecisionSpec s;
  s.set_connector_instance(instance);
  s.set_operation("remove_key");
  s.mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(kFingerprint);
  for (const auto& u : users) s.add_targets()->set_object(u);
  s.set_reason("stale deploy key");
  return s;
}

// A test client speaking the AgentService protocol over a real mTLS stream
// (synchronous; every call is bounded by the stream's deadline).
class FakeAgent {
 public:
  FakeAgent(std::shared_ptr<grpc::Channel> ch, std::string agent_id,
            crypto::Ed25519PrivateKey result_key, int deadline_seconds = 30)
      : stub_(writeback::v1::AgentService::NewStub(std::move(ch))),
        agent_id_(std::move(agent_id)),
        key_(std::move(result_key)) {
    SetDeadline(&ctx_, deadline_seconds);
    stream_ = stub_->Connect(&ctx_);
  }
  ~FakeAgent() { ctx_.TryCancel(); }

  writeback::v1::Hello MakeHello(const std::string& instance = "hosts") const {
    writeback::v1::Hello h = MakeTestHello(agent_id_, key_, instance, {"remove_key"});
    h.set_version("test");
    h.mutable_instances(0)->set_healthy(true);
    return h;
  }

  bool Send(const writeback::v1::AgentMessage& m) { return stream_->Write(m); }
  bool SendHello(const writeback::v1::Hello& h) {
    writeback::v1::AgentMessage m;
    *m.mutable_hello() = h;
    return Send(m);
  }
  // Hello, then the Welcome.
  absl::StatusOr<writeback::v1::Welcome> Connect(const std::string& instance = "hosts") {
    if (!SendHello(MakeHello(instance))) return absl::UnavailableError("write failed");
    auto m = Read();
    if (!m.ok()) return m.status();
    if (!m->has_welcome()) return absl::InternalError("first message is not a welcome");
    return m->welcome();
  }
  // The next message, or the stream's final status once it ended.
  absl::StatusOr<writeback::v1::ControlMessage> Read() {
    writeback::v1::ControlMessage m;
    if (stream_->Read(&m)) return m;
    grpc::Status s = stream_->Finish();
    finished_ = true;
    if (s.ok()) return absl::OutOfRangeError("stream ended with OK");
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  // The next task envelope (skipping nothing: fails on another message).
  absl::StatusOr<writeback::v1::SignedEnvelope> ReadTask() {
    auto m = Read();
    if (!m.ok()) return m.status();
    if (!m->has_task())
      return absl::InternalError(absl::StrCat("expected a task, got ", m->DebugString()));
    return m->task();
  }
  absl::StatusOr<writeback::v1::ResultAck> ReadResultAck() {
    auto m = Read();
    if (!m.ok()) return m.status();
    if (!m->has_result_ack()) {
      return absl::InternalError(absl::StrCat("expected a result ack, got ", m->DebugString()));
    }
    return m->result_ack();
  }
  bool Ack(const std::string& task_id) {
    writeback::v1::AgentMessage m;
    m.mutable_task_ack()->set_task_id(task_id);
    return Send(m);
  }
  writeback::v1::SignedEnvelope MakeResult(const writeback::v1::SignedEnvelope& task,
                                           writeback::v1::Outcome outcome) const {
    writeback::v1::Task t;
    t.ParseFromString(task.payload());
    writeback::v1::Result r;
    r.set_task_id(t.task_id());
    r.set_agent_id(agent_id_);
    r.set_task_digest(crypto::Sha256(task.payload()));
    r.set_outcome(outcome);
    r.mutable_verification()->set_outcome(outcome);
    r.mutable_verification()->set_detail("fingerprint absent from authorized_keys");
    auto* obs = r.mutable_verification()->add_after();
    obs->set_check("read_authorized_keys");
    obs->set_subject(t.target().object());
    return envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT, r.SerializeAsString(), key_);
  }
  bool SendResult(const writeback::v1::SignedEnvelope& env) {
    writeback::v1::AgentMessage m;
    *m.mutable_result() = env;
    return Send(m);
  }
  // Half-closes and waits for the server's status.
  grpc::Status Close() {
    if (finished_) return grpc::Status::OK;
    stream_->WritesDone();
    writeback::v1::ControlMessage m;
    while (stream_->Read(&m)) {
    }
    finished_ = true;
    return stream_->Finish();
  }

  const std::string& agent_id() const { return agent_id_; }
  const crypto::Ed25519PrivateKey& key() const { return key_; }

 private:
  std::unique_ptr<writeback::v1::AgentService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<
      grpc::ClientReaderWriter<writeback::v1::AgentMessage, writeback::v1::ControlMessage>>
      stream_;
  std::string agent_id_;
  crypto::Ed25519PrivateKey key_;
  bool finished_ = false;
};

}  // namespace wb::controlplane::test
