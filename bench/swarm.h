// A swarm: a real writeback-controlplane process (tests/fault Deployment:
// its own PKI, config, RocksDB data dir with synced writes, port) and N
// simulated agents in this process (bench/sim_agent.h), each enrolled
// through the control plane's Enroll RPC with a join token that binds its
// exec instance "sim-<id>" to it. Decisions go through the real admin API
// as operator "admin".
//
// Not thread-safe, except the Tracker and the counters: drive it from one
// thread. The destructor stops the agents and SIGKILLs the control plane;
// the temporary directory is removed.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/sim_agent.h"
#include "tests/fault/deployment.h"
#include "writeback/v1/admin_service.grpc.pb.h"

namespace wb::bench {

// Decisions in flight and when each was finished (every task's result
// stored: the control plane acknowledges a result only after the task and
// its decision's recomputed state are durably written).
class Tracker : public AgentListener {
 public:
  // `tasks` results are expected for `decision_id`, submitted at `at`.
  void Expect(const std::string& decision_id, int tasks, absl::Time at);
  void OnResultStored(const std::string& decision_id, absl::Time when) override;
  void OnWelcome(absl::Time when) override;

  uint64_t results() const { return results_.load(); }
  uint64_t welcomes() const { return welcomes_.load(); }
  absl::Time last_welcome() const;
  // Waits until `n` results are stored in total; false on timeout.
  bool WaitResults(uint64_t n, absl::Duration timeout) const;
  // Submit -> last result stored, of every finished decision.
  std::vector<absl::Duration> Latencies() const;
  size_t finished() const;
  void Reset();

 private:
  struct Entry {
    int remaining = 0;  // may go negative before Expect (a fast result)
    absl::Time submitted;
    absl::Time last_result = absl::InfinitePast();
    bool expected = false;
  };
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::map<std::string, Entry> open_;
  std::vector<absl::Duration> latencies_;
  absl::Time last_welcome_ = absl::InfinitePast();
  std::atomic<uint64_t> results_{0};
  std::atomic<uint64_t> welcomes_{0};
};

class Swarm {
 public:
  struct Options {
    fault::Binaries binaries;               // controlplane is required; agent, counter unused
    int heartbeat_seconds = 10;             // the control plane's default
    uint32_t max_in_flight_per_agent = 64;  // the control plane's default
    std::string controlplane_log_level = "info";
    int worker_threads = 2;  // agents' task checks and signing
    int enroll_threads = 4;
  };

  static absl::StatusOr<std::unique_ptr<Swarm>> Start(Options opts);
  ~Swarm();

  // Creates join tokens for `n` more agents and enrols each (Enroll RPC,
  // CSR, result key). They are not connected yet.
  absl::Status AddAgents(int n);
  // Starts every agent not yet started and waits until all are connected.
  absl::Status ConnectAll(absl::Duration timeout);
  int connected() const;
  bool WaitConnected(int n, absl::Duration timeout) const;
  int size() const { return static_cast<int>(agents_.size()); }
  SimAgent& agent(int i) { return *agents_[static_cast<size_t>(i)]; }
  SimAgent::Counters TotalCounters() const;

  // ---- Operator API (as "admin"). ----
  writeback::v1::DecisionSpec Spec(int agent, int decision, int targets) const;
  absl::StatusOr<writeback::v1::SubmitDecisionResponse> Submit(
      const writeback::v1::DecisionSpec& spec);
  // Asynchronous submit (callback API); `done` runs on a gRPC thread.
  void SubmitAsync(
      const writeback::v1::DecisionSpec& spec,
      std::function<void(const grpc::Status&, const writeback::v1::SubmitDecisionResponse&)> done);
  absl::StatusOr<writeback::v1::DecisionView> Get(const std::string& decision_id);

  // ---- The control plane process. ----
  pid_t controlplane_pid() const { return deployment_->controlplane_pid(); }
  std::string data_dir() const { return deployment_->controlplane_config().data_dir(); }
  struct Restart {
    absl::Duration stop;     // signal -> exited
    absl::Duration start;    // spawn -> port file written
    absl::Duration serving;  // spawn -> first admin call answered
    absl::Time spawned;
  };
  // Sends `signal` (SIGTERM: graceful, SIGKILL), waits for the exit (60 s,
  // then SIGKILL), starts it again on the same port and data, and waits
  // until an admin call (GetDecision of `probe_decision`, or ListInstances)
  // is answered.
  absl::StatusOr<Restart> RestartControlPlane(int signal, const std::string& probe_decision);

  Tracker& tracker() { return tracker_; }

 private:
  Swarm() = default;
  absl::Status ConnectAdmin();
  void TickLoop();

  Options opts_;
  std::unique_ptr<fault::Deployment> deployment_;
  std::unique_ptr<writeback::v1::AdminService::Stub> admin_;
  SimAgent::Shared shared_;
  Tracker tracker_;
  std::vector<std::unique_ptr<SimAgent>> agents_;
  std::vector<bool> started_;
  std::unique_ptr<WorkerPool> pool_;
  std::mutex tick_mu_;
  std::condition_variable tick_cv_;
  bool tick_stop_ = false;
  std::thread ticker_;
};

// Durations as milliseconds (double).
double Ms(absl::Duration d);

// Total size of the files under `dir` (bytes).
int64_t DirBytes(const std::string& dir);

}  // namespace wb::bench
