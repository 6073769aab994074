// Agent identities end to end (issue 8): enrolment with a single-use join
// token and a CSR (keys made on the agent), recovery of a certificate that
// expired while the agent was cut off, and a ban that ends the live stream
// at once and is never undone by renewal, re-joining or a new token.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "agent/agent.h"
#include "agent/identity/identity.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "connectors/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"
#include "tests/integration/ssh_test_keys.h"

namespace wb::e2e {
namespace {

using ::testing::HasSubstr;

constexpr char kE1[] = "spiffe://writeback.test/agent/e1";

template <typename Pred>
bool PollUntil(Pred pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return pred();
}

class IdentityE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Harness::Options o;
    writeback::v1::ConnectorInstanceConfig c;
    c.set_name("ssh-a1");
    c.set_type("ssh_authorized_keys");
    c.add_allowed_operations("remove_key");
    c.mutable_ssh_authorized_keys()->set_path_template(dir_.path() + "/a1/{user}/authorized_keys");
    o.agents["a1"] = {c};
    o.enrollment = true;
    auto h = Harness::Start(o);
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = *std::move(h);
    registry_ = std::make_unique<connectors::Registry>();
    connectors::RegisterBuiltinConnectors(*registry_);

    // e1: nothing but the CA certificate and the control plane's identity.
    const std::string d = dir_.Sub("e1");
    auto cfg = h_->NewAgentConfig("a1", "e1", d);
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    cfg_ = *std::move(cfg);
    auto* e = cfg_.add_connectors();
    e->set_name("ssh-e1");
    e->set_type("ssh_authorized_keys");
    e->add_allowed_operations("remove_key");
    e->mutable_ssh_authorized_keys()->set_path_template(d + "/{user}/authorized_keys");
  }

  absl::StatusOr<std::string> Token(const std::string& id = "e1") {
    grpc::ClientContext ctx;
    writeback::v1::CreateJoinTokenRequest req;
    req.set_agent_id(id);
    req.add_instances("ssh-" + id);  // bound to it when it enrols
    writeback::v1::CreateJoinTokenResponse resp;
    grpc::Status s = h_->admin().CreateJoinToken(&ctx, req, &resp);
    if (!s.ok())
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    return resp.token();
  }

  std::unique_ptr<agent::Agent> StartE1() {
    auto a = agent::Agent::Create(cfg_, *registry_);
    EXPECT_TRUE(a.ok()) << a.status();
    if (!a.ok()) return nullptr;
    EXPECT_TRUE((*a)->Start().ok());
    return *std::move(a);
  }

  testing::TempDir dir_;
  std::unique_ptr<Harness> h_;
  std::unique_ptr<connectors::Registry> registry_;
  writeback::v1::AgentConfig cfg_;
};

TEST_F(IdentityE2eTest, EnrolledAgentServesDecisionsAndTheTokenIsSingleUse) {
  auto token = Token();
  ASSERT_TRUE(token.ok()) << token.status();
  ASSERT_TRUE(agent::Enroll(cfg_, *token, false).ok());
  // The keys were made here and stay here (0600); only the certificate came back.
  struct stat st;
  ASSERT_EQ(::stat(cfg_.tls().key_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto a = StartE1();
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(PollUntil([&] { return a->connected(); }, absl::Seconds(30)));
  EXPECT_TRUE(a->identity_valid());

  // Its registered result key signs results the control plane accepts.
  const SshTestKey key = MakeSshKey("leaked@ci");
  const std::string home = dir_.path() + "/e1/deploy";
  ASSERT_TRUE(fs::MakeDirs(home).ok());
  ASSERT_TRUE(fs::WriteFileAtomic(home + "/authorized_keys", key.line + "\n").ok());
  auto r = h_->Submit(SshRemoveKeySpec("ssh-e1", {"deploy"}, key.fingerprint));
  ASSERT_TRUE(r.ok()) << r.status();
  auto done = h_->WaitTerminal(r->decision_id());
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(DecisionState_Name(done->state()), "DECISION_STATE_VERIFIED") << done->state_detail();

  // The same token again, an unknown one: the same refusal.
  writeback::v1::AgentConfig again = cfg_;
  again.mutable_tls()->set_cert_file(dir_.Sub("again.crt"));
  again.mutable_tls()->set_key_file(dir_.Sub("again.key"));
  absl::Status reused = agent::Enroll(again, *token, false);
  EXPECT_EQ(reused.code(), absl::StatusCode::kPermissionDenied) << reused;
  absl::Status unknown = agent::Enroll(again, "wbj_00", false);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kPermissionDenied) << unknown;
  EXPECT_EQ(reused.message(), unknown.message());
  a->Stop();
}

TEST_F(IdentityE2eTest, CertificateThatExpiredWhileCutOffRecoversByItself) {
  auto token = Token();
  ASSERT_TRUE(token.ok()) << token.status();
  ASSERT_TRUE(agent::Enroll(cfg_, *token, false).ok());
  // While it was cut off, its certificate ran out: replace it by one that
  // expired an hour ago (same key, issued by the same CA).
  auto key = fs::ReadFile(cfg_.tls().key_file());
  auto ca = fs::ReadFile(cfg_.tls().ca_file());
  std::string ca_key_path = cfg_.tls().ca_file();
  ca_key_path.replace(ca_key_path.size() - 3, 3, "key");
  auto ca_key = fs::ReadFile(ca_key_path);
  ASSERT_TRUE(key.ok() && ca.ok() && ca_key.ok());
  crypto::CertSpec spec;
  spec.common_name = "e1";
  spec.spiffe_id = kE1;
  spec.lifetime = absl::Minutes(10);
  spec.backdate = absl::ZeroDuration();
  auto expired = crypto::IssueCert(*ca, *ca_key, *crypto::PublicKeyPemOf(*key), spec,
                                   absl::Now() - absl::Hours(1));
  ASSERT_TRUE(expired.ok()) << expired.status();
  ASSERT_TRUE(fs::WriteFileAtomic(cfg_.tls().cert_file(), *expired).ok());

  auto a = StartE1();
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(PollUntil([&] { return a->connected(); }, absl::Seconds(60)))
      << "the agent did not re-join";
  EXPECT_TRUE(a->identity_valid());
  EXPECT_GE(a->certificate_renewals(), 1);
  std::printf("identity: expired certificate recovered by re-joining (%d new certificate(s))\n",
              a->certificate_renewals());
  a->Stop();
}

TEST_F(IdentityE2eTest, BanEndsTheLiveStreamAtOnceAndTheAgentNeverRecovers) {
  auto token = Token();
  ASSERT_TRUE(token.ok()) << token.status();
  ASSERT_TRUE(agent::Enroll(cfg_, *token, false).ok());
  auto a = StartE1();
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(PollUntil([&] { return a->connected(); }, absl::Seconds(30)));

  const absl::Time t0 = absl::Now();
  grpc::ClientContext ctx;
  writeback::v1::BanAgentRequest req;
  req.set_agent_id("e1");
  req.set_reason("host compromised (test)");
  writeback::v1::BanAgentResponse resp;
  ASSERT_TRUE(h_->admin().BanAgent(&ctx, req, &resp).ok());
  EXPECT_TRUE(resp.stream_ended());
  ASSERT_TRUE(PollUntil([&] { return !a->connected(); }, absl::Seconds(5)))
      << "the banned agent's stream is still open after 5 s";
  const absl::Duration ended = absl::Now() - t0;
  std::printf("identity: ban ended the live stream in %s\n", absl::FormatDuration(ended).c_str());
  EXPECT_LT(ended, absl::Seconds(5));

  // It keeps trying and is refused every time.
  const int attempts = a->connect_attempts();
  ASSERT_TRUE(PollUntil([&] { return a->connect_attempts() >= attempts + 2; }, absl::Seconds(30)));
  EXPECT_FALSE(a->connected());
  // Renewal, re-joining and a new token are refused too.
  auto result_key = crypto::Ed25519PrivateKey::LoadFile(cfg_.result_key_file());
  ASSERT_TRUE(result_key.ok());
  agent::Renewer renewer(cfg_, *result_key, SystemClock::Get(), {});
  EXPECT_EQ(renewer.RenewNow().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(renewer.RejoinNow().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Token().status().code(), absl::StatusCode::kFailedPrecondition);
  // Its instance takes no new decisions.
  auto r = h_->Submit(SshRemoveKeySpec("ssh-e1", {"deploy"}, MakeSshKey("x").fingerprint));
  EXPECT_THAT(r.status().message(), HasSubstr("banned"));
  a->Stop();
}

}  // namespace
}  // namespace wb::e2e
