#include "agent/relay/relay.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "common/logging/logging.h"
#include "common/relay/relay.h"
#include "common/tls/server_args.h"
#include "common/tls/tls.h"
#include "writeback/v1/agent_service.grpc.pb.h"
#include "writeback/v1/enrollment.grpc.pb.h"

namespace wb::agent {

using writeback::v1::AgentMessage;
using writeback::v1::ControlMessage;

namespace {

constexpr uint32_t kDefaultMaxDownstream = 256;
constexpr uint32_t kDefaultStreamsPerConnection = 16;
// The control plane accepts 32 streams per connection (docs/security.md).
constexpr uint32_t kMaxStreamsPerConnection = 32;

grpc::Status Denied(const std::string& why) {
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why);
}

std::chrono::system_clock::time_point DeadlineIn(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

}  // namespace

absl::Status ValidateRelayListenAddress(const std::string& address) {
  constexpr absl::string_view kField = "relay.listen_address";
  std::string host;
  absl::string_view port;
  if (!address.empty() && address[0] == '[') {
    const size_t close = address.find("]:");
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(kField, ": '", address, "' is not [IPv6]:PORT"));
    }
    host = address.substr(1, close - 1);
    port = absl::string_view(address).substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(kField, ": '", address, "' is not IP:PORT (required)"));
    }
    host = address.substr(0, colon);
    port = absl::string_view(address).substr(colon + 1);
  }
  int p = -1;
  if (!absl::SimpleAtoi(port, &p) || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(kField, ": port '", port, "' is not 0-65535"));
  }
  unsigned char buf[16] = {};
  const bool v4 = inet_pton(AF_INET, host.c_str(), buf) == 1;
  const bool v6 = !v4 && inet_pton(AF_INET6, host.c_str(), buf) == 1;
  if (!v4 && !v6) {
    return absl::InvalidArgumentError(absl::StrCat(
        kField, ": '", host, "' is not an IP address (give the inside interface's address)"));
  }
  bool any = true;
  for (int i = 0; i < (v4 ? 4 : 16); ++i) any = any && buf[i] == 0;
  if (any) {
    return absl::InvalidArgumentError(
        absl::StrCat(kField, ": '", host,
                     "' is a wildcard; a relay listens only on the inside interface it is given"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Relay::Options> RelayOptionsFromConfig(const writeback::v1::AgentConfig& cfg) {
  if (!cfg.has_relay()) return absl::InvalidArgumentError("relay: not configured");
  if (absl::Status s = ValidateRelayListenAddress(cfg.relay().listen_address()); !s.ok()) {
    return s;
  }
  auto id = tls::ParseSpiffeId(cfg.agent_id());
  if (!id.ok() || id->cls != tls::IdentityClass::kAgent) {
    return absl::InvalidArgumentError("agent_id: a relay needs its agent SPIFFE ID");
  }
  Relay::Options o;
  o.self_id = cfg.agent_id();
  o.trust_domain = id->trust_domain;
  o.config = cfg.relay();
  o.upstream_address = cfg.controlplane_address();
  o.upstream_id = cfg.controlplane_id();
  o.tls = cfg.tls();
  return o;
}

struct Relay::Impl {
  Options opts;
  std::shared_ptr<grpc::ChannelCredentials> up_creds;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<grpc::Service> agent_service;
  std::unique_ptr<grpc::Service> enroll_service;
  int port = 0;
  std::atomic<size_t> active{0};
  std::atomic<uint64_t> forwarded{0};

  std::mutex mu;
  struct Conn {
    std::shared_ptr<grpc::Channel> channel;
    uint32_t streams = 0;
  };
  std::vector<Conn> conns;  // guarded by mu
  std::shared_ptr<grpc::Channel> unary;

  std::shared_ptr<grpc::Channel> NewChannel() {
    grpc::ChannelArguments args = tls::DefaultChannelArgs();
    // Own connection per channel: the control plane limits streams per
    // connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(opts.upstream_address, up_creds, args);
  }

  // A connection with a free stream slot (a new one if none).
  std::pair<size_t, std::shared_ptr<grpc::Channel>> Acquire() {
    std::lock_guard<std::mutex> l(mu);
    for (size_t i = 0; i < conns.size(); ++i) {
      if (conns[i].streams < opts.config.streams_per_connection()) {
        ++conns[i].streams;
        return {i, conns[i].channel};
      }
    }
    conns.push_back(Conn{NewChannel(), 1});
    return {conns.size() - 1, conns.back().channel};
  }
  void Release(size_t i) {
    std::lock_guard<std::mutex> l(mu);
    --conns[i].streams;
  }

  grpc::Status Forward(grpc::ServerContext* ctx,
                       grpc::ServerReaderWriter<ControlMessage, AgentMessage>* down);
};

namespace {

class AgentForwarder final : public writeback::v1::AgentService::Service {
 public:
  explicit AgentForwarder(Relay::Impl* impl) : impl_(impl) {}
  grpc::Status Connect(grpc::ServerContext* ctx,
                       grpc::ServerReaderWriter<ControlMessage, AgentMessage>* down) override {
    return impl_->Forward(ctx, down);
  }

 private:
  Relay::Impl* const impl_;
};

// Enrolment and re-join are public calls whose answers are only useful to
// the holder of the private keys; they are forwarded as they are. Renewal
// authenticates with the caller's certificate, which the control plane
// would not see through a relay: UNIMPLEMENTED tells the agent to re-join.
class EnrollForwarder final : public writeback::v1::EnrollmentService::Service {
 public:
  explicit EnrollForwarder(Relay::Impl* impl) : impl_(impl) {}
  grpc::Status Enroll(grpc::ServerContext*, const writeback::v1::EnrollRequest* req,
                      writeback::v1::EnrollResponse* resp) override {
    grpc::ClientContext c;
    c.set_deadline(DeadlineIn(impl_->opts.call_timeout));
    auto s = writeback::v1::EnrollmentService::NewStub(impl_->unary)->Enroll(&c, *req, resp);
    log::Info("relayed an enrolment", {{"agent_id", resp->agent_id()},
                                       {"ok", s.ok() ? "yes" : "no"},
                                       {"error", s.error_message()}});
    return s;
  }
  grpc::Status Rejoin(grpc::ServerContext*, const writeback::v1::RejoinRequest* req,
                      writeback::v1::EnrollResponse* resp) override {
    grpc::ClientContext c;
    c.set_deadline(DeadlineIn(impl_->opts.call_timeout));
    auto s = writeback::v1::EnrollmentService::NewStub(impl_->unary)->Rejoin(&c, *req, resp);
    log::Info("relayed a re-join", {{"agent_id", req->agent_id()},
                                    {"ok", s.ok() ? "yes" : "no"},
                                    {"error", s.error_message()}});
    return s;
  }
  grpc::Status Renew(grpc::ServerContext*, const writeback::v1::RenewRequest*,
                     writeback::v1::EnrollResponse*) override {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "renewal is not forwarded by relays: re-join with the result key");
  }

 private:
  Relay::Impl* const impl_;
};

}  // namespace

grpc::Status Relay::Impl::Forward(grpc::ServerContext* ctx,
                                  grpc::ServerReaderWriter<ControlMessage, AgentMessage>* down) {
  const std::string peer = tls::PeerSpiffeId(*ctx);
  auto pid = tls::ParseSpiffeId(peer);
  if (peer.empty() || !pid.ok() || pid->cls != tls::IdentityClass::kAgent ||
      pid->trust_domain != opts.trust_domain) {
    log::Warn("relay: downstream stream refused", {{"peer", peer}, {"why", "not an agent"}});
    return Denied(absl::StrCat("relay ", opts.self_id, ": a downstream stream needs an agent ",
                               "certificate of ", opts.trust_domain));
  }
  if (active.fetch_add(1) >= opts.config.max_downstream_streams()) {
    active.fetch_sub(1);
    log::Warn("relay: downstream stream refused", {{"peer", peer}, {"why", "relay full"}});
    return grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("relay ", opts.self_id, ": ", opts.config.max_downstream_streams(),
                     " downstream streams already (relay.max_downstream_streams)"));
  }
  struct ActiveGuard {
    std::atomic<size_t>* n;
    ~ActiveGuard() { n->fetch_sub(1); }
  } active_guard{&active};

  std::vector<std::string> path;
  const auto& md = ctx->client_metadata();
  if (auto h = md.find(relay::kRelayPathHeader); h != md.end()) {
    auto parsed = relay::ParseRelayPath(absl::string_view(h->second.data(), h->second.size()),
                                        opts.trust_domain);
    if (!parsed.ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          std::string(parsed.status().message()));
    }
    path = *std::move(parsed);
  }
  for (const auto& hop : path) {
    if (hop == opts.self_id) {
      return Denied(absl::StrCat(relay::kRelayPathHeader, ": relay ", opts.self_id,
                                 " is already on the path (a relay loop)"));
    }
  }
  if (path.size() + 1 > relay::kMaxRelayHops) {
    return Denied(
        absl::StrCat(relay::kRelayPathHeader, ": more than ", relay::kMaxRelayHops, " relays"));
  }
  AgentMessage first;
  if (!down->Read(&first)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "stream closed before hello");
  }
  if (!first.has_hello()) return Denied("the first message on the stream must be hello");
  const std::string agent = first.hello().agent_id();
  if (path.empty() && agent != peer) {
    return Denied(absl::StrCat("hello.agent_id: '", agent,
                               "' is not the downstream certificate's identity '", peer, "'"));
  }
  if (!path.empty() && path.back() != peer) {
    return Denied(absl::StrCat(relay::kRelayPathHeader, ": the last relay '", path.back(),
                               "' is not the downstream certificate's identity '", peer, "'"));
  }
  path.push_back(opts.self_id);
  const std::string via = relay::FormatRelayPath(path);

  auto [slot, channel] = Acquire();
  struct SlotGuard {
    Impl* impl;
    size_t slot;
    ~SlotGuard() { impl->Release(slot); }
  } slot_guard{this, slot};
  grpc::ClientContext up_ctx;
  up_ctx.AddMetadata(relay::kRelayPathHeader, via);
  auto stub = writeback::v1::AgentService::NewStub(channel);
  auto up = stub->Connect(&up_ctx);
  forwarded.fetch_add(1);
  log::Info("relaying a stream", {{"agent_id", agent}, {"via", via}});

  if (!up->Write(first)) {
    grpc::Status s = up->Finish();
    log::Warn("relay: upstream refused the stream",
              {{"agent_id", agent}, {"error", s.error_message()}});
    return s;
  }
  // The control plane's answer to the Hello, read here before anything runs
  // in parallel: a refusal (a ban, a changed key, an instance another agent
  // serves) goes back to the agent with the control plane's own code and
  // message, not as a cancelled call.
  {
    ControlMessage welcome;
    if (!up->Read(&welcome)) {
      grpc::Status s = up->Finish();
      log::Warn("relay: upstream refused the stream",
                {{"agent_id", agent}, {"error", s.error_message()}});
      return s.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "upstream closed the stream") : s;
    }
    if (opts.tamper_for_test) opts.tamper_for_test(welcome);
    if (!down->Write(welcome)) {
      up_ctx.TryCancel();
      up->Finish();
      return grpc::Status(grpc::StatusCode::CANCELLED, "downstream went away");
    }
  }
  // Then upstream -> downstream on a second thread; when either side ends,
  // the other is cancelled (a refusal after the Welcome reaches the agent as
  // CANCELLED; its next Hello gets the refusal itself).
  std::thread pump([&] {
    ControlMessage cm;
    while (up->Read(&cm)) {
      if (opts.tamper_for_test) opts.tamper_for_test(cm);
      if (!down->Write(cm)) break;
    }
    ctx->TryCancel();
  });
  AgentMessage am;
  while (down->Read(&am)) {
    if (!up->Write(am)) break;
  }
  up_ctx.TryCancel();
  pump.join();
  grpc::Status s = up->Finish();
  log::Info("relayed stream ended",
            {{"agent_id", agent},
             {"upstream", s.ok() ? "ok" : absl::StrCat(s.error_code(), ": ", s.error_message())}});
  // The downstream call is cancelled by now; the agent reconnects.
  return s;
}

Relay::Relay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Relay::~Relay() { Stop(); }

absl::StatusOr<std::unique_ptr<Relay>> Relay::Start(Options opts) {
  auto& cfg = opts.config;
  if (absl::Status s = ValidateRelayListenAddress(cfg.listen_address()); !s.ok()) return s;
  if (cfg.max_downstream_streams() == 0) cfg.set_max_downstream_streams(kDefaultMaxDownstream);
  if (cfg.streams_per_connection() == 0) {
    cfg.set_streams_per_connection(kDefaultStreamsPerConnection);
  }
  if (cfg.streams_per_connection() > kMaxStreamsPerConnection) {
    return absl::InvalidArgumentError(absl::StrCat("relay.streams_per_connection: at most ",
                                                   kMaxStreamsPerConnection,
                                                   " (the control plane's limit per connection)"));
  }
  if (opts.tls.cert_file().empty() || opts.tls.key_file().empty()) {
    return absl::InvalidArgumentError(
        "tls.cert_file, tls.key_file: a relay serves downstream agents with its own "
        "certificate (enrol it first)");
  }
  auto impl = std::make_unique<Impl>();
  impl->opts = std::move(opts);
  auto up = tls::MakeChannelCredentials(impl->opts.tls, impl->opts.upstream_id);
  if (!up.ok()) return up.status();
  impl->up_creds = *up;
  impl->unary = impl->NewChannel();
  // Client certificates are requested; Connect requires an agent's (checked
  // per stream), Enroll and Rejoin are public as on the control plane.
  auto creds = tls::MakeServerCredentials(impl->opts.tls, /*require_client_cert=*/false);
  if (!creds.ok()) return creds.status();
  impl->agent_service = std::make_unique<AgentForwarder>(impl.get());
  impl->enroll_service = std::make_unique<EnrollForwarder>(impl.get());

  grpc::ServerBuilder builder;
  builder.AddListeningPort(impl->opts.config.listen_address(), *creds, &impl->port);
  builder.RegisterService(impl->agent_service.get());
  builder.RegisterService(impl->enroll_service.get());
  tls::ApplyServerDefaults(builder, /*min_client_ping_interval_ms=*/10'000);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 8);
  grpc::ResourceQuota quota("writeback-relay");
  quota.SetMaxThreads(static_cast<int>(impl->opts.config.max_downstream_streams()) + 32);
  builder.SetResourceQuota(quota);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat("relay.listen_address: cannot listen on ",
                                               impl->opts.config.listen_address()));
  }
  if (!impl->opts.config.port_file().empty()) {
    if (absl::Status s =
            fs::WriteFileAtomic(impl->opts.config.port_file(), absl::StrCat(impl->port, "\n"));
        !s.ok()) {
      impl->server->Shutdown();
      return s;
    }
  }
  log::Info("relay listening", {{"address", impl->opts.config.listen_address()},
                                {"port", absl::StrCat(impl->port)},
                                {"upstream", impl->opts.upstream_address}});
  return std::unique_ptr<Relay>(new Relay(std::move(impl)));
}

void Relay::Stop() {
  if (impl_ == nullptr || impl_->server == nullptr) return;
  impl_->server->Shutdown(DeadlineIn(absl::Seconds(1)));
  impl_->server->Wait();
  impl_->server.reset();
}

int Relay::port() const { return impl_->port; }
size_t Relay::active_streams() const { return impl_->active.load(); }
uint64_t Relay::forwarded_streams() const { return impl_->forwarded.load(); }

}  // namespace wb::agent
