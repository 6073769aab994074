// Test-only: a control plane's RocksDB data directory opened directly, with
// every column family, the way an attacker with the disk would (the store
// must be closed), to delete or alter audit chain entries, or to edit any
// other column family by name (decisions, tasks, outbox, agents, meta; the
// key layout is in controlplane/store/rocksdb_store.h).
#pragma once

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/audit/chain.h"
#include "common/audit/verifier.h"

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
      by_name_.emplace_back(names[i], handles_[i]);
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
  // Any column family by name (null, and a test failure, if absent).
  rocksdb::ColumnFamilyHandle* Cf(const std::string& name) {
    for (const auto& [n, h] : by_name_) {
      if (n == name) return h;
    }
    ADD_FAILURE() << "no column family " << name;
    return nullptr;
  }
  void PutIn(const std::string& cf, const std::string& key, const std::string& value) {
    ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), Cf(cf), key, value).ok());
  }
  void DeleteIn(const std::string& cf, const std::string& key) {
    ASSERT_TRUE(db_->Delete(rocksdb::WriteOptions(), Cf(cf), key).ok());
  }
  // Every key of `cf` that starts with `prefix`.
  std::vector<std::string> KeysIn(const std::string& cf, const std::string& prefix) {
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), Cf(cf)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      out.push_back(it->key().ToString());
    }
    return out;
  }
  // nullopt if the key is absent.
  std::optional<std::string> GetIn(const std::string& cf, const std::string& key) {
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), Cf(cf), key, &v);
    if (s.IsNotFound()) return std::nullopt;
    EXPECT_TRUE(s.ok()) << s.ToString();
    return v;
  }
  // Every (key, value) of an audit entry, in seq order.
  std::vector<std::pair<uint64_t, std::string>> Entries() {
    std::vector<std::pair<uint64_t, std::string>> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), audit_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto seq = audit::ParseEntryKey(it->key().ToString());
      if (seq.ok()) out.emplace_back(*seq, it->value().ToString());
    }
    return out;
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
  std::vector<std::pair<std::string, rocksdb::ColumnFamilyHandle*>> by_name_;
};

}  // namespace wb::audit::testing
