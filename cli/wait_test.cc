#include "cli/wait.h"

#include <gtest/gtest.h>

#include <vector>

namespace wb::cli {
namespace {

namespace v1 = writeback::v1;

v1::DecisionView InState(v1::DecisionState s) {
  v1::DecisionView v;
  v.set_state(s);
  return v;
}

struct Harness {
  FakeClock clock;
  std::vector<absl::Duration> rpc_timeouts;
  std::vector<absl::Duration> sleeps;
  std::function<void(absl::Duration)> sleep = [this](absl::Duration d) {
    sleeps.push_back(d);
    clock.Advance(d);
  };
};

TEST(WaitTest, PollsUntilTerminal) {
  Harness h;
  int calls = 0;
  auto r = WaitForDecision(
      [&](absl::Duration t) -> absl::StatusOr<v1::DecisionView> {
        h.rpc_timeouts.push_back(t);
        return InState(++calls < 3 ? v1::DECISION_STATE_DISPATCHED : v1::DECISION_STATE_VERIFIED);
      },
      h.clock, h.sleep, absl::Seconds(60), absl::Seconds(10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->finished);
  EXPECT_EQ(r->view.state(), v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(calls, 3);
  ASSERT_EQ(h.sleeps.size(), 2u);
  EXPECT_LT(h.sleeps[0], h.sleeps[1]);  // backs off
  EXPECT_EQ(h.rpc_timeouts[0], absl::Seconds(10));
}

TEST(WaitTest, StopsAtTheDeadlineWithTheLastView) {
  Harness h;
  const absl::Time start = h.clock.Now();
  auto r = WaitForDecision(
      [&](absl::Duration t) -> absl::StatusOr<v1::DecisionView> {
        h.rpc_timeouts.push_back(t);
        return InState(v1::DECISION_STATE_PENDING_APPROVAL);
      },
      h.clock, h.sleep, absl::Seconds(5), absl::Seconds(10));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->finished);
  EXPECT_EQ(r->view.state(), v1::DECISION_STATE_PENDING_APPROVAL);
  EXPECT_EQ(h.clock.Now() - start, absl::Seconds(5));  // never slept past the deadline
  for (absl::Duration t : h.rpc_timeouts) EXPECT_LE(t, absl::Seconds(5));
}

TEST(WaitTest, RetriesUnavailableButNotOtherErrors) {
  Harness h;
  int calls = 0;
  auto r = WaitForDecision(
      [&](absl::Duration) -> absl::StatusOr<v1::DecisionView> {
        if (++calls == 1) return absl::UnavailableError("restarting");
        return InState(v1::DECISION_STATE_FAILED);
      },
      h.clock, h.sleep, absl::Seconds(60), absl::Seconds(10));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->finished);
  EXPECT_EQ(ExitCodeForFinalState(r->view.state()), 1);

  calls = 0;
  r = WaitForDecision(
      [&](absl::Duration) -> absl::StatusOr<v1::DecisionView> {
        ++calls;
        return absl::NotFoundError("no such decision");
      },
      h.clock, h.sleep, absl::Seconds(60), absl::Seconds(10));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(calls, 1);

  r = WaitForDecision(
      [&](absl::Duration) -> absl::StatusOr<v1::DecisionView> {
        return absl::UnavailableError("down");
      },
      h.clock, h.sleep, absl::Seconds(3), absl::Seconds(10));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
}

TEST(WaitTest, TerminalStates) {
  EXPECT_TRUE(IsTerminal(v1::DECISION_STATE_VERIFIED));
  EXPECT_TRUE(IsTerminal(v1::DECISION_STATE_FAILED));
  EXPECT_TRUE(IsTerminal(v1::DECISION_STATE_EXPIRED));
  EXPECT_TRUE(IsTerminal(v1::DECISION_STATE_CANCELED));
  EXPECT_TRUE(IsTerminal(v1::DECISION_STATE_DRIFTED));
  EXPECT_FALSE(IsTerminal(v1::DECISION_STATE_PENDING_APPROVAL));
  EXPECT_FALSE(IsTerminal(v1::DECISION_STATE_APPROVED));
  EXPECT_FALSE(IsTerminal(v1::DECISION_STATE_DISPATCHED));
  EXPECT_EQ(ExitCodeForFinalState(v1::DECISION_STATE_VERIFIED), 0);
  EXPECT_EQ(ExitCodeForFinalState(v1::DECISION_STATE_EXPIRED), 1);
  EXPECT_EQ(ExitCodeForFinalState(v1::DECISION_STATE_CANCELED), 1);
}

}  // namespace
}  // namespace wb::cli
