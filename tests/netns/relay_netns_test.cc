// Segmented network (issue 9, docs/networks.md), as root, in network
// namespaces this test makes and removes:
//
//   [cp] 10.91.1.1 ──veth── 10.91.1.2 [dmz] 10.91.2.1 ──veth── 10.91.2.2 [in]
//   control plane :7443       relay (dmz agent) :7444        agent e1
//
// nft rules: the agent's namespace drops every inbound connection and may
// open connections only to the relay; the DMZ may open connections only to
// the control plane and accepts only the inner segment on the relay ports;
// the control plane accepts :7443. The DMZ does route between the segments
// (a route from cp to the inner segment exists), so what keeps the control
// plane out of the agent's segment is the agent's own rule, not a missing
// route.
//
// Real processes: writeback-controlplane, writeback-agent (the relay and
// e1), wbctl (run inside cp as the operator), and wb_tamper_relay (a test
// build of a relay that alters tasks). The test shows:
//   - e1 enrols through the relay, connects through it, and a decision for
//     its target ends VERIFIED (the key is gone from the file);
//   - nothing listens in e1's namespace; neither the control plane nor the
//     relay can open a connection to it; e1 cannot reach the control plane;
//   - the fleet view shows e1's path, and e1 unreachable through the relay
//     once the relay is gone;
//   - a relay that alters tasks gets them refused by e1: nothing changes on
//     the target and the control plane records an altered delivery.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fs/fs.h"
#include "common/pki/pki.h"
#include "common/testing/config_file.h"
#include "common/testing/temp_dir.h"
#include "common/tls/tls.h"
#include "connectors/testing/servers/process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/ssh_test_keys.h"
#include "tests/netns/netns.h"

namespace wb::netns {
namespace {

using connectors::testing::ChildProcess;
using connectors::testing::SpawnOptions;
using e2e::MakeSshKey;
using e2e::SshTestKey;
using ::testing::HasSubstr;

constexpr char kTd[] = "writeback.test";
constexpr char kCpIp[] = "10.91.1.1";
constexpr char kDmzOuterIp[] = "10.91.1.2";
constexpr char kDmzInnerIp[] = "10.91.2.1";
constexpr char kAgentIp[] = "10.91.2.2";
constexpr int kCpPort = 7443;
constexpr int kRelayPort = 7444;
constexpr int kTamperPort = 7445;

template <typename Pred>
bool PollUntil(Pred pred, absl::Duration timeout, absl::Duration every = absl::Milliseconds(100)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(every);
  }
  return pred();
}

std::string Agent(const std::string& name) {
  return tls::MakeSpiffeId(kTd, tls::IdentityClass::kAgent, name);
}

class RelayNetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = WhyUnavailable(); !why.empty()) GTEST_SKIP() << why;
    lab_ = std::make_unique<Lab>(absl::StrCat("wb9-", getpid()));
    if (absl::Status s = lab_->Add("cp"); !s.ok()) {
      // A container without CAP_SYS_ADMIN / CAP_NET_ADMIN: say so.
      if (absl::StrContains(s.message(), "Operation not permitted")) {
        GTEST_SKIP() << "cannot create network namespaces here: " << s.message();
      }
      FAIL() << s;
    }
    ASSERT_TRUE(lab_->Add("dmz").ok());
    ASSERT_TRUE(lab_->Add("in").ok());
    auto s = lab_->Link("cp", "wba0", absl::StrCat(kCpIp, "/24"), "dmz", "wba1",
                        absl::StrCat(kDmzOuterIp, "/24"));
    ASSERT_TRUE(s.ok()) << s;
    s = lab_->Link("dmz", "wbb0", absl::StrCat(kDmzInnerIp, "/24"), "in", "wbb1",
                   absl::StrCat(kAgentIp, "/24"));
    ASSERT_TRUE(s.ok()) << s;
    // Routes exist both ways through the DMZ: only the rules keep them apart.
    ASSERT_TRUE(lab_->Route("cp", "10.91.2.0/24", kDmzOuterIp).ok());
    ASSERT_TRUE(lab_->Route("in", "10.91.1.0/24", kDmzInnerIp).ok());
    ASSERT_TRUE(lab_->Run("dmz", {"/usr/sbin/sysctl", "-q", "-w", "net.ipv4.ip_forward=1"}).ok());
    const std::string relay_ports = absl::StrCat("{ ", kRelayPort, ", ", kTamperPort, " }");
    s = lab_->Nft("in",
                  absl::StrCat("table inet wb {\n"
                               "  chain input { type filter hook input priority 0; policy drop;\n"
                               "    iif \"lo\" accept\n"
                               "    ct state established,related accept\n"
                               "    counter comment \"inbound dropped\"\n"
                               "  }\n"
                               "  chain output { type filter hook output priority 0; policy drop;\n"
                               "    oif \"lo\" accept\n"
                               "    ct state established,related accept\n"
                               "    ip daddr ",
                               kDmzInnerIp, " tcp dport ", relay_ports,
                               " accept\n"
                               "  }\n"
                               "}\n"),
                  dir_.Sub("in.nft"));
    ASSERT_TRUE(s.ok()) << s;
    s = lab_->Nft("dmz",
                  absl::StrCat("table inet wb {\n"
                               "  chain input { type filter hook input priority 0; policy drop;\n"
                               "    iif \"lo\" accept\n"
                               "    ct state established,related accept\n"
                               "    iifname \"wbb0\" ip saddr 10.91.2.0/24 tcp dport ",
                               relay_ports,
                               " accept\n"
                               "  }\n"
                               "  chain output { type filter hook output priority 0; policy drop;\n"
                               "    oif \"lo\" accept\n"
                               "    ct state established,related accept\n"
                               "    ip daddr ",
                               kCpIp, " tcp dport ", kCpPort,
                               " accept\n"
                               "  }\n"
                               "}\n"),
                  dir_.Sub("dmz.nft"));
    ASSERT_TRUE(s.ok()) << s;
    s = lab_->Nft("cp",
                  absl::StrCat("table inet wb {\n"
                               "  chain input { type filter hook input priority 0; policy drop;\n"
                               "    iif \"lo\" accept\n"
                               "    ct state established,related accept\n"
                               "    tcp dport ",
                               kCpPort,
                               " accept\n"
                               "  }\n"
                               "}\n"),
                  dir_.Sub("cp.nft"));
    ASSERT_TRUE(s.ok()) << s;

    pki::PkiSpec spec;
    spec.trust_domain = kTd;
    spec.operators = {"admin"};
    spec.agents = {"dmz"};
    auto p = pki::Pki::Init(dir_.Sub("pki"), spec, absl::Now());
    ASSERT_TRUE(p.ok()) << p.status();
    pki_ = std::make_unique<pki::Pki>(*std::move(p));
    WriteConfigs();
  }

  void TearDown() override {
    for (auto* c : {&e1_, &relay_, &tamper_, &cp_}) {
      if (*c) (*c)->Stop(SIGKILL, absl::Seconds(5));
    }
    lab_.reset();  // deletes the namespaces
  }

  void WriteConfigs() {
    writeback::v1::ControlPlaneConfig cp;
    cp.set_listen_address(absl::StrCat(kCpIp, ":", kCpPort));
    cp.set_trust_domain(kTd);
    *cp.mutable_tls() = pki_->controlplane().tls;
    cp.set_data_dir(dir_.Sub("cp-data"));
    cp.set_dispatch_key_file(pki_->dispatch_key_file());
    cp.set_heartbeat_interval_seconds(1);
    cp.set_log_format("text");
    cp.set_port_file(dir_.Sub("cp.port"));
    std::string ca_key = pki_->ca_file();
    ca_key.replace(ca_key.size() - 3, 3, "key");
    cp.mutable_enrollment()->set_ca_key_file(ca_key);
    ASSERT_TRUE(testing::WriteConfigFile(cp, dir_.Sub("cp.yaml")).ok());

    writeback::v1::WbctlConfig w;
    w.set_controlplane_address(absl::StrCat(kCpIp, ":", kCpPort));
    w.set_controlplane_id(pki_->controlplane_id());
    *w.mutable_tls() = pki_->operator_identity("admin").tls;
    ASSERT_TRUE(testing::WriteConfigFile(w, dir_.Sub("wbctl.yaml")).ok());

    // The relay: an ordinary agent of the DMZ that also listens inside.
    writeback::v1::AgentConfig r;
    r.set_agent_id(Agent("dmz"));
    r.set_controlplane_address(absl::StrCat(kCpIp, ":", kCpPort));
    r.set_controlplane_id(pki_->controlplane_id());
    *r.mutable_tls() = pki_->agent("dmz").tls;
    r.set_data_dir(dir_.Sub("dmz-data"));
    r.set_result_key_file(pki_->agent_result_key_file("dmz"));
    r.add_dispatch_public_key_files(pki_->dispatch_pub_file());
    r.set_reconnect_initial_ms(100);
    r.set_reconnect_max_ms(1000);
    r.set_log_format("text");
    r.mutable_relay()->set_listen_address(absl::StrCat(kDmzInnerIp, ":", kRelayPort));
    r.mutable_relay()->set_port_file(dir_.Sub("relay.port"));
    ASSERT_TRUE(testing::WriteConfigFile(r, dir_.Sub("dmz.yaml")).ok());
    r.mutable_relay()->set_listen_address(absl::StrCat(kDmzInnerIp, ":", kTamperPort));
    r.mutable_relay()->set_port_file(dir_.Sub("tamper.port"));
    ASSERT_TRUE(testing::WriteConfigFile(r, dir_.Sub("tamper.yaml")).ok());

    // e1 knows only the relay: its address and SPIFFE ID.
    e1_cfg_.set_agent_id(Agent("e1"));
    e1_cfg_.set_controlplane_address(absl::StrCat(kDmzInnerIp, ":", kRelayPort));
    e1_cfg_.set_controlplane_id(Agent("dmz"));
    e1_cfg_.mutable_tls()->set_ca_file(pki_->ca_file());
    e1_cfg_.mutable_tls()->set_cert_file(dir_.Sub("e1/tls.crt"));
    e1_cfg_.mutable_tls()->set_key_file(dir_.Sub("e1/tls.key"));
    e1_cfg_.set_result_key_file(dir_.Sub("e1/result.key"));
    e1_cfg_.set_data_dir(dir_.Sub("e1/data"));
    e1_cfg_.add_dispatch_public_key_files(pki_->dispatch_pub_file());
    e1_cfg_.set_reconnect_initial_ms(100);
    e1_cfg_.set_reconnect_max_ms(1000);
    e1_cfg_.set_log_format("text");
    (*e1_cfg_.mutable_labels())["segment"] = "inner";
    auto* c = e1_cfg_.add_connectors();
    c->set_name("ssh-e1");
    c->set_type("ssh_authorized_keys");
    c->add_allowed_operations("remove_key");
    c->mutable_ssh_authorized_keys()->set_path_template(dir_.Sub("e1/home") +
                                                        "/{user}/authorized_keys");
    ASSERT_TRUE(fs::MakeDirs(dir_.Sub("e1/home/deploy")).ok());
    ASSERT_TRUE(testing::WriteConfigFile(e1_cfg_, dir_.Sub("e1.yaml")).ok());
  }

  std::unique_ptr<ChildProcess> Start(const std::string& ns, std::vector<std::string> argv,
                                      const std::string& log) {
    SpawnOptions o;
    o.argv = lab_->In(ns, std::move(argv));
    o.log_file = dir_.Sub(log);
    auto c = ChildProcess::Spawn(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::make_unique<ChildProcess>(*std::move(c)) : nullptr;
  }

  // wbctl as the operator, inside the control plane's segment.
  absl::StatusOr<std::string> Wbctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {WB_WBCTL_BINARY, "--config", dir_.Sub("wbctl.yaml")};
    for (auto& a : args) argv.push_back(std::move(a));
    return lab_->Run("cp", std::move(argv));
  }
  absl::StatusOr<nlohmann::json> WbctlJson(std::vector<std::string> args) {
    args.insert(args.begin(), {"-o", "json"});
    auto out = Wbctl(std::move(args));
    if (!out.ok()) return out.status();
    // stdout and stderr arrive together: notes (e.g. "waiting up to 1m")
    // come before the document.
    const size_t start = out->find('{');
    if (start == std::string::npos) return absl::InternalError("wbctl printed no JSON: " + *out);
    auto j = nlohmann::json::parse(out->substr(start), nullptr, false);
    if (j.is_discarded()) return absl::InternalError("wbctl printed no JSON: " + *out);
    return j;
  }
  absl::StatusOr<nlohmann::json> AgentJson(const std::string& name) {
    auto j = WbctlJson({"agent", "show", name});
    if (!j.ok()) return j.status();
    return (*j)["agent"];
  }

  // TCP connection attempt from `ns`; "connected" or the reason it failed.
  std::string Probe(const std::string& ns, const std::string& ip, int port) {
    auto out = lab_->Run(ns, {WB_PROBE_BINARY, ip, absl::StrCat(port), "1500"});
    if (out.ok()) return *out;
    return std::string(out.status().message());
  }

  std::string Log(const std::string& name) {
    return connectors::testing::ReadFileOrEmpty(dir_.Sub(name));
  }

  testing::TempDir dir_;
  std::unique_ptr<Lab> lab_;
  std::unique_ptr<pki::Pki> pki_;
  writeback::v1::AgentConfig e1_cfg_;
  std::unique_ptr<ChildProcess> cp_, relay_, e1_, tamper_;
};

TEST_F(RelayNetnsTest, AgentInAnInnerSegmentIsReachedOnlyThroughTheRelay) {
  cp_ = Start("cp", {WB_CONTROLPLANE_BINARY, "--config", dir_.Sub("cp.yaml")}, "cp.log");
  ASSERT_TRUE(PollUntil([&] { return fs::ReadFile(dir_.Sub("cp.port")).ok(); }, absl::Seconds(30)))
      << Log("cp.log");
  relay_ = Start("dmz", {WB_AGENT_BINARY, "run", "--config", dir_.Sub("dmz.yaml")}, "dmz.log");
  ASSERT_TRUE(PollUntil(
      [&] {
        auto a = AgentJson("dmz");
        return a.ok() && (*a).value("connected", false) &&
               fs::ReadFile(dir_.Sub("relay.port")).ok();
      },
      absl::Seconds(30)))
      << Log("dmz.log");

  // Enrolment through the relay: the token is made by the operator in the
  // control plane's segment and carried to the agent host.
  auto token = Wbctl({"agent", "token", "create", "--id", "e1", "--instance", "ssh-e1", "--out",
                      dir_.Sub("e1.token")});
  ASSERT_TRUE(token.ok()) << token.status();
  auto enrolled = lab_->Run("in", {WB_AGENT_BINARY, "enroll", "--config", dir_.Sub("e1.yaml"),
                                   "--token-file", dir_.Sub("e1.token")});
  ASSERT_TRUE(enrolled.ok()) << enrolled.status() << Log("dmz.log");
  e1_ = Start("in", {WB_AGENT_BINARY, "run", "--config", dir_.Sub("e1.yaml")}, "e1.log");
  ASSERT_TRUE(PollUntil(
      [&] {
        auto a = AgentJson("e1");
        return a.ok() && (*a).value("connected", false);
      },
      absl::Seconds(30)))
      << Log("e1.log") << Log("dmz.log");
  auto e1 = AgentJson("e1");
  ASSERT_TRUE(e1.ok());
  ASSERT_TRUE((*e1).contains("relay_path")) << e1->dump();
  EXPECT_EQ((*e1)["relay_path"], nlohmann::json::array({Agent("dmz")}));
  auto table = Wbctl({"fleet", "status"});
  ASSERT_TRUE(table.ok());
  EXPECT_THAT(*table, HasSubstr("via dmz"));
  std::printf("fleet status (inside the control plane's segment):\n%s\n", table->c_str());

  // Nothing listens in the agent's namespace.
  auto listening = lab_->Run("in", {"/usr/bin/ss", "-H", "-l", "-t", "-u", "-n"});
  ASSERT_TRUE(listening.ok()) << listening.status();
  EXPECT_EQ(*listening, "") << "something listens in the agent's namespace";
  // The relay listens on its inside address only.
  auto relay_listening = lab_->Run("dmz", {"/usr/bin/ss", "-H", "-l", "-t", "-u", "-n"});
  ASSERT_TRUE(relay_listening.ok()) << relay_listening.status();
  // Columns: netid state recv-q send-q local peer; local is
  // "[::ffff:10.91.2.1]:7444" (a v4-mapped socket) or "10.91.2.1:7444".
  for (absl::string_view line : absl::StrSplit(*relay_listening, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> cols = absl::StrSplit(line, ' ', absl::SkipEmpty());
    ASSERT_GE(cols.size(), 5u) << line;
    EXPECT_TRUE(absl::StrContains(cols[4], absl::StrCat(kDmzInnerIp, "]:", kRelayPort)) ||
                cols[4] == absl::StrCat(kDmzInnerIp, ":", kRelayPort))
        << "the DMZ listens on " << cols[4];
  }
  EXPECT_FALSE(relay_listening->empty());
  std::printf("listening in the DMZ: %s", relay_listening->c_str());
  // Nobody gets in; the agent reaches only the relay; the relay only the
  // control plane (positive controls first: the probe itself works).
  EXPECT_EQ(Probe("dmz", kCpIp, kCpPort), "connected\n");
  EXPECT_EQ(Probe("in", kDmzInnerIp, kRelayPort), "connected\n");
  const std::string cp_to_agent = Probe("cp", kAgentIp, 22);
  const std::string cp_to_agent2 = Probe("cp", kAgentIp, kCpPort);
  const std::string relay_to_agent = Probe("dmz", kAgentIp, 22);
  const std::string agent_to_cp = Probe("in", kCpIp, kCpPort);
  EXPECT_THAT(cp_to_agent, HasSubstr("not connected"));
  EXPECT_THAT(cp_to_agent2, HasSubstr("not connected"));
  EXPECT_THAT(relay_to_agent, HasSubstr("not connected"));
  EXPECT_THAT(agent_to_cp, HasSubstr("not connected"));
  auto counted = lab_->Run("in", {"/usr/sbin/nft", "list", "chain", "inet", "wb", "input"});
  ASSERT_TRUE(counted.ok());
  EXPECT_THAT(*counted, ::testing::Not(HasSubstr("packets 0 ")))
      << "the control plane's attempts did not reach the agent's rule:\n"
      << *counted;
  std::printf(
      "control plane -> agent: %scontrol plane -> agent :%d: %srelay -> agent: %s"
      "agent -> control plane: %s",
      cp_to_agent.c_str(), kCpPort, cp_to_agent2.c_str(), relay_to_agent.c_str(),
      agent_to_cp.c_str());

  // A decision for the inner target ends VERIFIED.
  const SshTestKey key = MakeSshKey("leaked@inner");
  const std::string keys_file = dir_.Sub("e1/home/deploy/authorized_keys");
  ASSERT_TRUE(fs::WriteFileAtomic(keys_file, key.line + "\n").ok());
  auto done = WbctlJson({"decision", "submit", "--instance", "ssh-e1", "--operation", "remove_key",
                         "--target", "deploy", "--fingerprint", key.fingerprint, "--reason",
                         "netns test", "--wait", "--timeout", "60s"});
  ASSERT_TRUE(done.ok()) << done.status() << Log("e1.log");
  EXPECT_EQ((*done)["state"], "DECISION_STATE_VERIFIED") << done->dump(2);
  EXPECT_THAT(fs::ReadFile(keys_file).value_or("?"), ::testing::Not(HasSubstr(key.line)));
  std::printf("decision through the relay: %s\n", std::string((*done)["state"]).c_str());

  // The relay host is lost: e1 shows as unreachable through it.
  relay_->Stop(SIGKILL, absl::Seconds(5));
  relay_.reset();
  ASSERT_TRUE(PollUntil(
      [&] {
        auto a = AgentJson("e1");
        return a.ok() && (*a).value("unreachable_via", "") == Agent("dmz");
      },
      absl::Seconds(30)))
      << "the fleet view never showed e1 unreachable through the lost relay";
  auto lost = AgentJson("e1");
  ASSERT_TRUE(lost.ok());
  std::printf("relay lost: e1 %s (%s)\n", std::string((*lost)["state"]).c_str(),
              std::string((*lost)["state_reason"]).c_str());

  // A relay that alters what it forwards (test build): e1 refuses the task.
  tamper_ =
      Start("dmz", {WB_TAMPER_RELAY_BINARY, "--config", dir_.Sub("tamper.yaml")}, "tamper.log");
  ASSERT_TRUE(
      PollUntil([&] { return fs::ReadFile(dir_.Sub("tamper.port")).ok(); }, absl::Seconds(30)))
      << Log("tamper.log");
  e1_->Stop(SIGTERM, absl::Seconds(10));
  e1_cfg_.set_controlplane_address(absl::StrCat(kDmzInnerIp, ":", kTamperPort));
  ASSERT_TRUE(testing::WriteConfigFile(e1_cfg_, dir_.Sub("e1.yaml")).ok());
  e1_ = Start("in", {WB_AGENT_BINARY, "run", "--config", dir_.Sub("e1.yaml")}, "e1.log");
  ASSERT_TRUE(PollUntil(
      [&] {
        auto a = AgentJson("e1");
        return a.ok() && (*a).value("connected", false);
      },
      absl::Seconds(30)))
      << Log("e1.log") << Log("tamper.log");
  const SshTestKey key2 = MakeSshKey("second@inner");
  ASSERT_TRUE(fs::WriteFileAtomic(keys_file, key2.line + "\n").ok());
  auto submitted = WbctlJson({"decision", "submit", "--instance", "ssh-e1", "--operation",
                              "remove_key", "--target", "deploy", "--fingerprint", key2.fingerprint,
                              "--reason", "netns tamper test"});
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const std::string id = (*submitted)["decision_id"];
  ASSERT_TRUE(PollUntil(
      [&] {
        return absl::StrContains(Log("e1.log"), "BAD_SIGNATURE") &&
               absl::StrContains(Log("cp.log"), "altered copy of a task");
      },
      absl::Seconds(30)))
      << "e1 did not refuse the altered task:\n"
      << Log("e1.log") << Log("tamper.log");
  EXPECT_THAT(Log("tamper.log"), HasSubstr("TAMPER"));
  EXPECT_THAT(fs::ReadFile(keys_file).value_or("?"), HasSubstr(key2.line))
      << "the altered task changed the target";
  auto view = WbctlJson({"decision", "get", id});
  ASSERT_TRUE(view.ok());
  EXPECT_NE((*view)["state"], "DECISION_STATE_VERIFIED");
  std::printf(
      "tampering relay: task refused by e1 (BAD_SIGNATURE), target unchanged, "
      "decision %s\n",
      std::string((*view)["state"]).c_str());
}

}  // namespace
}  // namespace wb::netns
