#include "tests/e2e/harness.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "common/testing/wait.h"
#include "common/tls/tls.h"
#include "connectors/registry.h"
#include "controlplane/dispatch/dispatcher.h"
#include "controlplane/server.h"

namespace wb::e2e {

using writeback::v1::DecisionState;

Harness::~Harness() {
  for (auto& [id, a] : agents_) {
    if (a) a->Stop();
  }
  agents_.clear();
  if (cp_) cp_->Shutdown();
  cp_.reset();
}

absl::StatusOr<std::unique_ptr<Harness>> Harness::Start(Options opts) {
  std::unique_ptr<Harness> h(new Harness());
  pki::PkiSpec spec;
  spec.trust_domain = opts.trust_domain;
  spec.operators = {"admin"};
  for (const auto& [id, _] : opts.agents) spec.agents.push_back(id);
  WB_ASSIGN_OR_RETURN(pki::Pki p, pki::Pki::Init(h->dir_.Sub("pki"), spec, absl::Now()));
  h->pki_ = std::make_unique<pki::Pki>(std::move(p));
  h->registry_ = std::make_unique<connectors::Registry>();
  connectors::RegisterBuiltinConnectors(*h->registry_);

  auto& cp = h->cp_cfg_;
  cp.set_listen_address("127.0.0.1:0");
  cp.set_trust_domain(opts.trust_domain);
  *cp.mutable_tls() = h->pki_->controlplane().tls;
  cp.set_data_dir(h->dir_.Sub("controlplane"));
  cp.set_dispatch_key_file(h->pki_->dispatch_key_file());
  cp.set_default_task_ttl_seconds(opts.default_task_ttl_seconds);
  cp.set_heartbeat_interval_seconds(1);
  cp.set_log_format("text");
  if (opts.enrollment) {
    std::string key = cp.tls().ca_file();
    key.replace(key.size() - 3, 3, "key");  // the PKI keeps ca.key next to ca.crt
    cp.mutable_enrollment()->set_ca_key_file(key);
  }
  if (opts.tweak_controlplane) opts.tweak_controlplane(cp);
  WB_RETURN_IF_ERROR(h->StartControlPlane());
  // Restarts reuse the port the first start picked.
  cp.set_listen_address(absl::StrCat("127.0.0.1:", h->port_));

  for (const auto& [id, instances] : opts.agents) {
    writeback::v1::AgentConfig a;
    a.set_agent_id(h->agent_spiffe_id(id));
    a.set_controlplane_address(absl::StrCat("127.0.0.1:", h->port_));
    a.set_controlplane_id(h->pki_->controlplane_id());
    *a.mutable_tls() = h->pki_->agent(id).tls;
    a.set_data_dir(h->dir_.Sub("agent-" + id));
    a.set_result_key_file(h->pki_->agent_result_key_file(id));
    a.add_dispatch_public_key_files(h->pki_->dispatch_pub_file());
    a.set_reconnect_initial_ms(50);
    a.set_reconnect_max_ms(500);
    a.set_log_format("text");
    for (const auto& c : instances) *a.add_connectors() = c;
    if (opts.tweak_agent) opts.tweak_agent(a);
    h->agent_cfgs_[id] = a;
    if (opts.bind_instances) {
      // An operator's act in a real deployment (wbctl instance bind, or
      // the join token's instances).
      for (const auto& c : a.connectors()) WB_RETURN_IF_ERROR(h->Bind(c.name(), id));
    }
    WB_RETURN_IF_ERROR(h->StartAgent(id));
  }
  for (const auto& [id, _] : opts.agents) WB_RETURN_IF_ERROR(h->WaitAgentConnected(id));
  WB_ASSIGN_OR_RETURN(h->admin_, h->OperatorStub("admin"));
  return h;
}

absl::Status Harness::Bind(const std::string& instance, const std::string& agent) {
  if (!cp_) return absl::FailedPreconditionError("control plane not running");
  auto r = cp_->dispatcher().BindInstance(
      tls::MakeSpiffeId(pki_->trust_domain(), tls::IdentityClass::kOperator, "admin"), instance,
      agent_spiffe_id(agent), "test harness");
  if (!r.ok()) return r.status();
  if (r->pending_approval()) {
    return absl::FailedPreconditionError(absl::StrCat("binding ", instance, " needs approvals"));
  }
  return absl::OkStatus();
}

absl::Status Harness::WriteWbctlConfig(const std::string& name, const std::string& path) {
  pki::Identity op;
  if (name == "admin") {
    op = pki_->operator_identity("admin");
  } else {
    WB_ASSIGN_OR_RETURN(op, pki_->AddOperator(name, absl::Now()));
  }
  return fs::WriteFileAtomic(
      path, absl::StrCat("controlplane_address: \"127.0.0.1:", port_, "\"\n", "controlplane_id: \"",
                         pki_->controlplane_id(), "\"\n", "tls:\n  ca_file: \"", op.tls.ca_file(),
                         "\"\n  cert_file: \"", op.tls.cert_file(), "\"\n  key_file: \"",
                         op.tls.key_file(), "\"\n"));
}

std::string Harness::agent_spiffe_id(const std::string& id) const {
  return tls::MakeSpiffeId(pki_->trust_domain(), tls::IdentityClass::kAgent, id);
}

absl::StatusOr<writeback::v1::AgentConfig> Harness::NewAgentConfig(const std::string& based_on,
                                                                   const std::string& name,
                                                                   const std::string& dir) const {
  writeback::v1::AgentConfig cfg = agent_config(based_on);
  cfg.set_agent_id(agent_spiffe_id(name));
  WB_RETURN_IF_ERROR(fs::MakeDirs(dir));
  cfg.mutable_tls()->set_cert_file(dir + "/tls.crt");
  cfg.mutable_tls()->set_key_file(dir + "/tls.key");
  cfg.set_result_key_file(dir + "/result.key");
  cfg.set_data_dir(dir + "/data");
  cfg.clear_connectors();
  return cfg;
}

absl::Status Harness::StartControlPlane() {
  WB_ASSIGN_OR_RETURN(cp_, controlplane::ControlPlane::Create(cp_cfg_));
  WB_RETURN_IF_ERROR(cp_->Start());
  port_ = cp_->port();
  return absl::OkStatus();
}

void Harness::StopControlPlane() {
  if (cp_) cp_->Shutdown();
  cp_.reset();
}

absl::Status Harness::StartAgent(const std::string& id) {
  auto it = agent_cfgs_.find(id);
  if (it == agent_cfgs_.end()) return absl::NotFoundError(absl::StrCat("no agent ", id));
  WB_ASSIGN_OR_RETURN(auto a, agent::Agent::Create(it->second, *registry_));
  WB_RETURN_IF_ERROR(a->Start());
  agents_[id] = std::move(a);
  return absl::OkStatus();
}

void Harness::StopAgent(const std::string& id) {
  auto it = agents_.find(id);
  if (it == agents_.end() || !it->second) return;
  it->second->Stop();
  agents_.erase(it);
}

absl::Status Harness::WaitAgentConnected(const std::string& id, absl::Duration timeout) {
  auto it = agents_.find(id);
  if (it == agents_.end()) return absl::NotFoundError(absl::StrCat("agent ", id, " not running"));
  agent::Agent* a = it->second.get();
  const std::string spiffe = agent_spiffe_id(id);
  bool ok = testing::WaitFor(
      [&] {
        if (!a->connected()) return false;
        if (!admin_) return true;  // during Start, before the operator stub exists
        auto agents = ListAgents();
        if (!agents.ok()) return false;
        for (const auto& v : agents->agents()) {
          if (v.agent_id() == spiffe && v.connected()) return true;
        }
        return false;
      },
      std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  return ok ? absl::OkStatus()
            : absl::DeadlineExceededError(absl::StrCat("agent ", id, " did not connect"));
}

absl::StatusOr<std::unique_ptr<writeback::v1::AdminService::Stub>> Harness::OperatorStub(
    const std::string& name) {
  WB_ASSIGN_OR_RETURN(pki::Identity op, pki_->AddOperator(name, absl::Now()));
  WB_ASSIGN_OR_RETURN(auto creds, tls::MakeChannelCredentials(op.tls, pki_->controlplane_id()));
  auto ch = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_), creds,
                                      tls::DefaultChannelArgs());
  return writeback::v1::AdminService::NewStub(ch);
}

namespace {
absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}
void SetDeadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
}
}  // namespace

absl::StatusOr<writeback::v1::SubmitDecisionResponse> Harness::Submit(
    const writeback::v1::DecisionSpec& spec, const std::string& request_id) {
  writeback::v1::SubmitDecisionRequest req;
  *req.mutable_spec() = spec;
  req.set_request_id(request_id);
  writeback::v1::SubmitDecisionResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s = admin_->SubmitDecision(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s);
  return resp;
}

absl::StatusOr<writeback::v1::DecisionView> Harness::Get(const std::string& decision_id) {
  writeback::v1::GetDecisionRequest req;
  req.set_decision_id(decision_id);
  writeback::v1::DecisionView resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s = admin_->GetDecision(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s);
  return resp;
}

absl::StatusOr<writeback::v1::ListAgentsResponse> Harness::ListAgents() {
  writeback::v1::ListAgentsResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s = admin_->ListAgents(&ctx, {}, &resp);
  if (!s.ok()) return FromGrpc(s);
  return resp;
}

absl::StatusOr<writeback::v1::DecisionView> Harness::WaitTerminal(const std::string& decision_id,
                                                                  absl::Duration timeout) {
  absl::StatusOr<writeback::v1::DecisionView> last;
  auto terminal = [](DecisionState s) {
    return s == writeback::v1::DECISION_STATE_VERIFIED ||
           s == writeback::v1::DECISION_STATE_FAILED ||
           s == writeback::v1::DECISION_STATE_EXPIRED ||
           s == writeback::v1::DECISION_STATE_CANCELED;
  };
  bool ok = testing::WaitFor(
      [&] {
        last = Get(decision_id);
        return last.ok() && terminal(last->state());
      },
      std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)), std::chrono::milliseconds(20));
  if (!last.ok()) return last.status();
  if (!ok) {
    return absl::DeadlineExceededError(absl::StrCat(
        "decision ", decision_id, " still ", writeback::v1::DecisionState_Name(last->state())));
  }
  return last;
}

writeback::v1::DecisionSpec SshRemoveKeySpec(const std::string& instance,
                                             const std::vector<std::string>& users,
                                             const std::string& fingerprint,
                                             const std::string& reason) {
  writeback::v1::DecisionSpec spec;
  spec.set_connector_instance(instance);
  spec.set_operation("remove_key");
  spec.mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(fingerprint);
  for (const auto& u : users) spec.add_targets()->set_object(u);
  spec.set_reason(reason);
  spec.set_reference("TEST-1");
  return spec;
}

}  // namespace wb::e2e
