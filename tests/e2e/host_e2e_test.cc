// Host connectors end to end: a real control plane and a real agent
// (tests/e2e/harness.h) revoke access on a throwaway root, and a real sshd
// (connectors/testing/host/sshd.h, on a kernel-chosen port, seeing the
// throwaway root's account databases through a private mount namespace)
// is asked afterwards: the task's result carries the probe's evidence that
// the same key is now refused.
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/fs/fs.h"
#include "connectors/probes/ssh_probe.h"
#include "connectors/testing/host/sandbox.h"
#include "connectors/testing/host/sshd.h"
#include "connectors/testing/run_program.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace wb::e2e {
namespace {

using connectors::probes::ProbeLogin;
using connectors::probes::SshEndpoint;
using connectors::probes::SshVerdict;
using connectors::testing::RunProgramOk;
using connectors::testing::host::HostRoot;
using connectors::testing::host::TestSshd;

struct Key {
  std::string private_file, public_line, fingerprint;
};

Key MakeKey(const std::string& dir, const std::string& name) {
  Key k;
  EXPECT_TRUE(fs::MakeDirs(dir, 0700).ok());
  k.private_file = dir + "/" + name;
  EXPECT_TRUE(RunProgramOk(
                  {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", k.private_file})
                  .ok());
  k.public_line = std::string(
      absl::StripTrailingAsciiWhitespace(fs::ReadFile(k.private_file + ".pub").value_or("")));
  std::vector<std::string> parts = absl::StrSplit(
      RunProgramOk({"ssh-keygen", "-lf", k.private_file + ".pub"}).value_or(""), ' ');
  if (parts.size() > 1) k.fingerprint = parts[1];
  return k;
}

const writeback::v1::Observation* FindCheck(const writeback::v1::TaskView& t,
                                            const std::string& check) {
  for (const auto& o : t.verification().after()) {
    if (o.check() == check) return &o;
  }
  return nullptr;
}

class HostE2eTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (sshd, account tools, mount namespaces)";
    auto r = HostRoot::Create({.full_etc = true});
    ASSERT_TRUE(r.ok()) << r.status();
    root_ = std::move(*r);
    ASSERT_TRUE(root_->AddUser({.name = "svc-deploy"}).ok());
    key_ = MakeKey(root_->dir() + "/keys", "svc-deploy");
    ASSERT_TRUE(root_->WriteAuthorizedKeys("svc-deploy", key_.public_line + "\n").ok());
    auto s = TestSshd::Start(*root_, {.use_pam = GetParam()});
    ASSERT_TRUE(s.ok()) << s.status();
    sshd_ = std::move(*s);
    endpoint_.port = static_cast<uint16_t>(sshd_->port());
    endpoint_.host_public_key = sshd_->host_public_key();
  }

  void StartAgent(const writeback::v1::ConnectorInstanceConfig& c) {
    Harness::Options o;
    o.agents["host-a1"] = {c};
    auto h = Harness::Start(o);
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = std::move(*h);
  }

  writeback::v1::SshLoginProbeConfig Probe() const {
    writeback::v1::SshLoginProbeConfig p;
    p.set_port(static_cast<uint32_t>(sshd_->port()));
    p.set_host_public_key_file(sshd_->host_public_key_file());
    p.set_identity_file_template(root_->dir() + "/keys/{user}");
    return p;
  }

  SshVerdict LoginNow() {
    auto o = ProbeLogin(endpoint_, "svc-deploy", key_.private_file, absl::Seconds(30));
    EXPECT_TRUE(o.ok()) << o.status();
    return o.ok() ? o->verdict : SshVerdict::kUnreachable;
  }

  writeback::v1::DecisionView Decide(const writeback::v1::DecisionSpec& spec) {
    auto sub = h_->Submit(spec);
    EXPECT_TRUE(sub.ok()) << sub.status();
    if (!sub.ok()) return {};
    auto view = h_->WaitTerminal(sub->decision_id());
    EXPECT_TRUE(view.ok()) << view.status();
    return view.ok() ? *view : writeback::v1::DecisionView{};
  }

  std::unique_ptr<HostRoot> root_;
  std::unique_ptr<TestSshd> sshd_;
  std::unique_ptr<Harness> h_;
  Key key_;
  SshEndpoint endpoint_;
};

TEST_P(HostE2eTest, RevokedKeyIsRefusedBySshdAndTheResultSaysSo) {
  writeback::v1::ConnectorInstanceConfig c;
  c.set_name("host-keys");
  c.set_type("ssh_authorized_keys");
  c.add_allowed_operations("remove_key");
  c.mutable_ssh_authorized_keys()->set_path_template(root_->root() +
                                                     "/home/{user}/.ssh/authorized_keys");
  *c.mutable_ssh_authorized_keys()->mutable_probe() = Probe();
  c.mutable_ssh_authorized_keys()->set_probe_key_dir(root_->dir() + "/removed-keys");
  StartAgent(c);
  ASSERT_NE(h_, nullptr);
  ASSERT_EQ(LoginNow(), SshVerdict::kAccepted) << sshd_->Log();

  const auto view = Decide(SshRemoveKeySpec("host-keys", {"svc-deploy"}, key_.fingerprint,
                                            "deploy key leaked in a CI log"));
  EXPECT_EQ(view.state(), writeback::v1::DECISION_STATE_VERIFIED) << view.DebugString();
  ASSERT_EQ(view.tasks_size(), 1);
  const auto& t = view.tasks(0);
  EXPECT_EQ(t.outcome(), writeback::v1::OUTCOME_VERIFIED) << t.verification().detail();
  const auto* probe = FindCheck(t, "ssh_key_offer_probe");
  ASSERT_NE(probe, nullptr) << t.verification().DebugString();
  EXPECT_EQ(probe->facts().at("verdict"), "refused") << probe->facts().at("transcript");
  EXPECT_EQ(probe->facts().at("key_fingerprint"), key_.fingerprint);
  // Independently of Writeback: the same private key no longer gets in.
  EXPECT_EQ(LoginNow(), SshVerdict::kRefused) << sshd_->Log();
}

TEST_P(HostE2eTest, ExpiredAccountIsRefusedBySshdAndTheResultSaysSo) {
  writeback::v1::ConnectorInstanceConfig c;
  c.set_name("host-accounts");
  c.set_type("posix_account");
  c.add_allowed_operations("expire");
  c.add_allowed_operations("lock");
  c.mutable_posix_account()->set_root(root_->root());
  *c.mutable_posix_account()->mutable_probe() = Probe();
  StartAgent(c);
  ASSERT_NE(h_, nullptr);
  ASSERT_EQ(LoginNow(), SshVerdict::kAccepted) << sshd_->Log();

  writeback::v1::DecisionSpec spec;
  spec.set_connector_instance("host-accounts");
  // With UsePAM yes only an expiry stops a key login; with UsePAM no, sshd
  // refuses a locked account too (FACTS.md).
  spec.set_operation(GetParam() ? "expire" : "lock");
  spec.mutable_params()->mutable_posix_account();
  spec.add_targets()->set_object("svc-deploy");
  spec.set_reason("stale service account");
  spec.set_reference("ACCESS-REVIEW-7");
  const auto view = Decide(spec);
  EXPECT_EQ(view.state(), writeback::v1::DECISION_STATE_VERIFIED) << view.DebugString();
  ASSERT_EQ(view.tasks_size(), 1);
  const auto& t = view.tasks(0);
  EXPECT_EQ(t.outcome(), writeback::v1::OUTCOME_VERIFIED) << t.verification().detail();
  ASSERT_NE(FindCheck(t, "read_account_databases"), nullptr);
  const auto* probe = FindCheck(t, "ssh_login_probe");
  ASSERT_NE(probe, nullptr) << t.verification().DebugString();
  EXPECT_EQ(probe->facts().at("verdict"), "refused") << probe->facts().at("transcript");
  EXPECT_GT(t.plan().before_size(), 0);  // the before-state travels with the result
  EXPECT_EQ(LoginNow(), SshVerdict::kRefused) << sshd_->Log();
}

INSTANTIATE_TEST_SUITE_P(Pam, HostE2eTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "UsePamYes" : "UsePamNo"; });

}  // namespace
}  // namespace wb::e2e
