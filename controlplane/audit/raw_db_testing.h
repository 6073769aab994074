// Test-only: a control plane's RocksDB data directory opened directly, with
// every column family, the way an attacker with the disk would (the store
// must be closed), to delete or alter audit chain entries.
#pragma once

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "controlplane/audit/chain.h"
#include "controlplane/audit/verifier.h"

namespace wb::audit::testing {

class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    std::vector<std::string> names;
    EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(), path, cfs, &handles_, &raw);
    if (!s.ok() || raw == nullptr) {
      std::fprintf(stderr, "cannot open %s: %s\n", path.c_str(), s.ToString().c_str());
      std::abort();  // nothing sensible can follow
    }
    db_.reset(raw);
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == audit::kAuditColumnFamily) audit_ = handles_[i];
    }
    EXPECT_NE(audit_, nullptr);
  }
  ~RawDb() {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    db_->Close();
  }
  void Delete(uint64_t seq) {
    ASSERT_TRUE(db_->Delete(rocksdb::WriteOptions(), audit_, audit::EntryKey(seq)).ok());
  }
  std::string Get(uint64_t seq) {
    std::string v;
    EXPECT_TRUE(db_->Get(rocksdb::ReadOptions(), audit_, audit::EntryKey(seq), &v).ok());
    return v;
  }
  void Put(uint64_t seq, const std::string& value) { PutKey(audit::EntryKey(seq), value); }
  void PutKey(const std::string& key, const std::string& value) {
    ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), audit_, key, value).ok());
  }
  // The verifier over this raw handle (the store stays closed).
  audit::VerifyReport Verify() {
    return audit::VerifyChain(
        [this](uint64_t from, const audit::EntryFn& fn) {
          std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), audit_));
          for (it->Seek(audit::EntryKey(from)); it->Valid(); it->Next()) {
            auto seq = audit::ParseEntryKey(it->key().ToString());
            if (!seq.ok()) return seq.status();
            if (!fn(*seq, it->value().ToString())) break;
          }
          return absl::OkStatus();
        },
        std::nullopt);
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* audit_ = nullptr;
};

}  // namespace wb::audit::testing
