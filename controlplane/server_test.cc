#include "controlplane/server.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/config/config.h"
#include "common/fs/fs.h"
#include "common/testing/wait.h"
#include "controlplane/api/test_env.h"

extern char** environ;

namespace wb::controlplane {
namespace {

using ::testing::HasSubstr;
using writeback::v1::ControlPlaneConfig;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki::PkiSpec spec;
    spec.agents = {"a1"};
    auto p = pki::Pki::Init(dir_.Sub("pki"), spec, absl::Now());
    ASSERT_TRUE(p.ok()) << p.status();
    pki_ = std::make_unique<pki::Pki>(*std::move(p));
    cfg_.set_listen_address("127.0.0.1:0");
    cfg_.set_trust_domain("writeback.test");
    *cfg_.mutable_tls() = pki_->controlplane().tls;
    cfg_.set_data_dir(dir_.Sub("data"));
    cfg_.set_dispatch_key_file(pki_->dispatch_key_file());
  }

  std::string ErrorOf(const std::function<void(ControlPlaneConfig&)>& mutate) {
    ControlPlaneConfig c = cfg_;
    mutate(c);
    auto r = NormalizeConfig(c);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    return std::string(r.status().message());
  }

  wb::testing::TempDir dir_;
  std::unique_ptr<pki::Pki> pki_;
  ControlPlaneConfig cfg_;
};

TEST_F(ConfigTest, DefaultsAreFilledIn) {
  auto c = NormalizeConfig(cfg_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->default_task_ttl_seconds(), 3600u);
  EXPECT_EQ(c->heartbeat_interval_seconds(), 10u);
  EXPECT_EQ(c->max_in_flight_per_agent(), 64u);
}

TEST_F(ConfigTest, EveryBadFieldIsNamed) {
  EXPECT_THAT(ErrorOf([](auto& c) { c.clear_listen_address(); }), HasSubstr("listen_address"));
  EXPECT_THAT(ErrorOf([](auto& c) { c.set_listen_address("127.0.0.1"); }),
              HasSubstr("listen_address"));
  EXPECT_THAT(ErrorOf([](auto& c) { c.set_listen_address("127.0.0.1:99999"); }),
              HasSubstr("listen_address"));
  EXPECT_THAT(ErrorOf([](auto& c) { c.set_trust_domain("Bad Domain"); }),
              HasSubstr("trust_domain"));
  EXPECT_THAT(ErrorOf([](auto& c) { c.mutable_tls()->clear_ca_file(); }), HasSubstr("tls.ca_file"));
  EXPECT_THAT(ErrorOf([](auto& c) { c.mutable_tls()->set_key_file("/nonexistent"); }),
              HasSubstr("tls.key_file"));
  EXPECT_THAT(ErrorOf([&](auto& c) { *c.mutable_tls() = pki_->agent("a1").tls; }),
              HasSubstr("tls.cert_file: certificate identity"));
  EXPECT_THAT(ErrorOf([](auto& c) { c.set_trust_domain("other.test"); }),
              HasSubstr("tls.cert_file"));
  EXPECT_THAT(ErrorOf([](auto& c) { c.clear_data_dir(); }), HasSubstr("data_dir"));
  EXPECT_THAT(ErrorOf([](auto& c) { c.clear_dispatch_key_file(); }),
              HasSubstr("dispatch_key_file"));
  EXPECT_THAT(ErrorOf([](auto& c) { c.set_default_task_ttl_seconds(10); }),
              HasSubstr("default_task_ttl_seconds"));
  EXPECT_THAT(ErrorOf([](auto& c) { c.set_heartbeat_interval_seconds(4000); }),
              HasSubstr("heartbeat_interval_seconds"));
  EXPECT_THAT(ErrorOf([](auto& c) { c.set_max_in_flight_per_agent(20000); }),
              HasSubstr("max_in_flight_per_agent"));
  EXPECT_THAT(ErrorOf([](auto& c) { c.set_delivery_timeout_seconds(2); }),
              HasSubstr("delivery_timeout_seconds"));
  EXPECT_THAT(ErrorOf([](auto& c) { c.set_log_level("loud"); }), HasSubstr("log_level"));
  EXPECT_THAT(ErrorOf([](auto& c) { c.set_log_format("xml"); }), HasSubstr("log_format"));
}

TEST_F(ConfigTest, CreateNamesABadDispatchKey) {
  cfg_.set_dispatch_key_file(pki_->controlplane().tls.cert_file());  // not a key
  auto cp = ControlPlane::Create(cfg_);
  ASSERT_FALSE(cp.ok());
  EXPECT_THAT(std::string(cp.status().message()), HasSubstr("dispatch_key_file"));
}

TEST_F(ConfigTest, StartTwiceAndBusyPortsFailClearly) {
  auto cp = ControlPlane::Create(cfg_);
  ASSERT_TRUE(cp.ok()) << cp.status();
  ASSERT_TRUE((*cp)->Start().ok());
  EXPECT_GT((*cp)->port(), 0);
  EXPECT_EQ((*cp)->Start().code(), absl::StatusCode::kFailedPrecondition);

  ControlPlaneConfig other = cfg_;
  other.set_data_dir(dir_.Sub("data2"));
  other.set_listen_address(absl::StrCat("127.0.0.1:", (*cp)->port()));
  auto cp2 = ControlPlane::Create(other);
  ASSERT_TRUE(cp2.ok()) << cp2.status();
  absl::Status s = (*cp2)->Start();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("listen_address"));
  (*cp)->Shutdown();
  (*cp)->Shutdown();  // idempotent
}

TEST_F(ConfigTest, TheStoreIsExclusive) {
  auto cp = ControlPlane::Create(cfg_);
  ASSERT_TRUE(cp.ok()) << cp.status();
  auto second = ControlPlane::Create(cfg_);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("data_dir"));
}

TEST_F(ConfigTest, ExampleConfigLoadsAndValidates) {
  ControlPlaneConfig c;
  absl::Status s =
      config::LoadYamlFile(absl::StrCat(WB_SOURCE_DIR, "/deploy/controlplane.example.yaml"), &c);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.listen_address(), "0.0.0.0:7443");
  EXPECT_EQ(c.trust_domain(), "writeback.example");
  EXPECT_FALSE(c.tls().cert_file().empty());
  EXPECT_EQ(c.default_task_ttl_seconds(), 3600u);
  EXPECT_EQ(c.max_in_flight_per_agent(), 64u);
  EXPECT_EQ(c.delivery_timeout_seconds(), 60u);
  // Apart from the paths of this machine, every value is valid.
  c.set_trust_domain("writeback.test");
  *c.mutable_tls() = cfg_.tls();
  c.set_dispatch_key_file(cfg_.dispatch_key_file());
  auto n = NormalizeConfig(c);
  EXPECT_TRUE(n.ok()) << n.status();
}

// ---- The binary ----

struct Child {
  pid_t pid = -1;
  int status = 0;
  bool exited = false;
  bool Poll() {
    if (exited) return true;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) exited = true;
    return exited;
  }
};

Child Spawn(const std::string& config, const std::string& stderr_path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::string bin = WB_CONTROLPLANE_BINARY;
  std::vector<char*> argv = {bin.data(), const_cast<char*>("--config"),
                             const_cast<char*>(config.c_str()), nullptr};
  Child c;
  EXPECT_EQ(posix_spawn(&c.pid, bin.c_str(), &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  return c;
}

TEST_F(ConfigTest, BinaryWritesThePortServesAndStopsCleanlyOnSigterm) {
  const std::string port_file = dir_.Sub("port");
  const std::string yaml = absl::StrCat(
      "listen_address: \"127.0.0.1:0\"\n", "trust_domain: \"writeback.test\"\n", "tls:\n",
      "  ca_file: \"", cfg_.tls().ca_file(), "\"\n", "  cert_file: \"", cfg_.tls().cert_file(),
      "\"\n", "  key_file: \"", cfg_.tls().key_file(), "\"\n", "data_dir: \"", dir_.Sub("bin-data"),
      "\"\n", "dispatch_key_file: \"", cfg_.dispatch_key_file(), "\"\n", "log_format: json\n",
      "port_file: \"", port_file, "\"\n");
  ASSERT_TRUE(fs::WriteFileAtomic(dir_.Sub("cp.yaml"), yaml).ok());
  Child child = Spawn(dir_.Sub("cp.yaml"), dir_.Sub("stderr"));
  int port = 0;
  ASSERT_TRUE(wb::testing::WaitFor([&] {
    auto p = fs::ReadFile(port_file);
    return p.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*p), &port) && port > 0;
  })) << fs::ReadFile(dir_.Sub("stderr")).value_or("");

  // An operator can talk to it.
  ASSERT_TRUE(pki_->AddOperator("alice", absl::Now()).ok());
  auto creds =
      tls::MakeChannelCredentials(pki_->operator_identity("alice").tls, pki_->controlplane_id());
  ASSERT_TRUE(creds.ok());
  auto stub = writeback::v1::AdminService::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", port), *creds, tls::DefaultChannelArgs()));
  grpc::ClientContext ctx;
  test::SetDeadline(&ctx);
  writeback::v1::ListAgentsResponse agents;
  grpc::Status s = stub->ListAgents(&ctx, {}, &agents);
  EXPECT_TRUE(s.ok()) << s.error_message();

  ASSERT_EQ(kill(child.pid, SIGTERM), 0);
  ASSERT_TRUE(wb::testing::WaitFor([&] { return child.Poll(); }));
  ASSERT_TRUE(WIFEXITED(child.status));
  EXPECT_EQ(WEXITSTATUS(child.status), 0);
  auto log = fs::ReadFile(dir_.Sub("stderr"));
  ASSERT_TRUE(log.ok());
  EXPECT_THAT(*log, HasSubstr("\"msg\":\"listening\""));
  EXPECT_THAT(*log, HasSubstr(absl::StrCat("127.0.0.1:", port)));
}

TEST_F(ConfigTest, BinaryRefusesABadConfigNamingTheField) {
  const std::string yaml = absl::StrCat(
      "listen_address: \"127.0.0.1:0\"\n", "trust_domain: \"writeback.test\"\n", "tls:\n",
      "  ca_file: \"", cfg_.tls().ca_file(), "\"\n", "  cert_file: \"", cfg_.tls().cert_file(),
      "\"\n", "  key_file: \"", cfg_.tls().key_file(), "\"\n", "data_dir: \"", dir_.Sub("bin-data"),
      "\"\n", "dispatch_key_file: \"", cfg_.dispatch_key_file(), "\"\n",
      "max_in_flight_per_agent: 0\n", "default_task_ttl_seconds: 5\n");
  ASSERT_TRUE(fs::WriteFileAtomic(dir_.Sub("bad.yaml"), yaml).ok());
  Child child = Spawn(dir_.Sub("bad.yaml"), dir_.Sub("stderr"));
  ASSERT_TRUE(wb::testing::WaitFor([&] { return child.Poll(); }));
  ASSERT_TRUE(WIFEXITED(child.status));
  EXPECT_EQ(WEXITSTATUS(child.status), 2);
  EXPECT_THAT(fs::ReadFile(dir_.Sub("stderr")).value_or(""), HasSubstr("default_task_ttl_seconds"));

  ASSERT_TRUE(fs::WriteFileAtomic(dir_.Sub("unknown.yaml"), "listen_adress: x\n").ok());
  child = Spawn(dir_.Sub("unknown.yaml"), dir_.Sub("stderr"));
  ASSERT_TRUE(wb::testing::WaitFor([&] { return child.Poll(); }));
  EXPECT_EQ(WEXITSTATUS(child.status), 2);
  EXPECT_THAT(fs::ReadFile(dir_.Sub("stderr")).value_or(""), HasSubstr("listen_adress"));
}

}  // namespace
}  // namespace wb::controlplane
