#include "agent/journal/journal.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"

namespace wb::agent {
namespace {

constexpr char kTasks[] = "tasks";
constexpr char kPending[] = "pending";
constexpr char kVersions[] = "versions";
constexpr char kOutbox[] = "outbox";
constexpr char kBudget[] = "budget";
constexpr char kMeta[] = "meta";
constexpr char kStatements[] = "statements";

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("journal: ", what, ": ", s.ToString()));
}

rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

std::string SeqKey(uint64_t seq) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i) {
    k[i] = static_cast<char>(seq & 0xff);
    seq >>= 8;
  }
  return k;
}

uint64_t DecodeU64(absl::string_view b) {
  uint64_t v = 0;
  for (unsigned char c : b) v = (v << 8) | c;
  return v;
}

std::string VersionKey(absl::string_view instance, absl::string_view object) {
  return absl::StrCat(instance, "/", object);
}

rocksdb::WriteOptions Synced() {
  rocksdb::WriteOptions w;
  w.sync = true;
  return w;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(const std::string& dir,
                                                       const std::string& anchor_file) {
  if (dir.empty()) return absl::InvalidArgumentError("journal: directory is empty");
  WB_RETURN_IF_ERROR(fs::MakeDirs(dir, 0700));
  rocksdb::DBOptions opts;
  opts.create_if_missing = true;
  opts.create_missing_column_families = true;
  opts.paranoid_checks = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
  for (const char* name : {kTasks, kPending, kVersions, kOutbox, kBudget, kMeta, kStatements}) {
    cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::unique_ptr<Journal> j(new Journal());
  rocksdb::DB* raw = nullptr;
  WB_RETURN_IF_ERROR(
      FromRocks(rocksdb::DB::Open(opts, dir, cfs, &j->handles_, &raw), absl::StrCat("open ", dir)));
  j->db_.reset(raw);
  j->tasks_ = j->handles_[1];
  j->pending_ = j->handles_[2];
  j->versions_ = j->handles_[3];
  j->outbox_ = j->handles_[4];
  j->budget_ = j->handles_[5];
  j->meta_ = j->handles_[6];
  j->statements_ = j->handles_[7];

  // Sequence numbers only order pending tasks and outbox entries: continue
  // after the highest one still present.
  uint64_t max_seq = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(j->db_->NewIterator(rocksdb::ReadOptions(), j->pending_));
    it->SeekToLast();
    if (it->Valid()) max_seq = DecodeU64(absl::string_view(it->key().data(), it->key().size()));
    WB_RETURN_IF_ERROR(FromRocks(it->status(), "scan pending"));
  }
  WB_ASSIGN_OR_RETURN(auto outbox, j->Outbox());
  for (const auto& e : outbox) max_seq = std::max<uint64_t>(max_seq, e.seq());
  j->next_seq_.store(max_seq + 1);
  // Which statements the tasks not DONE still name; statements no pending
  // task names are dropped (a crash between the two writes cannot leave
  // one behind: they are written in the task's own batch).
  {
    WB_ASSIGN_OR_RETURN(std::vector<JournalTask> pending, j->PendingTasks());
    for (const JournalTask& t : pending) {
      if (t.statement_digest().empty()) continue;
      j->pending_statement_[t.task_id()] = t.statement_digest();
      ++j->statement_refs_[t.statement_digest()];
    }
    rocksdb::WriteBatch batch;
    std::unique_ptr<rocksdb::Iterator> it(
        j->db_->NewIterator(rocksdb::ReadOptions(), j->statements_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string digest = it->key().ToString();
      if (!j->statement_refs_.contains(digest)) {
        WB_RETURN_IF_ERROR(FromRocks(batch.Delete(j->statements_, digest), "batch"));
      }
    }
    WB_RETURN_IF_ERROR(FromRocks(it->status(), "scan statements"));
    if (batch.Count() > 0) {
      WB_RETURN_IF_ERROR(FromRocks(j->db_->Write(Synced(), &batch), "prune statements"));
    }
  }
  if (!anchor_file.empty()) WB_RETURN_IF_ERROR(j->LoadAnchor(anchor_file));
  return j;
}

Journal::~Journal() {
  if (db_ == nullptr) return;
  for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
  (void)db_->Close();
}

absl::StatusOr<std::optional<JournalTask>> Journal::GetTask(absl::string_view task_id) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), tasks_, ToSlice(task_id), &value);
  if (s.IsNotFound()) return std::nullopt;
  WB_RETURN_IF_ERROR(FromRocks(s, "read task"));
  JournalTask t;
  if (!t.ParseFromString(value)) {
    return absl::DataLossError(absl::StrCat("journal: task ", task_id, " is corrupt"));
  }
  return t;
}

absl::Status Journal::PutTask(JournalTask* entry, absl::string_view statement_bytes) {
  if (entry->task_id().empty()) return absl::InvalidArgumentError("journal: task_id is empty");
  if (entry->state() != writeback::agent::v1::JOURNAL_STATE_QUEUED &&
      entry->state() != writeback::agent::v1::JOURNAL_STATE_INTENT) {
    return absl::InvalidArgumentError("journal: PutTask takes QUEUED or INTENT");
  }
  if (entry->seq() == 0) entry->set_seq(NextSeq());
  rocksdb::WriteBatch batch;
  // The statement the task names by digest is kept while a task not DONE
  // names it: written with the first such task, in its batch.
  std::unique_lock<std::mutex> stmt_lock(statement_mu_);
  bool first_reference = false;
  const std::string& digest = entry->statement_digest();
  if (!digest.empty() && !pending_statement_.contains(entry->task_id())) {
    if (statement_refs_[digest] == 0) {
      if (statement_bytes.empty()) {
        statement_refs_.erase(digest);
        return absl::InvalidArgumentError(absl::StrCat("journal: task ", entry->task_id(),
                                                       " names a statement that is not journaled"));
      }
      WB_RETURN_IF_ERROR(
          FromRocks(batch.Put(statements_, digest, ToSlice(statement_bytes)), "batch"));
      first_reference = true;
    }
    ++statement_refs_[digest];
    pending_statement_[entry->task_id()] = digest;
  }
  // Only a write that adds the statement waits for others touching
  // statements (Complete's removal of the last reference).
  if (!first_reference) stmt_lock.unlock();
  WB_RETURN_IF_ERROR(
      FromRocks(batch.Put(tasks_, ToSlice(entry->task_id()), entry->SerializeAsString()), "batch"));
  WB_RETURN_IF_ERROR(
      FromRocks(batch.Put(pending_, SeqKey(entry->seq()), ToSlice(entry->task_id())), "batch"));
  if (entry->state() == writeback::agent::v1::JOURNAL_STATE_QUEUED &&
      entry->budget_at_unix_ms() > 0) {
    const std::string key =
        absl::StrCat(SeqKey(static_cast<uint64_t>(entry->budget_at_unix_ms())), entry->task_id());
    WB_RETURN_IF_ERROR(FromRocks(batch.Put(budget_, key, ""), "batch"));
  }
  absl::Status written = FromRocks(db_->Write(Synced(), &batch), "write task");
  if (!written.ok() && !digest.empty()) {
    if (!stmt_lock.owns_lock()) stmt_lock.lock();
    if (pending_statement_.erase(entry->task_id()) > 0 && --statement_refs_[digest] == 0) {
      statement_refs_.erase(digest);
    }
  }
  return written;
}

std::shared_ptr<const std::string> Journal::FindStatement(absl::string_view digest) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), statements_, ToSlice(digest), &value);
  if (!s.ok()) return nullptr;
  return std::make_shared<const std::string>(std::move(value));
}

size_t Journal::StatementsKept() const {
  std::lock_guard<std::mutex> l(statement_mu_);
  return statement_refs_.size();
}

absl::Status Journal::LoadAnchor(const std::string& anchor_file) {
  anchor_file_ = anchor_file;
  auto meta_i64 = [this](absl::string_view name) -> absl::StatusOr<int64_t> {
    WB_ASSIGN_OR_RETURN(std::optional<std::string> v, GetMeta(name));
    int64_t out = 0;
    if (v.has_value() && !absl::SimpleAtoi(*v, &out)) {
      return absl::DataLossError(absl::StrCat("journal: meta ", name, " is corrupt"));
    }
    return out;
  };
  WB_ASSIGN_OR_RETURN(const int64_t journal_anchor, meta_i64("anchor"));
  WB_ASSIGN_OR_RETURN(int64_t floor, meta_i64("replay_floor"));
  int64_t file_anchor = 0;
  if (auto text = fs::ReadFile(anchor_file, 64); text.ok()) {
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &file_anchor)) {
      return absl::DataLossError(absl::StrCat("state anchor ", anchor_file, " is corrupt"));
    }
  } else if (text.status().code() != absl::StatusCode::kNotFound) {
    return text.status();
  }
  if (file_anchor > journal_anchor && file_anchor > floor) {
    // The directory is older than the anchor: it was restored from a copy.
    floor = file_anchor;
    WB_RETURN_IF_ERROR(PutMeta("replay_floor", absl::StrCat(floor)));
    WB_RETURN_IF_ERROR(PutMeta("anchor", absl::StrCat(file_anchor)));
  }
  replay_floor_ms_ = floor;
  anchor_ms_ = std::max(journal_anchor, file_anchor);
  return absl::OkStatus();
}

absl::Status Journal::RaiseAnchor(int64_t issued_at_ms) {
  if (anchor_file_.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> l(anchor_mu_);
  if (issued_at_ms <= anchor_ms_) return absl::OkStatus();
  // Journal first: a crash in between leaves the file behind, never ahead.
  WB_RETURN_IF_ERROR(PutMeta("anchor", absl::StrCat(issued_at_ms)));
  WB_RETURN_IF_ERROR(fs::WriteFileAtomic(anchor_file_, absl::StrCat(issued_at_ms, "\n")));
  anchor_ms_ = issued_at_ms;
  return absl::OkStatus();
}

absl::StatusOr<size_t> Journal::CountBudgetSince(int64_t since_ms) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), budget_));
  size_t n = 0;
  for (it->Seek(SeqKey(static_cast<uint64_t>(std::max<int64_t>(since_ms, 0)))); it->Valid();
       it->Next()) {
    ++n;
  }
  WB_RETURN_IF_ERROR(FromRocks(it->status(), "scan budget"));
  return n;
}

absl::Status Journal::PruneBudget(int64_t before_ms) {
  if (before_ms <= 0) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  WB_RETURN_IF_ERROR(FromRocks(
      batch.DeleteRange(budget_, SeqKey(0), SeqKey(static_cast<uint64_t>(before_ms))), "batch"));
  return FromRocks(db_->Write(Synced(), &batch), "prune budget");
}

absl::Status Journal::PutMeta(absl::string_view name, absl::string_view value) {
  return FromRocks(db_->Put(Synced(), meta_, ToSlice(name), ToSlice(value)), "write meta");
}

absl::StatusOr<std::optional<std::string>> Journal::GetMeta(absl::string_view name) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, ToSlice(name), &value);
  if (s.IsNotFound()) return std::nullopt;
  WB_RETURN_IF_ERROR(FromRocks(s, "read meta"));
  return value;
}

absl::Status Journal::Complete(const JournalTask& entry, bool bump_version) {
  if (entry.task_id().empty()) return absl::InvalidArgumentError("journal: task_id is empty");
  JournalTask e = entry;
  e.set_state(writeback::agent::v1::JOURNAL_STATE_DONE);
  OutboxEntry out;
  out.set_task_id(e.task_id());
  *out.mutable_signed_result() = e.signed_result();
  out.set_seq(NextSeq());

  std::lock_guard<std::mutex> lock(version_mu_);
  rocksdb::WriteBatch batch;
  WB_RETURN_IF_ERROR(
      FromRocks(batch.Put(tasks_, ToSlice(e.task_id()), e.SerializeAsString()), "batch"));
  // The last task not DONE that names a statement takes it along.
  std::unique_lock<std::mutex> stmt_lock(statement_mu_);
  std::string released;
  if (auto it = pending_statement_.find(e.task_id()); it != pending_statement_.end()) {
    auto refs = statement_refs_.find(it->second);
    if (refs != statement_refs_.end() && refs->second == 1) {
      released = it->second;
      WB_RETURN_IF_ERROR(FromRocks(batch.Delete(statements_, released), "batch"));
    }
  }
  if (released.empty()) stmt_lock.unlock();
  if (e.seq() != 0) WB_RETURN_IF_ERROR(FromRocks(batch.Delete(pending_, SeqKey(e.seq())), "batch"));
  WB_RETURN_IF_ERROR(
      FromRocks(batch.Put(outbox_, ToSlice(e.task_id()), out.SerializeAsString()), "batch"));
  if (bump_version) {
    WB_ASSIGN_OR_RETURN(uint64_t current, AppliedVersion(e.connector_instance(), e.object()));
    if (e.decision_version() > current) {
      WB_RETURN_IF_ERROR(
          FromRocks(batch.Put(versions_, VersionKey(e.connector_instance(), e.object()),
                              SeqKey(e.decision_version())),
                    "batch"));
    }
  }
  WB_RETURN_IF_ERROR(FromRocks(db_->Write(Synced(), &batch), "write result"));
  if (!stmt_lock.owns_lock()) stmt_lock.lock();
  if (auto it = pending_statement_.find(e.task_id()); it != pending_statement_.end()) {
    if (--statement_refs_[it->second] == 0) statement_refs_.erase(it->second);
    pending_statement_.erase(it);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<JournalTask>> Journal::PendingTasks() const {
  std::vector<JournalTask> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), pending_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string id = it->value().ToString();
    WB_ASSIGN_OR_RETURN(auto t, GetTask(id));
    if (!t.has_value()) {
      return absl::DataLossError(absl::StrCat("journal: pending task ", id, " has no record"));
    }
    if (t->state() == writeback::agent::v1::JOURNAL_STATE_DONE) continue;
    out.push_back(std::move(*t));
  }
  WB_RETURN_IF_ERROR(FromRocks(it->status(), "scan pending"));
  return out;
}

absl::Status Journal::PutOutbox(absl::string_view task_id,
                                const writeback::v1::SignedEnvelope& result) {
  OutboxEntry out;
  out.set_task_id(std::string(task_id));
  *out.mutable_signed_result() = result;
  out.set_seq(NextSeq());
  return FromRocks(db_->Put(Synced(), outbox_, ToSlice(task_id), out.SerializeAsString()),
                   "write outbox");
}

absl::StatusOr<bool> Journal::PutUnauthenticatedOutbox(absl::string_view task_id,
                                                       const writeback::v1::SignedEnvelope& result,
                                                       size_t max_kept) {
  std::lock_guard<std::mutex> lock(outbox_mu_);
  WB_ASSIGN_OR_RETURN(auto outbox, Outbox());
  size_t unauthenticated = 0;
  for (const auto& e : outbox) {
    if (e.task_id() == task_id) return false;  // never replaces what waits there
    if (e.unauthenticated()) ++unauthenticated;
  }
  if (unauthenticated >= max_kept) return false;
  OutboxEntry out;
  out.set_task_id(std::string(task_id));
  *out.mutable_signed_result() = result;
  out.set_seq(NextSeq());
  out.set_unauthenticated(true);
  WB_RETURN_IF_ERROR(FromRocks(
      db_->Put(Synced(), outbox_, ToSlice(task_id), out.SerializeAsString()), "write outbox"));
  return true;
}

absl::Status Journal::RemoveOutbox(absl::string_view task_id) {
  return FromRocks(db_->Delete(Synced(), outbox_, ToSlice(task_id)), "delete outbox");
}

absl::StatusOr<std::vector<OutboxEntry>> Journal::Outbox() const {
  std::vector<OutboxEntry> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), outbox_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    OutboxEntry e;
    if (!e.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(
          absl::StrCat("journal: outbox entry ", it->key().ToString(), " is corrupt"));
    }
    out.push_back(std::move(e));
  }
  WB_RETURN_IF_ERROR(FromRocks(it->status(), "scan outbox"));
  std::sort(out.begin(), out.end(),
            [](const OutboxEntry& a, const OutboxEntry& b) { return a.seq() < b.seq(); });
  return out;
}

absl::StatusOr<std::optional<SeenTask>> Journal::FindTask(absl::string_view task_id) const {
  WB_ASSIGN_OR_RETURN(auto t, GetTask(task_id));
  if (!t.has_value()) return std::nullopt;
  SeenTask seen;
  seen.task_digest = t->task_digest();
  switch (t->state()) {
    case writeback::agent::v1::JOURNAL_STATE_DONE:
      seen.state = SeenTask::State::kDone;
      seen.signed_result = t->signed_result();
      break;
    case writeback::agent::v1::JOURNAL_STATE_INTENT:
      seen.state = SeenTask::State::kInProgress;
      break;
    default:
      seen.state = SeenTask::State::kQueued;
      break;
  }
  return seen;
}

absl::StatusOr<uint64_t> Journal::AppliedVersion(absl::string_view instance,
                                                 absl::string_view object) const {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), versions_, VersionKey(instance, object), &value);
  if (s.IsNotFound()) return uint64_t{0};
  WB_RETURN_IF_ERROR(FromRocks(s, "read version"));
  if (value.size() != 8) return absl::DataLossError("journal: version record is corrupt");
  return DecodeU64(value);
}

}  // namespace wb::agent
