#include "common/tls/tls.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fs/fs.h"
#include "common/tls/server_args.h"

namespace wb::tls {
namespace {

constexpr unsigned kRefreshSeconds = 60;

class SpiffePinVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit SpiffePinVerifier(std::string expected) : expected_(std::move(expected)) {}
  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    auto uris = request->uri_names();
    if (uris.size() != 1) {
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                  "server certificate must carry exactly one URI SAN");
      return true;
    }
    std::string got(uris[0].data(), uris[0].size());
    if (got != expected_) {
      *sync_status =
          grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                       absl::StrCat("server identity ", got, " is not the pinned ", expected_));
      return true;
    }
    *sync_status = grpc::Status::OK;
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  std::string expected_;
};

absl::Status CheckReadable(absl::string_view field, const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  auto r = fs::ReadFile(path, 1 << 20);
  if (!r.ok()) return absl::InvalidArgumentError(absl::StrCat(field, ": ", r.status().message()));
  return absl::OkStatus();
}

}  // namespace

absl::string_view IdentityClassName(IdentityClass c) {
  switch (c) {
    case IdentityClass::kAgent:
      return "agent";
    case IdentityClass::kOperator:
      return "operator";
    case IdentityClass::kControlPlane:
      return "controlplane";
    case IdentityClass::kNone:
      break;
  }
  return "none";
}

std::string SpiffeId::ToString() const { return MakeSpiffeId(trust_domain, cls, name); }

absl::Status ValidateName(absl::string_view field, absl::string_view name) {
  if (name.empty() || name.size() > 63) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be 1 to 63 characters"));
  }
  if (!absl::ascii_islower(name[0]) && !absl::ascii_isdigit(name[0])) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must start with a lowercase letter or digit"));
  }
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '_' || c == '.')) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": only lowercase letters, digits, '.', '_' and '-' are allowed"));
    }
  }
  return absl::OkStatus();
}

std::string MakeSpiffeId(absl::string_view trust_domain, IdentityClass cls,
                         absl::string_view name) {
  return absl::StrCat("spiffe://", trust_domain, "/", IdentityClassName(cls), "/", name);
}

absl::StatusOr<SpiffeId> ParseSpiffeId(absl::string_view uri) {
  constexpr absl::string_view kScheme = "spiffe://";
  if (!absl::StartsWith(uri, kScheme)) {
    return absl::InvalidArgumentError("spiffe id: must start with spiffe://");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(uri.substr(kScheme.size()), '/');
  if (parts.size() != 3) {
    return absl::InvalidArgumentError("spiffe id: must be spiffe://<domain>/<class>/<name>");
  }
  SpiffeId id;
  if (absl::Status s = ValidateName("spiffe id trust domain", parts[0]); !s.ok()) return s;
  id.trust_domain = std::string(parts[0]);
  if (parts[1] == "agent") {
    id.cls = IdentityClass::kAgent;
  } else if (parts[1] == "operator") {
    id.cls = IdentityClass::kOperator;
  } else if (parts[1] == "controlplane") {
    id.cls = IdentityClass::kControlPlane;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("spiffe id: unknown class '", parts[1], "' (agent|operator|controlplane)"));
  }
  if (absl::Status s = ValidateName("spiffe id name", parts[2]); !s.ok()) return s;
  id.name = std::string(parts[2]);
  return id;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const writeback::v1::TlsConfig& cfg, bool require_client_cert) {
  if (auto s = CheckReadable("tls.ca_file", cfg.ca_file()); !s.ok()) return s;
  if (auto s = CheckReadable("tls.cert_file", cfg.cert_file()); !s.ok()) return s;
  if (auto s = CheckReadable("tls.key_file", cfg.key_file()); !s.ok()) return s;
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      cfg.key_file(), cfg.cert_file(), cfg.ca_file(), kRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions opts(provider);
  opts.watch_root_certs();
  opts.watch_identity_key_cert_pairs();
  opts.set_cert_request_type(require_client_cert
                                 ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                 : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(opts);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const writeback::v1::TlsConfig& cfg, const std::string& expected_server_id) {
  if (auto s = CheckReadable("tls.ca_file", cfg.ca_file()); !s.ok()) return s;
  if (expected_server_id.empty()) {
    return absl::InvalidArgumentError("controlplane_id: required (the server's SPIFFE ID)");
  }
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider;
  const bool with_identity = !cfg.cert_file().empty() || !cfg.key_file().empty();
  if (with_identity) {
    if (auto s = CheckReadable("tls.cert_file", cfg.cert_file()); !s.ok()) return s;
    if (auto s = CheckReadable("tls.key_file", cfg.key_file()); !s.ok()) return s;
    provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        cfg.key_file(), cfg.cert_file(), cfg.ca_file(), kRefreshSeconds);
  } else {
    provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        cfg.ca_file(), kRefreshSeconds);
  }
  grpc::experimental::TlsChannelCredentialsOptions opts;
  opts.set_certificate_provider(provider);
  opts.watch_root_certs();
  if (with_identity) opts.watch_identity_key_cert_pairs();
  opts.set_verify_server_certs(true);
  opts.set_check_call_host(false);
  opts.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<SpiffePinVerifier>(
          expected_server_id));
  return grpc::experimental::TlsCredentials(opts);
}

std::string PeerSpiffeId(const grpc::ServerContextBase& ctx) {
  auto auth = ctx.auth_context();
  if (!auth) return "";
  auto v = auth->FindPropertyValues(GRPC_PEER_SPIFFE_ID_PROPERTY_NAME);
  if (v.size() != 1) return "";
  return std::string(v[0].data(), v[0].size());
}

grpc::ChannelArguments DefaultChannelArgs() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(4 << 20);
  args.SetMaxSendMessageSize(4 << 20);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  return args;
}

void ApplyServerDefaults(grpc::ServerBuilder& builder, int min_client_ping_interval_ms) {
  const grpc::ChannelArguments defaults = DefaultChannelArgs();
  const grpc_channel_args args = defaults.c_channel_args();
  for (size_t i = 0; i < args.num_args; ++i) {
    if (args.args[i].type == GRPC_ARG_INTEGER) {
      builder.AddChannelArgument(args.args[i].key, args.args[i].value.integer);
    }
  }
  builder.SetMaxReceiveMessageSize(4 << 20);
  builder.SetMaxSendMessageSize(4 << 20);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             min_client_ping_interval_ms);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
}

}  // namespace wb::tls
