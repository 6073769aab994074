// The spine, end to end with real components: a real control plane and real
// agents over mTLS on 127.0.0.1, RocksDB in temporary directories, the real
// ssh_authorized_keys connector on sandboxed files, and the real wbctl binary.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "common/fs/fs.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "connectors/registry.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"
#include "tests/integration/fake_controlplane.h"
#include "tests/integration/ssh_test_keys.h"

extern char** environ;

namespace wb::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using writeback::v1::ConnectorInstanceConfig;

std::string ReadAll(const std::string& path) {
  auto r = fs::ReadFile(path);
  return r.ok() ? *r : "";
}

// A sandbox of home directories with authorized_keys files.
class Sandbox {
 public:
  std::string KeysPath(const std::string& user) const {
    return absl::StrCat(dir_.path(), "/home/", user, "/.ssh/authorized_keys");
  }
  void Write(const std::string& user, const std::string& content) {
    ASSERT_TRUE(fs::MakeDirs(absl::StrCat(dir_.path(), "/home/", user, "/.ssh"), 0700).ok());
    ASSERT_TRUE(fs::WriteFileAtomic(KeysPath(user), content, {.mode = 0600}).ok());
  }
  ConnectorInstanceConfig Instance(const std::string& name,
                                   std::vector<std::string> ops = {
                                       "remove_key", "remove_by_comment", "exclusive_set"}) const {
    ConnectorInstanceConfig c;
    c.set_name(name);
    c.set_type("ssh_authorized_keys");
    for (auto& o : ops) c.add_allowed_operations(o);
    c.mutable_ssh_authorized_keys()->set_path_template(dir_.path() +
                                                       "/home/{user}/.ssh/authorized_keys");
    return c;
  }

 private:
  testing::TempDir dir_;
};

// ---------------------------------------------------------------------------
// Real control plane + real agent.

class SpineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    leaked_ = MakeSshKey("ci-deploy-2019");
    kept_ = MakeSshKey("ops@bastion");
    original_ =
        absl::StrCat("# keys for deploy\n", kept_.line, "\n",
                     "no-port-forwarding,command=\"/usr/bin/backup --all\" ", leaked_.line, "\n");
    sandbox_.Write("deploy", original_);
    sandbox_.Write("backup", absl::StrCat(leaked_.line, "\n"));
    Harness::Options o;
    o.agents["a1"] = {sandbox_.Instance("web-ssh")};
    auto h = Harness::Start(o);
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = std::move(*h);
  }

  Sandbox sandbox_;
  SshTestKey leaked_, kept_;
  std::string original_;
  std::unique_ptr<Harness> h_;
};

TEST_F(SpineTest, DecisionIsAppliedVerifiedAndReportedWithEvidence) {
  auto sub = h_->Submit(SshRemoveKeySpec("web-ssh", {"deploy"}, leaked_.fingerprint));
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto view = h_->WaitTerminal(sub->decision_id());
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->state(), writeback::v1::DECISION_STATE_VERIFIED) << view->DebugString();
  ASSERT_EQ(view->tasks_size(), 1);
  const auto& t = view->tasks(0);
  EXPECT_EQ(t.outcome(), writeback::v1::OUTCOME_VERIFIED);
  EXPECT_EQ(t.state(), writeback::v1::TASK_STATE_VERIFIED);
  EXPECT_EQ(t.agent_id(), h_->agent_spiffe_id("a1"));
  EXPECT_GT(t.verification().after_size(), 0) << "verify must carry evidence";
  EXPECT_GT(t.plan().before_size(), 0) << "plan must capture the before-state";
  EXPECT_EQ(view->statement().requester(), "spiffe://writeback.test/operator/admin");

  const std::string now = ReadAll(sandbox_.KeysPath("deploy"));
  EXPECT_THAT(now, Not(HasSubstr(leaked_.line)));
  EXPECT_EQ(now, absl::StrCat("# keys for deploy\n", kept_.line, "\n"));
  // The other user's file was not a target.
  EXPECT_THAT(ReadAll(sandbox_.KeysPath("backup")), HasSubstr(leaked_.line));
}

TEST_F(SpineTest, ManyTargetsFanOutIntoOneTaskEach) {
  auto sub = h_->Submit(SshRemoveKeySpec("web-ssh", {"deploy", "backup"}, leaked_.fingerprint));
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto view = h_->WaitTerminal(sub->decision_id());
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(view->tasks_size(), 2);
  EXPECT_THAT(ReadAll(sandbox_.KeysPath("deploy")), Not(HasSubstr(leaked_.line)));
  EXPECT_THAT(ReadAll(sandbox_.KeysPath("backup")), Not(HasSubstr(leaked_.line)));
}

TEST_F(SpineTest, AlreadyCompliantTargetCountsAsConfirmed) {
  sandbox_.Write("clean", absl::StrCat(kept_.line, "\n"));
  auto sub = h_->Submit(SshRemoveKeySpec("web-ssh", {"clean"}, leaked_.fingerprint));
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto view = h_->WaitTerminal(sub->decision_id());
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(view->tasks(0).outcome(), writeback::v1::OUTCOME_ALREADY_COMPLIANT);
}

TEST_F(SpineTest, TaskQueuedWhileAgentIsOfflineIsDeliveredWhenItReturns) {
  h_->StopAgent("a1");
  auto sub = h_->Submit(SshRemoveKeySpec("web-ssh", {"deploy"}, leaked_.fingerprint));
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto view = h_->Get(sub->decision_id());
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->state(), writeback::v1::DECISION_STATE_DISPATCHED);
  EXPECT_EQ(ReadAll(sandbox_.KeysPath("deploy")), original_);  // nothing happened yet
  ASSERT_TRUE(h_->StartAgent("a1").ok());
  auto done = h_->WaitTerminal(sub->decision_id());
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_THAT(ReadAll(sandbox_.KeysPath("deploy")), Not(HasSubstr(leaked_.line)));
}

TEST_F(SpineTest, DecisionsSurviveAControlPlaneRestart) {
  auto sub = h_->Submit(SshRemoveKeySpec("web-ssh", {"deploy"}, leaked_.fingerprint));
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(h_->WaitTerminal(sub->decision_id()).ok());
  h_->StopControlPlane();
  ASSERT_TRUE(h_->StartControlPlane().ok());
  auto view = h_->Get(sub->decision_id());
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_TRUE(h_->WaitAgentConnected("a1").ok());
}

TEST_F(SpineTest, AgentListShowsTheConnectedAgentAndItsInstances) {
  auto agents = h_->ListAgents();
  ASSERT_TRUE(agents.ok());
  ASSERT_EQ(agents->agents_size(), 1);
  EXPECT_TRUE(agents->agents(0).connected());
  EXPECT_THAT(agents->agents(0).instances(), ::testing::Contains("web-ssh"));
}

// wbctl as a process: bad requests exit non-zero naming the field, and
// nothing is stored.
struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

RunResult RunWbctl(const std::vector<std::string>& args, const std::string& dir) {
  std::vector<std::string> argv = {WBCTL_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  const std::string out = dir + "/wbctl.out", err = dir + "/wbctl.err";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid;
  RunResult r;
  if (posix_spawn(&pid, cargv[0], &fa, nullptr, cargv.data(), environ) != 0) return r;
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadAll(out);
  r.err = ReadAll(err);
  return r;
}

TEST_F(SpineTest, WbctlRefusesBadRequestsNamingTheFieldAndStoresNothing) {
  const auto op = h_->pki().operator_identity("admin");
  const std::string cfg = h_->dir() + "/wbctl.yaml";
  ASSERT_TRUE(fs::WriteFileAtomic(
                  cfg, absl::StrCat("controlplane_address: 127.0.0.1:", h_->port(),
                                    "\ncontrolplane_id: ", h_->pki().controlplane_id(),
                                    "\ntls:\n  ca_file: ", op.tls.ca_file(), "\n  cert_file: ",
                                    op.tls.cert_file(), "\n  key_file: ", op.tls.key_file(), "\n"))
                  .ok());
  const std::vector<std::string> base = {"--config",    cfg,          "decision", "submit",
                                         "--operation", "remove_key", "--reason", "test"};
  struct Case {
    std::vector<std::string> extra;
    std::string field;
  } cases[] = {
      {{"--instance", "no-such-instance", "--target", "deploy", "--fingerprint",
        leaked_.fingerprint},
       "connector_instance"},
      {{"--instance", "web-ssh", "--fingerprint", leaked_.fingerprint}, "targets"},
      {{"--instance", "web-ssh", "--target", "deploy", "--fingerprint", "SHA256:short"},
       "fingerprint"},
      {{"--instance", "web-ssh", "--target", "../root", "--fingerprint", leaked_.fingerprint},
       "targets[0]"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = base;
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    RunResult r = RunWbctl(args, h_->dir());
    EXPECT_NE(r.exit_code, 0) << c.field << ": " << r.out;
    EXPECT_THAT(r.err, HasSubstr(c.field)) << "exit " << r.exit_code;
  }
  // The good request through the same binary works, so the refusals above
  // were about the fields, not the set-up.
  std::vector<std::string> good = base;
  for (const auto& a : {"--instance", "web-ssh", "--target", "deploy", "--fingerprint"}) {
    good.push_back(a);
  }
  good.push_back(leaked_.fingerprint);
  good.push_back("--wait");
  RunResult ok = RunWbctl(good, h_->dir());
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("VERIFIED"));

  writeback::v1::ListDecisionsResponse list;
  grpc::ClientContext ctx;
  ASSERT_TRUE(h_->admin().ListDecisions(&ctx, {}, &list).ok());
  EXPECT_EQ(list.decisions_size(), 1) << "only the good request may be stored";
}

// ---------------------------------------------------------------------------
// Real agent in front of a scripted control plane: exact bytes, replays and
// forgeries.

class AgentRefusalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    leaked_ = MakeSshKey("leaked");
    content_ = absl::StrCat(leaked_.line, "\n");
    sandbox_.Write("deploy", content_);
    pki::PkiSpec spec;
    spec.agents = {"a1", "a2"};
    auto p = pki::Pki::Init(dir_.Sub("pki"), spec, absl::Now());
    ASSERT_TRUE(p.ok()) << p.status();
    pki_ = std::make_unique<pki::Pki>(*p);
    auto dk = crypto::Ed25519PrivateKey::LoadFile(pki_->dispatch_key_file());
    ASSERT_TRUE(dk.ok());
    dispatch_ = std::make_unique<crypto::Ed25519PrivateKey>(*dk);
    auto rk = crypto::Ed25519PublicKey::LoadFile(dir_.Sub("pki/agents/a1/result.pub"));
    ASSERT_TRUE(rk.ok());
    result_key_ = std::make_unique<crypto::Ed25519PublicKey>(*rk);
    cp_ = std::make_unique<FakeControlPlane>(pki_->controlplane().tls);
    connectors::RegisterBuiltinConnectors(registry_);

    cfg_.set_agent_id(pki_->agent("a1").spiffe_id);
    cfg_.set_controlplane_address(absl::StrCat("127.0.0.1:", cp_->port()));
    cfg_.set_controlplane_id(pki_->controlplane_id());
    *cfg_.mutable_tls() = pki_->agent("a1").tls;
    cfg_.set_data_dir(dir_.Sub("agent"));
    cfg_.set_result_key_file(pki_->agent_result_key_file("a1"));
    cfg_.add_dispatch_public_key_files(pki_->dispatch_pub_file());
    cfg_.set_reconnect_initial_ms(50);
    cfg_.set_reconnect_max_ms(200);
    cfg_.set_log_format("text");
    *cfg_.add_connectors() = sandbox_.Instance("web-ssh", {"remove_key"});
    StartAgent();
  }

  void StartAgent() {
    auto a = agent::Agent::Create(cfg_, registry_);
    ASSERT_TRUE(a.ok()) << a.status();
    agent_ = std::move(*a);
    ASSERT_TRUE(agent_->Start().ok());
    ASSERT_TRUE(testing::WaitFor([&] { return cp_->connected() && agent_->connected(); }));
  }

  // A valid task for a1 / web-ssh / remove_key / deploy, before signing.
  writeback::v1::Task BaseTask(const std::string& task_id, uint64_t version = 7) {
    writeback::v1::DecisionStatement st;
    st.set_decision_id("d-" + task_id);
    st.set_version(version);
    st.set_requester("spiffe://writeback.test/operator/admin");
    st.set_connector_instance("web-ssh");
    st.set_operation("remove_key");
    st.mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(leaked_.fingerprint);
    st.add_targets()->set_object("deploy");
    st.set_reason("test");
    const int64_t now = absl::ToUnixMillis(absl::Now());
    st.set_created_at_unix_ms(now);
    st.set_expires_at_unix_ms(now + 600'000);
    writeback::v1::Task t;
    t.set_task_id(task_id);
    t.set_audience(pki_->agent("a1").spiffe_id);
    t.set_statement(st.SerializeAsString());
    t.set_target_index(0);
    t.set_connector_instance("web-ssh");
    t.set_operation("remove_key");
    t.mutable_target()->set_object("deploy");
    t.set_decision_version(version);
    t.set_issued_at_unix_ms(now);
    t.set_not_before_unix_ms(now);
    t.set_expires_at_unix_ms(now + 600'000);
    t.set_dispatch_key_id(dispatch_->key_id());
    return t;
  }

  writeback::v1::SignedEnvelope Sign(const writeback::v1::Task& t) {
    return envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, t.SerializeAsString(), *dispatch_);
  }

  // Pushes `env` and returns the agent's (verified) result for `task_id`.
  writeback::v1::Result Deliver(const writeback::v1::SignedEnvelope& env,
                                const std::string& task_id) {
    const size_t before = cp_->results().size();
    cp_->Push(env);
    writeback::v1::Result out;
    bool got = testing::WaitFor([&] {
      auto rs = cp_->results();
      for (size_t i = before; i < rs.size(); ++i) {
        writeback::v1::Result r;
        if (envelope::VerifyWithKey(rs[i], writeback::v1::PAYLOAD_TYPE_RESULT, *result_key_).ok() &&
            r.ParseFromString(rs[i].payload()) && r.task_id() == task_id) {
          out = r;
          return true;
        }
      }
      return false;
    });
    EXPECT_TRUE(got) << "no signed result for " << task_id;
    return out;
  }

  testing::TempDir dir_;
  Sandbox sandbox_;
  SshTestKey leaked_;
  std::string content_;
  std::unique_ptr<pki::Pki> pki_;
  std::unique_ptr<crypto::Ed25519PrivateKey> dispatch_;
  std::unique_ptr<crypto::Ed25519PublicKey> result_key_;
  std::unique_ptr<FakeControlPlane> cp_;
  connectors::Registry registry_;
  writeback::v1::AgentConfig cfg_;
  std::unique_ptr<agent::Agent> agent_;
};

TEST_F(AgentRefusalTest, SameTaskDeliveredTwiceAndAfterRestartActsOnce) {
  auto env = Sign(BaseTask("t-dup"));
  auto first = Deliver(env, "t-dup");
  ASSERT_EQ(first.outcome(), writeback::v1::OUTCOME_VERIFIED) << first.DebugString();
  EXPECT_THAT(ReadAll(sandbox_.KeysPath("deploy")), Not(HasSubstr(leaked_.line)));
  // Put the key back behind the agent's back: a second action would remove it.
  sandbox_.Write("deploy", content_);
  auto second = Deliver(env, "t-dup");
  EXPECT_EQ(second.outcome(), writeback::v1::OUTCOME_VERIFIED);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(second, first))
      << "the stored result";
  EXPECT_EQ(ReadAll(sandbox_.KeysPath("deploy")), content_) << "acted twice";
  // Restart the agent on the same journal: still the stored result, no action.
  agent_->Stop();
  agent_.reset();
  StartAgent();
  auto third = Deliver(env, "t-dup");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(third, first));
  EXPECT_EQ(ReadAll(sandbox_.KeysPath("deploy")), content_) << "acted again after restart";
}

TEST_F(AgentRefusalTest, ForgedMisdirectedExpiredAndDisallowedTasksAreRefusedWithReasons) {
  using writeback::v1::RejectReason;
  struct Case {
    std::string name;
    writeback::v1::SignedEnvelope env;
    RejectReason want;
  };
  std::vector<Case> cases;
  {
    auto env = Sign(BaseTask("t-altered"));
    writeback::v1::Task t;
    t.ParseFromString(env.payload());
    t.mutable_target()->set_object("root");  // altered after signing
    env.set_payload(t.SerializeAsString());
    cases.push_back({"altered bytes", env, writeback::v1::REJECT_REASON_BAD_SIGNATURE});
  }
  {
    auto rogue = crypto::Ed25519PrivateKey::Generate();
    auto t = BaseTask("t-rogue");
    t.set_dispatch_key_id(rogue.key_id());
    cases.push_back({"unknown key",
                     envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, t.SerializeAsString(), rogue),
                     writeback::v1::REJECT_REASON_UNKNOWN_KEY});
  }
  {
    auto t = BaseTask("t-other");
    t.set_audience(pki_->agent("a2").spiffe_id);
    cases.push_back({"another agent", Sign(t), writeback::v1::REJECT_REASON_WRONG_AUDIENCE});
  }
  {
    auto t = BaseTask("t-expired");
    const int64_t past = absl::ToUnixMillis(absl::Now() - absl::Hours(2));
    t.set_issued_at_unix_ms(past - 60'000);
    t.set_not_before_unix_ms(past - 60'000);
    t.set_expires_at_unix_ms(past);
    cases.push_back({"expired", Sign(t), writeback::v1::REJECT_REASON_EXPIRED});
  }
  {
    auto t = BaseTask("t-instance");
    writeback::v1::DecisionStatement st;
    st.ParseFromString(t.statement());
    st.set_connector_instance("db-ssh");
    t.set_statement(st.SerializeAsString());
    t.set_connector_instance("db-ssh");
    cases.push_back({"instance not allowed", Sign(t), writeback::v1::REJECT_REASON_NOT_ALLOWED});
  }
  {
    auto t = BaseTask("t-op");
    writeback::v1::DecisionStatement st;
    st.ParseFromString(t.statement());
    st.set_operation("exclusive_set");
    st.mutable_params()->mutable_ssh_authorized_keys()->clear_fingerprint();
    t.set_statement(st.SerializeAsString());
    t.set_operation("exclusive_set");
    cases.push_back({"operation not allowed", Sign(t), writeback::v1::REJECT_REASON_NOT_ALLOWED});
  }
  for (const auto& c : cases) {
    writeback::v1::Task t;
    t.ParseFromString(c.env.payload());
    auto r = Deliver(c.env, t.task_id());
    EXPECT_EQ(r.outcome(), writeback::v1::OUTCOME_REJECTED) << c.name;
    EXPECT_EQ(r.reject_reason(), c.want)
        << c.name << ": got " << writeback::v1::RejectReason_Name(r.reject_reason());
    EXPECT_FALSE(r.message().empty()) << c.name;
    EXPECT_EQ(ReadAll(sandbox_.KeysPath("deploy")), content_) << c.name << " changed the target";
  }
  // The same set-up accepts an honest task, so the refusals were about the tasks.
  auto ok = Deliver(Sign(BaseTask("t-honest")), "t-honest");
  EXPECT_EQ(ok.outcome(), writeback::v1::OUTCOME_VERIFIED);
}

}  // namespace
}  // namespace wb::e2e
