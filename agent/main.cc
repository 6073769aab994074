// writeback-agent: the edge agent.
//   writeback-agent run --config FILE           run until SIGTERM/SIGINT
//   writeback-agent check-config --config FILE  validate the config and exit
//   writeback-agent enroll --config FILE --token-file F   get this agent's
//       certificate with a join token (keys are made here, never sent)
//   writeback-agent status --config FILE [--metrics]  READY / NOT READY (the
//       certificate; a refusal by the control plane, in its own words), the
//       stream and the result counters the running agent wrote to
//       <data_dir>/status.json; --metrics: the same as Prometheus text
//   writeback-agent bundle apply FILE --out RESULTS [--config FILE]
//       apply an air-gapped task bundle with the agent's own journal and
//       write the signed result bundle (agent/bundle/bundle_apply.h)
// Exit codes: 0 ok, 1 bad configuration or start-up failure, 2 usage.
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/agent.h"
#include "agent/bundle/bundle_apply.h"
#include "agent/identity/identity.h"
#include "agent/relay/relay.h"
#include "common/config/config.h"
#include "common/fs/fs.h"
#include "common/logging/logging.h"
#include "common/text/display.h"
#include "connectors/registry.h"
#include "writeback/v1/config.pb.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitConfig = 1;
constexpr int kExitUsage = 2;

void PrintError(const absl::Status& s) {
  std::fprintf(stderr, "writeback-agent: %s\n", std::string(s.message()).c_str());
}

int CheckConfig(const std::string& path) {
  writeback::v1::AgentConfig cfg;
  if (absl::Status s = wb::config::LoadYamlFile(path, &cfg); !s.ok()) {
    PrintError(s);
    return kExitConfig;
  }
  wb::connectors::Registry registry;
  wb::connectors::RegisterBuiltinConnectors(registry);
  if (absl::Status s = wb::agent::Agent::CheckConfig(cfg, registry); !s.ok()) {
    std::fprintf(stderr, "writeback-agent: %s: %s\n", path.c_str(),
                 std::string(s.message()).c_str());
    return kExitConfig;
  }
  std::printf("%s: ok\n", path.c_str());
  return kExitOk;
}

int Run(const std::string& path) {
  // Block the stop signals before any thread starts; the main thread waits
  // for them with sigwait (no asynchronous handler).
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  writeback::v1::AgentConfig cfg;
  if (absl::Status s = wb::config::LoadYamlFile(path, &cfg); !s.ok()) {
    PrintError(s);
    return kExitConfig;
  }
  if (absl::Status s = wb::log::Init("writeback-agent", cfg.log_level(), cfg.log_format());
      !s.ok()) {
    std::fprintf(stderr, "writeback-agent: %s: %s\n", path.c_str(),
                 std::string(s.message()).c_str());
    return kExitConfig;
  }
  wb::connectors::Registry registry;
  wb::connectors::RegisterBuiltinConnectors(registry);
  auto agent = wb::agent::Agent::Create(cfg, registry);
  if (!agent.ok()) {
    std::fprintf(stderr, "writeback-agent: %s: %s\n", path.c_str(),
                 std::string(agent.status().message()).c_str());
    return kExitConfig;
  }
  if (absl::Status s = (*agent)->Start(); !s.ok()) {
    wb::log::Error("start failed", {{"error", s.ToString()}});
    PrintError(s);
    return kExitConfig;
  }
  // A relay (docs/networks.md) forwards deeper agents' streams upstream.
  std::unique_ptr<wb::agent::Relay> relay;
  if (cfg.has_relay()) {
    auto opts = wb::agent::RelayOptionsFromConfig(cfg);
    auto started = opts.ok() ? wb::agent::Relay::Start(*std::move(opts))
                             : absl::StatusOr<std::unique_ptr<wb::agent::Relay>>(opts.status());
    if (!started.ok()) {
      wb::log::Error("relay start failed", {{"error", started.status().ToString()}});
      PrintError(started.status());
      (*agent)->Stop();
      return kExitConfig;
    }
    relay = *std::move(started);
  }
  int sig = 0;
  sigwait(&stop, &sig);
  wb::log::Info("stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  if (relay) relay->Stop();
  (*agent)->Stop();
  return kExitOk;
}

int Enroll(const std::string& path, const std::string& token_file, bool force) {
  writeback::v1::AgentConfig cfg;
  if (absl::Status s = wb::config::LoadYamlFile(path, &cfg); !s.ok()) {
    PrintError(s);
    return kExitConfig;
  }
  auto token = wb::fs::ReadFile(token_file, 4096);
  if (!token.ok()) {
    PrintError(token.status());
    return kExitConfig;
  }
  std::string t = *token;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (absl::Status s = wb::agent::Enroll(cfg, t, force); !s.ok()) {
    PrintError(s);
    return kExitConfig;
  }
  std::printf("enrolled as %s; certificate written to %s\n", cfg.agent_id().c_str(),
              cfg.tls().cert_file().c_str());
  return kExitOk;
}

std::string TimeText(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

// Text from the control plane or the status file, made safe to print.
std::string Shown(absl::string_view s) { return wb::text::EscapeForDisplay(s); }

// The running agent's status file as Prometheus text (for a node_exporter
// textfile collector: nothing listens on an agent host).
std::string MetricsText(const writeback::agent::v1::AgentStatusFile& st) {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help,
                    std::vector<std::pair<std::string, uint64_t>> samples) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
    for (const auto& [labels, v] : samples) absl::StrAppend(&out, name, labels, " ", v, "\n");
  };
  metric("writeback_agent_connected", "gauge",
         "1 while the agent's stream to the control plane is established",
         {{"", st.connected() ? 1 : 0}});
  metric("writeback_agent_refused", "gauge",
         "1 if the control plane refused the agent's last stream (a ban, a changed key, an "
         "instance served by another agent)",
         {{"", !st.connected() && st.refused() ? 1 : 0}});
  metric("writeback_agent_outbox_results", "gauge",
         "results waiting in the agent's outbox for the control plane's acknowledgement",
         {{"", st.outbox_results()}});
  metric("writeback_agent_results_refused_total", "counter",
         "results the control plane refused since the agent started",
         {{"", st.results_refused_total()}});
  metric("writeback_agent_results_dropped_total", "counter",
         "results no longer kept for sending again, since the agent started: unknown_task (the "
         "control plane does not know the task, e.g. an id injected on the way), outbox_bound "
         "(refusals of unauthenticated tasks beyond the outbox bound, sent once)",
         {{"{reason=\"unknown_task\"}", st.results_dropped_unknown_task_total()},
          {"{reason=\"outbox_bound\"}", st.results_not_kept_total()}});
  metric("writeback_agent_status_updated_seconds", "gauge",
         "when the running agent last wrote its status (Unix time)",
         {{"", static_cast<uint64_t>(st.updated_at_unix_ms() / 1000)}});
  return out;
}

int Status(const std::string& path, bool metrics) {
  writeback::v1::AgentConfig cfg;
  if (absl::Status s = wb::config::LoadYamlFile(path, &cfg); !s.ok()) {
    PrintError(s);
    return kExitConfig;
  }
  // What the running agent wrote last (absent before its first start).
  auto st = wb::agent::Agent::ReadStatusFile(cfg);
  if (metrics) {
    if (!st.ok()) {
      PrintError(st.status());
      return kExitConfig;
    }
    std::printf("%s", MetricsText(*st).c_str());
    return kExitOk;
  }
  auto w = wb::agent::ReadCertWindow(cfg);
  const absl::Time now = absl::Now();
  int code = kExitOk;
  if (!w.ok()) {
    std::printf("NOT READY: no usable certificate (%s); enrol with a join token\n",
                Shown(w.status().message()).c_str());
    code = kExitConfig;
  } else if (now >= w->not_after) {
    std::printf(
        "NOT READY: certificate expired at %s; the running agent re-joins by itself "
        "unless it was banned\n",
        absl::FormatTime(w->not_after).c_str());
    code = kExitConfig;
  } else if (st.ok() && !st->connected() && st->refused()) {
    // The control plane's own words: a ban, a changed key, an instance
    // served by another agent.
    std::printf("NOT READY: the control plane refused this agent's stream at %s: %s: %s\n",
                TimeText(st->stream_ended_at_unix_ms()).c_str(),
                Shown(st->stream_end_code()).c_str(), Shown(st->stream_end_message()).c_str());
    code = kExitConfig;
  } else if (st.ok() && st->refused_instances_size() > 0) {
    // Connected, but an operator has not bound some configured instances
    // to this agent (or bound them to another): nothing comes for those.
    std::printf(
        "NOT READY: the control plane does not route %d configured instance(s) to this agent "
        "(an operator binds them: wbctl instance bind)\n",
        st->refused_instances_size());
    for (const auto& r : st->refused_instances()) {
      std::printf("  refused by the control plane: %s\n", Shown(r).c_str());
    }
    code = kExitConfig;
  } else {
    std::printf("READY: certificate valid until %s (%s left)\n",
                absl::FormatTime(w->not_after).c_str(),
                absl::FormatDuration(absl::Trunc(w->not_after - now, absl::Seconds(1))).c_str());
  }
  if (!st.ok()) {
    std::printf("control plane: unknown (%s; the agent writes it once it runs)\n",
                Shown(st.status().message()).c_str());
    return code;
  }
  if (st->connected()) {
    std::printf("control plane: connected since %s\n",
                TimeText(st->connected_since_unix_ms()).c_str());
  } else if (st->refused()) {
    std::printf("control plane: not connected (refused, above); the agent keeps trying\n");
  } else if (st->stream_ended_at_unix_ms() != 0) {
    std::printf("control plane: not connected; the last stream ended at %s: %s: %s\n",
                TimeText(st->stream_ended_at_unix_ms()).c_str(),
                Shown(st->stream_end_code()).c_str(), Shown(st->stream_end_message()).c_str());
  } else {
    std::printf("control plane: not connected yet\n");
  }
  std::printf(
      "results: %llu waiting in the outbox; since the agent started: %llu refused by the control "
      "plane, %llu dropped (the control plane does not know the task), %llu not kept (outbox "
      "bound)\n",
      static_cast<unsigned long long>(st->outbox_results()),
      static_cast<unsigned long long>(st->results_refused_total()),
      static_cast<unsigned long long>(st->results_dropped_unknown_task_total()),
      static_cast<unsigned long long>(st->results_not_kept_total()));
  std::printf("(as written by agent pid %lld at %s, %llds ago)\n",
              static_cast<long long>(st->pid()), TimeText(st->updated_at_unix_ms()).c_str(),
              static_cast<long long>(
                  absl::ToInt64Seconds(now - absl::FromUnixMillis(st->updated_at_unix_ms()))));
  return code;
}

int BundleApply(const std::string& path, const std::string& file, const std::string& out,
                const std::string& wait) {
  writeback::v1::AgentConfig cfg;
  if (absl::Status s = wb::config::LoadYamlFile(path, &cfg); !s.ok()) {
    PrintError(s);
    return kExitConfig;
  }
  // Progress goes to stderr; the summary to stdout.
  if (absl::Status s = wb::log::Init("writeback-agent",
                                     cfg.log_level().empty() ? "warn" : cfg.log_level(), "text");
      !s.ok()) {
    PrintError(s);
    return kExitConfig;
  }
  wb::agent::BundleApplyOptions o;
  o.bundle_path = file;
  o.out_path = out;
  if (!wait.empty() && !absl::ParseDuration(wait, &o.wait)) {
    std::fprintf(stderr, "writeback-agent: --wait: '%s' is not a duration (e.g. 30m)\n",
                 wait.c_str());
    return kExitUsage;
  }
  wb::connectors::Registry registry;
  wb::connectors::RegisterBuiltinConnectors(registry);
  auto r = wb::agent::ApplyBundle(cfg, registry, o);
  if (!r.ok()) {
    PrintError(r.status());
    return kExitConfig;
  }
  std::printf("bundle %s (expires %s%s): %zu task(s); result bundle written to %s\n",
              r->bundle_id.c_str(), TimeText(r->expires_at_unix_ms).c_str(),
              r->expired ? ", EXPIRED: stored results only" : "", r->tasks.size(), out.c_str());
  for (const auto& t : r->tasks) {
    std::string outcome = writeback::v1::Outcome_Name(t.result.outcome());
    if (absl::StartsWith(outcome, "OUTCOME_")) outcome = outcome.substr(8);
    if (t.result.reject_reason() != writeback::v1::REJECT_REASON_UNSPECIFIED) {
      std::string reason = writeback::v1::RejectReason_Name(t.result.reject_reason());
      if (absl::StartsWith(reason, "REJECT_REASON_")) reason = reason.substr(14);
      outcome = absl::StrCat(outcome, " (", reason, ")");
    }
    std::string detail = t.result.message();
    if (detail.empty()) detail = t.result.verification().detail();
    std::printf("  %s  %s/%s %s  %s%s%s\n", t.task_id.c_str(), t.connector_instance.c_str(),
                t.operation.c_str(), t.target.c_str(), outcome.c_str(), detail.empty() ? "" : ": ",
                detail.c_str());
    if (t.from_journal) std::printf("      (stored result of an earlier run)\n");
  }
  std::printf("take %s back to the control plane: wbctl bundle import %s\n", out.c_str(),
              out.c_str());
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"writeback-agent: applies access decisions to local targets and proves the effect"};
  app.require_subcommand(1);
  std::string config;
  CLI::App* run = app.add_subcommand("run", "Connect to the control plane and run tasks");
  run->add_option("--config", config, "Agent configuration (YAML)")->required();
  CLI::App* check = app.add_subcommand("check-config", "Validate the configuration and exit");
  check->add_option("--config", config, "Agent configuration (YAML)")->required();
  std::string token_file;
  bool force = false;
  CLI::App* enroll = app.add_subcommand("enroll", "Get this agent's certificate with a join token");
  enroll->add_option("--config", config, "Agent configuration (YAML)")->required();
  enroll
      ->add_option("--token-file", token_file,
                   "File holding the join token (wbctl agent token create)")
      ->required();
  enroll->add_flag("--force", force, "Replace an existing certificate");
  CLI::App* status = app.add_subcommand(
      "status",
      "READY or NOT READY (the certificate, the control plane's answer), the stream and results");
  status->add_option("--config", config, "Agent configuration (YAML)")->required();
  bool metrics = false;
  status->add_flag("--metrics", metrics,
                   "Print the running agent's counters as Prometheus text instead");
  CLI::App* bundle = app.add_subcommand("bundle", "Air-gapped bundles (docs/networks.md)");
  bundle->require_subcommand(1);
  CLI::App* apply = bundle->add_subcommand(
      "apply", "Apply a task bundle with this agent's journal and write the signed results");
  std::string bundle_file, out_file, wait;
  std::string bundle_config = "/etc/writeback/agent.yaml";
  apply->add_option("FILE", bundle_file, "Task bundle (wbctl bundle export)")->required();
  apply->add_option("--out", out_file, "Where to write the result bundle")->required();
  apply->add_option("--config", bundle_config, "Agent configuration (YAML)")->capture_default_str();
  apply->add_option("--wait", wait, "How long to wait for the tasks (default 30m)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help or the error
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (check->parsed()) return CheckConfig(config);
  if (enroll->parsed()) return Enroll(config, token_file, force);
  if (status->parsed()) return Status(config, metrics);
  if (apply->parsed()) return BundleApply(bundle_config, bundle_file, out_file, wait);
  return Run(config);
}
