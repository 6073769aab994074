// The SSH login probe against a real sshd (connectors/testing/host/sshd.h),
// and posix_account's Verify using it: after a change, the same key that
// logged in before is refused, and the result says so.
#include "connectors/probes/ssh_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/fs/fs.h"
#include "connectors/posix_account/account_db.h"
#include "connectors/registry.h"
#include "connectors/testing/host/sandbox.h"
#include "connectors/testing/host/sshd.h"
#include "connectors/testing/run_program.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::connectors::probes {
namespace {

using ::testing::HasSubstr;
using testing::RunProgramOk;
using testing::host::HostRoot;
using testing::host::TestSshd;

struct Key {
  std::string private_file;
  std::string public_line;
};

Key MakeKey(const std::string& dir, const std::string& name) {
  EXPECT_TRUE(fs::MakeDirs(dir, 0700).ok());
  const std::string path = dir + "/" + name;
  auto r = RunProgramOk(
      {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name + "@probe-test", "-f", path});
  EXPECT_TRUE(r.ok()) << r.status();
  auto pub = fs::ReadFile(path + ".pub");
  EXPECT_TRUE(pub.ok());
  return {path, pub.ok() ? std::string(absl::StripTrailingAsciiWhitespace(*pub)) : ""};
}

int ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class SshProbeTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (sshd, mount namespaces)";
    auto r = HostRoot::Create({.full_etc = true});
    ASSERT_TRUE(r.ok()) << r.status();
    root_ = std::move(*r);
    ASSERT_TRUE(root_->AddUser({.name = "svc-app"}).ok());
    key_ = MakeKey(root_->dir() + "/keys", "svc-app");
    other_ = MakeKey(root_->dir() + "/other-keys", "svc-app");
    ASSERT_TRUE(root_->WriteAuthorizedKeys("svc-app", key_.public_line + "\n").ok());
    auto s = TestSshd::Start(*root_, {.use_pam = GetParam()});
    ASSERT_TRUE(s.ok()) << s.status();
    sshd_ = std::move(*s);
    endpoint_.port = static_cast<uint16_t>(sshd_->port());
    endpoint_.host_public_key = sshd_->host_public_key();
    endpoint_.scratch_parent = root_->dir();
  }

  SshProbeOutcome Login(const std::string& identity) {
    auto o = ProbeLogin(endpoint_, "svc-app", identity, absl::Seconds(30));
    EXPECT_TRUE(o.ok()) << o.status();
    return o.ok() ? *o : SshProbeOutcome{};
  }

  std::unique_ptr<HostRoot> root_;
  std::unique_ptr<TestSshd> sshd_;
  Key key_, other_;
  SshEndpoint endpoint_;
};

TEST_P(SshProbeTest, AnAuthorizedKeyIsAcceptedAndAnotherRefused) {
  const SshProbeOutcome ok = Login(key_.private_file);
  EXPECT_EQ(ok.verdict, SshVerdict::kAccepted) << ok.summary << "\n"
                                               << ok.transcript << sshd_->Log();
  EXPECT_THAT(ok.key_fingerprint, ::testing::StartsWith("SHA256:"));
  const SshProbeOutcome no = Login(other_.private_file);
  EXPECT_EQ(no.verdict, SshVerdict::kRefused) << no.summary << "\n" << no.transcript;
  EXPECT_THAT(no.transcript, HasSubstr("Permission denied"));
  const auto obs = ToObservation(no, 42);
  EXPECT_EQ(obs.check(), "ssh_login_probe");
  EXPECT_EQ(obs.facts().at("verdict"), "refused");
  EXPECT_EQ(obs.observed_at_unix_ms(), 42);
  EXPECT_THAT(obs.subject(), HasSubstr(absl::StrCat("svc-app@[127.0.0.1]:", sshd_->port())));
}

TEST_P(SshProbeTest, KeyOfferNeedsOnlyThePublicKey) {
  auto yes = ProbeKeyOffer(endpoint_, "svc-app", key_.public_line, absl::Seconds(30));
  ASSERT_TRUE(yes.ok()) << yes.status();
  EXPECT_EQ(yes->verdict, SshVerdict::kAccepted) << yes->summary << "\n" << yes->transcript;
  EXPECT_EQ(yes->kind, "ssh_key_offer_probe");
  auto no = ProbeKeyOffer(endpoint_, "svc-app", other_.public_line, absl::Seconds(30));
  ASSERT_TRUE(no.ok()) << no.status();
  EXPECT_EQ(no->verdict, SshVerdict::kRefused) << no->summary << "\n" << no->transcript;
}

TEST_P(SshProbeTest, AnotherHostKeyOrNoServerIsUnreachableNotRefused) {
  SshEndpoint wrong = endpoint_;
  wrong.host_public_key = MakeKey(root_->dir() + "/fake-host", "host").public_line;
  auto o = ProbeLogin(wrong, "svc-app", key_.private_file, absl::Seconds(30));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->verdict, SshVerdict::kUnreachable) << o->summary << "\n" << o->transcript;
  EXPECT_THAT(o->summary, HasSubstr("host key"));

  SshEndpoint closed = endpoint_;
  closed.port = static_cast<uint16_t>(ClosedPort());
  auto c = ProbeLogin(closed, "svc-app", key_.private_file, absl::Seconds(30));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->verdict, SshVerdict::kUnreachable) << c->summary << "\n" << c->transcript;
}

TEST_P(SshProbeTest, RefusesBadInputBeforeRunningAnything) {
  EXPECT_EQ(ProbeLogin(endpoint_, "-oProxyCommand=x", key_.private_file, absl::Seconds(5))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  SshEndpoint bad = endpoint_;
  bad.host = "-oProxyCommand=touch /tmp/x";
  EXPECT_EQ(ValidateEndpoint(bad, "probe.").code(), absl::StatusCode::kInvalidArgument);
  bad = endpoint_;
  bad.port = 0;
  EXPECT_THAT(ValidateEndpoint(bad, "probe.").message(), HasSubstr("probe.port"));
  EXPECT_EQ(ProbeKeyOffer(endpoint_, "svc-app", "not a key", absl::Seconds(5)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sshd_->connections(), 0);
}

// ---- posix_account with the probe: the old access, tried from outside ----

writeback::v1::ConnectorInstanceConfig ProbedConfig(const HostRoot& root, const TestSshd& sshd) {
  writeback::v1::ConnectorInstanceConfig cfg;
  cfg.set_name("accounts");
  cfg.set_type("posix_account");
  for (const char* op : {"lock", "expire", "set_shell", "remove_group", "delete"}) {
    cfg.add_allowed_operations(op);
  }
  auto* p = cfg.mutable_posix_account();
  p->set_root(root.root());
  auto* probe = p->mutable_probe();
  probe->set_port(static_cast<uint32_t>(sshd.port()));
  probe->set_host_public_key_file(sshd.host_public_key_file());
  probe->set_identity_file_template(root.dir() + "/keys/{user}");
  return cfg;
}

Action Act(const std::string& op, const std::string& user) {
  Action a;
  a.operation = op;
  a.object = user;
  a.params.mutable_posix_account();
  return a;
}

const writeback::v1::Observation* FindProbe(const writeback::v1::Verification& v) {
  for (const auto& o : v.after()) {
    if (o.check() == "ssh_login_probe") return &o;
  }
  return nullptr;
}

class AccountProbeTest : public SshProbeTest {
 protected:
  void SetUp() override {
    SshProbeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    Registry registry;
    RegisterBuiltinConnectors(registry);
    auto c = registry.Create(ProbedConfig(*root_, *sshd_));
    ASSERT_TRUE(c.ok()) << c.status();
    connector_ = std::move(*c);
  }

  // The key works before; plan+apply; returns Verify's result.
  writeback::v1::Verification Revoke(const Action& a) {
    EXPECT_EQ(Login(key_.private_file).verdict, SshVerdict::kAccepted) << sshd_->Log();
    auto before = connector_->Verify(ctx_, a);
    EXPECT_TRUE(before.ok()) << before.status();
    if (before.ok()) {
      EXPECT_NE(before->outcome(), writeback::v1::OUTCOME_VERIFIED);
    }
    auto plan = connector_->PlanChange(ctx_, a);
    EXPECT_TRUE(plan.ok()) << plan.status();
    if (!plan.ok()) return {};
    auto applied = connector_->Apply(ctx_, a, *plan);
    EXPECT_TRUE(applied.ok()) << applied.status();
    auto v = connector_->Verify(ctx_, a);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : writeback::v1::Verification{};
  }

  std::unique_ptr<Connector> connector_;
  CallContext ctx_;  // the system clock: sshd and PAM judge expiry by real time
};

TEST_P(AccountProbeTest, ExpireIsProvenByARefusedLogin) {
  const auto v = Revoke(Act("expire", "svc-app"));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail() << sshd_->Log();
  const auto* probe = FindProbe(v);
  ASSERT_NE(probe, nullptr) << v.detail();
  EXPECT_EQ(probe->facts().at("verdict"), "refused") << probe->facts().at("transcript");
  EXPECT_THAT(v.detail(), HasSubstr("REFUSED"));
}

TEST_P(AccountProbeTest, DeleteIsProvenByARefusedLogin) {
  Action a = Act("delete", "svc-app");
  a.params.mutable_posix_account()->set_keep_home(true);  // sshd reads its keys there
  const auto v = Revoke(a);
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
  const auto* probe = FindProbe(v);
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(probe->facts().at("verdict"), "refused");
}

TEST_P(AccountProbeTest, NologinShellRefusesTheSession) {
  const auto v = Revoke(Act("set_shell", "svc-app"));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
  const auto* probe = FindProbe(v);
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(probe->facts().at("verdict"), "session_refused") << probe->facts().at("transcript");
  EXPECT_THAT(v.detail(), HasSubstr("port forwarding"));
}

// FACTS.md: with UsePAM yes a password lock does not stop a key login. The
// probe shows it, and Verify says FAILED instead of pretending; with UsePAM
// no, sshd itself refuses locked accounts.
TEST_P(AccountProbeTest, LockIsOnlyProvenWhenSshdHonoursIt) {
  const auto v = Revoke(Act("lock", "svc-app"));
  const auto* probe = FindProbe(v);
  ASSERT_NE(probe, nullptr) << v.detail();
  if (GetParam()) {  // UsePAM yes
    EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_FAILED) << v.detail();
    EXPECT_EQ(probe->facts().at("verdict"), "accepted");
    EXPECT_THAT(v.detail(), HasSubstr("use expire"));
  } else {
    EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
    EXPECT_EQ(probe->facts().at("verdict"), "refused");
  }
}

TEST_P(AccountProbeTest, NoIdentityFileMeansNoProbe) {
  ASSERT_TRUE(root_->AddUser({.name = "nokey"}).ok());
  auto plan = connector_->PlanChange(ctx_, Act("expire", "nokey"));
  ASSERT_TRUE(plan.ok());
  ASSERT_TRUE(connector_->Apply(ctx_, Act("expire", "nokey"), *plan).ok());
  auto v = connector_->Verify(ctx_, Act("expire", "nokey"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_VERIFIED);
  EXPECT_EQ(FindProbe(*v), nullptr);
  EXPECT_THAT(v->detail(), HasSubstr("probe skipped"));
}

TEST_P(AccountProbeTest, AnUnreachableProbeLeavesTheResultUnverified) {
  auto cfg = ProbedConfig(*root_, *sshd_);
  cfg.mutable_posix_account()->mutable_probe()->set_port(static_cast<uint32_t>(ClosedPort()));
  Registry registry;
  RegisterBuiltinConnectors(registry);
  auto c = registry.Create(cfg);
  ASSERT_TRUE(c.ok());
  auto plan = (*c)->PlanChange(ctx_, Act("expire", "svc-app"));
  ASSERT_TRUE(plan.ok());
  ASSERT_TRUE((*c)->Apply(ctx_, Act("expire", "svc-app"), *plan).ok());
  auto v = (*c)->Verify(ctx_, Act("expire", "svc-app"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_UNVERIFIED) << v->detail();
}

// ---- ssh_authorized_keys with the probe: the removed key, offered again ----

class AuthorizedKeysProbeTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (sshd, mount namespaces)";
    auto r = HostRoot::Create({.full_etc = true});
    ASSERT_TRUE(r.ok()) << r.status();
    root_ = std::move(*r);
    ASSERT_TRUE(root_->AddUser({.name = "svc-app"}).ok());
    old_ = MakeKey(root_->dir() + "/keys", "old");
    kept_ = MakeKey(root_->dir() + "/keys", "kept");
    ASSERT_TRUE(
        root_->WriteAuthorizedKeys("svc-app", old_.public_line + "\n" + kept_.public_line + "\n")
            .ok());
    auto s = TestSshd::Start(*root_, {.use_pam = true, .second_keys_file = GetParam()});
    ASSERT_TRUE(s.ok()) << s.status();
    sshd_ = std::move(*s);
    writeback::v1::ConnectorInstanceConfig cfg;
    cfg.set_name("keys");
    cfg.set_type("ssh_authorized_keys");
    cfg.add_allowed_operations("remove_key");
    cfg.add_allowed_operations("remove_by_comment");
    auto* k = cfg.mutable_ssh_authorized_keys();
    k->set_path_template(root_->root() + "/home/{user}/.ssh/authorized_keys");
    k->mutable_probe()->set_port(static_cast<uint32_t>(sshd_->port()));
    k->mutable_probe()->set_host_public_key_file(sshd_->host_public_key_file());
    k->set_probe_key_dir(root_->dir() + "/removed-keys");
    Registry registry;
    RegisterBuiltinConnectors(registry);
    auto c = registry.Create(cfg);
    ASSERT_TRUE(c.ok()) << c.status();
    connector_ = std::move(*c);
  }

  std::string Fingerprint(const Key& k) {
    auto out = RunProgramOk({"ssh-keygen", "-lf", k.private_file + ".pub"});
    EXPECT_TRUE(out.ok());
    std::vector<std::string> parts = absl::StrSplit(out.value_or(""), ' ');
    return parts.size() > 1 ? parts[1] : "";
  }

  std::unique_ptr<HostRoot> root_;
  std::unique_ptr<TestSshd> sshd_;
  std::unique_ptr<Connector> connector_;
  Key old_, kept_;
  CallContext ctx_;
};

TEST_P(AuthorizedKeysProbeTest, TheRemovedKeyIsOfferedAgainAndRefused) {
  SshEndpoint e;
  e.port = static_cast<uint16_t>(sshd_->port());
  e.host_public_key = sshd_->host_public_key();
  if (GetParam()) {
    // The same key is also authorized from a second file the connector does
    // not manage: removing it from the first does not revoke it.
    ASSERT_TRUE(fs::MakeDirs(root_->etc() + "/ssh/authorized_keys", 0755).ok());
    ASSERT_TRUE(fs::WriteFileAtomic(root_->etc() + "/ssh/authorized_keys/svc-app",
                                    old_.public_line + "\n", {.mode = 0644})
                    .ok());
  }
  auto before = ProbeLogin(e, "svc-app", old_.private_file, absl::Seconds(30));
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->verdict, SshVerdict::kAccepted) << before->transcript << sshd_->Log();

  Action a;
  a.operation = "remove_key";
  a.object = "svc-app";
  a.params.mutable_ssh_authorized_keys()->set_fingerprint(Fingerprint(old_));
  auto plan = connector_->PlanChange(ctx_, a);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_FALSE(plan->no_change());
  ASSERT_TRUE(connector_->Apply(ctx_, a, *plan).ok());
  auto v = connector_->Verify(ctx_, a);
  ASSERT_TRUE(v.ok()) << v.status();
  const writeback::v1::Observation* offer = nullptr;
  for (const auto& o : v->after()) {
    if (o.check() == "ssh_key_offer_probe") offer = &o;
  }
  ASSERT_NE(offer, nullptr) << v->detail();
  EXPECT_EQ(offer->facts().at("key_fingerprint"), Fingerprint(old_));
  if (GetParam()) {
    EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();
    EXPECT_EQ(offer->facts().at("verdict"), "accepted");
    EXPECT_THAT(v->detail(), HasSubstr("sshd still accepts 1 of the removed keys"));
  } else {
    EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_VERIFIED) << v->detail();
    EXPECT_EQ(offer->facts().at("verdict"), "refused") << offer->facts().at("transcript");
    // And from outside, with the private key: refused; the other key still works.
    auto after = ProbeLogin(e, "svc-app", old_.private_file, absl::Seconds(30));
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->verdict, SshVerdict::kRefused);
    auto kept = ProbeLogin(e, "svc-app", kept_.private_file, absl::Seconds(30));
    ASSERT_TRUE(kept.ok());
    EXPECT_EQ(kept->verdict, SshVerdict::kAccepted);
  }
  // Only public material was kept for the probe.
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(root_->dir() + "/removed-keys")) {
    if (!entry.is_regular_file()) continue;
    auto c = fs::ReadFile(entry.path().string());
    ASSERT_TRUE(c.ok());
    EXPECT_THAT(*c, ::testing::StartsWith("ssh-ed25519 "));
    EXPECT_THAT(*c, ::testing::Not(HasSubstr("PRIVATE")));
  }
}

TEST(AuthorizedKeysProbeConfigTest, NeedsAKeyDirectory) {
  writeback::v1::ConnectorInstanceConfig cfg;
  cfg.set_name("keys");
  cfg.set_type("ssh_authorized_keys");
  cfg.mutable_ssh_authorized_keys()->set_path_template("/home/{user}/.ssh/authorized_keys");
  cfg.mutable_ssh_authorized_keys()->set_probe_key_dir("/var/lib/wb/keys");
  Registry registry;
  RegisterBuiltinConnectors(registry);
  EXPECT_THAT(registry.Create(cfg).status().message(), HasSubstr("only used with probe"));
}

INSTANTIATE_TEST_SUITE_P(SecondKeysFile, AuthorizedKeysProbeTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "AlsoElsewhere" : "OneFile"; });

INSTANTIATE_TEST_SUITE_P(Pam, SshProbeTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "UsePamYes" : "UsePamNo"; });
INSTANTIATE_TEST_SUITE_P(Pam, AccountProbeTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "UsePamYes" : "UsePamNo"; });

}  // namespace
}  // namespace wb::connectors::probes
