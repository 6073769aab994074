#include "agent/checks/task_checks.h"

#include <gtest/gtest.h>

#include <map>

#include "agent/testing/task_factory.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "common/trust/approvals.h"
#include "common/trust/testing.h"

namespace wb::agent {
namespace {

using testing::MakeSignedTask;
using testing::MakeStatement;
using testing::MakeTaskFor;
using testing::SignTask;
using testing::TaskSpec;
using writeback::v1::SignedEnvelope;

constexpr char kAgentId[] = "spiffe://writeback.test/agent/a1";
// Field 99, varint 1: a field no version of Task/DecisionStatement knows.
constexpr char kUnknownField[] = "\x98\x06\x01";

class FakeHistory : public TaskHistory {
 public:
  absl::StatusOr<std::optional<SeenTask>> FindTask(absl::string_view id) const override {
    if (!error.ok()) return error;
    auto it = tasks.find(std::string(id));
    if (it == tasks.end()) return std::nullopt;
    return it->second;
  }
  absl::StatusOr<uint64_t> AppliedVersion(absl::string_view instance,
                                          absl::string_view object) const override {
    if (!error.ok()) return error;
    auto it = versions.find(std::string(instance) + "/" + std::string(object));
    return it == versions.end() ? 0 : it->second;
  }
  std::map<std::string, SeenTask> tasks;
  std::map<std::string, uint64_t> versions;
  absl::Status error;
};

class TaskChecksTest : public ::testing::Test {
 protected:
  TaskChecksTest() : key_(crypto::Ed25519PrivateKey::Generate()) {
    keyring_.Add(key_.public_key());
    ctx_.agent_id = kAgentId;
    ctx_.dispatch_keys = &keyring_;
    ctx_.instances["ssh-main"] = {"ssh_authorized_keys", {"remove_key", "remove_by_comment"}};
    ctx_.max_skew = absl::Seconds(60);
    ctx_.now = spec().now;
  }

  TaskSpec spec() const {
    TaskSpec s;
    s.audience = kAgentId;
    return s;
  }

  TaskCheck Check(const SignedEnvelope& env) { return CheckTask(env, ctx_, &history_); }

  void ExpectReject(const SignedEnvelope& env, writeback::v1::RejectReason reason) {
    TaskCheck c = Check(env);
    EXPECT_EQ(c.verdict, Verdict::kReject) << c.message;
    EXPECT_EQ(writeback::v1::RejectReason_Name(c.reason), writeback::v1::RejectReason_Name(reason))
        << c.message;
    EXPECT_FALSE(c.message.empty());
  }

  crypto::Ed25519PrivateKey key_;
  envelope::Keyring keyring_;
  CheckContext ctx_;
  FakeHistory history_;
};

TEST_F(TaskChecksTest, AcceptsAValidTask) {
  SignedEnvelope env = MakeSignedTask(spec(), key_);
  TaskCheck c = Check(env);
  ASSERT_EQ(c.verdict, Verdict::kAccept) << c.message;
  EXPECT_TRUE(c.authentic);
  EXPECT_EQ(c.task.task_id(), "task-1");
  EXPECT_EQ(c.statement.decision_id(), "dec-1");
  EXPECT_EQ(c.connector_type, "ssh_authorized_keys");
  EXPECT_EQ(c.task_digest, crypto::Sha256(env.payload()));
  EXPECT_EQ(c.reason, writeback::v1::REJECT_REASON_UNSPECIFIED);
}

TEST_F(TaskChecksTest, BytesAlteredAfterSigningAreBadSignature) {
  SignedEnvelope env = MakeSignedTask(spec(), key_);
  std::string p = env.payload();
  p[p.size() - 1] ^= 0x01;
  env.set_payload(p);
  ExpectReject(env, writeback::v1::REJECT_REASON_BAD_SIGNATURE);
  EXPECT_FALSE(Check(env).authentic);
}

TEST_F(TaskChecksTest, AlteredSignatureIsBadSignature) {
  SignedEnvelope env = MakeSignedTask(spec(), key_);
  std::string sig = env.signature();
  sig[0] ^= 0x80;
  env.set_signature(sig);
  ExpectReject(env, writeback::v1::REJECT_REASON_BAD_SIGNATURE);
}

TEST_F(TaskChecksTest, UnknownSignerIsUnknownKey) {
  auto other = crypto::Ed25519PrivateKey::Generate();
  SignedEnvelope env = MakeSignedTask(spec(), other);
  ExpectReject(env, writeback::v1::REJECT_REASON_UNKNOWN_KEY);
  // The claimed id is kept for the report, but never trusted.
  TaskCheck c = Check(env);
  EXPECT_FALSE(c.authentic);
  EXPECT_EQ(c.claimed_task_id, "task-1");
  EXPECT_EQ(c.task_id(), "task-1");
}

TEST_F(TaskChecksTest, WrongPayloadTypeIsMalformed) {
  auto t = MakeTaskFor(spec(), MakeStatement(spec()).SerializeAsString(), key_.key_id());
  SignedEnvelope env =
      envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT, t.SerializeAsString(), key_);
  ExpectReject(env, writeback::v1::REJECT_REASON_MALFORMED);
}

TEST_F(TaskChecksTest, EmptyPayloadIsMalformed) {
  SignedEnvelope env = envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, "", key_);
  ExpectReject(env, writeback::v1::REJECT_REASON_MALFORMED);
}

TEST_F(TaskChecksTest, SignedGarbageIsMalformed) {
  SignedEnvelope env = envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, "\xff\xff\xff", key_);
  ExpectReject(env, writeback::v1::REJECT_REASON_MALFORMED);
}

TEST_F(TaskChecksTest, UnknownFieldInTaskIsMalformed) {
  auto t = MakeTaskFor(spec(), MakeStatement(spec()).SerializeAsString(), key_.key_id());
  SignedEnvelope env =
      envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, t.SerializeAsString() + kUnknownField, key_);
  ExpectReject(env, writeback::v1::REJECT_REASON_MALFORMED);
}

TEST_F(TaskChecksTest, UnknownFieldInStatementIsMalformed) {
  auto t =
      MakeTaskFor(spec(), MakeStatement(spec()).SerializeAsString() + kUnknownField, key_.key_id());
  ExpectReject(SignTask(t, key_), writeback::v1::REJECT_REASON_MALFORMED);
}

TEST_F(TaskChecksTest, UnknownFieldInNestedParamsIsMalformed) {
  writeback::v1::DecisionStatement st = MakeStatement(spec());
  // Unknown field inside statement.params.ssh_authorized_keys.
  std::string params = st.params().ssh_authorized_keys().SerializeAsString() + kUnknownField;
  st.mutable_params()->mutable_ssh_authorized_keys()->Clear();
  st.mutable_params()->mutable_ssh_authorized_keys()->ParseFromString(params);
  auto t = MakeTaskFor(spec(), st.SerializeAsString(), key_.key_id());
  ExpectReject(SignTask(t, key_), writeback::v1::REJECT_REASON_MALFORMED);
}

TEST_F(TaskChecksTest, DispatchKeyIdDifferentFromEnvelopeIsMalformed) {
  auto t = MakeTaskFor(spec(), MakeStatement(spec()).SerializeAsString(), "00112233");
  ExpectReject(SignTask(t, key_), writeback::v1::REJECT_REASON_MALFORMED);
}

TEST_F(TaskChecksTest, AnotherAgentsAudienceIsWrongAudience) {
  TaskSpec s = spec();
  s.audience = "spiffe://writeback.test/agent/a2";
  ExpectReject(MakeSignedTask(s, key_), writeback::v1::REJECT_REASON_WRONG_AUDIENCE);
}

TEST_F(TaskChecksTest, ExpiredBeyondSkewIsExpired) {
  ctx_.now = spec().now + absl::Hours(1) + absl::Seconds(61);
  ExpectReject(MakeSignedTask(spec(), key_), writeback::v1::REJECT_REASON_EXPIRED);
}

TEST_F(TaskChecksTest, ExpiredWithinSkewIsAccepted) {
  ctx_.now = spec().now + absl::Hours(1) + absl::Seconds(59);
  EXPECT_EQ(Check(MakeSignedTask(spec(), key_)).verdict, Verdict::kAccept);
}

TEST_F(TaskChecksTest, ExpiredStatementIsExpired) {
  TaskSpec s = spec();
  writeback::v1::DecisionStatement st = MakeStatement(s);
  st.set_expires_at_unix_ms(absl::ToUnixMillis(s.now - absl::Minutes(5)));
  auto t = MakeTaskFor(s, st.SerializeAsString(), key_.key_id());
  ExpectReject(SignTask(t, key_), writeback::v1::REJECT_REASON_EXPIRED);
}

TEST_F(TaskChecksTest, MissingExpiryIsMalformed) {
  TaskSpec s = spec();
  auto t = MakeTaskFor(s, MakeStatement(s).SerializeAsString(), key_.key_id());
  t.clear_expires_at_unix_ms();
  ExpectReject(SignTask(t, key_), writeback::v1::REJECT_REASON_MALFORMED);
}

TEST_F(TaskChecksTest, NotBeforeInTheFutureIsNotYetValid) {
  TaskSpec s = spec();
  s.not_before_offset = absl::Minutes(5);
  ExpectReject(MakeSignedTask(s, key_), writeback::v1::REJECT_REASON_NOT_YET_VALID);
  s.not_before_offset = absl::Seconds(30);  // within skew
  EXPECT_EQ(Check(MakeSignedTask(s, key_)).verdict, Verdict::kAccept);
}

TEST_F(TaskChecksTest, UnconfiguredInstanceIsNotAllowed) {
  TaskSpec s = spec();
  s.instance = "ssh-other";
  ExpectReject(MakeSignedTask(s, key_), writeback::v1::REJECT_REASON_NOT_ALLOWED);
}

TEST_F(TaskChecksTest, OperationOutsideAllowlistIsNotAllowed) {
  TaskSpec s = spec();
  s.operation = "exclusive_set";
  ExpectReject(MakeSignedTask(s, key_), writeback::v1::REJECT_REASON_NOT_ALLOWED);
}

TEST_F(TaskChecksTest, TaskTargetDifferentFromStatementIsTargetMismatch) {
  TaskSpec s = spec();
  auto statement = MakeStatement(s).SerializeAsString();
  TaskSpec other = s;
  other.object = "bob";
  ExpectReject(SignTask(MakeTaskFor(other, statement, key_.key_id()), key_),
               writeback::v1::REJECT_REASON_TARGET_MISMATCH);
}

TEST_F(TaskChecksTest, TaskOperationDifferentFromStatementIsTargetMismatch) {
  TaskSpec s = spec();
  auto statement = MakeStatement(s).SerializeAsString();
  TaskSpec other = s;
  other.operation = "remove_by_comment";
  ExpectReject(SignTask(MakeTaskFor(other, statement, key_.key_id()), key_),
               writeback::v1::REJECT_REASON_TARGET_MISMATCH);
}

TEST_F(TaskChecksTest, TaskInstanceOrVersionDifferentFromStatementIsTargetMismatch) {
  TaskSpec s = spec();
  auto statement = MakeStatement(s).SerializeAsString();
  TaskSpec other = s;
  other.instance = "ssh-other";
  ExpectReject(SignTask(MakeTaskFor(other, statement, key_.key_id()), key_),
               writeback::v1::REJECT_REASON_TARGET_MISMATCH);
  other = s;
  other.version = 7;
  ExpectReject(SignTask(MakeTaskFor(other, statement, key_.key_id()), key_),
               writeback::v1::REJECT_REASON_TARGET_MISMATCH);
}

TEST_F(TaskChecksTest, TargetIndexOutOfRangeIsTargetMismatch) {
  TaskSpec s = spec();
  auto t = MakeTaskFor(s, MakeStatement(s).SerializeAsString(), key_.key_id());
  t.set_target_index(1);
  ExpectReject(SignTask(t, key_), writeback::v1::REJECT_REASON_TARGET_MISMATCH);
}

TEST_F(TaskChecksTest, BadParamsAreInvalidParams) {
  TaskSpec s = spec();
  s.fingerprint = "MD5:aa:bb";
  TaskCheck c = Check(MakeSignedTask(s, key_));
  EXPECT_EQ(c.reason, writeback::v1::REJECT_REASON_INVALID_PARAMS);
  EXPECT_NE(c.message.find("fingerprint"), std::string::npos) << c.message;
}

TEST_F(TaskChecksTest, BadTargetObjectIsInvalidParams) {
  TaskSpec s = spec();
  s.object = "../../etc";
  ExpectReject(MakeSignedTask(s, key_), writeback::v1::REJECT_REASON_INVALID_PARAMS);
}

TEST_F(TaskChecksTest, OlderVersionThanAppliedIsRollback) {
  history_.versions["ssh-main/alice"] = 5;
  TaskSpec s = spec();
  s.version = 3;
  ExpectReject(MakeSignedTask(s, key_), writeback::v1::REJECT_REASON_ROLLBACK);
  s.version = 5;  // the applied decision again under a new task id: a replay
  s.task_id = "task-2";
  ExpectReject(MakeSignedTask(s, key_), writeback::v1::REJECT_REASON_ROLLBACK);
  s.verify_only = true;  // a re-verification carries the applied version
  EXPECT_EQ(Check(MakeSignedTask(s, key_)).verdict, Verdict::kAccept);
  s.verify_only = false;
  s.object = "bob";  // another target has no history
  s.version = 1;
  s.task_id = "task-3";
  EXPECT_EQ(Check(MakeSignedTask(s, key_)).verdict, Verdict::kAccept);
}

TEST_F(TaskChecksTest, AReverificationPassesTheFloorAnApplyDoesNot) {
  // A newer decision applied to alice (version 5); the older decision 3 is
  // still re-verified against its own effect, but never applied again.
  history_.versions["ssh-main/alice"] = 5;
  TaskSpec s = spec();
  s.version = 3;
  s.verify_only = true;
  EXPECT_EQ(Check(MakeSignedTask(s, key_)).verdict, Verdict::kAccept);
  s.verify_only = false;
  s.task_id = "task-2";
  ExpectReject(MakeSignedTask(s, key_), writeback::v1::REJECT_REASON_ROLLBACK);
}

TEST_F(TaskChecksTest, AReverificationOutlivesTheStatementAnApplyDoesNot) {
  TaskSpec s = spec();
  s.statement_ttl = absl::Minutes(1);  // the decision's apply window
  s.ttl = absl::Hours(1);              // the task's own lifetime
  ctx_.now = s.now + absl::Minutes(30);
  ExpectReject(MakeSignedTask(s, key_), writeback::v1::REJECT_REASON_EXPIRED);
  s.verify_only = true;
  s.task_id = "task-2";
  EXPECT_EQ(Check(MakeSignedTask(s, key_)).verdict, Verdict::kAccept);
  ctx_.now = s.now + absl::Hours(2);  // its own expiry still holds
  s.task_id = "task-3";
  ExpectReject(MakeSignedTask(s, key_), writeback::v1::REJECT_REASON_EXPIRED);
}

TEST_F(TaskChecksTest, AStatementMadeForAnotherAgentIsRefused) {
  // The control plane (or its database) addressed to this agent a decision
  // the approvers signed for another: refused, whatever the audience says.
  TaskSpec s = spec();
  s.statement_agent = "spiffe://writeback.test/agent/elsewhere";
  TaskCheck c = Check(MakeSignedTask(s, key_));
  EXPECT_EQ(c.reason, writeback::v1::REJECT_REASON_WRONG_AUDIENCE) << c.message;
  EXPECT_NE(c.message.find("statement.agent_id"), std::string::npos) << c.message;
  // Observing is allowed: a replaced host re-verifies its predecessor's
  // decisions.
  s.verify_only = true;
  s.task_id = "task-2";
  EXPECT_EQ(Check(MakeSignedTask(s, key_)).verdict, Verdict::kAccept);
  // Pinned mode (development): a statement that names no agent is accepted.
  s.verify_only = false;
  s.statement_agent = "";
  s.task_id = "task-3";
  EXPECT_EQ(Check(MakeSignedTask(s, key_)).verdict, Verdict::kAccept);
}

TEST_F(TaskChecksTest, SeenTaskIsDuplicateWithStoredResult) {
  SignedEnvelope env = MakeSignedTask(spec(), key_);
  SeenTask seen;
  seen.state = SeenTask::State::kDone;
  seen.task_digest = crypto::Sha256(env.payload());
  seen.signed_result.set_payload("stored");
  history_.tasks["task-1"] = seen;
  // Even once expired: the stored result is the answer, not a refusal.
  ctx_.now = spec().now + absl::Hours(5);
  TaskCheck c = Check(env);
  ASSERT_EQ(c.verdict, Verdict::kDuplicate) << c.message;
  ASSERT_TRUE(c.seen.has_value());
  EXPECT_EQ(c.seen->signed_result.payload(), "stored");
}

TEST_F(TaskChecksTest, SeenTaskIdWithOtherBytesIsMalformed) {
  SeenTask seen;
  seen.state = SeenTask::State::kDone;
  seen.task_digest = crypto::Sha256("something else");
  history_.tasks["task-1"] = seen;
  TaskCheck c = Check(MakeSignedTask(spec(), key_));
  EXPECT_EQ(c.reason, writeback::v1::REJECT_REASON_MALFORMED);
  EXPECT_TRUE(c.task_id_conflict);
}

TEST_F(TaskChecksTest, HistoryErrorIsNeitherAcceptNorReject) {
  history_.error = absl::InternalError("disk on fire");
  TaskCheck c = Check(MakeSignedTask(spec(), key_));
  EXPECT_EQ(c.verdict, Verdict::kError);
  // Without a history, the stateless checks alone accept.
  EXPECT_EQ(CheckTask(MakeSignedTask(spec(), key_), ctx_, nullptr).verdict, Verdict::kAccept);
}

// Root mode: dispatch keys, approvers and thresholds come from the policy.
class PolicyChecksTest : public TaskChecksTest {
 protected:
  PolicyChecksTest() {
    policy_keys_.dispatch = key_;
    auto p = trust::testing::MakePolicy(policy_keys_, "writeback.test", 1);
    auto v = trust::VerifyPolicy(*trust::SignPolicy(p, policy_keys_.root),
                                 policy_keys_.root.public_key(), 1, spec().now);
    EXPECT_TRUE(v.ok()) << v.status();
    policy_ = std::make_shared<const trust::VerifiedPolicy>(*std::move(v));
    ctx_.dispatch_keys = nullptr;
    ctx_.policy = policy_;
    ctx_.require_policy = true;
  }

  // A task of spec() carrying approvals by the given approvers.
  SignedEnvelope Approved(const std::vector<int>& approvers, const std::string& id = "task-1") {
    TaskSpec s = spec();
    s.task_id = id;
    const std::string statement = MakeStatement(s).SerializeAsString();
    auto t = MakeTaskFor(s, statement, key_.key_id());
    for (int i : approvers) {
      *t.add_approvals() = trust::Approve(statement, policy_keys_.approvers[i], s.now);
    }
    return SignTask(t, key_);
  }

  // Makes `p` (signed by the root) the policy in force.
  void UsePolicy(const writeback::v1::TrustPolicy& p) {
    auto v = trust::VerifyPolicy(*trust::SignPolicy(p, policy_keys_.root),
                                 policy_keys_.root.public_key(), 1, spec().now);
    ASSERT_TRUE(v.ok()) << v.status();
    policy_ = std::make_shared<const trust::VerifiedPolicy>(*std::move(v));
    ctx_.policy = policy_;
  }

  trust::testing::PolicyKeys policy_keys_;
  std::shared_ptr<const trust::VerifiedPolicy> policy_;
};

TEST_F(PolicyChecksTest, APolicyCanRequireTheStatementToNameTheAgent) {
  TaskSpec s = spec();
  s.statement_agent = "";
  // Without the switch (upgrades: control planes that do not name agents
  // yet), a statement naming none passes this check.
  EXPECT_NE(Check(MakeSignedTask(s, key_)).reason, writeback::v1::REJECT_REASON_WRONG_AUDIENCE);
  auto p = policy_->policy;
  p.set_require_statement_agent(true);
  p.set_version(2);
  UsePolicy(p);
  ExpectReject(MakeSignedTask(s, key_), writeback::v1::REJECT_REASON_WRONG_AUDIENCE);
  s.statement_agent.reset();  // names this agent
  s.task_id = "task-2";
  EXPECT_NE(Check(MakeSignedTask(s, key_)).reason, writeback::v1::REJECT_REASON_WRONG_AUDIENCE);
}

TEST_F(PolicyChecksTest, TheActionClassThresholdIsEnforced) {
  // ssh_authorized_keys/remove_key is class "revoke": one approval.
  ExpectReject(MakeSignedTask(spec(), key_), writeback::v1::REJECT_REASON_INSUFFICIENT_APPROVALS);
  TaskCheck c = Check(Approved({1}));
  EXPECT_EQ(c.verdict, Verdict::kAccept) << c.message;
  // The same approver twice does not count twice against a threshold of 2.
  auto p = policy_->policy;
  (*p.mutable_approval_thresholds())["revoke"] = 2;
  p.set_version(2);
  auto v = trust::VerifyPolicy(*trust::SignPolicy(p, policy_keys_.root),
                               policy_keys_.root.public_key(), 2, spec().now);
  ASSERT_TRUE(v.ok()) << v.status();
  ctx_.policy = std::make_shared<const trust::VerifiedPolicy>(*std::move(v));
  TaskCheck twice = Check(Approved({1, 1}, "task-2"));
  EXPECT_EQ(twice.reason, writeback::v1::REJECT_REASON_INSUFFICIENT_APPROVALS);
  EXPECT_NE(twice.message.find("already counted"), std::string::npos) << twice.message;
  EXPECT_EQ(Check(Approved({1, 2}, "task-3")).verdict, Verdict::kAccept);
}

TEST_F(PolicyChecksTest, WithoutAPolicyOrWithAKeyNotInItNothingIsAuthentic) {
  ctx_.policy = nullptr;
  ExpectReject(Approved({1}), writeback::v1::REJECT_REASON_UNKNOWN_KEY);
  // The refusal still says which task it refused (issue 15: it used to be
  // reported without an id, and the decision stayed DISPATCHED).
  TaskCheck none = Check(Approved({1}, "task-9"));
  EXPECT_FALSE(none.authentic);
  EXPECT_EQ(none.task_id(), "task-9");
  EXPECT_NE(none.message.find("no trust policy received yet"), std::string::npos) << none.message;
  ctx_.policy = policy_;
  // A key the pinned-mode keyring would trust, but the policy does not list.
  auto other = crypto::Ed25519PrivateKey::Generate();
  keyring_.Add(other.public_key());
  ctx_.dispatch_keys = &keyring_;
  ExpectReject(MakeSignedTask(spec(), other), writeback::v1::REJECT_REASON_UNKNOWN_KEY);
}

// ---- statements named by digest (Task.statement_digest) ----

TEST_F(TaskChecksTest, StatementNamedByDigestIsFoundInTheSource) {
  std::string statement;
  SignedEnvelope env = testing::MakeSignedTaskByDigest(spec(), key_, &statement);
  StatementCache cache;
  cache.Put(statement);
  ctx_.statements = &cache;
  TaskCheck c = Check(env);
  ASSERT_EQ(c.verdict, Verdict::kAccept) << c.message;
  EXPECT_EQ(c.statement.decision_id(), "dec-1");
  ASSERT_NE(c.statement_bytes, nullptr);
  EXPECT_EQ(*c.statement_bytes, statement);
  EXPECT_FALSE(c.statement_missing);
}

TEST_F(TaskChecksTest, StatementNotDeliveredIsMissingNotATaskFault) {
  std::string statement;
  SignedEnvelope env = testing::MakeSignedTaskByDigest(spec(), key_, &statement);
  StatementCache cache;  // empty
  ctx_.statements = &cache;
  TaskCheck c = Check(env);
  EXPECT_EQ(c.verdict, Verdict::kReject);
  EXPECT_TRUE(c.statement_missing);
  EXPECT_TRUE(c.authentic);
  EXPECT_NE(c.message.find("statement_digest"), std::string::npos) << c.message;
  ctx_.statements = nullptr;  // no source at all: the same
  EXPECT_TRUE(Check(env).statement_missing);
}

TEST_F(TaskChecksTest, SourceReturningOtherBytesIsMissing) {
  // A source is a lookup, not a proof: bytes that do not hash to the
  // signed digest are not the statement (an altered statement on the way).
  class Lying final : public StatementSource {
   public:
    std::shared_ptr<const std::string> FindStatement(absl::string_view) const override {
      TaskSpec other;
      other.object = "root";  // another target than the task's
      return std::make_shared<const std::string>(MakeStatement(other).SerializeAsString());
    }
  } lying;
  std::string statement;
  SignedEnvelope env = testing::MakeSignedTaskByDigest(spec(), key_, &statement);
  ctx_.statements = &lying;
  TaskCheck c = Check(env);
  EXPECT_EQ(c.verdict, Verdict::kReject);
  EXPECT_TRUE(c.statement_missing) << c.message;
}

TEST_F(TaskChecksTest, DuplicateWithoutItsStatementStillGetsTheStoredResult) {
  std::string statement;
  SignedEnvelope env = testing::MakeSignedTaskByDigest(spec(), key_, &statement);
  SeenTask seen;
  seen.state = SeenTask::State::kDone;
  seen.task_digest = crypto::Sha256(env.payload());
  history_.tasks["task-1"] = seen;
  TaskCheck c = Check(env);  // no statement source
  EXPECT_EQ(c.verdict, Verdict::kDuplicate) << c.message;
}

TEST_F(TaskChecksTest, StatementAndDigestBothSetIsMalformed) {
  std::string statement;
  TaskSpec s = spec();
  statement = MakeStatement(s).SerializeAsString();
  writeback::v1::Task t = MakeTaskFor(s, statement, key_.key_id());
  t.set_statement_digest(crypto::Sha256(statement));
  ExpectReject(SignTask(t, key_), writeback::v1::REJECT_REASON_MALFORMED);
  t.clear_statement();
  t.set_statement_digest("short");
  ExpectReject(SignTask(t, key_), writeback::v1::REJECT_REASON_MALFORMED);
}

TEST(StatementCacheTest, KeepsTheMostRecentlyUsedWithinItsBounds) {
  StatementCache cache(/*max_entries=*/2);
  const std::string a = cache.Put("statement a");
  const std::string b = cache.Put("statement b");
  EXPECT_EQ(a, crypto::Sha256("statement a"));
  ASSERT_NE(cache.FindStatement(a), nullptr);  // a is now the most recent
  cache.Put("statement c");                    // drops b
  EXPECT_NE(cache.FindStatement(a), nullptr);
  EXPECT_EQ(cache.FindStatement(b), nullptr);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Put(""), "");
  StatementCache small(/*max_entries=*/10, /*max_bytes=*/4);
  const std::string big = small.Put("longer than four bytes");
  EXPECT_NE(small.FindStatement(big), nullptr);  // the newest always stays
  small.Put("another long one");
  EXPECT_EQ(small.FindStatement(big), nullptr);
  StatementSet set;
  set.Add("x");
  StatementSources both({nullptr, &set, &cache});
  EXPECT_NE(both.FindStatement(crypto::Sha256("x")), nullptr);
  EXPECT_NE(both.FindStatement(a), nullptr);
  EXPECT_EQ(both.FindStatement(crypto::Sha256("nothing")), nullptr);
}

}  // namespace
}  // namespace wb::agent
