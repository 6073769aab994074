// writeback-agent: the edge agent.
//   writeback-agent run --config FILE           run until SIGTERM/SIGINT
//   writeback-agent check-config --config FILE  validate the config and exit
// Exit codes: 0 ok, 1 bad configuration or start-up failure, 2 usage.
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "agent/agent.h"
#include "common/config/config.h"
#include "common/logging/logging.h"
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
  int sig = 0;
  sigwait(&stop, &sig);
  wb::log::Info("stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  (*agent)->Stop();
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help or the error
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (check->parsed()) return CheckConfig(config);
  return Run(config);
}
