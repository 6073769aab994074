// The agent's local journal: a RocksDB database in <data_dir>/journal that
// makes delivery "at least once, effect exactly once" (DESIGN.md section 4).
//
// Column families:
//   tasks     task_id → JournalTask (QUEUED → INTENT → DONE, with the task
//             digest, the signed task and, once DONE, the signed result)
//   pending   big-endian seq → task_id of tasks not DONE (arrival order)
//   versions  "<instance>/<object>" → highest decision_version acted on
//             (instance names never contain '/')
//   outbox    task_id → OutboxEntry: results not yet acknowledged by the
//             control plane
//   budget    big-endian accepted-at ms + task_id → "": tasks counted
//             against the trust policy's rate budget
//   meta      name → value: the agent's trust policy (agent/trust)
//   statements  SHA-256 → DecisionStatement bytes named by digest
//             (Task.statement_digest) by tasks not DONE: written with the
//             first such task, removed with the last one's Complete
// Every write is synced (WriteOptions::sync) before the call returns.
//
// Thread-safe: RocksDB serializes writers; the version bump in Complete is
// read-modify-write under an internal mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/checks/statements.h"
#include "agent/checks/task_checks.h"
#include "agent/journal/journal_record.pb.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace wb::agent {

using JournalTask = writeback::agent::v1::JournalTask;
using OutboxEntry = writeback::agent::v1::OutboxEntry;

class Journal final : public TaskHistory, public StatementSource {
 public:
  // Opens (creating if needed) the journal database in `dir`. One process
  // at a time: RocksDB's lock file refuses a second opener.
  //
  // State anchor (replays after a restore): with `anchor_file` (a file
  // OUTSIDE `dir`), the journal keeps the latest issue time of the tasks it
  // accepted both in its meta column family and in that file (RaiseAnchor).
  // Restoring `dir` from an older copy leaves the file ahead of the journal:
  // Open then sets a replay floor at the file's value (kept in the journal
  // for good), and every task issued up to it that the journal does not know
  // is refused as a replay (TaskHistory::ReplayFloorMs).
  static absl::StatusOr<std::unique_ptr<Journal>> Open(const std::string& dir,
                                                       const std::string& anchor_file = "");
  ~Journal() override;
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  absl::StatusOr<std::optional<JournalTask>> GetTask(absl::string_view task_id) const;

  // Records a task as QUEUED or INTENT. Synced. `entry->state` must be
  // QUEUED or INTENT; if entry->seq is 0 an arrival seq is assigned (and
  // stored in *entry): keep it for the later PutTask/Complete calls.
  // A task naming its statement by digest (entry->statement_digest) passes
  // the statement's bytes on its first PutTask unless another task not DONE
  // names the same statement (then they may be empty).
  absl::Status PutTask(JournalTask* entry, absl::string_view statement_bytes = {});

  // StatementSource: the statements tasks not DONE name by digest.
  std::shared_ptr<const std::string> FindStatement(absl::string_view digest) const override;
  // How many statements are kept (tests).
  size_t StatementsKept() const;

  // Records the task DONE with its signed result, removes it from pending,
  // puts the result in the outbox and, if `bump_version`, raises the
  // (instance, object) version to entry.decision_version — one synced batch.
  absl::Status Complete(const JournalTask& entry, bool bump_version);

  // Records that a task issued at `issued_at_ms` was accepted: raises the
  // anchor (journal, then the anchor file, synced) if it is later. No-op
  // without an anchor file.
  absl::Status RaiseAnchor(int64_t issued_at_ms);
  int64_t ReplayFloorMs() const override { return replay_floor_ms_; }

  // Tasks recorded with budget_at_unix_ms >= since_ms (rate budget).
  absl::StatusOr<size_t> CountBudgetSince(int64_t since_ms) const;
  // Forgets budget records older than `before_ms` (the longest window).
  absl::Status PruneBudget(int64_t before_ms);

  // Small named values (the trust policy). GetMeta: nullopt if absent.
  absl::Status PutMeta(absl::string_view name, absl::string_view value);
  absl::StatusOr<std::optional<std::string>> GetMeta(absl::string_view name) const;

  // Tasks not DONE (QUEUED or INTENT), in arrival order.
  absl::StatusOr<std::vector<JournalTask>> PendingTasks() const;

  // Outbox: results to (re)send until acknowledged. PutOutbox replaces any
  // entry for the same task_id. Outbox() lists in insertion order.
  absl::Status PutOutbox(absl::string_view task_id, const writeback::v1::SignedEnvelope& result);
  // The refusal of a task whose id is not authenticated (anyone on the path
  // can make such ids up): kept (entry marked `unauthenticated`) only while
  // fewer than `max_kept` such entries wait, and never in place of an entry
  // already there for that id (a real task's result). Returns whether it was
  // kept; the caller still sends it once.
  absl::StatusOr<bool> PutUnauthenticatedOutbox(absl::string_view task_id,
                                                const writeback::v1::SignedEnvelope& result,
                                                size_t max_kept);
  absl::Status RemoveOutbox(absl::string_view task_id);
  absl::StatusOr<std::vector<OutboxEntry>> Outbox() const;

  // TaskHistory.
  absl::StatusOr<std::optional<SeenTask>> FindTask(absl::string_view task_id) const override;
  absl::StatusOr<uint64_t> AppliedVersion(absl::string_view instance,
                                          absl::string_view object) const override;

 private:
  Journal() = default;
  uint64_t NextSeq() { return next_seq_.fetch_add(1); }
  absl::Status LoadAnchor(const std::string& anchor_file);

  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* tasks_ = nullptr;
  rocksdb::ColumnFamilyHandle* pending_ = nullptr;
  rocksdb::ColumnFamilyHandle* versions_ = nullptr;
  rocksdb::ColumnFamilyHandle* outbox_ = nullptr;
  rocksdb::ColumnFamilyHandle* budget_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* statements_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::atomic<uint64_t> next_seq_{1};
  std::string anchor_file_;
  std::mutex anchor_mu_;
  int64_t anchor_ms_ = 0;        // guarded by anchor_mu_
  int64_t replay_floor_ms_ = 0;  // fixed at Open
  std::mutex version_mu_;        // serializes the read-modify-write of versions
  std::mutex outbox_mu_;         // serializes PutUnauthenticatedOutbox's count-then-put
  // Tasks not DONE that name a statement by digest, and how many name each.
  mutable std::mutex statement_mu_;
  absl::flat_hash_map<std::string, std::string> pending_statement_;  // task_id → digest
  absl::flat_hash_map<std::string, size_t> statement_refs_;          // digest → tasks
};

}  // namespace wb::agent
