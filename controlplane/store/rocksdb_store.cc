#include "controlplane/store/rocksdb_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"

namespace wb::controlplane {

using writeback::v1::AgentRecord;
using writeback::v1::DecisionRecord;
using writeback::v1::DecisionState;
using writeback::v1::TaskRecord;
using writeback::v1::TaskState;

bool IsOpenTaskState(TaskState s) {
  return s == writeback::v1::TASK_STATE_QUEUED || s == writeback::v1::TASK_STATE_DELIVERED;
}

bool IsOpenDecisionState(DecisionState s) {
  return s == writeback::v1::DECISION_STATE_PENDING_APPROVAL ||
         s == writeback::v1::DECISION_STATE_APPROVED ||
         s == writeback::v1::DECISION_STATE_DISPATCHED;
}

writeback::v1::TaskHead HeadOf(const TaskRecord& t) {
  writeback::v1::TaskHead h;
  h.set_state(t.state());
  h.set_offline(!t.bundle_id().empty());
  h.set_covered(t.state() == writeback::v1::TASK_STATE_SUPERSEDED &&
                !t.covered_by_task_id().empty());
  return h;
}

namespace {

constexpr absl::string_view kCounterKey = "counter/decision_version";
constexpr absl::string_view kReqPrefix = "req/";
constexpr absl::string_view kVerPrefix = "ver/";
constexpr absl::string_view kExpPrefix = "exp/";
constexpr absl::string_view kTrustPolicyKey = "trust/policy";
constexpr absl::string_view kJoinTokenPrefix = "jt/";
constexpr absl::string_view kBindingPrefix = "bind/";
constexpr absl::string_view kTaskHeadPrefix = "th/";
constexpr absl::string_view kCountsPrefix = "cnt/";
constexpr absl::string_view kStatePrefix = "dstate/";
constexpr absl::string_view kStateOfPrefix = "dsi/";
constexpr absl::string_view kStateMigrationKey = "migration/dstate";
// Decisions per batch while Open builds the state index.
constexpr size_t kMigrationBatch = 10000;

void AppendBigEndian(uint64_t v, int bytes, std::string* out) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string BigEndian64(uint64_t v) {
  std::string s;
  AppendBigEndian(v, 8, &s);
  return s;
}

uint64_t ParseBigEndian64(absl::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

std::string OutboxPrefix(absl::string_view agent_id) {
  std::string p(agent_id);
  p.push_back('\0');
  return p;
}

std::string OutboxKey(absl::string_view agent_id, uint64_t version, uint32_t target_index) {
  std::string k = OutboxPrefix(agent_id);
  AppendBigEndian(version, 8, &k);
  AppendBigEndian(target_index, 4, &k);
  return k;
}

std::string VersionKey(uint64_t version) { return absl::StrCat(kVerPrefix, BigEndian64(version)); }

std::string ExpiryKey(int64_t expires_ms, absl::string_view decision_id) {
  return absl::StrCat(kExpPrefix,
                      BigEndian64(static_cast<uint64_t>(std::max<int64_t>(0, expires_ms))),
                      decision_id);
}

// "dstate/" BE32(state): the decisions in one state.
std::string StatePrefix(uint32_t state) {
  std::string k(kStatePrefix);
  AppendBigEndian(state, 4, &k);
  return k;
}

// Newest first in key order: the version is stored inverted.
std::string StateKey(uint32_t state, uint64_t version) {
  std::string k = StatePrefix(state);
  AppendBigEndian(~version, 8, &k);
  return k;
}

absl::string_view KeyView(const rocksdb::Iterator& it) {
  return absl::string_view(it.key().data(), it.key().size());
}

std::string StateOfKey(absl::string_view decision_id) {
  return absl::StrCat(kStateOfPrefix, decision_id);
}

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("store: ", what, ": ", s.ToString()));
}

rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

// INVALID_ARGUMENT naming the first event without a kind.
absl::Status CheckEvents(const audit::AuditEvents& events) {
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].kind() == writeback::v1::AUDIT_EVENT_KIND_UNSPECIFIED) {
      return absl::InvalidArgumentError(absl::StrCat("audit_events[", i, "].kind: required"));
    }
  }
  return absl::OkStatus();
}

template <typename Msg>
absl::StatusOr<Msg> ParseRecord(const std::string& bytes, absl::string_view what) {
  Msg m;
  if (!m.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat("store: ", what, ": record does not parse"));
  }
  return m;
}

// A state-index op (RocksDbStore::Op::state_index): key = decision id,
// value = BE64(version) BE32(state). Moves the decision's dstate/ entry from
// the state it is indexed under (the group's earlier writes in `indexed`,
// else the database's dsi/ entry) to `state`.
rocksdb::Status AddStateIndexOps(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta,
                                 const std::string& decision_id, absl::string_view where,
                                 std::map<std::string, std::optional<uint32_t>>* indexed,
                                 rocksdb::WriteBatch* batch) {
  const uint64_t version = ParseBigEndian64(where.substr(0, 8));
  const auto state = static_cast<uint32_t>(ParseBigEndian64(where.substr(8, 4)));
  auto it = indexed->find(decision_id);
  std::optional<uint32_t> old;
  if (it != indexed->end()) {
    old = it->second;
  } else {
    std::string v;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), meta, ToSlice(StateOfKey(decision_id)), &v);
    if (s.ok() && v.size() == 4) {
      old = static_cast<uint32_t>(ParseBigEndian64(v));
    } else if (!s.ok() && !s.IsNotFound()) {
      return s;
    }
  }
  (*indexed)[decision_id] = state;
  if (old == state) return rocksdb::Status::OK();
  if (old.has_value()) batch->Delete(meta, ToSlice(StateKey(*old, version)));
  batch->Put(meta, ToSlice(StateKey(state, version)), ToSlice(decision_id));
  std::string v;
  AppendBigEndian(state, 4, &v);
  batch->Put(meta, ToSlice(StateOfKey(decision_id)), ToSlice(v));
  return rocksdb::Status::OK();
}

}  // namespace

absl::StatusOr<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("data_dir: required");
  WB_RETURN_IF_ERROR(fs::MakeDirs(dir, 0700));
  rocksdb::DBOptions opts;
  opts.create_if_missing = true;
  opts.create_missing_column_families = true;
  opts.keep_log_file_num = 10;
  opts.max_log_file_size = 16 << 20;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const char* name :
       {"default", "decisions", "tasks", "outbox", "agents", "meta", audit::kAuditColumnFamily}) {
    cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::unique_ptr<RocksDbStore> store(new RocksDbStore());
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(opts, dir, cfs, &store->handles_, &raw);
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("data_dir: cannot open store in ", dir, ": ", s.ToString()));
  }
  store->db_.reset(raw);
  store->decisions_ = store->handles_[1];
  store->tasks_ = store->handles_[2];
  store->outbox_ = store->handles_[3];
  store->agents_ = store->handles_[4];
  store->meta_ = store->handles_[5];
  store->audit_ = store->handles_[6];
  WB_RETURN_IF_ERROR(store->LoadAuditHead());
  WB_RETURN_IF_ERROR(store->BuildStateIndex());

  // The version counter: the persisted value, and never below the newest
  // stored decision.
  uint64_t version = 0;
  std::string v;
  s = raw->Get(rocksdb::ReadOptions(), store->meta_, ToSlice(kCounterKey), &v);
  if (s.ok()) {
    version = ParseBigEndian64(v);
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "read version counter");
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions(), store->meta_));
    it->SeekForPrev(ToSlice(absl::StrCat(kVerPrefix, std::string(9, '\xff'))));
    if (it->Valid() && it->key().starts_with(ToSlice(kVerPrefix))) {
      version = std::max(
          version,
          ParseBigEndian64(
              absl::string_view(it->key().data(), it->key().size()).substr(kVerPrefix.size())));
    }
    WB_RETURN_IF_ERROR(FromRocks(it->status(), "scan versions"));
  }
  store->last_version_ = version;
  store->persisted_version_ = version;
  store->open_ = true;
  store->writer_ = std::thread([p = store.get()] { p->WriterLoop(); });
  return store;
}

absl::Status RocksDbStore::LoadAuditHead() {
  // The last entry with a well-formed key. Its stored hash is taken as it
  // is: if the chain was damaged, appends continue from what is there and
  // `audit verify` reports the damage.
  audit::ChainHead head;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), audit_));
  for (it->SeekToLast(); it->Valid(); it->Prev()) {
    auto seq = audit::ParseEntryKey(absl::string_view(it->key().data(), it->key().size()));
    if (!seq.ok()) {
      log::Warn("audit chain: skipping a malformed key", {{"error", seq.status().message()}});
      continue;
    }
    head.seq = *seq;
    writeback::v1::AuditEntry entry;
    if (entry.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) &&
        entry.hash().size() == audit::kHashBytes) {
      head.hash = entry.hash();
    } else {
      log::Warn("audit chain: the last entry does not parse; audit verify will report it",
                {{"seq", absl::StrCat(*seq)}});
    }
    break;
  }
  WB_RETURN_IF_ERROR(FromRocks(it->status(), "scan audit chain"));
  absl::MutexLock l(&audit_mu_);
  audit_head_ = head;
  return absl::OkStatus();
}

// A store written before the state index existed: index every decision
// under its stored state, in batches, then mark the index built (a crash
// half way redoes it from the records, which nothing changes meanwhile:
// the writer has not started).
absl::Status RocksDbStore::BuildStateIndex() {
  std::string marker;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, ToSlice(kStateMigrationKey), &marker);
  if (s.ok()) return absl::OkStatus();
  if (!s.IsNotFound()) return FromRocks(s, "read state index marker");
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::WriteBatch batch;
  size_t in_batch = 0, total = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), decisions_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    WB_ASSIGN_OR_RETURN(DecisionRecord d,
                        ParseRecord<DecisionRecord>(it->value().ToString(), "decision"));
    const auto state = static_cast<uint32_t>(d.state());
    batch.Put(meta_, ToSlice(StateKey(state, d.parsed().version())),
              ToSlice(d.parsed().decision_id()));
    std::string v;
    AppendBigEndian(state, 4, &v);
    batch.Put(meta_, ToSlice(StateOfKey(d.parsed().decision_id())), ToSlice(v));
    ++total;
    if (++in_batch >= kMigrationBatch) {
      WB_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch), "build state index"));
      batch.Clear();
      in_batch = 0;
    }
  }
  WB_RETURN_IF_ERROR(FromRocks(it->status(), "scan decisions"));
  batch.Put(meta_, ToSlice(kStateMigrationKey), rocksdb::Slice());
  WB_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch), "build state index"));
  if (total > 0)
    log::Info("store: built the decision state index", {{"decisions", absl::StrCat(total)}});
  return absl::OkStatus();
}

RocksDbStore::~RocksDbStore() { Close(); }

void RocksDbStore::Close() {
  {
    absl::MutexLock l(&mu_);
    if (closed_) return;
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
  absl::MutexLock l(&mu_);
  closed_ = true;
  open_ = false;
  if (db_) {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    handles_.clear();
    db_->Close();
    db_.reset();
  }
}

absl::Status RocksDbStore::Commit(std::vector<Op> ops, uint64_t version_floor,
                                  const audit::AuditEvents& audit_events) {
  PendingWrite w;
  w.ops = std::move(ops);
  w.audit_events = &audit_events;
  w.version_floor = version_floor;
  absl::MutexLock l(&mu_);
  if (stopping_) return absl::FailedPreconditionError("store: closed");
  queue_.push_back(&w);
  mu_.Await(absl::Condition(&w.done));
  return w.status;
}

void RocksDbStore::WriterLoop() {
  while (true) {
    std::deque<PendingWrite*> group;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || stopping_; };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping and drained
      group.swap(queue_);
    }
    rocksdb::WriteBatch batch;
    uint64_t floor = 0;
    // The state each decision of this group is indexed under after the
    // group's earlier writes (the database holds it for the others).
    std::map<std::string, std::optional<uint32_t>> indexed;
    rocksdb::Status index_status;
    for (PendingWrite* w : group) {
      floor = std::max(floor, w->version_floor);
      for (const Op& op : w->ops) {
        if (op.state_index) {
          auto s = AddStateIndexOps(db_.get(), meta_, op.key, *op.value, &indexed, &batch);
          if (!s.ok() && index_status.ok()) index_status = s;
        } else if (op.value.has_value()) {
          batch.Put(op.cf, ToSlice(op.key), ToSlice(*op.value));
        } else {
          batch.Delete(op.cf, ToSlice(op.key));
        }
      }
    }
    // The group's audit events, sealed in queue order onto the head.
    audit::ChainHead head;
    {
      absl::MutexLock l(&audit_mu_);
      head = audit_head_;
      for (PendingWrite* w : group) {
        for (const writeback::v1::AuditEvent& e : *w->audit_events) {
          std::string value = audit::SealEvent(e, &head);
          batch.Put(audit_, ToSlice(audit::EntryKey(head.seq)), ToSlice(value));
        }
      }
    }
    // The counter is written as the maximum of the group, never lowered by
    // a group that commits a smaller version after a larger one.
    if (floor > persisted_version_) {
      batch.Put(meta_, ToSlice(kCounterKey), ToSlice(BigEndian64(floor)));
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    absl::Status status = index_status.ok() ? FromRocks(db_->Write(wo, &batch), "write")
                                            : FromRocks(index_status, "read state index");
    if (status.ok() && floor > persisted_version_) persisted_version_ = floor;
    if (status.ok()) LowerOutboxFloors(group);
    if (status.ok()) {
      absl::MutexLock l(&audit_mu_);
      audit_head_ = head;
    }
    sync_count_.fetch_add(1);
    absl::MutexLock l(&mu_);
    for (PendingWrite* w : group) {
      w->status = status;
      w->done = true;
    }
  }
}

void RocksDbStore::LowerOutboxFloors(const std::deque<PendingWrite*>& group) {
  absl::MutexLock l(&floor_mu_);
  for (PendingWrite* w : group) {
    for (const Op& op : w->ops) {
      if (op.cf != outbox_ || !op.value.has_value()) continue;
      const std::string agent = op.key.substr(0, op.key.find('\0'));
      auto it = outbox_floors_.find(agent);
      if (it == outbox_floors_.end()) continue;  // no floor: scans start at the front
      // (An empty floor already means the front.)
      if (!it->second.key.empty() && op.key < it->second.key) it->second.key = op.key;
      ++it->second.gen;
    }
  }
}

void RocksDbStore::AddCountsOps(const DecisionRecord& decision, std::vector<Op>* ops) {
  if (!decision.has_task_counts()) return;
  ops->push_back({meta_, absl::StrCat(kCountsPrefix, decision.parsed().decision_id()),
                  decision.task_counts().SerializeAsString()});
}

void RocksDbStore::AddDecisionOps(const DecisionRecord& decision, std::vector<Op>* ops) {
  const std::string& id = decision.parsed().decision_id();
  if (decision.has_task_counts()) {
    // The counts live apart (written with every task write); the record
    // is written only when something else of it changes.
    DecisionRecord body = decision;
    body.clear_task_counts();
    ops->push_back({decisions_, id, body.SerializeAsString()});
    AddCountsOps(decision, ops);
  } else {  // a record without counts (they are counted again from its tasks)
    ops->push_back({decisions_, id, decision.SerializeAsString()});
    ops->push_back({meta_, absl::StrCat(kCountsPrefix, id), std::nullopt});
  }
  std::string exp_key = ExpiryKey(decision.parsed().expires_at_unix_ms(), id);
  if (IsOpenDecisionState(decision.state())) {
    ops->push_back({meta_, std::move(exp_key), std::string()});
  } else {
    ops->push_back({meta_, std::move(exp_key), std::nullopt});
  }
  std::string where;
  AppendBigEndian(decision.parsed().version(), 8, &where);
  AppendBigEndian(static_cast<uint32_t>(decision.state()), 4, &where);
  ops->push_back({meta_, id, std::move(where), /*state_index=*/true});
}

void RocksDbStore::AddTaskOps(const DecisionRecord& decision, const TaskRecord& task,
                              std::vector<Op>* ops) {
  ops->push_back({tasks_, task.task_id(), task.SerializeAsString()});
  ops->push_back(
      {meta_, absl::StrCat(kTaskHeadPrefix, task.task_id()), HeadOf(task).SerializeAsString()});
  std::string key = OutboxKey(task.agent_id(), decision.parsed().version(), task.target_index());
  if (IsOpenTaskState(task.state())) {
    ops->push_back({outbox_, std::move(key), task.task_id()});
  } else {
    ops->push_back({outbox_, std::move(key), std::nullopt});
  }
}

absl::Status RocksDbStore::AddUpdateOps(const DecisionUpdate& u, std::vector<Op>* ops) {
  if (u.decision_changed) {
    AddDecisionOps(u.decision, ops);
  } else if (!u.tasks.empty()) {
    AddCountsOps(u.decision, ops);
  }
  for (const TaskRecord& t : u.tasks) {
    if (t.decision_id() != u.decision.parsed().decision_id()) {
      return absl::InvalidArgumentError(absl::StrCat("store: task ", t.task_id(),
                                                     " does not belong to decision ",
                                                     u.decision.parsed().decision_id()));
    }
    AddTaskOps(u.decision, t, ops);
  }
  return absl::OkStatus();
}

absl::Status RocksDbStore::CreateDecision(const DecisionRecord& decision,
                                          const std::vector<TaskRecord>& tasks,
                                          absl::string_view request_id,
                                          const std::vector<DecisionUpdate>& others,
                                          const audit::AuditEvents& audit_events) {
  const auto& st = decision.parsed();
  if (st.decision_id().empty()) return absl::InvalidArgumentError("decision_id: required");
  WB_RETURN_IF_ERROR(CheckEvents(audit_events));
  std::vector<Op> ops;
  ops.reserve(5 + 3 * tasks.size());
  AddDecisionOps(decision, &ops);
  ops.push_back({meta_, VersionKey(st.version()), st.decision_id()});
  if (!request_id.empty()) {
    ops.push_back({meta_, absl::StrCat(kReqPrefix, request_id), st.decision_id()});
  }
  for (const TaskRecord& t : tasks) AddTaskOps(decision, t, &ops);
  for (const DecisionUpdate& u : others) WB_RETURN_IF_ERROR(AddUpdateOps(u, &ops));
  return Commit(std::move(ops), st.version(), audit_events);
}

absl::Status RocksDbStore::SaveProgress(const DecisionRecord& decision, bool decision_changed,
                                        const std::vector<TaskRecord>& tasks,
                                        const audit::AuditEvents& audit_events) {
  WB_RETURN_IF_ERROR(CheckEvents(audit_events));
  std::vector<Op> ops;
  ops.reserve(3 + 3 * tasks.size());
  if (decision_changed) {
    AddDecisionOps(decision, &ops);
  } else if (!tasks.empty()) {
    AddCountsOps(decision, &ops);
  }
  for (const TaskRecord& t : tasks) {
    if (t.decision_id() != decision.parsed().decision_id()) {
      return absl::InvalidArgumentError(absl::StrCat("store: task ", t.task_id(),
                                                     " does not belong to decision ",
                                                     decision.parsed().decision_id()));
    }
    AddTaskOps(decision, t, &ops);
  }
  if (ops.empty() && audit_events.empty()) return absl::OkStatus();
  return Commit(std::move(ops), 0, audit_events);
}

absl::Status RocksDbStore::SaveProgressBatch(const std::vector<DecisionUpdate>& updates,
                                             const audit::AuditEvents& audit_events) {
  WB_RETURN_IF_ERROR(CheckEvents(audit_events));
  std::vector<Op> ops;
  for (const DecisionUpdate& u : updates) WB_RETURN_IF_ERROR(AddUpdateOps(u, &ops));
  if (ops.empty() && audit_events.empty()) return absl::OkStatus();
  return Commit(std::move(ops), 0, audit_events);
}

absl::Status RocksDbStore::PutBinding(const writeback::v1::InstanceBinding& binding,
                                      const audit::AuditEvents& audit_events) {
  WB_RETURN_IF_ERROR(CheckOpen());
  if (binding.instance().empty()) return absl::InvalidArgumentError("instance: required");
  WB_RETURN_IF_ERROR(CheckEvents(audit_events));
  std::vector<Op> ops;
  ops.push_back(
      {meta_, absl::StrCat(kBindingPrefix, binding.instance()), binding.SerializeAsString()});
  return Commit(std::move(ops), 0, audit_events);
}

absl::StatusOr<std::vector<writeback::v1::InstanceBinding>> RocksDbStore::ListBindings() {
  WB_RETURN_IF_ERROR(CheckOpen());
  std::vector<writeback::v1::InstanceBinding> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
  for (it->Seek(ToSlice(kBindingPrefix));
       it->Valid() && it->key().starts_with(ToSlice(kBindingPrefix)); it->Next()) {
    WB_ASSIGN_OR_RETURN(auto rec, ParseRecord<writeback::v1::InstanceBinding>(
                                      it->value().ToString(), "instance binding"));
    out.push_back(std::move(rec));
  }
  WB_RETURN_IF_ERROR(FromRocks(it->status(), "scan instance bindings"));
  return out;
}

absl::Status RocksDbStore::AppendAudit(const audit::AuditEvents& events) {
  WB_RETURN_IF_ERROR(CheckEvents(events));
  if (events.empty()) return absl::OkStatus();
  return Commit({}, 0, events);
}

absl::Status RocksDbStore::PutAgent(const AgentRecord& agent) {
  if (agent.agent_id().empty()) return absl::InvalidArgumentError("agent_id: required");
  std::vector<Op> ops;
  ops.push_back({agents_, agent.agent_id(), agent.SerializeAsString()});
  static const audit::AuditEvents kNone;
  return Commit(std::move(ops), 0, kNone);
}

absl::StatusOr<uint64_t> RocksDbStore::NextDecisionVersion() {
  WB_RETURN_IF_ERROR(CheckOpen());
  return ++last_version_;
}

absl::Status RocksDbStore::CheckOpen() const {
  if (!open_.load()) return absl::FailedPreconditionError("store: closed");
  return absl::OkStatus();
}

absl::StatusOr<std::string> RocksDbStore::GetRaw(rocksdb::ColumnFamilyHandle* cf,
                                                 absl::string_view key, absl::string_view what) {
  WB_RETURN_IF_ERROR(CheckOpen());
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf, ToSlice(key), &v);
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat(what, " '", key, "' not found"));
  WB_RETURN_IF_ERROR(FromRocks(s, absl::StrCat("read ", what)));
  return v;
}

absl::StatusOr<DecisionRecord> RocksDbStore::GetDecision(absl::string_view decision_id) {
  WB_ASSIGN_OR_RETURN(std::string v, GetRaw(decisions_, decision_id, "decision"));
  WB_ASSIGN_OR_RETURN(DecisionRecord d, ParseRecord<DecisionRecord>(v, "decision"));
  auto counts = GetRaw(meta_, absl::StrCat(kCountsPrefix, decision_id), "task counts");
  if (counts.ok()) {
    if (!d.mutable_task_counts()->ParseFromString(*counts)) {
      return absl::DataLossError(
          absl::StrCat("store: task counts of decision ", decision_id, " do not parse"));
    }
  } else if (counts.status().code() != absl::StatusCode::kNotFound) {
    return counts.status();
  }
  return d;
}

absl::StatusOr<TaskRecord> RocksDbStore::GetTask(absl::string_view task_id) {
  WB_ASSIGN_OR_RETURN(std::string v, GetRaw(tasks_, task_id, "task"));
  return ParseRecord<TaskRecord>(v, "task");
}

absl::StatusOr<writeback::v1::TaskHead> RocksDbStore::GetTaskHead(absl::string_view task_id) {
  auto v = GetRaw(meta_, absl::StrCat(kTaskHeadPrefix, task_id), "task head");
  if (v.ok()) return ParseRecord<writeback::v1::TaskHead>(*v, "task head");
  if (v.status().code() != absl::StatusCode::kNotFound) return v.status();
  // Stored before heads existed.
  WB_ASSIGN_OR_RETURN(TaskRecord t, GetTask(task_id));
  return HeadOf(t);
}

absl::StatusOr<AgentRecord> RocksDbStore::GetAgent(absl::string_view agent_id) {
  WB_ASSIGN_OR_RETURN(std::string v, GetRaw(agents_, agent_id, "agent"));
  return ParseRecord<AgentRecord>(v, "agent");
}

absl::StatusOr<std::string> RocksDbStore::FindDecisionByRequestId(absl::string_view request_id) {
  WB_RETURN_IF_ERROR(CheckOpen());
  std::string v;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), meta_, ToSlice(absl::StrCat(kReqPrefix, request_id)), &v);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("request_id '", request_id, "' not found"));
  }
  WB_RETURN_IF_ERROR(FromRocks(s, "read request index"));
  return v;
}

absl::StatusOr<std::vector<AgentRecord>> RocksDbStore::ListAgents() {
  WB_RETURN_IF_ERROR(CheckOpen());
  std::vector<AgentRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), agents_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    WB_ASSIGN_OR_RETURN(AgentRecord a, ParseRecord<AgentRecord>(it->value().ToString(), "agent"));
    out.push_back(std::move(a));
  }
  WB_RETURN_IF_ERROR(FromRocks(it->status(), "scan agents"));
  return out;
}

absl::StatusOr<std::vector<DecisionRecord>> RocksDbStore::QueryDecisions(const DecisionQuery& q) {
  WB_RETURN_IF_ERROR(CheckOpen());
  std::vector<DecisionRecord> out;
  if (q.limit == 0 || q.before_version == 1) return out;
  // The highest version wanted.
  const uint64_t top = q.before_version == 0 ? ~uint64_t{0} : q.before_version - 1;
  if (q.states.empty()) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
    for (it->SeekForPrev(ToSlice(VersionKey(top)));
         it->Valid() && it->key().starts_with(ToSlice(kVerPrefix)); it->Prev()) {
      WB_ASSIGN_OR_RETURN(DecisionRecord d,
                          GetDecision(absl::string_view(it->value().data(), it->value().size())));
      out.push_back(std::move(d));
      if (out.size() >= q.limit) break;
    }
    WB_RETURN_IF_ERROR(FromRocks(it->status(), "scan decisions"));
    return out;
  }
  // One cursor per state over the state index, merged newest first.
  struct Cursor {
    std::string prefix;
    std::unique_ptr<rocksdb::Iterator> it;
    bool Live() const { return it->Valid() && it->key().starts_with(ToSlice(prefix)); }
  };
  std::vector<Cursor> cursors;
  for (DecisionState st : q.states) {
    const auto state = static_cast<uint32_t>(st);
    bool dup = false;
    for (const Cursor& c : cursors) dup = dup || c.prefix == StatePrefix(state);
    if (dup) continue;
    Cursor c{StatePrefix(state),
             std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(rocksdb::ReadOptions(), meta_))};
    c.it->Seek(ToSlice(StateKey(state, top)));
    cursors.push_back(std::move(c));
  }
  while (out.size() < q.limit) {
    Cursor* best = nullptr;
    for (Cursor& c : cursors) {
      if (!c.Live()) continue;
      // Same prefix length: the inverted version decides, smaller is newer.
      if (best == nullptr ||
          KeyView(*c.it).substr(c.prefix.size()) < KeyView(*best->it).substr(best->prefix.size())) {
        best = &c;
      }
    }
    if (best == nullptr) break;
    WB_ASSIGN_OR_RETURN(DecisionRecord d, GetDecision(absl::string_view(best->it->value().data(),
                                                                        best->it->value().size())));
    out.push_back(std::move(d));
    best->it->Next();
  }
  for (const Cursor& c : cursors) WB_RETURN_IF_ERROR(FromRocks(c.it->status(), "scan state index"));
  return out;
}

absl::StatusOr<std::vector<std::string>> RocksDbStore::PeekOutbox(
    absl::string_view agent_id, size_t limit, const std::function<bool(absl::string_view)>& skip) {
  WB_RETURN_IF_ERROR(CheckOpen());
  std::vector<std::string> out;
  if (limit == 0) return out;
  const std::string prefix = OutboxPrefix(agent_id);
  std::string end = prefix;
  end.back() = '\x01';  // just past every key of this agent
  std::string start = prefix;
  uint64_t gen = 0;
  {
    absl::MutexLock l(&floor_mu_);
    OutboxFloor& f = outbox_floors_[std::string(agent_id)];
    if (!f.key.empty()) start = f.key;
    gen = f.gen;
  }
  const rocksdb::Slice upper = ToSlice(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;  // stops at the agent's end, not at the next live key
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, outbox_));
  std::optional<std::string> first_live;
  for (it->Seek(ToSlice(start)); it->Valid() && it->key().starts_with(ToSlice(prefix));
       it->Next()) {
    if (!first_live.has_value()) first_live = it->key().ToString();
    absl::string_view task_id(it->value().data(), it->value().size());
    if (skip && skip(task_id)) continue;
    out.emplace_back(task_id);
    if (out.size() >= limit) break;
  }
  WB_RETURN_IF_ERROR(FromRocks(it->status(), "scan outbox"));
  {
    // Nothing live before `first_live` (or at all: the agent's end), unless
    // a write put an entry there meanwhile (then gen moved on).
    absl::MutexLock l(&floor_mu_);
    OutboxFloor& f = outbox_floors_[std::string(agent_id)];
    if (f.gen == gen) f.key = first_live.has_value() ? *first_live : end;
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> RocksDbStore::ExpiredDecisions(int64_t now_unix_ms,
                                                                        size_t limit) {
  WB_RETURN_IF_ERROR(CheckOpen());
  std::vector<std::string> out;
  const std::string end = absl::StrCat(
      kExpPrefix, BigEndian64(static_cast<uint64_t>(std::max<int64_t>(0, now_unix_ms))));
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
  for (it->Seek(ToSlice(kExpPrefix)); it->Valid() && it->key().starts_with(ToSlice(kExpPrefix)) &&
                                      it->key().compare(ToSlice(end)) < 0;
       it->Next()) {
    out.emplace_back(it->key().data() + kExpPrefix.size() + 8,
                     it->key().size() - kExpPrefix.size() - 8);
    if (out.size() >= limit) break;
  }
  WB_RETURN_IF_ERROR(FromRocks(it->status(), "scan expiry index"));
  return out;
}

absl::Status RocksDbStore::PutTrustPolicy(const writeback::v1::SignedEnvelope& policy) {
  WB_RETURN_IF_ERROR(CheckOpen());
  std::vector<Op> ops;
  ops.push_back({meta_, std::string(kTrustPolicyKey), policy.SerializeAsString()});
  return Commit(std::move(ops), 0, audit::AuditEvents{});
}

absl::StatusOr<std::optional<writeback::v1::SignedEnvelope>> RocksDbStore::GetTrustPolicy() {
  WB_RETURN_IF_ERROR(CheckOpen());
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, ToSlice(kTrustPolicyKey), &v);
  if (s.IsNotFound()) return std::nullopt;
  WB_RETURN_IF_ERROR(FromRocks(s, "read trust policy"));
  writeback::v1::SignedEnvelope env;
  if (!env.ParseFromString(v)) return absl::DataLossError("store: the trust policy is corrupt");
  return env;
}

absl::Status RocksDbStore::PutJoinToken(const writeback::v1::JoinTokenRecord& token) {
  WB_RETURN_IF_ERROR(CheckOpen());
  if (token.token_digest().size() != 32) {
    return absl::InvalidArgumentError("token_digest: must be 32 bytes");
  }
  std::vector<Op> ops;
  ops.push_back({meta_, absl::StrCat(kJoinTokenPrefix, crypto::HexEncode(token.token_digest())),
                 token.SerializeAsString()});
  return Commit(std::move(ops), 0, audit::AuditEvents{});
}

absl::StatusOr<writeback::v1::JoinTokenRecord> RocksDbStore::GetJoinToken(
    absl::string_view token_digest) {
  WB_RETURN_IF_ERROR(CheckOpen());
  std::string v;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), meta_,
               ToSlice(absl::StrCat(kJoinTokenPrefix, crypto::HexEncode(token_digest))), &v);
  if (s.IsNotFound()) return absl::NotFoundError("join token: unknown");
  WB_RETURN_IF_ERROR(FromRocks(s, "read join token"));
  return ParseRecord<writeback::v1::JoinTokenRecord>(v, "join token");
}

absl::StatusOr<std::vector<writeback::v1::JoinTokenRecord>> RocksDbStore::ListJoinTokens() {
  WB_RETURN_IF_ERROR(CheckOpen());
  std::vector<writeback::v1::JoinTokenRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
  for (it->Seek(ToSlice(kJoinTokenPrefix));
       it->Valid() && it->key().starts_with(ToSlice(kJoinTokenPrefix)); it->Next()) {
    WB_ASSIGN_OR_RETURN(auto rec, ParseRecord<writeback::v1::JoinTokenRecord>(
                                      it->value().ToString(), "join token"));
    out.push_back(std::move(rec));
  }
  WB_RETURN_IF_ERROR(FromRocks(it->status(), "scan join tokens"));
  return out;
}

absl::StatusOr<audit::ChainHead> RocksDbStore::AuditHead() {
  WB_RETURN_IF_ERROR(CheckOpen());
  absl::MutexLock l(&audit_mu_);
  return audit_head_;
}

absl::Status RocksDbStore::ScanAudit(uint64_t from_seq, const audit::EntryFn& fn) {
  WB_RETURN_IF_ERROR(CheckOpen());
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), audit_));
  for (it->Seek(ToSlice(audit::EntryKey(from_seq))); it->Valid(); it->Next()) {
    auto seq = audit::ParseEntryKey(absl::string_view(it->key().data(), it->key().size()));
    if (!seq.ok()) return absl::DataLossError(seq.status().message());
    if (!fn(*seq, absl::string_view(it->value().data(), it->value().size()))) break;
  }
  return FromRocks(it->status(), "scan audit chain");
}

}  // namespace wb::controlplane
