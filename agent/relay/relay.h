// A relay agent (docs/networks.md): the only Writeback component besides the
// control plane that listens, and only on the inside address it is given.
//
// Downstream agents connect to it exactly as they would to the control plane
// (AgentService.Connect over mTLS, pinning the relay's SPIFFE ID). For each
// downstream stream the relay opens one stream to its upstream (the control
// plane, or the next relay) on its own certificate, adds the relay path
// header (common/relay) and copies messages both ways unchanged: tasks are
// signed by the dispatch key and checked by the end agent, results are
// signed by the end agent's result key and checked by the control plane, and
// the agent's Hello is signed by it (connect proof), so a relay can withhold
// but not forge or alter anything that would be accepted.
//
// Checks at the relay: the downstream peer has an agent certificate of this
// trust domain; a stream straight from an agent says Hello as that agent; a
// stream from another relay names that relay last in its path; no loops; at
// most max_downstream streams. Enrol and Rejoin are forwarded (public calls;
// what they return is only useful to the holder of the keys); Renew is not
// (the control plane would see the relay's certificate), so agents behind a
// relay re-join with their result key instead (agent/identity).
//
// Thread-safety: Start/Stop from one thread; everything else is internal.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "writeback/v1/agent_service.pb.h"
#include "writeback/v1/config.pb.h"

namespace wb::agent {

class Relay {
 public:
  struct Options {
    std::string self_id;       // this relay's agent SPIFFE ID
    std::string trust_domain;  // downstream certificates must be of it
    writeback::v1::RelayConfig config;
    std::string upstream_address;                     // the agent's controlplane_address
    std::string upstream_id;                          // the agent's controlplane_id (pinned)
    writeback::v1::TlsConfig tls;                     // the agent's own certificate, key and CA
    absl::Duration call_timeout = absl::Seconds(30);  // forwarded unary calls
    // Test builds only (tests/netns/tamper_relay_main.cc): called on every
    // message forwarded downstream, to show that an altered task is refused
    // by the end agent. writeback-agent never sets it.
    std::function<void(writeback::v1::ControlMessage&)> tamper_for_test;
  };

  // Checks the options (listen_address must be an IP address, not a
  // wildcard) and starts listening.
  static absl::StatusOr<std::unique_ptr<Relay>> Start(Options opts);
  ~Relay();  // Stop()
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Stops accepting, ends every forwarded stream, joins. Idempotent.
  void Stop();
  int port() const;
  // Downstream streams being forwarded now, and since start.
  size_t active_streams() const;
  uint64_t forwarded_streams() const;

  struct Impl;

 private:
  explicit Relay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The options of the relay an agent config asks for (cfg.relay set):
// upstream and certificate from the agent's own settings. Errors name the
// field.
absl::StatusOr<Relay::Options> RelayOptionsFromConfig(const writeback::v1::AgentConfig& cfg);

// Checks a relay listen address: "IP:PORT" or "[IPv6]:PORT", a specific
// address (not 0.0.0.0 or ::), port 0-65535. Errors name the field.
absl::Status ValidateRelayListenAddress(const std::string& address);

}  // namespace wb::agent
