#include "controlplane/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/resource_quota.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"
#include "common/tls/server_args.h"
#include "common/tls/tls.h"
#include "common/trust/policy.h"
#include "controlplane/api/admin_service.h"
#include "controlplane/api/agent_service.h"
#include "controlplane/rpc/authz.h"
#include "controlplane/approval/trust_gate.h"
#include "controlplane/dispatch/dispatcher.h"
#include "controlplane/dispatch/sessions.h"
#include "controlplane/dispatch/worker_pool.h"
#include "controlplane/enroll/enrollment_service.h"
#include "controlplane/fleet/operators_view.h"
#include "controlplane/store/rocksdb_store.h"
#include "writeback/v1/admin_service.pb.h"
#include "writeback/v1/agent_service.pb.h"

namespace wb::controlplane {

using writeback::v1::ControlPlaneConfig;

namespace {

// Removes gRPC's server reflection plugin from one ServerBuilder.
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                                    return p->name() == "proto_server_reflection";
                                  }),
                   plugins->end());
  }
};

constexpr int kShutdownGraceSeconds = 5;
// Clients ping every 30 s (tls::DefaultChannelArgs); allow that with margin,
// or the server would answer their keepalive with "too many pings".
constexpr int kMinClientPingIntervalMs = 10'000;
// Resource limits (docs/security.md): streams one connection may open at
// once (an agent needs one, wbctl a few), and threads serving synchronous
// calls across all connections (beyond it, calls get RESOURCE_EXHAUSTED).
constexpr int kMaxConcurrentStreamsPerConnection = 32;
constexpr int kMaxServerThreads = 256;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status CheckRange(absl::string_view field, uint32_t v, uint32_t lo, uint32_t hi,
                        uint32_t dflt) {
  if (v == 0 || (v >= lo && v <= hi)) return absl::OkStatus();
  return Invalid(field, absl::StrCat("must be between ", lo, " and ", hi, " (0 means ", dflt, ")"));
}

absl::Status CheckListenAddress(absl::string_view addr) {
  if (addr.empty()) return Invalid("listen_address", "required (host:port, port 0 = any)");
  const size_t colon = addr.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return Invalid("listen_address", absl::StrCat("'", addr, "' is not host:port"));
  }
  int port = 0;
  if (!absl::SimpleAtoi(addr.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return Invalid("listen_address", absl::StrCat("'", addr, "' has no valid port (0-65535)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadRequired(absl::string_view field, const std::string& path) {
  if (path.empty()) return Invalid(field, "required");
  auto r = fs::ReadFile(path, 1 << 20);
  if (!r.ok()) return Invalid(field, r.status().message());
  return r;
}

}  // namespace

absl::StatusOr<ControlPlaneConfig> NormalizeConfig(const ControlPlaneConfig& in) {
  ControlPlaneConfig cfg = in;
  WB_RETURN_IF_ERROR(CheckListenAddress(cfg.listen_address()));
  if (cfg.trust_domain().empty()) return Invalid("trust_domain", "required");
  WB_RETURN_IF_ERROR(tls::ValidateName("trust_domain", cfg.trust_domain()));
  WB_RETURN_IF_ERROR(ReadRequired("tls.ca_file", cfg.tls().ca_file()).status());
  WB_RETURN_IF_ERROR(ReadRequired("tls.key_file", cfg.tls().key_file()).status());
  WB_ASSIGN_OR_RETURN(std::string cert_pem, ReadRequired("tls.cert_file", cfg.tls().cert_file()));
  auto cert = crypto::ParseCert(cert_pem);
  if (!cert.ok()) return Invalid("tls.cert_file", cert.status().message());
  if (cert->uris.size() != 1) {
    return Invalid("tls.cert_file", "the certificate must carry exactly one spiffe:// URI SAN");
  }
  auto id = tls::ParseSpiffeId(cert->uris[0]);
  if (!id.ok() || id->cls != tls::IdentityClass::kControlPlane ||
      id->trust_domain != cfg.trust_domain()) {
    return Invalid("tls.cert_file",
                   absl::StrCat("certificate identity '", cert->uris[0],
                                "' is not a control plane identity of trust domain '",
                                cfg.trust_domain(), "'"));
  }
  if (cfg.data_dir().empty()) return Invalid("data_dir", "required");
  if (cfg.dispatch_key_file().empty()) return Invalid("dispatch_key_file", "required");
  WB_RETURN_IF_ERROR(CheckRange("default_task_ttl_seconds", cfg.default_task_ttl_seconds(),
                                kMinTtlSeconds, kMaxTtlSeconds, 3600));
  WB_RETURN_IF_ERROR(
      CheckRange("heartbeat_interval_seconds", cfg.heartbeat_interval_seconds(), 1, 3600, 10));
  WB_RETURN_IF_ERROR(
      CheckRange("max_in_flight_per_agent", cfg.max_in_flight_per_agent(), 1, 10000, 64));
  WB_RETURN_IF_ERROR(
      CheckRange("delivery_timeout_seconds", cfg.delivery_timeout_seconds(), 5, 86400, 60));
  WB_RETURN_IF_ERROR(CheckRange("bundle.max_trip_seconds", cfg.bundle().max_trip_seconds(), 60,
                                kMaxTtlSeconds, 30 * 24 * 3600));
  if (cfg.bundle().max_trip_seconds() == 0) {
    cfg.mutable_bundle()->set_max_trip_seconds(30 * 24 * 3600);
  }
  WB_RETURN_IF_ERROR(CheckRange("bundle.default_trip_seconds", cfg.bundle().default_trip_seconds(),
                                60, cfg.bundle().max_trip_seconds(), 7 * 24 * 3600));
  if (cfg.bundle().default_trip_seconds() == 0) {
    cfg.mutable_bundle()->set_default_trip_seconds(
        std::min<uint32_t>(7 * 24 * 3600, cfg.bundle().max_trip_seconds()));
  }
  if (cfg.default_task_ttl_seconds() == 0) cfg.set_default_task_ttl_seconds(3600);
  if (cfg.heartbeat_interval_seconds() == 0) cfg.set_heartbeat_interval_seconds(10);
  if (cfg.max_in_flight_per_agent() == 0) cfg.set_max_in_flight_per_agent(64);
  const std::string& lvl = cfg.log_level();
  if (!(lvl.empty() || lvl == "trace" || lvl == "debug" || lvl == "info" || lvl == "warn" ||
        lvl == "error")) {
    return Invalid("log_level",
                   absl::StrCat("unknown value '", lvl, "' (trace|debug|info|warn|error)"));
  }
  const std::string& fmt = cfg.log_format();
  if (!(fmt.empty() || fmt == "auto" || fmt == "json" || fmt == "text")) {
    return Invalid("log_format", absl::StrCat("unknown value '", fmt, "' (auto|json|text)"));
  }
  if (!cfg.trust_root_public_key_file().empty()) {
    auto root = crypto::Ed25519PublicKey::LoadFile(cfg.trust_root_public_key_file());
    if (!root.ok()) return Invalid("trust_root_public_key_file", root.status().message());
  }
  if (!cfg.trust_policy_file().empty()) {
    if (cfg.trust_root_public_key_file().empty()) {
      return Invalid("trust_policy_file", "requires trust_root_public_key_file");
    }
    auto env = trust::ReadSignedPolicyFile(cfg.trust_policy_file());
    if (!env.ok()) return Invalid("trust_policy_file", env.status().message());
  }
  WB_RETURN_IF_ERROR(OperatorsViewOptionsFromConfig(cfg).status());
  return cfg;
}

absl::StatusOr<std::unique_ptr<ControlPlane>> ControlPlane::Create(const ControlPlaneConfig& in,
                                                                   const Clock* clock,
                                                                   ControlPlaneOptions opts) {
  WB_ASSIGN_OR_RETURN(ControlPlaneConfig cfg, NormalizeConfig(in));
  auto key = crypto::Ed25519PrivateKey::LoadFile(cfg.dispatch_key_file());
  if (!key.ok()) return Invalid("dispatch_key_file", key.status().message());
  std::unique_ptr<ControlPlane> cp(new ControlPlane());
  cp->clock_ = clock;
  cp->opts_ = opts;
  WB_ASSIGN_OR_RETURN(std::string cert_pem, fs::ReadFile(cfg.tls().cert_file(), 1 << 20));
  WB_ASSIGN_OR_RETURN(crypto::CertInfo cert, crypto::ParseCert(cert_pem));
  cp->controlplane_id_ = cert.uris[0];
  auto store = RocksDbStore::Open(cfg.data_dir());
  if (!store.ok()) {
    return absl::Status(store.status().code(),
                        absl::StrCat("data_dir: ", store.status().message()));
  }
  cp->store_ = std::move(*store);
  WB_ASSIGN_OR_RETURN(OperatorsViewOptions view_opts, OperatorsViewOptionsFromConfig(cfg));
  cp->view_ = std::make_unique<OperatorsView>(clock, cp->store_.get(), std::move(view_opts));
  cp->sessions_ = std::make_unique<SessionRegistry>();
  cp->pool_ = std::make_unique<WorkerPool>(std::max(1, opts.worker_threads));
  {
    std::optional<crypto::Ed25519PublicKey> root;
    if (!cfg.trust_root_public_key_file().empty()) {
      WB_ASSIGN_OR_RETURN(root,
                          crypto::Ed25519PublicKey::LoadFile(cfg.trust_root_public_key_file()));
    }
    std::optional<writeback::v1::SignedEnvelope> initial;
    if (!cfg.trust_policy_file().empty()) {
      WB_ASSIGN_OR_RETURN(initial, trust::ReadSignedPolicyFile(cfg.trust_policy_file()));
    }
    WB_ASSIGN_OR_RETURN(cp->trust_,
                        TrustGate::Create(std::move(root), cfg.trust_domain(), key->public_key(),
                                          cp->view_->store(), clock, initial));
    if (!cp->trust_->root_pinned()) {
      log::Warn(
          "no trust root pinned (trust_root_public_key_file): decisions need no approvals "
          "(development only)",
          {});
    }
  }
  DispatcherOptions d;
  d.trust = cp->trust_.get();
  d.controlplane_id = cp->controlplane_id_;
  d.default_ttl_seconds = cfg.default_task_ttl_seconds();
  d.heartbeat_interval_seconds = cfg.heartbeat_interval_seconds();
  d.max_in_flight = cfg.max_in_flight_per_agent();
  // The config file's value, else the embedding program's (default 60 s).
  d.redelivery_timeout_seconds = cfg.delivery_timeout_seconds() != 0
                                     ? cfg.delivery_timeout_seconds()
                                     : opts.redelivery_timeout_seconds;
  d.random_bytes = opts.random_bytes;
  d.bundle_default_trip_seconds = cfg.bundle().default_trip_seconds();
  d.bundle_max_trip_seconds = cfg.bundle().max_trip_seconds();
  WB_ASSIGN_OR_RETURN(cp->dispatcher_,
                      Dispatcher::Create(cp->view_->store(), clock, *std::move(key),
                                         cp->sessions_.get(), std::move(d)));
  cp->authz_ = std::make_unique<Authorizer>(Authorizer::Default(cfg.trust_domain()));
  cp->admin_ = std::make_unique<AdminServiceImpl>(cp->authz_.get(), cp->dispatcher_.get(),
                                                  cp->store_.get(), cp->sessions_.get());
  if (!cfg.enrollment().ca_key_file().empty()) {
    WB_ASSIGN_OR_RETURN(cp->enroller_,
                        Enroller::Create(cfg.enrollment(), cfg.tls().ca_file(), cfg.trust_domain(),
                                         cp->view_->store(), cp->dispatcher_.get(), clock));
    cp->admin_->SetEnroller(cp->enroller_.get());
  }
  cp->enrollment_ = std::make_unique<EnrollmentServiceImpl>(cp->authz_.get(), cp->enroller_.get());
  cp->agent_service_ = std::make_unique<AgentServiceImpl>(
      cp->authz_.get(), cp->dispatcher_.get(), cp->sessions_.get(), cp->pool_.get(), clock);
  WB_RETURN_IF_ERROR(
      cp->view_->Attach(cp->dispatcher_.get(), cp->sessions_.get(), cp->authz_.get()));
  cp->admin_->SetView(cp->view_.get());
  OperatorsView* view = cp->view_.get();
  cp->agent_service_->SetConnectObserver(
      [view](const std::string& agent_id, const grpc::AuthContext& peer) {
        view->OnAgentConnected(agent_id, peer);
      });
  cp->cfg_ = std::move(cfg);
  return cp;
}

ControlPlane::~ControlPlane() { Shutdown(); }

Store& ControlPlane::store() { return *store_; }

int ControlPlane::web_port() const { return view_ ? view_->web_port() : 0; }

int ControlPlane::port() const {
  absl::MutexLock l(&mu_);
  return port_;
}

absl::Status ControlPlane::Start() {
  absl::MutexLock l(&mu_);
  if (started_ || shut_down_)
    return absl::FailedPreconditionError("control plane: already started");
  // Every method served must be in the authorization table.
  for (const char* name : {"writeback.v1.AdminService", "writeback.v1.AgentService",
                           "writeback.v1.EnrollmentService"}) {
    const auto* svc = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    if (svc == nullptr) return absl::InternalError(absl::StrCat("service ", name, " not linked"));
    WB_RETURN_IF_ERROR(authz_->CheckCovers(*svc));
  }
  auto creds = tls::MakeServerCredentials(cfg_.tls(), /*require_client_cert=*/false);
  if (!creds.ok()) return creds.status();

  // The dashboard, metrics and health endpoints (if web_listen_address is
  // set), the fleet ticks and re-verification.
  WB_RETURN_IF_ERROR(view_->Start());
  grpc::EnableDefaultHealthCheckService(true);
  // Server reflection lets standard tools list and call the API; it only
  // describes the schema (the .proto files), every method stays behind the
  // authorization table. It is reachable without a certificate, so it is
  // off unless grpc_reflection is set (docs/security.md).
  // Linking the reflection library registers its plugin for every server of
  // the process; without grpc_reflection it is taken out of this builder.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!cfg_.grpc_reflection()) builder.SetOption(std::make_unique<WithoutReflection>());
  int port = 0;
  builder.AddListeningPort(cfg_.listen_address(), *creds, &port);
  builder.RegisterService(admin_.get());
  builder.RegisterService(agent_service_.get());
  builder.RegisterService(enrollment_.get());
  // Message size limits and keepalive as everywhere else.
  tls::ApplyServerDefaults(builder, kMinClientPingIntervalMs);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreamsPerConnection);
  grpc::ResourceQuota quota("writeback-controlplane");
  quota.SetMaxThreads(kMaxServerThreads);
  builder.SetResourceQuota(quota);
  // (ApplyServerDefaults turned SO_REUSEPORT off: a second control plane
  // would otherwise share the port and split the agents silently.)
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("listen_address: cannot listen on ", cfg_.listen_address()));
  }
  port_ = port;
  started_ = true;
  sweeper_ = std::thread([this] { SweepLoop(); });
  view_->SetReady(true);
  const std::string host = cfg_.listen_address().substr(0, cfg_.listen_address().rfind(':'));
  log::Info("listening", {{"address", absl::StrCat(host, ":", port)},
                          {"controlplane_id", controlplane_id_},
                          {"trust_domain", cfg_.trust_domain()},
                          {"dispatch_key_id", dispatcher_->dispatch_public_key().key_id()}});
  return absl::OkStatus();
}

void ControlPlane::SweepLoop() {
  while (!stop_sweep_.WaitForNotificationWithTimeout(opts_.expiry_sweep_interval)) {
    auto n = dispatcher_->SweepExpired();
    if (!n.ok()) log::Error("expiry sweep failed", {{"error", n.status().message()}});
    // Delivery timeouts: only the streams with one due (each asks for its
    // next one), never a pass over every connected agent.
    sessions_->WakeDue(clock_->NowUnixMs());
  }
}

void ControlPlane::Shutdown() {
  std::unique_ptr<grpc::Server> server;
  {
    absl::MutexLock l(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    server = std::move(server_);
  }
  // First: ends watch/tail streams so the server can stop at once.
  if (view_) view_->Stop();
  if (!stop_sweep_.HasBeenNotified()) stop_sweep_.Notify();
  if (sweeper_.joinable()) sweeper_.join();
  if (sessions_) {
    sessions_->EndAll(absl::UnavailableError("control plane shutting down"));
  }
  if (server) {
    server->Shutdown(std::chrono::system_clock::now() +
                     std::chrono::seconds(kShutdownGraceSeconds));
    server->Wait();
    log::Info("stopped", {{"controlplane_id", controlplane_id_}});
  }
  // Streams' last jobs (unregistering, freeing) run before the store closes.
  if (pool_) pool_->Shutdown();
  if (store_) store_->Close();
}

}  // namespace wb::controlplane
