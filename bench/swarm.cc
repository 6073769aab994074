#include "bench/swarm.h"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "agent/identity/identity.h"
#include "bench/cleanup.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "common/testing/wait.h"
#include "common/tls/tls.h"

namespace wb::bench {

namespace v1 = writeback::v1;

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

int64_t DirBytes(const std::string& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) total += static_cast<int64_t>(it->file_size(ec));
  }
  return total;
}

namespace {

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

void Deadline(grpc::ClientContext& ctx, absl::Duration d) {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + d));
}

}  // namespace

// ------------------------------------------------------------------- Tracker

void Tracker::Expect(const std::string& decision_id, int tasks, absl::Time at) {
  std::lock_guard<std::mutex> l(mu_);
  Entry& e = open_[decision_id];
  e.remaining += tasks;
  e.submitted = at;
  e.expected = true;
  if (e.remaining <= 0) {  // finished before the submit returned
    latencies_.push_back(e.last_result - at);
    open_.erase(decision_id);
  }
}

void Tracker::OnResultStored(const std::string& decision_id, absl::Time when) {
  {
    std::lock_guard<std::mutex> l(mu_);
    Entry& e = open_[decision_id];
    e.last_result = std::max(e.last_result, when);
    if (--e.remaining == 0 && e.expected) {
      latencies_.push_back(when - e.submitted);
      open_.erase(decision_id);
    }
  }
  results_.fetch_add(1);
  cv_.notify_all();
}

void Tracker::OnWelcome(absl::Time when) {
  {
    std::lock_guard<std::mutex> l(mu_);
    last_welcome_ = std::max(last_welcome_, when);
  }
  welcomes_.fetch_add(1);
}

absl::Time Tracker::last_welcome() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_welcome_;
}

bool Tracker::WaitResults(uint64_t n, absl::Duration timeout) const {
  std::unique_lock<std::mutex> l(mu_);
  return cv_.wait_until(l, absl::ToChronoTime(absl::Now() + timeout),
                        [&] { return results_.load() >= n; });
}

std::vector<absl::Duration> Tracker::Latencies() const {
  std::lock_guard<std::mutex> l(mu_);
  return latencies_;
}

size_t Tracker::finished() const {
  std::lock_guard<std::mutex> l(mu_);
  return latencies_.size();
}

void Tracker::Reset() {
  std::lock_guard<std::mutex> l(mu_);
  open_.clear();
  latencies_.clear();
  results_.store(0);
}

// --------------------------------------------------------------------- Swarm

absl::StatusOr<std::unique_ptr<Swarm>> Swarm::Start(Options opts) {
  std::unique_ptr<Swarm> s(new Swarm());
  s->opts_ = opts;
  fault::Deployment::Options d;
  d.agents = 0;
  d.max_in_flight_per_agent = opts.max_in_flight_per_agent;
  const int heartbeat = opts.heartbeat_seconds;
  const std::string level = opts.controlplane_log_level;
  d.tweak_controlplane = [heartbeat, level](v1::ControlPlaneConfig& cp) {
    cp.set_heartbeat_interval_seconds(static_cast<uint32_t>(heartbeat));
    cp.set_log_level(level);
    cp.set_log_format("json");  // what production writes
    // Enrolment on, signed by the development CA; no rate limit that would
    // make enrolling a thousand agents take minutes.
    cp.mutable_enrollment()->set_ca_key_file(
        std::filesystem::path(cp.tls().ca_file()).parent_path().string() + "/ca.key");
    cp.mutable_enrollment()->set_max_requests_per_minute(1'000'000);
  };
  WB_ASSIGN_OR_RETURN(s->deployment_, fault::Deployment::Start(opts.binaries, d));
  RegisterDir(s->deployment_->dir());
  RegisterChild(s->deployment_->controlplane_pid());
  WB_RETURN_IF_ERROR(s->ConnectAdmin());

  auto& pki = s->deployment_->pki();
  WB_ASSIGN_OR_RETURN(auto dispatch_pub,
                      crypto::Ed25519PublicKey::LoadFile(pki.dispatch_pub_file()));
  s->shared_.dispatch_keys.Add(dispatch_pub);
  s->shared_.address = absl::StrCat("127.0.0.1:", s->deployment_->port());
  s->shared_.controlplane_id = pki.controlplane_id();
  s->shared_.listener = &s->tracker_;
  s->pool_ = std::make_unique<WorkerPool>(opts.worker_threads);
  s->shared_.pool = s->pool_.get();
  Swarm* raw = s.get();
  s->ticker_ = std::thread([raw] { raw->TickLoop(); });
  return s;
}

Swarm::~Swarm() {
  {
    std::lock_guard<std::mutex> l(tick_mu_);
    tick_stop_ = true;
  }
  tick_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  for (auto& a : agents_) a->Stop();
  pool_.reset();  // runs what is queued while the agents still exist
  agents_.clear();
  if (deployment_ == nullptr) return;
  const std::string dir = deployment_->dir();
  UnregisterChild(deployment_->controlplane_pid());
  admin_.reset();       // its credentials watch files in the directory
  deployment_.reset();  // SIGKILLs the control plane, removes the directory
  UnregisterDir(dir);
}

absl::Status Swarm::ConnectAdmin() {
  auto& pki = deployment_->pki();
  const pki::Identity op = pki.operator_identity("admin");
  WB_ASSIGN_OR_RETURN(auto creds, tls::MakeChannelCredentials(op.tls, pki.controlplane_id()));
  // A new channel after each restart: no reconnect backoff inherited.
  auto ch = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", deployment_->port()), creds,
                                      tls::DefaultChannelArgs());
  admin_ = v1::AdminService::NewStub(ch);
  return absl::OkStatus();
}

void Swarm::TickLoop() {
  std::unique_lock<std::mutex> l(tick_mu_);
  while (!tick_stop_) {
    const absl::Time now = absl::Now();
    for (auto& a : agents_) a->Tick(now);
    tick_cv_.wait_for(l, std::chrono::milliseconds(100), [&] { return tick_stop_; });
  }
}

absl::Status Swarm::AddAgents(int n) {
  auto& pki = deployment_->pki();
  const std::string base = deployment_->dir() + "/sim";
  WB_RETURN_IF_ERROR(fs::MakeDirs(base, 0700));
  const int first = size();
  std::vector<SimAgent::Identity> ids;
  std::vector<std::string> tokens;
  for (int i = first; i < first + n; ++i) {
    SimAgent::Identity id;
    id.short_id = absl::StrCat("s", i);
    id.spiffe_id = tls::MakeSpiffeId(pki.trust_domain(), tls::IdentityClass::kAgent, id.short_id);
    id.instance = absl::StrCat("sim-", id.short_id);
    const std::string dir = absl::StrCat(base, "/", id.short_id);
    WB_RETURN_IF_ERROR(fs::MakeDirs(dir, 0700));
    id.tls.set_ca_file(pki.ca_file());
    id.tls.set_cert_file(dir + "/tls.crt");
    id.tls.set_key_file(dir + "/tls.key");
    id.result_key_file = dir + "/result.key";
    // wbctl agent token create <id> --instance sim-<id>
    v1::CreateJoinTokenRequest req;
    req.set_agent_id(id.short_id);
    req.set_ttl_seconds(3600);
    req.add_instances(id.instance);
    v1::CreateJoinTokenResponse resp;
    grpc::ClientContext ctx;
    Deadline(ctx, absl::Seconds(30));
    if (auto s = admin_->CreateJoinToken(&ctx, req, &resp); !s.ok()) {
      return FromGrpc(s, absl::StrCat("join token for ", id.short_id));
    }
    tokens.push_back(resp.token());
    ids.push_back(std::move(id));
  }
  // writeback-agent enroll, a few at a time.
  std::vector<absl::Status> errors(ids.size());
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, opts_.enroll_threads); ++t) {
    threads.emplace_back([&] {
      for (size_t i = next.fetch_add(1); i < ids.size(); i = next.fetch_add(1)) {
        v1::AgentConfig cfg;
        cfg.set_agent_id(ids[i].spiffe_id);
        cfg.set_controlplane_address(shared_.address);
        cfg.set_controlplane_id(shared_.controlplane_id);
        *cfg.mutable_tls() = ids[i].tls;
        cfg.set_result_key_file(ids[i].result_key_file);
        errors[i] = agent::Enroll(cfg, tokens[i], /*force=*/false);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!errors[i].ok()) {
      return absl::Status(errors[i].code(),
                          absl::StrCat("enrol ", ids[i].short_id, ": ", errors[i].message()));
    }
  }
  std::vector<std::unique_ptr<SimAgent>> made;
  for (auto& id : ids) {
    WB_ASSIGN_OR_RETURN(auto a, SimAgent::Create(std::move(id), &shared_));
    made.push_back(std::move(a));
  }
  std::lock_guard<std::mutex> l(tick_mu_);
  for (auto& a : made) {
    agents_.push_back(std::move(a));
    started_.push_back(false);
  }
  return absl::OkStatus();
}

absl::Status Swarm::ConnectAll(absl::Duration timeout) {
  {
    std::lock_guard<std::mutex> l(tick_mu_);
    for (size_t i = 0; i < agents_.size(); ++i) {
      if (started_[i]) continue;
      started_[i] = true;
      agents_[i]->Start();
    }
  }
  if (!WaitConnected(size(), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat("only ", connected(), " of ", size(),
                                                    " agents connected within ",
                                                    absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

int Swarm::connected() const {
  int n = 0;
  for (const auto& a : agents_) n += a->connected() ? 1 : 0;
  return n;
}

bool Swarm::WaitConnected(int n, absl::Duration timeout) const {
  return testing::WaitFor([&] { return connected() >= n; },
                          std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)),
                          std::chrono::milliseconds(10));
}

SimAgent::Counters Swarm::TotalCounters() const {
  SimAgent::Counters t;
  for (const auto& a : agents_) {
    const SimAgent::Counters c = a->counters();
    t.tasks_received += c.tasks_received;
    t.task_bytes += c.task_bytes;
    t.accepted += c.accepted;
    t.duplicates += c.duplicates;
    t.rejected += c.rejected;
    t.results_stored += c.results_stored;
    t.results_refused += c.results_refused;
    t.welcomes += c.welcomes;
    t.heartbeats += c.heartbeats;
  }
  return t;
}

v1::DecisionSpec Swarm::Spec(int agent, int decision, int targets) const {
  v1::DecisionSpec s;
  s.set_connector_instance(agents_[static_cast<size_t>(agent)]->identity().instance);
  s.set_operation("revoke");
  s.mutable_params()->mutable_exec();
  for (int t = 0; t < targets; ++t) {
    s.add_targets()->set_object(absl::StrCat("key-", decision, "-", t));
  }
  s.set_reason("writeback-bench");
  s.set_reference("BENCH-1");
  return s;
}

absl::StatusOr<v1::SubmitDecisionResponse> Swarm::Submit(const v1::DecisionSpec& spec) {
  v1::SubmitDecisionRequest req;
  *req.mutable_spec() = spec;
  v1::SubmitDecisionResponse resp;
  grpc::ClientContext ctx;
  Deadline(ctx, absl::Seconds(60));
  if (auto s = admin_->SubmitDecision(&ctx, req, &resp); !s.ok()) return FromGrpc(s, "submit");
  return resp;
}

void Swarm::SubmitAsync(
    const v1::DecisionSpec& spec,
    std::function<void(const grpc::Status&, const v1::SubmitDecisionResponse&)> done) {
  struct Call {
    grpc::ClientContext ctx;
    v1::SubmitDecisionRequest req;
    v1::SubmitDecisionResponse resp;
  };
  auto* call = new Call();
  *call->req.mutable_spec() = spec;
  Deadline(call->ctx, absl::Seconds(60));
  admin_->async()->SubmitDecision(&call->ctx, &call->req, &call->resp,
                                  [call, done = std::move(done)](grpc::Status s) {
                                    done(s, call->resp);
                                    delete call;
                                  });
}

absl::StatusOr<v1::DecisionView> Swarm::Get(const std::string& decision_id) {
  v1::GetDecisionRequest req;
  req.set_decision_id(decision_id);
  v1::DecisionView view;
  grpc::ClientContext ctx;
  Deadline(ctx, absl::Seconds(30));
  if (auto s = admin_->GetDecision(&ctx, req, &view); !s.ok()) return FromGrpc(s, "get");
  return view;
}

absl::StatusOr<Swarm::Restart> Swarm::RestartControlPlane(int signal,
                                                          const std::string& probe_decision) {
  Restart r;
  const pid_t pid = deployment_->controlplane_pid();
  if (pid <= 0) return absl::FailedPreconditionError("control plane not running");
  const absl::Time t0 = absl::Now();
  ::kill(pid, signal);
  auto st = deployment_->WaitControlPlaneExit(absl::Seconds(60));
  if (!st.ok()) deployment_->KillControlPlane();
  UnregisterChild(pid);
  r.stop = absl::Now() - t0;
  r.spawned = absl::Now();
  absl::Status started = deployment_->StartControlPlane();
  RegisterChild(deployment_->controlplane_pid());
  WB_RETURN_IF_ERROR(started);
  r.start = absl::Now() - r.spawned;
  WB_RETURN_IF_ERROR(ConnectAdmin());
  // Serving: an admin call answered (the store open, the API up).
  bool ok = testing::WaitFor(
      [&] {
        grpc::ClientContext ctx;
        Deadline(ctx, absl::Seconds(5));
        if (!probe_decision.empty()) {
          v1::GetDecisionRequest req;
          req.set_decision_id(probe_decision);
          v1::DecisionView view;
          return admin_->GetDecision(&ctx, req, &view).ok();
        }
        v1::ListInstancesRequest req;
        v1::ListInstancesResponse resp;
        return admin_->ListInstances(&ctx, req, &resp).ok();
      },
      std::chrono::seconds(120), std::chrono::milliseconds(5));
  if (!ok) return absl::DeadlineExceededError("control plane did not serve within 120 s");
  r.serving = absl::Now() - r.spawned;
  return r;
}

}  // namespace wb::bench
