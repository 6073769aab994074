// wb_tamper_relay --config AGENT.yaml: a TEST BUILD of a relay that flips
// one bit of every task it forwards (Relay::Options::tamper_for_test), to
// show that the end agent refuses what a relay alters (tests/netns). It runs
// only the relay, not the agent's own link. Never shipped: built with the
// tests only.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <string>

#include "agent/relay/relay.h"
#include "common/config/config.h"
#include "common/logging/logging.h"

int main(int argc, char** argv) {
  if (argc != 3 || std::string(argv[1]) != "--config") {
    std::fprintf(stderr, "usage: wb_tamper_relay --config AGENT.yaml\n");
    return 2;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  writeback::v1::AgentConfig cfg;
  if (absl::Status s = wb::config::LoadYamlFile(argv[2], &cfg); !s.ok()) {
    std::fprintf(stderr, "wb_tamper_relay: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  (void)wb::log::Init("wb-tamper-relay", "info", "text");
  auto opts = wb::agent::RelayOptionsFromConfig(cfg);
  if (!opts.ok()) {
    std::fprintf(stderr, "wb_tamper_relay: %s\n", std::string(opts.status().message()).c_str());
    return 1;
  }
  opts->tamper_for_test = [](writeback::v1::ControlMessage& m) {
    if (!m.has_task() || m.task().payload().empty()) return;
    std::string* p = m.mutable_task()->mutable_payload();
    (*p)[p->size() - 1] ^= 0x01;
    wb::log::Warn("TAMPER: flipped a bit of a forwarded task", {});
  };
  auto relay = wb::agent::Relay::Start(*std::move(opts));
  if (!relay.ok()) {
    std::fprintf(stderr, "wb_tamper_relay: %s\n", std::string(relay.status().message()).c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&stop, &sig);
  (*relay)->Stop();
  return 0;
}
