#include "common/tls/tls.h"

#include <grpcpp/grpcpp.h>

#include "common/pki/pki.h"
#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "writeback/v1/admin_service.grpc.pb.h"

namespace wb::tls {
namespace {

TEST(Spiffe, ParseAndFormat) {
  auto id = ParseSpiffeId("spiffe://writeback.test/agent/a-1");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->cls, IdentityClass::kAgent);
  EXPECT_EQ(id->name, "a-1");
  EXPECT_EQ(id->ToString(), "spiffe://writeback.test/agent/a-1");
  for (const char* bad :
       {"https://x/agent/a", "spiffe://x/agent", "spiffe://x/root/a", "spiffe://x/agent/A",
        "spiffe://x/agent/a/b", "spiffe:///agent/a", "spiffe://x/agent/../a"}) {
    EXPECT_FALSE(ParseSpiffeId(bad).ok()) << bad;
  }
}

// Echoes the caller's SPIFFE ID back as the only agent's id.
class EchoAdmin final : public writeback::v1::AdminService::Service {
  grpc::Status ListAgents(grpc::ServerContext* ctx, const writeback::v1::ListAgentsRequest*,
                          writeback::v1::ListAgentsResponse* resp) override {
    resp->add_agents()->set_agent_id(PeerSpiffeId(*ctx));
    return grpc::Status::OK;
  }
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki::PkiSpec spec;
    spec.agents = {"a1"};
    auto p = pki::Pki::Init(dir_.Sub("pki"), spec, absl::Now());
    ASSERT_TRUE(p.ok()) << p.status();
    pki_ = std::make_unique<pki::Pki>(*p);
    pki::PkiSpec other;
    other.agents = {"a1"};
    auto o = pki::Pki::Init(dir_.Sub("other"), other, absl::Now());
    ASSERT_TRUE(o.ok());
    other_ = std::make_unique<pki::Pki>(*o);
  }

  void StartServer(bool require_client_cert) {
    auto creds = MakeServerCredentials(pki_->controlplane().tls, require_client_cert);
    ASSERT_TRUE(creds.ok()) << creds.status();
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", *creds, &port_);
    b.RegisterService(&service_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }

  grpc::Status Call(const writeback::v1::TlsConfig& tls, const std::string& pin,
                    std::string* peer) {
    auto creds = MakeChannelCredentials(tls, pin);
    EXPECT_TRUE(creds.ok()) << creds.status();
    auto ch = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_), *creds,
                                        DefaultChannelArgs());
    auto stub = writeback::v1::AdminService::NewStub(ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    writeback::v1::ListAgentsResponse resp;
    grpc::Status s = stub->ListAgents(&ctx, {}, &resp);
    if (s.ok() && resp.agents_size() == 1) *peer = resp.agents(0).agent_id();
    return s;
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  testing::TempDir dir_;
  std::unique_ptr<pki::Pki> pki_, other_;
  EchoAdmin service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(TlsTest, MutualTlsCarriesSpiffeId) {
  StartServer(true);
  std::string peer;
  grpc::Status s = Call(pki_->agent("a1").tls, pki_->controlplane_id(), &peer);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(peer, "spiffe://writeback.test/agent/a1");
}

TEST_F(TlsTest, ClientRefusesServerWithOtherIdentity) {
  StartServer(true);
  std::string peer;
  grpc::Status s = Call(pki_->agent("a1").tls, "spiffe://writeback.test/controlplane/other", &peer);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, ServerRequiringCertRefusesAnonymousClient) {
  StartServer(true);
  writeback::v1::TlsConfig anon;
  anon.set_ca_file(pki_->ca_file());
  std::string peer;
  EXPECT_FALSE(Call(anon, pki_->controlplane_id(), &peer).ok());
}

TEST_F(TlsTest, OptionalClientCertGivesEmptyIdentity) {
  StartServer(false);
  writeback::v1::TlsConfig anon;
  anon.set_ca_file(pki_->ca_file());
  std::string peer = "unset";
  ASSERT_TRUE(Call(anon, pki_->controlplane_id(), &peer).ok());
  EXPECT_EQ(peer, "");
}

TEST_F(TlsTest, CertificateFromAnotherCaIsRefused) {
  StartServer(false);
  writeback::v1::TlsConfig foreign = other_->agent("a1").tls;
  foreign.set_ca_file(pki_->ca_file());  // trusts our CA, presents the other CA's cert
  std::string peer;
  EXPECT_FALSE(Call(foreign, pki_->controlplane_id(), &peer).ok());
}

}  // namespace
}  // namespace wb::tls
