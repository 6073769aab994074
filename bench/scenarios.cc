#include "bench/scenarios.h"

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "bench/cleanup.h"
#include "bench/proc_stats.h"
#include "bench/swarm.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "tests/integration/ssh_test_keys.h"

namespace wb::bench {

namespace v1 = writeback::v1;
using nlohmann::json;

double PercentileMs(std::vector<absl::Duration> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(std::llround(rank));
  return Ms(v[std::min(i, v.size() - 1)]);
}

namespace {

double Round(double x, int digits = 2) {
  const double f = std::pow(10.0, digits);
  return std::round(x * f) / f;
}

// CPU of the control plane and of this process (the simulated agents and
// the operator client) over a window.
class Meter {
 public:
  explicit Meter(pid_t cp) : cp_(cp) {}
  absl::Status Start() {
    WB_ASSIGN_OR_RETURN(cp0_, ReadProc(cp_));
    WB_ASSIGN_OR_RETURN(me0_, ReadProc(0));
    t0_ = absl::Now();
    return absl::OkStatus();
  }
  absl::Status Stop() {
    WB_ASSIGN_OR_RETURN(cp1_, ReadProc(cp_));
    WB_ASSIGN_OR_RETURN(me1_, ReadProc(0));
    t1_ = absl::Now();
    return absl::OkStatus();
  }
  double seconds() const { return absl::ToDoubleSeconds(t1_ - t0_); }
  double cp_cpu() const { return cp1_.cpu_seconds - cp0_.cpu_seconds; }
  double me_cpu() const { return me1_.cpu_seconds - me0_.cpu_seconds; }
  const ProcSample& cp_end() const { return cp1_; }
  const ProcSample& me_end() const { return me1_; }
  const ProcSample& cp_start() const { return cp0_; }
  const ProcSample& me_start() const { return me0_; }

 private:
  pid_t cp_;
  ProcSample cp0_, cp1_, me0_, me1_;
  absl::Time t0_, t1_;
};

absl::StatusOr<std::unique_ptr<Swarm>> StartSwarm(const BenchConfig& c, int agents, bool connect) {
  Swarm::Options o;
  o.binaries = c.binaries;
  o.heartbeat_seconds = c.heartbeat_seconds;
  o.controlplane_log_level = c.controlplane_log_level;
  o.worker_threads = c.worker_threads;
  WB_ASSIGN_OR_RETURN(auto s, Swarm::Start(o));
  const absl::Time t0 = absl::Now();
  WB_RETURN_IF_ERROR(s->AddAgents(agents));
  const absl::Duration enrolled = absl::Now() - t0;
  if (connect) WB_RETURN_IF_ERROR(s->ConnectAll(c.connect_timeout));
  fprintf(stderr, "  %d agents enrolled in %.1f s%s\n", agents, absl::ToDoubleSeconds(enrolled),
          connect ? absl::StrCat(", connected after ",
                                 Round(absl::ToDoubleSeconds(absl::Now() - t0), 1), " s")
                        .c_str()
                  : "");
  return s;
}

// Submits `count` decisions (spec_of(k)), at most `window` at once; each
// accepted one is expected to produce `targets` results, timed from its
// submit. Returns the decision ids.
absl::StatusOr<std::vector<std::string>> SubmitAll(
    Swarm& s, int count, const std::function<v1::DecisionSpec(int)>& spec_of, int targets,
    int window, absl::Duration timeout) {
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  int done = 0;
  std::vector<std::string> ids(static_cast<size_t>(count));
  absl::Status first_error;
  const absl::Time deadline = absl::Now() + timeout;
  for (int k = 0; k < count; ++k) {
    v1::DecisionSpec spec = spec_of(k);
    {
      std::unique_lock<std::mutex> l(mu);
      if (!cv.wait_until(l, absl::ToChronoTime(deadline), [&] { return in_flight < window; })) {
        return absl::DeadlineExceededError("submitting took too long");
      }
      if (!first_error.ok()) break;
      ++in_flight;
    }
    const absl::Time at = absl::Now();
    s.SubmitAsync(spec, [&, k, at](const grpc::Status& st, const v1::SubmitDecisionResponse& r) {
      if (st.ok()) s.tracker().Expect(r.decision_id(), targets, at);
      std::lock_guard<std::mutex> l(mu);
      if (st.ok()) {
        ids[static_cast<size_t>(k)] = r.decision_id();
      } else if (first_error.ok()) {
        first_error = absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                                   absl::StrCat("submit: ", st.error_message()));
      }
      --in_flight;
      ++done;
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> l(mu);
  // Every callback must have run before the locals go away.
  cv.wait(l, [&] { return in_flight == 0; });
  if (!first_error.ok()) return first_error;
  return ids;
}

// Every decision in `ids` is VERIFIED (as GetDecision says); counts.
json CheckVerified(Swarm& s, const std::vector<std::string>& ids) {
  int verified = 0, other = 0, errors = 0;
  for (const auto& id : ids) {
    auto v = s.Get(id);
    if (!v.ok()) {
      ++errors;
    } else if (v->state() == v1::DECISION_STATE_VERIFIED) {
      ++verified;
    } else {
      ++other;
    }
  }
  return json{{"decisions_verified", verified},
              {"decisions_not_verified", other},
              {"decision_read_errors", errors}};
}

json AgentCounters(const SimAgent::Counters& c) {
  return json{{"tasks_received", c.tasks_received}, {"accepted", c.accepted},
              {"duplicates", c.duplicates},         {"rejected", c.rejected},
              {"results_stored", c.results_stored}, {"results_refused", c.results_refused}};
}

}  // namespace

// -------------------------------------------------------------- throughput

absl::StatusOr<json> RunThroughput(const BenchConfig& c) {
  WB_ASSIGN_OR_RETURN(auto s, StartSwarm(c, c.agents, /*connect=*/true));
  const uint64_t tasks = static_cast<uint64_t>(c.decisions) * static_cast<uint64_t>(c.targets);
  Meter m(s->controlplane_pid());
  WB_RETURN_IF_ERROR(m.Start());
  const int n = s->size();
  Swarm* sw = s.get();
  WB_ASSIGN_OR_RETURN(auto ids,
                      SubmitAll(
                          *s, c.decisions, [&](int k) { return sw->Spec(k % n, k, c.targets); },
                          c.targets, c.submit_window, c.scenario_timeout));
  const bool all = s->tracker().WaitResults(tasks, c.scenario_timeout);
  WB_RETURN_IF_ERROR(m.Stop());
  const uint64_t stored = s->tracker().results();
  if (!all) {
    return absl::DeadlineExceededError(
        absl::StrCat("throughput: ", stored, " of ", tasks, " results stored within the timeout"));
  }
  auto lat = s->tracker().Latencies();
  json j{{"agents", n},
         {"decisions", c.decisions},
         {"targets", c.targets},
         {"tasks", tasks},
         {"seconds", Round(m.seconds(), 3)},
         {"tasks_per_s", Round(static_cast<double>(tasks) / m.seconds(), 1)},
         {"controlplane_cpu_us_per_task", Round(m.cp_cpu() * 1e6 / static_cast<double>(tasks), 1)},
         {"agents_cpu_us_per_task", Round(m.me_cpu() * 1e6 / static_cast<double>(tasks), 1)},
         {"controlplane_rss_mib", Round(static_cast<double>(m.cp_end().rss_bytes) / 1048576.0, 1)},
         {"decision_p50_ms", Round(PercentileMs(lat, 50))},
         {"decision_p99_ms", Round(PercentileMs(lat, 99))}};
  j["agent_counters"] = AgentCounters(s->TotalCounters());
  j["check"] = CheckVerified(*s, ids);
  return j;
}

// ----------------------------------------------------------------- latency

absl::StatusOr<json> RunLatency(const BenchConfig& c, double rate) {
  const int agents = c.latency_agents > 0 ? c.latency_agents : c.agents;
  WB_ASSIGN_OR_RETURN(auto s, StartSwarm(c, agents, /*connect=*/true));
  const int count = std::max(1, static_cast<int>(std::lround(rate * c.latency_seconds)));
  const uint64_t tasks = static_cast<uint64_t>(count) * static_cast<uint64_t>(c.latency_targets);
  Meter m(s->controlplane_pid());
  WB_RETURN_IF_ERROR(m.Start());
  // Open loop: decision k is due at t0 + k / rate, whatever happened to the
  // earlier ones, and its latency counts from when it was due.
  std::mutex mu;
  std::condition_variable cv;
  int outstanding = 0;
  absl::Status first_error;
  std::vector<std::string> ids;
  const absl::Time t0 = absl::Now();
  for (int k = 0; k < count; ++k) {
    const absl::Time due = t0 + absl::Seconds(static_cast<double>(k) / rate);
    std::this_thread::sleep_until(absl::ToChronoTime(due));  // pacing the load, not waiting
    {
      std::lock_guard<std::mutex> l(mu);
      ++outstanding;
    }
    s->SubmitAsync(s->Spec(k % s->size(), k, c.latency_targets),
                   [&, due](const grpc::Status& st, const v1::SubmitDecisionResponse& r) {
                     if (st.ok()) s->tracker().Expect(r.decision_id(), c.latency_targets, due);
                     std::lock_guard<std::mutex> l(mu);
                     if (st.ok()) {
                       ids.push_back(r.decision_id());
                     } else if (first_error.ok()) {
                       first_error = absl::UnavailableError(st.error_message());
                     }
                     --outstanding;
                     cv.notify_all();
                   });
  }
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return outstanding == 0; });
  }
  if (!first_error.ok()) return first_error;
  const bool all = s->tracker().WaitResults(tasks, c.scenario_timeout);
  WB_RETURN_IF_ERROR(m.Stop());
  if (!all) {
    return absl::DeadlineExceededError(absl::StrCat("latency: ", s->tracker().results(), " of ",
                                                    tasks, " results stored within the timeout"));
  }
  auto lat = s->tracker().Latencies();
  json j{{"agents", s->size()},
         {"rate_decisions_per_s", Round(rate, 2)},
         {"targets", c.latency_targets},
         {"decisions", count},
         {"tasks", tasks},
         {"p50_ms", Round(PercentileMs(lat, 50))},
         {"p90_ms", Round(PercentileMs(lat, 90))},
         {"p99_ms", Round(PercentileMs(lat, 99))},
         {"max_ms", Round(PercentileMs(lat, 100))},
         {"controlplane_cpu_us_per_task", Round(m.cp_cpu() * 1e6 / static_cast<double>(tasks), 1)},
         {"agents_cpu_us_per_task", Round(m.me_cpu() * 1e6 / static_cast<double>(tasks), 1)}};
  j["agent_counters"] = AgentCounters(s->TotalCounters());
  j["check"] = CheckVerified(*s, ids);
  return j;
}

// -------------------------------------------------------------------- idle

absl::StatusOr<json> RunIdle(const BenchConfig& c) {
  const int agents = c.idle_agents > 0 ? c.idle_agents : c.agents;
  WB_ASSIGN_OR_RETURN(auto s, StartSwarm(c, agents, /*connect=*/false));
  const absl::Duration window = absl::Seconds(c.idle_seconds);
  // Baseline: enrolled, nobody connected.
  Meter base(s->controlplane_pid());
  WB_RETURN_IF_ERROR(base.Start());
  std::this_thread::sleep_for(absl::ToChronoNanoseconds(window));  // the measuring window
  WB_RETURN_IF_ERROR(base.Stop());
  WB_RETURN_IF_ERROR(s->ConnectAll(c.connect_timeout));
  // Settle: the connect storm is over, every agent has sent a heartbeat.
  std::this_thread::sleep_for(std::chrono::seconds(c.heartbeat_seconds + 1));
  Meter idle(s->controlplane_pid());
  WB_RETURN_IF_ERROR(idle.Start());
  std::this_thread::sleep_for(absl::ToChronoNanoseconds(window));  // the measuring window
  WB_RETURN_IF_ERROR(idle.Stop());
  const double n = static_cast<double>(s->size());
  const double rss_delta = static_cast<double>(idle.cp_end().rss_bytes - base.cp_end().rss_bytes);
  const double cp_rate = idle.cp_cpu() / idle.seconds();  // cores
  const double cp_base = base.cp_cpu() / base.seconds();
  const double me_rate = idle.me_cpu() / idle.seconds();
  const double me_base = base.me_cpu() / base.seconds();
  const double me_rss_delta =
      static_cast<double>(idle.me_end().rss_bytes - base.me_start().rss_bytes);
  json j{{"agents", s->size()},
         {"connected", s->connected()},
         {"heartbeat_seconds", c.heartbeat_seconds},
         {"seconds", c.idle_seconds},
         {"controlplane_rss_before_mib",
          Round(static_cast<double>(base.cp_end().rss_bytes) / 1048576.0, 1)},
         {"controlplane_rss_after_mib",
          Round(static_cast<double>(idle.cp_end().rss_bytes) / 1048576.0, 1)},
         {"controlplane_rss_kib_per_agent", Round(rss_delta / 1024.0 / n, 1)},
         {"controlplane_cpu_us_per_agent_per_s", Round((cp_rate - cp_base) * 1e6 / n, 2)},
         {"controlplane_core_pct_idle", Round(cp_rate * 100, 2)},
         {"controlplane_core_pct_baseline", Round(cp_base * 100, 2)},
         {"controlplane_core_pct_at_10000_agents", Round((cp_rate - cp_base) / n * 10000 * 100, 1)},
         {"controlplane_rss_mib_at_10000_agents", Round(rss_delta / n * 10000 / 1048576.0, 1)},
         {"sim_agents_rss_kib_per_agent", Round(me_rss_delta / 1024.0 / n, 1)},
         {"sim_agents_cpu_us_per_agent_per_s", Round((me_rate - me_base) * 1e6 / n, 2)}};
  j["agent_counters"] = AgentCounters(s->TotalCounters());
  return j;
}

// --------------------------------------------------------------- reconnect

absl::StatusOr<json> RunReconnect(const BenchConfig& c) {
  const int agents = c.reconnect_agents > 0 ? c.reconnect_agents : c.agents;
  WB_ASSIGN_OR_RETURN(auto s, StartSwarm(c, agents, /*connect=*/true));
  std::vector<uint64_t> before;
  for (int i = 0; i < s->size(); ++i) before.push_back(s->agent(i).counters().welcomes);
  WB_ASSIGN_OR_RETURN(Swarm::Restart r, s->RestartControlPlane(c.restart_signal, ""));
  // Every agent welcomed again by the new process, and connected.
  auto all_back = [&] {
    for (int i = 0; i < s->size(); ++i) {
      if (s->agent(i).counters().welcomes <= before[static_cast<size_t>(i)] ||
          !s->agent(i).connected()) {
        return false;
      }
    }
    return true;
  };
  const bool ok = testing::WaitFor(
      all_back, std::chrono::milliseconds(absl::ToInt64Milliseconds(c.scenario_timeout)),
      std::chrono::milliseconds(20));
  const absl::Time back = s->tracker().last_welcome();
  if (!ok) {
    return absl::DeadlineExceededError(absl::StrCat("reconnect: only ", s->connected(), " of ",
                                                    s->size(), " agents back within the timeout"));
  }
  return json{{"agents", s->size()},
              {"signal", c.restart_signal == SIGKILL ? "SIGKILL" : "SIGTERM"},
              {"stop_ms", Round(Ms(r.stop))},
              {"serving_ms", Round(Ms(r.serving))},
              {"all_reconnected_s", Round(absl::ToDoubleSeconds(back - r.spawned), 3)},
              {"all_reconnected_since_signal_s",
               Round(absl::ToDoubleSeconds(back - r.spawned + r.stop), 3)}};
}

// ----------------------------------------------------------------- restart

absl::StatusOr<json> RunRestart(const BenchConfig& c) {
  // One agent that offers its instance once and disconnects: every task
  // stays stored and queued in its outbox.
  WB_ASSIGN_OR_RETURN(auto s, StartSwarm(c, 1, /*connect=*/true));
  s->agent(0).Stop();
  const int per = std::max(1, std::min(c.stored_targets, c.stored_tasks));
  const int decisions = std::max(1, c.stored_tasks / per);
  const absl::Time t0 = absl::Now();
  Swarm* sw = s.get();
  WB_ASSIGN_OR_RETURN(auto ids, SubmitAll(
                                    *s, decisions, [&](int k) { return sw->Spec(0, k, per); }, per,
                                    4, c.scenario_timeout));
  const absl::Duration fill = absl::Now() - t0;
  const int64_t bytes = DirBytes(s->data_dir());
  WB_ASSIGN_OR_RETURN(Swarm::Restart r, s->RestartControlPlane(c.restart_signal, ids.front()));
  auto rss = ReadProc(s->controlplane_pid());
  return json{{"stored_tasks", decisions * per},
              {"decisions", decisions},
              {"targets_per_decision", per},
              {"fill_s", Round(absl::ToDoubleSeconds(fill), 2)},
              {"data_dir_mib", Round(static_cast<double>(bytes) / 1048576.0, 1)},
              {"signal", c.restart_signal == SIGKILL ? "SIGKILL" : "SIGTERM"},
              {"stop_ms", Round(Ms(r.stop))},
              {"port_file_ms", Round(Ms(r.start))},
              {"serving_ms", Round(Ms(r.serving))},
              {"controlplane_rss_mib_after",
               rss.ok() ? Round(static_cast<double>(rss->rss_bytes) / 1048576.0, 1) : 0.0}};
}

// ------------------------------------------------------------------ fanout

absl::StatusOr<json> RunFanout(const BenchConfig& c) {
  WB_ASSIGN_OR_RETURN(auto s, StartSwarm(c, 1, /*connect=*/true));
  json sizes = json::array();
  int k = 0;
  for (int size : c.fanout_sizes) {
    json row{{"targets", size}};
    const SimAgent::Counters c0 = s->TotalCounters();
    const int64_t bytes0 = DirBytes(s->data_dir());
    const uint64_t results0 = s->tracker().results();
    Meter m(s->controlplane_pid());
    WB_RETURN_IF_ERROR(m.Start());
    // Small decisions are repeated (one after the other, each finished
    // before the next) until about min_tasks tasks, for a CPU figure above
    // the clock-tick resolution of /proc.
    const int repeats = std::max(1, c.fanout_min_tasks / size);
    bool all = true;
    for (int rep = 0; rep < repeats && all; ++rep) {
      const uint64_t before = s->tracker().results();
      auto r = s->Submit(s->Spec(0, k++, size));
      if (!r.ok()) {
        row["error"] = std::string(r.status().message());
        break;
      }
      s->tracker().Expect(r->decision_id(), size, absl::Now());
      all = s->tracker().WaitResults(before + static_cast<uint64_t>(size), c.scenario_timeout);
    }
    WB_RETURN_IF_ERROR(m.Stop());
    if (row.contains("error") && s->tracker().results() == results0) {
      sizes.push_back(row);
      continue;
    }
    row["decisions"] = repeats;
    const uint64_t done = s->tracker().results() - results0;
    const SimAgent::Counters c1 = s->TotalCounters();
    const double n = static_cast<double>(std::max<uint64_t>(done, 1));
    row["tasks_done"] = done;
    if (!all) row["error"] = "timeout: not every task finished";
    row["seconds"] = Round(m.seconds(), 3);
    row["tasks_per_s"] = Round(static_cast<double>(done) / m.seconds(), 1);
    row["controlplane_cpu_us_per_task"] = Round(m.cp_cpu() * 1e6 / n, 1);
    row["agents_cpu_us_per_task"] = Round(m.me_cpu() * 1e6 / n, 1);
    row["wire_bytes_per_task"] =
        Round(static_cast<double>(c1.task_bytes - c0.task_bytes) /
                  static_cast<double>(std::max<uint64_t>(c1.tasks_received - c0.tasks_received, 1)),
              0);
    row["store_bytes_per_task"] =
        Round(static_cast<double>(DirBytes(s->data_dir()) - bytes0) / n, 0);
    sizes.push_back(row);
  }
  json j{{"sizes", sizes}};
  // The largest finished size against the smallest (goal: within 1.5x).
  const json* small = nullptr;
  const json* large = nullptr;
  for (const auto& row : sizes) {
    if (row.contains("error")) continue;
    if (small == nullptr) small = &row;
    large = &row;
  }
  if (small != nullptr && large != nullptr && small != large) {
    j["cpu_ratio_largest_to_smallest"] =
        Round(large->at("controlplane_cpu_us_per_task").get<double>() /
                  std::max(small->at("controlplane_cpu_us_per_task").get<double>(), 0.1),
              2);
    j["bytes_ratio_largest_to_smallest"] =
        Round(large->at("wire_bytes_per_task").get<double>() /
                  std::max(small->at("wire_bytes_per_task").get<double>(), 1.0),
              2);
    j["largest_targets"] = large->at("targets");
  }
  return j;
}

absl::StatusOr<json> RunRealAgents(const BenchConfig& c) {
  // Real writeback-agent processes (the fault suite's deployment), each
  // serving an ssh_authorized_keys instance on sandbox files: one exposed
  // key is removed from every target account's authorized_keys.
  testing::TempDir sandbox;
  RegisterDir(sandbox.path());
  const e2e::SshTestKey exposed = e2e::MakeSshKey("exposed@ci");
  const e2e::SshTestKey kept = e2e::MakeSshKey("ops@bastion");
  const int n = std::max(1, c.real_agents);
  auto home = [&](int agent) { return absl::StrCat(sandbox.path(), "/a", agent); };
  for (int k = 0; k < c.real_decisions; ++k) {
    for (int t = 0; t < c.real_targets; ++t) {
      const std::string dir = absl::StrCat(home(k % n), "/home/u", k, "-", t, "/.ssh");
      WB_RETURN_IF_ERROR(fs::MakeDirs(dir, 0700));
      WB_RETURN_IF_ERROR(fs::WriteFileAtomic(dir + "/authorized_keys",
                                             absl::StrCat(exposed.line, "\n", kept.line, "\n"),
                                             {.mode = 0600}));
    }
  }
  fault::Deployment::Options o;
  o.agents = n;
  const int heartbeat = c.heartbeat_seconds;
  const std::string level = c.controlplane_log_level;
  o.tweak_controlplane = [heartbeat, level](v1::ControlPlaneConfig& cp) {
    cp.set_heartbeat_interval_seconds(static_cast<uint32_t>(heartbeat));
    cp.set_log_level(level);
    cp.set_log_format("json");
  };
  o.tweak_agent = [&](int i, v1::AgentConfig& a) {
    a.clear_connectors();
    a.set_log_format("json");
    auto* inst = a.add_connectors();
    inst->set_name(absl::StrCat("ssh-a", i));
    inst->set_type("ssh_authorized_keys");
    inst->add_allowed_operations("remove_key");
    inst->mutable_ssh_authorized_keys()->set_path_template(
        absl::StrCat(home(i), "/home/{user}/.ssh/authorized_keys"));
  };
  fault::Binaries bin = c.binaries;
  bin.counter = "/bin/false";  // the exec counter is not used here
  WB_ASSIGN_OR_RETURN(auto d, fault::Deployment::Start(bin, o));
  RegisterDir(d->dir());
  RegisterChild(d->controlplane_pid());
  for (int i = 0; i < n; ++i) RegisterChild(d->agent_pid(i));
  auto agents_proc = [&]() {
    ProcSample sum;
    int64_t max_rss = 0;
    for (int i = 0; i < n; ++i) {
      auto p = ReadProc(d->agent_pid(i));
      if (!p.ok()) continue;
      sum.cpu_seconds += p->cpu_seconds;
      sum.rss_bytes += p->rss_bytes;
      max_rss = std::max(max_rss, p->rss_bytes);
    }
    return std::make_pair(sum, max_rss);
  };
  auto cleanup = [&] {
    UnregisterChild(d->controlplane_pid());
    for (int i = 0; i < n; ++i) UnregisterChild(d->agent_pid(i));
    UnregisterDir(d->dir());
    UnregisterDir(sandbox.path());
  };
  // Idle first: the agents connected, nothing to do (P4: CPU and RSS of an
  // idle agent).
  const auto [idle0, rss0] = agents_proc();
  const absl::Time idle_t0 = absl::Now();
  std::this_thread::sleep_for(std::chrono::seconds(c.idle_seconds));  // the measuring window
  const auto [idle_agents, idle_max_rss] = agents_proc();
  const double idle_pct = (idle_agents.cpu_seconds - idle0.cpu_seconds) /
                          absl::ToDoubleSeconds(absl::Now() - idle_t0) / n * 100;
  (void)rss0;
  Meter m(d->controlplane_pid());
  WB_RETURN_IF_ERROR(m.Start());
  const absl::Time t0 = absl::Now();
  std::vector<std::string> ids;
  for (int k = 0; k < c.real_decisions; ++k) {
    v1::DecisionSpec spec;
    spec.set_connector_instance(absl::StrCat("ssh-a", k % n));
    spec.set_operation("remove_key");
    spec.mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(exposed.fingerprint);
    for (int t = 0; t < c.real_targets; ++t) {
      spec.add_targets()->set_object(absl::StrCat("u", k, "-", t));
    }
    spec.set_reason("writeback-bench: exposed key");
    spec.set_reference("BENCH-1");
    auto r = d->Submit(spec, absl::StrCat("bench-", k));
    if (!r.ok()) {
      cleanup();
      return r.status();
    }
    ids.push_back(r->decision_id());
  }
  // Polled: these agents are other processes.
  size_t verified = 0;
  std::set<std::string> open(ids.begin(), ids.end());
  int failed = 0;
  const bool done = testing::WaitFor(
      [&] {
        for (auto it = open.begin(); it != open.end();) {
          auto v = d->Get(*it);
          if (v.ok() && v->state() == v1::DECISION_STATE_VERIFIED) {
            ++verified;
            it = open.erase(it);
          } else if (v.ok() && v->state() != v1::DECISION_STATE_DISPATCHED &&
                     v->state() != v1::DECISION_STATE_APPROVED) {
            ++failed;
            it = open.erase(it);
          } else {
            break;  // in order: the first open one is not finished yet
          }
        }
        return open.empty();
      },
      std::chrono::milliseconds(absl::ToInt64Milliseconds(c.scenario_timeout)),
      std::chrono::milliseconds(20));
  const absl::Duration took = absl::Now() - t0;
  WB_RETURN_IF_ERROR(m.Stop());
  const auto [busy_agents, busy_max_rss] = agents_proc();
  // The exposed key is gone from every target file, the other key is kept.
  int files_ok = 0;
  for (int k = 0; k < c.real_decisions; ++k) {
    for (int t = 0; t < c.real_targets; ++t) {
      auto f =
          fs::ReadFile(absl::StrCat(home(k % n), "/home/u", k, "-", t, "/.ssh/authorized_keys"));
      if (f.ok() && f->find(exposed.line) == std::string::npos &&
          f->find(kept.line) != std::string::npos) {
        ++files_ok;
      }
    }
  }
  cleanup();
  if (!done || failed > 0) {
    return absl::DeadlineExceededError(absl::StrCat("real agents: ", verified, " of ", ids.size(),
                                                    " decisions VERIFIED, ", failed, " failed"));
  }
  const double tasks = static_cast<double>(c.real_decisions) * c.real_targets;
  return json{{"agents", n},
              {"decisions", c.real_decisions},
              {"targets", c.real_targets},
              {"tasks", tasks},
              {"seconds", Round(absl::ToDoubleSeconds(took), 3)},
              {"tasks_per_s", Round(tasks / absl::ToDoubleSeconds(took), 1)},
              {"controlplane_cpu_us_per_task", Round(m.cp_cpu() * 1e6 / tasks, 1)},
              {"agents_cpu_us_per_task",
               Round((busy_agents.cpu_seconds - idle_agents.cpu_seconds) * 1e6 / tasks, 1)},
              {"agent_rss_mib_idle_max", Round(static_cast<double>(idle_max_rss) / 1048576.0, 1)},
              {"agent_idle_cpu_pct", Round(idle_pct, 3)},
              {"idle_seconds", c.idle_seconds},
              {"agent_rss_mib_max", Round(static_cast<double>(busy_max_rss) / 1048576.0, 1)},
              {"files_checked_ok", files_ok},
              {"decisions_verified", verified}};
}

}  // namespace wb::bench
