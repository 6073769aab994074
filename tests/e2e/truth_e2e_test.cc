// Issue 15, "A decision's state never lies": one test per sequence that the
// first round of independent testing found, replaying the old sequence with
// a real control plane (in-process: RocksDB, mTLS), real agents, the
// ssh_authorized_keys connector on sandboxed files and the real `wbctl`
// binary for everything an operator does and sees. Each asserts the truth
// on the target (the authorized_keys file) and what the operator is told.
//   TruthOverlappingDecisions   two decisions on one target (sections 1)
//   TruthReverifyNotHandedOver  a newer decision never silences an older
//                               one's re-verification (2)
//   TruthCannotTellIsLoud       an effect that cannot be observed leaves
//                               VERIFIED visibly; a symlink sshd follows is
//                               drift (3)
//   TruthInstancesBound         a rogue agent's claim gets it nothing; a
//                               rebind needs approvals in root mode (4)
// (`ctest -R Truth` also runs the interrupted-apply and smaller-lies tests.)
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/testing/wait.h"
#include "common/trust/policy.h"
#include "controlplane/metrics/exposition.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/browser/view_test_support.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/trust_fixture.h"
#include "tests/integration/ssh_test_keys.h"

namespace wb::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace v1 = writeback::v1;

constexpr char kDomain[] = "writeback.test";

class TruthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    k0_ = MakeSshKey("ci-deploy-2019");
    k1_ = MakeSshKey("jenkins-old");
    kept_ = MakeSshKey("ops@bastion");
  }

  std::string Keys() const {
    return absl::StrCat(k0_.line, "\n", k1_.line, "\n", kept_.line, "\n");
  }

  v1::ConnectorInstanceConfig Instance(const std::string& name, const KeysSandbox& box) {
    v1::ConnectorInstanceConfig c = box.Instance(name);
    c.add_allowed_operations("exclusive_set");
    return c;
  }

  // Starts the harness; `tweak` may change its options. A wbctl config for
  // operator "ops" is written.
  void Start(std::function<void(Harness::Options&)> tweak = nullptr) {
    sandbox_.Write("deploy", Keys());
    Harness::Options o;
    o.agents["a1"] = {Instance("hosts", sandbox_)};
    o.tweak_controlplane = [&](v1::ControlPlaneConfig& c) {
      c.set_web_listen_address("127.0.0.1:0");
      c.set_web_port_file(tmp_.Sub("web.port"));
      // Re-verified every hour; the tests ask for rounds with wbctl.
      c.mutable_reverify()->set_default_interval_seconds(3600);
    };
    if (tweak) tweak(o);
    auto h = Harness::Start(o);
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = std::move(*h);
    web_port_ = ReadPort(tmp_.Sub("web.port"));
    wbctl_config_ = tmp_.Sub("wbctl.yaml");
    ASSERT_TRUE(h_->WriteWbctlConfig("ops", wbctl_config_).ok());
  }

  ProgramResult Wbctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {WBCTL_PATH, "--config", wbctl_config_};
    argv.insert(argv.end(), args.begin(), args.end());
    ProgramResult r = RunProgram(argv, tmp_.path(), absl::Seconds(60));
    return r;
  }

  // `wbctl decision submit ... -o json`: the decision id.
  std::string Submit(std::vector<std::string> args) {
    std::vector<std::string> argv = {"decision", "submit", "-o", "json"};
    argv.insert(argv.end(), args.begin(), args.end());
    ProgramResult r = Wbctl(argv);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded() || !j.contains("decision_id")) {
      ADD_FAILURE() << "submit printed: " << r.out << r.err;
      return "";
    }
    return j["decision_id"].get<std::string>();
  }
  std::string RemoveKey(const SshTestKey& key, const std::string& instance = "hosts") {
    return Submit({"--instance", instance, "--operation", "remove_key", "--target", "deploy",
                   "--fingerprint", key.fingerprint, "--reason", "leaked key"});
  }

  v1::DecisionView Get(const std::string& id) {
    auto v = h_->Get(id);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : v1::DecisionView();
  }
  v1::DecisionState WaitState(const std::string& id, v1::DecisionState want,
                              absl::Duration timeout = absl::Seconds(60)) {
    v1::DecisionState last = v1::DECISION_STATE_UNSPECIFIED;
    wb::testing::WaitFor(
        [&] {
          auto v = h_->Get(id);
          if (v.ok()) last = v->state();
          return last == want;
        },
        std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)),
        std::chrono::milliseconds(50));
    return last;
  }
  // `wbctl decision get ID`, printed for the log.
  std::string Show(const std::string& id) {
    ProgramResult r = Wbctl({"decision", "get", id});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::printf("$ wbctl decision get %s\n%s\n", id.c_str(), r.out.c_str());
    return r.out;
  }
  void Reverify(const std::string& id) {
    ProgramResult r = Wbctl({"decision", "reverify", id});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  wb::testing::TempDir tmp_;
  KeysSandbox sandbox_;
  SshTestKey k0_, k1_, kept_;
  std::unique_ptr<Harness> h_;
  int web_port_ = 0;
  std::string wbctl_config_;
};

// ---------------------------------------------------------------------------
// 1. Overlapping decisions on one target.

class TruthOverlappingDecisions : public TruthTest {};

TEST_F(TruthOverlappingDecisions, TwoRemovalsForOneUserWhileTheAgentIsAwayBothRun) {
  // The old sequence: the agent stopped; remove K0, then K1, of `deploy`;
  // the agent back. The first decision ended CANCELED ("1 of 1 tasks
  // superseded") and K0 stayed. Nobody had canceled it.
  Start();
  h_->StopAgent("a1");
  const std::string first = RemoveKey(k0_);
  const std::string second = RemoveKey(k1_);
  ASSERT_TRUE(h_->StartAgent("a1").ok());
  EXPECT_EQ(WaitState(first, v1::DECISION_STATE_VERIFIED), v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(WaitState(second, v1::DECISION_STATE_VERIFIED), v1::DECISION_STATE_VERIFIED);
  // The truth on the target: both keys gone, the kept one there.
  EXPECT_EQ(sandbox_.Read("deploy"), kept_.line + "\n");
  const std::string shown = Show(first);
  EXPECT_THAT(shown, HasSubstr("VERIFIED"));
  EXPECT_THAT(shown, Not(HasSubstr("CANCELED")));
  EXPECT_THAT(shown, Not(HasSubstr("SUPERSEDED")));
}

TEST_F(TruthOverlappingDecisions, ACoveredDecisionNamesWhatCoversItAndIsVerifiedWithIt) {
  Start();
  h_->StopAgent("a1");
  const std::string older = RemoveKey(k0_);
  // Keep only the bastion key: its effect contains "K0 removed".
  const std::string newer =
      Submit({"--instance", "hosts", "--operation", "exclusive_set", "--target", "deploy",
              "--keep-fingerprint", kept_.fingerprint, "--reason", "only the bastion key"});
  v1::DecisionView waiting = Get(older);
  EXPECT_EQ(waiting.state(), v1::DECISION_STATE_DISPATCHED);
  EXPECT_THAT(waiting.state_detail(), HasSubstr("covered by decision " + newer));
  ASSERT_EQ(waiting.tasks_size(), 1);
  EXPECT_EQ(waiting.tasks(0).covered_by_decision_id(), newer);
  ASSERT_TRUE(h_->StartAgent("a1").ok());
  EXPECT_EQ(WaitState(newer, v1::DECISION_STATE_VERIFIED), v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(WaitState(older, v1::DECISION_STATE_VERIFIED), v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(sandbox_.Read("deploy"), kept_.line + "\n");
  const std::string shown = Show(older);
  EXPECT_THAT(shown, HasSubstr(absl::StrCat("covered by decision ", newer)));
  EXPECT_THAT(shown, HasSubstr("Covered by:"));
  EXPECT_THAT(shown, HasSubstr("the kept set excludes " + k0_.fingerprint));
}

TEST_F(TruthOverlappingDecisions, CancelingTheCoveringDecisionLetsTheOlderOneRun) {
  Start();
  h_->StopAgent("a1");
  const std::string older = RemoveKey(k0_);
  const std::string newer =
      Submit({"--instance", "hosts", "--operation", "exclusive_set", "--target", "deploy",
              "--keep-fingerprint", kept_.fingerprint, "--reason", "only the bastion key"});
  ProgramResult c = Wbctl({"decision", "cancel", newer});
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  EXPECT_EQ(Get(older).tasks(0).state(), v1::TASK_STATE_QUEUED);  // given back
  ASSERT_TRUE(h_->StartAgent("a1").ok());
  EXPECT_EQ(WaitState(older, v1::DECISION_STATE_VERIFIED), v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(Get(newer).state(), v1::DECISION_STATE_CANCELED);  // only what the operator canceled
  // K0 removed by the older decision; K1 stays (the canceled one never ran).
  EXPECT_EQ(sandbox_.Read("deploy"), absl::StrCat(k1_.line, "\n", kept_.line, "\n"));
}

// ---------------------------------------------------------------------------
// 2. Re-verification is never handed over.

class TruthReverifyNotHandedOver : public TruthTest {};

TEST_F(TruthReverifyNotHandedOver, AKeyPutBackIsDriftOfItsOwnDecisionAfterANewerOne) {
  // The old sequence: revoke A (decision 1, VERIFIED), revoke B for the same
  // user (decision 2), put A back. The agent refused decision 1's verify
  // task (ROLLBACK) and decision 1 stayed VERIFIED while A worked again.
  Start();
  const std::string first = RemoveKey(k0_);
  ASSERT_EQ(WaitState(first, v1::DECISION_STATE_VERIFIED), v1::DECISION_STATE_VERIFIED);
  const std::string second = RemoveKey(k1_);
  ASSERT_EQ(WaitState(second, v1::DECISION_STATE_VERIFIED), v1::DECISION_STATE_VERIFIED);
  sandbox_.Write("deploy", absl::StrCat(kept_.line, "\n", k0_.line, "\n"));  // A is back
  Reverify(first);
  EXPECT_EQ(WaitState(first, v1::DECISION_STATE_DRIFTED), v1::DECISION_STATE_DRIFTED);
  v1::DecisionView d = Get(first);
  ASSERT_EQ(d.reverifications_size(), 1);
  EXPECT_EQ(d.reverifications(0).outcome(), v1::OUTCOME_FAILED) << d.reverifications(0).message();
  EXPECT_EQ(d.reverifications(0).reject_reason(), v1::REJECT_REASON_UNSPECIFIED);
  // Decision 2's own effect (B gone) still holds.
  Reverify(second);
  EXPECT_TRUE(wb::testing::WaitFor([&] {
    auto v = Get(second);
    return v.reverifications_size() == 1 && v.reverifications(0).outcome() == v1::OUTCOME_VERIFIED;
  }));
  EXPECT_EQ(Get(second).state(), v1::DECISION_STATE_VERIFIED);
  EXPECT_THAT(Show(first), HasSubstr("DRIFTED"));
}

// ---------------------------------------------------------------------------
// 3. "Cannot tell" is loud.

class TruthCannotTellIsLoud : public TruthTest {};

TEST_F(TruthCannotTellIsLoud, AnEffectThatCannotBeObservedLeavesVerifiedVisibly) {
  // The old sequence: after VERIFIED, authorized_keys became something the
  // connector will not read; re-verification was UNVERIFIED and the
  // decision stayed VERIFIED (green), visible only in -o json.
  Start();
  const std::string id = RemoveKey(k0_);
  ASSERT_EQ(WaitState(id, v1::DECISION_STATE_VERIFIED), v1::DECISION_STATE_VERIFIED);
  const std::string path = sandbox_.KeysPath("deploy");
  struct Case {
    const char* what;
    std::function<void()> make;
  };
  const Case cases[] = {
      {"a FIFO", [&] { ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0); }},
      {"a file over the size limit",
       [&] { ASSERT_TRUE(fs::WriteFileAtomic(path, std::string((16 << 20) + 1, '#')).ok()); }},
      {"a symbolic link to a file without the key",
       [&] {
         const std::string other = tmp_.Sub("elsewhere");
         ASSERT_TRUE(fs::WriteFileAtomic(other, kept_.line + "\n").ok());
         ASSERT_EQ(::symlink(other.c_str(), path.c_str()), 0);
       }},
  };
  int n = 0;
  for (const Case& c : cases) {
    ++n;
    SCOPED_TRACE(c.what);
    ASSERT_EQ(::unlink(path.c_str()), 0);
    c.make();
    Reverify(id);
    ASSERT_EQ(WaitState(id, v1::DECISION_STATE_UNVERIFIABLE), v1::DECISION_STATE_UNVERIFIABLE);
    // Shown everywhere an operator looks.
    const std::string shown = Show(id);
    EXPECT_THAT(shown, HasSubstr("UNVERIFIABLE"));
    EXPECT_THAT(shown, HasSubstr("Cannot tell:"));
    ProgramResult fleet = Wbctl({"fleet", "status"});
    EXPECT_THAT(fleet.out, HasSubstr("1 UNVERIFIABLE")) << fleet.out;
    ProgramResult events =
        Wbctl({"events", "tail", "--decision", id, "--backlog", "100", "--no-follow"});
    EXPECT_THAT(events.out, HasSubstr("UNVERIFIABLE")) << events.out;
    auto metrics = controlplane::exposition::Parse(HttpGet(web_port_, "/metrics").body);
    ASSERT_TRUE(metrics.ok());
    EXPECT_EQ((*metrics)["writeback_unverifiable_decisions"], 1.0);
    EXPECT_EQ((*metrics)["writeback_unverifiable_detected_total"], n);
    HttpResult drift = HttpGet(web_port_, "/api/drift");
    EXPECT_THAT(drift.body, HasSubstr(id));
    EXPECT_THAT(drift.body, HasSubstr("DECISION_STATE_UNVERIFIABLE"));
    // Observable again: back to VERIFIED.
    ASSERT_EQ(::unlink(path.c_str()), 0);
    sandbox_.Write("deploy", kept_.line + "\n");
    Reverify(id);
    ASSERT_EQ(WaitState(id, v1::DECISION_STATE_VERIFIED), v1::DECISION_STATE_VERIFIED);
    EXPECT_THAT(Get(id).state_detail(), HasSubstr("observable again"));
  }
  ProgramResult events =
      Wbctl({"events", "tail", "--decision", id, "--backlog", "100", "--no-follow"});
  EXPECT_THAT(events.out, HasSubstr("OBSERVABLE_AGAIN"));
}

TEST_F(TruthCannotTellIsLoud, ASymlinkThatSshdFollowsToTheRevokedKeyIsDrift) {
  Start();
  const std::string id = RemoveKey(k0_);
  ASSERT_EQ(WaitState(id, v1::DECISION_STATE_VERIFIED), v1::DECISION_STATE_VERIFIED);
  // authorized_keys replaced by a link to a root-owned 0600 file holding K0:
  // sshd (StrictModes) follows it, so the key works again.
  const std::string path = sandbox_.KeysPath("deploy");
  const std::string other = tmp_.Sub("planted_keys");
  ASSERT_TRUE(fs::WriteFileAtomic(other, k0_.line + "\n", {.mode = 0600}).ok());
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_EQ(::symlink(other.c_str(), path.c_str()), 0);
  Reverify(id);
  ASSERT_EQ(WaitState(id, v1::DECISION_STATE_DRIFTED), v1::DECISION_STATE_DRIFTED);
  EXPECT_THAT(Get(id).state_detail(), HasSubstr("which sshd follows"));
  EXPECT_THAT(Show(id), HasSubstr("DRIFTED"));
}

// ---------------------------------------------------------------------------
// 4. Instances are bound to agents.

class TruthInstancesBound : public TruthTest {};

TEST_F(TruthInstancesBound, AnAgentClaimingAnInstanceItIsNotBoundToGetsNothing) {
  // The old sequence: an enrolled but compromised agent claimed an instance
  // name not served yet, received its approved decision, reported VERIFIED
  // with no effect, and locked the real host out.
  KeysSandbox rogue_box;
  rogue_box.Write("deploy", Keys());
  Start([&](Harness::Options& o) {
    o.bind_instances = false;  // bindings below, as an operator makes them
    o.agents["rogue"] = {Instance("hosts", rogue_box), Instance("hosts-new", rogue_box)};
  });
  ProgramResult bind = Wbctl({"instance", "bind", "hosts", "--agent", "a1", "--reason", "CHG-1"});
  ASSERT_EQ(bind.exit_code, 0) << bind.out << bind.err;
  EXPECT_THAT(bind.out, HasSubstr("bound to spiffe://writeback.test/agent/a1 (served)"));

  // Both of the rogue's claims are refused; its stream is served.
  ASSERT_TRUE(h_->WaitAgentConnected("rogue").ok());
  EXPECT_TRUE(wb::testing::WaitFor([&] {
    ProgramResult f = Wbctl({"fleet", "status"});
    return absl::StrContains(f.out, "Refused instance offers (2)");
  }));
  ProgramResult fleet = Wbctl({"fleet", "status"});
  std::printf("$ wbctl fleet status\n%s\n", fleet.out.c_str());
  EXPECT_THAT(fleet.out, HasSubstr("rogue offers hosts: bound to agent"));
  EXPECT_THAT(fleet.out, HasSubstr("rogue offers hosts-new: not bound to any agent"));
  ProgramResult list = Wbctl({"instance", "list"});
  std::printf("$ wbctl instance list\n%s\n", list.out.c_str());
  EXPECT_THAT(list.out, HasSubstr("hosts-new"));

  // Nothing can be routed to the unbound name; the bound one goes to a1.
  ProgramResult refused =
      Wbctl({"decision", "submit", "--instance", "hosts-new", "--operation", "remove_key",
             "--target", "deploy", "--fingerprint", k0_.fingerprint, "--reason", "leaked"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.err, HasSubstr("not bound to any agent"));
  const std::string id = RemoveKey(k0_);
  ASSERT_EQ(WaitState(id, v1::DECISION_STATE_VERIFIED), v1::DECISION_STATE_VERIFIED);
  v1::DecisionView v = Get(id);
  EXPECT_EQ(v.statement().agent_id(), h_->agent_spiffe_id("a1"));
  EXPECT_EQ(v.tasks(0).agent_id(), h_->agent_spiffe_id("a1"));
  EXPECT_EQ(sandbox_.Read("deploy"), absl::StrCat(k1_.line, "\n", kept_.line, "\n"));
  EXPECT_EQ(rogue_box.Read("deploy"), Keys()) << "the rogue was sent nothing";

  // The refusals are in the audit chain and the event feed.
  ProgramResult audit = Wbctl({"audit", "export"});
  EXPECT_THAT(audit.out, HasSubstr("INSTANCE_CLAIM_REFUSED"));
  EXPECT_THAT(audit.out, HasSubstr("INSTANCE_BOUND"));
  ProgramResult events = Wbctl({"events", "tail", "--backlog", "200", "--no-follow"});
  EXPECT_THAT(events.out, HasSubstr("INSTANCE_CLAIM_REFUSED"));

  // An operator's act makes the new instance the rogue's (say it is a new
  // host after all): served at once, without a reconnect.
  bind = Wbctl({"instance", "bind", "hosts-new", "--agent", "rogue"});
  ASSERT_EQ(bind.exit_code, 0) << bind.out << bind.err;
  EXPECT_THAT(bind.out, HasSubstr("(served)"));
}

TEST_F(TruthInstancesBound, RootModeStatementsNameTheAgentAndARebindNeedsApprovals) {
  const auto root = crypto::Ed25519PrivateKey::Generate();
  std::vector<crypto::Ed25519PrivateKey> approvers;
  for (int i = 0; i < 3; ++i) approvers.push_back(crypto::Ed25519PrivateKey::Generate());
  const std::string root_pub = tmp_.Sub("root.pub");
  ASSERT_TRUE(fs::WriteFileAtomic(root_pub, root.public_key().ToPem()).ok());
  auto sign = [&](const std::string& dispatch_pub, const std::string& path) {
    v1::TrustPolicy p = ThreeApproverPolicy(kDomain, 1, dispatch_pub, approvers);
    p.set_require_statement_agent(true);
    auto env = trust::SignPolicy(p, root);
    EXPECT_TRUE(env.ok()) << env.status();
    EXPECT_TRUE(fs::WriteFileAtomic(path, env->SerializeAsString()).ok());
    return path;
  };
  for (int i = 1; i < 3; ++i) {  // alice's and bob's keys, for wbctl
    ASSERT_TRUE(fs::WriteFileAtomic(tmp_.Sub(absl::StrCat("approver", i, ".key")),
                                    approvers[static_cast<size_t>(i)].ToPem())
                    .ok());
  }
  KeysSandbox replacement;
  replacement.Write("deploy", Keys());
  Start([&](Harness::Options& o) {
    o.bind_instances = false;
    o.agents["a2"] = {Instance("hosts", replacement)};  // the replacement host
    o.tweak_agent = [&](v1::AgentConfig& a) {
      const std::string dispatch_pub = a.dispatch_public_key_files(0);
      a.clear_dispatch_public_key_files();
      a.set_trust_root_public_key_file(root_pub);
      a.set_trust_policy_file(sign(dispatch_pub, tmp_.Sub("agent-policy.signed")));
    };
    auto cp = o.tweak_controlplane;
    o.tweak_controlplane = [&, cp](v1::ControlPlaneConfig& c) {
      cp(c);
      std::string pub = c.dispatch_key_file();
      pub.replace(pub.size() - 3, 3, "pub");
      c.set_trust_root_public_key_file(root_pub);
      c.set_trust_policy_file(sign(pub, tmp_.Sub("cp-policy.signed")));
    };
  });
  ASSERT_TRUE(h_->Bind("hosts", "a1").ok());  // the first binding needs no approval
  auto approve = [&](const std::string& id, int approver) {
    ProgramResult r = Wbctl(
        {"decision", "approve", id, "--key", tmp_.Sub(absl::StrCat("approver", approver, ".key"))});
    std::printf("$ wbctl decision approve %s\n%s%s\n", id.c_str(), r.out.c_str(), r.err.c_str());
    return r;
  };
  // What the approver signs names the agent.
  const std::string before = RemoveKey(k0_);
  ProgramResult a = approve(before, 1);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_THAT(a.out, HasSubstr("agent:     " + h_->agent_spiffe_id("a1")));
  ASSERT_EQ(WaitState(before, v1::DECISION_STATE_VERIFIED), v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(sandbox_.Read("deploy"), absl::StrCat(k1_.line, "\n", kept_.line, "\n"));

  // The host is replaced: the rebind waits for approvals; nothing moves.
  const std::string pending = RemoveKey(k1_);  // made (and signed) for a1
  ProgramResult rb =
      Wbctl({"instance", "bind", "hosts", "--agent", "a2", "--reason", "host replaced"});
  ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  std::printf("$ wbctl instance bind hosts --agent a2\n%s\n", rb.out.c_str());
  EXPECT_THAT(rb.out, HasSubstr("nothing changed yet"));
  EXPECT_THAT(rb.out, HasSubstr("0 of 2"));
  for (int i = 1; i < 3; ++i) {
    ProgramResult r = Wbctl(
        {"instance", "approve", "hosts", "--key", tmp_.Sub(absl::StrCat("approver", i, ".key"))});
    std::printf("$ wbctl instance approve hosts (approver %d)\n%s%s\n", i, r.out.c_str(),
                r.err.c_str());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  ProgramResult list = Wbctl({"instance", "list", "-o", "json"});
  auto j = nlohmann::json::parse(list.out);
  ASSERT_EQ(j["instances"].size(), 1u);
  EXPECT_EQ(j["instances"][0]["agent_id"], h_->agent_spiffe_id("a2"));
  EXPECT_EQ(j["instances"][0]["previous_agent_id"], h_->agent_spiffe_id("a1"));
  ProgramResult audit = Wbctl({"audit", "export"});
  EXPECT_THAT(audit.out, HasSubstr("rebound (was " + h_->agent_spiffe_id("a1")));

  // The decision approvers were asked to sign for a1 is never rerouted.
  ProgramResult late = approve(pending, 1);
  EXPECT_NE(late.exit_code, 0);
  EXPECT_THAT(late.err, HasSubstr("submit the decision again for the new agent"));
  // A new one names a2 and is applied there.
  const std::string after = RemoveKey(k1_);
  EXPECT_EQ(Get(after).statement().agent_id(), h_->agent_spiffe_id("a2"));
  ASSERT_EQ(approve(after, 2).exit_code, 0);
  ASSERT_EQ(WaitState(after, v1::DECISION_STATE_VERIFIED), v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(replacement.Read("deploy"), absl::StrCat(k0_.line, "\n", kept_.line, "\n"));
  // The old host's file is untouched by it.
  EXPECT_EQ(sandbox_.Read("deploy"), absl::StrCat(k1_.line, "\n", kept_.line, "\n"));
}

}  // namespace
}  // namespace wb::e2e
