// The air-gap test (issue 9, "Must show"): an agent with no network at all
// applies an exported task bundle and the imported results make the decision
// VERIFIED; tampered, partial, replayed and foreign bundles are refused with
// a clear message, and nothing is applied or recorded from them.
//
// Real pieces: the control plane (in-process harness: RocksDB, mTLS), the
// real `wbctl` binary for `bundle export` / `bundle import`, and the real
// `writeback-agent bundle apply` binary run inside a network namespace that
// has only a loopback interface (`ip netns add wbgap-<random>`, removed at
// the end even on failure), with the ssh_authorized_keys connector on
// sandboxed files. The agent connected once (to register its result key and
// instances), then went off the network for good. Pinned mode (no trust
// root); the bundle code is the same in root mode (agent/bundle).
//
// Needs root and `ip`; skipped otherwise.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/bundle/bundle.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/testing/config_file.h"
#include "common/testing/wait.h"
#include "connectors/testing/servers/process.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"
#include "tests/integration/ssh_test_keys.h"

namespace wb::e2e {
namespace {

std::string IpPath() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/bin/ip"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

using Outcome = connectors::testing::ProgramRun;

Outcome Spawn(const std::vector<std::string>& argv, const std::string& log) {
  return connectors::testing::RunLogged(argv, log);
}

// A network namespace with only loopback (up); deleted by the destructor.
class Netns {
 public:
  explicit Netns(std::string dir) : dir_(std::move(dir)) {
    name_ = absl::StrCat("wbgap-", crypto::HexEncode(crypto::RandomBytes(4)));
    Outcome a = Spawn({IpPath(), "netns", "add", name_}, dir_ + "/ip.log");
    if (a.code != 0) {
      error_ = absl::StrCat("ip netns add: ", a.out);
      name_.clear();
      return;
    }
    Outcome b = Spawn({IpPath(), "netns", "exec", name_, IpPath(), "link", "set", "lo", "up"},
                      dir_ + "/ip.log");
    if (b.code != 0) error_ = absl::StrCat("ip link set lo up: ", b.out);
  }
  ~Netns() {
    if (!name_.empty()) Spawn({IpPath(), "netns", "del", name_}, dir_ + "/ip-del.log");
  }
  const std::string& name() const { return name_; }
  const std::string& error() const { return error_; }
  // `argv` run inside the namespace.
  Outcome Exec(std::vector<std::string> argv, const std::string& log) const {
    std::vector<std::string> full = {IpPath(), "netns", "exec", name_};
    full.insert(full.end(), argv.begin(), argv.end());
    return Spawn(full, log);
  }

 private:
  std::string dir_;
  std::string name_;
  std::string error_;
};

class AirGapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (ip netns)";
    if (IpPath().empty()) GTEST_SKIP() << "needs the ip tool (iproute2)";
    leaked_ = MakeSshKey("ci-deploy-2019");
    kept_ = MakeSshKey("ops@bastion");
    for (const char* u : {"deploy", "backup", "ops"}) {
      ASSERT_TRUE(fs::MakeDirs(absl::StrCat(dir_.path(), "/home/", u, "/.ssh"), 0700).ok());
      ASSERT_TRUE(fs::WriteFileAtomic(Keys(u), Original()).ok());
    }
    auto instance = [&](const std::string& name, const std::string& root) {
      writeback::v1::ConnectorInstanceConfig c;
      c.set_name(name);
      c.set_type("ssh_authorized_keys");
      c.add_allowed_operations("remove_key");
      c.mutable_ssh_authorized_keys()->set_path_template(root +
                                                         "/home/{user}/.ssh/authorized_keys");
      return c;
    };
    Harness::Options o;
    o.agents["gap"] = {instance("plant-ssh", dir_.path())};
    o.agents["other"] = {instance("office-ssh", dir_.Sub("other"))};
    auto h = Harness::Start(o);
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = std::move(*h);
    // The plant agent registered; now it leaves the network for good.
    h_->StopAgent("gap");
    ASSERT_TRUE(wb::testing::WaitFor([&] {
      auto agents = h_->ListAgents();
      if (!agents.ok()) return false;
      for (const auto& a : agents->agents()) {
        if (a.agent_id() == h_->agent_spiffe_id("gap")) return !a.connected();
      }
      return false;
    }));
    wbctl_cfg_ = h_->dir() + "/wbctl.yaml";
    ASSERT_TRUE(h_->WriteWbctlConfig("admin", wbctl_cfg_).ok());
    agent_cfg_ = h_->dir() + "/gap-agent.yaml";
    ASSERT_TRUE(testing::WriteConfigFile(h_->agent_config("gap"), agent_cfg_).ok());
    other_cfg_ = h_->dir() + "/other-agent.yaml";
    writeback::v1::AgentConfig other = h_->agent_config("other");
    other.set_data_dir(h_->dir() + "/other-offline");  // its daemon holds its own journal
    ASSERT_TRUE(testing::WriteConfigFile(other, other_cfg_).ok());
  }

  std::string Original() const { return absl::StrCat(kept_.line, "\n", leaked_.line, "\n"); }
  std::string Keys(const std::string& u) const {
    return absl::StrCat(dir_.path(), "/home/", u, "/.ssh/authorized_keys");
  }
  std::string KeysNow(const std::string& u) const { return *fs::ReadFile(Keys(u)); }
  std::string F(const std::string& name) const { return h_->dir() + "/" + name; }

  Outcome Wbctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {WBCTL_PATH, "--config", wbctl_cfg_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Spawn(argv, F("wbctl.log"));
  }
  Outcome Apply(const Netns& ns, const std::string& bundle, const std::string& out,
                const std::string& cfg) {
    return ns.Exec({WB_AGENT_BINARY, "bundle", "apply", bundle, "--out", out, "--config", cfg},
                   F("apply.log"));
  }
  uint64_t AuditHead() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    writeback::v1::VerifyAuditResponse resp;
    EXPECT_TRUE(h_->admin().VerifyAudit(&ctx, {}, &resp).ok());
    return resp.head_seq();
  }
  writeback::v1::DecisionState State(const std::string& id) {
    auto v = h_->Get(id);
    EXPECT_TRUE(v.ok());
    return v.ok() ? v->state() : writeback::v1::DECISION_STATE_UNSPECIFIED;
  }

  wb::testing::TempDir dir_;
  SshTestKey leaked_, kept_;
  std::unique_ptr<Harness> h_;
  std::string wbctl_cfg_, agent_cfg_, other_cfg_;
};

void ExpectRefused(const Outcome& r, const std::string& words, const std::string& what) {
  EXPECT_NE(r.code, 0) << what << ": " << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, words)) << what << ": expected '" << words << "' in:\n"
                                               << r.out;
  std::printf("airgap: %s refused: %s", what.c_str(), r.out.c_str());
  if (!r.out.empty() && r.out.back() != '\n') std::printf("\n");
}

TEST_F(AirGapTest, BundleAppliedWithoutNetworkMakesTheDecisionVerified) {
  Netns ns(h_->dir());
  ASSERT_TRUE(ns.error().empty()) << ns.error();
  // The agent's world: loopback only, and no route anywhere.
  Outcome links = ns.Exec({IpPath(), "-o", "link", "show"}, F("links.log"));
  ASSERT_EQ(links.code, 0) << links.out;
  EXPECT_TRUE(absl::StrContains(links.out, ": lo:")) << links.out;
  EXPECT_EQ(std::count(links.out.begin(), links.out.end(), '\n'), 1) << links.out;
  Outcome away = ns.Exec({IpPath(), "route", "get", "10.1.2.3"}, F("route2.log"));
  EXPECT_NE(away.code, 0) << "the namespace must have no route off the host: " << away.out;
  std::printf("airgap: namespace %s: links: %s", ns.name().c_str(), links.out.c_str());
  std::printf("airgap: route to 10.1.2.3 from inside: %s", away.out.c_str());

  auto sub = h_->Submit(SshRemoveKeySpec("plant-ssh", {"deploy", "backup"}, leaked_.fingerprint));
  ASSERT_TRUE(sub.ok()) << sub.status();
  const std::string id = sub->decision_id();
  EXPECT_EQ(State(id), writeback::v1::DECISION_STATE_DISPATCHED);

  // ---- Export (operator, at the control plane). ----
  const std::string tasks = F("tasks.bundle");
  Outcome ex = Wbctl({"bundle", "export", "--agent", "gap", "--out", tasks, "--trip", "2h"});
  ASSERT_EQ(ex.code, 0) << ex.out;
  std::printf("airgap: wbctl bundle export:\n%s", ex.out.c_str());
  auto bundle = bundle::ReadTaskBundleFile(tasks);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  ASSERT_EQ(bundle->tasks_size(), 2);

  // ---- Exported tasks are never sent online. The agent comes back on the
  // network for a moment: a decision submitted AFTER the export reaches it
  // over its stream and is VERIFIED, while the exported tasks, ahead of it in
  // its outbox, stay QUEUED and untouched. ----
  {
    ASSERT_TRUE(h_->StartAgent("gap").ok());
    ASSERT_TRUE(h_->WaitAgentConnected("gap").ok());
    auto online = h_->Submit(SshRemoveKeySpec("plant-ssh", {"ops"}, leaked_.fingerprint));
    ASSERT_TRUE(online.ok()) << online.status();
    auto v = h_->WaitTerminal(online->decision_id());
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->state(), writeback::v1::DECISION_STATE_VERIFIED);
    auto exported = h_->Get(id);
    ASSERT_TRUE(exported.ok());
    for (const auto& t : exported->tasks()) {
      EXPECT_EQ(t.state(), writeback::v1::TASK_STATE_QUEUED) << t.task_id() << " was sent online";
      EXPECT_EQ(t.delivery_attempts(), 0u);
    }
    EXPECT_EQ(KeysNow("deploy"), Original());
    EXPECT_EQ(KeysNow("ops"), absl::StrCat(kept_.line, "\n"));
    std::printf(
        "airgap: online decision %s VERIFIED over the stream; the 2 exported tasks stayed "
        "QUEUED\n",
        online->decision_id().c_str());
    h_->StopAgent("gap");  // off the network again (and its journal is free)
  }

  // ---- Damaged bundles are refused on the agent; nothing is applied. ----
  {
    auto removed = *bundle;
    removed.mutable_tasks()->RemoveLast();
    ASSERT_TRUE(fs::WriteFileAtomic(F("removed.bundle"), removed.SerializeAsString()).ok());
    ExpectRefused(Apply(ns, F("removed.bundle"), F("r1.bundle"), agent_cfg_), "a task was removed",
                  "bundle with one task removed");
    auto altered = *bundle;
    writeback::v1::Task t;
    ASSERT_TRUE(t.ParseFromString(altered.tasks(1).payload()));
    t.set_expires_at_unix_ms(t.expires_at_unix_ms() + 3'600'000);  // a longer trip
    altered.mutable_tasks(1)->set_payload(t.SerializeAsString());
    ASSERT_TRUE(fs::WriteFileAtomic(F("altered.bundle"), altered.SerializeAsString()).ok());
    ExpectRefused(Apply(ns, F("altered.bundle"), F("r2.bundle"), agent_cfg_),
                  "is not the one the manifest lists", "bundle with one task altered");
    ExpectRefused(Apply(ns, tasks, F("r3.bundle"), other_cfg_), "not for this agent",
                  "bundle applied by another agent");
    EXPECT_EQ(KeysNow("deploy"), Original());
    EXPECT_EQ(KeysNow("backup"), Original());
    EXPECT_FALSE(fs::ReadFile(F("r1.bundle")).ok());
  }

  // ---- Apply (operator at the site, no network). ----
  const std::string results = F("results.bundle");
  const absl::Time t0 = absl::Now();
  Outcome ap = Apply(ns, tasks, results, agent_cfg_);
  ASSERT_EQ(ap.code, 0) << ap.out;
  std::printf("airgap: writeback-agent bundle apply (in %s, %lld ms):\n%s", ns.name().c_str(),
              static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - t0)), ap.out.c_str());
  EXPECT_TRUE(absl::StrContains(ap.out, "VERIFIED")) << ap.out;
  EXPECT_EQ(KeysNow("deploy"), absl::StrCat(kept_.line, "\n"));
  EXPECT_EQ(KeysNow("backup"), absl::StrCat(kept_.line, "\n"));

  // ---- Refused result bundles record nothing. ----
  const uint64_t head = AuditHead();
  {
    // Another agent answering this bundle with its own key.
    auto key = crypto::Ed25519PrivateKey::LoadFile(h_->pki().agent_result_key_file("other"));
    ASSERT_TRUE(key.ok());
    auto mine = bundle::ReadResultBundleFile(results);
    ASSERT_TRUE(mine.ok());
    writeback::v1::ResultBundle rb;
    ASSERT_TRUE(rb.ParseFromString(mine->bundle().payload()));
    writeback::v1::BundleManifest m;
    ASSERT_TRUE(m.ParseFromString(rb.manifest().payload()));
    std::vector<writeback::v1::SignedEnvelope> forged;
    for (const auto& r : rb.results()) {
      writeback::v1::Result res;
      ASSERT_TRUE(res.ParseFromString(r.payload()));
      res.set_agent_id(h_->agent_spiffe_id("other"));
      forged.push_back(
          envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT, res.SerializeAsString(), *key));
    }
    auto theirs = bundle::MakeResultBundle(h_->agent_spiffe_id("other"), rb.manifest(), m,
                                           std::move(forged), 1, *key);
    ASSERT_TRUE(fs::WriteFileAtomic(F("other.bundle"), theirs.SerializeAsString()).ok());
    ExpectRefused(Wbctl({"bundle", "import", F("other.bundle")}),
                  absl::StrCat("was exported to agent ", h_->agent_spiffe_id("gap"), ", not to ",
                               h_->agent_spiffe_id("other")),
                  "result bundle from another agent");
    // Tampered on the way back: one byte of the signed results.
    auto tampered = *mine;
    auto* p = tampered.mutable_bundle()->mutable_payload();
    (*p)[p->size() / 2] ^= 1;
    ASSERT_TRUE(fs::WriteFileAtomic(F("tampered.bundle"), tampered.SerializeAsString()).ok());
    ExpectRefused(Wbctl({"bundle", "import", F("tampered.bundle")}), "tampered with",
                  "tampered result bundle");
    // The task bundle brought back by mistake.
    ExpectRefused(Wbctl({"bundle", "import", tasks}), "is a task bundle, not a result bundle",
                  "task bundle given to import");
  }
  EXPECT_EQ(AuditHead(), head) << "a refused import was recorded";
  EXPECT_EQ(State(id), writeback::v1::DECISION_STATE_DISPATCHED);

  // ---- Import (operator, back at the control plane). ----
  Outcome im = Wbctl({"bundle", "import", results});
  ASSERT_EQ(im.code, 0) << im.out;
  std::printf("airgap: wbctl bundle import:\n%s", im.out.c_str());
  auto view = h_->Get(id);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->state(), writeback::v1::DECISION_STATE_VERIFIED) << view->DebugString();
  for (const auto& t : view->tasks()) {
    EXPECT_EQ(t.outcome(), writeback::v1::OUTCOME_VERIFIED);
    EXPECT_GT(t.verification().after_size(), 0) << "evidence travels with the result";
  }
  std::printf("airgap: decision %s: %s (%s)\n", id.c_str(),
              writeback::v1::DecisionState_Name(view->state()).c_str(),
              view->state_detail().c_str());

  // ---- Replayed after import: refused, nothing recorded. ----
  const uint64_t after = AuditHead();
  ExpectRefused(Wbctl({"bundle", "import", results}), "was already imported",
                "result bundle replayed after import");
  EXPECT_EQ(AuditHead(), after);
  // And the task bundle applied again only returns the stored results.
  Outcome again = Apply(ns, tasks, F("results-again.bundle"), agent_cfg_);
  EXPECT_EQ(again.code, 0) << again.out;
  EXPECT_TRUE(absl::StrContains(again.out, "stored result of an earlier run")) << again.out;
  EXPECT_EQ(KeysNow("deploy"), absl::StrCat(kept_.line, "\n"));
}

}  // namespace
}  // namespace wb::e2e
