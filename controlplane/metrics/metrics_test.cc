#include "controlplane/metrics/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controlplane/metrics/exposition.h"

namespace wb::controlplane {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, ExpositionParsesAndCountersMove) {
  Metrics m;
  auto first = exposition::Parse(m.Render());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(exposition::Sum(*first, "writeback_agents"), 0);
  EXPECT_TRUE(first->contains("writeback_agents{state=\"online\"}"));

  m.ObserveResult(writeback::v1::OUTCOME_VERIFIED, writeback::v1::REJECT_REASON_UNSPECIFIED, false);
  m.ObserveResult(writeback::v1::OUTCOME_REJECTED, writeback::v1::REJECT_REASON_BAD_SIGNATURE,
                  false);
  m.ObserveResult(writeback::v1::OUTCOME_FAILED, writeback::v1::REJECT_REASON_UNSPECIFIED, true);
  m.ObserveTimeToVerified("ssh_authorized_keys", "paris", absl::Seconds(3));
  m.ObserveStoreWrite("save_progress", absl::Microseconds(300), true);
  m.ObserveStoreWrite("save_progress", absl::Microseconds(300), false);
  m.ObserveDriftDetected();
  Metrics::FleetGauges g;
  g.online = 2;
  g.offline = 1;
  g.queue_depth = 7;
  g.per_agent["spiffe://writeback.test/agent/a"] = {7, 1};
  g.decisions_by_state["DRIFTED"] = 1;
  g.decisions_by_state["VERIFIED"] = 4;
  g.results_refused_total = 3;
  g.altered_deliveries_total = 1;
  m.SetFleet(g);
  g.results_refused_total = 5;
  g.altered_deliveries_total = 2;
  m.SetFleet(g);

  const std::string text = m.Render();
  auto s = exposition::Parse(text);
  ASSERT_TRUE(s.ok()) << s.status() << "\n" << text;
  using exposition::Sum;
  EXPECT_EQ(Sum(*s, "writeback_task_results_total", "outcome=\"verified\""), 1);
  EXPECT_EQ(Sum(*s, "writeback_task_refusals_total", "reason=\"bad_signature\""), 1);
  EXPECT_EQ(Sum(*s, "writeback_reverify_results_total", "outcome=\"failed\""), 1);
  EXPECT_EQ(Sum(*s, "writeback_time_to_verified_seconds_count", "site=\"paris\""), 1);
  EXPECT_EQ(Sum(*s, "writeback_time_to_verified_seconds_sum"), 3);
  EXPECT_EQ(Sum(*s, "writeback_store_write_seconds_count", "op=\"save_progress\""), 2);
  EXPECT_EQ(Sum(*s, "writeback_store_write_errors_total"), 1);
  EXPECT_EQ(Sum(*s, "writeback_drift_detected_total"), 1);
  EXPECT_EQ(Sum(*s, "writeback_drifted_decisions"), 1);
  EXPECT_EQ(Sum(*s, "writeback_decisions", "state=\"verified\""), 4);
  EXPECT_EQ(Sum(*s, "writeback_agents", "state=\"online\""), 2);
  EXPECT_EQ(Sum(*s, "writeback_agents", "state=\"offline\""), 1);
  EXPECT_EQ(Sum(*s, "writeback_queue_depth"), 7);
  EXPECT_EQ(Sum(*s, "writeback_agent_queue_depth", "agent/a"), 7);
  EXPECT_EQ(Sum(*s, "writeback_results_refused_total"), 5);  // a total, not added twice
  EXPECT_EQ(Sum(*s, "writeback_altered_deliveries_total"), 2);
  EXPECT_EQ(Sum(*s, "writeback_signature_errors_total", "side=\"agent\""), 1);
  EXPECT_THAT(text, HasSubstr("# TYPE writeback_time_to_verified_seconds histogram"));
}

TEST(ExpositionParserTest, RefusesMalformedText) {
  EXPECT_FALSE(exposition::Parse("writeback_x 1\n").ok());  // undeclared
  EXPECT_FALSE(exposition::Parse("# TYPE a counter\na{b=\"1} 1\n").ok());
  EXPECT_FALSE(exposition::Parse("# TYPE a counter\na{b=\"1\"} one\n").ok());
  EXPECT_FALSE(exposition::Parse("# TYPE a counter\na 1\na 2\n").ok());
  EXPECT_TRUE(exposition::Parse("# TYPE a counter\na{b=\"x\\\"y\"} 1 1700000000\n").ok());
}

}  // namespace
}  // namespace wb::controlplane
