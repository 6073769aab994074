// Waiting for a decision to reach a terminal state (`decision submit --wait`).
#pragma once

#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "writeback/v1/admin_service.pb.h"

namespace wb::cli {

// VERIFIED, FAILED, EXPIRED, CANCELED, DRIFTED, UNVERIFIABLE and RETIRED: nothing more will happen
// without an operator.
bool IsTerminal(writeback::v1::DecisionState s);
// 0 for VERIFIED, 1 (operation failed) for every other state.
int ExitCodeForFinalState(writeback::v1::DecisionState s);

struct WaitResult {
  writeback::v1::DecisionView view;  // the last view seen
  bool finished = false;             // view.state() is terminal
};

// Calls `get(rpc_timeout)` until the decision is terminal or `timeout` (by
// `clock`) has passed, sleeping with `sleep` between polls (250 ms growing to
// 2 s, never past the deadline). Each call's deadline is min(rpc_timeout,
// time left). UNAVAILABLE and DEADLINE_EXCEEDED are retried until the
// deadline (a control plane restart should not end the wait); other errors
// end it. Returns finished=false with the last view if time ran out, or the
// last error if no view was ever seen.
absl::StatusOr<WaitResult> WaitForDecision(
    const std::function<absl::StatusOr<writeback::v1::DecisionView>(absl::Duration)>& get,
    const Clock& clock, const std::function<void(absl::Duration)>& sleep, absl::Duration timeout,
    absl::Duration rpc_timeout);

}  // namespace wb::cli
