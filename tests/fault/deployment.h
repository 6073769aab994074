// A Writeback deployment made of real processes, for the fault suite: the
// `writeback-controlplane` binary (its own data dir, a fixed port after the
// first start) and one `writeback-agent` process per agent identity, each
// serving one exec connector instance "fx-<id>" whose program
// (wb_fault_counter) appends the task id to the agent's effects file on apply
// (and, on plan, to its plans file). Processes can be SIGKILLed and restarted
// with the same data and port.
//
// Not thread-safe: drive it from the test thread. The destructor SIGKILLs and
// reaps every child it started.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/pki/pki.h"
#include "common/testing/temp_dir.h"
#include "writeback/v1/admin_service.grpc.pb.h"
#include "writeback/v1/config.pb.h"

namespace wb::fault {

// Paths of the binaries under test (compile definitions in CMakeLists.txt).
struct Binaries {
  std::string controlplane;
  std::string agent;
  std::string counter;
};

class Deployment {
 public:
  struct Options {
    int agents = 4;
    uint32_t default_task_ttl_seconds = 600;
    uint32_t max_in_flight_per_agent = 16;
    // Agents' max_clock_skew_seconds (0 = the agent's default, 60).
    uint32_t agent_max_clock_skew_seconds = 0;
    // false: start nothing; the test brings its own control plane (e.g. the
    // scripted one) and calls UseControlPlanePort, then StartAgent.
    bool start_processes = true;
    // The exec instances declare "revoke" idempotent (the counter is), so an
    // apply interrupted by a kill is finished after the restart; false: not
    // declared, such an apply is only verified.
    bool exec_idempotent = true;
    // Applied to agent i's config before it is written (extra connector
    // instances, …).
    std::function<void(int, writeback::v1::AgentConfig&)> tweak_agent;
    // Applied to the control plane's config before its first start
    // (enrolment, heartbeat interval, log level, …).
    std::function<void(writeback::v1::ControlPlaneConfig&)> tweak_controlplane;
  };

  // Makes the PKI and configs, starts the control plane and every agent, and
  // waits until all agents are connected.
  static absl::StatusOr<std::unique_ptr<Deployment>> Start(const Binaries& bin, Options opts);
  ~Deployment();

  // Points the agents' configs at a control plane the test runs itself.
  absl::Status UseControlPlanePort(int port);

  // ---- Processes. `env` entries are "NAME=value" added to the child's. ----
  absl::Status StartControlPlane(const std::vector<std::string>& env = {});
  // SIGKILL and reap (no-op if not running).
  void KillControlPlane();
  // Reaps the control plane if it exited; true if it is (still) running.
  bool ControlPlaneRunning();
  // The running control plane's process id (-1 if not running): for
  // /proc/<pid> figures and signals other than SIGKILL.
  pid_t controlplane_pid() const { return cp_pid_; }
  const writeback::v1::ControlPlaneConfig& controlplane_config() const { return cp_cfg_; }
  // Waits until it exits by itself; its wait status.
  absl::StatusOr<int> WaitControlPlaneExit(absl::Duration timeout);

  absl::Status StartAgent(int i, const std::vector<std::string>& env = {});
  void KillAgent(int i);
  // Agent i's process id (-1 if not running).
  pid_t agent_pid(int i) const { return agent_pids_[static_cast<size_t>(i)]; }
  bool AgentRunning(int i);
  absl::StatusOr<int> WaitAgentExit(int i, absl::Duration timeout);
  int agents() const { return static_cast<int>(agent_names_.size()); }
  const std::string& agent_name(int i) const { return agent_names_[i]; }
  std::string instance(int i) const { return "fx-" + agent_names_[i]; }
  // Binds agent i's instance to it (wbctl instance bind, through the API).
  absl::Status BindInstance(int i);
  std::string effects_file(int i) const;
  std::string plans_file(int i) const;
  std::string agent_log(int i) const;
  std::string controlplane_log() const;

  // ---- Operator API (as operator "admin"; every call has a deadline). ----
  absl::StatusOr<writeback::v1::SubmitDecisionResponse> Submit(
      const writeback::v1::DecisionSpec& spec, const std::string& request_id);
  absl::StatusOr<writeback::v1::DecisionView> Get(const std::string& decision_id);
  absl::StatusOr<writeback::v1::ListAgentsResponse> ListAgents();
  // The control plane's check of its audit chain.
  absl::StatusOr<writeback::v1::VerifyAuditResponse> VerifyAudit();
  // Connected agents, as the control plane sees them.
  absl::StatusOr<int> ConnectedAgents();
  absl::Status WaitAllAgentsConnected(absl::Duration timeout);

  // A decision for agent i's exec instance on `object`.
  writeback::v1::DecisionSpec Spec(int i, const std::string& object) const;

  // task id -> how many times it appears in agent i's effects file.
  absl::flat_hash_map<std::string, int> Effects(int i) const;
  // task id -> how many times agent i's counter was asked to plan it.
  absl::flat_hash_map<std::string, int> Plans(int i) const;

  const std::string& dir() const { return dir_.path(); }
  pki::Pki& pki() { return *pki_; }
  int port() const { return port_; }
  std::string agent_config_path(int i) const;

 private:
  Deployment() = default;
  absl::Status WriteAgentConfig(int i);
  absl::Status Connect();

  Binaries bin_;
  Options opts_;
  testing::TempDir dir_;
  std::unique_ptr<pki::Pki> pki_;
  writeback::v1::ControlPlaneConfig cp_cfg_;
  std::vector<std::string> agent_names_;
  pid_t cp_pid_ = -1;
  std::vector<pid_t> agent_pids_;
  int port_ = 0;
  std::unique_ptr<writeback::v1::AdminService::Stub> admin_;
};

// Spawns argv[0] with argv (no shell), stdout and stderr appended to
// `log_path`, the parent's environment plus `env`.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log_path,
                            const std::vector<std::string>& env);

}  // namespace wb::fault
