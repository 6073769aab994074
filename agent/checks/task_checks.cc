#include "agent/checks/task_checks.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/actions/actions.h"
#include "common/crypto/crypto.h"
#include "common/trust/approvals.h"

namespace wb::agent {
namespace {

using writeback::v1::DecisionStatement;
using writeback::v1::RejectReason;
using writeback::v1::SignedEnvelope;
using writeback::v1::Task;

void Reject(TaskCheck& c, RejectReason reason, std::string message) {
  c.verdict = Verdict::kReject;
  c.reason = reason;
  c.message = std::move(message);
}

void Fail(TaskCheck& c, const absl::Status& s) {
  c.verdict = Verdict::kError;
  c.reason = writeback::v1::REJECT_REASON_UNSPECIFIED;
  c.message = absl::StrCat("journal: ", s.ToString());
}

int64_t UnixMs(absl::Time t) { return absl::ToUnixMillis(t); }

// The task_id the payload claims, for a refusal's report only: never
// trusted, never journaled. Every refusal of a task that is not authentic
// carries it, so the control plane can record the refusal against its task
// (it checks the digest against what it signed) and the operator sees why.
void Claim(const SignedEnvelope& env, TaskCheck& c) {
  Task claimed;
  if (claimed.ParseFromString(env.payload())) c.claimed_task_id = claimed.task_id();
}

// Stage 1-3: signature, parsing, audience. Returns false when `c` is decided.
bool CheckAuthentic(const SignedEnvelope& env, const CheckContext& ctx, TaskCheck& c) {
  const envelope::Keyring* keys =
      ctx.policy != nullptr ? &ctx.policy->dispatch_keys : ctx.dispatch_keys;
  if (keys == nullptr || (ctx.require_policy && ctx.policy == nullptr)) {
    Claim(env, c);
    Reject(c, writeback::v1::REJECT_REASON_UNKNOWN_KEY,
           ctx.require_policy
               ? "no trust policy received yet: no dispatch key is trusted (publish one with "
                 "wbctl trust publish; a control plane without a trust root sends none)"
               : "no dispatch keys configured");
    return false;
  }
  if (absl::Status s = envelope::Verify(env, writeback::v1::PAYLOAD_TYPE_TASK, *keys); !s.ok()) {
    Claim(env, c);
    switch (s.code()) {
      case absl::StatusCode::kNotFound:
        Reject(c, writeback::v1::REJECT_REASON_UNKNOWN_KEY, std::string(s.message()));
        break;
      case absl::StatusCode::kUnauthenticated:
        Reject(c, writeback::v1::REJECT_REASON_BAD_SIGNATURE, std::string(s.message()));
        break;
      default:
        Reject(c, writeback::v1::REJECT_REASON_MALFORMED, std::string(s.message()));
        break;
    }
    return false;
  }
  // Parse the exact verified bytes; never re-serialize.
  if (!c.task.ParseFromString(env.payload())) {
    c.task.Clear();
    Reject(c, writeback::v1::REJECT_REASON_MALFORMED, "task: payload is not a Task");
    return false;
  }
  if (HasUnknownFields(c.task)) {
    c.claimed_task_id = c.task.task_id();
    c.task.Clear();
    Reject(c, writeback::v1::REJECT_REASON_MALFORMED, "task: unknown fields present");
    return false;
  }
  if (c.task.task_id().empty()) {
    c.task.Clear();
    Reject(c, writeback::v1::REJECT_REASON_MALFORMED, "task.task_id: required");
    return false;
  }
  c.authentic = true;
  if (c.task.dispatch_key_id() != env.key_id()) {
    Reject(c, writeback::v1::REJECT_REASON_MALFORMED,
           absl::StrCat("task.dispatch_key_id '", c.task.dispatch_key_id(),
                        "' differs from the envelope's key id '", env.key_id(), "'"));
    return false;
  }
  if (!c.task.statement_digest().empty()) {
    if (!c.task.statement().empty()) {
      Reject(c, writeback::v1::REJECT_REASON_MALFORMED,
             "task: statement and statement_digest are both set (exactly one is)");
      return false;
    }
    if (c.task.statement_digest().size() != 32) {
      Reject(c, writeback::v1::REJECT_REASON_MALFORMED,
             absl::StrCat("task.statement_digest: ", c.task.statement_digest().size(),
                          " bytes, not a SHA-256"));
      return false;
    }
    if (ctx.statements != nullptr) {
      c.statement_bytes = ctx.statements->FindStatement(c.task.statement_digest());
    }
    // A source is a lookup, not a proof: the bytes must hash to the digest
    // the dispatch key signed.
    if (c.statement_bytes != nullptr &&
        !crypto::ConstantTimeEquals(trust::StatementDigest(*c.statement_bytes),
                                    c.task.statement_digest())) {
      c.statement_bytes = nullptr;
    }
  } else {
    c.statement_bytes = std::make_shared<const std::string>(c.task.statement());
  }
  if (c.statement_bytes != nullptr) {
    if (!c.statement.ParseFromString(*c.statement_bytes)) {
      c.statement.Clear();
      Reject(c, writeback::v1::REJECT_REASON_MALFORMED, "task.statement: not a DecisionStatement");
      return false;
    }
    if (HasUnknownFields(c.statement)) {
      Reject(c, writeback::v1::REJECT_REASON_MALFORMED, "task.statement: unknown fields present");
      return false;
    }
  }
  if (c.task.audience() != ctx.agent_id) {
    Reject(c, writeback::v1::REJECT_REASON_WRONG_AUDIENCE,
           absl::StrCat("task.audience '", c.task.audience(), "' is not this agent (", ctx.agent_id,
                        ")"));
    return false;
  }
  return true;
}

bool CheckMatchesStatement(const CheckContext& ctx, TaskCheck& c) {
  const Task& t = c.task;
  const DecisionStatement& st = c.statement;
  auto mismatch = [&](absl::string_view field, absl::string_view task_value,
                      absl::string_view statement_value) {
    Reject(c, writeback::v1::REJECT_REASON_TARGET_MISMATCH,
           absl::StrCat("task.", field, " '", task_value, "' differs from the statement's '",
                        statement_value, "'"));
    return false;
  };
  if (t.connector_instance() != st.connector_instance()) {
    return mismatch("connector_instance", t.connector_instance(), st.connector_instance());
  }
  if (t.operation() != st.operation()) return mismatch("operation", t.operation(), st.operation());
  if (t.target_index() >= static_cast<uint32_t>(st.targets_size())) {
    Reject(c, writeback::v1::REJECT_REASON_TARGET_MISMATCH,
           absl::StrCat("task.target_index ", t.target_index(), " is out of range (statement has ",
                        st.targets_size(), " targets)"));
    return false;
  }
  const std::string& object = st.targets(static_cast<int>(t.target_index())).object();
  if (t.target().object() != object) {
    return mismatch("target.object", t.target().object(), object);
  }
  if (t.decision_version() != st.version()) {
    return mismatch("decision_version", absl::StrCat(t.decision_version()),
                    absl::StrCat(st.version()));
  }
  // The agent bound to the instance, as approvers signed it. Only observing
  // (re-verification) is allowed to another agent: a replaced host watches
  // its predecessor's decisions.
  if (!t.verify_only()) {
    if (!st.agent_id().empty() && st.agent_id() != ctx.agent_id) {
      Reject(c, writeback::v1::REJECT_REASON_WRONG_AUDIENCE,
             absl::StrCat("statement.agent_id '", st.agent_id(), "' is not this agent (",
                          ctx.agent_id, "): the decision was made for another agent"));
      return false;
    }
    if (st.agent_id().empty() && ctx.policy != nullptr &&
        ctx.policy->policy.require_statement_agent()) {
      Reject(c, writeback::v1::REJECT_REASON_WRONG_AUDIENCE,
             absl::StrCat("statement.agent_id: required by trust policy v", ctx.policy->version(),
                          " (approvers sign which agent serves the instance)"));
      return false;
    }
  }
  return true;
}

bool CheckAllowed(const CheckContext& ctx, TaskCheck& c) {
  auto it = ctx.instances.find(c.task.connector_instance());
  if (it == ctx.instances.end()) {
    Reject(c, writeback::v1::REJECT_REASON_NOT_ALLOWED,
           absl::StrCat("connector instance '", c.task.connector_instance(),
                        "' is not configured on this agent"));
    return false;
  }
  if (it->second.operations.count(c.task.operation()) == 0) {
    Reject(c, writeback::v1::REJECT_REASON_NOT_ALLOWED,
           absl::StrCat("operation '", c.task.operation(), "' is not allowed on instance '",
                        c.task.connector_instance(), "'"));
    return false;
  }
  c.connector_type = it->second.connector_type;
  return true;
}

bool CheckTime(const CheckContext& ctx, TaskCheck& c) {
  const int64_t now = UnixMs(ctx.now);
  const int64_t skew = absl::ToInt64Milliseconds(ctx.max_skew);
  const Task& t = c.task;
  if (t.expires_at_unix_ms() <= 0) {
    Reject(c, writeback::v1::REJECT_REASON_MALFORMED, "task.expires_at_unix_ms: required");
    return false;
  }
  if (now + skew < t.not_before_unix_ms()) {
    Reject(c, writeback::v1::REJECT_REASON_NOT_YET_VALID,
           absl::StrCat("task.not_before_unix_ms ", t.not_before_unix_ms(), " is after agent time ",
                        now, " + skew ", skew, " ms"));
    return false;
  }
  if (now - skew > t.expires_at_unix_ms()) {
    Reject(c, writeback::v1::REJECT_REASON_EXPIRED,
           absl::StrCat("task.expires_at_unix_ms ", t.expires_at_unix_ms(),
                        " is before agent time ", now, " - skew ", skew, " ms"));
    return false;
  }
  // The statement's expiry bounds when the decision may be applied;
  // observing it (re-verification) changes nothing and goes on after it.
  const int64_t st_exp = c.statement.expires_at_unix_ms();
  if (!t.verify_only() && st_exp > 0 && now - skew > st_exp) {
    Reject(c, writeback::v1::REJECT_REASON_EXPIRED,
           absl::StrCat("statement.expires_at_unix_ms ", st_exp, " is before agent time ", now,
                        " - skew ", skew, " ms"));
    return false;
  }
  return true;
}

bool CheckParams(TaskCheck& c) {
  if (absl::Status s = actions::ValidateAction(c.connector_type, c.statement.operation(),
                                               c.statement.params(), "statement.");
      !s.ok()) {
    Reject(c, writeback::v1::REJECT_REASON_INVALID_PARAMS, std::string(s.message()));
    return false;
  }
  if (absl::Status s = actions::ValidateTargetObject(c.connector_type, c.task.target().object(),
                                                     "task.target.object");
      !s.ok()) {
    Reject(c, writeback::v1::REJECT_REASON_INVALID_PARAMS, std::string(s.message()));
    return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> CheckApprovals(const Task& task, absl::string_view statement_bytes,
                                          const DecisionStatement& statement,
                                          absl::string_view connector_type,
                                          const trust::VerifiedPolicy& policy) {
  trust::ApprovalCount count =
      trust::CountApprovals(policy, connector_type, statement_bytes, statement, task.approvals());
  if (count.satisfied()) return std::nullopt;
  return absl::StrCat(count.Explain(), " under trust policy v", policy.version());
}

void CheckRollback(const TaskHistory& history, TaskCheck& c) {
  if (c.verdict != Verdict::kAccept) return;
  // A re-verification changes nothing: an older decision's effect is
  // observed even after a newer one applied to the same target.
  if (c.task.verify_only()) return;
  auto applied = history.AppliedVersion(c.task.connector_instance(), c.task.target().object());
  if (!applied.ok()) {
    Fail(c, applied.status());
    return;
  }
  if (c.task.decision_version() < *applied) {
    Reject(c, writeback::v1::REJECT_REASON_ROLLBACK,
           absl::StrCat("decision_version ", c.task.decision_version(), " is older than version ",
                        *applied, " already applied to ", c.task.connector_instance(), "/",
                        c.task.target().object()));
  } else if (c.task.decision_version() == *applied) {
    // The same decision applied again under a new task id (a new id is never
    // issued for an applied decision; only re-verification carries its
    // version again): a replay, e.g. from a compromised control plane.
    Reject(c, writeback::v1::REJECT_REASON_ROLLBACK,
           absl::StrCat("decision_version ", c.task.decision_version(), " was already applied to ",
                        c.task.connector_instance(), "/", c.task.target().object(),
                        " by another task (only a re-verification may carry it again)"));
  }
}

TaskCheck CheckTask(const SignedEnvelope& env, const CheckContext& ctx,
                    const TaskHistory* history) {
  TaskCheck c;
  c.task_digest = crypto::Sha256(env.payload());
  if (!CheckAuthentic(env, ctx, c)) return c;
  if (history != nullptr) {
    auto seen = history->FindTask(c.task.task_id());
    if (!seen.ok()) {
      Fail(c, seen.status());
      return c;
    }
    if (seen->has_value()) {
      if ((*seen)->task_digest != c.task_digest) {
        // Same id, different signed bytes: refuse without touching the
        // journal entry of the first one.
        c.task_id_conflict = true;
        Reject(c, writeback::v1::REJECT_REASON_MALFORMED,
               "task.task_id was already used for a different task");
        return c;
      }
      c.verdict = Verdict::kDuplicate;
      c.seen = std::move(**seen);
      return c;
    }
    if (const int64_t floor = history->ReplayFloorMs();
        floor > 0 && c.task.issued_at_unix_ms() <= floor) {
      Reject(c, writeback::v1::REJECT_REASON_ROLLBACK,
             absl::StrCat("task.issued_at_unix_ms ", c.task.issued_at_unix_ms(), " is not after ",
                          floor,
                          ": this agent's state was restored from an older copy, so tasks "
                          "issued before then cannot be told from replays"));
      return c;
    }
  }
  if (c.statement_bytes == nullptr) {
    c.statement_missing = true;
    Reject(c, writeback::v1::REJECT_REASON_MALFORMED,
           absl::StrCat("task.statement_digest: the statement ",
                        crypto::HexEncode(c.task.statement_digest()).substr(0, 16),
                        "… it names was not delivered with it"));
    return c;
  }
  if (!CheckMatchesStatement(ctx, c)) return c;
  if (!CheckAllowed(ctx, c)) return c;
  if (ctx.policy != nullptr) {
    if (auto why =
            CheckApprovals(c.task, *c.statement_bytes, c.statement, c.connector_type, *ctx.policy);
        why.has_value()) {
      Reject(c, writeback::v1::REJECT_REASON_INSUFFICIENT_APPROVALS, *why);
      return c;
    }
  }
  if (!CheckTime(ctx, c)) return c;
  if (!CheckParams(c)) return c;
  c.verdict = Verdict::kAccept;
  if (history != nullptr) CheckRollback(*history, c);
  return c;
}

}  // namespace wb::agent
