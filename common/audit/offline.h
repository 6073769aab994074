// Reading the audit chain straight from a control plane's RocksDB directory
// (forensics while the control plane is stopped: `wbctl audit verify
// --data-dir DIR`). Opens the database READ-ONLY: nothing is written, no
// lock is taken, and a running control plane's latest writes may not be
// visible (stop it first for a complete answer).
//
// Thread-safety: an OfflineChain may be scanned from one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/audit/verifier.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace wb::audit {

class OfflineChain {
 public:
  // Errors: INVALID_ARGUMENT naming `field` when `dir` is empty, not a
  // RocksDB database, or has no "audit" column family; FAILED_PRECONDITION
  // when it cannot be opened read-only (e.g. permissions).
  static absl::StatusOr<std::unique_ptr<OfflineChain>> Open(const std::string& dir,
                                                            absl::string_view field);
  ~OfflineChain();
  OfflineChain(const OfflineChain&) = delete;
  OfflineChain& operator=(const OfflineChain&) = delete;

  // As ScanFn (verifier.h). A key that is not 8 bytes is a DATA_LOSS error.
  absl::Status Scan(uint64_t from_seq, const EntryFn& fn);

 private:
  OfflineChain() = default;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* audit_ = nullptr;
};

}  // namespace wb::audit
