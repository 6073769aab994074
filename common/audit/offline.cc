#include "common/audit/offline.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace wb::audit {

absl::StatusOr<std::unique_ptr<OfflineChain>> OfflineChain::Open(const std::string& dir,
                                                                 absl::string_view field) {
  if (dir.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names);
  if (!s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": ", dir, " is not a control plane data directory (", s.ToString(), ")"));
  }
  auto it = std::find(names.begin(), names.end(), kAuditColumnFamily);
  if (it == names.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", dir,
                     " has no audit chain (column families: ", absl::StrJoin(names, ", "), ")"));
  }
  const size_t audit_index = static_cast<size_t>(it - names.begin());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const std::string& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::unique_ptr<OfflineChain> chain(new OfflineChain());
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir, cfs, &chain->handles_, &raw);
  if (!s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": cannot open ", dir, " read-only: ", s.ToString()));
  }
  chain->db_.reset(raw);
  chain->audit_ = chain->handles_[audit_index];
  return chain;
}

OfflineChain::~OfflineChain() {
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  db_->Close();
}

absl::Status OfflineChain::Scan(uint64_t from_seq, const EntryFn& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), audit_));
  const std::string start = EntryKey(from_seq);
  for (it->Seek(start); it->Valid(); it->Next()) {
    auto seq = ParseEntryKey(absl::string_view(it->key().data(), it->key().size()));
    if (!seq.ok()) return absl::DataLossError(seq.status().message());
    if (!fn(*seq, absl::string_view(it->value().data(), it->value().size()))) break;
  }
  if (!it->status().ok()) {
    return absl::DataLossError(absl::StrCat("audit: scan: ", it->status().ToString()));
  }
  return absl::OkStatus();
}

}  // namespace wb::audit
