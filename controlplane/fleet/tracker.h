// The fleet model's bookkeeping, fed by every durable store write
// (ObservedStore): per agent, tasks queued and in flight and result counts;
// decisions by state; time-to-verified samples per connector type and per
// site; and the event feed (writeback.v1.Event on an EventBus) describing
// each change.
//
// Counts are kept in memory. Rebuild() seeds them from the store at start
// (the newest `max_decisions` decisions), so after a restart the per-agent
// result counts and percentiles cover those decisions only.
//
// Thread-safe: observer callbacks may come from several threads at once.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/fleet/events.h"
#include "controlplane/fleet/observed_store.h"
#include "writeback/v1/admin_service.pb.h"

namespace wb::controlplane {

class Metrics;

// Per-agent task counts (results exclude verify-only tasks).
struct AgentCounters {
  uint32_t queued = 0;     // open tasks QUEUED
  uint32_t delivered = 0;  // open tasks DELIVERED (journaled, no result yet)
  uint64_t applied = 0;    // VERIFIED, ALREADY_COMPLIANT, UNVERIFIED
  uint64_t verified = 0;   // VERIFIED, ALREADY_COMPLIANT
  uint64_t failed = 0;
  uint64_t refused = 0;  // REJECTED
  int64_t last_verified_at_unix_ms = 0;
};

// One time-to-verified sample (for the dashboard's chart).
struct TtvSample {
  int64_t verified_at_unix_ms = 0;
  int64_t ttv_ms = 0;
  std::string connector_type;
  std::string site;
};

// Nearest-rank percentile of `sorted` (ascending), p in [0, 100]; 0 if empty.
int64_t Percentile(const std::vector<int64_t>& sorted, double p);

class Tracker final : public StoreObserver {
 public:
  // `bus` must outlive the tracker; `metrics` may be null.
  Tracker(EventBus* bus, Metrics* metrics);

  // Seeds the model from `store` (agents, then the newest `max_decisions`
  // decisions and their tasks) without publishing events. Call before
  // traffic flows.
  absl::Status Rebuild(Store& store, size_t max_decisions);

  // ---- StoreObserver ----
  void OnDecisionCreated(const writeback::v1::DecisionRecord& decision,
                         const std::vector<writeback::v1::TaskRecord>& tasks) override;
  void OnProgress(const writeback::v1::DecisionRecord& decision, bool decision_changed,
                  const std::vector<writeback::v1::TaskRecord>& tasks) override;
  void OnAgentPut(const writeback::v1::AgentRecord& agent) override;
  void OnBindingPut(const writeback::v1::InstanceBinding& binding) override;

  // Called (outside the tracker's lock, on the writing thread) for every
  // verify-only task that reached a terminal state. Set before traffic.
  void SetReverifyListener(std::function<void(const writeback::v1::TaskRecord&)> fn);

  // ---- Reads ----
  AgentCounters Counters(absl::string_view agent_id) const;
  std::map<std::string, AgentCounters> AllCounters() const;
  // DecisionState name without prefix ("VERIFIED") -> count.
  std::map<std::string, uint64_t> DecisionsByState() const;
  std::vector<writeback::v1::TimeToVerifiedStats> TtvByConnector() const;
  std::vector<writeback::v1::TimeToVerifiedStats> TtvBySite() const;
  // The most recent samples, oldest first, at most `n`.
  std::vector<TtvSample> RecentTtv(size_t n) const;
  // Open task ids of `agent_id` (QUEUED or DELIVERED), by queue time.
  std::vector<std::string> OpenTasks(absl::string_view agent_id, size_t max) const;
  // The connector type of an instance ("" if unknown) and the site label of
  // an agent ("" if none).
  std::string InstanceType(absl::string_view instance) const;
  std::string AgentSite(absl::string_view agent_id) const;

 private:
  struct OpenTask {
    std::string agent_id;
    writeback::v1::TaskState state;
    int64_t queued_at_unix_ms;
  };
  struct Pending {  // events and callbacks to run after the lock is released
    std::vector<writeback::v1::Event> events;
    std::vector<writeback::v1::TaskRecord> reverify_results;
  };

  void ApplyTask(const writeback::v1::DecisionRecord& d, const writeback::v1::TaskRecord& t,
                 bool live, Pending* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyDecision(const writeback::v1::DecisionRecord& d, bool live, Pending* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyAgent(const writeback::v1::AgentRecord& a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddTtv(TtvSample s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string SiteOfDecision(const writeback::v1::DecisionRecord& d) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Flush(Pending& p);
  std::vector<writeback::v1::TimeToVerifiedStats> Stats(
      const std::map<std::string, std::deque<int64_t>>& by_key) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EventBus* const bus_;
  Metrics* const metrics_;
  std::function<void(const writeback::v1::TaskRecord&)> reverify_listener_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, OpenTask> open_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, AgentCounters> agents_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> agent_site_ ABSL_GUARDED_BY(mu_);
  // Per agent, the instances it offers that it is not bound to.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> refused_ ABSL_GUARDED_BY(mu_);
  // instance -> (connector type, serving agent)
  absl::flat_hash_map<std::string, std::pair<std::string, std::string>> instances_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, writeback::v1::DecisionState> decisions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> by_state_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::deque<int64_t>> ttv_by_type_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::deque<int64_t>> ttv_by_site_ ABSL_GUARDED_BY(mu_);
  std::deque<TtvSample> recent_ttv_ ABSL_GUARDED_BY(mu_);
};

}  // namespace wb::controlplane
