#include "agent/executor/executor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/actions/action_class.h"
#include "common/faults/faults.h"
#include "common/logging/logging.h"

namespace wb::agent {
namespace {

using writeback::agent::v1::JOURNAL_STATE_INTENT;
using writeback::agent::v1::JOURNAL_STATE_QUEUED;
using writeback::v1::DecisionStatement;
using writeback::v1::Outcome;
using writeback::v1::Result;
using writeback::v1::SignedEnvelope;
using writeback::v1::Task;

constexpr uint32_t kDefaultMaxInFlight = 64;

// A Verify outcome as a result outcome: only VERIFIED, UNVERIFIED and FAILED
// are legitimate answers of Verify.
Outcome VerifiedOutcome(const writeback::v1::Verification& v) {
  switch (v.outcome()) {
    case writeback::v1::OUTCOME_VERIFIED:
    case writeback::v1::OUTCOME_UNVERIFIED:
    case writeback::v1::OUTCOME_FAILED:
      return v.outcome();
    default:
      return writeback::v1::OUTCOME_FAILED;
  }
}

std::string OutcomeMessage(const writeback::v1::Verification& v) {
  if (VerifiedOutcome(v) != v.outcome()) {
    return absl::StrCat("connector's Verify returned outcome ",
                        writeback::v1::Outcome_Name(v.outcome()));
  }
  return v.detail();
}

connectors::Action ActionOf(const Task& task, const DecisionStatement& statement) {
  connectors::Action action;
  action.operation = statement.operation();
  action.params = statement.params();
  action.object = task.target().object();
  action.task_id = task.task_id();
  action.decision_version = task.decision_version();
  return action;
}

// PlanChange → Apply (unless nothing needs to change) → Verify, recorded in
// `r`: plan, applied, verification, outcome and message.
void PlanApplyVerify(connectors::Connector& conn, const connectors::CallContext& cctx,
                     const connectors::Action& action, Result& r) {
  auto fail = [&](absl::string_view verb, const absl::Status& s) {
    r.set_outcome(writeback::v1::OUTCOME_FAILED);
    r.set_message(absl::StrCat(verb, ": ", s.ToString()));
  };
  auto plan = conn.PlanChange(cctx, action);
  if (!plan.ok()) {
    fail("plan", plan.status());
    return;
  }
  *r.mutable_plan() = *plan;
  if (!plan->no_change()) {
    auto applied = conn.Apply(cctx, action, *plan);
    if (!applied.ok()) {
      fail("apply", applied.status());
      return;
    }
    *r.mutable_applied() = *applied;
    WB_CRASH_POINT("agent.after_apply");
  }
  auto v = conn.Verify(cctx, action);
  if (!v.ok()) {
    fail("verify", v.status());
    return;
  }
  *r.mutable_verification() = *v;
  Outcome o = VerifiedOutcome(*v);
  if (plan->no_change() && o == writeback::v1::OUTCOME_VERIFIED) {
    o = writeback::v1::OUTCOME_ALREADY_COMPLIANT;
  }
  r.set_outcome(o);
  r.set_message(o == writeback::v1::OUTCOME_ALREADY_COMPLIANT
                    ? absl::StrCat("nothing to change: ", plan->summary(), "; ", OutcomeMessage(*v))
                    : OutcomeMessage(*v));
}

}  // namespace

Executor::Executor(Options opts, Journal* journal, const Clock* clock, Sink* sink)
    : opts_(std::move(opts)),
      journal_(journal),
      clock_(clock),
      sink_(sink),
      max_in_flight_(opts_.max_in_flight == 0 ? kDefaultMaxInFlight : opts_.max_in_flight) {}

Executor::~Executor() { Stop(); }

Executor::Instance Executor::InstanceFromConfig(const writeback::v1::ConnectorInstanceConfig& cfg,
                                                connectors::Connector* connector) {
  Instance inst;
  inst.connector = connector;
  inst.policy.connector_type = cfg.type();
  inst.policy.operations.insert(cfg.allowed_operations().begin(), cfg.allowed_operations().end());
  if (cfg.has_exec()) {
    inst.declared_idempotent.insert(cfg.exec().idempotent_operations().begin(),
                                    cfg.exec().idempotent_operations().end());
  }
  return inst;
}

std::string Executor::WhyNotRerun(const std::string& instance_name, const Instance& inst,
                                  const std::string& operation) {
  const actions::OperationTraits* t =
      actions::OperationTraitsOf(inst.policy.connector_type, operation);
  if (t == nullptr) {
    return absl::StrCat("operation '", operation, "' of connector '", instance_name, "' (",
                        inst.policy.connector_type, ") is unknown to this agent");
  }
  switch (t->idempotency) {
    case actions::Idempotency::kIdempotent:
      return "";
    case actions::Idempotency::kDeclaredByInstance:
      if (inst.declared_idempotent.count(operation) > 0) return "";
      break;
    case actions::Idempotency::kNotIdempotent:
      break;
  }
  return absl::StrCat("operation '", operation, "' of connector '", instance_name, "' (",
                      inst.policy.connector_type,
                      ") is not idempotent: ", t->not_idempotent_because);
}

SignedEnvelope Executor::SignResult(const Result& result, const crypto::Ed25519PrivateKey& key) {
  return envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT, result.SerializeAsString(), key);
}

void Executor::OfferStatement(std::string bytes) { received_statements_.Put(std::move(bytes)); }

CheckContext Executor::MakeContext(absl::Time now, const StatementSource* statements) const {
  CheckContext ctx;
  // Journal first: a task journaled earlier finds its statement there
  // without touching the stream's cache (whose recency follows arrivals,
  // as the control plane's memory of what it sent does).
  ctx.statements = statements != nullptr ? statements : &journal_first_;
  ctx.agent_id = opts_.agent_id;
  if (opts_.trust != nullptr && opts_.trust->root_pinned()) {
    ctx.policy = opts_.trust->policy();
    ctx.require_policy = true;
  } else {
    ctx.dispatch_keys = opts_.trust != nullptr ? &opts_.trust->pinned_keys() : &opts_.dispatch_keys;
  }
  for (const auto& [name, inst] : opts_.instances) ctx.instances.emplace(name, inst.policy);
  ctx.max_skew = opts_.max_skew;
  ctx.now = now;
  return ctx;
}

bool Executor::CheckBudget(const CheckContext& ctx, TaskCheck& c) const {
  if (ctx.policy == nullptr || c.verdict != Verdict::kAccept || c.task.verify_only()) return true;
  const trust::RateBudget budget = ctx.policy->BudgetFor(opts_.agent_id);
  const int64_t now_ms = absl::ToUnixMillis(ctx.now);
  const int64_t window_ms = absl::ToInt64Milliseconds(budget.window);
  auto used = journal_->CountBudgetSince(now_ms - window_ms + 1);
  if (!used.ok()) {
    c.verdict = Verdict::kError;
    c.message = absl::StrCat("journal: ", used.status().ToString());
    return false;
  }
  if (*used >= budget.max_tasks) {
    c.verdict = Verdict::kReject;
    c.reason = writeback::v1::REJECT_REASON_RATE_LIMITED;
    c.message = absl::StrCat("rate budget spent: ", *used, " tasks accepted in the last ",
                             absl::FormatDuration(budget.window), " (trust policy v",
                             ctx.policy->version(), " allows ", budget.max_tasks, ")");
  }
  return true;
}

std::string Executor::TargetKey(const JournalTask& e) {
  return absl::StrCat(e.connector_instance(), "/", e.object());
}

absl::Status Executor::Start() {
  auto pending = journal_->PendingTasks();
  if (!pending.ok()) return pending.status();
  // Budget records older than the longest window allowed are never counted.
  if (absl::Status s =
          journal_->PruneBudget(clock_->NowUnixMs() - int64_t{trust::kMaxRateWindowSeconds} * 1000);
      !s.ok()) {
    log::Warn("journal: old rate-budget records not pruned", {{"error", s.ToString()}});
  }
  std::lock_guard<std::mutex> l(mu_);
  if (started_) return absl::FailedPreconditionError("executor: already started");
  if (stopping_) return absl::FailedPreconditionError("executor: stopped");
  started_ = true;
  for (auto& e : *pending) {
    const bool recover = e.state() == JOURNAL_STATE_INTENT;
    log::Info(recover ? "recovering task left in INTENT" : "re-queueing journaled task",
              {{"task_id", e.task_id()}});
    Enqueue(Job{std::move(e), recover});
  }
  const int n = opts_.workers > 0 ? opts_.workers : 1;
  for (int i = 0; i < n; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  return absl::OkStatus();
}

void Executor::Stop() {
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    workers.swap(workers_);
  }
  cv_.notify_all();
  for (auto& t : workers) t.join();
}

void Executor::SetMaxInFlight(uint32_t n) {
  {
    std::lock_guard<std::mutex> l(mu_);
    max_in_flight_ = n == 0 ? kDefaultMaxInFlight : n;
  }
  cv_.notify_all();
}

uint32_t Executor::in_flight() const {
  std::lock_guard<std::mutex> l(mu_);
  return in_flight_;
}

void Executor::Enqueue(Job job) {
  if (!enqueued_.insert(job.entry.task_id()).second) return;  // already queued or running
  const std::string key = TargetKey(job.entry);
  auto& q = queues_[key];
  const bool was_idle = q.empty() && busy_.count(key) == 0;
  q.push_back(std::move(job));
  ++in_flight_;
  if (was_idle) ready_.push_back(key);
  cv_.notify_all();
}

void Executor::WorkerLoop() {
  while (true) {
    Job job;
    std::string key;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stopping_ || !ready_.empty(); });
      if (stopping_) return;
      key = ready_.front();
      ready_.pop_front();
      busy_.insert(key);
      auto& q = queues_[key];
      job = std::move(q.front());
      q.pop_front();
    }
    const std::string task_id = job.entry.task_id();
    Run(std::move(job));
    {
      std::lock_guard<std::mutex> l(mu_);
      busy_.erase(key);
      enqueued_.erase(task_id);
      --in_flight_;
      auto it = queues_.find(key);
      if (it != queues_.end()) {
        if (it->second.empty()) {
          queues_.erase(it);
        } else {
          ready_.push_back(key);
        }
      }
    }
    cv_.notify_all();  // a target is free again, and there is room
  }
}

void Executor::Run(Job job) {
  if (job.recover) {
    Recover(std::move(job.entry));
  } else {
    Execute(std::move(job.entry));
  }
}

void Executor::Submit(const SignedEnvelope& env, const StatementSource* statements) {
  std::lock_guard<std::mutex> submit_lock(submit_mu_);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
  }
  const absl::Time now = clock_->Now();  // fixed once for every check
  const StatementSources with_given({statements, &received_statements_, journal_});
  const CheckContext ctx = MakeContext(now, statements != nullptr ? &with_given : &stream_first_);
  TaskCheck c = CheckTask(env, ctx, journal_);
  CheckBudget(ctx, c);
  switch (c.verdict) {
    case Verdict::kError:
      log::Error("task not accepted: journal unavailable",
                 {{"task_id", c.task_id()}, {"error", c.message}});
      return;
    case Verdict::kReject:
      if (c.statement_missing) {
        // Not the task's fault (a statement dropped or altered on the way):
        // no refusal is recorded, so the redelivery, which carries the
        // statement again, is taken.
        log::Warn("task not taken: the statement it names did not arrive",
                  {{"task_id", c.task_id()}, {"message", c.message}});
        return;
      }
      Reject(c, env);
      return;
    case Verdict::kDuplicate: {
      const std::string& id = c.task.task_id();
      if (c.seen->state == SeenTask::State::kDone) {
        // The sender has no result for it: send the stored one again.
        if (absl::Status s = journal_->PutOutbox(id, c.seen->signed_result); !s.ok()) {
          log::Error("journal write failed", {{"task_id", id}, {"error", s.ToString()}});
          return;
        }
        log::Info("task seen before: returning the stored result", {{"task_id", id}});
        if (sink_ != nullptr) {
          sink_->OnTaskAck(id);
          sink_->OnResult(id, c.seen->signed_result);
        }
      } else {
        log::Debug("task seen before: still in progress", {{"task_id", id}});
        if (sink_ != nullptr) sink_->OnTaskAck(id);
      }
      return;
    }
    case Verdict::kAccept:
      break;
  }

  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return stopping_ || in_flight_ < max_in_flight_; });
    if (stopping_) return;
  }
  JournalTask e;
  e.set_task_id(c.task.task_id());
  e.set_state(JOURNAL_STATE_QUEUED);
  e.set_task_digest(c.task_digest);
  *e.mutable_signed_task() = env;
  e.set_connector_instance(c.task.connector_instance());
  e.set_object(c.task.target().object());
  e.set_decision_version(c.task.decision_version());
  e.set_updated_at_unix_ms(absl::ToUnixMillis(now));
  if (ctx.policy != nullptr && !c.task.verify_only()) {
    e.set_budget_at_unix_ms(absl::ToUnixMillis(now));
  }
  e.set_statement_digest(c.task.statement_digest());
  if (absl::Status s = journal_->PutTask(
          &e, c.task.statement_digest().empty() ? absl::string_view() : *c.statement_bytes);
      !s.ok()) {
    log::Error("journal write failed", {{"task_id", e.task_id()}, {"error", s.ToString()}});
    return;
  }
  if (absl::Status s = journal_->RaiseAnchor(c.task.issued_at_unix_ms()); !s.ok()) {
    log::Error("state anchor not raised", {{"task_id", e.task_id()}, {"error", s.ToString()}});
  }
  log::Info("task accepted", {{"task_id", e.task_id()},
                              {"decision_id", c.statement.decision_id()},
                              {"instance", e.connector_instance()},
                              {"operation", c.task.operation()},
                              {"object", e.object()}});
  if (sink_ != nullptr) sink_->OnTaskAck(e.task_id());
  std::lock_guard<std::mutex> l(mu_);
  Enqueue(Job{std::move(e), false});
}

Result Executor::BaseResult(const Task& task, const DecisionStatement& statement,
                            const std::string& task_digest) const {
  Result r;
  r.set_task_id(task.task_id());
  r.set_agent_id(opts_.agent_id);
  r.set_decision_id(statement.decision_id());
  r.set_decision_version(task.decision_version());
  r.set_task_digest(task_digest);
  r.set_verify_only(task.verify_only());
  return r;
}

void Executor::Reject(const TaskCheck& c, const SignedEnvelope& env) {
  Result r = BaseResult(c.task, c.statement, c.task_digest);
  const std::string id = c.task_id();
  r.set_task_id(id);
  r.set_outcome(writeback::v1::OUTCOME_REJECTED);
  r.set_reject_reason(c.reason);
  r.set_message(c.message);
  r.set_agent_time_unix_ms(clock_->NowUnixMs());
  const SignedEnvelope signed_result = SignResult(r, opts_.result_key);
  log::Warn("task rejected", {{"task_id", id},
                              {"decision_id", c.statement.decision_id()},
                              {"reason", writeback::v1::RejectReason_Name(c.reason)},
                              {"message", c.message}});

  absl::Status s;
  if (c.authentic && !c.task_id_conflict) {
    // The id is authentic: journal the refusal so a redelivery returns it.
    JournalTask e;
    e.set_task_id(id);
    e.set_task_digest(c.task_digest);
    *e.mutable_signed_task() = env;
    *e.mutable_signed_result() = signed_result;
    e.set_connector_instance(c.task.connector_instance());
    e.set_object(c.task.target().object());
    e.set_decision_version(c.task.decision_version());
    e.set_updated_at_unix_ms(r.agent_time_unix_ms());
    s = journal_->Complete(e, /*bump_version=*/false);
  } else if (!id.empty() && !c.task_id_conflict) {
    // Unauthenticated id: reported (and kept until acknowledged, within a
    // bound: anyone on the path can make up ids) but never recorded as a
    // task, so forged bytes cannot shadow a real task.
    auto kept =
        journal_->PutUnauthenticatedOutbox(id, signed_result, opts_.max_unauthenticated_results);
    if (!kept.ok()) {
      s = kept.status();
    } else if (!*kept) {
      refusals_not_kept_.fetch_add(1);
      log::Warn("refusal sent once, not kept in the outbox",
                {{"task_id", id},
                 {"why",
                  "the outbox already holds this id or its bound of refusals of "
                  "unauthenticated tasks"},
                 {"bound", absl::StrCat(opts_.max_unauthenticated_results)}});
    }
  }
  // Else (no id at all, or an id already used by another task): sent once,
  // not kept, so it cannot replace the outbox entry of the real task.
  if (!s.ok()) {
    log::Error("journal write failed", {{"task_id", id}, {"error", s.ToString()}});
    return;
  }
  if (sink_ == nullptr) return;
  if (!id.empty()) sink_->OnTaskAck(id);
  sink_->OnResult(id, signed_result);
}

void Executor::Finish(JournalTask entry, const Result& result, bool bump_version) {
  Result r = result;
  r.set_agent_time_unix_ms(clock_->NowUnixMs());
  *entry.mutable_signed_result() = SignResult(r, opts_.result_key);
  entry.set_updated_at_unix_ms(r.agent_time_unix_ms());
  if (absl::Status s = journal_->Complete(entry, bump_version); !s.ok()) {
    // Left QUEUED/INTENT in the journal: handled again on the next start.
    log::Error("journal write failed; result not reported",
               {{"task_id", entry.task_id()}, {"error", s.ToString()}});
    return;
  }
  log::Info("task finished", {{"task_id", r.task_id()},
                              {"decision_id", r.decision_id()},
                              {"outcome", writeback::v1::Outcome_Name(r.outcome())},
                              {"recovered", r.recovered() ? "true" : "false"}});
  WB_CRASH_POINT("agent.after_result_journal");
  if (sink_ != nullptr) sink_->OnResult(entry.task_id(), entry.signed_result());
}

void Executor::Execute(JournalTask entry) {
  if (auto stored = journal_->GetTask(entry.task_id());
      stored.ok() && stored->has_value() &&
      (*stored)->state() == writeback::agent::v1::JOURNAL_STATE_DONE) {
    return;  // finished meanwhile: never act twice
  }
  const absl::Time now = clock_->Now();
  TaskCheck c = CheckTask(entry.signed_task(), MakeContext(now), nullptr);
  if (c.verdict == Verdict::kAccept) CheckRollback(*journal_, c);
  if (c.verdict == Verdict::kError) {
    log::Error("task left queued: journal unavailable",
               {{"task_id", entry.task_id()}, {"error", c.message}});
    return;
  }
  if (c.verdict != Verdict::kAccept) {
    // Refused at execution time (expired while queued, rollback, …).
    Result r = BaseResult(c.task, c.statement, c.task_digest);
    r.set_outcome(writeback::v1::OUTCOME_REJECTED);
    r.set_reject_reason(c.reason);
    r.set_message(c.message);
    log::Warn("task rejected", {{"task_id", entry.task_id()},
                                {"decision_id", c.statement.decision_id()},
                                {"reason", writeback::v1::RejectReason_Name(c.reason)},
                                {"message", c.message}});
    Finish(std::move(entry), r, /*bump_version=*/false);
    return;
  }

  if (c.task.verify_only()) {
    // Re-verification (Task.verify_only): every check above passed; only
    // Verify runs, nothing is planned or applied, so no INTENT is journaled
    // (after a crash the task simply runs again) and the rollback floor is
    // not raised. A Verify that cannot observe is UNVERIFIED, not FAILED:
    // only an observation that the effect is gone reports FAILED (drift).
    const connectors::Action action = ActionOf(c.task, c.statement);
    connectors::CallContext cctx;
    cctx.deadline = now + opts_.connector_timeout;
    cctx.clock = clock_;
    cctx.reverification = true;
    Result r = BaseResult(c.task, c.statement, c.task_digest);
    connectors::Connector* conn =
        opts_.instances.find(c.task.connector_instance())->second.connector;
    auto v = conn->Verify(cctx, action);
    if (!v.ok()) {
      r.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
      r.set_message(
          absl::StrCat("re-verification could not observe: verify: ", v.status().ToString()));
    } else {
      *r.mutable_verification() = *v;
      r.set_outcome(VerifiedOutcome(*v));
      r.set_message(absl::StrCat("re-verification: ", OutcomeMessage(*v)));
    }
    Finish(std::move(entry), r, /*bump_version=*/false);
    return;
  }

  entry.set_state(JOURNAL_STATE_INTENT);
  entry.set_updated_at_unix_ms(absl::ToUnixMillis(now));
  if (absl::Status s = journal_->PutTask(&entry); !s.ok()) {
    log::Error("journal write failed; task not applied",
               {{"task_id", entry.task_id()}, {"error", s.ToString()}});
    return;
  }
  WB_CRASH_POINT("agent.after_intent");

  connectors::Connector* conn = opts_.instances.find(c.task.connector_instance())->second.connector;
  connectors::CallContext cctx;
  cctx.deadline = now + opts_.connector_timeout;
  cctx.clock = clock_;
  Result r = BaseResult(c.task, c.statement, c.task_digest);
  PlanApplyVerify(*conn, cctx, ActionOf(c.task, c.statement), r);
  Finish(std::move(entry), r, /*bump_version=*/true);
}

void Executor::Recover(JournalTask entry) {
  // The task was verified when it arrived; its journaled bytes are parsed
  // again. They are checked again only before a re-run: reporting what Verify
  // observes needs no valid task (the dispatch key may have rotated since).
  Task task;
  DecisionStatement statement;
  Result r;
  std::shared_ptr<const std::string> statement_bytes;
  if (task.ParseFromString(entry.signed_task().payload())) {
    statement_bytes = task.statement_digest().empty()
                          ? std::make_shared<const std::string>(task.statement())
                          : journal_first_.FindStatement(task.statement_digest());
  }
  if (statement_bytes == nullptr || !statement.ParseFromString(*statement_bytes)) {
    r.set_task_id(entry.task_id());
    r.set_agent_id(opts_.agent_id);
    r.set_task_digest(entry.task_digest());
    r.set_outcome(writeback::v1::OUTCOME_FAILED);
    r.set_recovered(true);
    r.set_message("recovery: journaled task is unreadable");
    Finish(std::move(entry), r, /*bump_version=*/true);
    return;
  }
  r = BaseResult(task, statement, entry.task_digest());
  r.set_recovered(true);
  auto it = opts_.instances.find(task.connector_instance());
  if (it == opts_.instances.end()) {
    r.set_outcome(writeback::v1::OUTCOME_FAILED);
    r.set_message(absl::StrCat("recovery: connector instance '", task.connector_instance(),
                               "' is no longer configured; apply outcome unknown"));
    Finish(std::move(entry), r, /*bump_version=*/true);
    return;
  }
  const Instance& inst = it->second;
  const absl::Time now = clock_->Now();
  const connectors::Action action = ActionOf(task, statement);
  connectors::CallContext cctx;
  cctx.deadline = now + opts_.connector_timeout;
  cctx.clock = clock_;

  // An idempotent operation is finished: plan/apply/verify run again, once
  // per start, if the task passes the checks it would pass at execution.
  std::string not_rerun = WhyNotRerun(task.connector_instance(), inst, statement.operation());
  if (not_rerun.empty()) {
    TaskCheck c = CheckTask(entry.signed_task(), MakeContext(now), nullptr);
    if (c.verdict == Verdict::kAccept) CheckRollback(*journal_, c);
    if (c.verdict == Verdict::kError) {
      // Left in INTENT: recovered again on the next start.
      log::Error("interrupted task left as is: journal unavailable",
                 {{"task_id", entry.task_id()}, {"error", c.message}});
      return;
    }
    if (c.verdict != Verdict::kAccept) {
      not_rerun = absl::StrCat("the task is no longer valid (",
                               writeback::v1::RejectReason_Name(c.reason), ": ", c.message, ")");
    }
  }
  if (not_rerun.empty()) {
    log::Info("interrupted apply: running plan, apply and verify again",
              {{"task_id", entry.task_id()},
               {"decision_id", statement.decision_id()},
               {"instance", task.connector_instance()},
               {"operation", statement.operation()}});
    PlanApplyVerify(*inst.connector, cctx, action, r);
    // Whether the interrupted run made the change cannot be told apart from
    // "already compliant": an observed effect is reported as VERIFIED.
    if (r.outcome() == writeback::v1::OUTCOME_ALREADY_COMPLIANT) {
      r.set_outcome(writeback::v1::OUTCOME_VERIFIED);
    }
    r.set_message(absl::StrCat(
        "recovered after restart: plan, apply and verify ran again to finish the interrupted "
        "apply; ",
        r.message()));
    Finish(std::move(entry), r, /*bump_version=*/true);
    return;
  }

  log::Warn("interrupted apply: not run again, verifying only",
            {{"task_id", entry.task_id()},
             {"decision_id", statement.decision_id()},
             {"reason", not_rerun}});
  auto v = inst.connector->Verify(cctx, action);
  if (!v.ok()) {
    r.set_outcome(writeback::v1::OUTCOME_FAILED);
    r.set_message(absl::StrCat("recovery: apply outcome unknown (not re-run: ", not_rerun,
                               "); verify: ", v.status().ToString()));
  } else {
    *r.mutable_verification() = *v;
    r.set_outcome(VerifiedOutcome(*v));
    r.set_message(absl::StrCat("recovered after restart (apply outcome unknown; not re-run: ",
                               not_rerun, "); observed: ", OutcomeMessage(*v)));
  }
  Finish(std::move(entry), r, /*bump_version=*/true);
}

}  // namespace wb::agent
