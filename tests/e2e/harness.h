// An in-process Writeback deployment for end-to-end tests: a development PKI,
// a real control plane (RocksDB, mTLS on 127.0.0.1:0) and one or more real
// agents (own journals, real connectors from the registry), plus an operator
// client. Everything lives in a temporary directory removed at the end.
//
//   wb::e2e::Harness::Options o;
//   o.agents["a1"] = {instance_config};
//   auto h = wb::e2e::Harness::Start(o);          // waits until agents are connected
//   auto r = (*h)->Submit(spec);                   // as operator "admin"
//   auto view = (*h)->WaitTerminal(r->decision_id());
//
// Not thread-safe: drive it from the test thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/pki/pki.h"
#include "common/testing/temp_dir.h"
#include "writeback/v1/admin_service.grpc.pb.h"
#include "writeback/v1/config.pb.h"

namespace wb::controlplane {
class ControlPlane;
}
namespace wb::agent {
class Agent;
}
namespace wb::connectors {
class Registry;
}

namespace wb::e2e {

class Harness {
 public:
  struct Options {
    // Agent id → its connector instances.
    std::map<std::string, std::vector<writeback::v1::ConnectorInstanceConfig>> agents;
    std::string trust_domain = "writeback.test";
    uint32_t default_task_ttl_seconds = 600;
    // Applied to every agent config before start (labels, skew, …).
    std::function<void(writeback::v1::AgentConfig&)> tweak_agent;
    std::function<void(writeback::v1::ControlPlaneConfig&)> tweak_controlplane;
    // Enrolment on (enrollment.ca_key_file = the PKI's CA key).
    bool enrollment = false;
    // Bind every configured connector instance to its agent before the
    // agents start (what an operator does with `wbctl instance bind`).
    bool bind_instances = true;
  };

  static absl::StatusOr<std::unique_ptr<Harness>> Start(Options opts);
  ~Harness();

  // Operator API (as spiffe://<domain>/operator/admin), with a 10 s deadline.
  absl::StatusOr<writeback::v1::SubmitDecisionResponse> Submit(
      const writeback::v1::DecisionSpec& spec, const std::string& request_id = "");
  absl::StatusOr<writeback::v1::DecisionView> Get(const std::string& decision_id);
  // Polls until the decision is VERIFIED, FAILED, EXPIRED or CANCELED.
  absl::StatusOr<writeback::v1::DecisionView> WaitTerminal(
      const std::string& decision_id, absl::Duration timeout = absl::Seconds(60));
  absl::StatusOr<writeback::v1::ListAgentsResponse> ListAgents();
  // Binds `instance` to agent `agent` (short id) as operator admin, through
  // the control plane's dispatcher (in root mode a rebind is refused: it
  // needs approvals; use the API).
  absl::Status Bind(const std::string& instance, const std::string& agent);
  writeback::v1::AdminService::Stub& admin() { return *admin_; }

  // Lifecycle of the pieces (for restart and partition tests).
  void StopAgent(const std::string& id);
  absl::Status StartAgent(const std::string& id);  // same config, same journal
  absl::Status WaitAgentConnected(const std::string& id,
                                  absl::Duration timeout = absl::Seconds(30));
  void StopControlPlane();
  absl::Status StartControlPlane();  // same data dir and port

  const std::string& dir() const { return dir_.path(); }
  pki::Pki& pki() { return *pki_; }
  int port() const { return port_; }
  const writeback::v1::ControlPlaneConfig& controlplane_config() const { return cp_cfg_; }
  const writeback::v1::AgentConfig& agent_config(const std::string& id) const {
    return agent_cfgs_.at(id);
  }
  std::string agent_spiffe_id(const std::string& id) const;
  // The config of a new agent `name` that has no identity yet (enrolment
  // tests): agent_config(based_on) with its own files under `dir` (created:
  // tls.crt, tls.key, result.key, data/) and no connector instances.
  absl::StatusOr<writeback::v1::AgentConfig> NewAgentConfig(const std::string& based_on,
                                                            const std::string& name,
                                                            const std::string& dir) const;
  // A running agent (null if stopped or unknown).
  agent::Agent* agent(const std::string& id) const {
    auto it = agents_.find(id);
    return it == agents_.end() ? nullptr : it->second.get();
  }
  controlplane::ControlPlane* controlplane() const { return cp_.get(); }
  // Writes a wbctl config file at `path` for operator `name` (a new
  // operator identity of the PKI unless it exists: "admin" does) pointing
  // at this control plane.
  absl::Status WriteWbctlConfig(const std::string& name, const std::string& path);
  // Channel credentials for an operator (created on demand).
  absl::StatusOr<std::unique_ptr<writeback::v1::AdminService::Stub>> OperatorStub(
      const std::string& name);

 private:
  Harness() = default;
  testing::TempDir dir_;
  std::unique_ptr<pki::Pki> pki_;
  std::unique_ptr<connectors::Registry> registry_;
  writeback::v1::ControlPlaneConfig cp_cfg_;
  std::map<std::string, writeback::v1::AgentConfig> agent_cfgs_;
  std::unique_ptr<controlplane::ControlPlane> cp_;
  std::map<std::string, std::unique_ptr<agent::Agent>> agents_;
  std::unique_ptr<writeback::v1::AdminService::Stub> admin_;
  int port_ = 0;
};

// A DecisionSpec for the ssh_authorized_keys connector (common in tests).
writeback::v1::DecisionSpec SshRemoveKeySpec(const std::string& instance,
                                             const std::vector<std::string>& users,
                                             const std::string& fingerprint,
                                             const std::string& reason = "test");

}  // namespace wb::e2e
