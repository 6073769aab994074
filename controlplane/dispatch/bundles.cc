// Air-gapped bundles on the control plane (docs/networks.md "Air-gapped
// sites"). Part of Dispatcher (dispatcher.h): ExportBundle re-signs an
// agent's queued tasks for the trip and marks them as travelling offline;
// ImportBundle checks a result bundle in full and then records each result
// through IntakeResult, the online stream's intake.
//
// When a bundle expires on the way, its tasks stay open here (a bundle
// task's own expiry is the trip's end, the decision's is unchanged): the
// next export re-issues them under new task ids, because the agent may have
// journaled the old ids (as refused: EXPIRED) and never runs an id twice.
// A result of the old bundle is still taken when it comes back: one that
// applied something is evidence and is stored on the old task; a refusal
// that applied nothing (EXPIRED) for a task that can still be re-issued is
// reported and not recorded, so it does not close the task.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/audit/chain.h"
#include "common/bundle/bundle.h"
#include "common/envelope/envelope.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"
#include "controlplane/dispatch/dispatcher.h"

namespace wb::controlplane {

using writeback::v1::BundleTaskView;
using writeback::v1::DecisionRecord;
using writeback::v1::TaskRecord;

namespace {

std::string TimeText(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

BundleTaskView ViewOf(const TaskRecord& t, const writeback::v1::Task& task) {
  BundleTaskView v;
  v.set_task_id(t.task_id());
  v.set_decision_id(t.decision_id());
  v.set_connector_instance(task.connector_instance());
  v.set_operation(task.operation());
  v.set_target(task.target().object());
  v.set_expires_at_unix_ms(task.expires_at_unix_ms());
  v.set_reissue_of_task_id(t.reissue_of_task_id());
  return v;
}

BundleTaskView Skipped(const TaskRecord& t, std::string why) {
  BundleTaskView v;
  writeback::v1::Task task;
  if (task.ParseFromString(t.signed_task().payload())) v = ViewOf(t, task);
  v.set_task_id(t.task_id());
  v.set_decision_id(t.decision_id());
  v.set_detail(std::move(why));
  return v;
}

// Replaces `from` by `to` in the decision's task lists.
void ReplaceTaskId(DecisionRecord* d, const std::string& from, const std::string& to) {
  for (auto* list : {d->mutable_task_ids(), d->mutable_reverify_task_ids()}) {
    for (std::string& id : *list) {
      if (id == from) id = to;
    }
  }
}

}  // namespace

bool Dispatcher::TravelsOffline(absl::string_view task_id) {
  auto h = store_->GetTaskHead(task_id);  // never the whole record
  if (!h.ok()) return h.status().code() != absl::StatusCode::kNotFound;
  return h->offline();
}

absl::StatusOr<writeback::v1::ExportBundleResponse> Dispatcher::ExportBundle(
    absl::string_view caller, absl::string_view agent_id, uint32_t trip_seconds) {
  {
    absl::MutexLock l(&dir_mu_);
    auto it = agents_.find(agent_id);
    if (it == agents_.end()) {
      return absl::NotFoundError(
          absl::StrCat("agent_id: agent ", agent_id,
                       " is not known to this control plane (it must enrol or connect once)"));
    }
    if (it->second.record.banned()) {
      return absl::FailedPreconditionError(absl::StrCat("agent ", agent_id, " is banned"));
    }
  }
  const uint32_t trip = trip_seconds == 0 ? opts_.bundle_default_trip_seconds : trip_seconds;
  if (trip < kMinTtlSeconds || trip > opts_.bundle_max_trip_seconds) {
    return absl::InvalidArgumentError(
        absl::StrCat("trip_seconds: must be 0 (default ", opts_.bundle_default_trip_seconds,
                     ") or between ", kMinTtlSeconds, " and ", opts_.bundle_max_trip_seconds));
  }
  const int64_t now_ms = clock_->NowUnixMs();
  const int64_t trip_end_ms = now_ms + int64_t{trip} * 1000;
  const std::string bundle_id = NewId("b-");
  const std::string agent(agent_id);
  writeback::v1::ExportBundleResponse resp;

  // Candidates, in outbox order.
  std::vector<std::string> ids;
  WB_RETURN_IF_ERROR(store_
                         ->PeekOutbox(agent, 1,
                                      [&](absl::string_view id) {
                                        ids.emplace_back(id);
                                        return true;  // collect all, return none
                                      })
                         .status());
  // While the agent is connected its stream may hold the first
  // max_in_flight queued tasks (sent, not yet acknowledged): leave those to
  // it.
  size_t live_window = sessions_->ConnectedSince(agent).has_value() ? opts_.max_in_flight : 0;
  std::vector<std::string> decision_order;
  absl::flat_hash_map<std::string, std::vector<std::string>> by_decision;
  for (const std::string& id : ids) {
    auto t = store_->GetTask(id);
    if (!t.ok()) continue;
    if (!IsOpenTaskState(t->state())) continue;
    if (t->state() == writeback::v1::TASK_STATE_DELIVERED) {
      *resp.add_skipped() =
          Skipped(*t, "delivered online: the agent journaled it; its result comes over its stream");
      continue;
    }
    if (!t->bundle_id().empty()) {
      if (now_ms < t->bundle_expires_at_unix_ms()) {
        *resp.add_skipped() =
            Skipped(*t, absl::StrCat("travelling in bundle ", t->bundle_id(), " until ",
                                     TimeText(t->bundle_expires_at_unix_ms())));
        continue;
      }
    } else if (live_window > 0) {
      --live_window;
      *resp.add_skipped() = Skipped(*t, "may be in flight on the agent's live stream");
      continue;
    }
    auto [it, fresh] = by_decision.try_emplace(t->decision_id());
    if (fresh) decision_order.push_back(t->decision_id());
    it->second.push_back(id);
  }

  writeback::v1::BundleManifest manifest;
  std::vector<writeback::v1::SignedEnvelope> signed_tasks;
  std::vector<std::string> statements;  // named by digest, each once
  size_t bytes = 0;
  for (const std::string& decision_id : decision_order) {
    absl::MutexLock l(&DecisionLock(decision_id));
    WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(decision_id));
    const int64_t statement_end = d.parsed().expires_at_unix_ms();
    bool statement_carried = false;
    std::vector<TaskRecord> changed;
    std::vector<writeback::v1::TaskState> old_states;
    audit::AuditEvents events;
    bool decision_changed = false;
    for (const std::string& id : by_decision[decision_id]) {
      WB_ASSIGN_OR_RETURN(TaskRecord t, store_->GetTask(id));
      if (t.state() != writeback::v1::TASK_STATE_QUEUED) continue;  // changed meanwhile
      if (!t.bundle_id().empty() && now_ms < t.bundle_expires_at_unix_ms()) {
        // Exported meanwhile by a concurrent export.
        *resp.add_skipped() = Skipped(t, absl::StrCat("travelling in bundle ", t.bundle_id()));
        continue;
      }
      if (!IsOpenDecisionState(d.state()) || statement_end <= now_ms) {
        *resp.add_skipped() = Skipped(t, "the decision expired");
        continue;
      }
      const size_t statement_bytes =
          !t.statement_digest().empty() && !statement_carried ? d.statement().size() : 0;
      if (manifest.entries_size() >= bundle::kMaxTasks ||
          bytes + t.signed_task().ByteSizeLong() + statement_bytes + 256 > bundle::kMaxFileBytes) {
        *resp.add_skipped() = Skipped(t, "the bundle is full: export again for the rest");
        continue;
      }
      writeback::v1::Task task;
      if (!task.ParseFromString(t.signed_task().payload())) {
        return absl::DataLossError(absl::StrCat("store: task ", id, ": signed task unreadable"));
      }
      const bool reissue = !t.bundle_id().empty();
      const int64_t expires_ms = std::min(trip_end_ms, statement_end);
      task.set_issued_at_unix_ms(now_ms);
      task.set_not_before_unix_ms(now_ms);
      task.set_expires_at_unix_ms(expires_ms);
      task.set_dispatch_key_id(key_.key_id());
      TaskRecord out = t;
      if (reissue) {
        // The agent may have journaled the old id: a new one.
        task.set_task_id(NewId("t-"));
        TaskRecord old = t;
        old.set_state(writeback::v1::TASK_STATE_SUPERSEDED);
        old.set_reissued_as_task_id(task.task_id());
        old.set_finished_at_unix_ms(now_ms);
        changed.push_back(old);  // before the new one: they share an outbox slot
        old_states.push_back(t.state());
        out.set_task_id(task.task_id());
        out.set_queued_at_unix_ms(now_ms);
        out.set_delivered_at_unix_ms(0);
        out.set_delivery_attempts(0);
        out.set_reissue_of_task_id(t.task_id());
        out.clear_reissued_as_task_id();
        ReplaceTaskId(&d, t.task_id(), task.task_id());
        decision_changed = true;
      }
      // Serialized once; these exact bytes are signed, stored and carried.
      *out.mutable_signed_task() =
          envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, task.SerializeAsString(), key_);
      out.set_bundle_id(bundle_id);
      out.set_bundle_expires_at_unix_ms(expires_ms);
      changed.push_back(out);
      old_states.push_back(out.state());
      BundleTaskView v = ViewOf(out, task);
      if (statement_end < trip_end_ms) {
        v.set_detail(absl::StrCat("expiry shortened to the decision's own expiry (",
                                  TimeText(statement_end), ")"));
      }
      *resp.add_tasks() = std::move(v);
      auto* entry = manifest.add_entries();
      entry->set_task_id(out.task_id());
      entry->set_task_digest(bundle::PayloadDigest(out.signed_task()));
      bytes += out.signed_task().ByteSizeLong() + 64;
      if (statement_bytes > 0) {
        statements.push_back(d.statement());
        statement_carried = true;
        bytes += statement_bytes + 8;
      }
      signed_tasks.push_back(out.signed_task());
      writeback::v1::AuditEvent ev =
          audit::NewEvent(writeback::v1::AUDIT_EVENT_KIND_BUNDLE_EXPORTED, caller, now_ms);
      ev.set_decision_id(decision_id);
      ev.set_task_id(out.task_id());
      ev.set_agent_id(agent);
      ev.set_digest(entry->task_digest());
      ev.set_detail(absl::StrCat("bundle ", bundle_id, ", expires ", TimeText(expires_ms),
                                 reissue ? absl::StrCat(", re-issues ", t.task_id()) : ""));
      events.push_back(std::move(ev));
    }
    if (changed.empty()) continue;
    audit::AddStateChanges(caller, now_ms, d, d.state(), changed, old_states, &events);
    WB_RETURN_IF_ERROR(store_->SaveProgress(d, decision_changed, changed, events));
  }
  if (manifest.entries_size() == 0) {
    std::string why;
    if (resp.skipped_size() > 0) {
      why = absl::StrCat(
          " (", resp.skipped_size(), " open task", resp.skipped_size() == 1 ? "" : "s",
          " skipped; first: ", resp.skipped(0).task_id(), ": ", resp.skipped(0).detail(), ")");
    }
    return absl::FailedPreconditionError(
        absl::StrCat("agent ", agent, " has no queued tasks to export", why));
  }

  manifest.set_bundle_id(bundle_id);
  manifest.set_agent_id(agent);
  manifest.set_controlplane_id(opts_.controlplane_id);
  manifest.set_created_at_unix_ms(now_ms);
  int64_t latest = 0;
  for (const auto& v : resp.tasks()) latest = std::max(latest, v.expires_at_unix_ms());
  manifest.set_expires_at_unix_ms(latest);
  const writeback::v1::SignedEnvelope signed_manifest = envelope::Sign(
      writeback::v1::PAYLOAD_TYPE_BUNDLE_MANIFEST, manifest.SerializeAsString(), key_);
  writeback::v1::AuditEvent ev =
      audit::NewEvent(writeback::v1::AUDIT_EVENT_KIND_BUNDLE_EXPORTED, caller, now_ms);
  ev.set_agent_id(agent);
  ev.set_digest(bundle::PayloadDigest(signed_manifest));
  ev.set_detail(absl::StrCat("bundle ", bundle_id, ": ", manifest.entries_size(),
                             " tasks, expires ", TimeText(latest)));
  WB_RETURN_IF_ERROR(store_->AppendAudit({ev}));

  resp.set_bundle_id(bundle_id);
  resp.set_agent_id(agent);
  resp.set_expires_at_unix_ms(latest);
  resp.set_manifest_digest(bundle::PayloadDigest(signed_manifest));
  resp.set_bundle_file(
      bundle::MakeTaskBundle(signed_manifest, std::move(signed_tasks), std::move(statements))
          .SerializeAsString());
  log::Info("bundle exported", {{"bundle_id", bundle_id},
                                {"agent_id", agent},
                                {"by", caller},
                                {"tasks", absl::StrCat(manifest.entries_size())},
                                {"skipped", absl::StrCat(resp.skipped_size())},
                                {"expires_at", TimeText(latest)}});
  return resp;
}

absl::StatusOr<std::string> Dispatcher::AdoptEarlierResult(absl::string_view caller,
                                                           const std::string& decision_id,
                                                           const std::string& task_id) {
  absl::MutexLock l(&DecisionLock(decision_id));
  WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(decision_id));
  WB_ASSIGN_OR_RETURN(TaskRecord old, store_->GetTask(task_id));
  if (old.reissued_as_task_id().empty() || !old.has_signed_result() ||
      old.result().outcome() == writeback::v1::OUTCOME_REJECTED) {
    return std::string();
  }
  auto listed = [&](const std::string& id) {
    for (const auto* list : {&d.task_ids(), &d.reverify_task_ids()}) {
      if (std::find(list->begin(), list->end(), id) != list->end()) return true;
    }
    return false;
  };
  // The task that stands for this target now (re-issues may chain).
  std::string cur = old.reissued_as_task_id();
  TaskRecord succ;
  for (int hops = 0; !cur.empty() && hops < 100; ++hops) {
    WB_ASSIGN_OR_RETURN(succ, store_->GetTask(cur));
    if (listed(cur)) break;
    cur = succ.reissued_as_task_id();
  }
  // Without a current re-issue, or one that has its own result: unchanged.
  if (cur.empty() || !listed(cur) || !IsOpenTaskState(succ.state())) return std::string();
  const int64_t now_ms = clock_->NowUnixMs();
  const writeback::v1::TaskState succ_old_state = succ.state();
  const writeback::v1::DecisionState old_decision_state = d.state();
  succ.set_state(writeback::v1::TASK_STATE_CANCELED);
  succ.set_finished_at_unix_ms(now_ms);
  ReplaceTaskId(&d, cur, task_id);
  d.clear_task_counts();  // the slot changed hands: counted again from the tasks
  WB_RETURN_IF_ERROR(Recompute(&d, {succ}, now_ms).status());
  audit::AuditEvents events;
  audit::AddStateChanges(caller, now_ms, d, old_decision_state, {succ}, {succ_old_state}, &events);
  WB_RETURN_IF_ERROR(store_->SaveProgress(d, true, {succ}, events));
  log::Info("re-issued task withdrawn: the earlier bundle's result came back",
            {{"task_id", task_id}, {"withdrawn", cur}, {"decision_id", decision_id}});
  return cur;
}

absl::StatusOr<writeback::v1::ImportBundleResponse> Dispatcher::ImportBundle(
    absl::string_view caller, absl::string_view file_bytes) {
  WB_ASSIGN_OR_RETURN(writeback::v1::ResultBundleFile file,
                      bundle::ParseResultBundleFile(file_bytes, "result_bundle_file"));
  const std::string agent = file.agent_id();
  crypto::Ed25519PublicKey key;
  {
    absl::MutexLock l(&dir_mu_);
    auto it = agents_.find(agent);
    if (it == agents_.end()) {
      return absl::NotFoundError(
          absl::StrCat("result bundle: agent ", agent, " is not known to this control plane"));
    }
    if (it->second.record.banned()) {
      return absl::FailedPreconditionError(
          absl::StrCat("result bundle: agent ", agent, " is banned: its results are not taken"));
    }
    key = it->second.result_key;
  }
  envelope::Keyring own;
  own.Add(key_.public_key());
  WB_ASSIGN_OR_RETURN(bundle::VerifiedResultBundle v, bundle::VerifyResultBundle(file, key, own));
  const std::string& bundle_id = v.manifest.bundle_id();
  if (v.manifest.controlplane_id() != opts_.controlplane_id) {
    return absl::PermissionDeniedError(absl::StrCat("result bundle: bundle ", bundle_id,
                                                    " was made by ", v.manifest.controlplane_id(),
                                                    ", not by this control plane"));
  }
  absl::flat_hash_map<std::string, std::string> digest_of;
  for (const auto& e : v.manifest.entries()) digest_of[e.task_id()] = e.task_digest();

  // ---- Check every result before recording any. ----
  enum class Plan { kRecord, kAlready, kSkip };
  struct Item {
    writeback::v1::Result result;
    Plan plan = Plan::kRecord;
    std::string status;
  };
  std::vector<Item> items;
  absl::flat_hash_set<std::string> seen;
  const int64_t now_ms = clock_->NowUnixMs();
  for (int i = 0; i < v.bundle.results_size(); ++i) {
    const auto& env = v.bundle.results(i);
    std::string task_id;
    auto r = VerifyResultEnvelope(env, key, agent, &task_id);
    const std::string where = absl::StrCat("result bundle: results[", i, "]",
                                           task_id.empty() ? "" : absl::StrCat(" (", task_id, ")"));
    if (!r.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", r.status().message()));
    auto d = digest_of.find(r->task_id());
    if (d == digest_of.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": bundle ", bundle_id, " did not carry this task"));
    }
    if (!seen.insert(r->task_id()).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": a second result for the task"));
    }
    if (!crypto::ConstantTimeEquals(r->task_digest(), d->second)) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".task_digest: does not answer the task bundle ", bundle_id, " carried"));
    }
    auto t = store_->GetTask(r->task_id());
    if (!t.ok()) {
      if (t.status().code() == absl::StatusCode::kNotFound) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": unknown task"));
      }
      return t.status();
    }
    if (t->agent_id() != agent || t->bundle_id() != bundle_id ||
        !crypto::ConstantTimeEquals(bundle::PayloadDigest(t->signed_task()), d->second)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": this control plane did not export the task in bundle ", bundle_id,
                       " to this agent"));
    }
    Item item;
    item.result = *std::move(r);
    if (t->has_signed_result()) {
      item.plan = Plan::kAlready;
      item.status = t->signed_result().payload() == env.payload()
                        ? "already recorded"
                        : "already recorded (an earlier result is kept)";
    } else if (item.result.outcome() == writeback::v1::OUTCOME_REJECTED &&
               (!t->reissued_as_task_id().empty() ||
                (item.result.reject_reason() == writeback::v1::REJECT_REASON_EXPIRED &&
                 IsOpenTaskState(t->state())))) {
      // Nothing was applied and the task can travel again: keep it open.
      item.plan = Plan::kSkip;
      item.status = !t->reissued_as_task_id().empty()
                        ? absl::StrCat(
                              "not recorded: refused by the agent, and already re-issued "
                              "as ",
                              t->reissued_as_task_id())
                        : "not recorded: the bundle expired before the agent applied it; export "
                          "again to re-issue the task";
    }
    items.push_back(std::move(item));
  }
  if (std::all_of(items.begin(), items.end(),
                  [](const Item& it) { return it.plan == Plan::kAlready; })) {
    return absl::AlreadyExistsError(absl::StrCat("result bundle for bundle ", bundle_id,
                                                 " was already imported: all ", items.size(),
                                                 " results are already recorded; nothing changed"));
  }

  // ---- Record, exactly as the online stream does. ----
  writeback::v1::ImportBundleResponse resp;
  resp.set_bundle_id(bundle_id);
  resp.set_agent_id(agent);
  for (size_t i = 0; i < items.size(); ++i) {
    Item& item = items[i];
    if (item.plan == Plan::kRecord) {
      writeback::v1::ResultAck ack = IntakeResult(agent, v.bundle.results(static_cast<int>(i)));
      if (!ack.accepted()) {
        return absl::AbortedError(absl::StrCat("result bundle: ", resp.recorded(), " of ",
                                               items.size(),
                                               " results recorded, then: ", ack.error(),
                                               " (import the same file again to record the rest)"));
      }
      item.status = "recorded";
      auto adopted = AdoptEarlierResult(caller, item.result.decision_id(), item.result.task_id());
      if (!adopted.ok()) return adopted.status();
      if (!adopted->empty()) {
        item.status = absl::StrCat("recorded: applied before its bundle expired; the re-issue ",
                                   *adopted, " is withdrawn");
      }
      resp.set_recorded(resp.recorded() + 1);
    } else if (item.plan == Plan::kAlready) {
      resp.set_already_recorded(resp.already_recorded() + 1);
    } else {
      resp.set_not_recorded(resp.not_recorded() + 1);
    }
    const writeback::v1::Result& r = item.result;
    auto* rv = resp.add_results();
    rv->set_task_id(r.task_id());
    rv->set_decision_id(r.decision_id());
    rv->set_outcome(r.outcome());
    rv->set_reject_reason(r.reject_reason());
    rv->set_message(r.message());
    rv->set_status(item.status);
  }
  // States after the whole import.
  for (auto& rv : *resp.mutable_results()) {
    if (auto t = store_->GetTask(rv.task_id()); t.ok()) rv.set_task_state(t->state());
    if (auto d = store_->GetDecision(rv.decision_id()); d.ok()) rv.set_decision_state(d->state());
  }
  writeback::v1::AuditEvent ev =
      audit::NewEvent(writeback::v1::AUDIT_EVENT_KIND_BUNDLE_IMPORTED, caller, now_ms);
  ev.set_agent_id(agent);
  ev.set_digest(v.digest);
  ev.set_detail(absl::StrCat("bundle ", bundle_id, ": ", items.size(), " results, ",
                             resp.recorded(), " recorded, ", resp.already_recorded(),
                             " already recorded, ", resp.not_recorded(), " not recorded"));
  WB_RETURN_IF_ERROR(store_->AppendAudit({ev}));
  log::Info("result bundle imported", {{"bundle_id", bundle_id},
                                       {"agent_id", agent},
                                       {"by", caller},
                                       {"recorded", absl::StrCat(resp.recorded())},
                                       {"already", absl::StrCat(resp.already_recorded())},
                                       {"not_recorded", absl::StrCat(resp.not_recorded())}});
  return resp;
}

}  // namespace wb::controlplane
