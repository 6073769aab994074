// The operators' API and the authorization table on a real server with
// real mTLS identities.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "common/testing/wait.h"
#include "controlplane/api/test_env.h"
#include "controlplane/rpc/paging.h"

namespace wb::controlplane {
namespace {

using test::FakeAgent;
using test::SetDeadline;
using test::SshSpec;
using test::TestEnv;
using ::testing::HasSubstr;
using writeback::v1::ListDecisionsRequest;
using writeback::v1::ListDecisionsResponse;

grpc::Status CallListDecisions(writeback::v1::AdminService::Stub& stub, ListDecisionsResponse* resp,
                               uint32_t limit = 0) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  ListDecisionsRequest req;
  req.set_limit(limit);
  return stub.ListDecisions(&ctx, req, resp);
}

grpc::Status CallSubmit(writeback::v1::AdminService::Stub& stub,
                        const writeback::v1::DecisionSpec& spec,
                        writeback::v1::SubmitDecisionResponse* resp) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  writeback::v1::SubmitDecisionRequest req;
  *req.mutable_spec() = spec;
  return stub.SubmitDecision(&ctx, req, resp);
}

// Every AdminService method, called with empty requests.
std::vector<grpc::Status> CallAllAdmin(writeback::v1::AdminService::Stub& stub) {
  std::vector<grpc::Status> out;
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    writeback::v1::SubmitDecisionResponse r;
    out.push_back(stub.SubmitDecision(&ctx, {}, &r));
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    writeback::v1::DecisionView r;
    out.push_back(stub.GetDecision(&ctx, {}, &r));
  }
  {
    ListDecisionsResponse r;
    out.push_back(CallListDecisions(stub, &r));
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    writeback::v1::ListAgentsResponse r;
    out.push_back(stub.ListAgents(&ctx, {}, &r));
  }
  return out;
}

grpc::Status ConnectStatus(TestEnv& env, const writeback::v1::TlsConfig& tls,
                           const std::string& agent_id) {
  FakeAgent a(env.Channel(tls), agent_id, crypto::Ed25519PrivateKey::Generate());
  a.SendHello(a.MakeHello());
  auto m = a.Read();
  EXPECT_FALSE(m.ok()) << "the stream must be refused";
  return grpc::Status(static_cast<grpc::StatusCode>(m.status().code()),
                      std::string(m.status().message()));
}

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = TestEnv::Start();
    ASSERT_NE(env_, nullptr);
  }
  std::unique_ptr<TestEnv> env_;
};

grpc::Status CallPage(writeback::v1::AdminService::Stub& stub, const ListDecisionsRequest& req,
                      ListDecisionsResponse* resp) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  return stub.ListDecisions(&ctx, req, resp);
}

TEST_F(ApiTest, ListDecisionsPagesWithTokensBoundToTheirFilters) {
  FakeAgent agent(env_->Channel(env_->pki().agent("a1").tls), env_->AgentId("a1"),
                  env_->AgentResultKey("a1"));
  ASSERT_TRUE(agent.Connect("hosts").ok());
  auto op = env_->Operator();
  std::vector<std::string> submitted;
  for (int i = 0; i < 7; ++i) {
    writeback::v1::SubmitDecisionResponse r;
    ASSERT_TRUE(CallSubmit(*op, SshSpec({absl::StrCat("user", i)}), &r).ok());
    submitted.insert(submitted.begin(), r.decision_id());  // newest first
  }
  // Pages of 3: 3, 3, 1, each decision once, newest first.
  ListDecisionsRequest req;
  req.set_page_size(3);
  std::vector<std::string> seen;
  std::vector<int> sizes;
  std::string first_token;
  for (int page = 0; page < 10; ++page) {
    ListDecisionsResponse resp;
    grpc::Status s = CallPage(*op, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    sizes.push_back(resp.decisions_size());
    for (const auto& d : resp.decisions()) seen.push_back(d.statement().decision_id());
    if (resp.next_page_token().empty()) break;
    if (first_token.empty()) first_token = resp.next_page_token();
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(seen, submitted);
  EXPECT_THAT(sizes, ::testing::ElementsAre(3, 3, 1));

  // The same token with another filter, a damaged token, another list's.
  ListDecisionsResponse resp;
  req.set_page_token(first_token);
  req.set_state(writeback::v1::DECISION_STATE_VERIFIED);
  grpc::Status other = CallPage(*op, req, &resp);
  EXPECT_EQ(other.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(other.error_message(), HasSubstr("page_token"));
  req.set_state(writeback::v1::DECISION_STATE_UNSPECIFIED);
  req.set_since_unix_ms(1);
  EXPECT_EQ(CallPage(*op, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  req.set_since_unix_ms(0);
  req.set_page_token("not-a-token!");
  grpc::Status bad = CallPage(*op, req, &resp);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("page_token"));
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    writeback::v1::ListAgentsRequest areq;
    areq.set_page_token(first_token);
    writeback::v1::ListAgentsResponse aresp;
    grpc::Status s = op->ListAgents(&ctx, areq, &aresp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("page_token"));
  }

  // page_size above the maximum is clamped, not refused (unlike the older
  // limit field); the state filter reads the state index.
  req.clear_page_token();
  req.set_page_size(50000);
  ASSERT_TRUE(CallPage(*op, req, &resp).ok());
  EXPECT_EQ(resp.decisions_size(), 7);
  EXPECT_EQ(resp.next_page_token(), "");
  EXPECT_EQ(paging::PageSize(50000), paging::kMaxPageSize);
  EXPECT_EQ(paging::PageSize(0), paging::kDefaultPageSize);
  req.set_state(writeback::v1::DECISION_STATE_DISPATCHED);
  req.set_page_size(4);
  ListDecisionsResponse dispatched;
  ASSERT_TRUE(CallPage(*op, req, &dispatched).ok());
  EXPECT_EQ(dispatched.decisions_size(), 4);
  EXPECT_NE(dispatched.next_page_token(), "");
  req.set_state(writeback::v1::DECISION_STATE_VERIFIED);
  ListDecisionsResponse verified;
  ASSERT_TRUE(CallPage(*op, req, &verified).ok());
  EXPECT_EQ(verified.decisions_size(), 0);
  EXPECT_EQ(verified.next_page_token(), "");

  // ListAgents: one agent, one page.
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  writeback::v1::ListAgentsRequest areq;
  areq.set_page_size(1);
  writeback::v1::ListAgentsResponse aresp;
  ASSERT_TRUE(op->ListAgents(&ctx, areq, &aresp).ok());
  EXPECT_EQ(aresp.agents_size(), 1);
}

TEST_F(ApiTest, WithoutAClientCertificateOnlyHealthIsOpen) {
  auto stub = env_->Admin(env_->NoCert());
  for (const grpc::Status& s : CallAllAdmin(*stub)) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  }
  grpc::Status s = ConnectStatus(*env_, env_->NoCert(), env_->AgentId("a1"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();

  // The standard health service answers anyone.
  auto ch = env_->Channel(env_->NoCert());
  grpc::GenericStub generic(ch);
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  grpc::Slice empty("");  // an empty HealthCheckRequest asks about the whole server
  grpc::ByteBuffer req(&empty, 1);
  grpc::ByteBuffer resp;
  grpc::Status hs;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &req, &resp,
                    [&](grpc::Status st) {
                      std::lock_guard<std::mutex> l(mu);
                      hs = st;
                      done = true;
                      cv.notify_all();
                    });
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return done; });
  EXPECT_TRUE(hs.ok()) << hs.error_message();
}

TEST_F(ApiTest, AgentsCannotAdminister) {
  auto stub = env_->Admin(env_->pki().agent("a1").tls);
  for (const grpc::Status& s : CallAllAdmin(*stub)) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  }
}

TEST_F(ApiTest, OperatorsCannotOpenTheAgentStream) {
  const auto op = env_->pki().operator_identity("alice");
  grpc::Status s = ConnectStatus(*env_, op.tls, op.spiffe_id);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
}

TEST_F(ApiTest, AnotherTrustDomainIsRefused) {
  auto stub = env_->Admin(env_->foreign().tls);
  for (const grpc::Status& s : CallAllAdmin(*stub)) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("trust domain"));
  }
  grpc::Status s = ConnectStatus(*env_, env_->foreign().tls, env_->foreign().spiffe_id);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
}

TEST_F(ApiTest, InvalidSubmitsNameTheFieldAndStoreNothing) {
  FakeAgent agent(env_->Channel(env_->pki().agent("a1").tls), env_->AgentId("a1"),
                  env_->AgentResultKey("a1"));
  ASSERT_TRUE(agent.Connect("hosts").ok());
  auto op = env_->Operator();

  struct Case {
    std::string name;
    writeback::v1::DecisionSpec spec;
    std::string message;
  };
  std::vector<Case> cases;
  cases.push_back({"unknown instance", SshSpec({"alice"}, "x"),
                   "spec.connector_instance: unknown instance 'x'"});
  cases.push_back({"empty targets", SshSpec({}), "spec.targets"});
  auto bad_fp = SshSpec({"alice"});
  bad_fp.mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint("SHA256:short");
  cases.push_back({"malformed fingerprint", bad_fp, "spec.params.ssh_authorized_keys.fingerprint"});
  for (const auto& c : cases) {
    writeback::v1::SubmitDecisionResponse resp;
    grpc::Status s = CallSubmit(*op, c.spec, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_THAT(s.error_message(), HasSubstr(c.message)) << c.name;
  }
  ListDecisionsResponse list;
  ASSERT_TRUE(CallListDecisions(*op, &list).ok());
  EXPECT_EQ(list.decisions_size(), 0);
}

TEST_F(ApiTest, SubmitGetListAndAgents) {
  FakeAgent agent(env_->Channel(env_->pki().agent("a1").tls), env_->AgentId("a1"),
                  env_->AgentResultKey("a1"));
  ASSERT_TRUE(agent.Connect("hosts").ok());
  auto op = env_->Operator();

  writeback::v1::SubmitDecisionResponse first, second;
  ASSERT_TRUE(CallSubmit(*op, SshSpec({"alice", "bob"}), &first).ok());
  ASSERT_TRUE(CallSubmit(*op, SshSpec({"carol"}), &second).ok());
  EXPECT_GT(second.version(), first.version());

  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  writeback::v1::GetDecisionRequest get;
  get.set_decision_id(first.decision_id());
  writeback::v1::DecisionView view;
  ASSERT_TRUE(op->GetDecision(&ctx, get, &view).ok());
  EXPECT_EQ(view.state(), writeback::v1::DECISION_STATE_DISPATCHED);
  EXPECT_EQ(view.statement().requester(), env_->pki().operator_identity("alice").spiffe_id);
  ASSERT_EQ(view.tasks_size(), 2);
  EXPECT_EQ(view.tasks(0).target(), "alice");
  EXPECT_EQ(view.tasks(1).target(), "bob");
  EXPECT_EQ(view.tasks(0).agent_id(), env_->AgentId("a1"));

  ListDecisionsResponse list;
  ASSERT_TRUE(CallListDecisions(*op, &list).ok());
  ASSERT_EQ(list.decisions_size(), 2);
  EXPECT_EQ(list.decisions(0).statement().decision_id(), second.decision_id());  // newest first
  ASSERT_TRUE(CallListDecisions(*op, &list, 1001).error_code() ==
              grpc::StatusCode::INVALID_ARGUMENT);

  grpc::ClientContext ctx2;
  SetDeadline(&ctx2);
  get.set_decision_id("d-000000000000000000000000");
  grpc::Status nf = op->GetDecision(&ctx2, get, &view);
  EXPECT_EQ(nf.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(nf.error_message(), HasSubstr("d-000000000000000000000000"));

  grpc::ClientContext ctx3;
  SetDeadline(&ctx3);
  writeback::v1::ListAgentsResponse agents;
  ASSERT_TRUE(op->ListAgents(&ctx3, {}, &agents).ok());
  ASSERT_EQ(agents.agents_size(), 1);
  const auto& a = agents.agents(0);
  EXPECT_EQ(a.agent_id(), env_->AgentId("a1"));
  EXPECT_TRUE(a.connected());
  EXPECT_GT(a.connected_since_unix_ms(), 0);
  EXPECT_THAT(a.instances(), ::testing::ElementsAre("hosts"));
  EXPECT_EQ(a.labels().at("site"), "lab");
  EXPECT_EQ(a.version(), "test");
  EXPECT_EQ(a.result_key_id(), env_->AgentResultKey("a1").key_id());

  // Disconnected agents are still listed, as not connected.
  ASSERT_TRUE(agent.Close().ok());
  EXPECT_TRUE(wb::testing::WaitFor([&] {
    grpc::ClientContext c;
    SetDeadline(&c);
    writeback::v1::ListAgentsResponse r;
    return op->ListAgents(&c, {}, &r).ok() && r.agents_size() == 1 && !r.agents(0).connected();
  }));
}

}  // namespace
}  // namespace wb::controlplane
