// Approvals and the trust policy on the control plane (Dispatcher methods;
// see dispatcher.h and controlplane/approval/trust_gate.h).
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/audit/chain.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"
#include "common/trust/approvals.h"
#include "controlplane/approval/trust_gate.h"
#include "controlplane/dispatch/dispatcher.h"

namespace wb::controlplane {

using writeback::v1::DecisionRecord;
using writeback::v1::DecisionStatement;
using writeback::v1::TaskRecord;

namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

}  // namespace

std::shared_ptr<const trust::VerifiedPolicy> Dispatcher::trust_policy() const {
  return opts_.trust == nullptr ? nullptr : opts_.trust->policy();
}

absl::StatusOr<std::pair<std::shared_ptr<const trust::VerifiedPolicy>, size_t>>
Dispatcher::PublishTrustPolicy(const writeback::v1::SignedEnvelope& env) {
  if (opts_.trust == nullptr) {
    return absl::FailedPreconditionError("this control plane has no trust configuration");
  }
  WB_ASSIGN_OR_RETURN(auto policy, opts_.trust->Publish(env));
  {
    writeback::v1::AuditEvent e =
        audit::NewEvent(writeback::v1::AUDIT_EVENT_KIND_TRUST_POLICY_CHANGED, opts_.controlplane_id,
                        clock_->NowUnixMs());
    e.set_detail(absl::StrCat("trust policy v", policy->version(), " published"));
    e.set_digest(crypto::Sha256(env.payload()));
    if (absl::Status s = store_->AppendAudit({e}); !s.ok()) {
      log::Error("audit: policy change not recorded", {{"error", s.ToString()}});
    }
  }
  const size_t live = sessions_->size();
  sessions_->WakeAll();
  return std::make_pair(std::move(policy), live);
}

void Dispatcher::AddApprovalView(const DecisionRecord& d, writeback::v1::DecisionView* v) const {
  v->set_statement_bytes(d.statement());
  auto policy = trust_policy();
  std::string type;
  {
    absl::MutexLock l(&dir_mu_);
    auto it = routes_.find(d.parsed().connector_instance());
    if (it != routes_.end()) type = it->second.info.type();
  }
  trust::ApprovalCount count;
  if (policy != nullptr) {
    count = trust::CountApprovals(*policy, type, d.statement(), d.parsed(), d.approvals());
    v->set_action_class(count.action_class);
    v->set_approvals_required(count.required);
  }
  AddApprovalViews(policy.get(), count, d.approvals(), v->mutable_approvals());
}

void AddApprovalViews(const trust::VerifiedPolicy* policy, const trust::ApprovalCount& count,
                      const google::protobuf::RepeatedPtrField<writeback::v1::Approval>& approvals,
                      google::protobuf::RepeatedPtrField<writeback::v1::ApprovalView>* out) {
  for (int i = 0; i < approvals.size(); ++i) {
    const auto& a = approvals.Get(i);
    auto* av = out->Add();
    av->set_approver_key_id(a.approver_key_id());
    av->set_signed_at_unix_ms(a.signed_at_unix_ms());
    if (policy == nullptr) continue;
    if (const trust::Approver* who = policy->FindApprover(a.approver_key_id()); who != nullptr) {
      av->set_approver_name(who->name);
      av->set_approver_identity(who->identity);
    }
    const size_t k = static_cast<size_t>(i);
    const std::string problem = k < count.problems.size() ? count.problems[k] : "";
    av->set_counts(problem.empty());
    av->set_problem(problem);
  }
}

absl::StatusOr<ApproveOutcome> Dispatcher::Approve(absl::string_view caller,
                                                   absl::string_view decision_id,
                                                   const writeback::v1::Approval& approval) {
  if (decision_id.empty()) return Invalid("decision_id", "required");
  auto policy = trust_policy();
  if (opts_.trust == nullptr || !opts_.trust->root_pinned() || policy == nullptr) {
    return absl::FailedPreconditionError(
        "no trust policy is in force: decisions need no approvals here");
  }
  // Read once without the lock to find, when this approval would dispatch
  // the decision, the older decisions' tasks it takes over (their
  // decisions are locked with it); everything is checked again under the
  // locks.
  TakeOver take;
  {
    WB_ASSIGN_OR_RETURN(DecisionRecord peek, store_->GetDecision(decision_id));
    auto route = RouteFor(peek.parsed().connector_instance());
    if (route.ok() && peek.state() == writeback::v1::DECISION_STATE_PENDING_APPROVAL) {
      google::protobuf::RepeatedPtrField<writeback::v1::Approval> all = peek.approvals();
      *all.Add() = approval;
      if (trust::CountApprovals(*policy, route->info.type(), peek.statement(), peek.parsed(), all)
              .satisfied()) {
        auto found = FindCovered(route->agent_id, route->info.type(), peek.parsed());
        if (found.ok()) take = *std::move(found);
      }
    }
  }
  std::vector<std::string> lock_ids = take.decisions;
  lock_ids.emplace_back(decision_id);
  MultiLock l(this, lock_ids);
  WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(decision_id));
  if (d.state() != writeback::v1::DECISION_STATE_PENDING_APPROVAL) {
    return absl::FailedPreconditionError(absl::StrCat("decision ", decision_id, " is ",
                                                      writeback::v1::DecisionState_Name(d.state()),
                                                      ", not waiting for approval"));
  }
  const int64_t now_ms = clock_->NowUnixMs();
  const DecisionStatement& st = d.parsed();
  if (st.expires_at_unix_ms() > 0 && now_ms > st.expires_at_unix_ms()) {
    return absl::FailedPreconditionError(absl::StrCat("decision ", decision_id, " has expired"));
  }
  WB_ASSIGN_OR_RETURN(InstanceRoute route, RouteFor(st.connector_instance()));
  if (!st.agent_id().empty() && st.agent_id() != route.agent_id) {
    // Approvers sign the agent; an approved decision is never rerouted.
    return absl::FailedPreconditionError(
        absl::StrCat("decision ", decision_id, " was made for agent ", st.agent_id(),
                     ", but instance '", st.connector_instance(), "' is now bound to ",
                     route.agent_id, ": submit the decision again for the new agent"));
  }
  google::protobuf::RepeatedPtrField<writeback::v1::Approval> all = d.approvals();
  *all.Add() = approval;
  trust::ApprovalCount count =
      trust::CountApprovals(*policy, route.info.type(), d.statement(), st, all);
  if (!count.problems.back().empty()) {
    return Invalid("approval", count.problems.back());
  }
  *d.add_approvals() = approval;
  ApproveOutcome out;
  out.approvals = count.valid;
  out.required = count.required;
  std::vector<TaskRecord> tasks;
  std::vector<DecisionUpdate> updates;
  audit::AuditEvents taken_over;
  if (count.satisfied()) {
    tasks = FanOut(st, d.statement(), d.approvals(), route.agent_id, now_ms);
    WB_ASSIGN_OR_RETURN(updates,
                        ApplyTakeOver(take, route.info.type(), st, &tasks, now_ms, &taken_over));
    d.set_state(writeback::v1::DECISION_STATE_DISPATCHED);
    d.set_state_detail("");
    d.set_dispatched_at_unix_ms(now_ms);
    for (const TaskRecord& t : tasks) d.add_task_ids(t.task_id());
    d.mutable_task_counts()->set_unfinished(static_cast<uint32_t>(tasks.size()));
  } else {
    d.set_state_detail(absl::StrCat(count.valid, " of ", count.required, " approvals"));
  }
  audit::AuditEvents events;
  events.push_back(audit::DecisionApproved(caller, now_ms, decision_id, approval.approver_key_id(),
                                           approval.statement_digest()));
  if (d.state() != writeback::v1::DECISION_STATE_PENDING_APPROVAL) {
    events.push_back(audit::DecisionStateChanged(opts_.controlplane_id, now_ms, d,
                                                 writeback::v1::DECISION_STATE_PENDING_APPROVAL));
  }
  for (const TaskRecord& t : tasks) {
    events.push_back(audit::TaskDispatched(opts_.controlplane_id, now_ms, t));
  }
  for (auto& e : taken_over) events.push_back(std::move(e));
  updates.insert(updates.begin(), DecisionUpdate{d, true, tasks});
  WB_RETURN_IF_ERROR(store_->SaveProgressBatch(updates, events));
  out.state = d.state();
  const trust::Approver* who = policy->FindApprover(approval.approver_key_id());
  log::Info("decision approved", {{"decision_id", std::string(decision_id)},
                                  {"approver", who != nullptr ? who->name : ""},
                                  {"caller", caller},
                                  {"approvals", absl::StrCat(count.valid)},
                                  {"required", absl::StrCat(count.required)}});
  if (!tasks.empty()) {
    log::Info("decision dispatched", {{"decision_id", st.decision_id()},
                                      {"tasks", absl::StrCat(tasks.size())},
                                      {"tasks_taken_over", absl::StrCat(updates.size() - 1)},
                                      {"agent_id", route.agent_id}});
    sessions_->Wake(route.agent_id);
  }
  return out;
}

}  // namespace wb::controlplane
