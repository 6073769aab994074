// The stateless part of the control plane's result intake: what can be
// decided about a signed result from its bytes, the sending agent's
// registered result key and the stream's agent id alone. Dispatcher::
// IntakeResult calls it before it looks the task up in the store; the
// result_verify fuzzer (tests/fuzz) calls it directly.
//
// Pure functions, thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto/crypto.h"
#include "writeback/v1/decision.pb.h"
#include "writeback/v1/envelope.pb.h"

namespace wb::controlplane {

// Task state for a result outcome (VERIFIED/ALREADY_COMPLIANT -> VERIFIED,
// UNVERIFIED -> APPLIED, FAILED -> FAILED, REJECTED -> REJECTED except a
// REJECT_REASON_EXPIRED -> EXPIRED). UNSPECIFIED for an unknown outcome.
writeback::v1::TaskState TaskStateForResult(const writeback::v1::Result& r);

// Verifies `env` as a PAYLOAD_TYPE_RESULT signed by `key` (before parsing),
// parses the exact payload as a Result, and checks that result.agent_id is
// `agent_id` and the outcome is known (TaskStateForResult not UNSPECIFIED).
// Errors are INVALID_ARGUMENT with the message the agent is sent back:
//   "result: not signed by this agent's registered result key (<why>)"
//   "result: payload is not a Result"
//   "result.agent_id: '<id>' is not this stream's agent"
//   "result.outcome: missing or unknown"
// `task_id`, if not null, is set to the parsed result's task_id as soon as
// the payload parsed (also on the last two errors), else cleared: for the
// refusal, never trusted.
absl::StatusOr<writeback::v1::Result> VerifyResultEnvelope(const writeback::v1::SignedEnvelope& env,
                                                           const crypto::Ed25519PublicKey& key,
                                                           absl::string_view agent_id,
                                                           std::string* task_id = nullptr);

}  // namespace wb::controlplane
