#include "controlplane/reverify/reverifier.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/actions/action_class.h"
#include "common/actions/actions.h"
#include "common/actions/coverage.h"
#include "common/audit/chain.h"
#include "common/envelope/envelope.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"
#include "controlplane/metrics/metrics.h"

namespace wb::controlplane {

using writeback::v1::DecisionRecord;
using writeback::v1::DecisionState;
using writeback::v1::TaskRecord;

namespace {

constexpr size_t kMaxDetailTargets = 5;

bool Reverifiable(DecisionState s) {
  return s == writeback::v1::DECISION_STATE_VERIFIED ||
         s == writeback::v1::DECISION_STATE_DRIFTED ||
         s == writeback::v1::DECISION_STATE_UNVERIFIABLE;
}

std::string TargetKey(absl::string_view instance, absl::string_view object) {
  return absl::StrCat(instance, std::string(1, '\0'), object);
}

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
std::string CutUtf8(std::string s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
  return s;
}

std::string FirstLine(absl::string_view s) {
  const size_t nl = s.find('\n');
  return std::string(nl == absl::string_view::npos ? s : s.substr(0, nl));
}

// "N of M target(s) <what>: a (why); b (why); ..." within 1 KiB.
std::string ListTargets(const std::vector<std::string>& items, size_t n, absl::string_view what) {
  std::vector<std::string> shown(items.begin(),
                                 items.begin() + std::min(items.size(), kMaxDetailTargets));
  return CutUtf8(
      absl::StrCat(items.size(), " of ", n, " target(s) ", what, ": ", absl::StrJoin(shown, "; "),
                   items.size() > shown.size() ? "; ..." : ""),
      1024);
}

}  // namespace

absl::StatusOr<ReverifyOptions> ReverifyOptionsFromConfig(const writeback::v1::ReverifyConfig& c) {
  ReverifyOptions o;
  constexpr uint32_t kMax = 365u * 24 * 3600;
  if (c.default_interval_seconds() > kMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("reverify.default_interval_seconds: at most ", kMax, " (a year)"));
  }
  o.default_interval = absl::Seconds(c.default_interval_seconds());
  for (const auto& [key, secs] : c.interval_seconds()) {
    const std::string field = absl::StrCat("reverify.interval_seconds[", key, "]");
    if (key.empty() || key.size() > 128 || absl::StrContains(key, ' ') ||
        std::count(key.begin(), key.end(), '/') > 1 || key.front() == '/' || key.back() == '/') {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": key must be \"<connector type>/<operation>\" or \"<operation>\""));
    }
    if (secs > kMax) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": at most ", kMax, " seconds"));
    }
    o.intervals[key] = absl::Seconds(secs);
  }
  if (c.task_ttl_seconds() != 0 && (c.task_ttl_seconds() < 10 || c.task_ttl_seconds() > 86400)) {
    return absl::InvalidArgumentError(
        "reverify.task_ttl_seconds: must be between 10 and 86400 (0 means 600)");
  }
  if (c.task_ttl_seconds() != 0) o.task_ttl = absl::Seconds(c.task_ttl_seconds());
  if (c.max_per_sweep() > 100000) {
    return absl::InvalidArgumentError("reverify.max_per_sweep: at most 100000 (0 means 100)");
  }
  if (c.max_per_sweep() != 0) o.max_per_sweep = c.max_per_sweep();
  if (c.sweep_interval_seconds() > 3600) {
    return absl::InvalidArgumentError("reverify.sweep_interval_seconds: at most 3600 (0 means 1)");
  }
  return o;
}

std::string RemediatesFromReason(absl::string_view reason) {
  if (!absl::StartsWith(reason, kRemediationReasonPrefix)) return "";
  absl::string_view rest = reason.substr(sizeof(kRemediationReasonPrefix) - 1);
  const size_t colon = rest.find(':');
  return std::string(colon == absl::string_view::npos ? rest : rest.substr(0, colon));
}

Reverifier::Reverifier(Store* store, const Clock* clock, Dispatcher* dispatcher,
                       SessionRegistry* sessions, Tracker* tracker, EventBus* bus, Metrics* metrics,
                       ReverifyOptions opts)
    : store_(store),
      clock_(clock),
      dispatcher_(dispatcher),
      sessions_(sessions),
      tracker_(tracker),
      bus_(bus),
      metrics_(metrics),
      opts_([&] {
        if (!opts.random_bytes) opts.random_bytes = [](size_t n) { return crypto::RandomBytes(n); };
        return std::move(opts);
      }()) {}

absl::Duration Reverifier::IntervalFor(absl::string_view type, absl::string_view op) const {
  if (auto it = opts_.intervals.find(absl::StrCat(type, "/", op)); it != opts_.intervals.end()) {
    return it->second;
  }
  if (auto it = opts_.intervals.find(std::string(op)); it != opts_.intervals.end()) {
    return it->second;
  }
  return opts_.default_interval;
}

absl::Duration Reverifier::IntervalOf(const DecisionRecord& d) const {
  const std::string type = tracker_->InstanceType(d.parsed().connector_instance());
  // A momentary effect (ended sessions, connections, leases) leaves nothing
  // lasting to observe: never scheduled (common/actions/action_class.h).
  if (const auto* traits = actions::OperationTraitsOf(type, d.parsed().operation());
      traits != nullptr && traits->momentary) {
    return absl::ZeroDuration();
  }
  return IntervalFor(type, d.parsed().operation());
}

std::optional<absl::Time> Reverifier::NextDue(absl::string_view decision_id) const {
  absl::MutexLock l(&mu_);
  auto it = due_.find(decision_id);
  if (it == due_.end()) return std::nullopt;
  return it->second;
}

void Reverifier::Schedule(const std::string& id, absl::Time due) {
  absl::MutexLock l(&mu_);
  auto it = due_.find(id);
  if (it != due_.end()) queue_.erase({it->second, id});
  due_[id] = due;
  queue_.insert({due, id});
}

void Reverifier::Unschedule(const std::string& id) {
  absl::MutexLock l(&mu_);
  auto it = due_.find(id);
  if (it == due_.end()) return;
  queue_.erase({it->second, id});
  due_.erase(it);
}

std::string Reverifier::NewTaskId() {
  return absl::StrCat("t-", crypto::HexEncode(opts_.random_bytes(12)));
}

void Reverifier::Index(const DecisionRecord& d) {
  const auto& st = d.parsed();
  absl::MutexLock l(&mu_);
  for (const auto& t : st.targets()) {
    auto& list = by_target_[TargetKey(st.connector_instance(), t.object())];
    if (std::any_of(list.begin(), list.end(),
                    [&](const Indexed& i) { return i.decision_id == st.decision_id(); })) {
      continue;
    }
    list.push_back(Indexed{st.decision_id(), st.version(), st.operation(), st.params()});
  }
}

void Reverifier::Unindex(const DecisionRecord& d) {
  const auto& st = d.parsed();
  absl::MutexLock l(&mu_);
  for (const auto& t : st.targets()) {
    auto it = by_target_.find(TargetKey(st.connector_instance(), t.object()));
    if (it == by_target_.end()) continue;
    std::erase_if(it->second, [&](const Indexed& i) { return i.decision_id == st.decision_id(); });
    if (it->second.empty()) by_target_.erase(it);
  }
}

std::string Reverifier::CoveringFor(const DecisionRecord& d, const std::string& object) {
  const auto& st = d.parsed();
  std::vector<Indexed> candidates;
  {
    absl::MutexLock l(&mu_);
    auto it = by_target_.find(TargetKey(st.connector_instance(), object));
    if (it == by_target_.end()) return "";
    candidates = it->second;
  }
  const std::string type = tracker_->InstanceType(st.connector_instance());
  // Newest first: the latest covering decision is the one watching.
  std::sort(candidates.begin(), candidates.end(),
            [](const Indexed& x, const Indexed& y) { return x.version > y.version; });
  for (const Indexed& c : candidates) {
    if (c.version <= st.version()) break;
    if (!actions::Covers(type, {c.operation, c.params}, {st.operation(), st.params()})) continue;
    auto cover = store_->GetDecision(c.decision_id);
    if (cover.ok() && cover->state() == writeback::v1::DECISION_STATE_VERIFIED) {
      return c.decision_id;
    }
  }
  return "";
}

absl::Status Reverifier::Start(size_t max_decisions) {
  tracker_->SetReverifyListener([this](const TaskRecord& t) {
    absl::MutexLock l(&mu_);
    results_.insert(t.decision_id());
  });
  bus_->AddListener([this](const writeback::v1::Event& e) {
    if (e.kind() == writeback::v1::EVENT_KIND_DECISION_STATE &&
        e.decision_state() == writeback::v1::DECISION_STATE_VERIFIED) {
      absl::MutexLock l(&mu_);
      newly_verified_.push_back(e.decision_id());
    }
  });
  for (DecisionState s :
       {writeback::v1::DECISION_STATE_VERIFIED, writeback::v1::DECISION_STATE_DRIFTED,
        writeback::v1::DECISION_STATE_UNVERIFIABLE}) {
    WB_ASSIGN_OR_RETURN(std::vector<DecisionRecord> list, store_->ListDecisions(max_decisions, s));
    for (const DecisionRecord& d : list) {
      const absl::Duration every = IntervalOf(d);
      if (every <= absl::ZeroDuration()) continue;
      const int64_t base = std::max(d.last_reverify_at_unix_ms(), d.finished_at_unix_ms());
      Schedule(d.parsed().decision_id(), absl::FromUnixMillis(base) + every);
      Index(d);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> Reverifier::Sweep() {
  std::vector<std::string> verified;
  std::vector<std::string> results;
  {
    absl::MutexLock l(&mu_);
    verified.swap(newly_verified_);
    results.assign(results_.begin(), results_.end());
    results_.clear();
  }
  const absl::Time now = clock_->Now();
  for (const std::string& id : verified) {
    {
      absl::MutexLock l(&mu_);
      if (due_.contains(id)) continue;  // a drift that resolved: keep its slot
    }
    auto d = store_->GetDecision(id);
    if (!d.ok()) continue;
    const absl::Duration every = IntervalOf(*d);
    if (every > absl::ZeroDuration()) {
      Schedule(id, now + every);
      Index(*d);
    }
  }
  {
    absl::MutexLock w(&write_mu_);
    for (const std::string& id : results) {
      if (absl::Status s = Evaluate(id); !s.ok()) {
        log::Error("re-verification result not evaluated",
                   {{"decision_id", id}, {"error", s.message()}});
      }
    }
  }

  std::vector<std::string> due;
  {
    absl::MutexLock l(&mu_);
    for (auto it = queue_.begin(); it != queue_.end() && it->first <= now; ++it) {
      if (due.size() >= opts_.max_per_sweep) break;
      due.push_back(it->second);
    }
  }
  size_t issued = 0;
  for (const std::string& id : due) {
    absl::StatusOr<IssueResult> r;
    writeback::v1::ReverifyDecisionResponse resp;
    {
      absl::MutexLock w(&write_mu_);
      r = Issue(id, &resp);
    }
    if (!r.ok()) {
      log::Warn("re-verification not issued",
                {{"decision_id", id}, {"error", r.status().message()}});
    }
    auto d = store_->GetDecision(id);
    const absl::Duration every = d.ok() ? IntervalOf(*d) : absl::ZeroDuration();
    if (r.ok() && (*r == IssueResult::kNotEligible || *r == IssueResult::kMomentary)) {
      Unschedule(id);
      if (d.ok()) Unindex(*d);
    } else if (every > absl::ZeroDuration()) {
      Schedule(id, now + every);
    } else {
      Unschedule(id);
    }
    if (r.ok() && *r == IssueResult::kIssued) ++issued;
  }
  return issued;
}

absl::StatusOr<Reverifier::IssueResult> Reverifier::Issue(
    absl::string_view decision_id, writeback::v1::ReverifyDecisionResponse* resp) {
  WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(decision_id));
  resp->set_decision_id(d.parsed().decision_id());
  resp->set_state(d.state());
  if (!Reverifiable(d.state())) return IssueResult::kNotEligible;
  if (const auto* traits = actions::OperationTraitsOf(
          tracker_->InstanceType(d.parsed().connector_instance()), d.parsed().operation());
      traits != nullptr && traits->momentary) {
    return IssueResult::kMomentary;
  }
  // The previous round: tasks past their lifetime without an answer are
  // expired (they count as "cannot tell"); one still open waits.
  if (d.reverify_task_ids_size() > 0) {
    WB_ASSIGN_OR_RETURN(std::vector<TaskRecord> prev,
                        dispatcher_->ExpireVerifyTasks(decision_id, {d.reverify_task_ids().begin(),
                                                                     d.reverify_task_ids().end()}));
    bool expired_now = false;
    for (const TaskRecord& t : prev) {
      if (IsOpenTaskState(t.state())) return IssueResult::kInProgress;
      expired_now |= t.state() == writeback::v1::TASK_STATE_EXPIRED && !t.has_result() &&
                     t.finished_at_unix_ms() >= d.last_reverify_at_unix_ms();
    }
    if (expired_now) {
      WB_RETURN_IF_ERROR(Evaluate(decision_id));
      WB_ASSIGN_OR_RETURN(d, store_->GetDecision(decision_id));
      if (!Reverifiable(d.state())) return IssueResult::kNotEligible;
    }
  }
  const auto& st = d.parsed();
  const int64_t now_ms = clock_->NowUnixMs();
  // The agent serving the instance now (a replaced host watches its
  // predecessor's decisions: verify-only tasks need only the audience).
  const std::string agent_id = dispatcher_->AgentServing(st.connector_instance());
  // Targets watched through a newer covering decision get no task.
  d.clear_watched_through();
  std::vector<int> observe;
  for (int i = 0; i < st.targets_size(); ++i) {
    const std::string& object = st.targets(i).object();
    if (std::string by = CoveringFor(d, object); !by.empty()) {
      (*d.mutable_watched_through())[object] = by;
    } else {
      observe.push_back(i);
    }
  }
  if (!observe.empty() && agent_id.empty()) {
    return absl::UnavailableError(
        absl::StrCat("no agent serves instance '", st.connector_instance(), "'"));
  }
  const int64_t expires = now_ms + absl::ToInt64Milliseconds(opts_.task_ttl);
  Dispatcher::TaskIssue issue;
  issue.statement = &st;
  issue.statement_bytes = &d.statement();
  issue.approvals = &d.approvals();
  issue.agent_id = agent_id;
  issue.target_indexes = observe;
  issue.now_ms = now_ms;
  issue.expires_at_unix_ms = expires;
  issue.verify_only = true;
  issue.new_task_id = [this] { return NewTaskId(); };
  std::vector<TaskRecord> tasks = dispatcher_->SignTasks(issue);
  d.clear_reverify_task_ids();
  for (const TaskRecord& t : tasks) {
    d.add_reverify_task_ids(t.task_id());
    resp->add_task_ids(t.task_id());
  }
  d.set_last_reverify_at_unix_ms(now_ms);
  audit::AuditEvents events;
  for (const TaskRecord& t : tasks) {
    events.push_back(audit::TaskDispatched(dispatcher_->options().controlplane_id, now_ms, t));
  }
  WB_RETURN_IF_ERROR(store_->SaveProgress(d, true, tasks, events));
  if (tasks.empty()) {
    // Every target watched through newer decisions: evaluated at once.
    WB_RETURN_IF_ERROR(Evaluate(decision_id));
    log::Info(
        "re-verification watched through newer covering decisions",
        {{"decision_id", st.decision_id()}, {"targets", absl::StrCat(d.watched_through_size())}});
    return IssueResult::kWatched;
  }
  sessions_->Wake(agent_id);
  if (metrics_ != nullptr) metrics_->ObserveReverifyIssued(tasks.size());
  writeback::v1::Event e;
  e.set_kind(writeback::v1::EVENT_KIND_REVERIFY_ISSUED);
  e.set_decision_id(st.decision_id());
  e.set_agent_id(agent_id);
  e.set_decision_state(d.state());
  e.set_detail(absl::StrCat(tasks.size(), " verify-only task(s) sent",
                            d.watched_through_size() > 0
                                ? absl::StrCat(", ", d.watched_through_size(),
                                               " target(s) watched through newer decisions")
                                : ""));
  bus_->Publish(std::move(e));
  log::Info("re-verification issued", {{"decision_id", st.decision_id()},
                                       {"agent_id", agent_id},
                                       {"tasks", absl::StrCat(tasks.size())},
                                       {"watched", absl::StrCat(d.watched_through_size())}});
  return IssueResult::kIssued;
}

absl::Status Reverifier::Evaluate(absl::string_view decision_id) {
  WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(decision_id));
  if (!Reverifiable(d.state())) return absl::OkStatus();
  const auto& st = d.parsed();
  std::vector<std::string> drifted;  // "target (detail)"
  std::vector<std::string> drifted_targets;
  std::vector<std::string> unobservable;  // "target (why)"
  std::vector<std::string> unobservable_targets;
  size_t ok = 0, open = 0;
  for (const std::string& id : d.reverify_task_ids()) {
    WB_ASSIGN_OR_RETURN(TaskRecord t, store_->GetTask(id));
    if (IsOpenTaskState(t.state())) {
      ++open;
      continue;
    }
    const std::string target = static_cast<int>(t.target_index()) < st.targets_size()
                                   ? st.targets(static_cast<int>(t.target_index())).object()
                                   : "";
    auto cannot_tell = [&](std::string why) {
      unobservable_targets.push_back(target);
      unobservable.push_back(why.empty() ? target : absl::StrCat(target, " (", why, ")"));
    };
    if (!t.has_result()) {
      cannot_tell(absl::StrCat("no answer from ", t.agent_id(), " before the task expired"));
      continue;
    }
    switch (t.result().outcome()) {
      case writeback::v1::OUTCOME_VERIFIED:
      case writeback::v1::OUTCOME_ALREADY_COMPLIANT:
        ++ok;
        break;
      case writeback::v1::OUTCOME_FAILED: {
        drifted_targets.push_back(target);
        std::string why = FirstLine(t.result().verification().detail());
        if (why.empty()) why = FirstLine(t.result().message());
        drifted.push_back(why.empty() ? target : absl::StrCat(target, " (", why, ")"));
        break;
      }
      case writeback::v1::OUTCOME_REJECTED:
        cannot_tell(
            absl::StrCat("the agent refused to look: ",
                         writeback::v1::RejectReason_Name(t.result().reject_reason()).substr(14),
                         " ", FirstLine(t.result().message())));
        break;
      default: {  // UNVERIFIED
        std::string why = FirstLine(t.result().verification().detail());
        if (why.empty()) why = FirstLine(t.result().message());
        cannot_tell(why);
        break;
      }
    }
  }
  const size_t watched = static_cast<size_t>(d.watched_through_size());
  const int64_t now_ms = clock_->NowUnixMs();
  const size_t n = static_cast<size_t>(st.targets_size());
  const std::string& cp = dispatcher_->options().controlplane_id;
  auto save = [&](DecisionState old_state) -> absl::Status {
    audit::AuditEvents events;
    audit::AddStateChanges(cp, now_ms, d, old_state, {}, {}, &events);
    return store_->SaveProgress(d, true, {}, events);
  };
  auto publish = [&](writeback::v1::EventKind kind, const std::string& targets) {
    writeback::v1::Event e;
    e.set_kind(kind);
    e.set_decision_id(st.decision_id());
    e.set_decision_state(d.state());
    e.set_target(targets);
    e.set_detail(d.state_detail());
    bus_->Publish(std::move(e));
  };
  const DecisionState old_state = d.state();
  if (!drifted.empty()) {
    std::string detail = ListTargets(drifted, n, "drifted");
    const bool newly = d.state() != writeback::v1::DECISION_STATE_DRIFTED;
    if (!newly && d.state_detail() == detail) return absl::OkStatus();
    d.set_state(writeback::v1::DECISION_STATE_DRIFTED);
    d.set_state_detail(detail);
    if (newly) {
      d.set_drifted_at_unix_ms(now_ms);
      d.clear_remediated_by();
    }
    WB_RETURN_IF_ERROR(save(old_state));
    if (newly) {
      if (metrics_ != nullptr) metrics_->ObserveDriftDetected();
      publish(writeback::v1::EVENT_KIND_DRIFT_DETECTED, absl::StrJoin(drifted_targets, ","));
      log::Warn("drift detected", {{"decision_id", st.decision_id()},
                                   {"connector_instance", st.connector_instance()},
                                   {"targets", absl::StrJoin(drifted_targets, ",")}});
    }
    return absl::OkStatus();
  }
  if (!unobservable.empty()) {
    // Cannot tell. A DRIFTED decision stays DRIFTED: nothing showed the
    // drift gone.
    if (d.state() == writeback::v1::DECISION_STATE_DRIFTED) return absl::OkStatus();
    std::string detail = ListTargets(unobservable, n, "cannot be observed");
    const bool newly = d.state() != writeback::v1::DECISION_STATE_UNVERIFIABLE;
    if (!newly && d.state_detail() == detail) return absl::OkStatus();
    d.set_state(writeback::v1::DECISION_STATE_UNVERIFIABLE);
    d.set_state_detail(detail);
    if (newly) d.set_unverifiable_at_unix_ms(now_ms);
    WB_RETURN_IF_ERROR(save(old_state));
    if (newly) {
      if (metrics_ != nullptr) metrics_->ObserveUnverifiableDetected();
      publish(writeback::v1::EVENT_KIND_UNVERIFIABLE, absl::StrJoin(unobservable_targets, ","));
      log::Warn("re-verification cannot observe the effect: decision UNVERIFIABLE",
                {{"decision_id", st.decision_id()},
                 {"connector_instance", st.connector_instance()},
                 {"targets", absl::StrJoin(unobservable_targets, ",")},
                 {"detail", detail}});
    }
    return absl::OkStatus();
  }
  if (open > 0 || ok + watched != n || n == 0) return absl::OkStatus();
  // Every target observed verified (or watched through a newer decision).
  std::string note;
  if (watched > 0) {
    std::set<std::string> by;
    for (const auto& [object, id] : d.watched_through()) by.insert(id);
    note = absl::StrCat(watched, " target(s) watched through decision ", absl::StrJoin(by, ", "),
                        ", which covers this effect");
  }
  if (d.state() == writeback::v1::DECISION_STATE_VERIFIED) {
    // Only the note about watched targets may change.
    if (watched == 0 || d.state_detail() == absl::StrCat("verified; ", note)) {
      return absl::OkStatus();
    }
    d.set_state_detail(absl::StrCat("verified; ", note));
    return store_->SaveProgress(d, true, {}, {});
  }
  const bool was_drifted = d.state() == writeback::v1::DECISION_STATE_DRIFTED;
  d.set_state(writeback::v1::DECISION_STATE_VERIFIED);
  d.set_unverifiable_at_unix_ms(0);
  d.set_state_detail(absl::StrCat(
      was_drifted ? "drift resolved: " : "observable again: ",
      n == 1 ? "the target" : "every target", " verified again",
      note.empty() ? "" : absl::StrCat(" (", note, ")"),
      was_drifted && !d.remediated_by().empty() ? absl::StrCat(" after ", d.remediated_by()) : ""));
  WB_RETURN_IF_ERROR(save(old_state));
  publish(was_drifted ? writeback::v1::EVENT_KIND_DRIFT_RESOLVED
                      : writeback::v1::EVENT_KIND_OBSERVABLE_AGAIN,
          "");
  log::Info(was_drifted ? "drift resolved" : "decision observable again",
            {{"decision_id", st.decision_id()}});
  return absl::OkStatus();
}

absl::StatusOr<writeback::v1::ReverifyDecisionResponse> Reverifier::ReverifyNow(
    absl::string_view decision_id) {
  if (decision_id.empty()) return absl::InvalidArgumentError("decision_id: required");
  writeback::v1::ReverifyDecisionResponse resp;
  absl::StatusOr<IssueResult> r;
  {
    absl::MutexLock w(&write_mu_);
    r = Issue(decision_id, &resp);
  }
  if (!r.ok()) return r.status();
  switch (*r) {
    case IssueResult::kIssued:
    case IssueResult::kWatched:
      break;
    case IssueResult::kInProgress:
      return absl::FailedPreconditionError(
          absl::StrCat("decision ", decision_id,
                       ": a re-verification is still waiting for its agent; try again when it "
                       "finished (decision watch shows it)"));
    case IssueResult::kNotEligible:
      return absl::FailedPreconditionError(absl::StrCat(
          "decision ", decision_id, " is ", writeback::v1::DecisionState_Name(resp.state()),
          "; only VERIFIED, DRIFTED or UNVERIFIABLE decisions are re-verified"));
    case IssueResult::kMomentary:
      return absl::FailedPreconditionError(absl::StrCat(
          "decision ", decision_id,
          ": its operation has no lasting effect to re-verify (it ended what existed when it "
          "ran, and was verified then)"));
  }
  if (auto d = store_->GetDecision(decision_id); d.ok()) {
    const absl::Duration every = IntervalOf(*d);
    if (every > absl::ZeroDuration()) {
      Schedule(std::string(decision_id), clock_->Now() + every);
      Index(*d);
    }
  }
  return resp;
}

absl::StatusOr<writeback::v1::RetireDecisionResponse> Reverifier::Retire(
    absl::string_view requester, absl::string_view decision_id, absl::string_view reason) {
  if (decision_id.empty()) return absl::InvalidArgumentError("decision_id: required");
  WB_RETURN_IF_ERROR(actions::ValidateText("reason", reason, kMaxReasonBytes, false));
  absl::MutexLock w(&write_mu_);
  WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(decision_id));
  if (!Reverifiable(d.state())) {
    return absl::FailedPreconditionError(
        absl::StrCat("decision ", decision_id, " is ", writeback::v1::DecisionState_Name(d.state()),
                     "; only VERIFIED, DRIFTED or UNVERIFIABLE decisions are retired"));
  }
  const int64_t now_ms = clock_->NowUnixMs();
  const DecisionState old_state = d.state();
  d.set_retired_from(old_state);
  d.set_retired_by(std::string(requester));
  d.set_retired_at_unix_ms(now_ms);
  d.set_retired_reason(std::string(reason));
  d.set_state(writeback::v1::DECISION_STATE_RETIRED);
  d.set_state_detail(
      CutUtf8(absl::StrCat("retired by ", requester, " (was ",
                           writeback::v1::DecisionState_Name(old_state).substr(15), "): ", reason),
              1024));
  audit::AuditEvents events;
  writeback::v1::AuditEvent e =
      audit::NewEvent(writeback::v1::AUDIT_EVENT_KIND_DECISION_RETIRED, requester, now_ms);
  e.set_decision_id(std::string(decision_id));
  e.set_detail(std::string(reason));
  events.push_back(std::move(e));
  audit::AddStateChanges(requester, now_ms, d, old_state, {}, {}, &events);
  WB_RETURN_IF_ERROR(store_->SaveProgress(d, true, {}, events));
  Unschedule(std::string(decision_id));
  Unindex(d);
  log::Info("decision retired", {{"decision_id", std::string(decision_id)},
                                 {"requester", std::string(requester)},
                                 {"was", writeback::v1::DecisionState_Name(old_state)}});
  writeback::v1::RetireDecisionResponse resp;
  resp.set_decision_id(std::string(decision_id));
  resp.set_state(d.state());
  resp.set_retired_from(old_state);
  return resp;
}

absl::StatusOr<writeback::v1::ReverifyDecisionResponse> Reverifier::Remediate(
    absl::string_view requester, absl::string_view decision_id) {
  if (decision_id.empty()) return absl::InvalidArgumentError("decision_id: required");
  WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(decision_id));
  const auto& st = d.parsed();
  if (d.state() != writeback::v1::DECISION_STATE_DRIFTED) {
    return absl::FailedPreconditionError(absl::StrCat("decision ", decision_id, " is ",
                                                      writeback::v1::DecisionState_Name(d.state()),
                                                      "; only DRIFTED decisions are re-issued"));
  }
  std::vector<std::string> targets;
  for (const std::string& id : d.reverify_task_ids()) {
    auto t = store_->GetTask(id);
    if (!t.ok() || !t->has_result() || t->result().outcome() != writeback::v1::OUTCOME_FAILED) {
      continue;
    }
    if (static_cast<int>(t->target_index()) < st.targets_size()) {
      targets.push_back(st.targets(static_cast<int>(t->target_index())).object());
    }
  }
  if (targets.empty()) {
    for (const auto& t : st.targets()) targets.push_back(t.object());
  }
  writeback::v1::SubmitDecisionRequest req;
  auto* spec = req.mutable_spec();
  spec->set_connector_instance(st.connector_instance());
  spec->set_operation(st.operation());
  *spec->mutable_params() = st.params();
  for (const auto& t : targets) spec->add_targets()->set_object(t);
  spec->set_reason(
      CutUtf8(absl::StrCat(kRemediationReasonPrefix, st.decision_id(), ": ", st.reason()),
              kMaxReasonBytes));
  spec->set_reference(st.reference());
  // One re-issue per drift: repeating the command finds the first one.
  req.set_request_id(absl::StrCat("remediate/", st.decision_id(), "/", d.drifted_at_unix_ms()));
  WB_ASSIGN_OR_RETURN(writeback::v1::SubmitDecisionResponse sub,
                      dispatcher_->Submit(requester, req));
  {
    absl::MutexLock w(&write_mu_);
    WB_ASSIGN_OR_RETURN(DecisionRecord cur, store_->GetDecision(decision_id));
    if (cur.remediated_by() != sub.decision_id()) {
      cur.set_remediated_by(sub.decision_id());
      // remediated_by is not a state change; the new decision's own
      // DECISION_SUBMITTED (by `requester`) is in the audit chain.
      WB_RETURN_IF_ERROR(store_->SaveProgress(cur, true, {}, {}));
      if (metrics_ != nullptr) metrics_->ObserveRemediationIssued();
      writeback::v1::Event e;
      e.set_kind(writeback::v1::EVENT_KIND_REMEDIATION_ISSUED);
      e.set_decision_id(st.decision_id());
      e.set_decision_state(cur.state());
      e.set_target(absl::StrJoin(targets, ","));
      e.set_detail(absl::StrCat("re-issued as decision ", sub.decision_id(), " by ", requester));
      bus_->Publish(std::move(e));
      log::Info("drift remediation issued", {{"decision_id", st.decision_id()},
                                             {"remediation_decision_id", sub.decision_id()},
                                             {"requester", requester}});
    }
  }
  writeback::v1::ReverifyDecisionResponse resp;
  resp.set_decision_id(st.decision_id());
  resp.set_remediation_decision_id(sub.decision_id());
  resp.set_state(d.state());
  return resp;
}

}  // namespace wb::controlplane
