#include "controlplane/fleet/operators_view.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"
#include "controlplane/rpc/grpc_status.h"
#include "controlplane/rpc/paging.h"
#include "controlplane/web/dashboard.h"
#include "writeback/v1/admin_service.grpc.pb.h"

namespace wb::controlplane {

using writeback::v1::DecisionRecord;
using writeback::v1::DecisionState;
using writeback::v1::DecisionView;
using writeback::v1::Event;
using writeback::v1::TaskRecord;

namespace {

// How long a streaming handler waits for events before it checks whether
// its caller went away.
constexpr absl::Duration kStreamPoll = absl::Milliseconds(500);
constexpr uint32_t kMaxBacklog = 10000;
constexpr size_t kOpenTasksShown = 100;

bool IsTerminalDecision(DecisionState s) {
  return s == writeback::v1::DECISION_STATE_VERIFIED || s == writeback::v1::DECISION_STATE_FAILED ||
         s == writeback::v1::DECISION_STATE_EXPIRED ||
         s == writeback::v1::DECISION_STATE_CANCELED ||
         s == writeback::v1::DECISION_STATE_DRIFTED ||
         s == writeback::v1::DECISION_STATE_UNVERIFIABLE ||
         s == writeback::v1::DECISION_STATE_RETIRED;
}

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(m, &out, o).ok()) return "{}";
  return out;
}

template <typename M>
std::string JsonArray(const std::vector<M>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ",";
    out += ToJson(items[i]);
  }
  return out + "]";
}

WebResponse Json(const google::protobuf::Message& m) {
  return WebResponse{200, "application/json", ToJson(m)};
}

WebResponse JsonError(const absl::Status& s) {
  int code = 500;
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      code = 404;
      break;
    case absl::StatusCode::kInvalidArgument:
      code = 400;
      break;
    case absl::StatusCode::kUnavailable:
      code = 503;
      break;
    default:
      break;
  }
  google::protobuf::Struct st;  // {"error": "..."} without hand-escaping
  (*st.mutable_fields())["error"].set_string_value(std::string(s.message()));
  return WebResponse{code, "application/json", ToJson(st)};
}

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

}  // namespace

absl::StatusOr<OperatorsViewOptions> OperatorsViewOptionsFromConfig(
    const writeback::v1::ControlPlaneConfig& cfg) {
  OperatorsViewOptions o;
  o.fleet.heartbeat_interval_seconds =
      cfg.heartbeat_interval_seconds() == 0 ? 10 : cfg.heartbeat_interval_seconds();
  const auto& f = cfg.fleet();
  o.fleet.stale_after_missed_heartbeats =
      f.stale_after_missed_heartbeats() == 0 ? 3 : f.stale_after_missed_heartbeats();
  o.fleet.offline_after_missed_heartbeats =
      f.offline_after_missed_heartbeats() == 0
          ? std::max<uint32_t>(10, o.fleet.stale_after_missed_heartbeats + 1)
          : f.offline_after_missed_heartbeats();
  if (o.fleet.stale_after_missed_heartbeats > 1000) {
    return Invalid("fleet.stale_after_missed_heartbeats", "at most 1000 (0 means 3)");
  }
  if (o.fleet.offline_after_missed_heartbeats <= o.fleet.stale_after_missed_heartbeats ||
      o.fleet.offline_after_missed_heartbeats > 100000) {
    return Invalid("fleet.offline_after_missed_heartbeats",
                   absl::StrCat("must be greater than stale_after_missed_heartbeats (",
                                o.fleet.stale_after_missed_heartbeats, ") and at most 100000"));
  }
  WB_ASSIGN_OR_RETURN(o.reverify, ReverifyOptionsFromConfig(cfg.reverify()));
  o.tick_interval = absl::Seconds(
      cfg.reverify().sweep_interval_seconds() == 0 ? 1 : cfg.reverify().sweep_interval_seconds());

  const std::string& addr = cfg.web_listen_address();
  if (addr.empty()) {
    if (cfg.web_tls()) return Invalid("web_tls", "requires web_listen_address");
    if (cfg.web_require_client_cert()) {
      return Invalid("web_require_client_cert", "requires web_listen_address");
    }
    if (!cfg.web_port_file().empty())
      return Invalid("web_port_file", "requires web_listen_address");
    return o;
  }
  WB_RETURN_IF_ERROR(ValidateWebListenAddress("web_listen_address", addr, cfg.web_tls()));
  if (cfg.web_require_client_cert() && !cfg.web_tls()) {
    return Invalid("web_require_client_cert", "requires web_tls");
  }
  o.web.listen_address = addr;
  o.web.tls = cfg.web_tls();
  if (o.web.tls) {
    o.web.cert_file = cfg.tls().cert_file();
    o.web.key_file = cfg.tls().key_file();
    if (cfg.web_require_client_cert()) o.web.client_ca_file = cfg.tls().ca_file();
  }
  o.web_port_file = cfg.web_port_file();
  return o;
}

OperatorsView::OperatorsView(const Clock* clock, Store* inner, OperatorsViewOptions opts)
    : clock_(clock),
      opts_(std::move(opts)),
      bus_(clock),
      tracker_(&bus_, &metrics_),
      observed_(inner, &tracker_, &metrics_) {}

OperatorsView::~OperatorsView() { Stop(); }

absl::Status OperatorsView::Attach(Dispatcher* dispatcher, SessionRegistry* sessions,
                                   const Authorizer* authz) {
  dispatcher_ = dispatcher;
  sessions_ = sessions;
  authz_ = authz;
  fleet_ = std::make_unique<FleetModel>(clock_, opts_.fleet, dispatcher, sessions, &tracker_);
  WB_RETURN_IF_ERROR(tracker_.Rebuild(*observed_.inner(), opts_.rebuild_max_decisions));
  reverifier_ = std::make_unique<Reverifier>(&observed_, clock_, dispatcher, sessions, &tracker_,
                                             &bus_, &metrics_, opts_.reverify);
  return reverifier_->Start(opts_.rebuild_max_decisions);
}

absl::Status OperatorsView::Start() {
  {
    absl::MutexLock l(&mu_);
    if (started_ || stopped_)
      return absl::FailedPreconditionError("operators view: already started");
    if (fleet_ == nullptr) return absl::FailedPreconditionError("operators view: not attached");
    started_ = true;
  }
  if (!opts_.web.listen_address.empty()) {
    web_ = std::make_unique<WebServer>(opts_.web);
    RegisterRoutes();
    WB_RETURN_IF_ERROR(web_->Start());
    if (!opts_.web_port_file.empty()) {
      fs::WriteOptions wo;
      wo.mode = 0644;
      if (absl::Status s =
              fs::WriteFileAtomic(opts_.web_port_file, absl::StrCat(web_->port(), "\n"), wo);
          !s.ok()) {
        return Invalid("web_port_file", s.message());
      }
    }
  }
  loop_alive_.store(true);
  loop_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void OperatorsView::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  ready_.store(false);
  bus_.Close();
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (loop_.joinable()) loop_.join();
  if (web_ != nullptr) web_->Stop();
}

int OperatorsView::web_port() const { return web_ == nullptr ? 0 : web_->port(); }

void OperatorsView::Loop() {
  do {
    RefreshMetrics(fleet_->Tick(&bus_));
    auto n = reverifier_->Sweep();
    if (!n.ok()) log::Error("re-verification sweep failed", {{"error", n.status().message()}});
  } while (!stop_.WaitForNotificationWithTimeout(opts_.tick_interval));
  loop_alive_.store(false);
}

void OperatorsView::OnAgentConnected(absl::string_view agent_id, const grpc::AuthContext& auth) {
  if (fleet_ == nullptr) return;
  const int64_t not_after = PeerCertNotAfterUnixMs(auth);
  if (not_after > 0) fleet_->SetCertExpiry(agent_id, not_after);
}

void OperatorsView::RefreshMetrics(const writeback::v1::FleetStatusResponse& fleet) {
  Metrics::FleetGauges g;
  const auto& s = fleet.summary();
  g.online = s.online();
  g.stale = s.stale();
  g.offline = s.offline();
  g.queue_depth = s.queue_depth();
  g.in_flight = s.in_flight();
  for (const auto& a : fleet.agents()) {
    g.per_agent[a.agent_id()] = {a.queue_depth(), a.in_flight()};
    for (const auto& inst : a.instances()) {
      if (inst.healthy()) {
        ++g.healthy_instances;
      } else {
        ++g.unhealthy_instances;
      }
    }
  }
  for (const auto& [state, n] : s.decisions_by_state()) g.decisions_by_state[state] = n;
  g.results_refused_total = dispatcher_ == nullptr ? 0 : dispatcher_->rejected_results();
  g.altered_deliveries_total = dispatcher_ == nullptr ? 0 : dispatcher_->altered_deliveries();
  metrics_.SetFleet(g);
}

std::string OperatorsView::RenderMetrics() {
  RefreshMetrics(fleet_->Status({}));
  return metrics_.Render();
}

// ------------------------------------------------------------------ reads

absl::StatusOr<DecisionView> OperatorsView::LoadView(const DecisionRecord& d, bool with_evidence) {
  std::vector<TaskRecord> tasks;
  tasks.reserve(d.task_ids_size());
  for (const std::string& id : d.task_ids()) {
    WB_ASSIGN_OR_RETURN(TaskRecord t, observed_.GetTask(id));
    tasks.push_back(std::move(t));
  }
  DecisionView v = MakeDecisionView(d, tasks, with_evidence);
  AddTimeline(d, tasks, &v);
  if (v.reverifications_size() == 0) {
    WB_RETURN_IF_ERROR(AddReverifications(observed_, d, with_evidence, &v));
  }
  return v;
}

absl::StatusOr<DecisionView> OperatorsView::DecisionDetail(absl::string_view decision_id) {
  if (decision_id.empty()) return Invalid("decision_id", "required");
  WB_ASSIGN_OR_RETURN(DecisionRecord d, observed_.GetDecision(decision_id));
  return LoadView(d, /*with_evidence=*/true);
}

absl::StatusOr<writeback::v1::GetAgentResponse> OperatorsView::AgentDetail(
    absl::string_view id_or_name) {
  writeback::v1::GetAgentResponse resp;
  WB_ASSIGN_OR_RETURN(*resp.mutable_agent(), fleet_->Agent(id_or_name));
  absl::flat_hash_map<std::string, DecisionRecord> decisions;
  for (const std::string& id : tracker_.OpenTasks(resp.agent().agent_id(), kOpenTasksShown)) {
    auto t = observed_.GetTask(id);
    if (!t.ok()) continue;
    auto it = decisions.find(t->decision_id());
    if (it == decisions.end()) {
      auto d = observed_.GetDecision(t->decision_id());
      if (!d.ok()) continue;
      it = decisions.emplace(t->decision_id(), *std::move(d)).first;
    }
    const auto& st = it->second.parsed();
    auto* tv = resp.add_open_tasks();
    tv->set_task_id(t->task_id());
    if (static_cast<int>(t->target_index()) < st.targets_size()) {
      tv->set_target(st.targets(static_cast<int>(t->target_index())).object());
    }
    tv->set_agent_id(t->agent_id());
    tv->set_state(t->state());
    tv->set_delivery_attempts(t->delivery_attempts());
    tv->set_message(absl::StrCat(t->verify_only() ? "re-verification of " : "", "decision ",
                                 st.decision_id(), ": ", st.operation(), " on ",
                                 st.connector_instance()));
  }
  return resp;
}

// ------------------------------------------------------------------ RPCs

grpc::Status OperatorsView::FleetStatus(grpc::ServerContext* ctx,
                                        const writeback::v1::FleetStatusRequest* req,
                                        writeback::v1::FleetStatusResponse* resp) {
  auto caller = authz_->Check(kFleetStatusMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (!writeback::v1::AgentState_IsValid(req->state())) {
    return ToGrpcStatus(Invalid("state", "unknown agent state"));
  }
  auto page = fleet_->StatusPage(*req);
  if (!page.ok()) return ToGrpcStatus(page.status());
  *resp = *std::move(page);
  return grpc::Status::OK;
}

grpc::Status OperatorsView::GetAgent(grpc::ServerContext* ctx,
                                     const writeback::v1::GetAgentRequest* req,
                                     writeback::v1::GetAgentResponse* resp) {
  auto caller = authz_->Check(kGetAgentMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto r = AgentDetail(req->agent_id());
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status OperatorsView::WatchDecision(
    grpc::ServerContext* ctx, const writeback::v1::WatchDecisionRequest* req,
    grpc::ServerWriter<writeback::v1::WatchDecisionResponse>* writer) {
  auto caller = authz_->Check(kWatchDecisionMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  const std::string& id = req->decision_id();
  if (id.empty()) return ToGrpcStatus(Invalid("decision_id", "required"));
  // Taken before the first read: a change after it is never missed.
  uint64_t cursor = bus_.last_seq();
  DecisionState last_state = writeback::v1::DECISION_STATE_UNSPECIFIED;
  auto send = [&](const Event* e) -> absl::StatusOr<bool> {
    WB_ASSIGN_OR_RETURN(DecisionRecord d, observed_.GetDecision(id));
    WB_ASSIGN_OR_RETURN(DecisionView v, LoadView(d, /*with_evidence=*/true));
    writeback::v1::WatchDecisionResponse msg;
    uint32_t done = 0;
    for (const auto& t : v.tasks()) {
      if (!IsOpenTaskState(t.state())) ++done;
    }
    msg.set_tasks_done(done);
    msg.set_tasks_total(static_cast<uint32_t>(v.tasks_size()));
    last_state = v.state();
    *msg.mutable_decision() = std::move(v);
    if (e != nullptr) *msg.mutable_event() = *e;
    return writer->Write(msg);
  };
  auto first = send(nullptr);
  if (!first.ok()) return ToGrpcStatus(first.status());
  if (!*first) return grpc::Status(grpc::StatusCode::CANCELLED, "watcher went away");
  while (!IsTerminalDecision(last_state)) {
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    if (!bus_.WaitNewer(cursor, kStreamPoll)) {
      if (bus_.closed()) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "control plane shutting down");
      }
      continue;
    }
    uint64_t dropped = 0;
    std::vector<Event> events = bus_.Since(cursor, kMaxBacklog, &dropped);
    cursor = events.empty() ? bus_.last_seq() : events.back().seq();
    const Event* relevant = nullptr;
    for (const Event& e : events) {
      if (e.decision_id() == id) relevant = &e;
    }
    if (relevant == nullptr && dropped == 0) continue;
    auto sent = send(relevant);
    if (!sent.ok()) return ToGrpcStatus(sent.status());
    if (!*sent) return grpc::Status(grpc::StatusCode::CANCELLED, "watcher went away");
  }
  return grpc::Status::OK;
}

grpc::Status OperatorsView::ReverifyDecision(grpc::ServerContext* ctx,
                                             const writeback::v1::ReverifyDecisionRequest* req,
                                             writeback::v1::ReverifyDecisionResponse* resp) {
  auto caller = authz_->Check(kReverifyDecisionMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto r = req->remediate() ? reverifier_->Remediate(caller->ToString(), req->decision_id())
                            : reverifier_->ReverifyNow(req->decision_id());
  if (!r.ok()) {
    log::Info(req->remediate() ? "remediation refused" : "re-verification refused",
              {{"decision_id", req->decision_id()},
               {"requester", caller->ToString()},
               {"error", r.status().message()}});
    return ToGrpcStatus(r.status());
  }
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status OperatorsView::RetireDecision(grpc::ServerContext* ctx,
                                           const writeback::v1::RetireDecisionRequest* req,
                                           writeback::v1::RetireDecisionResponse* resp) {
  auto caller = authz_->Check(kRetireDecisionMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto r = reverifier_->Retire(caller->ToString(), req->decision_id(), req->reason());
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status OperatorsView::TailEvents(
    grpc::ServerContext* ctx, const writeback::v1::TailEventsRequest* req,
    grpc::ServerWriter<writeback::v1::TailEventsResponse>* writer) {
  auto caller = authz_->Check(kTailEventsMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (req->backlog() > kMaxBacklog) {
    return ToGrpcStatus(Invalid("backlog", absl::StrCat("at most ", kMaxBacklog)));
  }
  const std::string agent_suffix = absl::StrCat("/agent/", req->agent_id());
  auto match = [&](const Event& e) {
    if (!req->decision_id().empty() && e.decision_id() != req->decision_id()) return false;
    if (!req->agent_id().empty() && e.agent_id() != req->agent_id() &&
        !absl::EndsWith(e.agent_id(), agent_suffix)) {
      return false;
    }
    return true;
  };
  uint64_t pending_dropped = 0;
  auto emit = [&](const std::vector<Event>& events) {
    for (const Event& e : events) {
      if (!match(e)) continue;
      writeback::v1::TailEventsResponse msg;
      *msg.mutable_event() = e;
      msg.set_dropped(pending_dropped);
      pending_dropped = 0;
      if (!writer->Write(msg)) return false;
    }
    return true;
  };
  const uint64_t now_seq = bus_.last_seq();
  uint64_t cursor = now_seq > req->backlog() ? now_seq - req->backlog() : 0;
  while (cursor < now_seq) {
    std::vector<Event> batch = bus_.Since(cursor, 1000);
    if (batch.empty()) break;
    std::vector<Event> upto;
    for (Event& e : batch) {
      if (e.seq() <= now_seq) upto.push_back(std::move(e));
    }
    if (upto.empty()) break;
    cursor = upto.back().seq();
    if (!emit(upto)) return grpc::Status(grpc::StatusCode::CANCELLED, "reader went away");
  }
  cursor = now_seq;
  if (!req->follow()) return grpc::Status::OK;
  while (true) {
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    if (!bus_.WaitNewer(cursor, kStreamPoll)) {
      if (bus_.closed()) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "control plane shutting down");
      }
      continue;
    }
    uint64_t dropped = 0;
    std::vector<Event> events = bus_.Since(cursor, 1000, &dropped);
    pending_dropped += dropped;
    cursor = events.empty() ? bus_.last_seq() : events.back().seq();
    if (!emit(events)) return grpc::Status(grpc::StatusCode::CANCELLED, "reader went away");
  }
}

// ------------------------------------------------------------------ web

namespace {

constexpr uint32_t kDriftListed = 200;

std::vector<DecisionState> DriftStates() {
  return {writeback::v1::DECISION_STATE_DRIFTED, writeback::v1::DECISION_STATE_UNVERIFIABLE};
}

// Every decision state but UNSPECIFIED and the open ones.
std::vector<DecisionState> ClosedStates() {
  std::vector<DecisionState> out;
  const auto* d = writeback::v1::DecisionState_descriptor();
  for (int i = 0; i < d->value_count(); ++i) {
    const auto s = static_cast<DecisionState>(d->value(i)->number());
    if (s != writeback::v1::DECISION_STATE_UNSPECIFIED && !IsOpenDecisionState(s)) {
      out.push_back(s);
    }
  }
  return out;
}

// The web API's paging parameters: limit (1..1000; absent = 0, the
// endpoint's default) and page_token.
absl::Status WebPageParams(const WebRequest& r, uint32_t* limit, std::string* token) {
  *limit = 0;
  if (auto it = r.params.find("limit"); it != r.params.end()) {
    if (!absl::SimpleAtoi(it->second, limit) || *limit == 0 || *limit > paging::kMaxPageSize) {
      return Invalid("limit", absl::StrCat("must be between 1 and ", paging::kMaxPageSize));
    }
  }
  if (auto it = r.params.find("page_token"); it != r.params.end()) *token = it->second;
  return absl::OkStatus();
}

}  // namespace

absl::Status OperatorsView::AppendViews(const std::vector<DecisionState>& states, size_t limit,
                                        uint64_t before_version,
                                        writeback::v1::ListDecisionsResponse* out) {
  DecisionQuery q;
  q.states = states;
  q.limit = limit;
  q.before_version = before_version;
  WB_ASSIGN_OR_RETURN(std::vector<DecisionRecord> list, observed_.QueryDecisions(q));
  for (const DecisionRecord& d : list) {
    WB_ASSIGN_OR_RETURN(auto v, LoadView(d, /*with_evidence=*/false));
    *out->add_decisions() = std::move(v);
  }
  return absl::OkStatus();
}

void OperatorsView::RegisterRoutes() {
  web_->Get("/", [](const WebRequest&) {
    return WebResponse{200, "text/html; charset=utf-8", std::string(DashboardHtml())};
  });
  web_->Get("/healthz", [this](const WebRequest&) {
    return loop_alive_.load() ? WebResponse{200, "text/plain", "ok\n"}
                              : WebResponse{503, "text/plain", "background loop stopped\n"};
  });
  web_->Get("/readyz", [this](const WebRequest&) {
    return ready_.load() ? WebResponse{200, "text/plain", "ready\n"}
                         : WebResponse{503, "text/plain", "not ready\n"};
  });
  web_->Get("/metrics", [this](const WebRequest&) {
    return WebResponse{200, "text/plain; version=0.0.4; charset=utf-8", RenderMetrics()};
  });
  web_->Get("/api/fleet", [this](const WebRequest& r) {
    writeback::v1::FleetStatusRequest req;
    if (auto it = r.params.find("site"); it != r.params.end()) req.set_site(it->second);
    if (auto it = r.params.find("segment"); it != r.params.end()) req.set_segment(it->second);
    uint32_t limit = 0;
    if (auto s = WebPageParams(r, &limit, req.mutable_page_token()); !s.ok()) return JsonError(s);
    req.set_page_size(limit);
    auto page = fleet_->StatusPage(req);
    return page.ok() ? Json(*page) : JsonError(page.status());
  });
  web_->Get("/api/agent", [this](const WebRequest& r) {
    auto it = r.params.find("id");
    auto a = AgentDetail(it == r.params.end() ? "" : it->second);
    return a.ok() ? Json(*a) : JsonError(a.status());
  });
  // What the dashboard shows of decisions, in one request: the open ones
  // (first page only), the newest closed ones (paged: limit, page_token,
  // next_page_token) and the drifted or unverifiable ones. Three reads of
  // the store's state index, each reading only what it returns.
  web_->Get("/api/decisions", [this](const WebRequest& r) {
    uint32_t limit = 0;
    std::string token;
    if (auto s = WebPageParams(r, &limit, &token); !s.ok()) return JsonError(s);
    if (limit == 0) limit = 50;
    const std::string filter = paging::FilterDigest({});
    auto cursor = paging::Decode(token, "web-recent", filter);
    if (!cursor.ok()) return JsonError(cursor.status());
    writeback::v1::ListDecisionsResponse open, recent, drift;
    if (!cursor->has_value()) {
      auto s = AppendViews(
          {writeback::v1::DECISION_STATE_PENDING_APPROVAL, writeback::v1::DECISION_STATE_APPROVED,
           writeback::v1::DECISION_STATE_DISPATCHED},
          limit, 0, &open);
      if (!s.ok()) return JsonError(s);
      s = AppendViews(DriftStates(), kDriftListed, 0, &drift);
      if (!s.ok()) return JsonError(s);
    }
    auto s = AppendViews(ClosedStates(), limit,
                         cursor->has_value() ? (*cursor)->after_version() : 0, &recent);
    if (!s.ok()) return JsonError(s);
    std::string next;
    if (static_cast<uint32_t>(recent.decisions_size()) >= limit) {
      auto c = paging::NewCursor("web-recent", filter);
      c.set_after_version(recent.decisions(recent.decisions_size() - 1).statement().version());
      next = paging::Encode(c);
    }
    return WebResponse{
        200, "application/json",
        absl::StrCat("{\"open\":", ToJson(open), ",\"recent\":", ToJson(recent),
                     ",\"drift\":", ToJson(drift), ",\"next_page_token\":\"", next, "\"}")};
  });
  web_->Get("/api/decisions/([A-Za-z0-9_.-]{1,128})", [this](const WebRequest& r) {
    auto v = DecisionDetail(r.matches.at(0));
    return v.ok() ? Json(*v) : JsonError(v.status());
  });
  // Decisions whose effect is undone (DRIFTED) or can no longer be observed
  // (UNVERIFIABLE): what the operator must look at. Newest first, paged
  // (limit, default 200; page_token).
  web_->Get("/api/drift", [this](const WebRequest& r) {
    uint32_t limit = 0;
    std::string token;
    if (auto s = WebPageParams(r, &limit, &token); !s.ok()) return JsonError(s);
    if (limit == 0) limit = kDriftListed;
    const std::string filter = paging::FilterDigest({});
    auto cursor = paging::Decode(token, "web-drift", filter);
    if (!cursor.ok()) return JsonError(cursor.status());
    writeback::v1::ListDecisionsResponse out;
    auto s = AppendViews(DriftStates(), limit, cursor->has_value() ? (*cursor)->after_version() : 0,
                         &out);
    if (!s.ok()) return JsonError(s);
    if (static_cast<uint32_t>(out.decisions_size()) >= limit) {
      auto c = paging::NewCursor("web-drift", filter);
      c.set_after_version(out.decisions(out.decisions_size() - 1).statement().version());
      out.set_next_page_token(paging::Encode(c));
    }
    return Json(out);
  });
  web_->Get("/api/ttv", [this](const WebRequest&) {
    google::protobuf::ListValue recent;
    for (const TtvSample& t : tracker_.RecentTtv(500)) {
      google::protobuf::Struct p;
      (*p.mutable_fields())["verified_at_unix_ms"].set_number_value(
          static_cast<double>(t.verified_at_unix_ms));
      (*p.mutable_fields())["ttv_ms"].set_number_value(static_cast<double>(t.ttv_ms));
      (*p.mutable_fields())["connector_type"].set_string_value(t.connector_type);
      (*p.mutable_fields())["site"].set_string_value(t.site);
      *recent.add_values()->mutable_struct_value() = std::move(p);
    }
    return WebResponse{200, "application/json",
                       absl::StrCat("{\"by_connector\":", JsonArray(tracker_.TtvByConnector()),
                                    ",\"by_site\":", JsonArray(tracker_.TtvBySite()),
                                    ",\"recent\":", ToJson(recent), "}")};
  });
  web_->Get("/api/events", [this](const WebRequest& r) {
    uint64_t after = 0;
    if (auto it = r.params.find("after");
        it != r.params.end() && !absl::SimpleAtoi(it->second, &after)) {
      return JsonError(Invalid("after", "not a number"));
    }
    std::vector<Event> events = after == 0 ? bus_.Last(50) : bus_.Since(after, 200);
    return WebResponse{
        200, "application/json",
        absl::StrCat("{\"last_seq\":", bus_.last_seq(), ",\"events\":", JsonArray(events), "}")};
  });
}

}  // namespace wb::controlplane
