#include "controlplane/dispatch/result_intake.h"

#include "absl/strings/str_cat.h"
#include "common/envelope/envelope.h"

namespace wb::controlplane {

using writeback::v1::TaskState;

TaskState TaskStateForResult(const writeback::v1::Result& r) {
  switch (r.outcome()) {
    case writeback::v1::OUTCOME_VERIFIED:
    case writeback::v1::OUTCOME_ALREADY_COMPLIANT:
      return writeback::v1::TASK_STATE_VERIFIED;
    case writeback::v1::OUTCOME_UNVERIFIED:
      return writeback::v1::TASK_STATE_APPLIED;
    case writeback::v1::OUTCOME_FAILED:
      return writeback::v1::TASK_STATE_FAILED;
    case writeback::v1::OUTCOME_REJECTED:
      return r.reject_reason() == writeback::v1::REJECT_REASON_EXPIRED
                 ? writeback::v1::TASK_STATE_EXPIRED
                 : writeback::v1::TASK_STATE_REJECTED;
    default:
      return writeback::v1::TASK_STATE_UNSPECIFIED;
  }
}

absl::StatusOr<writeback::v1::Result> VerifyResultEnvelope(const writeback::v1::SignedEnvelope& env,
                                                           const crypto::Ed25519PublicKey& key,
                                                           absl::string_view agent_id,
                                                           std::string* task_id) {
  if (task_id != nullptr) task_id->clear();
  // Verify before parsing; the payload bytes are the truth.
  if (absl::Status s = envelope::VerifyWithKey(env, writeback::v1::PAYLOAD_TYPE_RESULT, key);
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "result: not signed by this agent's registered result key (", s.message(), ")"));
  }
  writeback::v1::Result r;
  if (!r.ParseFromString(env.payload())) {
    return absl::InvalidArgumentError("result: payload is not a Result");
  }
  if (task_id != nullptr) *task_id = r.task_id();
  if (r.agent_id() != agent_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("result.agent_id: '", r.agent_id(), "' is not this stream's agent"));
  }
  if (TaskStateForResult(r) == writeback::v1::TASK_STATE_UNSPECIFIED) {
    return absl::InvalidArgumentError("result.outcome: missing or unknown");
  }
  return r;
}

}  // namespace wb::controlplane
