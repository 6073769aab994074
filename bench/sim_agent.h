// Simulated agents for writeback-bench: many in one process, each speaking
// the real agent protocol to a real control plane (docs/architecture.md):
// its own enrolled certificate and result key, one AgentService.Connect
// stream (gRPC callback API, no thread per agent) opened with a Hello and
// its connect proof, heartbeats at the Welcome's interval, the agent's own
// acceptance checks on every task (agent/checks CheckTask, against an
// in-memory history), a zero-cost in-memory effect for the exec connector
// type, and a result signed with its result key (Executor::SignResult).
// Results stay in an in-memory outbox until the control plane acknowledges
// them and are sent again after a reconnect, as the agent's journal does.
//
// Thread-safety: every public method may be called from any thread.
// Reactor callbacks run on gRPC's threads; task checks and signing run on
// the shared WorkerPool.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/checks/task_checks.h"
#include "common/backoff/backoff.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "writeback/v1/agent_service.grpc.pb.h"
#include "writeback/v1/config.pb.h"

namespace wb::bench {

// A fixed set of threads running posted jobs in order of posting.
class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();  // runs what is queued, then joins
  void Post(std::function<void()> job);

 private:
  void Loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// What the agents report to the swarm (called on pool or gRPC threads).
class AgentListener {
 public:
  virtual ~AgentListener() = default;
  // The control plane durably stored a result for a task of `decision_id`
  // (ResultAck accepted, first time for this task).
  virtual void OnResultStored(const std::string& decision_id, absl::Time when) = 0;
  // A Welcome arrived (a stream is established).
  virtual void OnWelcome(absl::Time when) = 0;
};

class SimAgent {
 public:
  struct Identity {
    std::string short_id;   // "s17"
    std::string spiffe_id;  // spiffe://<td>/agent/s17
    std::string instance;   // exec connector instance bound to it
    writeback::v1::TlsConfig tls;
    std::string result_key_file;
  };
  // Shared by every agent of a swarm; not owned, outlives the agents.
  struct Shared {
    std::string address;  // host:port of the control plane
    std::string controlplane_id;
    envelope::Keyring dispatch_keys;  // pinned dispatch keys
    WorkerPool* pool = nullptr;
    AgentListener* listener = nullptr;
    // The agent's defaults (agent/link/link.h).
    absl::Duration reconnect_initial = absl::Milliseconds(500);
    absl::Duration reconnect_max = absl::Seconds(30);
    absl::Duration max_skew = absl::Seconds(60);
  };

  static absl::StatusOr<std::unique_ptr<SimAgent>> Create(Identity id, const Shared* shared);
  ~SimAgent();  // Stop()

  // Opens the stream now (and keeps reconnecting after it ends) until Stop.
  void Start();
  // Cancels the stream, waits until it is done; no reconnect.
  void Stop();
  // Heartbeats and reconnects that are due; called about every 100 ms.
  void Tick(absl::Time now);

  bool connected() const;
  const Identity& identity() const { return id_; }

  // Counters since creation.
  struct Counters {
    uint64_t tasks_received = 0;
    uint64_t task_bytes = 0;  // serialized SignedEnvelope bytes received
    uint64_t accepted = 0;
    uint64_t duplicates = 0;
    uint64_t rejected = 0;
    uint64_t results_stored = 0;  // ResultAck accepted (first per task)
    uint64_t results_refused = 0;
    uint64_t welcomes = 0;
    uint64_t heartbeats = 0;
  };
  Counters counters() const;

 private:
  class Stream;
  class History;
  SimAgent(Identity id, const Shared* shared, crypto::Ed25519PrivateKey key,
           std::shared_ptr<grpc::Channel> channel);

  void Connect();  // opens a stream unless one is open or the agent stopped
  void OnStreamWelcome(Stream* s, const writeback::v1::Welcome& w);
  void OnStreamTask(const writeback::v1::SignedEnvelope& env);
  void OnStreamStatement(const std::string& statement);
  void OnStreamResultAck(const writeback::v1::ResultAck& ack);
  void OnStreamDone(Stream* s, const grpc::Status& status);
  void HandleTask(const writeback::v1::SignedEnvelope& env);
  bool Send(writeback::v1::AgentMessage msg);
  writeback::v1::Hello MakeHello() const;
  std::vector<writeback::v1::ConnectorInstanceInfo> Instances() const;

  const Identity id_;
  const Shared* const shared_;
  const crypto::Ed25519PrivateKey result_key_;
  std::unique_ptr<writeback::v1::AgentService::Stub> stub_;
  std::unique_ptr<History> history_;
  // Statements received on the stream (tasks name them by digest).
  agent::StatementCache statements_;

  mutable std::mutex mu_;  // guards everything below; before Stream's lock
  std::condition_variable done_cv_;
  Stream* stream_ = nullptr;  // the open stream, or null
  bool welcomed_ = false;
  bool running_ = false;
  Backoff backoff_;
  absl::Time reconnect_at_ = absl::InfiniteFuture();
  absl::Time next_heartbeat_ = absl::InfiniteFuture();
  absl::Duration heartbeat_interval_ = absl::Seconds(10);
  // task id -> signed result not yet acknowledged by the control plane.
  std::map<std::string, writeback::v1::SignedEnvelope> outbox_;
  // task id -> decision id, for tasks whose result is not yet stored.
  std::map<std::string, std::string> open_tasks_;
  std::set<std::string> effects_;  // the in-memory target: objects "revoked"
  Counters counters_;
};

}  // namespace wb::bench
