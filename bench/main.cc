// writeback-bench: simulated agents on the real protocol against a real
// control plane process, side by side with the bare pipeline of
// ../shared/perf-limits (docs/performance.md).
//
//   writeback-bench --scenario all --json bench.json
//   writeback-bench --scenario throughput --agents 1000 --decisions 1000 --targets 10
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/bare_pipeline.h"
#include "bench/cleanup.h"
#include "bench/scenarios.h"
#include "common/logging/logging.h"
#include "common/testing/temp_dir.h"

namespace {

using nlohmann::json;
using wb::bench::BenchConfig;

constexpr const char* kScenarios[] = {"throughput", "latency", "idle",
                                      "reconnect",  "restart", "fanout"};

std::string Num(const json& v) {
  if (v.is_number_float()) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.2f", v.get<double>());
    std::string s = buf;
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

struct Row {
  std::string scenario, figure, value, goal;
};

void Add(std::vector<Row>& rows, const std::string& scenario, const std::string& figure,
         const json& j, const char* key, const std::string& goal = "") {
  if (!j.contains(key)) return;
  rows.push_back({scenario, figure, Num(j.at(key)), goal});
}

void PrintTable(std::vector<Row> rows) {
  size_t w0 = 8, w1 = 6, w2 = 5;
  for (auto& r : rows) {
    if (r.value.size() > 48) r.value = r.value.substr(0, 45) + "...";  // the JSON has it all
    w0 = std::max(w0, r.scenario.size());
    w1 = std::max(w1, r.figure.size());
    w2 = std::max(w2, r.value.size());
  }
  std::printf("\n%-*s  %-*s  %*s  %s\n", static_cast<int>(w0), "scenario", static_cast<int>(w1),
              "figure", static_cast<int>(w2), "value", "goal");
  for (const auto& r : rows) {
    std::printf("%-*s  %-*s  %*s  %s\n", static_cast<int>(w0), r.scenario.c_str(),
                static_cast<int>(w1), r.figure.c_str(), static_cast<int>(w2), r.value.c_str(),
                r.goal.c_str());
  }
  std::fflush(stdout);
}

// Rows of the human table for one scenario's JSON.
void Rows(std::vector<Row>& rows, const std::string& s, const json& j, const json* bare) {
  if (j.contains("error")) {
    rows.push_back({s, "error", j.at("error").get<std::string>(), ""});
    return;
  }
  if (s == "throughput") {
    Add(rows, s, "tasks/s end to end", j, "tasks_per_s", "P1 >= 70 % of bare");
    if (j.contains("ratio_to_bare_pct"))
      Add(rows, s, "  % of bare pipeline", j, "ratio_to_bare_pct", ">= 70");
    Add(rows, s, "control-plane CPU us/task", j, "controlplane_cpu_us_per_task");
    if (bare != nullptr) {
      rows.push_back({s, "  bare server CPU us/task", Num(bare->at("server_cpu_us_per_op")), ""});
    }
    Add(rows, s, "agents (bench) CPU us/task", j, "agents_cpu_us_per_task");
    Add(rows, s, "decision p50 ms (saturated)", j, "decision_p50_ms");
    Add(rows, s, "decision p99 ms (saturated)", j, "decision_p99_ms");
  } else if (s == "latency") {
    Add(rows, s, "submit rate, decisions/s", j, "rate_decisions_per_s");
    Add(rows, s, "submit->VERIFIED p50 ms", j, "p50_ms");
    Add(rows, s, "submit->VERIFIED p90 ms", j, "p90_ms");
    Add(rows, s, "submit->VERIFIED p99 ms", j, "p99_ms", "P2 <= 5 ms at 10 % load");
    Add(rows, s, "control-plane CPU us/task", j, "controlplane_cpu_us_per_task");
  } else if (s == "idle") {
    Add(rows, s, "connected idle agents", j, "connected");
    Add(rows, s, "control-plane RSS KiB/agent", j, "controlplane_rss_kib_per_agent",
        "P3 <= 150 KiB");
    Add(rows, s, "control-plane CPU us/s per agent", j, "controlplane_cpu_us_per_agent_per_s");
    Add(rows, s, "  % of a core at 10,000 agents", j, "controlplane_core_pct_at_10000_agents",
        "P3 <= 10 %");
    Add(rows, s, "sim agent RSS KiB/agent", j, "sim_agents_rss_kib_per_agent");
  } else if (s == "reconnect") {
    Add(rows, s, "agents", j, "agents");
    Add(rows, s, "all reconnected after start, s", j, "all_reconnected_s", "P6 10,000 in <= 60 s");
    Add(rows, s, "serving after start, ms", j, "serving_ms");
  } else if (s == "restart") {
    Add(rows, s, "stored tasks", j, "stored_tasks");
    Add(rows, s, "serving after start, ms", j, "serving_ms", "P6 1,000,000 tasks in <= 2 s");
    Add(rows, s, "data dir MiB", j, "data_dir_mib");
  } else if (s == "fanout") {
    for (const auto& row : j.at("sizes")) {
      const std::string t = absl::StrCat(row.at("targets").get<int>(), " targets");
      if (row.contains("error")) rows.push_back({s, t + ": error", Num(row.at("error")), ""});
      if (!row.contains("controlplane_cpu_us_per_task")) continue;
      Add(rows, s, t + ": control-plane CPU us/task", row, "controlplane_cpu_us_per_task");
      Add(rows, s, t + ": wire bytes/task", row, "wire_bytes_per_task");
      Add(rows, s, t + ": store bytes/task", row, "store_bytes_per_task");
    }
    Add(rows, s, "CPU ratio largest/smallest", j, "cpu_ratio_largest_to_smallest", "<= 1.5");
    Add(rows, s, "bytes ratio largest/smallest", j, "bytes_ratio_largest_to_smallest", "<= 1.5");
  } else if (s == "real_agents") {
    Add(rows, s, "tasks/s end to end", j, "tasks_per_s");
    Add(rows, s, "control-plane CPU us/task", j, "controlplane_cpu_us_per_task");
    Add(rows, s, "agent RSS MiB idle (max)", j, "agent_rss_mib_idle_max", "P4 <= 12 MB");
    Add(rows, s, "agent CPU % idle (mean)", j, "agent_idle_cpu_pct", "P4 <= 0.1 %");
    Add(rows, s, "agent RSS MiB after the run (max)", j, "agent_rss_mib_max");
  }
}

std::vector<int> ParseSizes(const std::string& s) {
  std::vector<int> out;
  for (absl::string_view p : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    int v = 0;
    if (absl::SimpleAtoi(p, &v) && v > 0) out.push_back(v);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  BenchConfig c;
  c.binaries.controlplane = WB_CONTROLPLANE_BINARY;
  c.binaries.agent = WB_AGENT_BINARY;
  std::string scenario = "all";
  std::string json_path;
  std::string bare_dir = WB_SOURCE_DIR "/../shared/perf-limits";
  std::string bare_build = WB_BENCH_BUILD_DIR "/perf-limits-build";
  bool no_bare = false;
  int max_seconds = 3600;
  int timeout_s = 600;
  std::string fanout = "10,1000,10000";
  std::string signal_name = "term";

  CLI::App app{
      "writeback-bench: simulated agents on the real protocol against a real "
      "writeback-controlplane, next to the bare pipeline (docs/performance.md)"};
  app.add_option("--scenario", scenario,
                 "throughput|latency|idle|reconnect|restart|fanout|all (comma-separated list)");
  app.add_option("--json", json_path, "write every figure as JSON to this file");
  app.add_option("--controlplane-binary", c.binaries.controlplane, "writeback-controlplane");
  app.add_option("--agent-binary", c.binaries.agent, "writeback-agent (--real-agents)");
  app.add_option("--agents", c.agents, "simulated agents (throughput; default for the others)");
  app.add_option("--decisions", c.decisions, "throughput: decisions");
  app.add_option("--targets", c.targets, "throughput: targets per decision");
  app.add_option("--submit-window", c.submit_window, "throughput: submits in flight");
  app.add_option("--rate", c.rate,
                 "latency: decisions/s (default 10 % of the throughput scenario's tasks/s, or 20)");
  app.add_option("--latency-seconds", c.latency_seconds, "latency: seconds of submitting");
  app.add_option("--latency-targets", c.latency_targets, "latency: targets per decision");
  app.add_option("--latency-agents", c.latency_agents, "latency: agents (default --agents)");
  app.add_option("--idle-agents", c.idle_agents, "idle: agents (default --agents)");
  app.add_option("--idle-seconds", c.idle_seconds, "idle: measuring window");
  app.add_option("--reconnect-agents", c.reconnect_agents, "reconnect: agents (default --agents)");
  app.add_option("--restart-signal", signal_name, "reconnect, restart: term|kill");
  app.add_option("--stored-tasks", c.stored_tasks, "restart: tasks stored before the restart");
  app.add_option("--stored-targets", c.stored_targets, "restart: targets per decision");
  app.add_option("--fanout-sizes", fanout, "fanout: targets of each decision");
  app.add_option("--fanout-min-tasks", c.fanout_min_tasks,
                 "fanout: a size is repeated (decision after decision) up to this many tasks");
  app.add_option("--heartbeat-seconds", c.heartbeat_seconds,
                 "control plane's heartbeat_interval_seconds (its default: 10)");
  app.add_option("--worker-threads", c.worker_threads, "threads checking and signing tasks");
  app.add_option("--controlplane-log-level", c.controlplane_log_level, "info (default) ... error");
  app.add_option("--real-agents", c.real_agents,
                 "also drive this many writeback-agent processes (ssh_authorized_keys on "
                 "sandbox files)");
  app.add_option("--real-decisions", c.real_decisions, "real agents: decisions");
  app.add_option("--real-targets", c.real_targets, "real agents: targets per decision");
  app.add_option("--bare-pipeline", bare_dir, "perf-limits checkout (its build.sh and src/)");
  app.add_option("--bare-build-dir", bare_build, "where perf-limits is copied and built");
  app.add_flag("--no-bare-pipeline", no_bare, "do not run the bare pipeline");
  app.add_option("--timeout", timeout_s, "per-scenario wait limit, seconds");
  app.add_option("--max-seconds", max_seconds, "whole run; then everything is killed");
  CLI11_PARSE(app, argc, argv);

  // The library code this process runs (enrolment) logs; warnings only.
  (void)wb::log::Init("writeback-bench", "warn", "text");
  c.fanout_sizes = ParseSizes(fanout);
  c.scenario_timeout = absl::Seconds(timeout_s);
  c.restart_signal = signal_name == "kill" ? SIGKILL : SIGTERM;
  std::set<std::string> want;
  for (absl::string_view p : absl::StrSplit(scenario, ',', absl::SkipEmpty())) {
    if (p == "all") {
      for (const char* s : kScenarios) want.insert(s);
    } else {
      want.insert(std::string(p));
    }
  }
  for (const auto& w : want) {
    bool known = false;
    for (const char* s : kScenarios) known = known || w == s;
    if (!known && w != "none") {
      std::fprintf(stderr, "unknown scenario '%s'\n", w.c_str());
      return 2;
    }
  }

  // SIGINT, SIGTERM and the deadline stop the run and clean up. Blocked
  // here, before any thread starts; children start unblocked.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::thread([stop, max_seconds] {
    timespec ts{max_seconds, 0};
    const int sig = sigtimedwait(&stop, nullptr, &ts);
    std::fprintf(stderr, "writeback-bench: %s; killing children, removing temporary files\n",
                 sig > 0 ? "stopped by a signal" : "--max-seconds reached");
    wb::bench::CleanupAndExit(3);
  }).detach();

  json out;
  out["config"] = {{"agents", c.agents},
                   {"heartbeat_seconds", c.heartbeat_seconds},
                   {"worker_threads", c.worker_threads},
                   {"controlplane_log_level", c.controlplane_log_level},
                   {"cores", std::thread::hardware_concurrency()},
                   {"controlplane_binary", c.binaries.controlplane}};
  std::vector<Row> rows;
  int failures = 0;

  // The bare pipeline, first: the denominator.
  json bare;
  if (no_bare) {
    bare = {{"error", "skipped (--no-bare-pipeline)"}};
  } else {
    wb::testing::TempDir work;
    wb::bench::RegisterDir(work.path());
    std::fprintf(stderr, "bare pipeline: %s\n", bare_dir.c_str());
    auto r = wb::bench::RunBarePipeline(bare_dir, bare_build, work.path(), absl::Seconds(180));
    wb::bench::UnregisterDir(work.path());
    if (r.ok()) {
      bare = {{"tasks_per_s", r->msgs_per_s},
              {"server_cpu_us_per_op", r->server_cpu_us_per_op},
              {"client_cpu_us_per_op", r->client_cpu_us_per_op},
              {"command", r->command},
              {"result_line", r->result_line}};
      rows.push_back({"bare", "tasks/s end to end", Num(json(r->msgs_per_s)), ""});
      rows.push_back({"bare", "server CPU us/task", Num(json(r->server_cpu_us_per_op)), ""});
    } else {
      bare = {{"error", std::string(r.status().message())}};
      std::fprintf(stderr, "bare pipeline not run: %s\n",
                   std::string(r.status().message()).c_str());
      rows.push_back({"bare", "not run", std::string(r.status().message()), ""});
    }
  }
  out["bare_pipeline"] = bare;
  const json* bare_ok = bare.contains("error") ? nullptr : &bare;

  auto run = [&](const std::string& name, const std::function<absl::StatusOr<json>()>& f) -> json {
    std::fprintf(stderr, "scenario %s ...\n", name.c_str());
    const absl::Time t0 = absl::Now();
    absl::StatusOr<json> r = f();
    json j = r.ok() ? *r : json{{"error", std::string(r.status().message())}};
    if (!r.ok()) {
      ++failures;
      std::fprintf(stderr, "scenario %s failed: %s\n", name.c_str(),
                   std::string(r.status().message()).c_str());
    }
    j["wall_s"] = std::round(absl::ToDoubleSeconds(absl::Now() - t0) * 10) / 10;
    return j;
  };

  double throughput = 0;
  for (const char* name : kScenarios) {
    const std::string s = name;
    if (!want.count(s)) continue;
    json j;
    if (s == "throughput") {
      j = run(s, [&] { return wb::bench::RunThroughput(c); });
      if (j.contains("tasks_per_s")) {
        throughput = j["tasks_per_s"].get<double>();
        if (bare_ok != nullptr) {
          j["ratio_to_bare_pct"] =
              std::round(throughput / bare["tasks_per_s"].get<double>() * 1000) / 10;
        }
      }
    } else if (s == "latency") {
      // 10 % of the measured load (in tasks/s, as decisions of
      // latency-targets each), else the flag, else 20/s.
      double rate = c.rate;
      if (rate <= 0) {
        rate = throughput > 0 ? throughput * 0.1 / std::max(1, c.latency_targets) : 20;
      }
      j = run(s, [&] { return wb::bench::RunLatency(c, rate); });
    } else if (s == "idle") {
      j = run(s, [&] { return wb::bench::RunIdle(c); });
    } else if (s == "reconnect") {
      j = run(s, [&] { return wb::bench::RunReconnect(c); });
    } else if (s == "restart") {
      j = run(s, [&] { return wb::bench::RunRestart(c); });
    } else if (s == "fanout") {
      j = run(s, [&] { return wb::bench::RunFanout(c); });
    }
    Rows(rows, s, j, bare_ok);
    out[s] = j;
  }
  if (c.real_agents > 0) {
    json j = run("real_agents", [&] { return wb::bench::RunRealAgents(c); });
    if (bare_ok != nullptr && j.contains("tasks_per_s")) {
      j["ratio_to_bare_pct"] =
          std::round(j["tasks_per_s"].get<double>() / bare["tasks_per_s"].get<double>() * 1000) /
          10;
    }
    Rows(rows, "real_agents", j, bare_ok);
    out["real_agents"] = j;
  }

  PrintTable(rows);
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    f << out.dump(2) << "\n";
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  return failures == 0 ? 0 : 1;
}
