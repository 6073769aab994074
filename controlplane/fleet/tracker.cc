#include "controlplane/fleet/tracker.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "controlplane/metrics/metrics.h"

namespace wb::controlplane {

using writeback::v1::AgentRecord;
using writeback::v1::DecisionRecord;
using writeback::v1::DecisionState;
using writeback::v1::Event;
using writeback::v1::TaskRecord;
using writeback::v1::TaskState;

namespace {

constexpr size_t kMaxSamplesPerKey = 10000;
constexpr size_t kMaxRecentSamples = 2000;
constexpr size_t kMaxDetailBytes = 512;

std::string StateShort(DecisionState s) {
  std::string n = writeback::v1::DecisionState_Name(s);
  constexpr absl::string_view kPrefix = "DECISION_STATE_";
  return absl::StartsWith(n, kPrefix) ? n.substr(kPrefix.size()) : n;
}

std::string Clip(absl::string_view s) {
  if (s.size() <= kMaxDetailBytes) return std::string(s);
  return absl::StrCat(s.substr(0, kMaxDetailBytes), "...");
}

std::string TargetOf(const DecisionRecord& d, const TaskRecord& t) {
  const auto& targets = d.parsed().targets();
  return static_cast<int>(t.target_index()) < targets.size()
             ? targets[static_cast<int>(t.target_index())].object()
             : std::string();
}

void Bump(std::deque<int64_t>& q, int64_t v) {
  q.push_back(v);
  while (q.size() > kMaxSamplesPerKey) q.pop_front();
}

}  // namespace

int64_t Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  size_t idx = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(idx, sorted.size() - 1)];
}

Tracker::Tracker(EventBus* bus, Metrics* metrics) : bus_(bus), metrics_(metrics) {}

void Tracker::SetReverifyListener(std::function<void(const TaskRecord&)> fn) {
  reverify_listener_ = std::move(fn);
}

absl::Status Tracker::Rebuild(Store& store, size_t max_decisions) {
  auto agents = store.ListAgents();
  if (!agents.ok()) return agents.status();
  {
    absl::MutexLock l(&mu_);
    for (const AgentRecord& a : *agents) ApplyAgent(a);
  }
  auto decisions = store.ListDecisions(max_decisions, writeback::v1::DECISION_STATE_UNSPECIFIED);
  if (!decisions.ok()) return decisions.status();
  // Oldest first, so that the samples end in time order.
  std::reverse(decisions->begin(), decisions->end());
  for (const DecisionRecord& d : *decisions) {
    std::vector<TaskRecord> tasks;
    for (const auto* ids : {&d.task_ids(), &d.reverify_task_ids()}) {
      for (const std::string& id : *ids) {
        auto t = store.GetTask(id);
        if (!t.ok()) {
          if (t.status().code() == absl::StatusCode::kNotFound) continue;
          return t.status();
        }
        tasks.push_back(*std::move(t));
      }
    }
    Pending ignored;
    absl::MutexLock l(&mu_);
    ApplyDecision(d, /*live=*/false, &ignored);
    for (const TaskRecord& t : tasks) ApplyTask(d, t, /*live=*/false, &ignored);
  }
  return absl::OkStatus();
}

void Tracker::OnDecisionCreated(const DecisionRecord& d, const std::vector<TaskRecord>& tasks) {
  Pending p;
  {
    absl::MutexLock l(&mu_);
    ApplyDecision(d, /*live=*/true, &p);
    for (const TaskRecord& t : tasks) ApplyTask(d, t, /*live=*/true, &p);
  }
  Flush(p);
}

void Tracker::OnProgress(const DecisionRecord& d, bool decision_changed,
                         const std::vector<TaskRecord>& tasks) {
  Pending p;
  {
    absl::MutexLock l(&mu_);
    // Task events first: the result that finished a decision precedes the
    // decision's new state in the feed.
    for (const TaskRecord& t : tasks) ApplyTask(d, t, /*live=*/true, &p);
    if (decision_changed) ApplyDecision(d, /*live=*/true, &p);
  }
  Flush(p);
}

void Tracker::OnAgentPut(const AgentRecord& a) {
  Pending p;
  {
    absl::MutexLock l(&mu_);
    const bool known = agent_site_.contains(a.agent_id());
    ApplyAgent(a);
    if (!known) {
      Event e;
      e.set_kind(writeback::v1::EVENT_KIND_AGENT_REGISTERED);
      e.set_agent_id(a.agent_id());
      e.set_detail(absl::StrCat("version ", a.version(), ", ", a.instances_size(), " instances"));
      p.events.push_back(std::move(e));
    }
    // Instances it offers without being bound to them: one event when a
    // refusal starts.
    auto& refused = refused_[a.agent_id()];
    absl::flat_hash_set<std::string> now;
    for (const auto& r : a.refused_instances()) {
      now.insert(r.instance().name());
      if (refused.contains(r.instance().name())) continue;
      Event e;
      e.set_kind(writeback::v1::EVENT_KIND_INSTANCE_CLAIM_REFUSED);
      e.set_agent_id(a.agent_id());
      e.set_target(r.instance().name());
      e.set_detail(Clip(r.reason()));
      p.events.push_back(std::move(e));
    }
    refused = std::move(now);
  }
  Flush(p);
}

void Tracker::OnBindingPut(const writeback::v1::InstanceBinding& b) {
  Pending p;
  Event e;
  e.set_kind(writeback::v1::EVENT_KIND_INSTANCE_BINDING);
  e.set_agent_id(b.agent_id());
  e.set_target(b.instance());
  if (b.has_pending()) {
    e.set_detail(absl::StrCat("rebind to ", b.pending().parsed().agent_id(), " waits for ",
                              "approvals (", b.pending().approvals_size(), " so far)"));
  } else if (b.agent_id().empty()) {
    e.set_detail(absl::StrCat("unbound (was ", b.previous_agent_id(), ") by ", b.bound_by()));
  } else {
    e.set_detail(absl::StrCat(
        "bound by ", b.bound_by(),
        b.previous_agent_id().empty() ? "" : absl::StrCat(" (was ", b.previous_agent_id(), ")")));
  }
  p.events.push_back(std::move(e));
  Flush(p);
}

void Tracker::ApplyAgent(const AgentRecord& a) {
  auto site = a.labels().find("site");
  agent_site_[a.agent_id()] = site == a.labels().end() ? "" : site->second;
  for (const auto& inst : a.instances()) {
    instances_[inst.name()] = {inst.type(), a.agent_id()};
  }
  agents_[a.agent_id()];  // known, even without tasks
}

void Tracker::ApplyTask(const DecisionRecord& d, const TaskRecord& t, bool live, Pending* out) {
  auto it = open_.find(t.task_id());
  const bool was_open = it != open_.end();
  const TaskState prev = was_open ? it->second.state : writeback::v1::TASK_STATE_UNSPECIFIED;
  if (was_open) {
    AgentCounters& c = agents_[it->second.agent_id];
    if (prev == writeback::v1::TASK_STATE_QUEUED && c.queued > 0) --c.queued;
    if (prev == writeback::v1::TASK_STATE_DELIVERED && c.delivered > 0) --c.delivered;
  }
  auto base_event = [&](writeback::v1::EventKind kind) {
    Event e;
    e.set_kind(kind);
    e.set_decision_id(t.decision_id());
    e.set_task_id(t.task_id());
    e.set_agent_id(t.agent_id());
    e.set_task_state(t.state());
    e.set_target(TargetOf(d, t));
    return e;
  };

  if (IsOpenTaskState(t.state())) {
    open_[t.task_id()] = OpenTask{t.agent_id(), t.state(), t.queued_at_unix_ms()};
    AgentCounters& c = agents_[t.agent_id()];
    if (t.state() == writeback::v1::TASK_STATE_QUEUED) ++c.queued;
    if (t.state() == writeback::v1::TASK_STATE_DELIVERED) ++c.delivered;
    if (live && t.state() == writeback::v1::TASK_STATE_DELIVERED &&
        prev != writeback::v1::TASK_STATE_DELIVERED) {
      Event e = base_event(writeback::v1::EVENT_KIND_TASK_DELIVERED);
      e.set_detail(absl::StrCat("delivery attempt ", t.delivery_attempts()));
      out->events.push_back(std::move(e));
    }
    return;
  }

  if (was_open) open_.erase(it);
  if (!t.has_result()) {
    if (!live) return;
    if (t.state() == writeback::v1::TASK_STATE_EXPIRED) {
      if (metrics_ != nullptr && !t.verify_only()) metrics_->ObserveTaskExpired();
      out->events.push_back(base_event(writeback::v1::EVENT_KIND_TASK_EXPIRED));
    } else {
      out->events.push_back(base_event(writeback::v1::EVENT_KIND_TASK_RESULT));
    }
    if (t.verify_only()) out->reverify_results.push_back(t);
    return;
  }

  const auto& r = t.result();
  if (!t.verify_only()) {
    AgentCounters& c = agents_[t.agent_id()];
    switch (r.outcome()) {
      case writeback::v1::OUTCOME_VERIFIED:
      case writeback::v1::OUTCOME_ALREADY_COMPLIANT:
        ++c.applied;
        ++c.verified;
        c.last_verified_at_unix_ms = std::max(c.last_verified_at_unix_ms, t.finished_at_unix_ms());
        break;
      case writeback::v1::OUTCOME_UNVERIFIED:
        ++c.applied;
        break;
      case writeback::v1::OUTCOME_FAILED:
        ++c.failed;
        break;
      case writeback::v1::OUTCOME_REJECTED:
        ++c.refused;
        break;
      default:
        break;
    }
  }
  if (!live) return;
  if (metrics_ != nullptr) metrics_->ObserveResult(r.outcome(), r.reject_reason(), t.verify_only());
  Event e = base_event(t.verify_only() ? writeback::v1::EVENT_KIND_REVERIFY_RESULT
                                       : writeback::v1::EVENT_KIND_TASK_RESULT);
  e.set_outcome(r.outcome());
  e.set_reject_reason(r.reject_reason());
  e.set_detail(Clip(r.message()));
  out->events.push_back(std::move(e));
  if (t.verify_only()) out->reverify_results.push_back(t);
}

std::string Tracker::SiteOfDecision(const DecisionRecord& d) const {
  auto inst = instances_.find(d.parsed().connector_instance());
  if (inst == instances_.end()) return "";
  auto site = agent_site_.find(inst->second.second);
  return site == agent_site_.end() ? "" : site->second;
}

void Tracker::ApplyDecision(const DecisionRecord& d, bool live, Pending* out) {
  const std::string& id = d.parsed().decision_id();
  auto it = decisions_.find(id);
  const DecisionState prev =
      it == decisions_.end() ? writeback::v1::DECISION_STATE_UNSPECIFIED : it->second;
  const DecisionState now = d.state();
  if (prev == now) return;
  if (prev != writeback::v1::DECISION_STATE_UNSPECIFIED) {
    auto& n = by_state_[StateShort(prev)];
    if (n > 0) --n;
  }
  ++by_state_[StateShort(now)];
  decisions_[id] = now;

  // A first verification (not a drift that resolved) is a time-to-verified
  // sample.
  const bool first_verified = d.finished_at_unix_ms() > 0 && d.submitted_at_unix_ms() > 0 &&
                              (live ? now == writeback::v1::DECISION_STATE_VERIFIED &&
                                          (prev == writeback::v1::DECISION_STATE_UNSPECIFIED ||
                                           IsOpenDecisionState(prev)) &&
                                          d.drifted_at_unix_ms() == 0
                                    : now == writeback::v1::DECISION_STATE_VERIFIED ||
                                          now == writeback::v1::DECISION_STATE_DRIFTED);
  if (first_verified) {
    auto inst = instances_.find(d.parsed().connector_instance());
    TtvSample s;
    s.verified_at_unix_ms = d.finished_at_unix_ms();
    s.ttv_ms = std::max<int64_t>(0, d.finished_at_unix_ms() - d.submitted_at_unix_ms());
    s.connector_type = inst == instances_.end() ? "" : inst->second.first;
    s.site = SiteOfDecision(d);
    if (live && metrics_ != nullptr) {
      metrics_->ObserveTimeToVerified(s.connector_type, s.site, absl::Milliseconds(s.ttv_ms));
    }
    AddTtv(std::move(s));
  }
  if (!live) return;
  Event e;
  e.set_kind(prev == writeback::v1::DECISION_STATE_UNSPECIFIED && IsOpenDecisionState(now)
                 ? writeback::v1::EVENT_KIND_DECISION_SUBMITTED
                 : writeback::v1::EVENT_KIND_DECISION_STATE);
  e.set_decision_id(id);
  e.set_decision_state(now);
  if (e.kind() == writeback::v1::EVENT_KIND_DECISION_SUBMITTED) {
    e.set_detail(absl::StrCat(d.parsed().operation(), " on ", d.parsed().connector_instance(), ", ",
                              d.parsed().targets_size(), " target(s), by ",
                              d.parsed().requester()));
  } else {
    e.set_detail(absl::StrCat(
        prev == writeback::v1::DECISION_STATE_UNSPECIFIED ? "" : StateShort(prev) + " -> ",
        StateShort(now), d.state_detail().empty() ? "" : ": ", Clip(d.state_detail())));
  }
  out->events.push_back(std::move(e));
}

void Tracker::AddTtv(TtvSample s) {
  Bump(ttv_by_type_[s.connector_type], s.ttv_ms);
  Bump(ttv_by_site_[s.site], s.ttv_ms);
  recent_ttv_.push_back(std::move(s));
  while (recent_ttv_.size() > kMaxRecentSamples) recent_ttv_.pop_front();
}

void Tracker::Flush(Pending& p) {
  for (Event& e : p.events) bus_->Publish(std::move(e));
  if (reverify_listener_) {
    for (const TaskRecord& t : p.reverify_results) reverify_listener_(t);
  }
}

AgentCounters Tracker::Counters(absl::string_view agent_id) const {
  absl::MutexLock l(&mu_);
  auto it = agents_.find(agent_id);
  return it == agents_.end() ? AgentCounters{} : it->second;
}

std::map<std::string, AgentCounters> Tracker::AllCounters() const {
  absl::MutexLock l(&mu_);
  return std::map<std::string, AgentCounters>(agents_.begin(), agents_.end());
}

std::map<std::string, uint64_t> Tracker::DecisionsByState() const {
  absl::MutexLock l(&mu_);
  return by_state_;
}

std::vector<writeback::v1::TimeToVerifiedStats> Tracker::Stats(
    const std::map<std::string, std::deque<int64_t>>& by_key) const {
  std::vector<writeback::v1::TimeToVerifiedStats> out;
  for (const auto& [key, q] : by_key) {
    std::vector<int64_t> v(q.begin(), q.end());
    std::sort(v.begin(), v.end());
    writeback::v1::TimeToVerifiedStats s;
    s.set_key(key);
    s.set_count(v.size());
    s.set_p50_ms(Percentile(v, 50));
    s.set_p90_ms(Percentile(v, 90));
    s.set_p99_ms(Percentile(v, 99));
    s.set_max_ms(v.empty() ? 0 : v.back());
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<writeback::v1::TimeToVerifiedStats> Tracker::TtvByConnector() const {
  absl::MutexLock l(&mu_);
  return Stats(ttv_by_type_);
}

std::vector<writeback::v1::TimeToVerifiedStats> Tracker::TtvBySite() const {
  absl::MutexLock l(&mu_);
  return Stats(ttv_by_site_);
}

std::vector<TtvSample> Tracker::RecentTtv(size_t n) const {
  absl::MutexLock l(&mu_);
  const size_t start = recent_ttv_.size() > n ? recent_ttv_.size() - n : 0;
  return std::vector<TtvSample>(recent_ttv_.begin() + static_cast<std::ptrdiff_t>(start),
                                recent_ttv_.end());
}

std::vector<std::string> Tracker::OpenTasks(absl::string_view agent_id, size_t max) const {
  std::vector<std::pair<int64_t, std::string>> found;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, t] : open_) {
      if (t.agent_id == agent_id) found.emplace_back(t.queued_at_unix_ms, id);
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& [at, id] : found) {
    if (out.size() >= max) break;
    out.push_back(std::move(id));
  }
  return out;
}

std::string Tracker::InstanceType(absl::string_view instance) const {
  absl::MutexLock l(&mu_);
  auto it = instances_.find(instance);
  return it == instances_.end() ? "" : it->second.first;
}

std::string Tracker::AgentSite(absl::string_view agent_id) const {
  absl::MutexLock l(&mu_);
  auto it = agent_site_.find(agent_id);
  return it == agent_site_.end() ? "" : it->second;
}

}  // namespace wb::controlplane
