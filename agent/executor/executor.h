// The executor: turns signed tasks into signed results (DESIGN.md section 2,
// step 4). For each task, in this order:
//   arrival   fix now; CheckTask (agent/checks); journal: a refusal is
//             journaled DONE with its REJECTED result; an accepted task is
//             journaled QUEUED; then the task is acknowledged (Sink::OnTaskAck)
//   execution (one task per target at a time, in arrival order) fix now
//             again; repeat the stateless checks and the rollback check;
//             journal INTENT (synced) → PlanChange → no change: Verify
//             (ALREADY_COMPLIANT if confirmed) | Apply → Verify; build, sign
//             and journal the result (DONE + version + outbox, one synced
//             batch); then report it (Sink::OnResult).
// A task seen again returns its stored result without acting. On Start,
// tasks left QUEUED run normally; a task left in INTENT (crash after the
// intent was journaled: apply outcome unknown) is recovered, reported once
// with Result.recovered = true:
//   - idempotent operation (common/actions OperationTraits; for exec, declared
//     in the instance's config) whose task still passes the execution-time
//     checks (stateless checks + rollback): PlanChange → Apply → Verify run
//     again, once per start; a plan that finds the change already made
//     reports VERIFIED (the interrupted run may have made it);
//   - otherwise (not idempotent, or no longer valid, e.g. expired): not
//     applied again; the connector's Verify reports what is observed, and
//     the message says why it was not re-run.
//
// Results carry the task's id, decision, task digest (SHA-256 of the signed
// payload), outcome, evidence and agent time, and are signed with the
// agent's result key (PAYLOAD_TYPE_RESULT).
//
// Thread-safety: Submit, SetMaxInFlight and in_flight may be called from any
// thread. Sink callbacks come from the submitting thread and from worker
// threads, possibly concurrently.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/checks/task_checks.h"
#include "agent/journal/journal.h"
#include "agent/trust/agent_trust.h"
#include "common/clock/clock.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "connectors/connector.h"
#include "writeback/v1/config.pb.h"
#include "writeback/v1/decision.pb.h"
#include "writeback/v1/envelope.pb.h"

namespace wb::agent {

class Executor {
 public:
  // Where acknowledgements and results go (the link). Implementations must
  // not block for long and must not call back into the executor.
  class Sink {
   public:
    virtual ~Sink() = default;
    // The task is durably journaled (accepted, refused or seen before).
    virtual void OnTaskAck(const std::string& task_id) = 0;
    // A signed result, already in the journal outbox.
    virtual void OnResult(const std::string& task_id,
                          const writeback::v1::SignedEnvelope& result) = 0;
  };

  struct Instance {
    connectors::Connector* connector = nullptr;  // not owned; outlives the executor
    InstancePolicy policy;
    // Operations the instance's configuration declares idempotent (exec:
    // ExecConfig.idempotent_operations). Consulted only for operations whose
    // idempotency the catalogue leaves to the instance.
    std::set<std::string> declared_idempotent;
  };
  // The Instance for `cfg` (type, allowlist, declarations), served by
  // `connector` (not owned).
  static Instance InstanceFromConfig(const writeback::v1::ConnectorInstanceConfig& cfg,
                                     connectors::Connector* connector);

  struct Options {
    std::string agent_id;  // own SPIFFE ID
    // Pinned mode (tests, development): the dispatch keys. Ignored when
    // `trust` is set.
    envelope::Keyring dispatch_keys;
    // What the agent trusts (agent/trust); not owned, outlives the
    // executor. In root mode each check takes the current policy, and
    // accepted tasks (not re-verifications) count against the policy's rate
    // budget for this agent, kept in the journal: a task over budget is
    // refused with RATE_LIMITED.
    const AgentTrust* trust = nullptr;
    crypto::Ed25519PrivateKey result_key = crypto::Ed25519PrivateKey::Generate();
    std::map<std::string, Instance, std::less<>> instances;  // by instance name
    absl::Duration max_skew = absl::Seconds(60);
    int workers = 2;
    uint32_t max_in_flight = 64;  // until the control plane says otherwise
    absl::Duration connector_timeout = absl::Minutes(5);
    // Refusals of tasks whose id is not authenticated (a bad signature, an
    // unknown key: the id may have been made up on the way) kept in the
    // outbox until the control plane answers; beyond it they are sent once
    // and not kept (counted: refusals_not_kept).
    size_t max_unauthenticated_results = 256;
  };

  // `journal`, `clock` and `sink` are not owned and must outlive the
  // executor. `sink` may be null (results then only reach the outbox).
  Executor(Options opts, Journal* journal, const Clock* clock, Sink* sink);
  ~Executor();  // calls Stop()
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Recovers from the journal (INTENT → finish or verify, QUEUED → run) and
  // starts the workers. Call once.
  absl::Status Start();
  // Lets the running tasks finish, leaves queued ones in the journal (they
  // run on the next Start) and joins the workers. Idempotent. Submit
  // returns at once afterwards.
  void Stop();

  // Handles one task envelope as received. Returns once it is journaled and
  // acknowledged (or immediately if stopped, or on a journal error: then
  // nothing is acknowledged and the sender redelivers). Blocks while
  // max_in_flight tasks are queued or running (back-pressure).
  // `statements`: where statements named by digest are found first (a
  // bundle's; not owned), then the stream's and the journal's.
  void Submit(const writeback::v1::SignedEnvelope& env,
              const StatementSource* statements = nullptr);
  // A statement received on the stream (ControlMessage.statement): kept for
  // the tasks that name it by digest (agent/checks/statements.h).
  void OfferStatement(std::string bytes);

  // 0 restores the default (64).
  void SetMaxInFlight(uint32_t n);
  // Tasks queued or running.
  uint32_t in_flight() const;
  // Refusals sent once but not kept because the outbox already held
  // max_unauthenticated_results of them (since construction).
  uint64_t refusals_not_kept() const { return refusals_not_kept_.load(); }

  // Builds and signs a result (exposed for bundles and tests).
  static writeback::v1::SignedEnvelope SignResult(const writeback::v1::Result& result,
                                                  const crypto::Ed25519PrivateKey& key);

 private:
  struct Job {
    JournalTask entry;
    bool recover = false;  // INTENT found on start: Recover
  };

  // Statements named by digest are looked up in `statements` (null: in the
  // journal, then the stream's cache).
  CheckContext MakeContext(absl::Time now, const StatementSource* statements = nullptr) const;
  // Root mode: refuses `c` (RATE_LIMITED) if this agent's budget is spent.
  // Returns false when the history could not be read.
  bool CheckBudget(const CheckContext& ctx, TaskCheck& c) const;
  void WorkerLoop();
  void Run(Job job);
  void Execute(JournalTask entry);
  void Recover(JournalTask entry);
  // Empty if an interrupted apply of `operation` on `inst` may be run again;
  // otherwise why not, in words for the result.
  static std::string WhyNotRerun(const std::string& instance_name, const Instance& inst,
                                 const std::string& operation);
  // Journals `entry` DONE with `result` signed, then reports it.
  void Finish(JournalTask entry, const writeback::v1::Result& result, bool bump_version);
  void Reject(const TaskCheck& check, const writeback::v1::SignedEnvelope& env);
  writeback::v1::Result BaseResult(const writeback::v1::Task& task,
                                   const writeback::v1::DecisionStatement& statement,
                                   const std::string& task_digest) const;
  // Queues `job` behind earlier jobs for its target, unless its task is
  // already queued or running. mu_ held.
  void Enqueue(Job job);
  static std::string TargetKey(const JournalTask& e);

  const Options opts_;
  Journal* const journal_;
  StatementCache received_statements_;  // from the stream
  const StatementSources journal_first_{{journal_, &received_statements_}};
  const StatementSources stream_first_{{&received_statements_, journal_}};
  const Clock* const clock_;
  Sink* const sink_;

  std::mutex submit_mu_;  // one arrival at a time (check + journal)
  // Guards everything below; cv_ signals any change of it.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool stopping_ = false;
  uint32_t max_in_flight_;
  uint32_t in_flight_ = 0;
  // Per target key: jobs in arrival order; `busy_` holds targets being run.
  std::map<std::string, std::deque<Job>> queues_;
  std::deque<std::string> ready_;  // targets with work, not busy
  std::set<std::string> busy_;
  std::set<std::string> enqueued_;  // task ids queued or running
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> refusals_not_kept_{0};
};

}  // namespace wb::agent
