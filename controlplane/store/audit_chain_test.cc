// The audit chain in the RocksDB store, tampered with the way an attacker
// with the database would: with the store CLOSED, the test opens the
// RocksDB directory itself (same column families), deletes or alters
// entries, and checks that the verifier names the first broken link, both
// through a reopened store and through the read-only offline reader.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/audit/offline.h"
#include "common/audit/verifier.h"
#include "common/crypto/crypto.h"
#include "common/testing/temp_dir.h"
#include "controlplane/audit/raw_db_testing.h"
#include "controlplane/store/rocksdb_store.h"

namespace wb::controlplane {
namespace {

using audit::testing::RawDb;
using ::testing::HasSubstr;

writeback::v1::AuditEvent MakeEvent(writeback::v1::AuditEventKind kind, const std::string& detail) {
  writeback::v1::AuditEvent e;
  e.set_kind(kind);
  e.set_actor("spiffe://writeback.test/operator/alice");
  e.set_time_unix_ms(1000);
  e.set_detail(detail);
  return e;
}

audit::VerifyReport VerifyStore(Store* store, std::optional<audit::ChainHead> anchor) {
  return audit::VerifyChain(
      [store](uint64_t from, const audit::EntryFn& fn) { return store->ScanAudit(from, fn); },
      std::move(anchor));
}

// A store with `n` events appended (one per write).
void Fill(const std::string& path, int n) {
  auto store = RocksDbStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE((*store)
                    ->AppendAudit({MakeEvent(writeback::v1::AUDIT_EVENT_KIND_DECISION_SUBMITTED,
                                             absl::StrCat("event ", i + 1))})
                    .ok());
  }
}

// Verifies through a reopened store and through the offline reader; both
// must give the same report.
audit::VerifyReport VerifyBothWays(const std::string& path,
                                   std::optional<audit::ChainHead> anchor = std::nullopt) {
  audit::VerifyReport offline_report;
  {
    auto chain = audit::OfflineChain::Open(path, "--data-dir");
    EXPECT_TRUE(chain.ok()) << chain.status();
    if (chain.ok()) {
      offline_report = audit::VerifyChain(
          [&](uint64_t from, const audit::EntryFn& fn) { return (*chain)->Scan(from, fn); },
          anchor);
    }
  }
  auto store = RocksDbStore::Open(path);
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return {};
  audit::VerifyReport r = VerifyStore(store->get(), anchor);
  EXPECT_EQ(r.ok, offline_report.ok);
  EXPECT_EQ(r.broken_reason, offline_report.broken_reason);
  EXPECT_EQ(r.entries_checked, offline_report.entries_checked);
  return r;
}

audit::ChainHead HeadOf(const std::string& path) {
  auto store = RocksDbStore::Open(path);
  EXPECT_TRUE(store.ok());
  return store.ok() ? *(*store)->AuditHead() : audit::ChainHead();
}

TEST(AuditChainTest, IntactChainVerifies) {
  wb::testing::TempDir dir;
  const std::string path = dir.Sub("db");
  Fill(path, 20);
  auto r = VerifyBothWays(path, HeadOf(path));
  EXPECT_TRUE(r.ok) << r.broken_reason;
  EXPECT_EQ(r.entries_checked, 20u);
  EXPECT_EQ(r.head.seq, 20u);
}

TEST(AuditChainTest, AppendsContinueFromTheHeadAfterARestart) {
  wb::testing::TempDir dir;
  const std::string path = dir.Sub("db");
  Fill(path, 5);
  const audit::ChainHead before = HeadOf(path);
  EXPECT_EQ(before.seq, 5u);
  Fill(path, 3);                          // a second run of the store
  auto r = VerifyBothWays(path, before);  // the old head is still in place
  EXPECT_TRUE(r.ok) << r.broken_reason;
  EXPECT_EQ(r.head.seq, 8u);
}

TEST(AuditChainTest, DeletedMiddleEntryIsNamed) {
  wb::testing::TempDir dir;
  const std::string path = dir.Sub("db");
  Fill(path, 20);
  RawDb(path).Delete(9);
  auto r = VerifyBothWays(path);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.broken_seq, 9u);
  EXPECT_EQ(r.broken_reason, "seq 9: missing (the chain jumps from 8 to 10)");
  EXPECT_EQ(r.head.seq, 20u);
}

TEST(AuditChainTest, DeletedFirstEntryIsNamed) {
  wb::testing::TempDir dir;
  const std::string path = dir.Sub("db");
  Fill(path, 4);
  RawDb(path).Delete(1);
  auto r = VerifyBothWays(path);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.broken_reason, "seq 1: missing (the chain starts at seq 2)");
}

TEST(AuditChainTest, EveryChangedByteOfAnEntryIsNamed) {
  wb::testing::TempDir dir;
  const std::string path = dir.Sub("db");
  Fill(path, 12);
  std::string original;
  {
    RawDb db(path);
    original = db.Get(7);
  }
  // Each byte of entry 7 in turn, flipped, with the store closed.
  size_t named = 0;
  {
    RawDb db(path);
    for (size_t i = 0; i < original.size(); ++i) {
      std::string bad = original;
      bad[i] = static_cast<char>(bad[i] ^ 0x01);
      db.Put(7, bad);
      auto r = db.Verify();
      EXPECT_FALSE(r.ok) << "byte " << i;
      EXPECT_EQ(r.broken_seq, 7u) << "byte " << i << ": " << r.broken_reason;
      if (!r.ok && r.broken_seq == 7) ++named;
    }
    // One of them through a reopened store and the offline reader too.
    std::string bad = original;
    bad[original.size() / 2] ^= 0x01;
    db.Put(7, bad);
  }
  auto r = VerifyBothWays(path);
  EXPECT_EQ(r.broken_seq, 7u);
  RawDb(path).Put(7, original);
  EXPECT_TRUE(VerifyBothWays(path).ok);
  EXPECT_EQ(named, original.size());
  std::printf("audit chain: %zu of %zu single-byte changes of one entry named at its seq\n", named,
              original.size());
}

TEST(AuditChainTest, ChangedEventBytesAreAHashMismatch) {
  wb::testing::TempDir dir;
  const std::string path = dir.Sub("db");
  Fill(path, 12);
  {
    RawDb db(path);
    writeback::v1::AuditEntry entry;
    ASSERT_TRUE(entry.ParseFromString(db.Get(7)));
    std::string event = entry.event();
    event[event.size() - 1] ^= 0x20;  // inside the detail text
    entry.set_event(event);
    db.Put(7, entry.SerializeAsString());
  }
  auto r = VerifyBothWays(path);
  EXPECT_EQ(r.broken_reason, "seq 7: hash does not match its bytes");
}

TEST(AuditChainTest, ARewrittenEntryWithAFreshHashBreaksTheNextLink) {
  wb::testing::TempDir dir;
  const std::string path = dir.Sub("db");
  Fill(path, 12);
  const audit::ChainHead anchor = HeadOf(path);
  {
    RawDb db(path);
    writeback::v1::AuditEntry entry;
    ASSERT_TRUE(entry.ParseFromString(db.Get(7)));
    writeback::v1::AuditEvent e;
    ASSERT_TRUE(e.ParseFromString(entry.event()));
    e.set_detail("nothing happened here");
    entry.set_event(e.SerializeAsString());
    entry.set_hash(audit::EntryHash(entry.event()));  // the attacker recomputes
    db.Put(7, entry.SerializeAsString());
  }
  auto r = VerifyBothWays(path, anchor);
  EXPECT_EQ(r.broken_reason, "seq 8: prev_hash does not match seq 7");
}

TEST(AuditChainTest, DeletedTailIsInvisibleWithoutAnAnchorAndNamedWithOne) {
  wb::testing::TempDir dir;
  const std::string path = dir.Sub("db");
  Fill(path, 20);
  const audit::ChainHead anchor = HeadOf(path);
  {
    RawDb db(path);
    for (uint64_t s = 16; s <= 20; ++s) db.Delete(s);
  }
  // The documented limit: what is left is a valid chain.
  auto r = VerifyBothWays(path);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.head.seq, 15u);
  r = VerifyBothWays(path, anchor);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.broken_seq, 20u);
  EXPECT_THAT(r.broken_reason, HasSubstr("seq 20: missing (the chain ends at seq 15"));

  // The store continues from the cut head: new entries reuse seqs 16..,
  // and the anchor now names a different entry 20.
  Fill(path, 6);
  r = VerifyBothWays(path, anchor);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.broken_seq, 20u);
  EXPECT_THAT(r.broken_reason, HasSubstr("the anchor expects"));
}

TEST(AuditChainTest, AStrayKeyIsReportedAsUnreadable) {
  wb::testing::TempDir dir;
  const std::string path = dir.Sub("db");
  Fill(path, 3);
  RawDb(path).PutKey("abc", "x");  // sorts after the 8-byte keys (they start with 0x00)
  auto r = VerifyBothWays(path);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.broken_reason, HasSubstr("seq 4: unreadable (audit key 616263"));
}

TEST(AuditChainTest, OfflineReaderRefusesWhatIsNotADataDirectory) {
  wb::testing::TempDir dir;
  auto c = audit::OfflineChain::Open(dir.Sub("nothing-here"), "--data-dir");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("--data-dir"));
  EXPECT_EQ(audit::OfflineChain::Open("", "--data-dir").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace wb::controlplane
