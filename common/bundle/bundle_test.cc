#include "common/bundle/bundle.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "writeback/v1/decision.pb.h"

namespace wb::bundle {
namespace {

using writeback::v1::BundleManifest;
using writeback::v1::SignedEnvelope;
using writeback::v1::TaskBundle;

constexpr char kAgent[] = "spiffe://writeback.test/agent/gap";
constexpr char kOther[] = "spiffe://writeback.test/agent/other";
const absl::Time kNow = absl::FromUnixMillis(1'800'000'000'000);

class BundleTest : public ::testing::Test {
 protected:
  BundleTest() { keys_.Add(dispatch_.public_key()); }

  SignedEnvelope Task(const std::string& id) {
    writeback::v1::Task t;
    t.set_task_id(id);
    t.set_audience(kAgent);
    if (!statement_.empty()) t.set_statement_digest(crypto::Sha256(statement_));
    return envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, t.SerializeAsString(), dispatch_);
  }

  // A bundle of `n` tasks for `agent`, signed by `key`.
  TaskBundle Make(const std::string& bundle_id, int n, const std::string& agent = kAgent,
                  const crypto::Ed25519PrivateKey* key = nullptr) {
    BundleManifest m;
    m.set_bundle_id(bundle_id);
    m.set_agent_id(agent);
    m.set_controlplane_id("spiffe://writeback.test/controlplane/cp");
    m.set_created_at_unix_ms(absl::ToUnixMillis(kNow) - 1000);
    m.set_expires_at_unix_ms(absl::ToUnixMillis(kNow) + 3'600'000);
    std::vector<SignedEnvelope> tasks;
    for (int i = 0; i < n; ++i) {
      tasks.push_back(Task(absl::StrCat(bundle_id, "-t", i)));
      auto* e = m.add_entries();
      e->set_task_id(absl::StrCat(bundle_id, "-t", i));
      e->set_task_digest(PayloadDigest(tasks.back()));
    }
    auto env = envelope::Sign(writeback::v1::PAYLOAD_TYPE_BUNDLE_MANIFEST, m.SerializeAsString(),
                              key != nullptr ? *key : dispatch_);
    return MakeTaskBundle(
        env, std::move(tasks),
        statement_.empty() ? std::vector<std::string>{} : std::vector<std::string>{statement_});
  }

  absl::Status Check(const TaskBundle& b, absl::Time now = kNow) {
    // Through the file format, as the agent reads it.
    auto parsed = ParseTaskBundle(b.SerializeAsString(), "t.bundle");
    if (!parsed.ok()) return parsed.status();
    return CheckTaskBundle(*parsed, keys_, kAgent, now, absl::Seconds(60)).status();
  }

  crypto::Ed25519PrivateKey dispatch_ = crypto::Ed25519PrivateKey::Generate();
  envelope::Keyring keys_;
  // When set, tasks name this statement by digest and bundles carry it.
  std::string statement_;
};

void ExpectRefused(const absl::Status& s, const std::string& words) {
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find(words), std::string::npos) << s.message();
}

TEST_F(BundleTest, ValidBundlePasses) {
  auto b = Make("b-1", 3);
  ASSERT_TRUE(Check(b).ok()) << Check(b);
  auto m = CheckTaskBundle(b, keys_, kAgent, kNow, absl::Seconds(60));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->entries_size(), 3);
}

TEST_F(BundleTest, StatementNamedByTheTasksMustBeCarried) {
  statement_ = "the decision's statement";
  auto b = Make("b-1", 3);
  ASSERT_EQ(b.statements_size(), 1);
  ASSERT_TRUE(Check(b).ok()) << Check(b);
  auto removed = b;
  removed.clear_statements();
  ExpectRefused(Check(removed), "names a statement the file does not carry");
  auto altered = b;
  altered.set_statements(0, "another statement");
  ExpectRefused(Check(altered), "names a statement the file does not carry");
  auto extra = b;
  for (int i = 0; i < 3; ++i) extra.add_statements("padding");
  ExpectRefused(Check(extra), "statements: 4 statements for 3 tasks");
}

TEST_F(BundleTest, OneTaskRemovedIsRefused) {
  auto b = Make("b-1", 3);
  b.mutable_tasks()->RemoveLast();
  ExpectRefused(Check(b), "the manifest lists 3 tasks but the file holds 2 (a task was removed)");
  // Removed from the middle: counts differ as well.
  auto c = Make("b-1", 3);
  c.mutable_tasks()->DeleteSubrange(1, 1);
  ExpectRefused(Check(c), "a task was removed");
}

TEST_F(BundleTest, OneTaskAlteredIsRefused) {
  auto b = Make("b-1", 3);
  // A validly signed task, but not the bytes the manifest lists.
  writeback::v1::Task t;
  ASSERT_TRUE(t.ParseFromString(b.tasks(1).payload()));
  t.set_expires_at_unix_ms(t.expires_at_unix_ms() + 1);
  *b.mutable_tasks(1) =
      envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, t.SerializeAsString(), dispatch_);
  ExpectRefused(Check(b), "task 2 of 3 (b-1-t1) is not the one the manifest lists");
  // One byte of the payload flipped.
  auto c = Make("b-1", 3);
  c.mutable_tasks(2)->mutable_payload()->back() ^= 1;
  ExpectRefused(Check(c), "task 3 of 3 (b-1-t2) is not the one the manifest lists");
}

TEST_F(BundleTest, TaskFromAnotherBundleMixedInIsRefused) {
  auto b = Make("b-1", 3);
  auto other = Make("b-2", 3);
  *b.mutable_tasks(0) = other.tasks(0);
  ExpectRefused(Check(b), "(altered, or from another bundle)");
  // Added on top: counts differ.
  auto c = Make("b-1", 3);
  *c.add_tasks() = other.tasks(1);
  ExpectRefused(Check(c), "a task was added");
}

TEST_F(BundleTest, WrongAgentIsRefused) {
  auto b = Make("b-1", 2, kOther);
  auto s = Check(b);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  ExpectRefused(s, absl::StrCat("was exported for agent ", kOther, ", not for this agent"));
}

TEST_F(BundleTest, ExpiredIsRefusedUnlessAllowed) {
  auto b = Make("b-1", 2);
  const absl::Time later = kNow + absl::Hours(1) + absl::Seconds(61);
  auto s = Check(b, later);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  ExpectRefused(s, "bundle b-1 expired at");
  EXPECT_TRUE(Check(b, kNow + absl::Hours(1) + absl::Seconds(59)).ok());  // within the skew
  EXPECT_TRUE(CheckTaskBundle(b, keys_, kAgent, later, absl::Seconds(60), true).ok());
}

TEST_F(BundleTest, BadSignatureIsRefused) {
  auto b = Make("b-1", 2);
  b.mutable_manifest()->mutable_signature()->back() ^= 1;
  auto s = Check(b);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  ExpectRefused(s, "bundle manifest: not signed by a trusted dispatch key");
  // Signed by a key the agent does not trust.
  auto stranger = crypto::Ed25519PrivateKey::Generate();
  ExpectRefused(Check(Make("b-1", 2, kAgent, &stranger)), "not signed by a trusted dispatch key");
  // Manifest entry edited (the signature no longer covers it).
  auto c = Make("b-1", 2);
  BundleManifest m;
  ASSERT_TRUE(m.ParseFromString(c.manifest().payload()));
  m.mutable_entries()->RemoveLast();
  c.mutable_manifest()->set_payload(m.SerializeAsString());
  c.mutable_tasks()->RemoveLast();
  ExpectRefused(Check(c), "not signed by a trusted dispatch key");
}

TEST_F(BundleTest, WrongFileKindsHaveClearErrors) {
  ExpectRefused(ParseTaskBundle("hello", "x.txt").status(), "x.txt: not a Writeback task bundle");
  auto key = crypto::Ed25519PrivateKey::Generate();
  auto b = Make("b-1", 1);
  BundleManifest m;
  ASSERT_TRUE(m.ParseFromString(b.manifest().payload()));
  auto rf = MakeResultBundle(kAgent, b.manifest(), m, {}, 1, key);
  ExpectRefused(ParseTaskBundle(rf.SerializeAsString(), "r.bundle").status(),
                "r.bundle: is a result bundle, not a task bundle");
  ExpectRefused(ParseResultBundleFile(b.SerializeAsString(), "t.bundle").status(),
                "t.bundle: is a task bundle, not a result bundle");
  auto v2 = b;
  v2.set_format_version(2);
  ExpectRefused(ParseTaskBundle(v2.SerializeAsString(), "t.bundle").status(),
                "bundle format version 2 is not supported");
}

TEST_F(BundleTest, ResultBundleChecks) {
  auto agent_key = crypto::Ed25519PrivateKey::Generate();
  auto other_key = crypto::Ed25519PrivateKey::Generate();
  auto b = Make("b-1", 2);
  BundleManifest m;
  ASSERT_TRUE(m.ParseFromString(b.manifest().payload()));
  SignedEnvelope r1;
  r1.set_payload("r1");
  auto good = MakeResultBundle(kAgent, b.manifest(), m, {r1}, 1, agent_key);
  auto v = VerifyResultBundle(good, agent_key.public_key(), keys_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->manifest.bundle_id(), "b-1");

  // Tampered: one byte of the signed payload.
  auto tampered = good;
  tampered.mutable_bundle()->mutable_payload()->back() ^= 1;
  ExpectRefused(VerifyResultBundle(tampered, agent_key.public_key(), keys_).status(),
                "not signed by the result key registered for agent");
  // Signed by another agent's key but claiming to be this agent.
  auto forged = MakeResultBundle(kAgent, b.manifest(), m, {r1}, 1, other_key);
  ExpectRefused(VerifyResultBundle(forged, agent_key.public_key(), keys_).status(),
                "tampered with, or made by another agent");
  // Another agent answering this agent's bundle with its own key.
  auto theirs = MakeResultBundle(kOther, b.manifest(), m, {r1}, 1, other_key);
  auto s = VerifyResultBundle(theirs, other_key.public_key(), keys_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  ExpectRefused(s, absl::StrCat("bundle b-1 was exported to agent ", kAgent, ", not to ", kOther));
  // A manifest this control plane never signed: unknown bundle.
  auto stranger = crypto::Ed25519PrivateKey::Generate();
  auto fake = Make("b-9", 1, kAgent, &stranger);
  BundleManifest fm;
  ASSERT_TRUE(fm.ParseFromString(fake.manifest().payload()));
  ExpectRefused(
      VerifyResultBundle(MakeResultBundle(kAgent, fake.manifest(), fm, {r1}, 1, agent_key),
                         agent_key.public_key(), keys_)
          .status(),
      "unknown bundle b-9");
  // More results than tasks.
  ExpectRefused(
      VerifyResultBundle(MakeResultBundle(kAgent, b.manifest(), m, {r1, r1, r1}, 1, agent_key),
                         agent_key.public_key(), keys_)
          .status(),
      "results: 3 for 2 tasks");
}

}  // namespace
}  // namespace wb::bundle
