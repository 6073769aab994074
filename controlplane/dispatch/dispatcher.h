// The control plane's core: turns a submitted decision into signed tasks in
// agents' outboxes, registers agents, takes task acks and signed results,
// keeps decision and task states, and expires what ran out of time.
//
// Life of a decision here (DESIGN.md section 2):
//   Submit      validate the spec in full -> DecisionStatement serialized once
//               -> one Task per target, signed with the dispatch key -> ONE
//               synced store write (decision DISPATCHED, tasks QUEUED, outbox)
//               -> wake the agent's stream.
//   NextTasks   the stream pulls signed tasks from the outbox, in order.
//   AckTask     QUEUED -> DELIVERED (delivered_at, delivery_attempts++).
//   Result      verified against the agent's registered key, bound to the task
//               by digest; task state from the outcome; decision recomputed;
//               ONE synced store write, then the caller acks.
//   Sweep       open tasks past their expiry -> EXPIRED.
//   Cancel      an operator withdraws the tasks without a result -> CANCELED.
//   Take over   a newer decision whose effect provably contains an older
//               one's (common/actions/coverage.h) takes over the older
//               decision's not-yet-delivered tasks for the same targets, in
//               the same write that stores it: they become SUPERSEDED,
//               covered_by the newer task, and count for their decision as
//               that task counts (open, then its verification or failure).
//               A covering task canceled or expired without a result gives
//               them back (QUEUED). A decision is never CANCELED unless an
//               operator canceled it. Decisions that do not cover each
//               other both run, in submit order (coverage.cc).
// (Sweep and Cancel — tasks leaving the outbox without a result — are in
// withdraw.cc; take-over in coverage.cc; instance bindings in bindings.cc;
// the rest in dispatcher.cc.)
//
// Routing: an instance is served by the agent an operator bound it to
// (bindings.cc, docs/security.md "Instance bindings") once that agent
// offered it in its Hello. Offers of unbound instances or of another agent's
// are refused for that instance (logged, audited once, shown in the fleet
// view). Every statement names the bound agent (DecisionStatement.agent_id).
//
// Concurrency: every read-modify-write of a decision and its tasks runs under
// that decision's lock (striped). Writes that change several decisions at
// once (take-over, results of covering tasks) take every stripe they need
// in ascending order (MultiLock), so results, acks and the expiry sweep
// never lose each other's updates. Agents' registrations and bindings run
// under one directory lock. All public methods are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/clock/clock.h"
#include "common/crypto/crypto.h"
#include "common/trust/approvals.h"
#include "common/trust/policy.h"
#include "controlplane/dispatch/result_intake.h"
#include "controlplane/dispatch/sessions.h"
#include "controlplane/store/store.h"
#include "writeback/v1/admin_service.pb.h"
#include "writeback/v1/agent_service.pb.h"
#include "writeback/v1/records.pb.h"

namespace wb::controlplane {

class TrustGate;

struct DispatcherOptions {
  // SPIFFE ID of this control plane (sent in Welcome).
  std::string controlplane_id;
  uint32_t default_ttl_seconds = 3600;
  uint32_t heartbeat_interval_seconds = 10;
  // Tasks sent to an agent and not answered by a result yet, at most.
  uint32_t max_in_flight = 64;
  // A task sent on a live stream and still without a stored result this long
  // after it was sent is sent again on that stream (0 = only on reconnect).
  // The agent answers a repeat with its stored result, or ignores it while
  // the task is still running, so a repeat never acts twice.
  uint32_t redelivery_timeout_seconds = 60;
  // Random bytes for decision and task ids; crypto::RandomBytes if empty.
  std::function<std::string(size_t)> random_bytes;
  // The trust policy (controlplane/approval); not owned, may be null (no
  // approvals, no budgets: development).
  TrustGate* trust = nullptr;
  // Air-gapped bundles (bundles.cc): a bundle's tasks expire this long after
  // the export unless the operator chooses (never beyond the decision).
  uint32_t bundle_default_trip_seconds = 7 * 24 * 3600;
  uint32_t bundle_max_trip_seconds = 30 * 24 * 3600;
};

// What Dispatcher::Ban did.
struct BanOutcome {
  size_t tasks_canceled = 0;
  bool stream_ended = false;
  size_t tokens_revoked = 0;
  // Streams of other agents it was relaying, ended with it.
  size_t relayed_streams_ended = 0;
};

// Where an agent stream came from (controlplane/api/agent_service.cc).
struct StreamOrigin {
  std::string peer_id;  // the verified SPIFFE ID of the connection's certificate
  // Relays the stream came through, nearest the agent first (the
  // x-writeback-relay-path header, common/relay); empty: direct.
  std::vector<std::string> relay_path;
  // The first message's connect proof; required when relay_path is set.
  writeback::v1::SignedEnvelope connect_proof;
};

// What Dispatcher::Approve did.
struct ApproveOutcome {
  writeback::v1::DecisionState state = writeback::v1::DECISION_STATE_UNSPECIFIED;
  uint32_t approvals = 0;  // valid, from distinct approvers
  uint32_t required = 0;
};

// Limits of a DecisionSpec.
inline constexpr int kMaxTargets = 10'000;
// For an agent that takes statements only inside each task (no
// statement_digest feature): every task carries all targets.
inline constexpr int kMaxTargetsEmbedded = 1000;
// A statement travels in one message (4 MiB limit, docs/architecture.md).
inline constexpr size_t kMaxStatementBytes = size_t{3} << 20;
inline constexpr size_t kMaxReasonBytes = 1024;
inline constexpr size_t kMaxReferenceBytes = 256;
inline constexpr size_t kMaxRequestIdBytes = 128;
inline constexpr uint32_t kMinTtlSeconds = 60;
inline constexpr uint32_t kMaxTtlSeconds = 30 * 24 * 3600;

// Decision state from its tasks' states: DISPATCHED while any task is open;
// VERIFIED iff every task is VERIFIED; EXPIRED iff every task expired
// without a result; CANCELED iff some tasks were withdrawn (CANCELED,
// SUPERSEDED) and every other one is VERIFIED; FAILED otherwise. `detail`
// counts what went wrong, e.g. "1 of 3 tasks unverified, 1 of 3 tasks
// failed". Covered tasks (TaskRecord.covered_by_task_id) are passed as the
// state of the task covering them (Dispatcher::Recompute), so a decision
// whose tasks were taken over is never CANCELED.
struct DecisionSummary {
  writeback::v1::DecisionState state = writeback::v1::DECISION_STATE_DISPATCHED;
  std::string detail;
};
DecisionSummary SummarizeTasks(const std::vector<writeback::v1::TaskState>& states);
// The same from counts of the states (DecisionRecord.task_counts) of a
// decision without covered tasks; with covered tasks (whose states are the
// covering tasks'), DISPATCHED.
DecisionSummary SummarizeCounts(const writeback::v1::TaskStateCounts& counts);
// Adds (sign +1) or removes (-1) a task with head `h` to/from `counts`.
// Returns false (and changes nothing) when a count would go below zero.
bool CountTask(const writeback::v1::TaskHead& h, int sign, writeback::v1::TaskStateCounts* counts);

// What Dispatcher::Cancel did.
struct CancelOutcome {
  size_t tasks_canceled = 0;
  writeback::v1::DecisionState state = writeback::v1::DECISION_STATE_UNSPECIFIED;
  std::string state_detail;
};

// One ApprovalView per approval: who (from `policy`, may be null), when, and
// whether it counts under `count` (CountApprovals / CountRebindApprovals of
// the same approvals) and why not.
void AddApprovalViews(const trust::VerifiedPolicy* policy, const trust::ApprovalCount& count,
                      const google::protobuf::RepeatedPtrField<writeback::v1::Approval>& approvals,
                      google::protobuf::RepeatedPtrField<writeback::v1::ApprovalView>* out);

class Dispatcher {
 public:
  // Loads the known agents from `store`. `store`, `clock` and `sessions` must
  // outlive the dispatcher.
  static absl::StatusOr<std::unique_ptr<Dispatcher>> Create(Store* store, const Clock* clock,
                                                            crypto::Ed25519PrivateKey dispatch_key,
                                                            SessionRegistry* sessions,
                                                            DispatcherOptions opts);

  const DispatcherOptions& options() const { return opts_; }
  const crypto::Ed25519PublicKey& dispatch_public_key() const { return key_.public_key(); }

  // ---- Operators ----

  // Validates req.spec in full (INVALID_ARGUMENT naming the field, nothing
  // stored), builds, signs and durably stores the decision and its tasks,
  // then wakes the serving agent's stream. When the trust policy requires
  // approvals for the operation's action class, the decision is stored
  // PENDING_APPROVAL without tasks instead (Approve dispatches it). With a
  // pinned root but no policy yet: FAILED_PRECONDITION. Over the agent's
  // rate budget: RESOURCE_EXHAUSTED. With a request_id, a repeated
  // submit returns the decision created the first time.
  absl::StatusOr<writeback::v1::SubmitDecisionResponse> Submit(
      absl::string_view requester, const writeback::v1::SubmitDecisionRequest& req);

  // Withdraws the decision's tasks that have no result yet: QUEUED and
  // DELIVERED tasks become CANCELED and leave their agents' outboxes, in one
  // synced write; the decision is recomputed (CANCELED when every other task
  // is verified). A DELIVERED task may already be running on its agent (the
  // agent is not told): if its result arrives later it is stored and the
  // task takes the result's state, because a result is the truth about the
  // target. Errors: INVALID_ARGUMENT (empty id), NOT_FOUND,
  // FAILED_PRECONDITION (the decision is already finished).
  absl::StatusOr<CancelOutcome> Cancel(absl::string_view requester, absl::string_view decision_id);

  // Adds one approval to a PENDING_APPROVAL decision. The approval must
  // count under the current policy (common/trust/approvals.h); otherwise
  // INVALID_ARGUMENT saying why, and nothing is stored. Once the threshold
  // is met the decision is dispatched: its tasks carry every approval.
  // Errors also: NOT_FOUND, FAILED_PRECONDITION (not waiting for approval,
  // expired, no policy).
  absl::StatusOr<ApproveOutcome> Approve(absl::string_view caller, absl::string_view decision_id,
                                         const writeback::v1::Approval& approval);

  // Verifies, stores and makes current a root-signed policy
  // (TrustGate::Publish), then wakes every agent stream to send it.
  // Returns the policy and how many streams were live.
  absl::StatusOr<std::pair<std::shared_ptr<const trust::VerifiedPolicy>, size_t>>
  PublishTrustPolicy(const writeback::v1::SignedEnvelope& env);

  // Fills v's statement bytes, approvals (each with whether it counts under
  // the current policy and why not), approvals_required and action_class.
  void AddApprovalView(const writeback::v1::DecisionRecord& d,
                       writeback::v1::DecisionView* v) const;

  // The trust policy in force (null without one); agent streams send it.
  std::shared_ptr<const trust::VerifiedPolicy> trust_policy() const;

  // The agents known to the control plane (in-memory view; last_seen is
  // updated by every heartbeat).
  std::vector<writeback::v1::AgentRecord> Agents() const;

  // ---- Identities (controlplane/enroll; identity.cc) ----

  // Records an enrolled agent and the result key it made on its host (a
  // new enrolment replaces the key): its next Hello must present this key.
  // FAILED_PRECONDITION if the agent is banned.
  absl::Status RegisterEnrolled(absl::string_view agent_id, absl::string_view result_public_key,
                                int64_t cert_not_after_ms);
  // Records the expiry of a renewed or re-joined agent's new certificate.
  absl::Status RecordCertificate(absl::string_view agent_id, int64_t cert_not_after_ms);
  // The agent's record (NOT_FOUND if unknown).
  absl::StatusOr<writeback::v1::AgentRecord> AgentRecordOf(absl::string_view agent_id) const;
  // The exact bytes of decision `decision_id`'s statement, which must have
  // SHA-256 `digest` (what its tasks name).
  absl::StatusOr<std::string> StatementOf(absl::string_view decision_id, absl::string_view digest);
  // The agent whose stream serves `instance` now, or "".
  std::string AgentServing(absl::string_view instance) const;

  // What SignTasks signs: one task per entry of `target_indexes` of
  // `statement` (exact bytes `statement_bytes`), for `agent_id`.
  struct TaskIssue {
    const writeback::v1::DecisionStatement* statement = nullptr;
    const std::string* statement_bytes = nullptr;
    const google::protobuf::RepeatedPtrField<writeback::v1::Approval>* approvals = nullptr;
    std::string agent_id;
    std::vector<int> target_indexes;
    int64_t now_ms = 0;
    int64_t expires_at_unix_ms = 0;
    bool verify_only = false;
    // Task ids; null = random "t-…" ids.
    std::function<std::string()> new_task_id;
  };
  // Signs tasks with the dispatch key (decisions and re-verification alike).
  // Agents that announced the statement_digest feature get tasks naming the
  // statement by digest (its bytes then travel once per stream); others get
  // it embedded in every task.
  std::vector<writeback::v1::TaskRecord> SignTasks(const TaskIssue& issue);
  // Cuts the agent off: marks it banned (durably), ends its open stream,
  // cancels its tasks without a result, and revokes its unused join tokens.
  // Its Hello, renewals and re-joins are refused from then on. Idempotent.
  absl::StatusOr<BanOutcome> Ban(absl::string_view by, absl::string_view agent_id,
                                 absl::string_view reason);

  // ---- Agents (called by the agent stream) ----

  // Registers the agent of a new stream. `peer_id` is the caller's verified
  // SPIFFE ID. The instances it offers are served only where an operator
  // bound them to it; the others are refused one by one (listed in
  // AgentRecord.refused_instances, logged, audited when the refusal is
  // new) and the rest is served. Errors: PERMISSION_DENIED (agent_id is not
  // the certificate's identity; "result key changed"), INVALID_ARGUMENT
  // (malformed hello).
  absl::StatusOr<writeback::v1::Welcome> Hello(absl::string_view peer_id,
                                               const writeback::v1::Hello& hello);
  // The same for a stream that may have come through relays. Relayed: the
  // last relay must be the peer's certificate, every relay a known agent
  // that is not banned, and the agent is authenticated by its connect proof
  // (signed by its registered result key, fresh, nonce never seen): the
  // Hello used is the one it signed. Errors as above; PERMISSION_DENIED
  // names the relay or the proof's field.
  absl::StatusOr<writeback::v1::Welcome> Hello(const StreamOrigin& origin,
                                               const writeback::v1::Hello& hello);
  // Updates last_seen and the health of the agent's known instances.
  absl::Status Heartbeat(absl::string_view agent_id, const writeback::v1::Heartbeat& hb);
  // The agent journaled the task: QUEUED -> DELIVERED. No change for a task
  // that already has a result.
  absl::Status AckTask(absl::string_view agent_id, absl::string_view task_id);
  // Checks and stores a signed result from `agent_id`'s stream. Returns the
  // ack to send: accepted=true only once the result is durably stored (or was
  // already). A refused result changes nothing and is counted.
  writeback::v1::ResultAck IntakeResult(absl::string_view agent_id,
                                        const writeback::v1::SignedEnvelope& env);
  // Up to `limit` open tasks from the front of the agent's outbox, in
  // decision order, skipping the ids in `in_flight`. Reads whole only the
  // tasks it returns (the others: their heads, Store::GetTaskHead).
  absl::StatusOr<std::vector<writeback::v1::TaskRecord>> NextTasks(
      absl::string_view agent_id, const absl::flat_hash_set<std::string>& in_flight, size_t limit);

  // The ids among `task_ids` whose tasks are still open (no result, not
  // expired). A stream uses it to free in-flight slots of tasks that finished
  // by other means (expiry, a result on an older stream). Reads task heads.
  absl::flat_hash_set<std::string> StillOpen(const absl::flat_hash_set<std::string>& task_ids);

  // The tasks among `task_ids` addressed to `agent_id` that are still open,
  // for redelivery after the delivery timeout. Counts each as a redelivery.
  // Reads whole only the tasks it returns.
  absl::StatusOr<std::vector<writeback::v1::TaskRecord>> Redeliver(
      absl::string_view agent_id, const std::vector<std::string>& task_ids);

  // ---- Instance bindings (bindings.cc, docs/security.md) ----

  // Binds `instance` to `agent_id` (full SPIFFE ID) as operator `by`. Binding
  // an unbound instance (or one bound to the same agent) takes effect at
  // once: if the agent already offered it, decisions route to it now. A
  // rebind (bound to another agent before, even if unbound since) in root
  // mode stores a pending BindingStatement instead (response
  // pending_approval) that approvers sign (ApproveRebind); without a trust
  // root it takes effect at once. Tasks already queued for the previous
  // agent stay addressed to it (they expire if it is gone). Audited.
  // INVALID_ARGUMENT (names), FAILED_PRECONDITION (banned agent; a rebind
  // already pending for another agent), NOT_FOUND (unknown agent).
  absl::StatusOr<writeback::v1::BindInstanceResponse> BindInstance(absl::string_view by,
                                                                   absl::string_view instance,
                                                                   absl::string_view agent_id,
                                                                   absl::string_view reason);
  // Unbinds `instance`: decisions are no longer routed to its agent (open
  // tasks stay where they are). Audited. NOT_FOUND if it was not bound.
  absl::StatusOr<writeback::v1::BindInstanceResponse> UnbindInstance(absl::string_view by,
                                                                     absl::string_view instance,
                                                                     absl::string_view reason);
  // Adds one approval to the pending rebind of `instance` (root mode;
  // common/trust/approvals.h CountRebindApprovals); rebinds once the
  // threshold is met. INVALID_ARGUMENT (why the approval does not count),
  // FAILED_PRECONDITION (nothing pending, expired, no policy).
  absl::StatusOr<writeback::v1::BindInstanceResponse> ApproveRebind(
      absl::string_view by, absl::string_view instance, const writeback::v1::Approval& approval);
  // Every instance bound (or once bound) or offered, by name.
  std::vector<writeback::v1::InstanceView> Instances() const;
  // The binding of `instance` (NOT_FOUND if it was never bound).
  absl::StatusOr<writeback::v1::InstanceBinding> BindingOf(absl::string_view instance) const;
  // Whether binding `instance` to `agent_id` would take effect at once
  // (unbound, or bound to it already, or not root mode). OK, or
  // FAILED_PRECONDITION saying why not (join tokens check this).
  absl::Status CanBindAtOnce(absl::string_view instance, absl::string_view agent_id) const;

  // ---- Air-gapped bundles (bundles.cc, docs/networks.md) ----

  // Re-signs `agent_id`'s queued tasks (full SPIFFE ID) into one task bundle
  // whose tasks expire `trip_seconds` from now (0 = the default; never
  // beyond a decision's own expiry) and marks them as travelling offline:
  // NextTasks and Redeliver never send them online. Tasks whose earlier
  // bundle expired without a result are re-issued under new task ids (the
  // old ones become SUPERSEDED). Skipped, and listed with why: tasks the
  // agent already journaled (DELIVERED), tasks possibly in flight on its
  // live stream (the first max_in_flight queued ones while it is
  // connected), tasks travelling in an unexpired bundle. Errors: NOT_FOUND
  // (unknown agent), FAILED_PRECONDITION (banned, nothing to export),
  // INVALID_ARGUMENT (trip_seconds).
  absl::StatusOr<writeback::v1::ExportBundleResponse> ExportBundle(absl::string_view caller,
                                                                   absl::string_view agent_id,
                                                                   uint32_t trip_seconds);
  // Checks a result bundle file in full (bundle level: common/bundle; each
  // result exactly as IntakeResult does, against the bundle's manifest and
  // the stored task) and only then records every result through
  // IntakeResult. Refused with nothing recorded: not signed by the result
  // key registered for the agent it names, a manifest this control plane
  // did not sign (unknown bundle), a bundle exported to another agent, a
  // result for a task the bundle did not carry, anything tampered with
  // (UNAUTHENTICATED / PERMISSION_DENIED / INVALID_ARGUMENT), and a result
  // bundle whose every result is already recorded (ALREADY_EXISTS: replay).
  absl::StatusOr<writeback::v1::ImportBundleResponse> ImportBundle(absl::string_view caller,
                                                                   absl::string_view file_bytes);

  // ---- Time ----

  // Marks open tasks of decisions past their expiry EXPIRED (using the
  // injected clock) and recomputes those decisions, then wakes the streams
  // of the agents concerned. Returns how many tasks it expired.
  absl::StatusOr<size_t> SweepExpired();

  // Re-verification (controlplane/reverify): marks those of `task_ids`
  // (verify-only tasks of `decision_id`) that are still open and past their
  // own expiry EXPIRED, under the decision's lock (a late result may race
  // with it), and returns the tasks as they are now (missing ones left out).
  absl::StatusOr<std::vector<writeback::v1::TaskRecord>> ExpireVerifyTasks(
      absl::string_view decision_id, const std::vector<std::string>& task_ids);

  // Results refused since start (bad signature, wrong agent, wrong digest...).
  uint64_t rejected_results() const { return rejected_results_.load(); }
  // Tasks an agent refused because its copy did not match what was signed
  // (altered in transit, e.g. by a relay), since start.
  uint64_t altered_deliveries() const { return altered_deliveries_.load(); }
  // Tasks sent again on a live stream after the delivery timeout, since start.
  uint64_t redeliveries() const { return redeliveries_.load(); }

 private:
  struct KnownAgent {
    writeback::v1::AgentRecord record;
    crypto::Ed25519PublicKey result_key;
    int64_t persisted_last_seen_ms = 0;
  };
  // Checks a relayed stream's origin; returns the Hello its agent signed.
  absl::StatusOr<writeback::v1::Hello> CheckRelayed(const StreamOrigin& origin,
                                                    const std::string& agent_id);
  absl::StatusOr<writeback::v1::Welcome> Register(const std::string& agent_id,
                                                  const writeback::v1::Hello& hello,
                                                  const std::vector<std::string>& relay_path);
  struct InstanceRoute {
    std::string agent_id;
    writeback::v1::ConnectorInstanceInfo info;
  };
  // Locks the stripes of several decisions in ascending stripe order (the
  // one order every multi-decision write uses), unlocks on destruction.
  class MultiLock {
   public:
    MultiLock(Dispatcher* d, const std::vector<std::string>& decision_ids);
    ~MultiLock();
    MultiLock(const MultiLock&) = delete;
    MultiLock& operator=(const MultiLock&) = delete;

   private:
    Dispatcher* d_;
    std::vector<int> stripes_;
  };
  // Older decisions' tasks a new decision takes over (coverage.cc).
  struct TakeOver {
    // Decision ids to lock (with the new one) before ApplyTakeOver.
    std::vector<std::string> decisions;
    // Candidate task ids, and why each is covered.
    std::vector<std::pair<std::string, std::string>> tasks;
  };
  // Finds (without locks) the QUEUED tasks in `agent_id`'s outbox of older
  // decisions for the same instance and targets as `newer` whose effect
  // `newer` covers, and the decisions their own covered tasks belong to.
  absl::StatusOr<TakeOver> FindCovered(const std::string& agent_id, const std::string& type,
                                       const writeback::v1::DecisionStatement& newer);
  // With the locks of `take.decisions` held: re-reads the candidates, marks
  // those still QUEUED and not travelling offline SUPERSEDED (covered by the
  // new task for their target, which lists them in `covers`; tasks they
  // covered are re-pointed to it), and returns the older decisions'
  // updates and their audit events.
  absl::StatusOr<std::vector<DecisionUpdate>> ApplyTakeOver(
      const TakeOver& take, const std::string& type, const writeback::v1::DecisionStatement& newer,
      std::vector<writeback::v1::TaskRecord>* new_tasks, int64_t now_ms,
      audit::AuditEvents* events);
  // After `changed` tasks reached new states: the decisions whose covered
  // tasks they cover, recomputed (with `changed` overriding the store), and
  // the covered tasks given back (QUEUED again) when a covering task ended
  // without a result (CANCELED, EXPIRED). The caller holds the locks of
  // CoveredDecisionsOf(changed) and writes the updates with its own.
  absl::StatusOr<std::vector<DecisionUpdate>> FollowCovering(
      const std::vector<writeback::v1::TaskRecord>& changed, absl::string_view actor,
      int64_t now_ms, audit::AuditEvents* events, absl::flat_hash_set<std::string>* wake);
  static std::vector<std::string> CoveredDecisionsOf(
      const std::vector<writeback::v1::TaskRecord>& tasks);
  // Locks `decision_id` and the decisions whose tasks `task_ids` cover
  // (read again under the locks until the set is stable, so a concurrent
  // take-over cannot slip a decision past them).
  std::unique_ptr<MultiLock> LockWithCovered(const std::string& decision_id,
                                             const std::vector<std::string>& task_ids);

  Dispatcher(Store* store, const Clock* clock, crypto::Ed25519PrivateKey key,
             SessionRegistry* sessions, DispatcherOptions opts);

  absl::Mutex& DecisionLock(absl::string_view decision_id);
  std::string NewId(absl::string_view prefix);
  absl::StatusOr<writeback::v1::SubmitDecisionResponse> ResponseFor(absl::string_view decision_id);
  absl::StatusOr<InstanceRoute> RouteFor(absl::string_view instance) const;
  // Signs one task per target of `statement` (whose exact bytes are
  // `statement_bytes`) for `agent_id`.
  // The tasks carry `approvals`.
  std::vector<writeback::v1::TaskRecord> FanOut(
      const writeback::v1::DecisionStatement& statement, const std::string& statement_bytes,
      const google::protobuf::RepeatedPtrField<writeback::v1::Approval>& approvals,
      const std::string& agent_id, int64_t now_ms);
  // Recomputes `decision` from its tasks, with `changed` replacing the stored
  // versions; a covered task counts as the task covering it (whose state is
  // taken from `changed` or `extra` when there, else from the store).
  // Returns true if the decision's state or detail changed. Its task counts
  // are updated from `changed` (their stored heads are the old states, so
  // call it before the write) and read alone unless it has covered tasks:
  // then its tasks are read. Counts missing (stored before they existed,
  // or cleared by a caller that changed task_ids) are counted from all its
  // tasks once.
  absl::StatusOr<bool> Recompute(writeback::v1::DecisionRecord* decision,
                                 const std::vector<writeback::v1::TaskRecord>& changed,
                                 int64_t now_ms,
                                 const std::vector<writeback::v1::TaskRecord>& extra = {});
  // Brings decision->task_counts up to date with `changed` (see Recompute).
  absl::Status UpdateCounts(writeback::v1::DecisionRecord* decision,
                            const std::vector<writeback::v1::TaskRecord>& changed);
  writeback::v1::ResultAck Refuse(
      absl::string_view agent_id, absl::string_view task_id, absl::string_view error,
      writeback::v1::ResultRefusal refusal = writeback::v1::RESULT_REFUSAL_UNSPECIFIED);
  // The task travels in an air-gapped bundle (never sent online). A task
  // that cannot be read counts as offline: it is not sent.
  bool TravelsOffline(absl::string_view task_id);
  // After a result that applied something was recorded for `task_id`, whose
  // bundle had expired and which was re-issued: the re-issue still open
  // (QUEUED) is withdrawn (CANCELED) and `task_id` stands for its target
  // again, so the decision follows the change really made. Returns the
  // withdrawn task id, or "" when nothing changed.
  absl::StatusOr<std::string> AdoptEarlierResult(absl::string_view caller,
                                                 const std::string& decision_id,
                                                 const std::string& task_id);

  Store* const store_;
  const Clock* const clock_;
  const crypto::Ed25519PrivateKey key_;
  SessionRegistry* const sessions_;
  const DispatcherOptions opts_;

  static constexpr int kLockStripes = 256;
  absl::Mutex decision_locks_[kLockStripes];

  // Binding helpers (bindings.cc), dir_mu_ held.
  absl::Status LoadBindings(std::vector<writeback::v1::InstanceBinding> stored)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(dir_mu_);
  // Splits `offered` into served and refused for `agent_id` (by binding).
  void SplitOffer(
      const std::string& agent_id,
      const google::protobuf::RepeatedPtrField<writeback::v1::ConnectorInstanceInfo>& offered,
      writeback::v1::AgentRecord* rec) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(dir_mu_);
  // Makes `binding` current: stores it with `events`, then re-routes the
  // instance (and moves it between the agents' served and refused lists).
  absl::Status CommitBinding(writeback::v1::InstanceBinding binding, audit::AuditEvents events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(dir_mu_);
  writeback::v1::InstanceView InstanceViewOf(const writeback::v1::InstanceBinding& b) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(dir_mu_);

  mutable absl::Mutex dir_mu_;
  absl::flat_hash_map<std::string, KnownAgent> agents_ ABSL_GUARDED_BY(dir_mu_);
  // Bound and offered by the bound agent: where decisions go.
  absl::flat_hash_map<std::string, InstanceRoute> routes_ ABSL_GUARDED_BY(dir_mu_);
  absl::flat_hash_map<std::string, writeback::v1::InstanceBinding> bindings_
      ABSL_GUARDED_BY(dir_mu_);

  // Submits with a request_id in progress (a second submit of the same id
  // waits for the first, then finds its decision).
  absl::Mutex req_mu_;
  absl::flat_hash_set<std::string> requests_in_flight_ ABSL_GUARDED_BY(req_mu_);

  // Connect-proof nonces accepted within their validity window -> when
  // they may be forgotten (a proof replayed by a relay is refused).
  absl::Mutex nonce_mu_;
  absl::flat_hash_map<std::string, int64_t> connect_nonces_ ABSL_GUARDED_BY(nonce_mu_);
  int64_t nonces_pruned_at_ms_ ABSL_GUARDED_BY(nonce_mu_) = 0;

  std::atomic<uint64_t> rejected_results_{0};
  std::atomic<uint64_t> altered_deliveries_{0};
  std::atomic<uint64_t> redeliveries_{0};
};

}  // namespace wb::controlplane
