// The control plane, runnable in-process (tests) or by main.cc.
//
//   auto cp = wb::controlplane::ControlPlane::Create(cfg);   // validates all
//   WB_RETURN_IF_ERROR((*cp)->Start());                     // listens
//   int port = (*cp)->port();
//   (*cp)->Shutdown();                                      // or destroy it
//
// Serves writeback.v1.AdminService (operators), writeback.v1.AgentService
// (agents) and the standard gRPC health service (anyone) on one mTLS port.
// A client certificate is requested but not required by the handshake, so
// that health checks (and, later, enrolment) work without one; every other
// method is refused by the authorization table (controlplane/rpc/authz.h).
//
// Thread-safety: Start, Shutdown and the accessors may be called from any
// thread; Start at most once.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "writeback/v1/config.pb.h"

namespace grpc {
class Server;
}

namespace wb::controlplane {

class AdminServiceImpl;
class AgentServiceImpl;
class EnrollmentServiceImpl;
class Enroller;
class OperatorsView;
class Authorizer;
class Dispatcher;
class RocksDbStore;
class SessionRegistry;
class Store;
class TrustGate;
class WorkerPool;

// Knobs that are not (yet) in the config file.
struct ControlPlaneOptions {
  // How often the expiry sweep runs (it uses the injected clock for "now");
  // each run also wakes every agent stream to check its delivery timeouts.
  absl::Duration expiry_sweep_interval = absl::Seconds(1);
  // DispatcherOptions::redelivery_timeout_seconds (0 = only on reconnect).
  uint32_t redelivery_timeout_seconds = 60;
  // Threads running agent streams' work (store writes included).
  int worker_threads = 4;
  // Random bytes for ids; crypto::RandomBytes if empty.
  std::function<std::string(size_t)> random_bytes;
};

// Checks every field of `cfg` and returns it with defaults filled in
// (default_task_ttl_seconds 3600, heartbeat_interval_seconds 10,
// max_in_flight_per_agent 64). Errors are INVALID_ARGUMENT naming the field,
// e.g. "tls.cert_file: ...". Reads the TLS files (not the dispatch key).
absl::StatusOr<writeback::v1::ControlPlaneConfig> NormalizeConfig(
    const writeback::v1::ControlPlaneConfig& cfg);

class ControlPlane {
 public:
  // Validates the whole config, opens the store and loads the dispatch key.
  // `clock` must outlive the control plane.
  static absl::StatusOr<std::unique_ptr<ControlPlane>> Create(
      const writeback::v1::ControlPlaneConfig& cfg, const Clock* clock = SystemClock::Get(),
      ControlPlaneOptions opts = {});
  ~ControlPlane();
  ControlPlane(const ControlPlane&) = delete;
  ControlPlane& operator=(const ControlPlane&) = delete;

  // Listens on cfg.listen_address (port 0 picks a free port) and starts the
  // expiry sweep. Fails if any method of a served service has no entry in
  // the authorization table.
  absl::Status Start();
  // The bound port (0 before Start).
  int port() const;
  // Graceful and idempotent: ends agent streams (UNAVAILABLE), stops the
  // server (in-flight calls get up to 5 s), the sweep and the workers, and
  // closes the store. The destructor calls it.
  void Shutdown();

  // The validated config (defaults filled in).
  const writeback::v1::ControlPlaneConfig& config() const { return cfg_; }
  // This control plane's SPIFFE ID (from its certificate).
  const std::string& controlplane_id() const { return controlplane_id_; }
  // For tests and in-process tools.
  Dispatcher& dispatcher() { return *dispatcher_; }
  Store& store();
  // The operators' view: fleet model, event feed, re-verification, web
  // dashboard and metrics (controlplane/fleet/operators_view.h).
  OperatorsView& view() { return *view_; }
  // The web dashboard's port (0 if web_listen_address is empty).
  int web_port() const;

 private:
  ControlPlane() = default;
  void SweepLoop();

  writeback::v1::ControlPlaneConfig cfg_;
  ControlPlaneOptions opts_;
  const Clock* clock_ = nullptr;
  std::string controlplane_id_;

  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<TrustGate> trust_;  // after store_, which it uses
  std::unique_ptr<SessionRegistry> sessions_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<Authorizer> authz_;
  std::unique_ptr<AdminServiceImpl> admin_;
  std::unique_ptr<AgentServiceImpl> agent_service_;
  std::unique_ptr<Enroller> enroller_;  // null without enrollment.ca_key_file
  std::unique_ptr<EnrollmentServiceImpl> enrollment_;
  std::unique_ptr<OperatorsView> view_;  // after what it points to

  mutable absl::Mutex mu_;
  std::unique_ptr<grpc::Server> server_ ABSL_GUARDED_BY(mu_);
  int port_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::Notification stop_sweep_;
  std::thread sweeper_;
};

}  // namespace wb::controlplane
