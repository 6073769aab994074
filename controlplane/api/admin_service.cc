#include "controlplane/api/admin_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/actions/actions.h"
#include "common/logging/logging.h"
#include "common/tls/tls.h"
#include "controlplane/enroll/enrollment_service.h"
#include "controlplane/rpc/grpc_status.h"
#include "controlplane/rpc/paging.h"

namespace wb::controlplane {

using writeback::v1::DecisionRecord;
using writeback::v1::DecisionView;
using writeback::v1::TaskRecord;

namespace {
// ListDecisions stops adding decisions before the response nears the 4 MiB
// message limit.
constexpr size_t kMaxListResponseBytes = 3 << 20;
}  // namespace

AdminServiceImpl::AdminServiceImpl(const Authorizer* authz, Dispatcher* dispatcher, Store* store,
                                   const SessionRegistry* sessions)
    : authz_(authz), dispatcher_(dispatcher), store_(store), sessions_(sessions) {}

absl::StatusOr<std::vector<TaskRecord>> AdminServiceImpl::LoadTasks(const DecisionRecord& d) {
  std::vector<TaskRecord> tasks;
  tasks.reserve(d.task_ids_size());
  for (const std::string& id : d.task_ids()) {
    auto t = store_->GetTask(id);
    if (!t.ok()) return t.status();
    tasks.push_back(*std::move(t));
  }
  return tasks;
}

grpc::Status AdminServiceImpl::SubmitDecision(grpc::ServerContext* ctx,
                                              const writeback::v1::SubmitDecisionRequest* req,
                                              writeback::v1::SubmitDecisionResponse* resp) {
  auto caller = authz_->Check(kSubmitDecisionMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto r = dispatcher_->Submit(caller->ToString(), *req);
  if (!r.ok()) {
    log::Info("submit refused",
              {{"requester", caller->ToString()}, {"error", r.status().message()}});
    return ToGrpcStatus(r.status());
  }
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::CancelDecision(grpc::ServerContext* ctx,
                                              const writeback::v1::CancelDecisionRequest* req,
                                              writeback::v1::CancelDecisionResponse* resp) {
  auto caller = authz_->Check(kCancelDecisionMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto r = dispatcher_->Cancel(caller->ToString(), req->decision_id());
  if (!r.ok()) return ToGrpcStatus(r.status());
  resp->set_decision_id(req->decision_id());
  resp->set_state(r->state);
  resp->set_state_detail(r->state_detail);
  resp->set_tasks_canceled(static_cast<uint32_t>(r->tasks_canceled));
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ApproveDecision(grpc::ServerContext* ctx,
                                               const writeback::v1::ApproveDecisionRequest* req,
                                               writeback::v1::ApproveDecisionResponse* resp) {
  auto caller = authz_->Check(kApproveDecisionMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto r = dispatcher_->Approve(caller->ToString(), req->decision_id(), req->approval());
  if (!r.ok()) {
    log::Info("approval refused", {{"caller", caller->ToString()},
                                   {"decision_id", req->decision_id()},
                                   {"error", r.status().message()}});
    return ToGrpcStatus(r.status());
  }
  resp->set_decision_id(req->decision_id());
  resp->set_state(r->state);
  resp->set_approvals(r->approvals);
  resp->set_required(r->required);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::PublishTrustPolicy(
    grpc::ServerContext* ctx, const writeback::v1::PublishTrustPolicyRequest* req,
    writeback::v1::PublishTrustPolicyResponse* resp) {
  auto caller = authz_->Check(kPublishTrustPolicyMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto r = dispatcher_->PublishTrustPolicy(req->policy());
  if (!r.ok()) {
    log::Warn("trust policy refused",
              {{"caller", caller->ToString()}, {"error", r.status().message()}});
    return ToGrpcStatus(r.status());
  }
  log::Info("trust policy published by operator",
            {{"caller", caller->ToString()}, {"version", absl::StrCat(r->first->version())}});
  resp->set_version(r->first->version());
  resp->set_agents_notified(static_cast<uint32_t>(r->second));
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::GetTrustPolicy(grpc::ServerContext* ctx,
                                              const writeback::v1::GetTrustPolicyRequest* req,
                                              writeback::v1::GetTrustPolicyResponse* resp) {
  auto caller = authz_->Check(kGetTrustPolicyMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (auto p = dispatcher_->trust_policy(); p != nullptr) {
    *resp->mutable_policy() = p->envelope;
    *resp->mutable_parsed() = p->policy;
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::CreateJoinToken(grpc::ServerContext* ctx,
                                               const writeback::v1::CreateJoinTokenRequest* req,
                                               writeback::v1::CreateJoinTokenResponse* resp) {
  auto caller = authz_->Check(kCreateJoinTokenMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (enroller_ == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "enrolment is not configured on this control plane "
                        "(enrollment.ca_key_file)");
  }
  auto r = enroller_->CreateToken(caller->ToString(), req->agent_id(), req->ttl_seconds(),
                                  {req->instances().begin(), req->instances().end()});
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

absl::StatusOr<std::string> AdminServiceImpl::AgentIdOf(const std::string& given) const {
  std::string id = given;
  if (!id.empty() && id.find("://") == std::string::npos) {
    id = tls::MakeSpiffeId(authz_->trust_domain(), tls::IdentityClass::kAgent, id);
  }
  if (auto parsed = tls::ParseSpiffeId(id); !parsed.ok() ||
                                            parsed->cls != tls::IdentityClass::kAgent ||
                                            parsed->trust_domain != authz_->trust_domain()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "agent_id: '", given, "' is not an agent of trust domain ", authz_->trust_domain()));
  }
  return id;
}

grpc::Status AdminServiceImpl::BanAgent(grpc::ServerContext* ctx,
                                        const writeback::v1::BanAgentRequest* req,
                                        writeback::v1::BanAgentResponse* resp) {
  auto caller = authz_->Check(kBanAgentMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto agent = AgentIdOf(req->agent_id());
  if (!agent.ok()) return ToGrpcStatus(agent.status());
  const std::string& id = *agent;
  if (absl::Status s = actions::ValidateText("reason", req->reason(), 1024, false); !s.ok()) {
    return ToGrpcStatus(s);
  }
  auto r = dispatcher_->Ban(caller->ToString(), id, req->reason());
  if (!r.ok()) return ToGrpcStatus(r.status());
  resp->set_agent_id(id);
  resp->set_tasks_canceled(static_cast<uint32_t>(r->tasks_canceled));
  resp->set_stream_ended(r->stream_ended);
  resp->set_tokens_revoked(static_cast<uint32_t>(r->tokens_revoked));
  resp->set_relayed_streams_ended(static_cast<uint32_t>(r->relayed_streams_ended));
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::GetDecision(grpc::ServerContext* ctx,
                                           const writeback::v1::GetDecisionRequest* req,
                                           DecisionView* resp) {
  auto caller = authz_->Check(kGetDecisionMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (req->decision_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "decision_id: required");
  }
  auto d = store_->GetDecision(req->decision_id());
  if (!d.ok()) return ToGrpcStatus(d.status());
  auto tasks = LoadTasks(*d);
  if (!tasks.ok()) return ToGrpcStatus(tasks.status());
  *resp = MakeDecisionView(*d, *tasks, /*with_evidence=*/true);
  dispatcher_->AddApprovalView(*d, resp);
  if (auto s = AddReverifications(*store_, *d, /*with_evidence=*/true, resp); !s.ok()) {
    return ToGrpcStatus(s);
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ListDecisions(grpc::ServerContext* ctx,
                                             const writeback::v1::ListDecisionsRequest* req,
                                             writeback::v1::ListDecisionsResponse* resp) {
  auto caller = authz_->Check(kListDecisionsMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  uint32_t page_size = 0;
  if (req->page_size() != 0) {
    page_size = paging::PageSize(req->page_size(), kDefaultListLimit);
  } else {
    page_size = req->limit() == 0 ? kDefaultListLimit : req->limit();
    if (page_size > kMaxListLimit) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("limit: at most ", kMaxListLimit));
    }
  }
  if (!writeback::v1::DecisionState_IsValid(req->state())) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "state: unknown decision state");
  }
  const std::string filter = paging::FilterDigest(
      {absl::StrCat(static_cast<int>(req->state())), absl::StrCat(req->since_unix_ms())});
  auto cursor = paging::Decode(req->page_token(), "decisions", filter);
  if (!cursor.ok()) return ToGrpcStatus(cursor.status());
  DecisionQuery q;
  q.limit = page_size;
  if (req->state() != writeback::v1::DECISION_STATE_UNSPECIFIED) q.states.push_back(req->state());
  if (cursor->has_value()) {
    // 0 would mean "from the newest" again: a token never carries it.
    if ((*cursor)->after_version() == 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_token: no position");
    }
    q.before_version = (*cursor)->after_version();
  }
  auto list = store_->QueryDecisions(q);
  if (!list.ok()) return ToGrpcStatus(list.status());
  size_t bytes = 0;
  uint64_t last_version = 0;  // of the last decision this page covers
  bool more = list->size() >= page_size;
  for (const DecisionRecord& d : *list) {
    if (req->since_unix_ms() > 0 && d.submitted_at_unix_ms() < req->since_unix_ms()) {
      last_version = d.parsed().version();
      continue;
    }
    auto tasks = LoadTasks(d);
    if (!tasks.ok()) return ToGrpcStatus(tasks.status());
    DecisionView v = MakeDecisionView(d, *tasks, /*with_evidence=*/false);
    bytes += v.ByteSizeLong();
    if (bytes > kMaxListResponseBytes && resp->decisions_size() > 0) {
      more = true;  // the rest on the next page
      break;
    }
    *resp->add_decisions() = std::move(v);
    last_version = d.parsed().version();
  }
  if (more && last_version != 0) {
    auto next = paging::NewCursor("decisions", filter);
    next.set_after_version(last_version);
    resp->set_next_page_token(paging::Encode(next));
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ListAgents(grpc::ServerContext* ctx,
                                          const writeback::v1::ListAgentsRequest* req,
                                          writeback::v1::ListAgentsResponse* resp) {
  auto caller = authz_->Check(kListAgentsMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  const uint32_t page_size = paging::PageSize(req->page_size());
  const std::string filter = paging::FilterDigest({});
  auto cursor = paging::Decode(req->page_token(), "agents", filter);
  if (!cursor.ok()) return ToGrpcStatus(cursor.status());
  std::vector<writeback::v1::AgentRecord> agents = dispatcher_->Agents();
  std::sort(agents.begin(), agents.end(),
            [](const auto& x, const auto& y) { return x.agent_id() < y.agent_id(); });
  auto it = agents.begin();
  if (cursor->has_value()) {
    it = std::upper_bound(agents.begin(), agents.end(), (*cursor)->after_key(),
                          [](const std::string& key, const auto& a) { return key < a.agent_id(); });
  }
  for (; it != agents.end(); ++it) {
    if (static_cast<uint32_t>(resp->agents_size()) >= page_size) {
      auto next = paging::NewCursor("agents", filter);
      next.set_after_key(resp->agents(resp->agents_size() - 1).agent_id());
      resp->set_next_page_token(paging::Encode(next));
      break;
    }
    const auto& a = *it;
    auto* v = resp->add_agents();
    v->set_agent_id(a.agent_id());
    auto since = sessions_->ConnectedSince(a.agent_id());
    v->set_connected(since.has_value());
    if (since) v->set_connected_since_unix_ms(*since);
    v->set_last_heartbeat_unix_ms(a.last_seen_unix_ms());
    v->set_version(a.version());
    for (const auto& inst : a.instances()) v->add_instances(inst.name());
    *v->mutable_labels() = a.labels();
    v->set_result_key_id(a.result_key_id());
    *v->mutable_relay_path() = a.relay_path();
    for (const auto& r : a.refused_instances()) {
      auto* ri = v->add_refused_instances();
      ri->set_instance(r.instance().name());
      ri->set_reason(r.reason());
    }
  }
  return grpc::Status::OK;
}

// ---- The operators' view (controlplane/fleet/operators_view.h) ----

namespace {
grpc::Status NoView() {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "the operators' view is not enabled");
}
}  // namespace

grpc::Status AdminServiceImpl::FleetStatus(grpc::ServerContext* ctx,
                                           const writeback::v1::FleetStatusRequest* req,
                                           writeback::v1::FleetStatusResponse* resp) {
  return view_ == nullptr ? NoView() : view_->FleetStatus(ctx, req, resp);
}

grpc::Status AdminServiceImpl::GetAgent(grpc::ServerContext* ctx,
                                        const writeback::v1::GetAgentRequest* req,
                                        writeback::v1::GetAgentResponse* resp) {
  return view_ == nullptr ? NoView() : view_->GetAgent(ctx, req, resp);
}

grpc::Status AdminServiceImpl::WatchDecision(
    grpc::ServerContext* ctx, const writeback::v1::WatchDecisionRequest* req,
    grpc::ServerWriter<writeback::v1::WatchDecisionResponse>* writer) {
  return view_ == nullptr ? NoView() : view_->WatchDecision(ctx, req, writer);
}

grpc::Status AdminServiceImpl::ReverifyDecision(grpc::ServerContext* ctx,
                                                const writeback::v1::ReverifyDecisionRequest* req,
                                                writeback::v1::ReverifyDecisionResponse* resp) {
  return view_ == nullptr ? NoView() : view_->ReverifyDecision(ctx, req, resp);
}

grpc::Status AdminServiceImpl::TailEvents(
    grpc::ServerContext* ctx, const writeback::v1::TailEventsRequest* req,
    grpc::ServerWriter<writeback::v1::TailEventsResponse>* writer) {
  return view_ == nullptr ? NoView() : view_->TailEvents(ctx, req, writer);
}

grpc::Status AdminServiceImpl::RetireDecision(grpc::ServerContext* ctx,
                                              const writeback::v1::RetireDecisionRequest* req,
                                              writeback::v1::RetireDecisionResponse* resp) {
  return view_ == nullptr ? NoView() : view_->RetireDecision(ctx, req, resp);
}

grpc::Status AdminServiceImpl::BindInstance(grpc::ServerContext* ctx,
                                            const writeback::v1::BindInstanceRequest* req,
                                            writeback::v1::BindInstanceResponse* resp) {
  auto caller = authz_->Check(kBindInstanceMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto agent = AgentIdOf(req->agent_id());
  if (!agent.ok()) return ToGrpcStatus(agent.status());
  auto r = dispatcher_->BindInstance(caller->ToString(), req->instance(), *agent, req->reason());
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::UnbindInstance(grpc::ServerContext* ctx,
                                              const writeback::v1::UnbindInstanceRequest* req,
                                              writeback::v1::BindInstanceResponse* resp) {
  auto caller = authz_->Check(kUnbindInstanceMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto r = dispatcher_->UnbindInstance(caller->ToString(), req->instance(), req->reason());
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ApproveRebind(grpc::ServerContext* ctx,
                                             const writeback::v1::ApproveRebindRequest* req,
                                             writeback::v1::BindInstanceResponse* resp) {
  auto caller = authz_->Check(kApproveRebindMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto r = dispatcher_->ApproveRebind(caller->ToString(), req->instance(), req->approval());
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ListInstances(grpc::ServerContext* ctx,
                                             const writeback::v1::ListInstancesRequest* req,
                                             writeback::v1::ListInstancesResponse* resp) {
  auto caller = authz_->Check(kListInstancesMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  const uint32_t page_size = paging::PageSize(req->page_size());
  const std::string filter = paging::FilterDigest({});
  auto cursor = paging::Decode(req->page_token(), "instances", filter);
  if (!cursor.ok()) return ToGrpcStatus(cursor.status());
  std::vector<writeback::v1::InstanceView> all = dispatcher_->Instances();
  std::sort(all.begin(), all.end(),
            [](const auto& x, const auto& y) { return x.instance() < y.instance(); });
  for (auto& v : all) {
    if (cursor->has_value() && v.instance() <= (*cursor)->after_key()) continue;
    if (static_cast<uint32_t>(resp->instances_size()) >= page_size) {
      auto next = paging::NewCursor("instances", filter);
      next.set_after_key(resp->instances(resp->instances_size() - 1).instance());
      resp->set_next_page_token(paging::Encode(next));
      break;
    }
    *resp->add_instances() = std::move(v);
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ExportBundle(grpc::ServerContext* ctx,
                                            const writeback::v1::ExportBundleRequest* req,
                                            writeback::v1::ExportBundleResponse* resp) {
  auto caller = authz_->Check(kExportBundleMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto agent = AgentIdOf(req->agent_id());
  if (!agent.ok()) return ToGrpcStatus(agent.status());
  const std::string& id = *agent;
  auto r = dispatcher_->ExportBundle(caller->ToString(), id, req->trip_seconds());
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ImportBundle(grpc::ServerContext* ctx,
                                            const writeback::v1::ImportBundleRequest* req,
                                            writeback::v1::ImportBundleResponse* resp) {
  auto caller = authz_->Check(kImportBundleMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto r = dispatcher_->ImportBundle(caller->ToString(), req->result_bundle_file());
  if (!r.ok()) {
    log::Warn("result bundle refused",
              {{"caller", caller->ToString()}, {"error", r.status().message()}});
    // A bad file is the caller's input, not the caller's identity: never
    // answer UNAUTHENTICATED or PERMISSION_DENIED for it.
    const absl::StatusCode c = r.status().code();
    if (c == absl::StatusCode::kUnauthenticated || c == absl::StatusCode::kPermissionDenied) {
      return ToGrpcStatus(absl::InvalidArgumentError(r.status().message()));
    }
    return ToGrpcStatus(r.status());
  }
  *resp = *std::move(r);
  return grpc::Status::OK;
}

}  // namespace wb::controlplane
