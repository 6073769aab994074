#include "tests/fault/deployment.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/config/config.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "common/testing/config_file.h"
#include "common/testing/wait.h"
#include "common/tls/tls.h"

extern char** environ;

namespace wb::fault {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

void SetDeadline(grpc::ClientContext& ctx, absl::Duration d = absl::Seconds(5)) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(absl::ToInt64Milliseconds(d)));
}

void KillAndReap(pid_t* pid) {
  if (*pid <= 0) return;
  kill(*pid, SIGKILL);
  int st = 0;
  waitpid(*pid, &st, 0);
  *pid = -1;
}

bool Running(pid_t* pid) {
  if (*pid <= 0) return false;
  int st = 0;
  if (waitpid(*pid, &st, WNOHANG) == *pid) {
    *pid = -1;
    return false;
  }
  return true;
}

absl::StatusOr<int> WaitExit(pid_t* pid, absl::Duration timeout) {
  if (*pid <= 0) return absl::FailedPreconditionError("not running");
  int status = 0;
  bool done = testing::WaitFor([&] { return waitpid(*pid, &status, WNOHANG) == *pid; },
                               std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  if (!done) return absl::DeadlineExceededError("process did not exit");
  *pid = -1;
  return status;
}

// Non-empty line -> how many times it appears in `path`.
absl::flat_hash_map<std::string, int> CountLines(const std::string& path) {
  absl::flat_hash_map<std::string, int> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) ++out[line];
  }
  return out;
}

}  // namespace

absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log_path,
                            const std::vector<std::string>& env) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) env_store.emplace_back(*e);
  for (const auto& e : env) env_store.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  // The child starts with no signal blocked, whatever the caller blocks
  // (a caller that waits for signals with sigwait blocks them).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return absl::InternalError(absl::StrCat("posix_spawn ", argv[0], ": ", strerror(rc)));
  return pid;
}

absl::StatusOr<std::unique_ptr<Deployment>> Deployment::Start(const Binaries& bin, Options opts) {
  std::unique_ptr<Deployment> d(new Deployment());
  d->bin_ = bin;
  d->opts_ = opts;
  pki::PkiSpec spec;
  spec.trust_domain = "writeback.test";
  spec.operators = {"admin"};
  for (int i = 0; i < opts.agents; ++i) {
    d->agent_names_.push_back(absl::StrCat("a", i));
    spec.agents.push_back(d->agent_names_.back());
  }
  WB_ASSIGN_OR_RETURN(pki::Pki p, pki::Pki::Init(d->dir_.Sub("pki"), spec, absl::Now()));
  d->pki_ = std::make_unique<pki::Pki>(std::move(p));

  auto& cp = d->cp_cfg_;
  cp.set_listen_address("127.0.0.1:0");
  cp.set_trust_domain(spec.trust_domain);
  *cp.mutable_tls() = d->pki_->controlplane().tls;
  cp.set_data_dir(d->dir_.Sub("controlplane"));
  cp.set_dispatch_key_file(d->pki_->dispatch_key_file());
  cp.set_default_task_ttl_seconds(opts.default_task_ttl_seconds);
  cp.set_heartbeat_interval_seconds(1);
  cp.set_max_in_flight_per_agent(opts.max_in_flight_per_agent);
  cp.set_log_format("text");
  cp.set_port_file(d->dir_.Sub("cp.port"));
  if (opts.tweak_controlplane) opts.tweak_controlplane(cp);
  d->agent_pids_.assign(opts.agents, -1);
  if (!opts.start_processes) return d;
  WB_RETURN_IF_ERROR(d->StartControlPlane());
  // Restarts reuse the port the first start picked.
  cp.set_listen_address(absl::StrCat("127.0.0.1:", d->port_));

  for (int i = 0; i < opts.agents; ++i) {
    WB_RETURN_IF_ERROR(d->WriteAgentConfig(i));
    WB_RETURN_IF_ERROR(d->BindInstance(i));
    WB_RETURN_IF_ERROR(d->StartAgent(i));
  }
  WB_RETURN_IF_ERROR(d->WaitAllAgentsConnected(absl::Seconds(60)));
  return d;
}

absl::Status Deployment::BindInstance(int i) {
  // Every instance of the agent's written config (tweak_agent may add some).
  writeback::v1::AgentConfig a;
  WB_RETURN_IF_ERROR(config::LoadYamlFile(agent_config_path(i), &a));
  for (const auto& c : a.connectors()) {
    writeback::v1::BindInstanceRequest req;
    req.set_instance(c.name());
    req.set_agent_id(agent_names_[i]);
    req.set_reason("fault suite");
    writeback::v1::BindInstanceResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status s = admin_->BindInstance(&ctx, req, &resp);
    if (!s.ok()) {
      return absl::UnavailableError(absl::StrCat("bind ", c.name(), ": ", s.error_message()));
    }
  }
  return absl::OkStatus();
}

absl::Status Deployment::UseControlPlanePort(int port) {
  port_ = port;
  for (int i = 0; i < agents(); ++i) WB_RETURN_IF_ERROR(WriteAgentConfig(i));
  return absl::OkStatus();
}

Deployment::~Deployment() {
  for (auto& pid : agent_pids_) KillAndReap(&pid);
  KillAndReap(&cp_pid_);
}

std::string Deployment::effects_file(int i) const {
  return dir_.Sub(absl::StrCat("effects-", agent_names_[i]));
}
std::string Deployment::plans_file(int i) const {
  return dir_.Sub(absl::StrCat("plans-", agent_names_[i]));
}
std::string Deployment::agent_log(int i) const {
  return dir_.Sub(absl::StrCat("agent-", agent_names_[i], ".log"));
}
std::string Deployment::controlplane_log() const { return dir_.Sub("controlplane.log"); }
std::string Deployment::agent_config_path(int i) const {
  return dir_.Sub(absl::StrCat("agent-", agent_names_[i], ".yaml"));
}

absl::Status Deployment::WriteAgentConfig(int i) {
  const std::string& id = agent_names_[i];
  writeback::v1::AgentConfig a;
  a.set_agent_id(tls::MakeSpiffeId(pki_->trust_domain(), tls::IdentityClass::kAgent, id));
  a.set_controlplane_address(absl::StrCat("127.0.0.1:", port_));
  a.set_controlplane_id(pki_->controlplane_id());
  *a.mutable_tls() = pki_->agent(id).tls;
  a.set_data_dir(dir_.Sub("agent-" + id));
  a.set_result_key_file(pki_->agent_result_key_file(id));
  a.add_dispatch_public_key_files(pki_->dispatch_pub_file());
  a.set_reconnect_initial_ms(50);
  a.set_reconnect_max_ms(500);
  a.set_log_format("text");
  if (opts_.agent_max_clock_skew_seconds > 0) {
    a.set_max_clock_skew_seconds(opts_.agent_max_clock_skew_seconds);
  }
  auto* c = a.add_connectors();
  c->set_name(instance(i));
  c->set_type("exec");
  c->add_allowed_operations("revoke");
  c->mutable_exec()->set_program(bin_.counter);
  c->mutable_exec()->set_timeout_ms(10000);
  if (opts_.exec_idempotent) c->mutable_exec()->add_idempotent_operations("revoke");
  (*c->mutable_exec()->mutable_env())["WB_EFFECTS_FILE"] = effects_file(i);
  (*c->mutable_exec()->mutable_env())["WB_PLANS_FILE"] = plans_file(i);
  if (opts_.tweak_agent) opts_.tweak_agent(i, a);
  return testing::WriteConfigFile(a, agent_config_path(i));
}

absl::Status Deployment::StartControlPlane(const std::vector<std::string>& env) {
  if (cp_pid_ > 0) return absl::FailedPreconditionError("control plane already running");
  const std::string cfg_path = dir_.Sub("cp.yaml");
  WB_RETURN_IF_ERROR(testing::WriteConfigFile(cp_cfg_, cfg_path));
  unlink(cp_cfg_.port_file().c_str());
  const std::vector<std::string> argv = {bin_.controlplane, "--config", cfg_path};
  WB_ASSIGN_OR_RETURN(cp_pid_, Spawn(argv, controlplane_log(), env));
  int port = 0;
  bool up = testing::WaitFor(
      [&] {
        if (!Running(&cp_pid_)) return true;
        auto s = fs::ReadFile(cp_cfg_.port_file());
        return s.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*s), &port) && port > 0;
      },
      std::chrono::seconds(30));
  if (cp_pid_ <= 0) return absl::InternalError("control plane exited at start; see its log");
  if (!up) return absl::DeadlineExceededError("control plane did not write its port file");
  port_ = port;
  return Connect();
}

absl::Status Deployment::Connect() {
  WB_ASSIGN_OR_RETURN(pki::Identity op, pki_->AddOperator("admin", absl::Now()));
  WB_ASSIGN_OR_RETURN(auto creds, tls::MakeChannelCredentials(op.tls, pki_->controlplane_id()));
  // A new channel after each restart: no reconnect backoff inherited.
  auto ch = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_), creds,
                                      tls::DefaultChannelArgs());
  admin_ = writeback::v1::AdminService::NewStub(ch);
  return absl::OkStatus();
}

void Deployment::KillControlPlane() { KillAndReap(&cp_pid_); }
bool Deployment::ControlPlaneRunning() { return Running(&cp_pid_); }
absl::StatusOr<int> Deployment::WaitControlPlaneExit(absl::Duration timeout) {
  return WaitExit(&cp_pid_, timeout);
}

absl::Status Deployment::StartAgent(int i, const std::vector<std::string>& env) {
  if (agent_pids_[i] > 0) return absl::FailedPreconditionError("agent already running");
  const std::vector<std::string> argv = {bin_.agent, "run", "--config", agent_config_path(i)};
  WB_ASSIGN_OR_RETURN(agent_pids_[i], Spawn(argv, agent_log(i), env));
  return absl::OkStatus();
}
void Deployment::KillAgent(int i) { KillAndReap(&agent_pids_[i]); }
bool Deployment::AgentRunning(int i) { return Running(&agent_pids_[i]); }
absl::StatusOr<int> Deployment::WaitAgentExit(int i, absl::Duration timeout) {
  return WaitExit(&agent_pids_[i], timeout);
}

absl::StatusOr<writeback::v1::SubmitDecisionResponse> Deployment::Submit(
    const writeback::v1::DecisionSpec& spec, const std::string& request_id) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  writeback::v1::SubmitDecisionRequest req;
  *req.mutable_spec() = spec;
  req.set_request_id(request_id);
  writeback::v1::SubmitDecisionResponse resp;
  grpc::Status s = admin_->SubmitDecision(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s);
  return resp;
}

absl::StatusOr<writeback::v1::DecisionView> Deployment::Get(const std::string& decision_id) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  writeback::v1::GetDecisionRequest req;
  req.set_decision_id(decision_id);
  writeback::v1::DecisionView v;
  grpc::Status s = admin_->GetDecision(&ctx, req, &v);
  if (!s.ok()) return FromGrpc(s);
  return v;
}

absl::StatusOr<writeback::v1::VerifyAuditResponse> Deployment::VerifyAudit() {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  writeback::v1::VerifyAuditResponse v;
  grpc::Status s = admin_->VerifyAudit(&ctx, writeback::v1::VerifyAuditRequest(), &v);
  if (!s.ok()) return FromGrpc(s);
  return v;
}

absl::StatusOr<writeback::v1::ListAgentsResponse> Deployment::ListAgents() {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  writeback::v1::ListAgentsRequest req;
  writeback::v1::ListAgentsResponse resp;
  grpc::Status s = admin_->ListAgents(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s);
  return resp;
}

absl::StatusOr<int> Deployment::ConnectedAgents() {
  WB_ASSIGN_OR_RETURN(auto list, ListAgents());
  int n = 0;
  for (const auto& a : list.agents()) n += a.connected() ? 1 : 0;
  return n;
}

absl::Status Deployment::WaitAllAgentsConnected(absl::Duration timeout) {
  bool ok = testing::WaitFor(
      [&] {
        auto n = ConnectedAgents();
        return n.ok() && *n == agents();
      },
      std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)), std::chrono::milliseconds(50));
  return ok ? absl::OkStatus() : absl::DeadlineExceededError("agents did not all connect");
}

writeback::v1::DecisionSpec Deployment::Spec(int i, const std::string& object) const {
  writeback::v1::DecisionSpec s;
  s.set_connector_instance(instance(i));
  s.set_operation("revoke");
  s.mutable_params()->mutable_exec();
  s.add_targets()->set_object(object);
  s.set_reason("fault suite");
  s.set_reference("FAULT-1");
  return s;
}

absl::flat_hash_map<std::string, int> Deployment::Effects(int i) const {
  return CountLines(effects_file(i));
}

absl::flat_hash_map<std::string, int> Deployment::Plans(int i) const {
  return CountLines(plans_file(i));
}

}  // namespace wb::fault
