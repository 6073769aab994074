#include "cli/wait.h"

#include <algorithm>

#include "cli/exit_codes.h"

namespace wb::cli {

namespace v1 = writeback::v1;

bool IsTerminal(v1::DecisionState s) {
  switch (s) {
    case v1::DECISION_STATE_VERIFIED:
    case v1::DECISION_STATE_FAILED:
    case v1::DECISION_STATE_EXPIRED:
    case v1::DECISION_STATE_CANCELED:
    case v1::DECISION_STATE_DRIFTED:
    case v1::DECISION_STATE_UNVERIFIABLE:
    case v1::DECISION_STATE_RETIRED:
      return true;
    default:
      return false;
  }
}

int ExitCodeForFinalState(v1::DecisionState s) {
  return s == v1::DECISION_STATE_VERIFIED ? kExitOk : kExitFailed;
}

absl::StatusOr<WaitResult> WaitForDecision(
    const std::function<absl::StatusOr<v1::DecisionView>(absl::Duration)>& get, const Clock& clock,
    const std::function<void(absl::Duration)>& sleep, absl::Duration timeout,
    absl::Duration rpc_timeout) {
  const absl::Time deadline = clock.Now() + timeout;
  absl::Duration poll = absl::Milliseconds(250);
  WaitResult result;
  bool seen = false;
  absl::Status last_error = absl::DeadlineExceededError("no answer before the --wait deadline");
  while (true) {
    const absl::Duration left = deadline - clock.Now();
    if (left <= absl::ZeroDuration()) break;
    auto view = get(std::min(rpc_timeout, left));
    if (view.ok()) {
      result.view = *std::move(view);
      seen = true;
      if (IsTerminal(result.view.state())) {
        result.finished = true;
        return result;
      }
    } else if (view.status().code() == absl::StatusCode::kUnavailable ||
               view.status().code() == absl::StatusCode::kDeadlineExceeded) {
      last_error = view.status();
    } else {
      return view.status();
    }
    const absl::Duration left_now = deadline - clock.Now();
    if (left_now <= absl::ZeroDuration()) break;
    sleep(std::min(poll, left_now));
    poll = std::min(poll * 2, absl::Seconds(2));
  }
  if (!seen) return last_error;
  return result;
}

}  // namespace wb::cli
