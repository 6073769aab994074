// Acceptance checks for one signed task (DESIGN.md section 3). Independent of
// how the task arrived (stream, bundle file, relay): the caller fixes `now`
// once, builds a CheckContext and calls CheckTask.
//
// Order of the checks (the first failure decides the reason code):
//   1. dispatch signature over the exact envelope bytes, before parsing
//      (UNKNOWN_KEY, BAD_SIGNATURE; wrong payload type or empty → MALFORMED)
//   2. parse Task and its DecisionStatement — embedded (task.statement) or
//      named by digest (task.statement_digest, found in
//      CheckContext.statements; exactly one of the two); unknown fields
//      anywhere in either → MALFORMED; task.dispatch_key_id == envelope key
//      id (MALFORMED)
//   3. audience == own SPIFFE ID (WRONG_AUDIENCE)
//   4. history: task_id already seen → kDuplicate (the stored state/result;
//      not a rejection); unseen but issued before the history's replay
//      floor (state restored from an old copy) → ROLLBACK. Done right after the task is known to be
//      authentic and ours, so that a redelivery of an applied task after it expired still returns
//      the stored result instead of a fresh refusal.
//      A statement named by digest that no source holds: MALFORMED, after
//      check 4 (a duplicate still gets its stored result)
//   5. task's instance, operation, target object and decision_version equal
//      the statement's (TARGET_MISMATCH); the statement's agent_id, when
//      set, is this agent, and it must be set when the trust policy says
//      require_statement_agent (WRONG_AUDIENCE; not checked for verify_only
//      tasks)
//   6. instance and operation in the local allowlist (NOT_ALLOWED)
//   7. approvals under the trust policy (common/trust/approvals.h:
//      distinct approvers in the current policy, this exact statement
//      digest, not the requester; threshold of the action class). No check
//      without a policy (pinned mode, development only)
//   8. time window with skew (NOT_YET_VALID, EXPIRED): the task's, and the
//      statement's expiry except for verify_only tasks (observing goes on
//      after a decision's apply window)
//   9. params and target object valid for the instance's connector type
//      (INVALID_PARAMS)
//  10. history: decision_version for (instance, object) older than one
//      already applied, or equal to it (the applied decision replayed under
//      a new task id) (ROLLBACK). Not for verify_only tasks: they change
//      nothing, so an older decision is re-verified after a newer one
//      applied to the same target
//
// Pure functions of their inputs; thread-safe if the TaskHistory is.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/checks/statements.h"
#include "common/envelope/envelope.h"
#include "common/trust/policy.h"
#include "writeback/v1/decision.pb.h"
#include "writeback/v1/envelope.pb.h"

namespace wb::agent {

// What the local configuration allows for one connector instance.
struct InstancePolicy {
  std::string connector_type;        // e.g. "ssh_authorized_keys"
  std::set<std::string> operations;  // allowed operations; empty = none
};

struct CheckContext {
  std::string agent_id;  // own SPIFFE ID
  // Pinned mode: the dispatch keys (not owned). Ignored when `policy` is
  // set: the policy's dispatch keys are used instead.
  const envelope::Keyring* dispatch_keys = nullptr;
  // The trust policy in force (root mode), or null.
  std::shared_ptr<const trust::VerifiedPolicy> policy;
  // Root mode: without a policy every task is refused (UNKNOWN_KEY).
  bool require_policy = false;
  std::map<std::string, InstancePolicy, std::less<>> instances;  // by instance name
  absl::Duration max_skew = absl::Seconds(60);
  absl::Time now;  // fixed once by the caller
  // Where statements named by digest are found (not owned); null = none.
  const StatementSource* statements = nullptr;
};

// A task this agent has seen before, as its journal knows it.
struct SeenTask {
  enum class State { kQueued, kInProgress, kDone };
  State state = State::kQueued;
  std::string task_digest;                      // SHA-256 of the payload seen then
  writeback::v1::SignedEnvelope signed_result;  // set when kDone
};

// Read access to what the agent already did (implemented by the journal).
class TaskHistory {
 public:
  virtual ~TaskHistory() = default;
  virtual absl::StatusOr<std::optional<SeenTask>> FindTask(absl::string_view task_id) const = 0;
  // Highest decision_version acted on for (instance, object); 0 if none.
  virtual absl::StatusOr<uint64_t> AppliedVersion(absl::string_view instance,
                                                  absl::string_view object) const = 0;
  // Tasks issued at or before this time (Unix ms) that the history does not
  // know are refused (ROLLBACK): set when the agent's state directory was
  // restored from an older copy (agent/journal/journal.h, state anchor).
  virtual int64_t ReplayFloorMs() const { return 0; }
};

enum class Verdict {
  kAccept,     // run it
  kReject,     // refuse with `reason`; report a REJECTED result
  kDuplicate,  // seen before: `seen` says in which state
  kError,      // the history could not be read; neither accept nor refuse
};

struct TaskCheck {
  Verdict verdict = Verdict::kReject;
  writeback::v1::RejectReason reason = writeback::v1::REJECT_REASON_UNSPECIFIED;
  std::string message;
  // SHA-256 of envelope.payload (always set).
  std::string task_digest;
  // True once the dispatch signature verified and the Task parsed: only
  // then may task_id be trusted (journaled, used for de-duplication).
  bool authentic = false;
  // The task_id the payload claims when it is not authentic (best effort,
  // for reporting only; may be empty).
  std::string claimed_task_id;
  writeback::v1::Task task;                    // valid when authentic
  writeback::v1::DecisionStatement statement;  // valid when the statement parsed
  // The statement's exact bytes (embedded or found by digest); null until
  // found.
  std::shared_ptr<const std::string> statement_bytes;
  std::string connector_type;    // of task.connector_instance, when allowed
  std::optional<SeenTask> seen;  // for kDuplicate
  // The task_id was seen before with different bytes: the refusal must not
  // replace what is journaled under that id.
  bool task_id_conflict = false;
  // Refused because the statement it names by digest was not delivered (or
  // not as the digest says): nothing is wrong with the task itself. Online,
  // the agent neither journals nor answers it; the control plane sends it
  // again after the delivery timeout, with its statement.
  bool statement_missing = false;

  // task.task_id if authentic, else claimed_task_id.
  const std::string& task_id() const { return authentic ? task.task_id() : claimed_task_id; }
};

// Runs every check in order. `history` may be null: the history checks
// (4 and 10) are then skipped.
TaskCheck CheckTask(const writeback::v1::SignedEnvelope& env, const CheckContext& ctx,
                    const TaskHistory* history);

// Check 10 alone, for an accepted task (the executor repeats it right before
// acting, when earlier tasks for the same target have finished). Turns an
// accepted `check` into a ROLLBACK rejection or kError if needed.
void CheckRollback(const TaskHistory& history, TaskCheck& check);

// Check 7 alone: nullopt if the task's approvals satisfy `policy` for the
// task's action class (of `connector_type`), else the rejection message.
// `statement_bytes` are the statement's exact bytes (what approvals sign).
std::optional<std::string> CheckApprovals(const writeback::v1::Task& task,
                                          absl::string_view statement_bytes,
                                          const writeback::v1::DecisionStatement& statement,
                                          absl::string_view connector_type,
                                          const trust::VerifiedPolicy& policy);

using envelope::HasUnknownFields;

}  // namespace wb::agent
