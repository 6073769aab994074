// The agent's own identity lifecycle (docs/security.md "Agent identities"):
//
//   Enroll   `writeback-agent enroll`: makes the TLS key and, if missing, the
//            result key on this host, sends a CSR and the result public key
//            with a join token over server-authenticated TLS (the control
//            plane's identity pinned), and writes the certificate. Keys never
//            leave the host.
//   Renewer  a thread of the running agent: renews the certificate at about
//            half of its lifetime (with jitter) over mTLS, keeping the same
//            key; if the certificate has expired (the agent was cut off), it
//            re-joins by signing (agent id, CSR digest, time) with its result
//            key. A banned agent is refused both ways and stays cut off.
// Certificates are written atomically; gRPC's file watcher picks them up
// for the next connection.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/crypto/crypto.h"
#include "writeback/v1/config.pb.h"

namespace wb::agent {

// Enrols with `token`. Refuses to overwrite an existing certificate unless
// `force`. Errors name the field or the control plane's reason.
absl::Status Enroll(const writeback::v1::AgentConfig& cfg, const std::string& token, bool force);

// The certificate's validity window, read from tls.cert_file.
struct CertWindow {
  absl::Time not_before;
  absl::Time not_after;
};
absl::StatusOr<CertWindow> ReadCertWindow(const writeback::v1::AgentConfig& cfg);

// When to renew: half-way through the window, moved by up to ±`jitter` of
// the lifetime (`unit` in [0,1) picks the point).
absl::Time RenewalTime(const CertWindow& w, double jitter, double unit);

class Renewer {
 public:
  struct Options {
    double jitter = 0.1;
    absl::Duration retry_initial = absl::Seconds(1);
    absl::Duration retry_max = absl::Minutes(10);
  };
  // `result_key` signs re-join requests. `clock` must outlive the renewer.
  Renewer(writeback::v1::AgentConfig cfg, crypto::Ed25519PrivateKey result_key, const Clock* clock,
          Options opts);
  ~Renewer();  // Stop()

  void Start();
  void Stop();

  // The certificate is valid now (false: NOT READY).
  bool identity_valid() const;
  // Renewals and re-joins that succeeded (for tests and status).
  int renewals() const { return renewals_.load(); }
  int rejoins() const { return rejoins_.load(); }

  // One step, for tests: renews or re-joins now as needed.
  absl::Status RenewNow();
  absl::Status RejoinNow();

 private:
  void Loop();

  const writeback::v1::AgentConfig cfg_;
  const crypto::Ed25519PrivateKey result_key_;
  const Clock* const clock_;
  const Options opts_;
  absl::Notification stop_;
  std::thread thread_;
  std::atomic<int> renewals_{0};
  std::atomic<int> rejoins_{0};
};

}  // namespace wb::agent
