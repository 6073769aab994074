// Whole wbctl commands run in-process (RunWbctl) against a fake
// AdminService over real mTLS, and `pki init` into a temporary directory.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "cli/command.h"
#include "cli/test_views.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/pki/pki.h"
#include "common/testing/temp_dir.h"
#include "common/tls/tls.h"
#include "writeback/v1/admin_service.grpc.pb.h"

namespace wb::cli {
namespace {

namespace v1 = writeback::v1;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::kFp;

// Records what it was asked and answers from canned values.
class FakeAdmin final : public v1::AdminService::Service {
 public:
  grpc::Status SubmitDecision(grpc::ServerContext* ctx, const v1::SubmitDecisionRequest* req,
                              v1::SubmitDecisionResponse* resp) override {
    std::lock_guard<std::mutex> l(mu);
    peers.push_back(tls::PeerSpiffeId(*ctx));
    submits.push_back(*req);
    if (!submit_status.ok()) return submit_status;
    resp->set_decision_id("d-0001");
    resp->set_version(42);
    resp->set_state(v1::DECISION_STATE_DISPATCHED);
    return grpc::Status::OK;
  }
  grpc::Status GetDecision(grpc::ServerContext* ctx, const v1::GetDecisionRequest* req,
                           v1::DecisionView* resp) override {
    std::lock_guard<std::mutex> l(mu);
    peers.push_back(tls::PeerSpiffeId(*ctx));
    get_ids.push_back(req->decision_id());
    if (req->decision_id() != "d-0001") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("decision ", req->decision_id(), " not found"));
    }
    *resp = testing::SampleDecisionView();
    if (!states.empty()) {
      const size_t i = std::min(get_ids.size() - 1, states.size() - 1);
      resp->set_state(states[i]);
    }
    return grpc::Status::OK;
  }
  grpc::Status ListDecisions(grpc::ServerContext* ctx, const v1::ListDecisionsRequest* req,
                             v1::ListDecisionsResponse* resp) override {
    std::lock_guard<std::mutex> l(mu);
    peers.push_back(tls::PeerSpiffeId(*ctx));
    lists.push_back(*req);
    if (paged_total == 0) {
      *resp->add_decisions() = testing::SampleDecisionView();
      return grpc::Status::OK;
    }
    // `paged_total` decisions d-NNNN, newest (highest) first, served the way
    // the control plane pages: page_size clamped to 1000, "after-I" tokens.
    const int size = req->page_size() == 0 ? 100 : std::min<int>(req->page_size(), 1000);
    int from = 0;
    if (!req->page_token().empty()) {
      if (!absl::SimpleAtoi(absl::StripPrefix(req->page_token(), "after-"), &from)) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_token: not ours");
      }
      ++from;
    }
    for (int i = from; i < paged_total && resp->decisions_size() < size; ++i) {
      auto* v = resp->add_decisions();
      *v = testing::SampleDecisionView();
      v->mutable_statement()->set_decision_id(absl::StrFormat("d-%04d", paged_total - i));
      if (i + 1 < paged_total && resp->decisions_size() == size) {
        resp->set_next_page_token(absl::StrCat("after-", i));
      }
    }
    return grpc::Status::OK;
  }
  grpc::Status ListAgents(grpc::ServerContext* ctx, const v1::ListAgentsRequest*,
                          v1::ListAgentsResponse* resp) override {
    std::lock_guard<std::mutex> l(mu);
    peers.push_back(tls::PeerSpiffeId(*ctx));
    if (!agents_status.ok()) return agents_status;
    *resp = testing::SampleAgents();
    return grpc::Status::OK;
  }

  std::mutex mu;
  std::vector<std::string> peers;
  std::vector<v1::SubmitDecisionRequest> submits;
  std::vector<std::string> get_ids;
  std::vector<v1::ListDecisionsRequest> lists;
  int paged_total = 0;                    // > 0: ListDecisions pages this many decisions
  std::vector<v1::DecisionState> states;  // GetDecision's state on call i (last repeats)
  grpc::Status submit_status;
  grpc::Status agents_status;
};

// Serves `fake` over mTLS (client certificates required) on 127.0.0.1:0.
void StartFake(const v1::TlsConfig& tls, FakeAdmin* fake, std::unique_ptr<grpc::Server>* server,
               std::string* address) {
  auto creds = tls::MakeServerCredentials(tls, true);
  ASSERT_TRUE(creds.ok()) << creds.status();
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort("127.0.0.1:0", *creds, &port);
  b.RegisterService(fake);
  *server = b.BuildAndStart();
  ASSERT_NE(*server, nullptr);
  ASSERT_GT(port, 0);
  *address = absl::StrCat("127.0.0.1:", port);
}

class WbctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki::PkiSpec spec;
    spec.operators = {"alice"};
    auto p = pki::Pki::Init(tmp_.Sub("pki"), spec, absl::Now());
    ASSERT_TRUE(p.ok()) << p.status();
    pki_ = std::make_unique<pki::Pki>(*std::move(p));
    StartFake(pki_->controlplane().tls, &fake_, &server_, &address_);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  std::vector<std::string> Conn() const {
    const auto op = pki_->operator_identity("alice");
    return {"--address",
            address_,
            "--controlplane-id",
            pki_->controlplane_id(),
            "--ca",
            op.tls.ca_file(),
            "--cert",
            op.tls.cert_file(),
            "--key",
            op.tls.key_file()};
  }

  // Runs wbctl; the connection flags follow the command (they fall through).
  int Run(std::vector<std::string> args, bool with_conn = true) {
    if (with_conn) {
      for (auto& a : Conn()) args.push_back(a);
    }
    out_.str("");
    err_.str("");
    RunOptions r;
    r.out = &out_;
    r.err = &err_;
    r.clock = &clock_;
    r.sleep = [this](absl::Duration d) { clock_.Advance(d); };
    r.env_config = env_config_;
    return RunWbctl(args, r);
  }

  wb::testing::TempDir tmp_;
  std::unique_ptr<pki::Pki> pki_;
  FakeAdmin fake_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  FakeClock clock_;
  std::ostringstream out_, err_;
  std::string env_config_;
};

TEST_F(WbctlTest, AgentListOverMtlsAsTheOperator) {
  ASSERT_EQ(Run({"agent", "list"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("spiffe://writeback.test/agent/a1"));
  EXPECT_THAT(out_.str(), HasSubstr("5m ago"));
  EXPECT_THAT(err_.str(), IsEmpty());
  ASSERT_EQ(fake_.peers.size(), 1u);
  EXPECT_EQ(fake_.peers[0], "spiffe://writeback.test/operator/alice");

  ASSERT_EQ(Run({"agent", "list", "-o", "json"}), 0) << err_.str();
  v1::ListAgentsResponse back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out_.str(), &back).ok()) << out_.str();
  EXPECT_EQ(back.agents_size(), 2);
}

TEST_F(WbctlTest, GlobalFlagsMayPrecedeTheCommand) {
  std::vector<std::string> args = Conn();
  args.insert(args.end(), {"-o", "yaml", "agent", "list"});
  ASSERT_EQ(Run(args, false), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("agents:"));
}

TEST_F(WbctlTest, DecisionGetAndList) {
  ASSERT_EQ(Run({"decision", "get", "d-0001"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("FAILED (1 of 2 tasks failed)"));
  EXPECT_THAT(out_.str(), HasSubstr("NOT_ALLOWED"));

  ASSERT_EQ(Run({"decision", "get", "d-0001", "-o", "json"}), 0);
  v1::DecisionView view;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out_.str(), &view).ok());
  EXPECT_EQ(view.statement().decision_id(), "d-0001");

  EXPECT_EQ(Run({"decision", "get", "d-nope"}), 4);
  EXPECT_THAT(err_.str(), HasSubstr("wbctl: decision d-nope not found"));

  ASSERT_EQ(Run({"decision", "list", "--state", "verified", "--limit", "5"}), 0) << err_.str();
  ASSERT_EQ(fake_.lists.size(), 1u);
  EXPECT_EQ(fake_.lists[0].state(), v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(fake_.lists[0].limit(), 5u);
  EXPECT_THAT(out_.str(), HasSubstr("d-0001"));

  EXPECT_EQ(Run({"decision", "list", "--state", "done"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--state"));
  EXPECT_EQ(fake_.lists.size(), 1u);
}

TEST_F(WbctlTest, DecisionListFetchesEveryPageOrOnePageWithItsNextToken) {
  fake_.paged_total = 1200;
  ASSERT_EQ(Run({"decision", "list", "-o", "json"}), 0) << err_.str();
  auto json = nlohmann::json::parse(out_.str());
  ASSERT_EQ(json["decisions"].size(), 1200u);
  for (size_t i = 0; i < 1200; ++i) {
    ASSERT_EQ(json["decisions"][i]["statement"]["decision_id"],
              absl::StrFormat("d-%04d", 1200 - i));
  }
  ASSERT_EQ(fake_.lists.size(), 2u);  // 1000 + 200
  EXPECT_EQ(fake_.lists[0].page_size(), 1000u);
  EXPECT_EQ(fake_.lists[1].page_token(), "after-999");
  EXPECT_EQ(err_.str(), "");

  // The table lists them all too.
  ASSERT_EQ(Run({"decision", "list"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("d-1200"));
  EXPECT_THAT(out_.str(), HasSubstr("d-0001"));

  // One page, and where the next one starts.
  ASSERT_EQ(Run({"decision", "list", "--limit", "500", "-o", "json"}), 0) << err_.str();
  EXPECT_EQ(nlohmann::json::parse(out_.str())["decisions"].size(), 500u);
  EXPECT_EQ(err_.str(), "next page: --page-token after-499\n");
  ASSERT_EQ(Run({"decision", "list", "--limit", "500", "--page-token", "after-499", "-o", "json"}),
            0)
      << err_.str();
  json = nlohmann::json::parse(out_.str());
  ASSERT_EQ(json["decisions"].size(), 500u);
  EXPECT_EQ(json["decisions"][0]["statement"]["decision_id"], "d-0700");
  // The last page names no next one.
  ASSERT_EQ(Run({"decision", "list", "--page-token", "after-999", "-o", "json"}), 0);
  EXPECT_EQ(nlohmann::json::parse(out_.str())["decisions"].size(), 100u);  // server default
  EXPECT_EQ(err_.str(), "next page: --page-token after-1099\n");
  ASSERT_EQ(Run({"decision", "list", "--page-token", "after-1099", "--limit", "1000"}), 0);
  EXPECT_EQ(err_.str(), "");
}

TEST_F(WbctlTest, SubmitFromFlags) {
  ASSERT_EQ(Run({"decision",      "submit",   "--instance", "hosts-a",      "--operation",
                 "remove_key",    "--target", "deploy",     "--target",     "backup",
                 "--fingerprint", kFp,        "--reason",   "leaked",       "--reference",
                 "SEC-1",         "--ttl",    "30m",        "--request-id", "r-1"}),
            0)
      << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("d-0001"));
  EXPECT_THAT(out_.str(), HasSubstr("DISPATCHED"));
  ASSERT_EQ(fake_.submits.size(), 1u);
  const auto& req = fake_.submits[0];
  EXPECT_EQ(req.request_id(), "r-1");
  EXPECT_EQ(req.spec().connector_instance(), "hosts-a");
  ASSERT_EQ(req.spec().targets_size(), 2);
  EXPECT_EQ(req.spec().targets(1).object(), "backup");
  EXPECT_EQ(req.spec().params().ssh_authorized_keys().fingerprint(), kFp);
  EXPECT_EQ(req.spec().ttl_seconds(), 1800u);
}

TEST_F(WbctlTest, SubmitFromFileWithOverride) {
  const std::string file = tmp_.Sub("d.yaml");
  ASSERT_TRUE(fs::WriteFileAtomic(file, absl::StrCat("connector_instance: hosts-a\n"
                                                     "operation: remove_key\n"
                                                     "params: {ssh_authorized_keys: {fingerprint: ",
                                                     kFp,
                                                     "}}\n"
                                                     "targets: [{object: deploy}]\n"
                                                     "reason: from file\n"))
                  .ok());
  ASSERT_EQ(Run({"decision", "submit", "-f", file, "--reason", "from flag", "-o", "json"}), 0)
      << err_.str();
  ASSERT_EQ(fake_.submits.size(), 1u);
  EXPECT_EQ(fake_.submits[0].spec().reason(), "from flag");
  EXPECT_EQ(fake_.submits[0].spec().targets(0).object(), "deploy");
  v1::SubmitDecisionResponse resp;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out_.str(), &resp).ok());
  EXPECT_EQ(resp.version(), 42u);

  ASSERT_TRUE(fs::WriteFileAtomic(file, "operation: remove_key\nbogus_key: 1\n").ok());
  EXPECT_EQ(Run({"decision", "submit", "-f", file}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("bogus_key"));
  EXPECT_EQ(fake_.submits.size(), 1u);
}

TEST_F(WbctlTest, SubmitInvalidLocallyNeverCallsTheServer) {
  EXPECT_EQ(Run({"decision", "submit", "--instance", "hosts-a", "--operation", "remove_key",
                 "--target", "deploy", "--fingerprint", "SHA256:nope", "--reason", "x"}),
            2);
  EXPECT_THAT(err_.str(), HasSubstr("wbctl: spec.params.ssh_authorized_keys.fingerprint"));
  EXPECT_TRUE(fake_.submits.empty());
}

TEST_F(WbctlTest, ServerInvalidArgumentIsPrintedWithExitCode2) {
  fake_.submit_status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                     "spec.connector_instance: no agent serves 'hosts-z'");
  EXPECT_EQ(Run({"decision", "submit", "--instance", "hosts-z", "--operation", "remove_key",
                 "--target", "deploy", "--fingerprint", kFp, "--reason", "x"}),
            2);
  EXPECT_THAT(err_.str(), HasSubstr("wbctl: spec.connector_instance: no agent serves 'hosts-z'"));
}

TEST_F(WbctlTest, PermissionDeniedIsExitCode3) {
  fake_.agents_status = grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "operators only");
  EXPECT_EQ(Run({"agent", "list"}), 3);
  EXPECT_THAT(err_.str(), HasSubstr("operators only"));
}

TEST_F(WbctlTest, SubmitWaitEndsVerified) {
  fake_.states = {v1::DECISION_STATE_DISPATCHED, v1::DECISION_STATE_DISPATCHED,
                  v1::DECISION_STATE_VERIFIED};
  EXPECT_EQ(Run({"decision", "submit", "--instance", "hosts-a", "--operation", "remove_key",
                 "--target", "deploy", "--fingerprint", kFp, "--reason", "x", "--wait"}),
            0)
      << err_.str();
  EXPECT_EQ(fake_.get_ids.size(), 3u);
  EXPECT_THAT(out_.str(), HasSubstr("VERIFIED"));
  EXPECT_THAT(out_.str(), HasSubstr("read_authorized_keys"));  // printed like `decision get`
}

TEST_F(WbctlTest, SubmitWaitEndsFailedWithExitCode1) {
  fake_.states = {v1::DECISION_STATE_DISPATCHED, v1::DECISION_STATE_FAILED};
  EXPECT_EQ(Run({"decision", "submit", "--instance", "hosts-a", "--operation", "remove_key",
                 "--target", "deploy", "--fingerprint", kFp, "--reason", "x", "--wait"}),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("ended FAILED"));
}

TEST_F(WbctlTest, SubmitWaitTimesOut) {
  fake_.states = {v1::DECISION_STATE_PENDING_APPROVAL};
  const absl::Time start = clock_.Now();
  EXPECT_EQ(Run({"decision", "submit", "--instance", "hosts-a", "--operation", "remove_key",
                 "--target", "deploy", "--fingerprint", kFp, "--reason", "x", "--wait", "--timeout",
                 "5s", "-o", "json"}),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("still PENDING_APPROVAL"));
  EXPECT_EQ(clock_.Now() - start, absl::Seconds(5));
  v1::DecisionView last;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(out_.str(), &last).ok());
}

TEST_F(WbctlTest, UnreachableServerIsExitCode3) {
  // A bound socket that does not listen: connections to it are refused, and
  // nobody else can take the port while we hold it.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  const int port = ntohs(sa.sin_port);
  std::vector<std::string> args = {"agent", "list"};
  for (auto& a : Conn()) args.push_back(a);
  args.insert(args.end(), {"--address", absl::StrCat("127.0.0.1:", port), "--timeout", "5"});
  EXPECT_EQ(Run(args, false), 3);
  ::close(fd);
  EXPECT_THAT(err_.str(), HasSubstr("wbctl: control plane at 127.0.0.1:"));
  EXPECT_TRUE(fake_.peers.empty());
}

TEST_F(WbctlTest, WrongServerIdentityIsRefused) {
  std::vector<std::string> args = Conn();
  // Given last, so it wins over Conn()'s.
  args.insert(args.end(), {"agent", "list", "--controlplane-id",
                           "spiffe://writeback.test/controlplane/other", "--timeout", "5"});
  EXPECT_EQ(Run(args, false), 3);
  EXPECT_THAT(err_.str(), HasSubstr("wbctl: control plane at 127.0.0.1:"));
  EXPECT_TRUE(fake_.peers.empty());
  // The right identity works with the same flags.
  args.back() = "5s";
  args[args.size() - 3] = pki_->controlplane_id();
  EXPECT_EQ(Run(args, false), 0) << err_.str();
}

TEST_F(WbctlTest, ConfigFileWithRelativePathsEnvAndOverrides) {
  const std::string cfg = pki_->dir() + "/wbctl.yaml";
  ASSERT_TRUE(fs::WriteFileAtomic(cfg, absl::StrCat("controlplane_address: 127.0.0.1:1\n"
                                                    "controlplane_id: ",
                                                    pki_->controlplane_id(),
                                                    "\n"
                                                    "tls:\n"
                                                    "  ca_file: ca.crt\n"
                                                    "  cert_file: operators/alice/tls.crt\n"
                                                    "  key_file: operators/alice/tls.key\n"))
                  .ok());
  // The flag overrides the file's (wrong) address.
  EXPECT_EQ(Run({"agent", "list", "--config", cfg, "--address", address_}, false), 0) << err_.str();
  env_config_ = cfg;
  EXPECT_EQ(Run({"agent", "list", "--address", address_}, false), 0) << err_.str();

  ASSERT_TRUE(fs::WriteFileAtomic(cfg, "controlplane_adress: x\n").ok());
  EXPECT_EQ(Run({"agent", "list"}, false), 2);
  EXPECT_THAT(err_.str(), HasSubstr("controlplane_adress"));

  env_config_.clear();
  EXPECT_EQ(Run({"agent", "list"}, false), 2);
  EXPECT_THAT(err_.str(), HasSubstr("controlplane_address: required"));
}

TEST_F(WbctlTest, UsageErrors) {
  EXPECT_EQ(Run({}, false), 2);
  EXPECT_EQ(Run({"decision"}, false), 2);
  EXPECT_EQ(Run({"decision", "get"}), 2);
  EXPECT_EQ(Run({"decision", "get", "d-0001", "-o", "xml"}), 2);
  EXPECT_EQ(Run({"decision", "frobnicate"}), 2);
  EXPECT_EQ(Run({"agent", "list", "--timeout", "soon"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--timeout"));
  EXPECT_EQ(Run({"--help"}, false), 0);
  EXPECT_THAT(out_.str(), HasSubstr("decision"));
  EXPECT_EQ(Run({"decision", "submit", "--help"}, false), 0);
  EXPECT_THAT(out_.str(), HasSubstr("--keep-fingerprint"));
  EXPECT_TRUE(fake_.peers.empty());
}

// ---- pki init ----

class PkiInitTest : public ::testing::Test {
 protected:
  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    RunOptions r;
    r.out = &out_;
    r.err = &err_;
    return RunWbctl(args, r);
  }
  wb::testing::TempDir tmp_;
  std::ostringstream out_, err_;
};

std::string Read(const std::string& path) {
  auto s = fs::ReadFile(path);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : "";
}

void ExpectIdentity(const std::string& cert_file, const std::string& ca_file,
                    const std::string& spiffe_id) {
  auto info = crypto::ParseCert(Read(cert_file));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_THAT(info->uris, ::testing::ElementsAre(spiffe_id)) << cert_file;
  EXPECT_TRUE(crypto::VerifyCertChain(Read(cert_file), Read(ca_file), absl::Now()).ok())
      << cert_file;
}

TEST_F(PkiInitTest, CreatesKeysAndCertificates) {
  const std::string dir = tmp_.Sub("pki");
  // A repeatable flag before the positional does not swallow it.
  ASSERT_EQ(Run({"pki", "init", "--agent", "a1", dir, "--agent", "a2", "--operator", "alice",
                 "--trust-domain", "corp.test"}),
            0)
      << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("spiffe://corp.test/agent/a2"));
  EXPECT_THAT(out_.str(), HasSubstr(dir + "/operators/alice/tls.key"));

  int keys = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.path().extension() != ".key") continue;
    struct stat st;
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << e.path();
    ++keys;
  }
  // ca, cp tls, dispatch, 2 agents x (tls + result), operator
  EXPECT_EQ(keys, 8);

  const std::string ca = dir + "/ca.crt";
  ExpectIdentity(dir + "/controlplane/cp.crt", ca, "spiffe://corp.test/controlplane/cp");
  ExpectIdentity(dir + "/agents/a1/tls.crt", ca, "spiffe://corp.test/agent/a1");
  ExpectIdentity(dir + "/agents/a2/tls.crt", ca, "spiffe://corp.test/agent/a2");
  ExpectIdentity(dir + "/operators/alice/tls.crt", ca, "spiffe://corp.test/operator/alice");
}

TEST_F(PkiInitTest, RunningAgainKeepsExistingKeysAndAddsWhatIsMissing) {
  const std::string dir = tmp_.Sub("pki");
  ASSERT_EQ(Run({"pki", "init", dir, "--agent", "a1"}), 0) << err_.str();
  const std::string ca_key = Read(dir + "/ca.key");
  const std::string a1_key = Read(dir + "/agents/a1/tls.key");
  const std::string a1_result = Read(dir + "/agents/a1/result.key");
  const std::string dispatch = Read(dir + "/controlplane/dispatch.key");

  ASSERT_EQ(Run({"pki", "init", dir, "--agent", "a1", "--agent", "a2", "-o", "json"}), 0)
      << err_.str();
  EXPECT_EQ(Read(dir + "/ca.key"), ca_key);
  EXPECT_EQ(Read(dir + "/agents/a1/tls.key"), a1_key);
  EXPECT_EQ(Read(dir + "/agents/a1/result.key"), a1_result);
  EXPECT_EQ(Read(dir + "/controlplane/dispatch.key"), dispatch);
  ExpectIdentity(dir + "/agents/a2/tls.crt", dir + "/ca.crt", "spiffe://writeback.test/agent/a2");

  auto doc = nlohmann::json::parse(out_.str(), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << out_.str();
  EXPECT_FALSE(doc["ca"]["created"].get<bool>());
  EXPECT_FALSE(doc["dispatch_key"]["created"].get<bool>());
  EXPECT_FALSE(doc["agents"][0]["created"].get<bool>());
  EXPECT_TRUE(doc["agents"][1]["created"].get<bool>());
  EXPECT_EQ(doc["agents"][1]["spiffe_id"], "spiffe://writeback.test/agent/a2");
}

TEST_F(PkiInitTest, RefusesBadNamesAndAnotherTrustDomain) {
  const std::string dir = tmp_.Sub("pki");
  EXPECT_EQ(Run({"pki", "init", dir, "--agent", "Bad Name"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("agent id"));
  ASSERT_EQ(Run({"pki", "init", dir}), 0) << err_.str();
  EXPECT_EQ(Run({"pki", "init", dir, "--trust-domain", "other.test"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("writeback.test"));
  EXPECT_EQ(Run({"pki", "init"}), 2);
}

// ---- the production profile of certs/README.md ----

// Runs argv (no shell) and returns its exit status; output goes to the
// test's stderr.
int Spawn(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return -1;
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The README's openssl commands and certs/make-prod-csr.sh make identities
// that wbctl and a gRPC server accept.
TEST(ProductionProfileTest, OpensslIssuedIdentitiesWork) {
  const std::string openssl = "/usr/bin/openssl";
  if (::access(openssl.c_str(), X_OK) != 0) GTEST_SKIP() << "no openssl binary";
  const std::string script = std::string(WB_SOURCE_DIR) + "/certs/make-prod-csr.sh";
  wb::testing::TempDir tmp;
  const std::string d = tmp.path();
  const std::string ca_key = d + "/ca.key", ca_crt = d + "/ca.crt";
  ASSERT_EQ(Spawn({openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                   "-out", ca_key}),
            0);
  ASSERT_EQ(Spawn({openssl, "req", "-x509", "-new", "-sha256", "-key", ca_key, "-days", "1825",
                   "-subj", "/CN=Writeback CA example.org", "-addext",
                   "basicConstraints=critical,CA:TRUE,pathlen:0", "-addext",
                   "keyUsage=critical,keyCertSign,cRLSign", "-addext", "subjectKeyIdentifier=hash",
                   "-out", ca_crt}),
            0);
  auto issue = [&](const std::string& id, const std::string& prefix) {
    ASSERT_EQ(Spawn({"/bin/sh", script, id, prefix}), 0) << id;
    struct stat st;
    ASSERT_EQ(::stat((prefix + ".key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // The script refuses to overwrite a key.
    EXPECT_EQ(Spawn({"/bin/sh", script, id, prefix}), 2);
    const std::string ext = prefix + ".ext";
    ASSERT_TRUE(fs::WriteFileAtomic(ext, absl::StrCat("basicConstraints = critical,CA:FALSE\n"
                                                      "keyUsage = critical,digitalSignature,"
                                                      "keyAgreement\n"
                                                      "extendedKeyUsage = serverAuth,clientAuth\n"
                                                      "subjectKeyIdentifier = hash\n"
                                                      "authorityKeyIdentifier = keyid\n"
                                                      "subjectAltName = URI:",
                                                      id, "\n"))
                    .ok());
    ASSERT_EQ(
        Spawn({openssl, "x509", "-req", "-sha256", "-in", prefix + ".csr", "-CA", ca_crt, "-CAkey",
               ca_key, "-CAcreateserial", "-days", "90", "-extfile", ext, "-out", prefix + ".crt"}),
        0);
    ExpectIdentity(prefix + ".crt", ca_crt, id);
  };
  issue("spiffe://example.org/controlplane/cp", d + "/cp");
  issue("spiffe://example.org/operator/alice", d + "/alice");
  EXPECT_NE(Spawn({"/bin/sh", script, "spiffe://example.org/admin/root", d + "/x"}), 0);

  v1::TlsConfig server_tls;
  server_tls.set_ca_file(ca_crt);
  server_tls.set_cert_file(d + "/cp.crt");
  server_tls.set_key_file(d + "/cp.key");
  FakeAdmin fake;
  std::unique_ptr<grpc::Server> server;
  std::string address;
  StartFake(server_tls, &fake, &server, &address);
  std::ostringstream out, err;
  RunOptions r;
  r.out = &out;
  r.err = &err;
  EXPECT_EQ(RunWbctl({"agent", "list", "--address", address, "--controlplane-id",
                      "spiffe://example.org/controlplane/cp", "--ca", ca_crt, "--cert",
                      d + "/alice.crt", "--key", d + "/alice.key"},
                     r),
            0)
      << err.str();
  ASSERT_EQ(fake.peers.size(), 1u);
  EXPECT_EQ(fake.peers[0], "spiffe://example.org/operator/alice");
  server->Shutdown();
}

}  // namespace
}  // namespace wb::cli
