// The control plane's Prometheus metrics (docs/operations.md lists them all).
//
// Counters and histograms are fed as things happen (results stored, store
// writes, drift); gauges (agents by state, queue depth, decisions by state)
// are set from the fleet model right before each scrape. Render() returns
// the text exposition format (version 0.0.4) served at /metrics.
//
// Every metric name starts with "writeback_". Label values come from our
// own enums and names (agent SPIFFE IDs, connector types, site labels), never
// from secrets.
//
// Thread-safe: every method may be called concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "writeback/v1/decision.pb.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace wb::controlplane {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // ---- Events ----

  // One store write (`op`: create_decision, save_progress, put_agent).
  void ObserveStoreWrite(absl::string_view op, absl::Duration latency, bool ok);
  // A result stored for a task. Verify-only results count under
  // writeback_reverify_results_total instead of the task outcome counters.
  void ObserveResult(writeback::v1::Outcome outcome, writeback::v1::RejectReason reason,
                     bool verify_only);
  void ObserveTaskExpired();
  // A decision reached VERIFIED, `latency` after it was submitted.
  void ObserveTimeToVerified(absl::string_view connector_type, absl::string_view site,
                             absl::Duration latency);
  void ObserveReverifyIssued(uint64_t tasks);
  void ObserveDriftDetected();
  void ObserveRemediationIssued();
  void ObserveUnverifiableDetected();

  // ---- Gauges and externally counted totals (set before a scrape) ----

  struct FleetGauges {
    uint32_t online = 0, stale = 0, offline = 0;
    uint32_t queue_depth = 0, in_flight = 0;
    uint32_t healthy_instances = 0, unhealthy_instances = 0;
    // agent id -> (queue depth, in flight)
    std::map<std::string, std::pair<uint32_t, uint32_t>> per_agent;
    // DecisionState name without prefix ("VERIFIED") -> count
    std::map<std::string, uint64_t> decisions_by_state;
    // Results the control plane refused since start (bad signature, unknown
    // task, digest mismatch...): Dispatcher::rejected_results().
    uint64_t results_refused_total = 0;
    // Tasks an agent refused because the copy it received was altered on
    // the way (a relay or the network; docs/networks.md).
    uint64_t altered_deliveries_total = 0;
  };
  void SetFleet(const FleetGauges& g);

  // The text exposition of every metric.
  std::string Render() const;

  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Family<prometheus::Histogram>* store_write_seconds_;
  prometheus::Family<prometheus::Counter>* store_write_errors_;
  prometheus::Family<prometheus::Counter>* task_results_;
  prometheus::Family<prometheus::Counter>* task_refusals_;
  prometheus::Family<prometheus::Counter>* reverify_results_;
  prometheus::Family<prometheus::Histogram>* time_to_verified_;
  prometheus::Family<prometheus::Counter>* signature_errors_;
  prometheus::Family<prometheus::Gauge>* agents_;
  prometheus::Family<prometheus::Gauge>* agent_queue_depth_;
  prometheus::Family<prometheus::Gauge>* agent_in_flight_;
  prometheus::Family<prometheus::Gauge>* decisions_;
  prometheus::Family<prometheus::Gauge>* instances_;
  prometheus::Counter* tasks_expired_;
  prometheus::Counter* reverify_issued_;
  prometheus::Counter* drift_detected_;
  prometheus::Counter* unverifiable_detected_;
  prometheus::Counter* remediations_;
  prometheus::Counter* results_refused_;
  prometheus::Counter* altered_deliveries_;
  prometheus::Gauge* queue_depth_;
  prometheus::Gauge* in_flight_;
  prometheus::Gauge* drifted_;
  prometheus::Gauge* unverifiable_;

  absl::Mutex mu_;
  uint64_t results_refused_seen_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t altered_deliveries_seen_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace wb::controlplane
