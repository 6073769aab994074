// Overlapping decisions on one target (docs/delivery.md "Overlapping
// decisions"): a newer decision takes over an older one's undelivered
// tasks only when its effect provably contains theirs
// (common/actions/coverage.h); covered tasks count as their covering task
// counts. Part of Dispatcher (dispatcher.h).
#include "common/actions/coverage.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

// The instance and object of a task record (copies, or from the signed task
// for records written before the copies existed).
std::pair<std::string, std::string> TargetOf(const TaskRecord& t) {
  if (!t.connector_instance().empty()) return {t.connector_instance(), t.object()};
  writeback::v1::Task task;
  if (!task.ParseFromString(t.signed_task().payload())) return {"", ""};
  return {task.connector_instance(), task.target().object()};
}

}  // namespace

Dispatcher::MultiLock::MultiLock(Dispatcher* d, const std::vector<std::string>& decision_ids)
    : d_(d) {
  for (const std::string& id : decision_ids) {
    stripes_.push_back(static_cast<int>(absl::HashOf(absl::string_view(id)) % kLockStripes));
  }
  std::sort(stripes_.begin(), stripes_.end());
  stripes_.erase(std::unique(stripes_.begin(), stripes_.end()), stripes_.end());
  for (int s : stripes_) d_->decision_locks_[s].Lock();
}

Dispatcher::MultiLock::~MultiLock() {
  for (auto it = stripes_.rbegin(); it != stripes_.rend(); ++it) d_->decision_locks_[*it].Unlock();
}

std::vector<std::string> Dispatcher::CoveredDecisionsOf(const std::vector<TaskRecord>& tasks) {
  std::vector<std::string> out;
  for (const TaskRecord& t : tasks) {
    for (const auto& c : t.covers()) out.push_back(c.decision_id());
  }
  return out;
}

std::unique_ptr<Dispatcher::MultiLock> Dispatcher::LockWithCovered(
    const std::string& decision_id, const std::vector<std::string>& task_ids) {
  auto covered = [&] {
    std::vector<std::string> out;
    for (const std::string& id : task_ids) {
      auto t = store_->GetTask(id);
      if (!t.ok()) continue;
      for (const auto& c : t->covers()) out.push_back(c.decision_id());
    }
    return out;
  };
  std::vector<std::string> ids = covered();
  ids.push_back(decision_id);
  auto lock = std::make_unique<MultiLock>(this, ids);
  // A take-over of one of these tasks moves its covers under the lock of
  // the task's decision, which is held now: one more read settles it.
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::vector<std::string> now = covered();
    if (std::all_of(now.begin(), now.end(), [&](const std::string& id) {
          return std::find(ids.begin(), ids.end(), id) != ids.end();
        })) {
      break;
    }
    lock.reset();
    ids = std::move(now);
    ids.push_back(decision_id);
    lock = std::make_unique<MultiLock>(this, ids);
  }
  return lock;
}

absl::StatusOr<Dispatcher::TakeOver> Dispatcher::FindCovered(const std::string& agent_id,
                                                             const std::string& type,
                                                             const DecisionStatement& newer) {
  TakeOver out;
  absl::flat_hash_set<std::string> objects;
  for (const auto& t : newer.targets()) objects.insert(t.object());
  // Candidates: QUEUED tasks of older decisions in the same agent's outbox
  // for the same instance and object. Linear in the outbox's length.
  std::vector<std::string> ids;
  WB_RETURN_IF_ERROR(store_
                         ->PeekOutbox(agent_id, 1,
                                      [&](absl::string_view id) {
                                        ids.emplace_back(id);
                                        return true;  // collect all, return none
                                      })
                         .status());
  absl::flat_hash_map<std::string, std::optional<DecisionStatement>> statements;
  absl::flat_hash_set<std::string> decisions;
  const writeback::v1::ActionParams& np = newer.params();
  for (const std::string& id : ids) {
    auto t = store_->GetTask(id);
    if (!t.ok()) continue;
    if (t->decision_id() == newer.decision_id() || t->verify_only() ||
        t->state() != writeback::v1::TASK_STATE_QUEUED || !t->bundle_id().empty()) {
      continue;
    }
    auto [instance, object] = TargetOf(*t);
    if (instance != newer.connector_instance() || !objects.contains(object)) continue;
    auto& st = statements[t->decision_id()];
    if (!st.has_value()) {
      auto d = store_->GetDecision(t->decision_id());
      if (!d.ok()) continue;
      st = d->parsed();
    }
    if (st->version() >= newer.version()) continue;
    std::optional<std::string> why =
        actions::Covers(type, {newer.operation(), np}, {st->operation(), st->params()});
    if (!why.has_value()) continue;  // both run, in submit order
    out.tasks.emplace_back(id, *why);
    decisions.insert(t->decision_id());
    for (const auto& c : t->covers()) decisions.insert(c.decision_id());
  }
  out.decisions.assign(decisions.begin(), decisions.end());
  return out;
}

absl::StatusOr<std::vector<DecisionUpdate>> Dispatcher::ApplyTakeOver(
    const TakeOver& take, const std::string& type, const DecisionStatement& newer,
    std::vector<TaskRecord>* new_tasks, int64_t now_ms, audit::AuditEvents* events) {
  (void)type;
  std::vector<DecisionUpdate> out;
  if (take.tasks.empty()) return out;
  absl::flat_hash_map<std::string, size_t> by_object;
  for (size_t i = 0; i < new_tasks->size(); ++i) {
    by_object[newer.targets(static_cast<int>((*new_tasks)[i].target_index())).object()] = i;
  }
  std::map<std::string, DecisionUpdate> updates;  // by decision id
  std::map<std::string, std::vector<TaskState>> old_states;
  auto update_for = [&](const std::string& decision_id) -> absl::StatusOr<DecisionUpdate*> {
    auto it = updates.find(decision_id);
    if (it != updates.end()) return &it->second;
    WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(decision_id));
    DecisionUpdate u;
    u.decision = std::move(d);
    return &updates.emplace(decision_id, std::move(u)).first->second;
  };
  for (const auto& [id, because] : take.tasks) {
    WB_ASSIGN_OR_RETURN(TaskRecord t, store_->GetTask(id));
    if (t.state() != writeback::v1::TASK_STATE_QUEUED || !t.bundle_id().empty()) continue;
    auto idx = by_object.find(TargetOf(t).second);
    if (idx == by_object.end()) continue;
    TaskRecord& cover = (*new_tasks)[idx->second];
    t.set_state(writeback::v1::TASK_STATE_SUPERSEDED);
    t.set_finished_at_unix_ms(now_ms);
    t.set_covered_by_task_id(cover.task_id());
    t.set_covered_by_decision_id(newer.decision_id());
    t.set_covered_because(because);
    auto* c = cover.add_covers();
    c->set_task_id(t.task_id());
    c->set_decision_id(t.decision_id());
    // What this task covered is covered by the new task now (coverage is
    // transitive: the newer effect contains this one, which contains those).
    for (const auto& prev : t.covers()) {
      auto ct = store_->GetTask(prev.task_id());
      if (!ct.ok() || ct->state() != writeback::v1::TASK_STATE_SUPERSEDED ||
          ct->covered_by_task_id() != t.task_id()) {
        continue;
      }
      ct->set_covered_by_task_id(cover.task_id());
      ct->set_covered_by_decision_id(newer.decision_id());
      WB_ASSIGN_OR_RETURN(DecisionUpdate * u, update_for(ct->decision_id()));
      u->tasks.push_back(*ct);
      old_states[ct->decision_id()].push_back(writeback::v1::TASK_STATE_SUPERSEDED);
      *cover.add_covers() = prev;
    }
    t.clear_covers();
    WB_ASSIGN_OR_RETURN(DecisionUpdate * u, update_for(t.decision_id()));
    u->tasks.push_back(std::move(t));
    old_states[u->decision.parsed().decision_id()].push_back(writeback::v1::TASK_STATE_QUEUED);
  }
  for (auto& [decision_id, u] : updates) {
    const writeback::v1::DecisionState old_state = u.decision.state();
    WB_ASSIGN_OR_RETURN(u.decision_changed, Recompute(&u.decision, u.tasks, now_ms, *new_tasks));
    const size_t first = events->size();
    audit::AddStateChanges(opts_.controlplane_id, now_ms, u.decision, old_state, u.tasks,
                           old_states[decision_id], events);
    for (size_t i = first; i < events->size(); ++i) {
      auto& e = (*events)[i];
      if (e.detail().empty()) {
        e.set_detail(absl::StrCat("covered by decision ", newer.decision_id()));
      }
    }
    for (const TaskRecord& t : u.tasks) {
      log::Info("task taken over by a newer decision that covers it",
                {{"task_id", t.task_id()},
                 {"decision_id", decision_id},
                 {"by_task_id", t.covered_by_task_id()},
                 {"by_decision_id", newer.decision_id()},
                 {"because", t.covered_because()}});
    }
    out.push_back(std::move(u));
  }
  return out;
}

absl::StatusOr<std::vector<DecisionUpdate>> Dispatcher::FollowCovering(
    const std::vector<TaskRecord>& changed, absl::string_view actor, int64_t now_ms,
    audit::AuditEvents* events, absl::flat_hash_set<std::string>* wake) {
  std::map<std::string, DecisionUpdate> updates;
  std::map<std::string, std::vector<TaskState>> old_states;
  absl::flat_hash_set<std::string> own;  // decisions of `changed`: the caller writes those
  for (const TaskRecord& t : changed) own.insert(t.decision_id());
  for (const TaskRecord& t : changed) {
    if (t.covers_size() == 0 || IsOpenTaskState(t.state()) ||
        t.state() == writeback::v1::TASK_STATE_SUPERSEDED) {
      continue;
    }
    // Ended without touching the target: the covered tasks run themselves.
    const bool give_back =
        !t.has_signed_result() && (t.state() == writeback::v1::TASK_STATE_CANCELED ||
                                   t.state() == writeback::v1::TASK_STATE_EXPIRED);
    for (const auto& c : t.covers()) {
      if (own.contains(c.decision_id())) continue;  // never: a decision does not cover itself
      auto it = updates.find(c.decision_id());
      if (it == updates.end()) {
        WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(c.decision_id()));
        DecisionUpdate u;
        u.decision = std::move(d);
        it = updates.emplace(c.decision_id(), std::move(u)).first;
      }
      if (!give_back) continue;
      WB_ASSIGN_OR_RETURN(TaskRecord ct, store_->GetTask(c.task_id()));
      if (ct.state() != writeback::v1::TASK_STATE_SUPERSEDED ||
          ct.covered_by_task_id() != t.task_id()) {
        continue;
      }
      const bool expired = it->second.decision.parsed().expires_at_unix_ms() > 0 &&
                           now_ms > it->second.decision.parsed().expires_at_unix_ms();
      ct.set_state(expired ? writeback::v1::TASK_STATE_EXPIRED : writeback::v1::TASK_STATE_QUEUED);
      if (!expired) ct.set_finished_at_unix_ms(0);
      ct.clear_covered_by_task_id();
      ct.clear_covered_by_decision_id();
      ct.clear_covered_because();
      if (!expired) wake->insert(ct.agent_id());
      log::Info(expired ? "covered task expired with its covering task"
                        : "covered task given back: its covering task ended without a result",
                {{"task_id", ct.task_id()},
                 {"decision_id", ct.decision_id()},
                 {"covering_task_id", t.task_id()},
                 {"covering_state", writeback::v1::TaskState_Name(t.state())}});
      it->second.tasks.push_back(std::move(ct));
      old_states[c.decision_id()].push_back(writeback::v1::TASK_STATE_SUPERSEDED);
    }
  }
  std::vector<DecisionUpdate> out;
  for (auto& [decision_id, u] : updates) {
    // Only open decisions follow their covering tasks; a finished one (an
    // operator canceled it, its covered tasks with it) keeps its truth.
    if (u.tasks.empty() && !IsOpenDecisionState(u.decision.state())) continue;
    const writeback::v1::DecisionState old_state = u.decision.state();
    WB_ASSIGN_OR_RETURN(u.decision_changed, Recompute(&u.decision, u.tasks, now_ms, changed));
    if (!u.decision_changed && u.tasks.empty()) continue;
    audit::AddStateChanges(actor, now_ms, u.decision, old_state, u.tasks, old_states[decision_id],
                           events);
    if (u.decision_changed && !IsOpenDecisionState(u.decision.state())) {
      log::Info("decision finished with the decision covering it",
                {{"decision_id", decision_id},
                 {"state", writeback::v1::DecisionState_Name(u.decision.state())},
                 {"detail", u.decision.state_detail()}});
    }
    out.push_back(std::move(u));
  }
  return out;
}

}  // namespace wb::controlplane
