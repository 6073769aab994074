#include "controlplane/fleet/fleet_model.h"

#include <grpcpp/security/auth_context.h>

#include <algorithm>
#include <map>
#include <optional>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/status/macros.h"
#include "controlplane/rpc/paging.h"

namespace wb::controlplane {

using writeback::v1::AgentRecord;
using writeback::v1::AgentState;
using writeback::v1::AgentStatus;

namespace {

// Lower is worse.
int Rank(AgentState s) {
  switch (s) {
    case writeback::v1::AGENT_STATE_OFFLINE:
      return 0;
    case writeback::v1::AGENT_STATE_STALE:
      return 1;
    case writeback::v1::AGENT_STATE_ONLINE:
      return 2;
    default:
      return 3;
  }
}

// Worst first: state, then most unhealthy instances, longest silent, id.
// KeyRef refers to the agent's id (for sorting without copies); SortKey
// holds it (a page token's position).
using SortKey = std::tuple<int, int64_t, int64_t, std::string>;
using KeyRef = std::tuple<int, int64_t, int64_t, const std::string&>;
KeyRef KeyOf(const AgentStatus& a) {
  return KeyRef(Rank(a.state()), -static_cast<int64_t>(a.unhealthy_instances()),
                a.last_seen_unix_ms(), a.agent_id());
}

std::string Label(const AgentStatus& a, const char* key) {
  auto it = a.labels().find(key);
  return it == a.labels().end() ? "" : it->second;
}

std::string Ago(int64_t ms) {
  if (ms < 120'000) return absl::StrCat(ms / 1000, "s");
  if (ms < 7'200'000) return absl::StrCat(ms / 60'000, "m");
  return absl::StrCat(ms / 3'600'000, "h");
}

}  // namespace

std::string AgentStateName(AgentState s) {
  switch (s) {
    case writeback::v1::AGENT_STATE_ONLINE:
      return "ONLINE";
    case writeback::v1::AGENT_STATE_STALE:
      return "STALE";
    case writeback::v1::AGENT_STATE_OFFLINE:
      return "OFFLINE";
    default:
      return "UNSPECIFIED";
  }
}

AgentState ComputeAgentState(bool connected, int64_t last_seen_unix_ms, int64_t now_unix_ms,
                             const FleetOptions& opts, uint32_t* missed, std::string* reason) {
  const int64_t interval_ms =
      int64_t{std::max<uint32_t>(1, opts.heartbeat_interval_seconds)} * 1000;
  const int64_t silent_ms =
      last_seen_unix_ms > 0 ? std::max<int64_t>(0, now_unix_ms - last_seen_unix_ms) : -1;
  const uint32_t n =
      silent_ms < 0
          ? UINT32_MAX
          : static_cast<uint32_t>(std::min<int64_t>(silent_ms / interval_ms, int64_t{UINT32_MAX}));
  if (missed != nullptr) *missed = silent_ms < 0 ? 0 : n;
  AgentState s;
  std::string why;
  if (connected && n < opts.stale_after_missed_heartbeats) {
    s = writeback::v1::AGENT_STATE_ONLINE;
    why = "connected, heartbeats arriving";
  } else if (connected && n < opts.offline_after_missed_heartbeats) {
    s = writeback::v1::AGENT_STATE_STALE;
    why = absl::StrCat("connected but silent for ", Ago(silent_ms), " (", n, " heartbeats missed)");
  } else if (!connected && n < opts.stale_after_missed_heartbeats) {
    s = writeback::v1::AGENT_STATE_STALE;
    why = absl::StrCat("disconnected ", Ago(silent_ms), " ago; expected to reconnect");
  } else {
    s = writeback::v1::AGENT_STATE_OFFLINE;
    why = silent_ms < 0 ? "never seen"
          : connected   ? absl::StrCat("stream open but silent for ", Ago(silent_ms))
                        : absl::StrCat("disconnected, last seen ", Ago(silent_ms), " ago");
  }
  if (reason != nullptr) *reason = std::move(why);
  return s;
}

int64_t PeerCertNotAfterUnixMs(const grpc::AuthContext& auth) {
  for (const auto& v : auth.FindPropertyValues("x509_pem_cert")) {
    auto cert = crypto::ParseCert(absl::string_view(v.data(), v.size()));
    if (cert.ok()) return absl::ToUnixMillis(cert->not_after);
  }
  return 0;
}

FleetModel::FleetModel(const Clock* clock, FleetOptions opts, const Dispatcher* dispatcher,
                       const SessionRegistry* sessions, const Tracker* tracker)
    : clock_(clock), opts_(opts), dispatcher_(dispatcher), sessions_(sessions), tracker_(tracker) {}

void FleetModel::SetCertExpiry(absl::string_view agent_id, int64_t not_after_unix_ms) {
  absl::MutexLock l(&mu_);
  cert_not_after_[agent_id] = not_after_unix_ms;
}

AgentStatus FleetModel::MakeStatus(const AgentRecord& rec, int64_t now_ms) const {
  AgentStatus a;
  a.set_agent_id(rec.agent_id());
  *a.mutable_labels() = rec.labels();
  a.set_version(rec.version());
  auto since = sessions_->ConnectedSince(rec.agent_id());
  a.set_connected(since.has_value());
  if (since) a.set_connected_since_unix_ms(*since);
  a.set_last_seen_unix_ms(rec.last_seen_unix_ms());
  a.set_first_seen_unix_ms(rec.first_seen_unix_ms());
  uint32_t missed = 0;
  std::string reason;
  a.set_state(ComputeAgentState(since.has_value(), rec.last_seen_unix_ms(), now_ms, opts_, &missed,
                                &reason));
  a.set_missed_heartbeats(missed);
  a.set_state_reason(reason);
  uint32_t unhealthy = 0;
  for (const auto& inst : rec.instances()) {
    *a.add_instances() = inst;
    if (!inst.healthy()) ++unhealthy;
  }
  a.set_unhealthy_instances(unhealthy);
  for (const auto& r : rec.refused_instances()) {
    auto* ri = a.add_refused_instances();
    ri->set_instance(r.instance().name());
    ri->set_reason(r.reason());
  }
  *a.mutable_relay_path() = rec.relay_path();
  const AgentCounters c = tracker_->Counters(rec.agent_id());
  a.set_queue_depth(c.queued);
  a.set_in_flight(c.delivered);
  a.set_applied(c.applied);
  a.set_verified(c.verified);
  a.set_failed(c.failed);
  a.set_refused(c.refused);
  a.set_last_verified_at_unix_ms(c.last_verified_at_unix_ms);
  {
    absl::MutexLock l(&mu_);
    auto it = cert_not_after_.find(rec.agent_id());
    if (it != cert_not_after_.end()) a.set_cert_not_after_unix_ms(it->second);
  }
  // Not seen on a connection (an agent behind relays: the control plane sees
  // the relay's certificate): the one issued at enrolment, renewal or re-join.
  if (a.cert_not_after_unix_ms() == 0) a.set_cert_not_after_unix_ms(rec.cert_not_after_unix_ms());
  return a;
}

writeback::v1::FleetStatusResponse FleetModel::Status(
    const writeback::v1::FleetStatusRequest& filter) const {
  const int64_t now_ms = clock_->NowUnixMs();
  writeback::v1::FleetStatusResponse resp;
  auto* sum = resp.mutable_summary();
  sum->set_generated_at_unix_ms(now_ms);
  sum->set_heartbeat_interval_seconds(opts_.heartbeat_interval_seconds);
  sum->set_stale_after_missed_heartbeats(opts_.stale_after_missed_heartbeats);
  sum->set_offline_after_missed_heartbeats(opts_.offline_after_missed_heartbeats);
  std::map<std::pair<std::string, std::string>, writeback::v1::SiteCell> grid;
  std::vector<AgentStatus> agents;
  for (AgentStatus& a : AllStatuses(now_ms)) {
    sum->set_agents(sum->agents() + 1);
    switch (a.state()) {
      case writeback::v1::AGENT_STATE_ONLINE:
        sum->set_online(sum->online() + 1);
        break;
      case writeback::v1::AGENT_STATE_STALE:
        sum->set_stale(sum->stale() + 1);
        break;
      default:
        sum->set_offline(sum->offline() + 1);
        break;
    }
    sum->set_queue_depth(sum->queue_depth() + a.queue_depth());
    sum->set_in_flight(sum->in_flight() + a.in_flight());
    sum->set_unhealthy_instances(sum->unhealthy_instances() + a.unhealthy_instances());
    sum->set_refused_instances(sum->refused_instances() +
                               static_cast<uint32_t>(a.refused_instances_size()));

    const std::string site = Label(a, "site");
    const std::string segment = Label(a, "segment");
    if (filter.state() != writeback::v1::AGENT_STATE_UNSPECIFIED && a.state() != filter.state()) {
      continue;
    }
    if (!filter.site().empty() && site != filter.site()) continue;
    if (!filter.segment().empty() && segment != filter.segment()) continue;
    auto& cell = grid[{site, segment}];
    cell.set_site(site);
    cell.set_segment(segment);
    switch (a.state()) {
      case writeback::v1::AGENT_STATE_ONLINE:
        cell.set_online(cell.online() + 1);
        break;
      case writeback::v1::AGENT_STATE_STALE:
        cell.set_stale(cell.stale() + 1);
        break;
      default:
        cell.set_offline(cell.offline() + 1);
        break;
    }
    agents.push_back(std::move(a));
  }
  std::sort(agents.begin(), agents.end(),
            [](const AgentStatus& x, const AgentStatus& y) { return KeyOf(x) < KeyOf(y); });
  for (auto& a : agents) *resp.add_agents() = std::move(a);
  for (auto& [key, cell] : grid) *resp.add_grid() = std::move(cell);
  for (const auto& [state, n] : tracker_->DecisionsByState()) {
    (*sum->mutable_decisions_by_state())[state] = n;
  }
  for (auto& s : tracker_->TtvByConnector()) *resp.add_ttv_by_connector() = std::move(s);
  for (auto& s : tracker_->TtvBySite()) *resp.add_ttv_by_site() = std::move(s);
  return resp;
}

absl::StatusOr<writeback::v1::FleetStatusResponse> FleetModel::StatusPage(
    const writeback::v1::FleetStatusRequest& req) const {
  const uint32_t page_size = paging::PageSize(req.page_size());
  const std::string filter = paging::FilterDigest(
      {absl::StrCat(static_cast<int>(req.state())), req.site(), req.segment()});
  WB_ASSIGN_OR_RETURN(auto cursor, paging::Decode(req.page_token(), "fleet", filter));
  std::optional<SortKey> after;
  if (cursor.has_value()) {
    if (cursor->after_numbers_size() != 3) {
      return absl::InvalidArgumentError("page_token: not a fleet position");
    }
    after = SortKey{static_cast<int>(cursor->after_numbers(0)), cursor->after_numbers(1),
                    cursor->after_numbers(2), cursor->after_key()};
  }
  writeback::v1::FleetStatusResponse all = Status(req);
  writeback::v1::FleetStatusResponse page = all;
  page.clear_agents();
  for (AgentStatus& a : *all.mutable_agents()) {
    if (after.has_value() && !(*after < KeyOf(a))) continue;
    if (static_cast<uint32_t>(page.agents_size()) >= page_size) {
      const KeyRef last = KeyOf(page.agents(page.agents_size() - 1));
      auto next = paging::NewCursor("fleet", filter);
      next.add_after_numbers(std::get<0>(last));
      next.add_after_numbers(std::get<1>(last));
      next.add_after_numbers(std::get<2>(last));
      next.set_after_key(std::get<3>(last));
      page.set_next_page_token(paging::Encode(next));
      break;
    }
    *page.add_agents() = std::move(a);
  }
  return page;
}

std::vector<AgentStatus> FleetModel::AllStatuses(int64_t now_ms) const {
  std::vector<AgentStatus> all;
  absl::flat_hash_map<std::string, AgentState> state;
  for (const AgentRecord& rec : dispatcher_->Agents()) {
    all.push_back(MakeStatus(rec, now_ms));
    state[rec.agent_id()] = all.back().state();
  }
  for (AgentStatus& a : all) {
    if (a.state() == writeback::v1::AGENT_STATE_ONLINE) continue;
    // Nearest the control plane first: that relay cuts off everything below.
    for (int i = a.relay_path_size() - 1; i >= 0; --i) {
      auto it = state.find(a.relay_path(i));
      if (it != state.end() && it->second == writeback::v1::AGENT_STATE_ONLINE) continue;
      a.set_unreachable_via(a.relay_path(i));
      a.set_state_reason(
          absl::StrCat(a.state_reason(), "; unreachable through relay ", a.relay_path(i), " (",
                       it == state.end() ? "unknown" : AgentStateName(it->second), ")"));
      break;
    }
  }
  return all;
}

absl::StatusOr<AgentStatus> FleetModel::Agent(absl::string_view id_or_name) const {
  if (id_or_name.empty()) return absl::InvalidArgumentError("agent_id: required");
  const bool full = absl::StartsWith(id_or_name, "spiffe://");
  const std::string suffix = absl::StrCat("/agent/", id_or_name);
  for (AgentStatus& a : AllStatuses(clock_->NowUnixMs())) {
    if (full ? a.agent_id() == id_or_name : absl::EndsWith(a.agent_id(), suffix)) {
      return std::move(a);
    }
  }
  return absl::NotFoundError(absl::StrCat("agent_id: no agent '", id_or_name, "'"));
}

writeback::v1::FleetStatusResponse FleetModel::Tick(EventBus* bus) {
  writeback::v1::FleetStatusResponse fleet = Status({});
  std::vector<writeback::v1::Event> events;
  {
    absl::MutexLock l(&mu_);
    for (const AgentStatus& a : fleet.agents()) {
      auto [it, inserted] = last_states_.emplace(a.agent_id(), a.state());
      if (!inserted && it->second == a.state()) continue;
      const AgentState before = inserted ? writeback::v1::AGENT_STATE_UNSPECIFIED : it->second;
      it->second = a.state();
      // The first tick records; an agent seen for the first time later is
      // reported (it just registered).
      if (!ticked_) continue;
      writeback::v1::Event e;
      e.set_kind(writeback::v1::EVENT_KIND_AGENT_STATE);
      e.set_agent_id(a.agent_id());
      e.set_agent_state(a.state());
      e.set_detail(absl::StrCat(
          before == writeback::v1::AGENT_STATE_UNSPECIFIED ? "" : AgentStateName(before) + " -> ",
          AgentStateName(a.state()), ": ", a.state_reason()));
      events.push_back(std::move(e));
    }
    ticked_ = true;
  }
  for (auto& e : events) bus->Publish(std::move(e));
  return fleet;
}

}  // namespace wb::controlplane
