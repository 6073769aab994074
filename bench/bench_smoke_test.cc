// CI smoke test of writeback-bench (ctest -R bench): every scenario at a
// tiny size against the real writeback-controlplane binary; the run
// completes and writes JSON with every field. No timing thresholds: the
// figures are only checked to exist and to be consistent.
#include <sys/wait.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "bench/bare_pipeline.h"
#include "bench/scenarios.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fault/deployment.h"

namespace wb::bench {
namespace {

using nlohmann::json;

void ExpectFields(const json& j, const std::string& scenario,
                  const std::vector<std::string>& fields) {
  ASSERT_TRUE(j.contains(scenario)) << scenario;
  const json& s = j.at(scenario);
  EXPECT_FALSE(s.contains("error")) << scenario << ": " << s.dump();
  for (const auto& f : fields) {
    EXPECT_TRUE(s.contains(f)) << scenario << " has no " << f << ": " << s.dump();
    if (s.contains(f)) {
      EXPECT_TRUE(s.at(f).is_number()) << scenario << "." << f;
    }
  }
}

TEST(bench_smoke, EveryScenarioWritesEveryField) {
  testing::TempDir dir;
  const std::string out = dir.Sub("bench.json");
  const std::vector<std::string> argv = {WB_BENCH_BINARY,
                                         "--scenario",
                                         "all",
                                         "--json",
                                         out,
                                         "--agents",
                                         "3",
                                         "--decisions",
                                         "4",
                                         "--targets",
                                         "2",
                                         "--rate",
                                         "10",
                                         "--latency-seconds",
                                         "1",
                                         "--idle-seconds",
                                         "1",
                                         "--heartbeat-seconds",
                                         "1",
                                         "--stored-tasks",
                                         "20",
                                         "--stored-targets",
                                         "10",
                                         "--fanout-sizes",
                                         "1,5",
                                         "--timeout",
                                         "120",
                                         "--max-seconds",
                                         "500",
                                         "--no-bare-pipeline",
                                         "--real-agents",
                                         "1",
                                         "--real-decisions",
                                         "2",
                                         "--real-targets",
                                         "2"};
  auto pid = fault::Spawn(argv, dir.Sub("bench.log"), {});
  ASSERT_TRUE(pid.ok()) << pid.status();
  int status = 0;
  const bool exited = testing::WaitFor([&] { return waitpid(*pid, &status, WNOHANG) == *pid; },
                                       std::chrono::seconds(540), std::chrono::milliseconds(50));
  if (!exited) {
    kill(*pid, SIGKILL);
    waitpid(*pid, &status, 0);
  }
  std::ifstream log(dir.Sub("bench.log"));
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(exited) << text;
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << text;

  std::ifstream f(out);
  ASSERT_TRUE(f.good()) << text;
  const json j = json::parse(f, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << "not JSON";
  ExpectFields(j, "throughput",
               {"agents", "decisions", "targets", "tasks", "seconds", "tasks_per_s",
                "controlplane_cpu_us_per_task", "agents_cpu_us_per_task", "controlplane_rss_mib",
                "decision_p50_ms", "decision_p99_ms"});
  EXPECT_EQ(j["throughput"]["tasks"], 8);
  EXPECT_EQ(j["throughput"]["check"]["decisions_verified"], 4);
  EXPECT_EQ(j["throughput"]["agent_counters"]["rejected"], 0);
  ExpectFields(j, "latency",
               {"rate_decisions_per_s", "decisions", "tasks", "p50_ms", "p90_ms", "p99_ms",
                "max_ms", "controlplane_cpu_us_per_task", "agents_cpu_us_per_task"});
  EXPECT_EQ(j["latency"]["check"]["decisions_not_verified"], 0);
  ExpectFields(j, "idle",
               {"agents", "connected", "controlplane_rss_kib_per_agent",
                "controlplane_cpu_us_per_agent_per_s", "controlplane_core_pct_at_10000_agents",
                "sim_agents_rss_kib_per_agent", "sim_agents_cpu_us_per_agent_per_s"});
  EXPECT_EQ(j["idle"]["connected"], 3);
  ExpectFields(j, "reconnect", {"agents", "stop_ms", "serving_ms", "all_reconnected_s"});
  ExpectFields(j, "restart",
               {"stored_tasks", "data_dir_mib", "stop_ms", "port_file_ms", "serving_ms"});
  EXPECT_EQ(j["restart"]["stored_tasks"], 20);
  ASSERT_TRUE(j.contains("fanout"));
  ASSERT_EQ(j["fanout"]["sizes"].size(), 2u);
  for (const auto& row : j["fanout"]["sizes"]) {
    EXPECT_FALSE(row.contains("error")) << row.dump();
    for (const char* k : {"tasks_done", "controlplane_cpu_us_per_task", "agents_cpu_us_per_task",
                          "wire_bytes_per_task", "store_bytes_per_task"}) {
      EXPECT_TRUE(row.contains(k)) << k;
    }
  }
  EXPECT_TRUE(j["fanout"].contains("cpu_ratio_largest_to_smallest"));
  ExpectFields(
      j, "real_agents",
      {"agents", "tasks", "tasks_per_s", "controlplane_cpu_us_per_task", "agents_cpu_us_per_task",
       "agent_rss_mib_idle_max", "agent_idle_cpu_pct", "agent_rss_mib_max", "files_checked_ok"});
  EXPECT_EQ(j["real_agents"]["files_checked_ok"], 4);
  EXPECT_TRUE(j["bare_pipeline"].contains("error"));  // skipped here
}

TEST(bench_smoke, ParsesTheBarePipelineResultLine) {
  auto r = ParseBareResult(
      "noise\nRESULT mode=stream secure=1 streams=100 msgs_per_s=5123.4 ops=30000 "
      "server_cpu_us_per_op=171.20 client_cpu_us_per_op=220.5 failed_streams=0\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(r->msgs_per_s, 5123.4);
  EXPECT_DOUBLE_EQ(r->server_cpu_us_per_op, 171.2);
  EXPECT_DOUBLE_EQ(r->client_cpu_us_per_op, 220.5);
  EXPECT_FALSE(ParseBareResult("RESULT mode=stream\n").ok());
  EXPECT_FALSE(ParseBareResult("nothing here").ok());
}

TEST(bench_smoke, Percentiles) {
  std::vector<absl::Duration> v;
  for (int i = 1; i <= 100; ++i) v.push_back(absl::Milliseconds(i));
  EXPECT_DOUBLE_EQ(PercentileMs(v, 0), 1);
  EXPECT_DOUBLE_EQ(PercentileMs(v, 100), 100);
  EXPECT_NEAR(PercentileMs(v, 50), 50.5, 0.6);
  EXPECT_DOUBLE_EQ(PercentileMs({}, 99), 0);
}

}  // namespace
}  // namespace wb::bench
