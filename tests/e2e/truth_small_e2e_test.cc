// Issue 15, section 6: "smaller lies and leaks found the same way". Each test
// replays the old sequence with real pieces — the control plane (in-process
// harness: RocksDB, mTLS), real agents with real connectors (in-process, or
// the real writeback-agent binary), the real wbctl binary for what the
// operator reads — and asserts what is true on the target now.
//
//   IniKeyWithColon                   remove_ini_key db:password used to be
//                                     VERIFIED ("nothing to change") while the
//                                     line stayed
//   InjectedResultsDoNotPileUp        refusals of task ids injected on the way
//                                     stayed in the agent's outbox for ever
//   RefusalWithoutPolicyReachesOperator  an agent without a trust policy
//                                     refused with no task id: DISPATCHED for ever
//   ControlPlaneMessageShown          a ban, an instance conflict, a changed
//                                     key showed as CANCELLED on the agent
//   DisplaySafety                     bidi/zero-width/C1 text accepted and
//                                     printed raw; invalid UTF-8 in a flag
//                                     gave "wbctl: " and exit 1
//
// `ctest -R Truth` runs them.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/agent.h"
#include "agent/relay/relay.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/testing/config_file.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "common/trust/policy.h"
#include "connectors/registry.h"
#include "connectors/testing/servers/process.h"
#include "controlplane/dispatch/dispatcher.h"
#include "controlplane/metrics/exposition.h"
#include "controlplane/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/harness.h"
#include "tests/e2e/trust_fixture.h"
#include "tests/integration/ssh_test_keys.h"

namespace wb::e2e {
namespace {

using connectors::testing::ChildProcess;
using connectors::testing::SpawnOptions;
using ::testing::HasSubstr;
using ::testing::Not;
using writeback::v1::DecisionState_Name;

constexpr char kDomain[] = "writeback.test";
// The characters of the display-safety sequence, as UTF-8.
constexpr char kRlo[] = "\u202E";            // right-to-left override
constexpr char kZwsp[] = "\u200B";           // zero width space
constexpr char kCsi[] = "\xC2\x9B";          // C1 control: CSI
constexpr char kTag[] = "\xF3\xA0\x80\x81";  // U+E0001 language tag (invisible)

using Ran = connectors::testing::ProgramRun;

// Runs a program (no shell) to completion; its output is kept in `log`.
Ran RunProgram(const std::vector<std::string>& argv, const std::string& log) {
  return connectors::testing::RunLogged(argv, log);
}

// No raw byte sequence of `chars` in `out` (wbctl printed them escaped).
void ExpectNoRaw(const std::string& out, const std::string& what) {
  for (const char* raw : {kRlo, kZwsp, kCsi, kTag, "\x1b"}) {
    EXPECT_THAT(out, Not(HasSubstr(raw))) << what << " printed a raw unsafe character:\n" << out;
  }
}

bool PollUntil(const std::function<bool()>& f, absl::Duration timeout = absl::Seconds(60)) {
  return wb::testing::WaitFor(f, std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)),
                              std::chrono::milliseconds(20));
}

writeback::v1::ConnectorInstanceConfig SshInstance(const std::string& name,
                                                   const std::string& dir) {
  writeback::v1::ConnectorInstanceConfig c;
  c.set_name(name);
  c.set_type("ssh_authorized_keys");
  c.add_allowed_operations("remove_key");
  c.mutable_ssh_authorized_keys()->set_path_template(dir + "/home/{user}/.ssh/authorized_keys");
  return c;
}

writeback::v1::ConnectorInstanceConfig FilesInstance(const std::string& name,
                                                     const std::string& root) {
  writeback::v1::ConnectorInstanceConfig c;
  c.set_name(name);
  c.set_type("secret_file");
  for (const char* op : {"remove_env_key", "remove_ini_key", "remove_ini_section"}) {
    c.add_allowed_operations(op);
  }
  c.mutable_secret_file()->add_allowed_roots(root);
  return c;
}

class TruthSmallerLies : public ::testing::Test {
 protected:
  // A wbctl config for operator `name` (created in the harness's PKI).
  std::string WbctlConfig(const std::string& name) {
    if (auto it = wbctl_configs_.find(name); it != wbctl_configs_.end()) return it->second;
    const std::string path = h_->dir() + "/wbctl-" + name + ".yaml";
    EXPECT_TRUE(h_->WriteWbctlConfig(name, path).ok());
    wbctl_configs_[name] = path;
    return path;
  }
  Ran Wbctl(const std::vector<std::string>& args, const std::string& as = "admin") {
    std::vector<std::string> argv = {WBCTL_PATH, "--config", WbctlConfig(as)};
    argv.insert(argv.end(), args.begin(), args.end());
    Ran r = RunProgram(argv, h_->dir() + "/wbctl.log");
    std::printf("$ wbctl%s\n%s",
                absl::StrJoin(args, "",
                              [](std::string* o, const std::string& a) {
                                absl::StrAppend(o, " ", text_for_log(a));
                              })
                    .c_str(),
                r.out.c_str());
    return r;
  }
  // An argument as the log above shows it (the test's own output is read on
  // a terminal too).
  static std::string text_for_log(const std::string& a) {
    std::string out;
    for (unsigned char c : a) {
      if (c < 0x20 || c >= 0x7f) {
        absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
    return out;
  }
  // `writeback-agent status --config FILE [--metrics]` (the real binary).
  Ran AgentStatus(const std::string& config, bool metrics = false) {
    std::vector<std::string> argv = {WB_AGENT_BINARY, "status", "--config", config};
    if (metrics) argv.push_back("--metrics");
    return RunProgram(argv, config + ".status.log");
  }
  std::string WriteAgentConfig(const writeback::v1::AgentConfig& cfg, const std::string& name) {
    const std::string path = h_->dir() + "/" + name + ".yaml";
    EXPECT_TRUE(wb::testing::WriteConfigFile(cfg, path).ok());
    return path;
  }
  std::unique_ptr<agent::Agent> StartAgent(const writeback::v1::AgentConfig& cfg) {
    auto a = agent::Agent::Create(cfg, registry());
    EXPECT_TRUE(a.ok()) << a.status();
    if (!a.ok()) return nullptr;
    EXPECT_TRUE((*a)->Start().ok());
    return *std::move(a);
  }
  connectors::Registry& registry() {
    if (registry_ == nullptr) {
      registry_ = std::make_unique<connectors::Registry>();
      connectors::RegisterBuiltinConnectors(*registry_);
    }
    return *registry_;
  }
  bool Connected(const std::string& id) {
    auto agents = h_->ListAgents();
    if (!agents.ok()) return false;
    for (const auto& a : agents->agents()) {
      if (a.agent_id() == h_->agent_spiffe_id(id)) return a.connected();
    }
    return false;
  }
  void PlantKeys(const std::string& dir, const std::vector<std::string>& users,
                 const SshTestKey& key) {
    for (const auto& u : users) {
      ASSERT_TRUE(fs::MakeDirs(dir + "/home/" + u + "/.ssh", 0700).ok());
      ASSERT_TRUE(
          fs::WriteFileAtomic(dir + "/home/" + u + "/.ssh/authorized_keys", key.line + "\n").ok());
    }
  }

  wb::testing::TempDir dir_;
  std::unique_ptr<Harness> h_;
  std::unique_ptr<connectors::Registry> registry_;
  std::map<std::string, std::string> wbctl_configs_;
};

// ---------------------------------------------------------------- 1

// Old: "db:password = hunter2" never matched key "db:password", so
// remove_ini_key reported VERIFIED ("nothing to change") and the line stayed.
// Now: the key, which no INI line can carry (configparser reads the key
// "db"), is refused at submit naming the field — by wbctl and by the
// control plane — and removing the key the file really has makes the line
// go, VERIFIED, as Python's configparser itself confirms.
TEST_F(TruthSmallerLies, IniKeyWithColon) {
  const std::string root = dir_.Sub("srv");
  ASSERT_TRUE(fs::MakeDirs(root, 0755).ok());
  const std::string ini = root + "/app.ini";
  const std::string original = "[prod]\ndb:password = hunter2\nuser = app\n";
  ASSERT_TRUE(fs::WriteFileAtomic(ini, original).ok());
  Harness::Options o;
  o.agents["a1"] = {FilesInstance("app-secrets", root)};
  auto h = Harness::Start(o);
  ASSERT_TRUE(h.ok()) << h.status();
  h_ = *std::move(h);

  writeback::v1::DecisionSpec spec;
  spec.set_connector_instance("app-secrets");
  spec.set_operation("remove_ini_key");
  spec.mutable_params()->mutable_secret_file()->set_section("prod");
  spec.mutable_params()->mutable_secret_file()->set_key("db:password");
  spec.add_targets()->set_object(ini);
  spec.set_reason("leaked database password");
  spec.set_reference("INC-15");

  // The old sequence, through the API (an upstream review tool)...
  auto refused = h_->Submit(spec);
  ASSERT_FALSE(refused.ok()) << "a key no INI line can carry was accepted";
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("spec.params.secret_file.key: 'db:password' cannot be an INI key"));
  EXPECT_THAT(refused.status().message(), HasSubstr("holds the key 'db'"));
  // ...and through wbctl.
  const std::string spec_file = h_->dir() + "/spec.yaml";
  ASSERT_TRUE(wb::testing::WriteConfigFile(spec, spec_file).ok());
  Ran w = Wbctl({"decision", "submit", "-f", spec_file});
  EXPECT_EQ(w.code, 2) << w.out;
  EXPECT_THAT(w.out, HasSubstr("spec.params.secret_file.key"));
  auto list = [&] {
    grpc::ClientContext ctx;
    writeback::v1::ListDecisionsResponse resp;
    EXPECT_TRUE(h_->admin().ListDecisions(&ctx, {}, &resp).ok());
    return resp.decisions_size();
  };
  EXPECT_EQ(list(), 0) << "a refused decision was stored";
  EXPECT_EQ(*fs::ReadFile(ini), original);

  // The truth: the line holds the key "db".
  spec.mutable_params()->mutable_secret_file()->set_key("db");
  auto r = h_->Submit(spec);
  ASSERT_TRUE(r.ok()) << r.status();
  auto v = h_->WaitTerminal(r->decision_id());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(DecisionState_Name(v->state()), "DECISION_STATE_VERIFIED") << v->state_detail();
  const std::string after = *fs::ReadFile(ini);
  EXPECT_EQ(after, "[prod]\nuser = app\n");
  EXPECT_THAT(after, Not(HasSubstr("hunter2")));
  Ran get = Wbctl({"decision", "get", r->decision_id()});
  EXPECT_EQ(get.code, 0);
  EXPECT_THAT(get.out, HasSubstr("VERIFIED"));
  EXPECT_THAT(get.out, HasSubstr("db in [prod] at line 2"));

  // Python's configparser (how the AWS SDKs and most Python programs read
  // INI files) agrees on both files.
  if (::access("/usr/bin/python3", X_OK) == 0) {
    const std::string py = h_->dir() + "/read.py";
    ASSERT_TRUE(fs::WriteFileAtomic(py,
                                    "import configparser, sys\n"
                                    "c = configparser.RawConfigParser()\n"
                                    "c.read_string(sys.argv[1])\n"
                                    "print(sorted(c['prod'].keys()))\n")
                    .ok());
    Ran before = RunProgram({"/usr/bin/python3", py, original}, h_->dir() + "/py1.log");
    EXPECT_EQ(before.out, "['db', 'user']\n");
    Ran now = RunProgram({"/usr/bin/python3", py, after}, h_->dir() + "/py2.log");
    EXPECT_EQ(now.out, "['user']\n");
    std::printf("configparser: before %s         after  %s", before.out.c_str(), now.out.c_str());
  }
}

// ---------------------------------------------------------------- 2

// Old: a relay (or anything on the path) that made up task ids got the
// agent to refuse them; the control plane answered "unknown task", and the
// agent kept the refusals and sent them again on every connection, for ever.
// Now: what the control plane says it does not know is dropped and counted
// (writeback-agent status --metrics); after a reconnection nothing is sent
// again and the real tasks still complete.
TEST_F(TruthSmallerLies, InjectedResultsDoNotPileUp) {
  const SshTestKey key = MakeSshKey("leaked@ci");
  const std::string keys = dir_.Sub("a1");
  PlantKeys(keys, {"u1", "u2", "u3"}, key);
  Harness::Options o;
  o.agents["dmz"] = {SshInstance("ssh-dmz", dir_.Sub("dmz"))};
  o.agents["a1"] = {SshInstance("ssh-a1", keys)};
  auto h = Harness::Start(o);
  ASSERT_TRUE(h.ok()) << h.status();
  h_ = *std::move(h);
  // a1 registered directly; from now on it connects through dmz's relay,
  // which replaces the first three tasks by tasks with made-up ids.
  h_->StopAgent("a1");
  constexpr int kInjected = 3;
  std::atomic<int> injected{0};
  writeback::v1::AgentConfig relay_cfg = h_->agent_config("dmz");
  relay_cfg.mutable_relay()->set_listen_address("127.0.0.1:0");
  auto ro = agent::RelayOptionsFromConfig(relay_cfg);
  ASSERT_TRUE(ro.ok()) << ro.status();
  ro->tamper_for_test = [&](writeback::v1::ControlMessage& m) {
    if (!m.has_task() || injected.load() >= kInjected) return;
    writeback::v1::Task t;
    if (!t.ParseFromString(m.task().payload())) return;
    t.set_task_id(absl::StrCat("injected-", injected.fetch_add(1) + 1));
    m.mutable_task()->set_payload(t.SerializeAsString());
  };
  auto relay = agent::Relay::Start(*std::move(ro));
  ASSERT_TRUE(relay.ok()) << relay.status();
  writeback::v1::AgentConfig cfg = h_->agent_config("a1");
  cfg.set_controlplane_address(absl::StrCat("127.0.0.1:", (*relay)->port()));
  cfg.set_controlplane_id(h_->agent_spiffe_id("dmz"));
  const std::string cfg_file = WriteAgentConfig(cfg, "a1-relayed");
  auto a1 = StartAgent(cfg);
  ASSERT_NE(a1, nullptr);
  ASSERT_TRUE(PollUntil([&] { return a1->connected(); })) << "a1 did not connect through dmz";

  auto r = h_->Submit(SshRemoveKeySpec("ssh-a1", {"u1", "u2", "u3"}, key.fingerprint));
  ASSERT_TRUE(r.ok()) << r.status();
  auto& d = h_->controlplane()->dispatcher();
  ASSERT_TRUE(PollUntil([&] {
    auto n = a1->unacknowledged_results();
    return a1->results_dropped_unknown_task() >= kInjected && n.ok() && *n == 0;
  })) << "dropped "
      << a1->results_dropped_unknown_task() << ", outbox "
      << a1->unacknowledged_results().value_or(999);
  EXPECT_EQ(injected.load(), kInjected);
  EXPECT_EQ(a1->results_dropped_unknown_task(), static_cast<uint64_t>(kInjected));
  const uint64_t refused_by_cp = d.rejected_results();
  EXPECT_GE(refused_by_cp, static_cast<uint64_t>(kInjected));

  // The counter, as an operator's monitoring reads it.
  ASSERT_TRUE(PollUntil([&] {
    auto st = agent::Agent::ReadStatusFile(cfg);
    return st.ok() && st->results_dropped_unknown_task_total() == kInjected;
  }));
  Ran m = AgentStatus(cfg_file, /*metrics=*/true);
  ASSERT_EQ(m.code, 0) << m.out;
  auto samples = controlplane::exposition::Parse(m.out);
  ASSERT_TRUE(samples.ok()) << samples.status() << "\n" << m.out;
  EXPECT_EQ((*samples)["writeback_agent_results_dropped_total{reason=\"unknown_task\"}"],
            kInjected);
  EXPECT_EQ((*samples)["writeback_agent_results_dropped_total{reason=\"outbox_bound\"}"], 0);
  EXPECT_EQ((*samples)["writeback_agent_outbox_results"], 0);
  std::printf("writeback-agent status --metrics:\n%s", m.out.c_str());

  // The old sequence went on: every reconnection sent them all again.
  a1.reset();
  a1 = StartAgent(cfg);
  ASSERT_NE(a1, nullptr);
  auto v = h_->WaitTerminal(r->decision_id());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(DecisionState_Name(v->state()), "DECISION_STATE_VERIFIED") << v->state_detail();
  ASSERT_TRUE(PollUntil([&] {
    auto n = a1->unacknowledged_results();
    return n.ok() && *n == 0;
  }));
  EXPECT_EQ(d.rejected_results(), refused_by_cp) << "results were sent again after reconnecting";
  EXPECT_EQ(a1->results_refused(), 0u);
  Ran s = AgentStatus(cfg_file);
  EXPECT_EQ(s.code, 0) << s.out;
  EXPECT_THAT(s.out, HasSubstr("results: 0 waiting in the outbox"));
  std::printf(
      "injected %d task ids: %d refusals dropped by the agent, %llu refused by the "
      "control plane in all, none sent again; decision VERIFIED\n",
      kInjected, kInjected, static_cast<unsigned long long>(refused_by_cp));
  a1.reset();
  (*relay)->Stop();
}

// ---------------------------------------------------------------- 3

// Old: an agent that pins a trust root but holds no policy yet refused the
// task with an empty task_id; the control plane could not record it, and
// the decision sat DISPATCHED with no reason. Now the refusal carries the
// task's id: the task is REJECTED (UNKNOWN_KEY) with the agent's reason, the
// decision FAILED, and wbctl shows both.
TEST_F(TruthSmallerLies, RefusalWithoutPolicyReachesOperator) {
  const SshTestKey key = MakeSshKey("leaked@ci");
  const std::string keys = dir_.Sub("a1");
  PlantKeys(keys, {"deploy"}, key);
  const auto root = crypto::Ed25519PrivateKey::Generate();
  const std::string root_pub = dir_.Sub("root.pub");
  ASSERT_TRUE(fs::WriteFileAtomic(root_pub, root.public_key().ToPem()).ok());
  Harness::Options o;
  o.agents["a1"] = {SshInstance("ssh-main", keys)};
  // The agent pins a root; the control plane has none, so no policy is ever
  // sent (a new user's first set-up).
  o.tweak_agent = [&](writeback::v1::AgentConfig& a) {
    a.clear_dispatch_public_key_files();
    a.set_trust_root_public_key_file(root_pub);
  };
  auto h = Harness::Start(o);
  ASSERT_TRUE(h.ok()) << h.status();
  h_ = *std::move(h);
  EXPECT_FALSE(h_->agent("a1")->trust_ready());

  auto r = h_->Submit(SshRemoveKeySpec("ssh-main", {"deploy"}, key.fingerprint));
  ASSERT_TRUE(r.ok()) << r.status();
  auto v = h_->WaitTerminal(r->decision_id(), absl::Seconds(30));
  ASSERT_TRUE(v.ok()) << v.status() << " (the old sequence: DISPATCHED with no reason)";
  EXPECT_EQ(DecisionState_Name(v->state()), "DECISION_STATE_FAILED");
  EXPECT_EQ(v->state_detail(), "1 of 1 tasks rejected");
  ASSERT_EQ(v->tasks_size(), 1);
  const auto& t = v->tasks(0);
  EXPECT_EQ(writeback::v1::TaskState_Name(t.state()), "TASK_STATE_REJECTED");
  EXPECT_EQ(writeback::v1::RejectReason_Name(t.reject_reason()), "REJECT_REASON_UNKNOWN_KEY");
  EXPECT_THAT(t.message(), HasSubstr("no trust policy received yet"));
  EXPECT_THAT(*fs::ReadFile(keys + "/home/deploy/.ssh/authorized_keys"), HasSubstr(key.line))
      << "nothing may change on a refused task";

  Ran get = Wbctl({"decision", "get", r->decision_id()});
  EXPECT_EQ(get.code, 0) << get.out;
  for (const std::string& want :
       {std::string("FAILED (1 of 1 tasks rejected)"), absl::StrCat("Task 1: ", t.task_id()),
        std::string("REJECTED"), std::string("UNKNOWN_KEY"),
        std::string("no trust policy received yet")}) {
    EXPECT_THAT(get.out, HasSubstr(want));
  }
  Ran tail = Wbctl({"events", "tail", "--no-follow", "--decision", r->decision_id()});
  EXPECT_EQ(tail.code, 0) << tail.out;
  EXPECT_THAT(tail.out, HasSubstr("reason=UNKNOWN_KEY"));
}

// ---------------------------------------------------------------- 4

// Old: the agent cancelled its stream before reading the control plane's
// status, so a ban, an instance served by another agent or a changed result
// key all showed as CANCELLED. Now the real writeback-agent logs the control
// plane's own code and message and `writeback-agent status` shows them (an
// instance bound to another agent is refused on its own: the Welcome lists
// it, and the stream serves the rest).
TEST_F(TruthSmallerLies, ControlPlaneMessageShown) {
  Harness::Options o;
  o.agents["a1"] = {SshInstance("ssh-a1", dir_.Sub("a1"))};
  o.agents["a2"] = {SshInstance("ssh-a2", dir_.Sub("a2"))};
  o.agents["a3"] = {SshInstance("ssh-a3", dir_.Sub("a3"))};
  o.agents["relay"] = {};
  auto h = Harness::Start(o);
  ASSERT_TRUE(h.ok()) << h.status();
  h_ = *std::move(h);
  std::vector<std::unique_ptr<ChildProcess>> daemons;
  auto run_agent = [&](const std::string& name, const writeback::v1::AgentConfig& cfg) {
    const std::string file = WriteAgentConfig(cfg, name);
    SpawnOptions so;
    so.argv = {WB_AGENT_BINARY, "run", "--config", file};
    so.log_file = h_->dir() + "/" + name + ".log";
    auto c = ChildProcess::Spawn(so);
    EXPECT_TRUE(c.ok()) << c.status();
    if (c.ok()) daemons.push_back(std::make_unique<ChildProcess>(*std::move(c)));
    return file;
  };
  // Waits for `writeback-agent status` to say NOT READY with `words`, and
  // for the daemon's log to carry them; neither may say CANCELLED.
  auto expect_shown = [&](const std::string& name, const std::string& cfg_file,
                          const std::string& code, const std::string& words) {
    Ran s;
    EXPECT_TRUE(PollUntil([&] {
      s = AgentStatus(cfg_file);
      return absl::StrContains(s.out, words);
    })) << name
        << ": writeback-agent status never said '" << words << "':\n"
        << s.out;
    EXPECT_EQ(s.code, 1) << s.out;
    EXPECT_THAT(s.out, HasSubstr(absl::StrCat("NOT READY: the control plane refused this agent's "
                                              "stream at ")));
    EXPECT_THAT(s.out, HasSubstr(absl::StrCat(code, ": ", words)));
    EXPECT_THAT(s.out, Not(HasSubstr("CANCELLED")));
    const std::string log = connectors::testing::ReadFileOrEmpty(h_->dir() + "/" + name + ".log");
    EXPECT_THAT(log, HasSubstr(absl::StrCat("code=", code, " message=", words))) << log;
    EXPECT_THAT(log, Not(HasSubstr("CANCELLED"))) << log;
    std::printf("%s: writeback-agent status:\n%s", name.c_str(), s.out.c_str());
  };

  // A ban of a running agent (the real binary).
  h_->StopAgent("a1");
  const std::string a1_file = run_agent("a1", h_->agent_config("a1"));
  ASSERT_TRUE(PollUntil([&] { return Connected("a1"); })) << "the a1 daemon did not connect";
  {
    grpc::ClientContext ctx;
    writeback::v1::BanAgentRequest req;
    req.set_agent_id("a1");
    req.set_reason("host compromised, INC-15");
    writeback::v1::BanAgentResponse resp;
    ASSERT_TRUE(h_->admin().BanAgent(&ctx, req, &resp).ok());
  }
  expect_shown("a1", a1_file, "PERMISSION_DENIED",
               absl::StrCat("agent ", h_->agent_spiffe_id("a1"), " is banned"));

  // An instance bound to another agent: the stream is served, that
  // instance is not, and the agent says so with the control plane's words.
  h_->StopAgent("a2");
  writeback::v1::AgentConfig a2 = h_->agent_config("a2");
  *a2.add_connectors() = SshInstance("ssh-a3", dir_.Sub("a2-copy"));
  const std::string a2_file = run_agent("a2", a2);
  {
    const std::string words = absl::StrCat("refused by the control plane: ssh-a3: bound to agent ",
                                           h_->agent_spiffe_id("a3"));
    Ran s;
    EXPECT_TRUE(PollUntil([&] {
      s = AgentStatus(a2_file);
      return absl::StrContains(s.out, words);
    })) << s.out;
    EXPECT_EQ(s.code, 1) << s.out;
    EXPECT_THAT(s.out, HasSubstr("NOT READY: the control plane does not route 1 configured"));
    EXPECT_THAT(s.out, Not(HasSubstr("CANCELLED")));
    const std::string log = connectors::testing::ReadFileOrEmpty(h_->dir() + "/a2.log");
    EXPECT_THAT(log, HasSubstr("the control plane does not route this instance to this agent"))
        << log;
    std::printf("a2: writeback-agent status:\n%s", s.out.c_str());
  }

  // A result key that is not the one registered.
  h_->StopAgent("a3");
  writeback::v1::AgentConfig a3 = h_->agent_config("a3");
  a3.set_result_key_file(h_->dir() + "/a3-new-result.key");
  ASSERT_TRUE(crypto::Ed25519PrivateKey::Generate().SaveFile(a3.result_key_file()).ok());
  const std::string a3_file = run_agent("a3", a3);
  expect_shown("a3", a3_file, "PERMISSION_DENIED", "result key changed");

  // The banned agent again, through a relay: the relay hands the control
  // plane's answer on instead of a cancelled call.
  writeback::v1::AgentConfig rc = h_->agent_config("relay");
  rc.mutable_relay()->set_listen_address("127.0.0.1:0");
  auto ro = agent::RelayOptionsFromConfig(rc);
  ASSERT_TRUE(ro.ok()) << ro.status();
  auto relay = agent::Relay::Start(*std::move(ro));
  ASSERT_TRUE(relay.ok()) << relay.status();
  writeback::v1::AgentConfig via = h_->agent_config("a1");
  via.set_controlplane_address(absl::StrCat("127.0.0.1:", (*relay)->port()));
  via.set_controlplane_id(h_->agent_spiffe_id("relay"));
  via.set_data_dir(h_->dir() + "/a1-via-relay");  // the a1 daemon holds its own journal
  const std::string via_file = WriteAgentConfig(via, "a1-via-relay");
  auto relayed = StartAgent(via);
  ASSERT_NE(relayed, nullptr);
  Ran s;
  const std::string banned =
      absl::StrCat("PERMISSION_DENIED: agent ", h_->agent_spiffe_id("a1"), " is banned");
  EXPECT_TRUE(PollUntil([&] {
    s = AgentStatus(via_file);
    return absl::StrContains(s.out, banned);
  })) << s.out;
  EXPECT_EQ(s.code, 1) << s.out;
  EXPECT_THAT(s.out, Not(HasSubstr("CANCELLED")));
  EXPECT_EQ(relayed->last_stream_end().code(), absl::StatusCode::kPermissionDenied);
  std::printf("a1 through a relay: writeback-agent status:\n%s", s.out.c_str());
  relayed.reset();
  (*relay)->Stop();

  for (auto& d : daemons) EXPECT_EQ(d->Stop(SIGTERM, absl::Seconds(10)), 0);
}

// ---------------------------------------------------------------- 5

// Old: right-to-left overrides, zero-width characters and C1 controls were
// accepted in reason, reference and request ids and printed raw by decision
// get/list, events tail and decision approve (where an approver reads what
// they sign); a flag that was not UTF-8 printed "wbctl: " and exited 1.
// Now: refused where they have no business, naming the field; shown escaped
// (\u202e) wherever they can still appear (a file's path is whatever the
// file is called), in JSON as JSON escapes of the same value; a flag that
// is not UTF-8 exits 2 naming it.
TEST_F(TruthSmallerLies, DisplaySafety) {
  const std::string root = dir_.Sub("srv");
  ASSERT_TRUE(fs::MakeDirs(root, 0755).ok());
  // A file whose name reads as "app.env" after a right-to-left override.
  const std::string path = absl::StrCat(root, "/cod", kRlo, "vne.exe", kZwsp, kCsi, kTag, ".env");
  ASSERT_TRUE(fs::WriteFileAtomic(path, "API_TOKEN=secret\nOTHER=1\n").ok());
  // Root mode: remove_env_key (class rotate) needs an approval by another
  // approver, through `wbctl decision approve`.
  std::vector<crypto::Ed25519PrivateKey> approvers;
  for (int i = 0; i < 3; ++i) approvers.push_back(crypto::Ed25519PrivateKey::Generate());
  const auto trust_root = crypto::Ed25519PrivateKey::Generate();
  const std::string root_pub = dir_.Sub("root.pub");
  ASSERT_TRUE(fs::WriteFileAtomic(root_pub, trust_root.public_key().ToPem()).ok());
  auto signed_policy = [&](const std::string& dispatch_pub, const std::string& out) {
    auto env =
        trust::SignPolicy(ThreeApproverPolicy(kDomain, 1, dispatch_pub, approvers), trust_root);
    EXPECT_TRUE(env.ok()) << env.status();
    EXPECT_TRUE(fs::WriteFileAtomic(out, env->SerializeAsString()).ok());
    return out;
  };
  Harness::Options o;
  o.agents["a1"] = {FilesInstance("files", root)};
  o.tweak_agent = [&](writeback::v1::AgentConfig& a) {
    const std::string dispatch_pub = a.dispatch_public_key_files(0);
    a.clear_dispatch_public_key_files();
    a.set_trust_root_public_key_file(root_pub);
    a.set_trust_policy_file(signed_policy(dispatch_pub, dir_.Sub("agent-policy.signed")));
  };
  o.tweak_controlplane = [&](writeback::v1::ControlPlaneConfig& c) {
    std::string pub = c.dispatch_key_file();
    pub.replace(pub.size() - 3, 3, "pub");
    c.set_trust_root_public_key_file(root_pub);
    c.set_trust_policy_file(signed_policy(pub, dir_.Sub("cp-policy.signed")));
  };
  auto h = Harness::Start(o);
  ASSERT_TRUE(h.ok()) << h.status();
  h_ = *std::move(h);

  writeback::v1::DecisionSpec spec;
  spec.set_connector_instance("files");
  spec.set_operation("remove_env_key");
  spec.mutable_params()->mutable_secret_file()->set_key("API_TOKEN");
  spec.add_targets()->set_object(path);
  spec.set_reason("token leaked in CI logs");
  spec.set_reference("INC-15");

  // Refused where they have no business, naming the field (the old
  // sequence through the API: all of these were stored).
  struct Bad {
    const char* field;
    std::function<void(writeback::v1::DecisionSpec&, std::string&)> mutate;
    const char* why;
  };
  const Bad bad[] = {
      {"spec.reason",
       [](auto& s, auto&) { s.set_reason(absl::StrCat("approved by security ", kRlo, "gnp.exe")); },
       "U+202E (right-to-left override"},
      {"spec.reference", [](auto& s, auto&) { s.set_reference(absl::StrCat("INC-1", kZwsp, "5")); },
       "U+200B (zero width space)"},
      {"spec.reason", [](auto& s, auto&) { s.set_reason(absl::StrCat("ok", kCsi, "2J")); },
       "U+009B (a control character)"},
      {"spec.reason", [](auto& s, auto&) { s.set_reason(absl::StrCat("hidden", kTag)); },
       "U+E0001"},
      {"request_id", [](auto&, auto& rid) { rid = absl::StrCat("req", kRlo, "1"); }, "U+202E"},
  };
  for (const Bad& b : bad) {
    writeback::v1::DecisionSpec s = spec;
    std::string request_id;
    b.mutate(s, request_id);
    auto r = h_->Submit(s, request_id);
    ASSERT_FALSE(r.ok()) << b.field << " was accepted with " << b.why;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(absl::StrCat(b.field, ": contains ", b.why)));
  }
  // The same through wbctl: exit 2, the field named, nothing raw printed.
  {
    writeback::v1::DecisionSpec s = spec;
    s.set_reason(absl::StrCat("approved by security ", kRlo, "gnp.exe"));
    // (yaml-cpp cannot read the surrogate-pair escape protobuf writes for
    // U+E0001 in the path: a plain path here.)
    s.mutable_targets(0)->set_object(root + "/app.env");
    const std::string f = h_->dir() + "/bad-spec.yaml";
    ASSERT_TRUE(wb::testing::WriteConfigFile(s, f).ok());
    Ran w = Wbctl({"decision", "submit", "-f", f});
    EXPECT_EQ(w.code, 2) << w.out;
    EXPECT_THAT(w.out, HasSubstr("spec.reason: contains U+202E"));
    ExpectNoRaw(w.out, "decision submit (refused)");
  }

  // A path is whatever the file is called: accepted, and shown escaped.
  auto r = h_->Submit(spec);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string id = r->decision_id();
  const std::string shown = absl::StrCat("/cod\\u202evne.exe\\u200b\\u009b\\U000e0001.env");
  Ran get = Wbctl({"decision", "get", id});
  EXPECT_EQ(get.code, 0) << get.out;
  EXPECT_THAT(get.out, HasSubstr(shown));
  ExpectNoRaw(get.out, "decision get");
  Ran list = Wbctl({"decision", "list"});
  EXPECT_EQ(list.code, 0) << list.out;
  EXPECT_THAT(list.out, HasSubstr("\\u202evne.exe\\u200b"));
  ExpectNoRaw(list.out, "decision list");
  // JSON: the same value, written with JSON escapes.
  Ran json = Wbctl({"-o", "json", "decision", "get", id});
  EXPECT_EQ(json.code, 0) << json.out;
  ExpectNoRaw(json.out, "decision get -o json");
  EXPECT_THAT(json.out, HasSubstr("\\u202evne.exe\\u200b\\u009b\\udb40\\udc01.env"));
  auto doc = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << json.out;
  EXPECT_EQ(doc["statement"]["targets"][0]["object"], path);

  // What the approver reads is what they sign.
  const std::string alice_key = h_->dir() + "/alice-approver.key";
  ASSERT_TRUE(approvers[1].SaveFile(alice_key).ok());
  Ran approve = Wbctl({"decision", "approve", id, "--key", alice_key}, "alice");
  EXPECT_EQ(approve.code, 0) << approve.out;
  EXPECT_THAT(approve.out, HasSubstr(absl::StrCat("targets:   ", root, shown)));
  ExpectNoRaw(approve.out, "decision approve");
  auto v = h_->WaitTerminal(id);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(DecisionState_Name(v->state()), "DECISION_STATE_VERIFIED") << v->state_detail();
  EXPECT_EQ(*fs::ReadFile(path), "OTHER=1\n");
  Ran tail = Wbctl({"events", "tail", "--no-follow", "--backlog", "100"});
  EXPECT_EQ(tail.code, 0) << tail.out;
  EXPECT_THAT(tail.out, HasSubstr(absl::StrCat("target=", root, shown)));
  ExpectNoRaw(tail.out, "events tail");
  Ran after = Wbctl({"decision", "get", id});
  ExpectNoRaw(after.out, "decision get (verified)");

  // A flag or argument that is not UTF-8: exit 2, named.
  Ran flag = Wbctl({"decision", "submit", "--instance", "files", "--operation", "remove_env_key",
                    "--target", path, "--reason", "bad\xff"});
  EXPECT_EQ(flag.code, 2) << flag.out;
  EXPECT_THAT(flag.out, HasSubstr("wbctl: --reason: not valid UTF-8 (byte 0xff at offset 3"));
  Ran arg = Wbctl({"decision", "get", "d-\xc3"});
  EXPECT_EQ(arg.code, 2) << arg.out;
  EXPECT_THAT(arg.out, HasSubstr("wbctl: ID: not valid UTF-8 (byte 0xc3 at offset 2"));
  ExpectNoRaw(arg.out, "decision get (invalid UTF-8)");
}

}  // namespace
}  // namespace wb::e2e
