// The verifier and the chain format on in-memory chains: every kind of
// broken link is named at the right seq, anchors, and the anchor syntax.
#include "common/audit/verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/audit/chain.h"
#include "common/audit/view.h"

namespace wb::audit {
namespace {

namespace v1 = writeback::v1;
using ::testing::HasSubstr;

// seq -> stored value, as a store keeps it.
using Chain = std::map<uint64_t, std::string>;

Chain Build(int n) {
  Chain c;
  ChainHead head;
  for (int i = 0; i < n; ++i) {
    v1::AuditEvent e = NewEvent(v1::AUDIT_EVENT_KIND_TASK_RESULT, "spiffe://t/agent/a", 1000 + i);
    e.set_detail(absl::StrCat("event ", i + 1));
    std::string value = SealEvent(e, &head);
    c[head.seq] = value;
  }
  return c;
}

VerifyReport Verify(const Chain& c, std::optional<ChainHead> anchor = std::nullopt) {
  return VerifyChain(
      [&c](uint64_t from, const EntryFn& fn) {
        for (auto it = c.lower_bound(from); it != c.end(); ++it) {
          if (!fn(it->first, it->second)) break;
        }
        return absl::OkStatus();
      },
      std::move(anchor));
}

ChainHead HeadOf(const Chain& c) {
  v1::AuditEntry e;
  EXPECT_TRUE(e.ParseFromString(c.rbegin()->second));
  return ChainHead{c.rbegin()->first, e.hash()};
}

v1::AuditEvent EventOf(const std::string& value) {
  v1::AuditEntry entry;
  v1::AuditEvent e;
  EXPECT_TRUE(entry.ParseFromString(value));
  EXPECT_TRUE(e.ParseFromString(entry.event()));
  return e;
}

// Re-seals `e` as entry `seq` with a correct hash of its (new) bytes.
std::string Reseal(const v1::AuditEvent& e) {
  v1::AuditEntry entry;
  entry.set_event(e.SerializeAsString());
  entry.set_hash(EntryHash(entry.event()));
  return entry.SerializeAsString();
}

TEST(ChainFormatTest, HashIsDomainSeparatedSha256OfTheStoredBytes) {
  Chain c = Build(2);
  v1::AuditEntry entry;
  ASSERT_TRUE(entry.ParseFromString(c[1]));
  EXPECT_EQ(entry.hash(), crypto::Sha256("writeback.v1/audit\n" + entry.event()));
  EXPECT_EQ(EventOf(c[1]).prev_hash(), std::string(32, '\0'));
  EXPECT_EQ(EventOf(c[2]).prev_hash(), entry.hash());
  EXPECT_EQ(EventOf(c[2]).seq(), 2u);
}

TEST(ChainFormatTest, KeysAreBigEndianAndParseBack) {
  EXPECT_EQ(EntryKey(1), std::string("\0\0\0\0\0\0\0\x01", 8));
  EXPECT_LT(EntryKey(255), EntryKey(256));
  EXPECT_EQ(*ParseEntryKey(EntryKey(123456789)), 123456789u);
  EXPECT_FALSE(ParseEntryKey("abc").ok());
}

TEST(ChainFormatTest, AnchorsParseAndRefuseBadInputNamingTheField) {
  const std::string hex(64, 'a');
  auto a = ParseAnchor("17:" + hex, "--expect-head");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->seq, 17u);
  EXPECT_EQ(FormatAnchor(*a), "17:" + hex);
  for (const std::string& bad : {std::string("17"), "0:" + hex, "x:" + hex, std::string("17:abc"),
                                 "17:" + std::string(64, 'z'), "-1:" + hex}) {
    auto r = ParseAnchor(bad, "--expect-head");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("--expect-head")) << bad;
  }
}

TEST(ChainFormatTest, KindNamesDropThePrefix) {
  EXPECT_EQ(KindName(v1::AUDIT_EVENT_KIND_DECISION_SUBMITTED), "DECISION_SUBMITTED");
  EXPECT_EQ(KindName(static_cast<v1::AuditEventKind>(99)), "UNKNOWN(99)");
}

TEST(VerifierTest, EmptyAndIntactChainsVerify) {
  auto r = Verify({});
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.head.seq, 0u);
  Chain c = Build(50);
  r = Verify(c, HeadOf(c));
  EXPECT_TRUE(r.ok) << r.broken_reason;
  EXPECT_EQ(r.entries_checked, 50u);
  EXPECT_EQ(r.head.seq, 50u);
  EXPECT_TRUE(r.anchor_checked);
  // An anchor in the middle holds as well.
  r = Verify(c, ChainHead{10, EntryHash(([&] {
                            v1::AuditEntry e;
                            e.ParseFromString(c[10]);
                            return e.event();
                          })())});
  EXPECT_TRUE(r.ok) << r.broken_reason;
}

TEST(VerifierTest, EachBreakIsNamedAtItsSeq) {
  struct Case {
    std::string name;
    std::function<void(Chain&)> damage;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"missing middle", [](Chain& c) { c.erase(17); },
       "seq 17: missing (the chain jumps from 16 to 18)"},
      {"missing first", [](Chain& c) { c.erase(1); }, "seq 1: missing (the chain starts at seq 2)"},
      {"garbage entry", [](Chain& c) { c[9] = "\xff\xff\xff"; }, "seq 9: entry does not parse"},
      {"changed detail",
       [](Chain& c) {
         v1::AuditEntry e;
         e.ParseFromString(c[9]);
         std::string ev = e.event();
         ev.back() ^= 1;
         e.set_event(ev);
         c[9] = e.SerializeAsString();
       },
       "seq 9: hash does not match its bytes"},
      {"changed stored hash",
       [](Chain& c) {
         v1::AuditEntry e;
         e.ParseFromString(c[9]);
         std::string h = e.hash();
         h[0] ^= 1;
         e.set_hash(h);
         c[9] = e.SerializeAsString();
       },
       "seq 9: hash does not match its bytes"},
      {"rewritten with a fresh hash",
       [](Chain& c) {
         v1::AuditEvent e = EventOf(c[11]);
         e.set_actor("spiffe://t/operator/mallory");
         c[11] = Reseal(e);
       },
       "seq 12: prev_hash does not match seq 11"},
      {"moved to another key",
       [](Chain& c) {
         c[12] = c[13];  // key 12 holds entry 13
       },
       "seq 12: event says seq 13"},
      {"no kind",
       [](Chain& c) {
         v1::AuditEvent e = EventOf(c[5]);
         e.clear_kind();
         c[5] = Reseal(e);
       },
       "seq 5: event has no kind"},
      {"first prev_hash not zero",
       [](Chain& c) {
         v1::AuditEvent e = EventOf(c[1]);
         e.set_prev_hash(std::string(32, '\x01'));
         c[1] = Reseal(e);
       },
       "seq 1: prev_hash of the first entry is not zero"},
      {"event bytes not an event",
       [](Chain& c) {
         v1::AuditEntry entry;
         entry.set_event("\xff\xff");
         entry.set_hash(EntryHash(entry.event()));
         c[3] = entry.SerializeAsString();
       },
       "seq 3: event does not parse"},
      {"two breaks: the first is named",
       [](Chain& c) {
         c.erase(20);
         c.erase(6);
       },
       "seq 6: missing (the chain jumps from 5 to 7)"},
  };
  for (const Case& k : cases) {
    Chain c = Build(30);
    k.damage(c);
    auto r = Verify(c);
    EXPECT_FALSE(r.ok) << k.name;
    EXPECT_EQ(r.broken_reason, k.reason) << k.name;
    EXPECT_EQ(r.broken_reason, absl::StrCat("seq ", r.broken_seq, ": ",
                                            r.broken_reason.substr(r.broken_reason.find(": ") + 2)))
        << k.name;
  }
}

TEST(VerifierTest, AnchorsDetectACutOrRegrownTail) {
  Chain c = Build(20);
  const ChainHead anchor = HeadOf(c);
  for (uint64_t s = 16; s <= 20; ++s) c.erase(s);
  EXPECT_TRUE(Verify(c).ok);  // the documented limit
  auto r = Verify(c, anchor);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.broken_seq, 20u);
  EXPECT_THAT(r.broken_reason, HasSubstr("seq 20: missing (the chain ends at seq 15"));

  Chain regrown = Build(25);  // same length and more, other content
  v1::AuditEvent e = EventOf(regrown[1]);
  e.set_detail("different");
  regrown = {};
  ChainHead h;
  for (int i = 0; i < 25; ++i) {
    e.set_time_unix_ms(i);
    std::string v = SealEvent(e, &h);
    regrown[h.seq] = v;
  }
  r = Verify(regrown, anchor);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.broken_seq, 20u);
  EXPECT_THAT(r.broken_reason, HasSubstr("the anchor expects"));

  // A chain break before the anchor is named first.
  Chain both = Build(20);
  both.erase(3);
  r = Verify(both, ChainHead{20, std::string(32, '\x07')});
  EXPECT_EQ(r.broken_seq, 3u);
}

TEST(VerifierTest, ASourceErrorIsABreakAfterTheLastEntryRead) {
  Chain c = Build(4);
  auto r = VerifyChain(
      [&c](uint64_t, const EntryFn& fn) {
        for (auto& [s, v] : c) fn(s, v);
        return absl::DataLossError("disk on fire");
      },
      std::nullopt);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.broken_reason, "seq 5: unreadable (disk on fire)");
}

TEST(ViewTest, EntryViewsCarryTheExactBytesAndDecodedFields) {
  Chain c = Build(2);
  v1::AuditEntryView v = EntryView(2, c[2]);
  EXPECT_EQ(v.seq(), 2u);
  EXPECT_EQ(v.kind(), "TASK_RESULT");
  EXPECT_EQ(v.detail(), "event 2");
  EXPECT_TRUE(v.error().empty());
  auto bytes = crypto::Base64Decode(v.event_base64());
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(crypto::HexEncode(EntryHash(*bytes)), v.hash_hex());
  v1::AuditEntry first;
  ASSERT_TRUE(first.ParseFromString(c[1]));
  EXPECT_EQ(v.prev_hash_hex(), crypto::HexEncode(first.hash()));

  v = EntryView(3, "\xff");
  EXPECT_FALSE(v.error().empty());
  EXPECT_EQ(v.event_base64(), crypto::Base64Encode("\xff"));
}

}  // namespace
}  // namespace wb::audit
