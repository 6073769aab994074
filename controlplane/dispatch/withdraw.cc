// Tasks that leave an agent's outbox without a result (docs/delivery.md):
// canceled by an operator, or expired (the sweep). Tasks they covered are
// given back (coverage.cc). Part of Dispatcher (dispatcher.h); the submit,
// hello and result paths are in dispatcher.cc.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/audit/chain.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"
#include "controlplane/dispatch/dispatcher.h"

namespace wb::controlplane {

using writeback::v1::DecisionRecord;
using writeback::v1::DecisionStatement;
using writeback::v1::TaskRecord;
using writeback::v1::TaskState;

namespace {

// Decisions handled per store scan of the expiry sweep.
constexpr size_t kSweepBatch = 256;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

}  // namespace

absl::StatusOr<CancelOutcome> Dispatcher::Cancel(absl::string_view requester,
                                                 absl::string_view decision_id) {
  if (decision_id.empty()) return Invalid("decision_id", "required");
  // The decision, and those whose tasks its tasks cover (given back).
  std::unique_ptr<MultiLock> l;
  {
    WB_ASSIGN_OR_RETURN(DecisionRecord peek, store_->GetDecision(decision_id));
    l = LockWithCovered(std::string(decision_id), {peek.task_ids().begin(), peek.task_ids().end()});
  }
  WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(decision_id));
  if (!IsOpenDecisionState(d.state())) {
    return absl::FailedPreconditionError(
        absl::StrCat("decision ", decision_id, " is already finished (",
                     writeback::v1::DecisionState_Name(d.state()), "): nothing to cancel"));
  }
  const int64_t now_ms = clock_->NowUnixMs();
  const writeback::v1::DecisionState old_decision_state = d.state();
  std::vector<TaskRecord> changed;
  std::vector<TaskState> old_states;
  absl::flat_hash_set<std::string> agents;
  for (const std::string& tid : d.task_ids()) {
    WB_ASSIGN_OR_RETURN(TaskRecord t, store_->GetTask(tid));
    // Open tasks, and tasks taken over by a newer decision (they wait for it).
    const bool covered =
        t.state() == writeback::v1::TASK_STATE_SUPERSEDED && !t.covered_by_task_id().empty();
    if (!IsOpenTaskState(t.state()) && !covered) continue;
    old_states.push_back(t.state());
    t.set_state(writeback::v1::TASK_STATE_CANCELED);
    t.set_finished_at_unix_ms(now_ms);
    agents.insert(t.agent_id());
    changed.push_back(std::move(t));
  }
  bool decision_changed = false;
  if (d.task_ids_size() == 0) {  // not dispatched yet (awaiting approval)
    d.set_state(writeback::v1::DECISION_STATE_CANCELED);
    d.set_state_detail("canceled before dispatch");
    d.set_finished_at_unix_ms(now_ms);
    decision_changed = true;
  } else {
    WB_ASSIGN_OR_RETURN(decision_changed, Recompute(&d, changed, now_ms));
  }
  // Audit: who canceled, then the state changes it caused.
  audit::AuditEvents events;
  writeback::v1::AuditEvent canceled =
      audit::NewEvent(writeback::v1::AUDIT_EVENT_KIND_DECISION_CANCELED, requester, now_ms);
  canceled.set_decision_id(std::string(decision_id));
  canceled.set_detail(absl::StrCat(changed.size(), " task(s) withdrawn"));
  events.push_back(std::move(canceled));
  audit::AddStateChanges(requester, now_ms, d, old_decision_state, changed, old_states, &events);
  // Tasks of other decisions that these covered run themselves again.
  absl::flat_hash_set<std::string> wake;
  WB_ASSIGN_OR_RETURN(std::vector<DecisionUpdate> updates,
                      FollowCovering(changed, requester, now_ms, &events, &wake));
  updates.insert(updates.begin(), DecisionUpdate{d, decision_changed, changed});
  WB_RETURN_IF_ERROR(store_->SaveProgressBatch(updates, events));
  for (const std::string& a : wake) agents.insert(a);
  log::Info("decision canceled", {{"decision_id", decision_id},
                                  {"requester", requester},
                                  {"tasks_canceled", absl::StrCat(changed.size())},
                                  {"state", writeback::v1::DecisionState_Name(d.state())}});
  for (const std::string& a : agents) sessions_->Wake(a);
  CancelOutcome out;
  out.tasks_canceled = changed.size();
  out.state = d.state();
  out.state_detail = d.state_detail();
  return out;
}

absl::StatusOr<size_t> Dispatcher::SweepExpired() {
  const int64_t now_ms = clock_->NowUnixMs();
  size_t expired_tasks = 0;
  absl::flat_hash_set<std::string> seen;
  absl::flat_hash_set<std::string> agents_to_wake;
  while (true) {
    WB_ASSIGN_OR_RETURN(std::vector<std::string> ids,
                        store_->ExpiredDecisions(now_ms, kSweepBatch));
    size_t fresh = 0;
    for (const std::string& id : ids) {
      if (!seen.insert(id).second) continue;
      ++fresh;
      std::vector<std::string> task_ids;
      if (auto peek = store_->GetDecision(id); peek.ok() && IsOpenDecisionState(peek->state())) {
        task_ids.assign(peek->task_ids().begin(), peek->task_ids().end());
      }
      auto l = LockWithCovered(id, task_ids);
      WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(id));
      if (!IsOpenDecisionState(d.state())) {
        // Finished but still indexed: rewriting it drops the index entry.
        // No state changes: nothing for the audit chain.
        WB_RETURN_IF_ERROR(store_->SaveProgress(d, true, {}, {}));
        continue;
      }
      if (d.task_ids_size() == 0) {  // never dispatched: waited for approvals
        const writeback::v1::DecisionState old = d.state();
        d.set_state(writeback::v1::DECISION_STATE_EXPIRED);
        d.set_state_detail(absl::StrCat("expired waiting for approvals (", d.state_detail(), ")"));
        d.set_finished_at_unix_ms(now_ms);
        WB_RETURN_IF_ERROR(store_->SaveProgress(
            d, true, {}, {audit::DecisionStateChanged(opts_.controlplane_id, now_ms, d, old)}));
        log::Info("decision expired before approval", {{"decision_id", id}});
        continue;
      }
      const writeback::v1::DecisionState old_decision_state = d.state();
      std::vector<TaskRecord> changed;
      std::vector<TaskState> old_states;
      for (const std::string& tid : d.task_ids()) {
        WB_ASSIGN_OR_RETURN(TaskRecord t, store_->GetTask(tid));
        if (!IsOpenTaskState(t.state())) continue;
        old_states.push_back(t.state());
        t.set_state(writeback::v1::TASK_STATE_EXPIRED);
        t.set_finished_at_unix_ms(now_ms);
        changed.push_back(std::move(t));
      }
      if (changed.empty() && d.state() == old_decision_state) {
        // Only tasks taken over by a newer decision are left: they follow
        // it past this decision's own expiry (coverage.cc).
        continue;
      }
      WB_ASSIGN_OR_RETURN(bool decision_changed, Recompute(&d, changed, now_ms));
      audit::AuditEvents events;
      audit::AddStateChanges(opts_.controlplane_id, now_ms, d, old_decision_state, changed,
                             old_states, &events);
      absl::flat_hash_set<std::string> wake;
      WB_ASSIGN_OR_RETURN(std::vector<DecisionUpdate> updates,
                          FollowCovering(changed, opts_.controlplane_id, now_ms, &events, &wake));
      updates.insert(updates.begin(), DecisionUpdate{d, decision_changed, changed});
      WB_RETURN_IF_ERROR(store_->SaveProgressBatch(updates, events));
      for (const std::string& a : wake) agents_to_wake.insert(a);
      expired_tasks += changed.size();
      for (const TaskRecord& t : changed) {
        agents_to_wake.insert(t.agent_id());
        log::Info("task expired",
                  {{"task_id", t.task_id()}, {"decision_id", id}, {"agent_id", t.agent_id()}});
      }
      log::Info("decision expired", {{"decision_id", id},
                                     {"state", writeback::v1::DecisionState_Name(d.state())},
                                     {"detail", d.state_detail()}});
    }
    if (fresh == 0 || ids.size() < kSweepBatch) break;
  }
  for (const std::string& a : agents_to_wake) sessions_->Wake(a);
  return expired_tasks;
}

absl::StatusOr<std::vector<TaskRecord>> Dispatcher::ExpireVerifyTasks(
    absl::string_view decision_id, const std::vector<std::string>& task_ids) {
  absl::MutexLock l(&DecisionLock(decision_id));
  const int64_t now_ms = clock_->NowUnixMs();
  std::vector<TaskRecord> out, changed;
  std::vector<TaskState> old_states;
  for (const std::string& id : task_ids) {
    auto t = store_->GetTask(id);
    if (!t.ok()) {
      if (t.status().code() == absl::StatusCode::kNotFound) continue;
      return t.status();
    }
    if (t->verify_only() && IsOpenTaskState(t->state())) {
      writeback::v1::Task task;
      if (task.ParseFromString(t->signed_task().payload()) && task.expires_at_unix_ms() < now_ms) {
        old_states.push_back(t->state());
        t->set_state(writeback::v1::TASK_STATE_EXPIRED);
        t->set_finished_at_unix_ms(now_ms);
        changed.push_back(*t);
      }
    }
    out.push_back(*std::move(t));
  }
  if (!changed.empty()) {
    WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(decision_id));
    audit::AuditEvents events;
    audit::AddStateChanges(opts_.controlplane_id, now_ms, d, d.state(), changed, old_states,
                           &events);
    WB_RETURN_IF_ERROR(store_->SaveProgress(d, false, changed, events));
    for (const TaskRecord& t : changed) {
      log::Info(
          "re-verification task expired without an answer",
          {{"task_id", t.task_id()}, {"decision_id", t.decision_id()}, {"agent_id", t.agent_id()}});
    }
  }
  return out;
}

}  // namespace wb::controlplane
