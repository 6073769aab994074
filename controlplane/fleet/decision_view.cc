#include <algorithm>

#include "controlplane/fleet/admin_view.h"
#include "controlplane/reverify/reverifier.h"

namespace wb::controlplane {

using writeback::v1::DecisionRecord;
using writeback::v1::DecisionView;
using writeback::v1::TaskRecord;

DecisionView MakeDecisionView(const DecisionRecord& d, const std::vector<TaskRecord>& tasks,
                              bool with_evidence) {
  DecisionView v;
  *v.mutable_statement() = d.parsed();
  v.set_state(d.state());
  v.set_state_detail(d.state_detail());
  v.set_submitted_at_unix_ms(d.submitted_at_unix_ms());
  v.set_dispatched_at_unix_ms(d.dispatched_at_unix_ms());
  v.set_finished_at_unix_ms(d.finished_at_unix_ms());
  for (const TaskRecord& t : tasks) {
    auto* tv = v.add_tasks();
    tv->set_task_id(t.task_id());
    if (static_cast<int>(t.target_index()) < d.parsed().targets_size()) {
      tv->set_target(d.parsed().targets(t.target_index()).object());
    }
    tv->set_agent_id(t.agent_id());
    tv->set_state(t.state());
    tv->set_delivery_attempts(t.delivery_attempts());
    tv->set_finished_at_unix_ms(t.finished_at_unix_ms());
    tv->set_covered_by_task_id(t.covered_by_task_id());
    tv->set_covered_by_decision_id(t.covered_by_decision_id());
    tv->set_covered_because(t.covered_because());
    if (!t.has_result()) continue;
    const auto& r = t.result();
    tv->set_outcome(r.outcome());
    tv->set_reject_reason(r.reject_reason());
    if (!with_evidence) continue;
    tv->set_message(r.message());
    *tv->mutable_plan() = r.plan();
    *tv->mutable_applied() = r.applied();
    *tv->mutable_verification() = r.verification();
  }
  AddTimeline(d, tasks, &v);
  return v;
}

void AddTimeline(const DecisionRecord& d, const std::vector<TaskRecord>& tasks, DecisionView* v) {
  auto* tl = v->mutable_timeline();
  tl->set_submitted_at_unix_ms(d.submitted_at_unix_ms());
  int64_t approved = 0;
  for (const auto& a : d.approvals()) approved = std::max(approved, a.signed_at_unix_ms());
  tl->set_approved_at_unix_ms(approved);
  tl->set_dispatched_at_unix_ms(d.dispatched_at_unix_ms());
  int64_t delivered = 0, applied = 0;
  for (const TaskRecord& t : tasks) {
    if (t.delivered_at_unix_ms() > 0 && (delivered == 0 || t.delivered_at_unix_ms() < delivered)) {
      delivered = t.delivered_at_unix_ms();
    }
    if (t.has_result()) {
      const auto o = t.result().outcome();
      if (o == writeback::v1::OUTCOME_VERIFIED || o == writeback::v1::OUTCOME_UNVERIFIED ||
          o == writeback::v1::OUTCOME_ALREADY_COMPLIANT) {
        applied = std::max(applied, t.finished_at_unix_ms());
      }
    }
  }
  tl->set_delivered_at_unix_ms(delivered);
  tl->set_applied_at_unix_ms(applied);
  // finished_at is set when the decision left its open states; a DRIFTED
  // decision was VERIFIED then.
  const bool verified = d.state() == writeback::v1::DECISION_STATE_VERIFIED ||
                        d.state() == writeback::v1::DECISION_STATE_DRIFTED ||
                        d.state() == writeback::v1::DECISION_STATE_UNVERIFIABLE ||
                        d.state() == writeback::v1::DECISION_STATE_RETIRED;
  if (verified && d.finished_at_unix_ms() > 0) {
    tl->set_verified_at_unix_ms(d.finished_at_unix_ms());
    if (d.submitted_at_unix_ms() > 0) {
      tl->set_time_to_verified_ms(d.finished_at_unix_ms() - d.submitted_at_unix_ms());
    }
  }
  tl->set_finished_at_unix_ms(d.finished_at_unix_ms());
  tl->set_last_reverify_at_unix_ms(d.last_reverify_at_unix_ms());
  v->set_drifted_at_unix_ms(d.drifted_at_unix_ms());
  v->set_unverifiable_at_unix_ms(d.unverifiable_at_unix_ms());
  *v->mutable_watched_through() = d.watched_through();
  v->set_retired_by(d.retired_by());
  v->set_retired_at_unix_ms(d.retired_at_unix_ms());
  v->set_retired_reason(d.retired_reason());
  v->set_retired_from(d.retired_from());
  v->set_remediated_by(d.remediated_by());
  v->set_remediates(RemediatesFromReason(d.parsed().reason()));
}

absl::Status AddReverifications(Store& store, const DecisionRecord& d, bool with_evidence,
                                DecisionView* v) {
  for (const std::string& id : d.reverify_task_ids()) {
    auto t = store.GetTask(id);
    if (!t.ok()) {
      if (t.status().code() == absl::StatusCode::kNotFound) continue;
      return t.status();
    }
    auto* tv = v->add_reverifications();
    tv->set_task_id(t->task_id());
    if (static_cast<int>(t->target_index()) < d.parsed().targets_size()) {
      tv->set_target(d.parsed().targets(static_cast<int>(t->target_index())).object());
    }
    tv->set_agent_id(t->agent_id());
    tv->set_state(t->state());
    tv->set_delivery_attempts(t->delivery_attempts());
    tv->set_finished_at_unix_ms(t->finished_at_unix_ms());
    if (!t->has_result()) continue;
    tv->set_outcome(t->result().outcome());
    tv->set_reject_reason(t->result().reject_reason());
    tv->set_message(t->result().message());
    if (with_evidence) *tv->mutable_verification() = t->result().verification();
  }
  return absl::OkStatus();
}

}  // namespace wb::controlplane
