// writeback-controlplane --config FILE
//
// Loads the YAML config (writeback.v1.ControlPlaneConfig), validates all of
// it, listens, writes the bound port to port_file (if set), and runs until
// SIGTERM or SIGINT, then shuts down gracefully and exits 0.
// Exit codes: 0 clean stop, 1 start-up failure, 2 bad usage or bad config.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/config/config.h"
#include "common/fs/fs.h"
#include "common/logging/logging.h"
#include "controlplane/server.h"
#include "writeback/v1/config.pb.h"

namespace {

constexpr char kProgram[] = "writeback-controlplane";

int Fail(int code, absl::string_view msg) {
  std::fprintf(stderr, "%s: %.*s\n", kProgram, static_cast<int>(msg.size()), msg.data());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef NDEBUG
  // Abseil's lock-order (deadlock) detection costs about 2.4 % of the control
  // plane's CPU under load (docs/performance.md); the test builds (Check,
  // no NDEBUG) keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  // Signals are taken synchronously by sigwait below; block them before any
  // thread exists so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::string config_path;
  CLI::App app(
      "Writeback control plane: holds decisions, signs and dispatches tasks to agents, "
      "records their results.",
      kProgram);
  app.add_option("--config", config_path, "YAML config file (writeback.v1.ControlPlaneConfig)")
      ->required();
  CLI11_PARSE(app, argc, argv);

  writeback::v1::ControlPlaneConfig cfg;
  if (absl::Status s = wb::config::LoadYamlFile(config_path, &cfg); !s.ok()) {
    return Fail(2, s.message());
  }
  if (absl::Status s = wb::log::Init(kProgram, cfg.log_level(), cfg.log_format()); !s.ok()) {
    return Fail(2, s.message());
  }
  auto cp = wb::controlplane::ControlPlane::Create(cfg);
  if (!cp.ok()) {
    wb::log::Error("invalid configuration",
                   {{"config", config_path}, {"error", cp.status().message()}});
    return Fail(cp.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1,
                absl::StrCat(config_path, ": ", cp.status().message()));
  }
  if (absl::Status s = (*cp)->Start(); !s.ok()) {
    wb::log::Error("start failed", {{"error", s.message()}});
    return Fail(1, s.message());
  }
  if (!cfg.port_file().empty()) {
    wb::fs::WriteOptions wo;
    wo.mode = 0644;
    if (absl::Status s =
            wb::fs::WriteFileAtomic(cfg.port_file(), absl::StrCat((*cp)->port(), "\n"), wo);
        !s.ok()) {
      (*cp)->Shutdown();
      return Fail(1, absl::StrCat("port_file: ", s.message()));
    }
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  wb::log::Info("stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  (*cp)->Shutdown();
  return 0;
}
