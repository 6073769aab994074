// Truth: an interrupted apply finishes (issue 15, section 5). The old
// sequence, with real processes: the writeback-agent binary is killed by its
// crash point `agent.after_intent` (intent journaled, nothing applied yet),
// then restarted; the real writeback-controlplane keeps the decision; the
// operator looks at it through the real wbctl binary.
//
// Before: such a task was only verified after the restart, observed not in
// effect, and its decision ended FAILED ("recovered after restart (apply
// outcome unknown)") with the key still in the file; nothing retried it.
// Now: an idempotent operation (ssh_authorized_keys remove_key) is run again
// and its decision ends VERIFIED with the key gone; an operation that is not
// idempotent (an exec operation its instance does not declare idempotent)
// keeps the old behaviour, and the result says why it was not re-run.
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "common/testing/wait.h"
#include "gtest/gtest.h"
#include "tests/fault/deployment.h"
#include "tests/integration/ssh_test_keys.h"

namespace wb::fault {
namespace {

using writeback::v1::DecisionState;

class TruthInterruptedApply : public ::testing::Test {
 protected:
  void SetUp() override {
    leaked_ = e2e::MakeSshKey("ci-deploy-2019");
    kept_ = e2e::MakeSshKey("ops@bastion");
    ASSERT_TRUE(fs::MakeDirs(root_.Sub("home/deploy/.ssh"), 0700).ok());
    ASSERT_TRUE(
        fs::WriteFileAtomic(Keys(), absl::StrCat(kept_.line, "\n", leaked_.line, "\n")).ok());

    Deployment::Options o;
    o.agents = 1;
    // The exec instance fx-a0 does not declare "revoke" idempotent.
    o.exec_idempotent = false;
    o.tweak_agent = [this](int, writeback::v1::AgentConfig& a) {
      auto* c = a.add_connectors();
      c->set_name("keys");
      c->set_type("ssh_authorized_keys");
      c->add_allowed_operations("remove_key");
      c->mutable_ssh_authorized_keys()->set_path_template(root_.path() +
                                                          "/home/{user}/.ssh/authorized_keys");
    };
    auto d =
        Deployment::Start(Binaries{WB_CONTROLPLANE_BINARY, WB_AGENT_BINARY, WB_COUNTER_BINARY}, o);
    ASSERT_TRUE(d.ok()) << d.status();
    d_ = std::move(*d);
    const pki::Identity op = d_->pki().operator_identity("admin");
    wbctl_cfg_ = d_->dir() + "/wbctl.yaml";
    ASSERT_TRUE(fs::WriteFileAtomic(wbctl_cfg_,
                                    absl::StrCat("controlplane_address: 127.0.0.1:", d_->port(),
                                                 "\ncontrolplane_id: ", d_->pki().controlplane_id(),
                                                 "\ntls:\n  ca_file: ", op.tls.ca_file(),
                                                 "\n  cert_file: ", op.tls.cert_file(),
                                                 "\n  key_file: ", op.tls.key_file(), "\n"))
                    .ok());
  }

  std::string Keys() const { return root_.Sub("home/deploy/.ssh/authorized_keys"); }
  std::string KeysNow() const { return fs::ReadFile(Keys()).value_or("<unreadable>"); }

  // Replays the old sequence for `spec`: the agent runs with the crash point
  // armed, journals the intent and is SIGKILLed before planning anything;
  // `before_restart` sees the target as the kill left it; then the agent is
  // restarted (crash point off). Returns the decision id.
  std::string KillAfterIntentThenRestart(const writeback::v1::DecisionSpec& spec,
                                         const std::function<void()>& before_restart) {
    d_->KillAgent(0);
    EXPECT_TRUE(d_->StartAgent(0, {"WRITEBACK_CRASH_POINTS=agent.after_intent"}).ok());
    EXPECT_TRUE(d_->WaitAllAgentsConnected(absl::Seconds(30)).ok());
    auto r = d_->Submit(spec, "");
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    auto status = d_->WaitAgentExit(0, absl::Seconds(60));
    EXPECT_TRUE(status.ok()) << status.status();
    EXPECT_TRUE(status.ok() && WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)
        << "the agent did not die by its crash point";
    EXPECT_TRUE(absl::StrContains(fs::ReadFile(d_->agent_log(0)).value_or(""),
                                  "crash point agent.after_intent hit"));
    before_restart();
    EXPECT_TRUE(d_->StartAgent(0).ok());
    return r->decision_id();
  }

  writeback::v1::DecisionView WaitTerminal(const std::string& id) {
    writeback::v1::DecisionView view;
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          auto v = d_->Get(id);
          if (!v.ok()) return false;
          view = *v;
          const DecisionState s = v->state();
          return s == writeback::v1::DECISION_STATE_VERIFIED ||
                 s == writeback::v1::DECISION_STATE_FAILED ||
                 s == writeback::v1::DECISION_STATE_EXPIRED ||
                 s == writeback::v1::DECISION_STATE_CANCELED;
        },
        std::chrono::seconds(60), std::chrono::milliseconds(50)))
        << "decision " << id << " did not end";
    return view;
  }

  // `wbctl decision get ID` through the real binary: its exit code and output.
  std::pair<int, std::string> WbctlGet(const std::string& id) {
    const std::string log = d_->dir() + "/wbctl-" + id + ".log";
    auto pid = Spawn({WBCTL_PATH, "--config", wbctl_cfg_, "decision", "get", id}, log, {});
    if (!pid.ok()) return {-1, std::string(pid.status().message())};
    int status = 0;
    const bool done = testing::WaitFor([&] { return waitpid(*pid, &status, WNOHANG) == *pid; },
                                       std::chrono::seconds(30), std::chrono::milliseconds(10));
    if (!done) {
      kill(*pid, SIGKILL);
      waitpid(*pid, &status, 0);
      return {-1, "wbctl did not finish"};
    }
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, fs::ReadFile(log).value_or("")};
  }

  testing::TempDir root_;  // the host: /home/deploy/.ssh/authorized_keys
  e2e::SshTestKey leaked_, kept_;
  std::unique_ptr<Deployment> d_;
  std::string wbctl_cfg_;
};

TEST_F(TruthInterruptedApply, IdempotentRemoveKeyKilledAfterIntentEndsVerifiedWithTheKeyGone) {
  writeback::v1::DecisionSpec spec;
  spec.set_connector_instance("keys");
  spec.set_operation("remove_key");
  spec.mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(leaked_.fingerprint);
  spec.add_targets()->set_object("deploy");
  spec.set_reason("leaked CI key");
  spec.set_reference("INC-15");

  const std::string id = KillAfterIntentThenRestart(spec, [&] {
    // Killed between the intent and the apply: the key is still there.
    EXPECT_TRUE(absl::StrContains(KeysNow(), leaked_.line)) << KeysNow();
  });
  ASSERT_FALSE(id.empty());

  const writeback::v1::DecisionView v = WaitTerminal(id);
  ASSERT_EQ(v.tasks_size(), 1);
  const auto& t = v.tasks(0);
  EXPECT_EQ(writeback::v1::DecisionState_Name(v.state()), "DECISION_STATE_VERIFIED")
      << v.state_detail() << " / " << t.message();
  EXPECT_EQ(t.outcome(), writeback::v1::OUTCOME_VERIFIED) << t.message();
  EXPECT_TRUE(absl::StrContains(
      t.message(),
      "recovered after restart: plan, apply and verify ran again to finish the interrupted apply"))
      << t.message();
  EXPECT_FALSE(t.plan().no_change());  // the re-run made the change itself
  // The truth on the host: the leaked key is gone, the other one stays.
  EXPECT_FALSE(absl::StrContains(KeysNow(), leaked_.line)) << KeysNow();
  EXPECT_TRUE(absl::StrContains(KeysNow(), kept_.line)) << KeysNow();

  // The operator's view.
  auto [code, out] = WbctlGet(id);
  std::printf("truth: wbctl decision get (idempotent remove_key, killed after intent):\n%s",
              out.c_str());
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "VERIFIED")) << out;
  EXPECT_TRUE(absl::StrContains(out, "ran again to finish the interrupted apply")) << out;
}

TEST_F(TruthInterruptedApply, NonIdempotentExecKilledAfterIntentEndsFailedSayingItWasNotReRun) {
  const std::string id = KillAfterIntentThenRestart(d_->Spec(0, "svc-legacy"), [&] {
    EXPECT_TRUE(d_->Effects(0).empty()) << "applied before the kill";
  });
  ASSERT_FALSE(id.empty());

  const writeback::v1::DecisionView v = WaitTerminal(id);
  ASSERT_EQ(v.tasks_size(), 1);
  const auto& t = v.tasks(0);
  EXPECT_EQ(writeback::v1::DecisionState_Name(v.state()), "DECISION_STATE_FAILED") << t.message();
  EXPECT_EQ(t.outcome(), writeback::v1::OUTCOME_FAILED) << t.message();
  const std::string why =
      "not re-run: operation 'revoke' of connector 'fx-a0' (exec) is not idempotent";
  EXPECT_TRUE(absl::StrContains(t.message(), why)) << t.message();
  EXPECT_TRUE(absl::StrContains(t.message(), "exec.idempotent_operations")) << t.message();
  // Never applied: not then, not after the restart.
  EXPECT_TRUE(d_->Effects(0).empty());
  EXPECT_TRUE(d_->Plans(0).empty()) << "planned after the restart";

  auto [code, out] = WbctlGet(id);
  std::printf("truth: wbctl decision get (exec not declared idempotent, killed after intent):\n%s",
              out.c_str());
  EXPECT_TRUE(absl::StrContains(out, "FAILED")) << out;
  EXPECT_TRUE(absl::StrContains(out, why)) << out;
}

}  // namespace
}  // namespace wb::fault
