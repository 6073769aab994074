// Fuzz target: the agent's whole acceptance path for a signed task
// (agent/checks/task_checks.h CheckTask, then CheckApprovals), with a fixed
// dispatch keyring, allowlist (every operation of every connector type) and
// in-memory journal (tests/fuzz/fuzz_support.h).
//
// Input: byte 0 chooses how the rest is used, so that inputs reach past the
// signature check:
//   bits 0-1  mode: 0 the rest is a SignedEnvelope, checked as is;
//                   1 the rest is the Task payload, signed by the fuzzer's
//                     dispatch key (parsing and every later check run);
//                   2 the rest is the statement bytes of a valid task (the
//                     task's instance, operation, object and version copied
//                     from the statement when it parses), signed;
//                   3 as 2, with approvals of those bytes by both approvers.
//   bits 2-3  approval threshold of the agent (0, 1, 2; 3 = 2)
//   bit 4     no journal (history checks skipped)
// After each check the verdict is held against the properties an accepted
// task must have; a violation aborts (a crash for the fuzzer).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/checks/task_checks.h"
#include "common/actions/actions.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "tests/fuzz/fuzz_support.h"

namespace wb::fuzz {
namespace {

using agent::Verdict;
using writeback::v1::SignedEnvelope;

void CheckAccepted(const agent::TaskCheck& c, const agent::CheckContext& ctx,
                   const agent::TaskHistory* history) {
  Require(c.authentic, "accepted but not authentic");
  Require(c.task.audience() == ctx.agent_id, "accepted for another audience");
  Require(!agent::HasUnknownFields(c.task) && !agent::HasUnknownFields(c.statement),
          "accepted with unknown fields");
  auto it = ctx.instances.find(c.task.connector_instance());
  Require(it != ctx.instances.end(), "accepted for an instance not configured");
  Require(it->second.operations.count(c.task.operation()) == 1, "accepted a disallowed operation");
  Require(c.connector_type == it->second.connector_type, "connector type is not the instance's");
  const auto& st = c.statement;
  Require(
      c.task.connector_instance() == st.connector_instance() &&
          c.task.operation() == st.operation() && c.task.decision_version() == st.version() &&
          c.task.target_index() < static_cast<uint32_t>(st.targets_size()) &&
          c.task.target().object() == st.targets(static_cast<int>(c.task.target_index())).object(),
      "accepted a task that differs from its statement");
  Require(actions::ValidateAction(c.connector_type, st.operation(), st.params()).ok(),
          "accepted invalid params");
  Require(actions::ValidateTargetObject(c.connector_type, c.task.target().object()).ok(),
          "accepted an invalid target object");
  const int64_t now = absl::ToUnixMillis(ctx.now);
  const int64_t skew = absl::ToInt64Milliseconds(ctx.max_skew);
  Require(c.task.not_before_unix_ms() <= now + skew && now - skew <= c.task.expires_at_unix_ms(),
          "accepted outside its time window");
  if (ctx.policy != nullptr) {
    Require(!agent::CheckApprovals(c.task, *c.statement_bytes, c.statement, c.connector_type,
                                   *ctx.policy)
                 .has_value(),
            "accepted without the approvals");
  }
  if (history != nullptr) {
    Require(c.task.task_id() != "seen-task" && c.task.task_id() != "journal-error",
            "accepted a task id the journal knows");
    auto applied = history->AppliedVersion(c.task.connector_instance(), c.task.target().object());
    Require(applied.ok() && c.task.decision_version() >= *applied, "accepted a rollback");
  }
}

void Run(const uint8_t* data, size_t size) {
  QuietProtobufLogs();
  Reader in(data, size);
  const uint8_t flags = in.Byte();
  const int mode = flags & 3;
  const agent::CheckContext& ctx = Context((flags >> 2) & 3);
  const agent::TaskHistory* history = (flags & 0x10) ? nullptr : &History();
  const std::string rest = in.Rest();

  const std::optional<SignedEnvelope> parsed = TaskEnvelopeFor(flags, rest);
  if (!parsed.has_value()) return;
  const SignedEnvelope& env = *parsed;

  const agent::TaskCheck c = agent::CheckTask(env, ctx, history);
  Require(c.task_digest == crypto::Sha256(env.payload()), "task_digest is not of the payload");
  if (mode != 0) {
    Require(c.reason != writeback::v1::REJECT_REASON_UNKNOWN_KEY &&
                c.reason != writeback::v1::REJECT_REASON_BAD_SIGNATURE,
            "a correctly signed task refused for its signature");
  }
  if (!c.authentic) Require(c.task.task_id().empty(), "unauthentic task kept its fields");
  switch (c.verdict) {
    case Verdict::kAccept:
      CheckAccepted(c, ctx, history);
      break;
    case Verdict::kDuplicate:
      Require(history != nullptr && c.task.task_id() == "seen-task" && c.seen.has_value(),
              "duplicate of a task the journal does not know");
      Require(c.task_digest == crypto::Sha256(SeenTaskPayload()), "duplicate with other bytes");
      break;
    case Verdict::kError:
      Require(history != nullptr, "journal error without a journal");
      break;
    case Verdict::kReject:
      Require(c.reason != writeback::v1::REJECT_REASON_UNSPECIFIED && !c.message.empty(),
              "rejection without a reason");
      break;
  }
  if (c.authentic && c.statement_bytes != nullptr) {
    // The hook on its own, at every threshold.
    for (uint32_t t : {1u, 2u}) {
      (void)agent::CheckApprovals(c.task, *c.statement_bytes, c.statement, c.connector_type,
                                  *Context(t).policy);
    }
  }
}

}  // namespace
}  // namespace wb::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wb::fuzz::Run(data, size);
  return 0;
}
