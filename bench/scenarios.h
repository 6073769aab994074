// writeback-bench's scenarios (docs/performance.md). Each starts its own
// control plane and swarm, measures, and returns its figures as JSON; every
// wait is bounded. A failed scenario returns an error status.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "tests/fault/deployment.h"

namespace wb::bench {

struct BenchConfig {
  fault::Binaries binaries;
  int agents = 1000;
  int heartbeat_seconds = 10;
  int worker_threads = 2;
  std::string controlplane_log_level = "info";
  absl::Duration connect_timeout = absl::Seconds(300);
  absl::Duration scenario_timeout = absl::Seconds(600);
  // throughput
  int decisions = 1000;
  int targets = 10;
  int submit_window = 32;
  // latency (open loop)
  double rate = 0;  // decisions/s; 0 = 10 % of the throughput scenario's, else 20
  int latency_seconds = 10;
  int latency_targets = 1;
  int latency_agents = 0;  // 0 = agents
  // idle
  int idle_agents = 0;  // 0 = agents
  int idle_seconds = 10;
  // reconnect
  int reconnect_agents = 0;  // 0 = agents
  int restart_signal = 15;   // SIGTERM
  // restart with stored tasks
  int stored_tasks = 10000;
  int stored_targets = 100;  // per decision
  // fan-out
  std::vector<int> fanout_sizes = {10, 1000, 10000};
  int fanout_min_tasks = 1000;  // smaller decisions are repeated up to this
  // real agents
  int real_agents = 0;
  int real_decisions = 20;
  int real_targets = 5;
};

absl::StatusOr<nlohmann::json> RunThroughput(const BenchConfig& c);
absl::StatusOr<nlohmann::json> RunLatency(const BenchConfig& c, double rate);
absl::StatusOr<nlohmann::json> RunIdle(const BenchConfig& c);
absl::StatusOr<nlohmann::json> RunReconnect(const BenchConfig& c);
absl::StatusOr<nlohmann::json> RunRestart(const BenchConfig& c);
absl::StatusOr<nlohmann::json> RunFanout(const BenchConfig& c);
absl::StatusOr<nlohmann::json> RunRealAgents(const BenchConfig& c);

// p-th percentile (0..100) of `v` in ms (sorted copy); 0 if empty.
double PercentileMs(std::vector<absl::Duration> v, double p);

}  // namespace wb::bench
