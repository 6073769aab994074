// A decision's state from its tasks' states: the summary rules
// (SummarizeCounts/SummarizeTasks), the per-state counts kept with the
// decision (UpdateCounts) and Recompute, which coverage follows
// (docs/delivery.md, docs/operations.md "Decision states").
#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"
#include "controlplane/dispatch/dispatcher.h"

namespace wb::controlplane {

using writeback::v1::DecisionRecord;
using writeback::v1::TaskRecord;
using writeback::v1::TaskState;

bool CountTask(const writeback::v1::TaskHead& h, int sign, writeback::v1::TaskStateCounts* c) {
  uint32_t (writeback::v1::TaskStateCounts::*get)() const = nullptr;
  void (writeback::v1::TaskStateCounts::*set)(uint32_t) = nullptr;
  switch (h.state()) {
    case writeback::v1::TASK_STATE_APPLIED:
      get = &writeback::v1::TaskStateCounts::applied;
      set = &writeback::v1::TaskStateCounts::set_applied;
      break;
    case writeback::v1::TASK_STATE_VERIFIED:
      get = &writeback::v1::TaskStateCounts::verified;
      set = &writeback::v1::TaskStateCounts::set_verified;
      break;
    case writeback::v1::TASK_STATE_FAILED:
      get = &writeback::v1::TaskStateCounts::failed;
      set = &writeback::v1::TaskStateCounts::set_failed;
      break;
    case writeback::v1::TASK_STATE_REJECTED:
      get = &writeback::v1::TaskStateCounts::rejected;
      set = &writeback::v1::TaskStateCounts::set_rejected;
      break;
    case writeback::v1::TASK_STATE_EXPIRED:
      get = &writeback::v1::TaskStateCounts::expired;
      set = &writeback::v1::TaskStateCounts::set_expired;
      break;
    case writeback::v1::TASK_STATE_CANCELED:
      get = &writeback::v1::TaskStateCounts::canceled;
      set = &writeback::v1::TaskStateCounts::set_canceled;
      break;
    case writeback::v1::TASK_STATE_SUPERSEDED:
      if (h.covered()) {
        get = &writeback::v1::TaskStateCounts::covered;
        set = &writeback::v1::TaskStateCounts::set_covered;
      } else {
        get = &writeback::v1::TaskStateCounts::superseded;
        set = &writeback::v1::TaskStateCounts::set_superseded;
      }
      break;
    default:  // QUEUED, DELIVERED, unknown: no result yet
      get = &writeback::v1::TaskStateCounts::unfinished;
      set = &writeback::v1::TaskStateCounts::set_unfinished;
      break;
  }
  const uint32_t v = (c->*get)();
  if (sign < 0 && v == 0) return false;
  (c->*set)(sign < 0 ? v - 1 : v + 1);
  return true;
}

DecisionSummary SummarizeTasks(const std::vector<TaskState>& states) {
  writeback::v1::TaskStateCounts counts;
  for (TaskState s : states) {
    writeback::v1::TaskHead h;
    h.set_state(s);
    CountTask(h, +1, &counts);
  }
  return SummarizeCounts(counts);
}

DecisionSummary SummarizeCounts(const writeback::v1::TaskStateCounts& c) {
  DecisionSummary out;
  if (c.unfinished() > 0 || c.covered() > 0) return out;  // still dispatched
  const size_t verified = c.verified();
  const size_t expired = c.expired();
  const size_t canceled = c.canceled();
  const size_t superseded = c.superseded();
  const size_t n =
      size_t{c.applied()} + verified + c.failed() + c.rejected() + expired + canceled + superseded;
  if (verified == n) {
    out.state = writeback::v1::DECISION_STATE_VERIFIED;
    out.detail = absl::StrCat(n == 1 ? "the task" : absl::StrCat("all ", n, " tasks"), " verified");
    return out;
  }
  if (expired == n) {
    out.state = writeback::v1::DECISION_STATE_EXPIRED;
    out.detail = absl::StrCat(n, " of ", n, " tasks expired");
    return out;
  }
  // Withdrawn (canceled, superseded) where nothing else went wrong.
  if (canceled + superseded > 0 && verified + canceled + superseded == n) {
    out.state = writeback::v1::DECISION_STATE_CANCELED;
    std::vector<std::string> parts;
    if (canceled > 0) parts.push_back(absl::StrCat(canceled, " of ", n, " tasks canceled"));
    if (superseded > 0) parts.push_back(absl::StrCat(superseded, " of ", n, " tasks superseded"));
    if (verified > 0) parts.push_back(absl::StrCat(verified, " of ", n, " tasks verified"));
    out.detail = absl::StrJoin(parts, ", ");
    return out;
  }
  out.state = writeback::v1::DECISION_STATE_FAILED;
  std::vector<std::string> parts;
  const std::pair<size_t, const char*> kinds[] = {
      {c.applied(), "unverified"}, {c.failed(), "failed"}, {c.rejected(), "rejected"},
      {expired, "expired"},        {canceled, "canceled"}, {superseded, "superseded"},
  };
  for (const auto& [count, word] : kinds) {
    if (count > 0) parts.push_back(absl::StrCat(count, " of ", n, " tasks ", word));
  }
  out.detail = absl::StrJoin(parts, ", ");
  return out;
}

absl::Status Dispatcher::UpdateCounts(DecisionRecord* d, const std::vector<TaskRecord>& changed) {
  auto listed = [&](const TaskRecord& t) {
    if (t.verify_only()) return false;
    // task_ids are in target order (re-issues replace their slot).
    const int i = static_cast<int>(t.target_index());
    if (i < d->task_ids_size() && d->task_ids(i) == t.task_id()) return true;
    return std::find(d->task_ids().begin(), d->task_ids().end(), t.task_id()) !=
           d->task_ids().end();
  };
  if (d->has_task_counts()) {
    writeback::v1::TaskStateCounts counts = d->task_counts();
    absl::flat_hash_set<std::string> seen;
    bool consistent = true;
    // The last value of a task listed twice wins.
    for (auto it = changed.rbegin(); it != changed.rend() && consistent; ++it) {
      if (!listed(*it) || !seen.insert(it->task_id()).second) continue;
      auto old = store_->GetTaskHead(it->task_id());
      if (old.ok()) {
        consistent = CountTask(*old, -1, &counts);
      } else if (old.status().code() != absl::StatusCode::kNotFound) {
        return old.status();
      }
      CountTask(HeadOf(*it), +1, &counts);
    }
    if (consistent) {
      *d->mutable_task_counts() = counts;
      return absl::OkStatus();
    }
    log::Warn("decision task counts disagree with its tasks: counting them again",
              {{"decision_id", d->parsed().decision_id()}});
  }
  // Counted from every task once (records stored before the counts).
  absl::flat_hash_map<std::string, const TaskRecord*> known;
  for (const TaskRecord& t : changed) known[t.task_id()] = &t;
  writeback::v1::TaskStateCounts counts;
  for (const std::string& id : d->task_ids()) {
    if (auto it = known.find(id); it != known.end()) {
      CountTask(HeadOf(*it->second), +1, &counts);
      continue;
    }
    WB_ASSIGN_OR_RETURN(writeback::v1::TaskHead h, store_->GetTaskHead(id));
    CountTask(h, +1, &counts);
  }
  *d->mutable_task_counts() = counts;
  return absl::OkStatus();
}

absl::StatusOr<bool> Dispatcher::Recompute(DecisionRecord* d,
                                           const std::vector<TaskRecord>& changed, int64_t now_ms,
                                           const std::vector<TaskRecord>& extra) {
  // Verify-only tasks (controlplane/reverify) are not among the decision's
  // tasks: their results never recompute it (the re-verification scheduler
  // decides DRIFTED).
  if (!changed.empty() && std::all_of(changed.begin(), changed.end(),
                                      [](const TaskRecord& t) { return t.verify_only(); })) {
    return false;
  }
  WB_RETURN_IF_ERROR(UpdateCounts(d, changed));
  DecisionSummary sum;
  if (d->task_counts().covered() == 0) {
    // The common case: the counts say it all, whatever the decision's size.
    sum = SummarizeCounts(d->task_counts());
  } else {
    // Covered tasks count as the tasks covering them: read them.
    absl::flat_hash_map<std::string, const TaskRecord*> known;
    for (const TaskRecord& t : extra) known[t.task_id()] = &t;
    for (const TaskRecord& t : changed) known[t.task_id()] = &t;
    auto load = [&](const std::string& id) -> absl::StatusOr<TaskRecord> {
      if (auto it = known.find(id); it != known.end()) return *it->second;
      return store_->GetTask(id);
    };
    std::vector<TaskState> states;
    states.reserve(d->task_ids_size());
    std::set<std::string> covering_decisions;
    size_t covered = 0;
    for (const std::string& id : d->task_ids()) {
      WB_ASSIGN_OR_RETURN(TaskRecord t, load(id));
      if (t.state() == writeback::v1::TASK_STATE_SUPERSEDED && !t.covered_by_task_id().empty()) {
        // Counts as the task covering it (following re-issues of bundles and
        // later take-overs, a few hops at most).
        ++covered;
        covering_decisions.insert(t.covered_by_decision_id());
        TaskRecord cur = t;
        for (int hop = 0; hop < 8 && cur.state() == writeback::v1::TASK_STATE_SUPERSEDED; ++hop) {
          const std::string next = !cur.covered_by_task_id().empty() ? cur.covered_by_task_id()
                                                                     : cur.reissued_as_task_id();
          if (next.empty()) break;
          auto n = load(next);
          if (!n.ok()) break;
          cur = *std::move(n);
        }
        TaskState eff = cur.state();
        if (eff == writeback::v1::TASK_STATE_SUPERSEDED ||
            eff == writeback::v1::TASK_STATE_CANCELED || eff == writeback::v1::TASK_STATE_EXPIRED) {
          // Given back (FollowCovering) right after: still waiting meanwhile.
          eff = writeback::v1::TASK_STATE_QUEUED;
        }
        states.push_back(eff);
        continue;
      }
      states.push_back(t.state());
    }
    sum = SummarizeTasks(states);
    if (covered > 0) {
      const std::string by = absl::StrJoin(covering_decisions, ", ");
      const size_t n = static_cast<size_t>(d->task_ids_size());
      if (sum.state == writeback::v1::DECISION_STATE_DISPATCHED) {
        sum.detail = absl::StrCat(covered, " of ", n, " task", n == 1 ? "" : "s",
                                  " covered by decision ", by, ", waiting for it");
      } else {
        absl::StrAppend(&sum.detail, " (", covered, " of ", n, " covered by decision ", by, ")");
      }
    }
  }
  if (sum.state == d->state() && sum.detail == d->state_detail()) return false;
  if (IsOpenDecisionState(d->state()) && !IsOpenDecisionState(sum.state)) {
    d->set_finished_at_unix_ms(now_ms);
  }
  d->set_state(sum.state);
  d->set_state_detail(sum.detail);
  return true;
}

}  // namespace wb::controlplane
