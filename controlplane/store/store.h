// The control plane's durable state: decisions, tasks, per-agent outboxes and
// agents (records from proto/writeback/v1/records.proto).
//
// Store is an interface so that a PostgreSQL implementation can follow the
// embedded RocksDB one (rocksdb_store.h). Every implementation keeps these
// derived indexes itself, from the records it is given:
//   - an agent's outbox holds exactly its tasks in an open state (QUEUED or
//     DELIVERED), ordered by (decision version, target index);
//   - the expiry index holds exactly the decisions in an open state, by
//     statement expiry;
//   - the request-id index maps a submit's request_id to its decision;
//   - the state index holds every decision under its current state, by
//     version (QueryDecisions);
//   - the decision version counter never goes backwards, across restarts;
//   - each task's head (TaskHead: state, offline, covered) equals what its
//     record says (GetTaskHead), so hot paths need not parse the record.
//
// A decision's task counts (DecisionRecord.task_counts, kept by the
// dispatcher) are written with the decision AND with every write of its
// tasks (even when `decision_changed` is false), and read back with it:
// an implementation keeps them apart from the rest of the record so that
// a result costs the same write for a decision of 10 or 1,000 targets.
//
// The audit chain (common/audit/chain.h, docs/operations.md): every
// write that changes a decision or task takes the audit events describing
// the change and appends them in the SAME atomic write, so the chain never
// misses a stored change and never records one that was not stored. The
// store assigns each event its seq (1, 2, 3, ... in commit order, no gaps)
// and prev_hash (the previous entry's hash) under its own lock, serializes
// it once and stores those bytes with their hash. The caller fills in the
// rest (kind, time from its injected clock, actor, ids, states, digest); a
// seq or prev_hash it sets is replaced. The head (last seq and hash) is
// kept in memory and reloaded from the last stored entry when the store
// opens, so appends continue the chain across restarts.
//
// Every write is atomic (all of it or nothing) and durable (synced to disk)
// when it returns OK. Callers serialize read-modify-write cycles on one
// decision themselves (see dispatch/dispatcher.h); the store does not lock
// records.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/audit/chain.h"
#include "common/audit/verifier.h"
#include "writeback/v1/records.pb.h"

namespace wb::controlplane {

// QUEUED or DELIVERED: the task still waits for its agent's result.
bool IsOpenTaskState(writeback::v1::TaskState s);
// PENDING_APPROVAL, APPROVED or DISPATCHED: not finished yet.
bool IsOpenDecisionState(writeback::v1::DecisionState s);
// The head of a task record (what GetTaskHead returns for it).
writeback::v1::TaskHead HeadOf(const writeback::v1::TaskRecord& t);

// One decision's part of a write that changes several decisions at once
// (Store::SaveProgressBatch, Store::CreateDecision): the same meaning as
// SaveProgress' arguments.
struct DecisionUpdate {
  writeback::v1::DecisionRecord decision;
  bool decision_changed = false;
  std::vector<writeback::v1::TaskRecord> tasks;
};

// Store::QueryDecisions' arguments.
struct DecisionQuery {
  std::vector<writeback::v1::DecisionState> states;  // empty = every state
  uint64_t before_version = 0;                       // 0 = from the newest
  size_t limit = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // ---- Writes: atomic, synced before they return OK. ----

  // Stores a new decision with all its tasks, their outbox entries, the
  // version/expiry index entries and, if `request_id` is not empty, the
  // request-id index entry, and appends `audit_events`. Raises the version counter
  // to the decision's version if it is lower.
  // `others` are changes to other, existing decisions made in the same
  // atomic write (their tasks taken over by the new decision, delivery.md).
  virtual absl::Status CreateDecision(const writeback::v1::DecisionRecord& decision,
                                      const std::vector<writeback::v1::TaskRecord>& tasks,
                                      absl::string_view request_id,
                                      const std::vector<DecisionUpdate>& others,
                                      const audit::AuditEvents& audit_events) = 0;
  absl::Status CreateDecision(const writeback::v1::DecisionRecord& decision,
                              const std::vector<writeback::v1::TaskRecord>& tasks,
                              absl::string_view request_id,
                              const audit::AuditEvents& audit_events) {
    return CreateDecision(decision, tasks, request_id, {}, audit_events);
  }

  // Stores new values of `tasks` (all belonging to `decision`) and, if
  // `decision_changed`, of `decision` itself. Outbox and expiry index entries
  // follow the new states. `decision` must be the stored decision (or its new
  // value): it supplies the keys of the derived indexes and, when `tasks`
  // is not empty, the task counts written with them. Appends `audit_events`.
  // With no tasks, no decision change and no events it writes nothing.
  virtual absl::Status SaveProgress(const writeback::v1::DecisionRecord& decision,
                                    bool decision_changed,
                                    const std::vector<writeback::v1::TaskRecord>& tasks,
                                    const audit::AuditEvents& audit_events) = 0;

  // SaveProgress for several decisions in ONE atomic write (a result for a
  // task that covers other decisions' tasks changes them too). Each
  // update's tasks must belong to its decision (INVALID_ARGUMENT otherwise,
  // nothing written).
  virtual absl::Status SaveProgressBatch(const std::vector<DecisionUpdate>& updates,
                                         const audit::AuditEvents& audit_events) = 0;

  // Creates or replaces the binding of `binding.instance` and appends
  // `audit_events`, atomically.
  virtual absl::Status PutBinding(const writeback::v1::InstanceBinding& binding,
                                  const audit::AuditEvents& audit_events) = 0;

  // Appends `events` alone, for what has no other store write here:
  // enrolment, renewal, ban, trust policy change (or whose own write lives
  // elsewhere). Atomic and synced like every write: all of `events` get
  // consecutive seqs, or none is stored. INVALID_ARGUMENT (naming the
  // index) for an event without a kind; an empty list writes nothing.
  virtual absl::Status AppendAudit(const audit::AuditEvents& events) = 0;

  // Creates or replaces an agent record.
  virtual absl::Status PutAgent(const writeback::v1::AgentRecord& agent) = 0;

  // Replaces the trust policy the control plane distributes (exact signed
  // bytes; the caller verified it).
  virtual absl::Status PutTrustPolicy(const writeback::v1::SignedEnvelope& policy) = 0;

  // Creates or replaces a join token record (keyed by its token_digest).
  virtual absl::Status PutJoinToken(const writeback::v1::JoinTokenRecord& token) = 0;

  // Reserves the next decision version: greater than every version handed
  // out before by this store, and (after a restart) than every version of a
  // stored decision. Reserved but unused versions are skipped, never reused.
  virtual absl::StatusOr<uint64_t> NextDecisionVersion() = 0;

  // ---- Reads. NOT_FOUND errors name the id. ----

  virtual absl::StatusOr<writeback::v1::DecisionRecord> GetDecision(
      absl::string_view decision_id) = 0;
  virtual absl::StatusOr<writeback::v1::TaskRecord> GetTask(absl::string_view task_id) = 0;
  // The task's head without reading its record (for records stored before
  // heads existed: derived from the record).
  virtual absl::StatusOr<writeback::v1::TaskHead> GetTaskHead(absl::string_view task_id) = 0;
  virtual absl::StatusOr<writeback::v1::AgentRecord> GetAgent(absl::string_view agent_id) = 0;
  // The decision created by the submit with this request_id (NOT_FOUND if none).
  virtual absl::StatusOr<std::string> FindDecisionByRequestId(absl::string_view request_id) = 0;

  // NOT_FOUND if no token has this digest.
  virtual absl::StatusOr<writeback::v1::JoinTokenRecord> GetJoinToken(
      absl::string_view token_digest) = 0;
  // Every join token record (used, expired and revoked ones included).
  virtual absl::StatusOr<std::vector<writeback::v1::JoinTokenRecord>> ListJoinTokens() = 0;
  // The stored trust policy; nullopt if none was published.
  virtual absl::StatusOr<std::optional<writeback::v1::SignedEnvelope>> GetTrustPolicy() = 0;
  virtual absl::StatusOr<std::vector<writeback::v1::AgentRecord>> ListAgents() = 0;
  // Every instance binding (unbound ones included), by instance name.
  virtual absl::StatusOr<std::vector<writeback::v1::InstanceBinding>> ListBindings() = 0;
  // One page of decisions, newest (highest version) first: at most
  // `q.limit` whose state is one of `q.states` (empty: any state) and whose
  // version is below `q.before_version` (0: no bound). A caller pages by
  // passing the last version it got as the next before_version; versions
  // never change, so each decision is listed once however the states
  // change between pages (a decision that changes state may leave or
  // join a state-filtered listing). Listing by state reads only the
  // decisions in those states (a state index kept in the same atomic
  // write as the decision), never every decision.
  virtual absl::StatusOr<std::vector<writeback::v1::DecisionRecord>> QueryDecisions(
      const DecisionQuery& q) = 0;
  // QueryDecisions from the newest, `state` UNSPECIFIED matching every state.
  absl::StatusOr<std::vector<writeback::v1::DecisionRecord>> ListDecisions(
      size_t limit, writeback::v1::DecisionState state) {
    DecisionQuery q;
    q.limit = limit;
    if (state != writeback::v1::DECISION_STATE_UNSPECIFIED) q.states.push_back(state);
    return QueryDecisions(q);
  }

  // Task ids from the front of `agent_id`'s outbox, in order, skipping those
  // for which `skip` returns true, until `limit` were found.
  virtual absl::StatusOr<std::vector<std::string>> PeekOutbox(
      absl::string_view agent_id, size_t limit,
      const std::function<bool(absl::string_view task_id)>& skip) = 0;

  // The chain's head: the last entry appended (seq 0 when empty).
  virtual absl::StatusOr<audit::ChainHead> AuditHead() = 0;
  // Calls `fn(seq, stored value)` for every chain entry with seq >=
  // from_seq, in seq order, until `fn` returns false (audit::ScanFn). The
  // values are AuditEntry bytes exactly as stored; nothing is checked here
  // (that is audit::VerifyChain's job). DATA_LOSS for an unreadable key.
  virtual absl::Status ScanAudit(uint64_t from_seq, const audit::EntryFn& fn) = 0;

  // Ids of open decisions whose statement expired strictly before `now_unix_ms`,
  // earliest first, at most `limit`.
  virtual absl::StatusOr<std::vector<std::string>> ExpiredDecisions(int64_t now_unix_ms,
                                                                    size_t limit) = 0;
};

}  // namespace wb::controlplane
