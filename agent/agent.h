// The Writeback agent (DESIGN.md sections 1-4): validates its configuration,
// builds its connectors, opens its journal and loads its keys; then keeps one
// outbound stream to the control plane (agent/link), checks every task
// (agent/checks), applies it through a connector and reports a signed result
// (agent/executor), journaling each step (agent/journal).
//
// Thread-safety: Start, Stop, connected and the accessors may be called from
// any thread; Stop is idempotent and the destructor calls it.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/executor/executor.h"
#include "agent/identity/identity.h"
#include "agent/journal/journal.h"
#include "agent/link/link.h"
#include "agent/trust/agent_trust.h"
#include "common/clock/clock.h"
#include "common/crypto/crypto.h"
#include "connectors/connector.h"
#include "connectors/registry.h"
#include "writeback/v1/config.pb.h"

namespace wb::agent {

// This build's version, reported in Hello.
const char* AgentVersion();

class Agent final : private Link::Handler, private Executor::Sink {
 public:
  // Validates the whole config (errors name the field, e.g.
  // "connectors[1].allowed_operations[0]: ..."), builds connectors through
  // `registry`, opens the journal in cfg.data_dir and loads the keys.
  // `registry` is only used during Create; `clock` must outlive the agent.
  static absl::StatusOr<std::unique_ptr<Agent>> Create(const writeback::v1::AgentConfig& cfg,
                                                       const connectors::Registry& registry,
                                                       const Clock* clock = SystemClock::Get());

  // The same validation as Create (files readable, keys load, connectors
  // build), without opening the journal: `writeback-agent check-config`.
  static absl::Status CheckConfig(const writeback::v1::AgentConfig& cfg,
                                  const connectors::Registry& registry);

  ~Agent() override;
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Recovers unfinished tasks from the journal, starts the executor and the
  // link (dials out); returns at once.
  absl::Status Start();
  // Graceful: running tasks finish, queued ones stay journaled, the stream
  // closes. Idempotent.
  void Stop();
  // The stream is currently established (Welcome received).
  bool connected() const;

  const std::string& agent_id() const { return agent_id_; }
  const std::string& result_key_id() const { return result_key_.key_id(); }
  // Results not yet acknowledged by the control plane (journal outbox).
  absl::StatusOr<size_t> unacknowledged_results() const;
  // The agent's certificate is valid now (false: NOT READY; the renewer
  // re-joins by itself unless the agent is banned).
  bool identity_valid() const;
  // Certificates obtained by renewal or re-joining since start.
  int certificate_renewals() const;
  // What the agent trusts, e.g. "trust policy v3" (agent/trust).
  std::string trust_state() const;
  // False while a root-pinned agent holds no trust policy (it refuses
  // every task then): NOT READY.
  bool trust_ready() const;
  // Connection attempts so far (for tests and diagnostics).
  int connect_attempts() const { return link_->attempts(); }
  // How the last stream ended: the control plane's own status when it ended
  // it (PERMISSION_DENIED "agent ... is banned", FAILED_PRECONDITION
  // "... is served by agent ...", ...); OK before any stream ended. Kept
  // while the next attempt connects (as the status file says).
  absl::Status last_stream_end() const;

  // Results the control plane refused, results dropped from the outbox
  // because it does not know their task (e.g. ids injected on the way), and
  // refusals of unauthenticated tasks sent once but not kept (outbox bound),
  // since start. Also in the status file.
  uint64_t results_refused() const { return results_refused_.load(); }
  uint64_t results_dropped_unknown_task() const { return results_dropped_unknown_.load(); }
  uint64_t results_not_kept() const { return executor_->refusals_not_kept(); }

  // <data_dir>/status.json: what the running agent last knew about its
  // stream, outbox and counters (AgentStatusFile in
  // agent/journal/journal_record.proto), rewritten on connect, on
  // disconnect, on refused results and every heartbeat. Read by
  // `writeback-agent status`, which cannot open the daemon's journal.
  static std::string StatusFilePath(const writeback::v1::AgentConfig& cfg);
  static absl::StatusOr<writeback::agent::v1::AgentStatusFile> ReadStatusFile(
      const writeback::v1::AgentConfig& cfg);

 private:
  explicit Agent(const Clock* clock);

  std::vector<writeback::v1::ConnectorInstanceInfo> InstanceInfos(bool with_health);

  // Link::Handler
  writeback::v1::Hello MakeHello() override;
  writeback::v1::SignedEnvelope ProveHello(const writeback::v1::Hello& hello) override;
  writeback::v1::Heartbeat MakeHeartbeat() override;
  std::vector<writeback::v1::AgentMessage> OnConnected(
      const writeback::v1::Welcome& welcome) override;
  void OnTask(const writeback::v1::SignedEnvelope& task) override;
  void OnResultAck(const writeback::v1::ResultAck& ack) override;
  void OnTrustPolicy(const writeback::v1::SignedEnvelope& policy) override;
  void OnStatement(const std::string& statement) override;
  void OnDisconnected(const absl::Status& why) override;
  // Rewrites the status file (best effort: a failure is logged);
  // `connected` overrides what the link says.
  void WriteStatus(std::optional<bool> connected = std::nullopt);

  // Executor::Sink
  void OnTaskAck(const std::string& task_id) override;
  void OnResult(const std::string& task_id, const writeback::v1::SignedEnvelope& result) override;

  const Clock* const clock_;
  std::string agent_id_;
  crypto::Ed25519PrivateKey result_key_;
  std::map<std::string, std::string> labels_;
  // Connector instances, in config order, with their allowed operations.
  struct InstanceEntry {
    std::unique_ptr<connectors::Connector> connector;
    std::string type;
    std::vector<std::string> operations;
  };
  std::vector<InstanceEntry> instances_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<AgentTrust> trust_;  // after journal_, which it uses
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Link> link_;
  std::unique_ptr<Renewer> renewer_;

  std::mutex mu_;  // guards started_, stopped_
  bool started_ = false;
  bool stopped_ = false;

  std::string status_file_;
  std::atomic<uint64_t> results_refused_{0};
  std::atomic<uint64_t> results_dropped_unknown_{0};
  mutable std::mutex status_mu_;  // guards the fields below and serializes WriteStatus
  int64_t connected_since_ms_ = 0;
  int64_t stream_ended_ms_ = 0;
  absl::Status stream_end_;
  // From the last Welcome: instances the control plane does not route here.
  std::vector<std::string> refused_instances_;
};

}  // namespace wb::agent
