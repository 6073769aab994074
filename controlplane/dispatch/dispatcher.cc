#include "controlplane/dispatch/dispatcher.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/actions/actions.h"
#include "common/audit/chain.h"
#include "common/envelope/envelope.h"
#include "common/faults/faults.h"
#include "common/logging/logging.h"
#include "common/protocol/features.h"
#include "common/status/macros.h"
#include "common/tls/tls.h"
#include "common/trust/approvals.h"
#include "controlplane/approval/trust_gate.h"

namespace wb::controlplane {

using writeback::v1::AgentRecord;
using writeback::v1::DecisionRecord;
using writeback::v1::DecisionStatement;
using writeback::v1::ResultAck;
using writeback::v1::TaskRecord;
using writeback::v1::TaskState;

namespace {

// An agent's last_seen is persisted at most this often by heartbeats (it is
// kept exactly in memory); health changes are persisted at once.
constexpr int64_t kPersistLastSeenEveryMs = 60'000;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

}  // namespace

Dispatcher::Dispatcher(Store* store, const Clock* clock, crypto::Ed25519PrivateKey key,
                       SessionRegistry* sessions, DispatcherOptions opts)
    : store_(store),
      clock_(clock),
      key_(std::move(key)),
      sessions_(sessions),
      opts_(std::move(opts)) {}

absl::StatusOr<std::unique_ptr<Dispatcher>> Dispatcher::Create(Store* store, const Clock* clock,
                                                               crypto::Ed25519PrivateKey key,
                                                               SessionRegistry* sessions,
                                                               DispatcherOptions opts) {
  if (opts.default_ttl_seconds == 0) opts.default_ttl_seconds = 3600;
  if (opts.heartbeat_interval_seconds == 0) opts.heartbeat_interval_seconds = 10;
  if (opts.max_in_flight == 0) opts.max_in_flight = 64;
  if (!opts.random_bytes) opts.random_bytes = [](size_t n) { return crypto::RandomBytes(n); };
  std::unique_ptr<Dispatcher> d(
      new Dispatcher(store, clock, std::move(key), sessions, std::move(opts)));
  WB_ASSIGN_OR_RETURN(std::vector<AgentRecord> agents, store->ListAgents());
  absl::MutexLock l(&d->dir_mu_);
  for (AgentRecord& a : agents) {
    if (a.banned() && a.result_public_key().empty()) {  // banned before it ever connected
      std::string id = a.agent_id();
      d->agents_[id] = KnownAgent{std::move(a), crypto::Ed25519PublicKey(), 0};
      continue;
    }
    auto k = crypto::Ed25519PublicKey::FromRaw(a.result_public_key());
    if (!k.ok()) {
      return absl::DataLossError(absl::StrCat(
          "store: agent ", a.agent_id(), ": stored result key is invalid: ", k.status().message()));
    }
    for (const auto& inst : a.instances()) {
      d->routes_[inst.name()] = InstanceRoute{a.agent_id(), inst};
    }
    std::string id = a.agent_id();
    const int64_t seen = a.last_seen_unix_ms();
    d->agents_[id] = KnownAgent{std::move(a), *std::move(k), seen};
  }
  WB_ASSIGN_OR_RETURN(std::vector<writeback::v1::InstanceBinding> bindings, store->ListBindings());
  WB_RETURN_IF_ERROR(d->LoadBindings(std::move(bindings)));
  return d;
}

absl::Mutex& Dispatcher::DecisionLock(absl::string_view decision_id) {
  return decision_locks_[absl::HashOf(decision_id) % kLockStripes];
}

std::string Dispatcher::NewId(absl::string_view prefix) {
  return absl::StrCat(prefix, crypto::HexEncode(opts_.random_bytes(12)));
}

// ---------------------------------------------------------------- operators

absl::StatusOr<Dispatcher::InstanceRoute> Dispatcher::RouteFor(absl::string_view instance) const {
  absl::MutexLock l(&dir_mu_);
  auto it = routes_.find(instance);
  if (it != routes_.end()) return it->second;
  auto b = bindings_.find(instance);
  if (b != bindings_.end() && !b->second.agent_id().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "spec.connector_instance: '", instance, "' is bound to agent ", b->second.agent_id(),
        ", which has not offered it (not connected since, or not configured there)"));
  }
  for (const auto& [id, a] : agents_) {
    for (const auto& r : a.record.refused_instances()) {
      if (r.instance().name() == instance) {
        return absl::FailedPreconditionError(absl::StrCat(
            "spec.connector_instance: '", instance, "' is offered by agent ", id,
            " but not bound to any agent: an operator binds it (wbctl instance bind ", instance,
            " --agent ", tls::ParseSpiffeId(id).ok() ? tls::ParseSpiffeId(id)->name : id, ")"));
      }
    }
  }
  return Invalid("spec.connector_instance", absl::StrCat("unknown instance '", instance, "'"));
}

absl::StatusOr<writeback::v1::SubmitDecisionResponse> Dispatcher::ResponseFor(
    absl::string_view decision_id) {
  WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(decision_id));
  writeback::v1::SubmitDecisionResponse resp;
  resp.set_decision_id(d.parsed().decision_id());
  resp.set_version(d.parsed().version());
  resp.set_state(d.state());
  return resp;
}

absl::StatusOr<writeback::v1::SubmitDecisionResponse> Dispatcher::Submit(
    absl::string_view requester, const writeback::v1::SubmitDecisionRequest& req) {
  const std::string& request_id = req.request_id();
  WB_RETURN_IF_ERROR(actions::ValidateText("request_id", request_id, kMaxRequestIdBytes, true));

  // One submit per request_id at a time; the later one then finds the first.
  struct RequestGuard {
    Dispatcher* d;
    std::string id;
    ~RequestGuard() {
      if (id.empty()) return;
      absl::MutexLock l(&d->req_mu_);
      d->requests_in_flight_.erase(id);
    }
  } guard{this, ""};
  if (!request_id.empty()) {
    absl::MutexLock l(&req_mu_);
    auto free = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(req_mu_) {
      return !requests_in_flight_.contains(request_id);
    };
    req_mu_.Await(absl::Condition(&free));
    requests_in_flight_.insert(request_id);
    guard.id = request_id;
  }
  if (!request_id.empty()) {
    auto existing = store_->FindDecisionByRequestId(request_id);
    if (existing.ok()) return ResponseFor(*existing);
    if (existing.status().code() != absl::StatusCode::kNotFound) return existing.status();
  }

  // ---- Validate everything before anything is stored. ----
  const writeback::v1::DecisionSpec& spec = req.spec();
  if (spec.connector_instance().empty()) return Invalid("spec.connector_instance", "required");
  WB_ASSIGN_OR_RETURN(InstanceRoute route, RouteFor(spec.connector_instance()));
  if (auto a = AgentRecordOf(route.agent_id); a.ok() && a->banned()) {
    return absl::FailedPreconditionError(
        absl::StrCat("spec.connector_instance: '", spec.connector_instance(),
                     "' is served by banned agent ", route.agent_id));
  }
  const std::string& type = route.info.type();
  if (spec.operation().empty()) return Invalid("spec.operation", "required");
  const auto& allowed = route.info.operations();
  if (std::find(allowed.begin(), allowed.end(), spec.operation()) == allowed.end()) {
    return Invalid("spec.operation",
                   absl::StrCat("'", spec.operation(), "' is not allowed on instance '",
                                spec.connector_instance(), "' (allowed: ",
                                allowed.empty() ? "none" : absl::StrJoin(allowed, ", "), ")"));
  }
  WB_RETURN_IF_ERROR(actions::ValidateAction(type, spec.operation(), spec.params(), "spec."));
  if (spec.targets_size() == 0) return Invalid("spec.targets", "at least one target is required");
  if (spec.targets_size() > kMaxTargets) {
    return Invalid("spec.targets", absl::StrCat("at most ", kMaxTargets, " targets"));
  }
  absl::flat_hash_map<std::string, int> seen;
  for (int i = 0; i < spec.targets_size(); ++i) {
    const std::string field = absl::StrCat("spec.targets[", i, "].object");
    WB_RETURN_IF_ERROR(actions::ValidateTargetObject(type, spec.targets(i).object(), field));
    auto [it, inserted] = seen.emplace(spec.targets(i).object(), i);
    if (!inserted) {
      return Invalid(field, absl::StrCat("duplicate of spec.targets[", it->second, "]"));
    }
  }
  WB_RETURN_IF_ERROR(actions::ValidateText("spec.reason", spec.reason(), kMaxReasonBytes, false));
  WB_RETURN_IF_ERROR(
      actions::ValidateText("spec.reference", spec.reference(), kMaxReferenceBytes, true));
  uint32_t ttl = spec.ttl_seconds();
  if (ttl == 0) {
    ttl = opts_.default_ttl_seconds;
  } else if (ttl < kMinTtlSeconds || ttl > kMaxTtlSeconds) {
    return Invalid("spec.ttl_seconds",
                   absl::StrCat("must be 0 (server default) or between ", kMinTtlSeconds, " and ",
                                kMaxTtlSeconds, " seconds"));
  }

  // ---- Build the statement: serialized once, those bytes are the truth. ----
  const int64_t now_ms = clock_->NowUnixMs();
  WB_ASSIGN_OR_RETURN(uint64_t version, store_->NextDecisionVersion());
  DecisionStatement st;
  st.set_decision_id(NewId("d-"));
  st.set_version(version);
  st.set_requester(std::string(requester));
  st.set_connector_instance(spec.connector_instance());
  st.set_operation(spec.operation());
  *st.mutable_params() = spec.params();
  *st.mutable_targets() = spec.targets();
  st.set_reason(spec.reason());
  st.set_reference(spec.reference());
  st.set_created_at_unix_ms(now_ms);
  st.set_expires_at_unix_ms(now_ms + int64_t{ttl} * 1000);
  st.set_agent_id(route.agent_id);
  std::string statement_bytes = st.SerializeAsString();
  if (statement_bytes.size() > kMaxStatementBytes) {
    return Invalid("spec.targets",
                   absl::StrCat("the statement would be ", statement_bytes.size(),
                                " bytes; at most ", kMaxStatementBytes, ": split the decision"));
  }
  if (spec.targets_size() > kMaxTargetsEmbedded) {
    auto a = AgentRecordOf(route.agent_id);
    if (a.ok() && !protocol::HasFeature(a->features(), protocol::kFeatureStatementDigest)) {
      return Invalid("spec.targets",
                     absl::StrCat("agent ", route.agent_id, " (version ", a->version(),
                                  ") takes at most ", kMaxTargetsEmbedded,
                                  " targets per decision: upgrade it, or split the decision"));
    }
  }

  DecisionRecord d;
  d.set_statement(statement_bytes);
  *d.mutable_parsed() = st;
  d.set_submitted_at_unix_ms(now_ms);

  // Approvals: the trust policy says how many this action class needs.
  uint32_t required = 0;
  if (opts_.trust != nullptr && opts_.trust->root_pinned()) {
    auto policy = opts_.trust->policy();
    if (policy == nullptr) {
      return absl::FailedPreconditionError(
          "no trust policy has been published yet (wbctl trust publish): agents would refuse "
          "every task");
    }
    trust::ApprovalCount need = trust::CountApprovals(*policy, type, statement_bytes, st, {});
    if (need.required == std::numeric_limits<uint32_t>::max()) {
      return Invalid("spec.operation",
                     absl::StrCat("'", spec.operation(), "' of ", type,
                                  " has no action class in trust policy v", policy->version()));
    }
    required = need.required;
    WB_RETURN_IF_ERROR(
        opts_.trust->TakeBudget(route.agent_id, static_cast<size_t>(spec.targets_size()), now_ms));
  }
  std::vector<TaskRecord> tasks;
  if (required > 0) {
    d.set_state(writeback::v1::DECISION_STATE_PENDING_APPROVAL);
    d.set_state_detail(
        absl::StrCat("waiting for ", required, " approval", required == 1 ? "" : "s"));
  } else {
    tasks = FanOut(st, statement_bytes, d.approvals(), route.agent_id, now_ms);
    d.set_state(writeback::v1::DECISION_STATE_DISPATCHED);
    d.set_dispatched_at_unix_ms(now_ms);
    for (const TaskRecord& t : tasks) d.add_task_ids(t.task_id());
  }
  d.mutable_task_counts()->set_unfinished(static_cast<uint32_t>(tasks.size()));

  // Audit: the submit (digest of the statement bytes), then each signed task,
  // then the older decisions' tasks it takes over.
  audit::AuditEvents events;
  events.reserve(1 + tasks.size());
  events.push_back(audit::DecisionSubmitted(requester, now_ms, d));
  for (const TaskRecord& t : tasks) {
    events.push_back(audit::TaskDispatched(opts_.controlplane_id, now_ms, t));
  }
  std::vector<DecisionUpdate> others;
  std::unique_ptr<MultiLock> others_locked;
  if (!tasks.empty()) {
    // The new decision is not visible before this write: only the older
    // decisions need locking.
    WB_ASSIGN_OR_RETURN(TakeOver take, FindCovered(route.agent_id, type, st));
    if (!take.tasks.empty()) {
      others_locked = std::make_unique<MultiLock>(this, take.decisions);
      WB_ASSIGN_OR_RETURN(others, ApplyTakeOver(take, type, st, &tasks, now_ms, &events));
    }
  }
  WB_RETURN_IF_ERROR(store_->CreateDecision(d, tasks, request_id, others, events));
  others_locked.reset();
  WB_CRASH_POINT("cp.after_decision_write");
  if (tasks.empty()) {
    log::Info("decision waits for approval", {{"decision_id", st.decision_id()},
                                              {"version", absl::StrCat(version)},
                                              {"requester", requester},
                                              {"required", absl::StrCat(required)}});
    writeback::v1::SubmitDecisionResponse resp;
    resp.set_decision_id(st.decision_id());
    resp.set_version(version);
    resp.set_state(d.state());
    return resp;
  }
  log::Info("decision dispatched", {{"decision_id", st.decision_id()},
                                    {"version", absl::StrCat(version)},
                                    {"requester", requester},
                                    {"connector_instance", st.connector_instance()},
                                    {"operation", st.operation()},
                                    {"tasks", absl::StrCat(tasks.size())},
                                    {"tasks_taken_over", absl::StrCat(others.size())},
                                    {"agent_id", route.agent_id}});
  sessions_->Wake(route.agent_id);

  writeback::v1::SubmitDecisionResponse resp;
  resp.set_decision_id(st.decision_id());
  resp.set_version(version);
  resp.set_state(d.state());
  return resp;
}

std::vector<AgentRecord> Dispatcher::Agents() const {
  absl::MutexLock l(&dir_mu_);
  std::vector<AgentRecord> out;
  out.reserve(agents_.size());
  for (const auto& [id, a] : agents_) out.push_back(a.record);
  std::sort(out.begin(), out.end(),
            [](const AgentRecord& x, const AgentRecord& y) { return x.agent_id() < y.agent_id(); });
  return out;
}

// ---------------------------------------------------------------- agents

absl::Status Dispatcher::Heartbeat(absl::string_view agent_id, const writeback::v1::Heartbeat& hb) {
  const int64_t now_ms = clock_->NowUnixMs();
  absl::MutexLock l(&dir_mu_);
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) return absl::NotFoundError(absl::StrCat("agent ", agent_id, " unknown"));
  AgentRecord& rec = it->second.record;
  rec.set_last_seen_unix_ms(now_ms);
  bool health_changed = false;
  for (const auto& h : hb.instances()) {
    for (auto& inst : *rec.mutable_instances()) {
      if (inst.name() != h.name()) continue;
      if (inst.healthy() != h.healthy() || inst.health_detail() != h.health_detail()) {
        inst.set_healthy(h.healthy());
        inst.set_health_detail(h.health_detail());
        health_changed = true;
        auto r = routes_.find(inst.name());
        if (r != routes_.end()) r->second.info = inst;
      }
    }
  }
  if (!health_changed && now_ms - it->second.persisted_last_seen_ms < kPersistLastSeenEveryMs) {
    return absl::OkStatus();
  }
  WB_RETURN_IF_ERROR(store_->PutAgent(rec));
  it->second.persisted_last_seen_ms = now_ms;
  return absl::OkStatus();
}

absl::Status Dispatcher::AckTask(absl::string_view agent_id, absl::string_view task_id) {
  WB_ASSIGN_OR_RETURN(TaskRecord peek, store_->GetTask(task_id));
  if (peek.agent_id() != agent_id) {
    return absl::PermissionDeniedError(
        absl::StrCat("task_ack: task ", task_id, " is not addressed to this agent"));
  }
  absl::MutexLock l(&DecisionLock(peek.decision_id()));
  WB_ASSIGN_OR_RETURN(TaskRecord t, store_->GetTask(task_id));
  if (!IsOpenTaskState(t.state())) return absl::OkStatus();  // result already in
  WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(t.decision_id()));
  const TaskState old_state = t.state();
  const int64_t now_ms = clock_->NowUnixMs();
  t.set_state(writeback::v1::TASK_STATE_DELIVERED);
  t.set_delivered_at_unix_ms(now_ms);
  t.set_delivery_attempts(t.delivery_attempts() + 1);
  audit::AuditEvents events;
  audit::AddStateChanges(agent_id, now_ms, d, d.state(), {t}, {old_state}, &events);
  WB_RETURN_IF_ERROR(store_->SaveProgress(d, false, {t}, events));
  log::Debug("task delivered",
             {{"task_id", t.task_id()}, {"decision_id", t.decision_id()}, {"agent_id", agent_id}});
  return absl::OkStatus();
}

ResultAck Dispatcher::Refuse(absl::string_view agent_id, absl::string_view task_id,
                             absl::string_view error, writeback::v1::ResultRefusal refusal) {
  rejected_results_.fetch_add(1);
  log::Warn("result refused", {{"agent_id", agent_id}, {"task_id", task_id}, {"error", error}});
  ResultAck ack;
  ack.set_task_id(std::string(task_id));
  ack.set_accepted(false);
  ack.set_error(std::string(error));
  ack.set_refusal(refusal);
  return ack;
}

ResultAck Dispatcher::IntakeResult(absl::string_view agent_id,
                                   const writeback::v1::SignedEnvelope& env) {
  crypto::Ed25519PublicKey key;
  {
    absl::MutexLock l(&dir_mu_);
    auto it = agents_.find(agent_id);
    if (it == agents_.end()) return Refuse(agent_id, "", "result: agent is not registered");
    key = it->second.result_key;
  }
  std::string task_id;
  absl::StatusOr<writeback::v1::Result> verified =
      VerifyResultEnvelope(env, key, agent_id, &task_id);
  if (!verified.ok()) {
    return Refuse(agent_id, task_id, verified.status().message(),
                  writeback::v1::RESULT_REFUSAL_INVALID);
  }
  const writeback::v1::Result& r = *verified;
  const TaskState new_state = TaskStateForResult(r);
  auto peek = store_->GetTask(task_id);
  if (!peek.ok()) {
    if (peek.status().code() == absl::StatusCode::kNotFound) {
      // Nothing to record it against (a task id made up on the way): the
      // agent drops it instead of sending it again on every connection.
      return Refuse(agent_id, task_id, "result.task_id: unknown task",
                    writeback::v1::RESULT_REFUSAL_UNKNOWN_TASK);
    }
    return Refuse(agent_id, task_id, absl::StrCat("result: ", peek.status().message()));
  }
  if (peek->agent_id() != agent_id) {
    return Refuse(agent_id, task_id, "result.task_id: the task is not addressed to this agent",
                  writeback::v1::RESULT_REFUSAL_INVALID);
  }
  if (!crypto::ConstantTimeEquals(r.task_digest(), crypto::Sha256(peek->signed_task().payload()))) {
    if (r.outcome() == writeback::v1::OUTCOME_REJECTED) {
      // The agent refused bytes that are not what we signed: the task was
      // altered on its way (a relay, the network). Nothing happened on the
      // target; the task stays open. Recorded, and acknowledged so the agent
      // stops re-sending it.
      altered_deliveries_.fetch_add(1);
      std::string via;
      {
        absl::MutexLock dl(&dir_mu_);
        auto it = agents_.find(agent_id);
        if (it != agents_.end()) via = absl::StrJoin(it->second.record.relay_path(), ",");
      }
      log::Warn("agent refused an altered copy of a task (tampered in transit?)",
                {{"agent_id", agent_id},
                 {"task_id", task_id},
                 {"reason", writeback::v1::RejectReason_Name(r.reject_reason())},
                 {"via", via.empty() ? "direct" : via}});
      ResultAck ack;
      ack.set_task_id(task_id);
      ack.set_accepted(true);
      ack.set_error("recorded as an altered delivery; the task stays open");
      return ack;
    }
    return Refuse(agent_id, task_id, "result.task_digest: does not match the task's signed bytes",
                  writeback::v1::RESULT_REFUSAL_INVALID);
  }

  // The task's decision and the decisions whose tasks it covers change
  // together: lock them all (the set is read again under the locks; a
  // take-over may have changed it meanwhile).
  std::unique_ptr<MultiLock> locked = LockWithCovered(peek->decision_id(), {task_id});
  auto t = store_->GetTask(task_id);
  ResultAck ack;
  ack.set_task_id(task_id);
  absl::StatusOr<DecisionRecord> d =
      t.ok() ? store_->GetDecision(t->decision_id()) : absl::StatusOr<DecisionRecord>(t.status());
  if (!d.ok()) {
    log::Error("result not stored",
               {{"task_id", task_id}, {"agent_id", agent_id}, {"error", d.status().message()}});
    ack.set_error("result: control plane store error; send it again later");
    return ack;
  }
  ack.set_accepted(true);
  if (t->has_signed_result()) return ack;  // duplicate: acked again, nothing changes

  // A task that expired here without a result still takes a late result: it
  // is the truth about the target.
  const int64_t now_ms = clock_->NowUnixMs();
  const TaskState old_task_state = t->state();
  const writeback::v1::DecisionState old_decision_state = d->state();
  *t->mutable_signed_result() = env;
  *t->mutable_result() = r;
  t->set_state(new_state);
  t->set_finished_at_unix_ms(now_ms);
  auto changed = Recompute(&*d, {*t}, now_ms);
  // Audit: the result (digest of its signed bytes), then the state changes.
  audit::AuditEvents events;
  events.push_back(audit::TaskResult(agent_id, now_ms, *t));
  audit::AddStateChanges(agent_id, now_ms, *d, old_decision_state, {*t}, {old_task_state}, &events);
  // Decisions whose tasks this one covers follow it (coverage.cc).
  absl::flat_hash_set<std::string> wake;
  absl::StatusOr<std::vector<DecisionUpdate>> follow =
      changed.ok() ? FollowCovering({*t}, agent_id, now_ms, &events, &wake)
                   : absl::StatusOr<std::vector<DecisionUpdate>>(changed.status());
  absl::Status s = follow.status();
  if (s.ok()) {
    std::vector<DecisionUpdate> updates;
    updates.push_back(DecisionUpdate{*d, *changed, {*t}});
    for (DecisionUpdate& u : *follow) updates.push_back(std::move(u));
    s = store_->SaveProgressBatch(updates, events);
  }
  if (!s.ok()) {
    log::Error("result not stored",
               {{"task_id", task_id}, {"agent_id", agent_id}, {"error", s.message()}});
    ack.set_accepted(false);
    ack.set_error("result: control plane store error; send it again later");
    return ack;
  }
  WB_CRASH_POINT("cp.after_result_write");
  log::Info("result stored", {{"task_id", task_id},
                              {"decision_id", t->decision_id()},
                              {"agent_id", agent_id},
                              {"outcome", writeback::v1::Outcome_Name(r.outcome())},
                              {"task_state", writeback::v1::TaskState_Name(new_state)}});
  if (*changed) {
    log::Info("decision finished", {{"decision_id", t->decision_id()},
                                    {"state", writeback::v1::DecisionState_Name(d->state())},
                                    {"detail", d->state_detail()}});
  }
  locked.reset();
  for (const std::string& a : wake) sessions_->Wake(a);
  return ack;
}

absl::StatusOr<std::vector<TaskRecord>> Dispatcher::NextTasks(
    absl::string_view agent_id, const absl::flat_hash_set<std::string>& in_flight, size_t limit) {
  WB_ASSIGN_OR_RETURN(std::vector<std::string> ids,
                      store_->PeekOutbox(agent_id, limit, [&](absl::string_view id) {
                        return in_flight.contains(id) || TravelsOffline(id);
                      }));
  std::vector<TaskRecord> out;
  out.reserve(ids.size());
  for (const std::string& id : ids) {
    auto t = store_->GetTask(id);
    if (!t.ok()) {
      if (t.status().code() == absl::StatusCode::kNotFound) continue;
      return t.status();
    }
    if (!IsOpenTaskState(t->state())) continue;  // finished meanwhile
    if (!t->bundle_id().empty()) continue;       // exported meanwhile
    out.push_back(*std::move(t));
  }
  return out;
}

absl::flat_hash_set<std::string> Dispatcher::StillOpen(
    const absl::flat_hash_set<std::string>& task_ids) {
  absl::flat_hash_set<std::string> open;
  for (const std::string& id : task_ids) {
    auto h = store_->GetTaskHead(id);  // never the whole record
    // On a read error keep the task: a slot stays busy rather than a task
    // being sent twice on one stream.
    if (!h.ok() || IsOpenTaskState(h->state())) open.insert(id);
  }
  return open;
}

absl::StatusOr<std::vector<TaskRecord>> Dispatcher::Redeliver(
    absl::string_view agent_id, const std::vector<std::string>& task_ids) {
  std::vector<TaskRecord> out;
  for (const std::string& id : task_ids) {
    // The head first: only tasks that are sent again are read whole.
    auto h = store_->GetTaskHead(id);
    if (!h.ok()) {
      if (h.status().code() == absl::StatusCode::kNotFound) continue;
      return h.status();
    }
    if (!IsOpenTaskState(h->state()) || h->offline()) continue;
    auto t = store_->GetTask(id);
    if (!t.ok()) {
      if (t.status().code() == absl::StatusCode::kNotFound) continue;
      return t.status();
    }
    if (t->agent_id() != agent_id || !IsOpenTaskState(t->state())) continue;
    if (!t->bundle_id().empty()) continue;  // exported meanwhile: travels offline
    redeliveries_.fetch_add(1);
    log::Info("task redelivered after the delivery timeout",
              {{"task_id", id}, {"decision_id", t->decision_id()}, {"agent_id", agent_id}});
    out.push_back(*std::move(t));
  }
  return out;
}

}  // namespace wb::controlplane
