// The operators' view of a running control plane, in one object: metrics,
// the event feed, the fleet model, the tracker behind them, the
// re-verification scheduler, the admin RPCs of this view (AdminView) and the
// web dashboard with /metrics, /healthz and /readyz.
//
// Wiring (controlplane/server.cc):
//   view = OperatorsView::Create(cfg, clock, rocksdb_store)   // validates its config
//   dispatcher = Dispatcher::Create(view->store(), ...)        // the observed store
//   view->Attach(dispatcher, sessions, authz)    // rebuilds from the store
//   ... gRPC server started ...
//   view->Start()        // background loop (fleet ticks, re-verification), web server
//   view->SetReady(true)
//   view->Stop()         // before the gRPC server shuts down: ends watch/tail streams
//
// Thread-safety: after Attach, everything may be called concurrently; Start
// and Stop once each (Stop is idempotent).
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/crypto/crypto.h"
#include "controlplane/dispatch/dispatcher.h"
#include "controlplane/dispatch/sessions.h"
#include "controlplane/fleet/admin_view.h"
#include "controlplane/fleet/events.h"
#include "controlplane/fleet/fleet_model.h"
#include "controlplane/fleet/observed_store.h"
#include "controlplane/fleet/tracker.h"
#include "controlplane/metrics/metrics.h"
#include "controlplane/reverify/reverifier.h"
#include "controlplane/rpc/authz.h"
#include "controlplane/web/web_server.h"
#include "writeback/v1/config.pb.h"

namespace grpc {
class AuthContext;
}

namespace wb::controlplane {

struct OperatorsViewOptions {
  FleetOptions fleet;
  ReverifyOptions reverify;
  absl::Duration tick_interval = absl::Seconds(1);  // fleet states, re-verification sweep
  size_t rebuild_max_decisions = 20000;
  // Empty listen_address: no web server.
  WebServerOptions web;
  std::string web_port_file;
};

// Checks the view's part of a control plane config (web_*, fleet, reverify)
// and returns the options. INVALID_ARGUMENT naming the field.
absl::StatusOr<OperatorsViewOptions> OperatorsViewOptionsFromConfig(
    const writeback::v1::ControlPlaneConfig& cfg);

class OperatorsView final : public AdminView {
 public:
  // `inner` (the real store) and `clock` must outlive the view.
  OperatorsView(const Clock* clock, Store* inner, OperatorsViewOptions opts);
  ~OperatorsView() override;

  // The store to give the dispatcher: `inner` seen through the tracker.
  Store* store() { return &observed_; }

  // Builds the fleet model and the scheduler and seeds them from the store.
  // The pointers must outlive the view.
  absl::Status Attach(Dispatcher* dispatcher, SessionRegistry* sessions, const Authorizer* authz);
  // Starts the background loop and the web server (if configured).
  absl::Status Start();
  // Ends watch/tail streams, stops the loop and the web server. Idempotent.
  void Stop();
  // /readyz answers 200 only while ready (the gRPC server is serving).
  void SetReady(bool ready) { ready_.store(ready); }
  // The web server's port (0 if disabled or not started).
  int web_port() const;

  // An agent stream was authorized: records its certificate's expiry.
  void OnAgentConnected(absl::string_view agent_id, const grpc::AuthContext& auth);

  // ---- AdminView ----
  grpc::Status FleetStatus(grpc::ServerContext* ctx, const writeback::v1::FleetStatusRequest* req,
                           writeback::v1::FleetStatusResponse* resp) override;
  grpc::Status GetAgent(grpc::ServerContext* ctx, const writeback::v1::GetAgentRequest* req,
                        writeback::v1::GetAgentResponse* resp) override;
  grpc::Status WatchDecision(
      grpc::ServerContext* ctx, const writeback::v1::WatchDecisionRequest* req,
      grpc::ServerWriter<writeback::v1::WatchDecisionResponse>* writer) override;
  grpc::Status ReverifyDecision(grpc::ServerContext* ctx,
                                const writeback::v1::ReverifyDecisionRequest* req,
                                writeback::v1::ReverifyDecisionResponse* resp) override;
  grpc::Status RetireDecision(grpc::ServerContext* ctx,
                              const writeback::v1::RetireDecisionRequest* req,
                              writeback::v1::RetireDecisionResponse* resp) override;
  grpc::Status TailEvents(grpc::ServerContext* ctx, const writeback::v1::TailEventsRequest* req,
                          grpc::ServerWriter<writeback::v1::TailEventsResponse>* writer) override;

  // ---- For the web server and tests ----
  absl::StatusOr<writeback::v1::GetAgentResponse> AgentDetail(absl::string_view id_or_name);
  // The full view of a decision (evidence, timeline, re-verifications).
  absl::StatusOr<writeback::v1::DecisionView> DecisionDetail(absl::string_view decision_id);
  // Sets the gauges from the fleet model and renders the exposition.
  std::string RenderMetrics();

  EventBus& events() { return bus_; }
  Tracker& tracker() { return tracker_; }
  FleetModel& fleet() { return *fleet_; }
  Reverifier& reverifier() { return *reverifier_; }
  Metrics& metrics() { return metrics_; }

 private:
  void Loop();
  void RegisterRoutes();
  void RefreshMetrics(const writeback::v1::FleetStatusResponse& fleet);
  absl::StatusOr<writeback::v1::DecisionView> LoadView(const writeback::v1::DecisionRecord& d,
                                                       bool with_evidence);
  // Views (without evidence) of QueryDecisions(states, limit, before_version).
  absl::Status AppendViews(const std::vector<writeback::v1::DecisionState>& states, size_t limit,
                           uint64_t before_version, writeback::v1::ListDecisionsResponse* out);

  const Clock* const clock_;
  const OperatorsViewOptions opts_;
  Metrics metrics_;
  EventBus bus_;
  Tracker tracker_;
  ObservedStore observed_;

  Dispatcher* dispatcher_ = nullptr;
  SessionRegistry* sessions_ = nullptr;
  const Authorizer* authz_ = nullptr;
  std::unique_ptr<FleetModel> fleet_;
  std::unique_ptr<Reverifier> reverifier_;
  std::unique_ptr<WebServer> web_;

  std::atomic<bool> ready_{false};
  std::atomic<bool> loop_alive_{false};
  absl::Notification stop_;
  std::thread loop_;
  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace wb::controlplane
