#include "controlplane/metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <cctype>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace wb::controlplane {
namespace {

// Enum value name without its prefix: OUTCOME_VERIFIED -> "verified".
std::string Short(const std::string& full, absl::string_view prefix) {
  std::string s = absl::StartsWith(full, prefix) ? full.substr(prefix.size()) : full;
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const prometheus::Histogram::BucketBoundaries& TtvBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600};
  return *b;
}

const prometheus::Histogram::BucketBoundaries& StoreBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
  return *b;
}

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  store_write_seconds_ = &prometheus::BuildHistogram()
                              .Name("writeback_store_write_seconds")
                              .Help("Latency of synced store writes, by operation")
                              .Register(r);
  store_write_errors_ = &prometheus::BuildCounter()
                             .Name("writeback_store_write_errors_total")
                             .Help("Store writes that failed, by operation")
                             .Register(r);
  task_results_ = &prometheus::BuildCounter()
                       .Name("writeback_task_results_total")
                       .Help("Task results stored, by outcome")
                       .Register(r);
  task_refusals_ = &prometheus::BuildCounter()
                        .Name("writeback_task_refusals_total")
                        .Help("Tasks refused by their agent (REJECTED results), by reason code")
                        .Register(r);
  reverify_results_ = &prometheus::BuildCounter()
                           .Name("writeback_reverify_results_total")
                           .Help("Re-verification results stored, by outcome")
                           .Register(r);
  time_to_verified_ =
      &prometheus::BuildHistogram()
           .Name("writeback_time_to_verified_seconds")
           .Help(
               "Time from a decision's submission to its VERIFIED state, by connector "
               "type and agent site")
           .Register(r);
  signature_errors_ = &prometheus::BuildCounter()
                           .Name("writeback_signature_errors_total")
                           .Help(
                               "Signature checks that failed: side=agent counts tasks agents "
                               "refused for BAD_SIGNATURE or UNKNOWN_KEY; side=controlplane "
                               "counts results the control plane refused")
                           .Register(r);
  agents_ = &prometheus::BuildGauge()
                 .Name("writeback_agents")
                 .Help("Known agents by state (online, stale, offline)")
                 .Register(r);
  agent_queue_depth_ = &prometheus::BuildGauge()
                            .Name("writeback_agent_queue_depth")
                            .Help("Tasks queued for an agent and not yet journaled by it")
                            .Register(r);
  agent_in_flight_ = &prometheus::BuildGauge()
                          .Name("writeback_agent_tasks_in_flight")
                          .Help("Tasks an agent journaled and has not answered yet")
                          .Register(r);
  decisions_ = &prometheus::BuildGauge()
                    .Name("writeback_decisions")
                    .Help("Decisions known to the fleet model, by state")
                    .Register(r);
  instances_ = &prometheus::BuildGauge()
                    .Name("writeback_connector_instances")
                    .Help("Connector instances by last reported health")
                    .Register(r);
  tasks_expired_ = &prometheus::BuildCounter()
                        .Name("writeback_tasks_expired_total")
                        .Help("Tasks that expired without a result")
                        .Register(r)
                        .Add({});
  reverify_issued_ = &prometheus::BuildCounter()
                          .Name("writeback_reverify_tasks_issued_total")
                          .Help("Verify-only tasks issued by the re-verification scheduler")
                          .Register(r)
                          .Add({});
  drift_detected_ = &prometheus::BuildCounter()
                         .Name("writeback_drift_detected_total")
                         .Help("Times a VERIFIED decision turned DRIFTED")
                         .Register(r)
                         .Add({});
  unverifiable_detected_ =
      &prometheus::BuildCounter()
           .Name("writeback_unverifiable_detected_total")
           .Help(
               "Times a VERIFIED decision turned UNVERIFIABLE (re-verification could not "
               "observe its effect)")
           .Register(r)
           .Add({});
  unverifiable_ = &prometheus::BuildGauge()
                       .Name("writeback_unverifiable_decisions")
                       .Help("Decisions currently UNVERIFIABLE")
                       .Register(r)
                       .Add({});
  remediations_ = &prometheus::BuildCounter()
                       .Name("writeback_remediations_total")
                       .Help("Drifted decisions re-issued by an operator")
                       .Register(r)
                       .Add({});
  results_refused_ = &prometheus::BuildCounter()
                          .Name("writeback_results_refused_total")
                          .Help(
                              "Results the control plane refused (bad signature, unknown or "
                              "misaddressed task, digest mismatch)")
                          .Register(r)
                          .Add({});
  altered_deliveries_ = &prometheus::BuildCounter()
                             .Name("writeback_altered_deliveries_total")
                             .Help(
                                 "Tasks an agent refused because the copy it received did not "
                                 "match what the control plane signed (altered in transit)")
                             .Register(r)
                             .Add({});
  queue_depth_ = &prometheus::BuildGauge()
                      .Name("writeback_queue_depth")
                      .Help("Tasks queued for all agents and not yet journaled")
                      .Register(r)
                      .Add({});
  in_flight_ = &prometheus::BuildGauge()
                    .Name("writeback_tasks_in_flight")
                    .Help("Tasks journaled by agents without a result yet")
                    .Register(r)
                    .Add({});
  drifted_ = &prometheus::BuildGauge()
                  .Name("writeback_drifted_decisions")
                  .Help("Decisions currently DRIFTED")
                  .Register(r)
                  .Add({});
  // Series that should exist from the first scrape, even at zero.
  for (const char* s : {"online", "stale", "offline"}) agents_->Add({{"state", s}});
  for (const char* side : {"agent", "controlplane"}) signature_errors_->Add({{"side", side}});
}

Metrics::~Metrics() = default;

void Metrics::ObserveStoreWrite(absl::string_view op, absl::Duration latency, bool ok) {
  const prometheus::Labels labels{{"op", std::string(op)}};
  store_write_seconds_->Add(labels, StoreBuckets()).Observe(absl::ToDoubleSeconds(latency));
  if (!ok) store_write_errors_->Add(labels).Increment();
}

void Metrics::ObserveResult(writeback::v1::Outcome outcome, writeback::v1::RejectReason reason,
                            bool verify_only) {
  const std::string o = Short(writeback::v1::Outcome_Name(outcome), "OUTCOME_");
  if (verify_only) {
    reverify_results_->Add({{"outcome", o}}).Increment();
  } else {
    task_results_->Add({{"outcome", o}}).Increment();
  }
  if (outcome != writeback::v1::OUTCOME_REJECTED) return;
  task_refusals_
      ->Add({{"reason", Short(writeback::v1::RejectReason_Name(reason), "REJECT_REASON_")}})
      .Increment();
  if (reason == writeback::v1::REJECT_REASON_BAD_SIGNATURE ||
      reason == writeback::v1::REJECT_REASON_UNKNOWN_KEY) {
    signature_errors_->Add({{"side", "agent"}}).Increment();
  }
}

void Metrics::ObserveTaskExpired() { tasks_expired_->Increment(); }

void Metrics::ObserveTimeToVerified(absl::string_view connector_type, absl::string_view site,
                                    absl::Duration latency) {
  time_to_verified_
      ->Add({{"connector_type", std::string(connector_type)}, {"site", std::string(site)}},
            TtvBuckets())
      .Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::ObserveReverifyIssued(uint64_t tasks) {
  reverify_issued_->Increment(static_cast<double>(tasks));
}

void Metrics::ObserveDriftDetected() { drift_detected_->Increment(); }

void Metrics::ObserveRemediationIssued() { remediations_->Increment(); }

void Metrics::ObserveUnverifiableDetected() { unverifiable_detected_->Increment(); }

void Metrics::SetFleet(const FleetGauges& g) {
  agents_->Add({{"state", "online"}}).Set(g.online);
  agents_->Add({{"state", "stale"}}).Set(g.stale);
  agents_->Add({{"state", "offline"}}).Set(g.offline);
  queue_depth_->Set(g.queue_depth);
  in_flight_->Set(g.in_flight);
  instances_->Add({{"health", "healthy"}}).Set(g.healthy_instances);
  instances_->Add({{"health", "unhealthy"}}).Set(g.unhealthy_instances);
  for (const auto& [agent, qf] : g.per_agent) {
    agent_queue_depth_->Add({{"agent_id", agent}}).Set(qf.first);
    agent_in_flight_->Add({{"agent_id", agent}}).Set(qf.second);
  }
  uint64_t drifted = 0, unverifiable = 0;
  for (const auto& [state, n] : g.decisions_by_state) {
    decisions_->Add({{"state", Short(state, "")}}).Set(static_cast<double>(n));
    if (state == "DRIFTED") drifted = n;
    if (state == "UNVERIFIABLE") unverifiable = n;
  }
  drifted_->Set(static_cast<double>(drifted));
  unverifiable_->Set(static_cast<double>(unverifiable));
  absl::MutexLock l(&mu_);
  if (g.results_refused_total > results_refused_seen_) {
    const double delta = static_cast<double>(g.results_refused_total - results_refused_seen_);
    results_refused_->Increment(delta);
    signature_errors_->Add({{"side", "controlplane"}}).Increment(delta);
    results_refused_seen_ = g.results_refused_total;
  }
  if (g.altered_deliveries_total > altered_deliveries_seen_) {
    altered_deliveries_->Increment(
        static_cast<double>(g.altered_deliveries_total - altered_deliveries_seen_));
    altered_deliveries_seen_ = g.altered_deliveries_total;
  }
}

std::string Metrics::Render() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace wb::controlplane
