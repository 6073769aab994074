// Re-verification, drift and "cannot tell" (DESIGN.md section 2, step 5;
// docs/operations.md "Decision states").
//
// A VERIFIED decision is re-verified on a schedule: every interval (per
// operation, ReverifyConfig) the scheduler signs one verify-only task per
// target (writeback.v1.Task.verify_only) for the agent serving the
// decision's connector instance and queues it in that agent's outbox, like
// any task. The agent runs every acceptance check, then only the
// connector's Verify, and returns a signed result. Every decision is
// re-verified against ITS OWN effect (its own statement): verify-only tasks
// pass the agent's rollback floor and outlive the statement's apply window,
// so a newer decision on the same target never silences an older one.
//   - a target whose Verify now FAILS (the revoked key is back) turns the
//     decision DRIFTED, with drifted_at, a state_detail naming the targets,
//     a DRIFT_DETECTED event and the writeback_drift_detected_total metric;
//   - a target that cannot be observed (UNVERIFIED: unreachable, unsafe to
//     read; REJECTED: the agent refused to look; or no answer before the
//     task expired) turns a VERIFIED decision UNVERIFIABLE, with
//     unverifiable_at, the targets and why, an UNVERIFIABLE event and the
//     writeback_unverifiable_detected_total metric;
//   - a DRIFTED or UNVERIFIABLE decision whose targets all verify again
//     returns to VERIFIED (DRIFT_RESOLVED / OBSERVABLE_AGAIN);
//   - a target is "watched through" a newer decision only while that one is
//     VERIFIED, re-verified itself, and provably covers this decision's
//     effect on it (common/actions/coverage.h; e.g. a deleted account can no
//     longer be observed as locked): no task is sent for it and it counts as
//     verified (DecisionRecord.watched_through). Otherwise it is observed.
// At most one round per decision is open at a time: a round whose tasks
// still wait for their agent is not repeated; tasks past their lifetime
// without an answer are expired (Dispatcher::ExpireVerifyTasks) and count
// as "cannot tell".
//
// Operators can re-verify at once (ReverifyNow), re-issue a DRIFTED
// decision's drifted targets as a new decision (Remediate: same instance,
// operation, parameters and reference, a new version, reason "re-issue of
// drifted decision <id>: <reason>"), linked by remediated_by, or retire a
// decision (Retire: RETIRED, no longer re-verified, audited).
//
// Writes: the decision record (reverify_task_ids, last_reverify_at,
// DRIFTED/UNVERIFIABLE/VERIFIED/RETIRED, drifted_at, unverifiable_at,
// watched_through, remediated_by, retired_*) and the verify-only tasks. The
// dispatcher never rewrites a finished decision for a task outside its
// task_ids, so these writes do not race with it; the scheduler serializes
// its own writes.
//
// Thread-safety: all public methods may be called concurrently. Sweep is
// meant to be called periodically from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/crypto/crypto.h"
#include "controlplane/dispatch/dispatcher.h"
#include "controlplane/dispatch/sessions.h"
#include "controlplane/fleet/events.h"
#include "controlplane/fleet/tracker.h"
#include "controlplane/store/store.h"
#include "writeback/v1/admin_service.pb.h"
#include "writeback/v1/config.pb.h"

namespace wb::controlplane {

class Metrics;

struct ReverifyOptions {
  // 0 = no scheduled re-verification unless an entry below says otherwise.
  absl::Duration default_interval = absl::ZeroDuration();
  // "<connector type>/<operation>" or "<operation>" -> interval (0 = never).
  std::map<std::string, absl::Duration> intervals;
  absl::Duration task_ttl = absl::Seconds(600);
  size_t max_per_sweep = 100;
  // Random bytes for task ids; crypto::RandomBytes if empty.
  std::function<std::string(size_t)> random_bytes;
};

// Options from the config message (defaults filled in); INVALID_ARGUMENT
// naming the field (reverify.interval_seconds[...]) for bad entries.
absl::StatusOr<ReverifyOptions> ReverifyOptionsFromConfig(const writeback::v1::ReverifyConfig& cfg);

// Prefix of a remediation's reason; RemediatesFromReason parses it back.
inline constexpr char kRemediationReasonPrefix[] = "re-issue of drifted decision ";
// The drifted decision a remediation's statement reason names, or "".
std::string RemediatesFromReason(absl::string_view reason);

class Reverifier {
 public:
  // Nothing is owned; everything must outlive the scheduler. `store` should
  // be the observed store (so the tracker sees these writes); `metrics` may
  // be null.
  // Verify-only tasks are signed by the dispatcher (Dispatcher::SignTasks).
  Reverifier(Store* store, const Clock* clock, Dispatcher* dispatcher, SessionRegistry* sessions,
             Tracker* tracker, EventBus* bus, Metrics* metrics, ReverifyOptions opts);

  // Subscribes to the tracker and the bus, and schedules the stored
  // VERIFIED and DRIFTED decisions (at most `max_decisions`). Call once,
  // before traffic.
  absl::Status Start(size_t max_decisions);

  // One pass: schedules newly verified decisions, evaluates stored
  // verify-only results, then issues the rounds that are due (at most
  // max_per_sweep). Returns how many rounds it issued.
  absl::StatusOr<size_t> Sweep();

  // Operators: a round for `decision_id` now (VERIFIED or DRIFTED).
  // FAILED_PRECONDITION if it is in another state, if a round is still open
  // or if its statement expired; UNAVAILABLE if no agent serves its
  // instance; NOT_FOUND.
  absl::StatusOr<writeback::v1::ReverifyDecisionResponse> ReverifyNow(
      absl::string_view decision_id);
  // Operators: re-issues the drifted targets of a DRIFTED decision as a new
  // decision submitted by `requester`. Idempotent per drift (repeating it
  // returns the same new decision).
  absl::StatusOr<writeback::v1::ReverifyDecisionResponse> Remediate(absl::string_view requester,
                                                                    absl::string_view decision_id);
  // Operators: a VERIFIED, DRIFTED or UNVERIFIABLE decision becomes RETIRED
  // and is no longer re-verified (audited with `requester` and `reason`,
  // which is required). FAILED_PRECONDITION in other states; NOT_FOUND.
  absl::StatusOr<writeback::v1::RetireDecisionResponse> Retire(absl::string_view requester,
                                                               absl::string_view decision_id,
                                                               absl::string_view reason);

  // The interval for a decision's connector type and operation (0 = none).
  absl::Duration IntervalFor(absl::string_view connector_type, absl::string_view operation) const;
  // When `decision_id` is next due, if scheduled.
  std::optional<absl::Time> NextDue(absl::string_view decision_id) const;

 private:
  enum class IssueResult { kIssued, kInProgress, kWatched, kNotEligible, kMomentary };
  absl::StatusOr<IssueResult> Issue(absl::string_view decision_id,
                                    writeback::v1::ReverifyDecisionResponse* resp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status Evaluate(absl::string_view decision_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  void Schedule(const std::string& decision_id, absl::Time due);
  void Unschedule(const std::string& decision_id);
  // Interval of a stored decision (0 = not re-verified).
  absl::Duration IntervalOf(const writeback::v1::DecisionRecord& d) const;
  std::string NewTaskId();
  // The index of re-verified decisions by target (instance, object), for
  // "watched through": decisions with an interval, while re-verifiable.
  void Index(const writeback::v1::DecisionRecord& d);
  void Unindex(const writeback::v1::DecisionRecord& d);
  // A newer decision, VERIFIED now, that provably covers `d`'s effect on
  // `object`: its id, or "".
  std::string CoveringFor(const writeback::v1::DecisionRecord& d, const std::string& object);
  struct Indexed {
    std::string decision_id;
    uint64_t version = 0;
    std::string operation;
    writeback::v1::ActionParams params;
  };

  Store* const store_;
  const Clock* const clock_;
  Dispatcher* const dispatcher_;
  SessionRegistry* const sessions_;
  Tracker* const tracker_;
  EventBus* const bus_;
  Metrics* const metrics_;
  const ReverifyOptions opts_;

  absl::Mutex write_mu_;  // one decision write at a time

  mutable absl::Mutex mu_;
  std::set<std::pair<absl::Time, std::string>> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::Time> due_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> newly_verified_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> results_ ABSL_GUARDED_BY(mu_);  // decisions to evaluate
  // "instance\0object" -> re-verified decisions acting on it.
  absl::flat_hash_map<std::string, std::vector<Indexed>> by_target_ ABSL_GUARDED_BY(mu_);
};

}  // namespace wb::controlplane
