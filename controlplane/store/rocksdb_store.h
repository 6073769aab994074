// Store on embedded RocksDB (the default). Column families:
//   decisions  decision_id -> DecisionRecord
//   tasks      task_id -> TaskRecord
//   outbox     agent_id 0x00 BE64(decision version) BE32(target index) -> task_id
//              (scans start at a remembered floor per agent, past the
//              tombstones finished tasks leave at the front)
//   agents     agent_id -> AgentRecord
//   meta       "counter/decision_version" -> BE64 (highest stored version)
//              "req/" request_id -> decision_id
//              "ver/" BE64(version) -> decision_id       (newest-first listing)
//              "exp/" BE64(expires_at_ms) decision_id -> "" (open decisions)
//              "th/" task_id -> TaskHead          (written with every task)
//              "cnt/" decision_id -> TaskStateCounts (with the decision and
//                     with every write of its tasks; the decision's own
//                     record is stored without them)
//              "dstate/" BE32(state) BE64(~version) -> decision_id
//                                            (state index, newest first)
//              "dsi/" decision_id -> BE32(state)  (the state it is indexed under)
//              "migration/dstate" -> ""    (the state index was built)
//   audit      BE64(seq) -> AuditEntry{event bytes, hash}  (common/audit/chain.h)
//
// Group commit: every write call hands its mutations to a single writer
// thread and waits. The writer takes everything queued while the previous
// sync ran, writes it as ONE WriteBatch with sync=true, and then releases all
// those callers, so N concurrent calls cost one fsync instead of N. Each
// call's mutations are all in the same batch, so each call stays atomic.
// The writer also seals the group's audit events (seq, prev_hash, hash) in
// queue order while it builds the batch, under audit_mu_, and publishes the
// new head only once the batch is synced; a failed write leaves the head
// where it was, so the next append reuses those seqs.
// The state index is kept by the writer too: a decision write carries a
// state-index op, which the writer turns into "move the decision's dstate/
// entry from the state recorded under dsi/ (read from the group's earlier
// writes, else the database) to its new state", in the same batch. Open
// builds the index once for a store written before it existed.
//
// Thread-safety: all methods may be called concurrently. Close (or the
// destructor) must not race with other calls.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/store/store.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace wb::controlplane {

class RocksDbStore final : public Store {
 public:
  // Opens (creating if needed) the store in directory `dir`.
  static absl::StatusOr<std::unique_ptr<RocksDbStore>> Open(const std::string& dir);
  ~RocksDbStore() override;
  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  // Finishes queued writes, stops the writer and closes the database. Later
  // calls fail with FAILED_PRECONDITION. Idempotent.
  void Close();

  absl::Status CreateDecision(const writeback::v1::DecisionRecord& decision,
                              const std::vector<writeback::v1::TaskRecord>& tasks,
                              absl::string_view request_id,
                              const std::vector<DecisionUpdate>& others,
                              const audit::AuditEvents& audit_events) override;
  using Store::CreateDecision;
  absl::Status SaveProgress(const writeback::v1::DecisionRecord& decision, bool decision_changed,
                            const std::vector<writeback::v1::TaskRecord>& tasks,
                            const audit::AuditEvents& audit_events) override;
  absl::Status SaveProgressBatch(const std::vector<DecisionUpdate>& updates,
                                 const audit::AuditEvents& audit_events) override;
  absl::Status PutBinding(const writeback::v1::InstanceBinding& binding,
                          const audit::AuditEvents& audit_events) override;
  absl::StatusOr<std::vector<writeback::v1::InstanceBinding>> ListBindings() override;
  absl::Status AppendAudit(const audit::AuditEvents& events) override;
  absl::Status PutAgent(const writeback::v1::AgentRecord& agent) override;
  absl::StatusOr<uint64_t> NextDecisionVersion() override;
  absl::Status PutTrustPolicy(const writeback::v1::SignedEnvelope& policy) override;
  absl::Status PutJoinToken(const writeback::v1::JoinTokenRecord& token) override;
  absl::StatusOr<writeback::v1::JoinTokenRecord> GetJoinToken(
      absl::string_view token_digest) override;
  absl::StatusOr<std::vector<writeback::v1::JoinTokenRecord>> ListJoinTokens() override;
  absl::StatusOr<std::optional<writeback::v1::SignedEnvelope>> GetTrustPolicy() override;

  absl::StatusOr<writeback::v1::DecisionRecord> GetDecision(absl::string_view decision_id) override;
  absl::StatusOr<writeback::v1::TaskRecord> GetTask(absl::string_view task_id) override;
  absl::StatusOr<writeback::v1::TaskHead> GetTaskHead(absl::string_view task_id) override;
  absl::StatusOr<writeback::v1::AgentRecord> GetAgent(absl::string_view agent_id) override;
  absl::StatusOr<std::string> FindDecisionByRequestId(absl::string_view request_id) override;
  absl::StatusOr<std::vector<writeback::v1::AgentRecord>> ListAgents() override;
  absl::StatusOr<std::vector<writeback::v1::DecisionRecord>> QueryDecisions(
      const DecisionQuery& q) override;
  absl::StatusOr<std::vector<std::string>> PeekOutbox(
      absl::string_view agent_id, size_t limit,
      const std::function<bool(absl::string_view task_id)>& skip) override;
  absl::StatusOr<std::vector<std::string>> ExpiredDecisions(int64_t now_unix_ms,
                                                            size_t limit) override;
  absl::StatusOr<audit::ChainHead> AuditHead() override;
  absl::Status ScanAudit(uint64_t from_seq, const audit::EntryFn& fn) override;

  // Number of synced batches written so far (for tests of group commit).
  uint64_t sync_count() const { return sync_count_.load(); }

 private:
  struct Op {
    rocksdb::ColumnFamilyHandle* cf;
    std::string key;
    std::optional<std::string> value;  // nullopt = delete
    // A state-index op (key: decision id, value: BE64 version BE32 state),
    // resolved by the writer thread (see above).
    bool state_index = false;
  };
  struct PendingWrite {
    std::vector<Op> ops;
    const audit::AuditEvents* audit_events = nullptr;  // owned by the caller
    uint64_t version_floor = 0;
    absl::Status status;
    bool done = false;
  };

  RocksDbStore() = default;
  absl::Status Commit(std::vector<Op> ops, uint64_t version_floor,
                      const audit::AuditEvents& audit_events);
  absl::Status LoadAuditHead();
  absl::Status BuildStateIndex();
  void WriterLoop();
  void AddTaskOps(const writeback::v1::DecisionRecord& decision,
                  const writeback::v1::TaskRecord& task, std::vector<Op>* ops);
  void AddDecisionOps(const writeback::v1::DecisionRecord& decision, std::vector<Op>* ops);
  void AddCountsOps(const writeback::v1::DecisionRecord& decision, std::vector<Op>* ops);
  absl::Status AddUpdateOps(const DecisionUpdate& u, std::vector<Op>* ops);
  absl::StatusOr<std::string> GetRaw(rocksdb::ColumnFamilyHandle* cf, absl::string_view key,
                                     absl::string_view what);

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* decisions_ = nullptr;
  rocksdb::ColumnFamilyHandle* tasks_ = nullptr;
  rocksdb::ColumnFamilyHandle* outbox_ = nullptr;
  rocksdb::ColumnFamilyHandle* agents_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* audit_ = nullptr;

  absl::Status CheckOpen() const;

  std::atomic<bool> open_{false};
  std::atomic<uint64_t> last_version_{0};
  std::atomic<uint64_t> sync_count_{0};

  absl::Mutex mu_;
  std::deque<PendingWrite*> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Only touched by the writer thread.
  uint64_t persisted_version_ = 0;
  // The chain's head: read by AuditHead, changed only by the writer thread
  // (or Open) after a synced write.
  mutable absl::Mutex audit_mu_;
  audit::ChainHead audit_head_ ABSL_GUARDED_BY(audit_mu_);

  // Where each agent's outbox scan may start (PeekOutbox): the first live
  // key the last scan from the front found, so scans do not walk the
  // tombstones that finished tasks leave at the front. Lowered (and `gen`
  // bumped) after every synced write that puts an entry below it; a scan
  // raises it only if no such write happened while it ran.
  struct OutboxFloor {
    std::string key;  // empty: scan from the agent's first key
    uint64_t gen = 0;
  };
  void LowerOutboxFloors(const std::deque<PendingWrite*>& group);
  absl::Mutex floor_mu_;
  absl::flat_hash_map<std::string, OutboxFloor> outbox_floors_ ABSL_GUARDED_BY(floor_mu_);
  std::thread writer_;
};

}  // namespace wb::controlplane
