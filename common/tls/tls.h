// mTLS for every Writeback connection, and SPIFFE identities.
//
// Identities are SPIFFE IDs in a certificate's single URI SAN:
//   spiffe://<trust-domain>/agent/<id>
//   spiffe://<trust-domain>/operator/<name>
//   spiffe://<trust-domain>/controlplane/<name>
// gRPC 1.51 exposes a valid one as the auth property "peer_spiffe_id".
// Credentials watch their files, so a renewed certificate is picked up
// without a restart.
#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "writeback/v1/config.pb.h"

namespace wb::tls {

enum class IdentityClass { kNone, kAgent, kOperator, kControlPlane };
absl::string_view IdentityClassName(IdentityClass c);

struct SpiffeId {
  std::string trust_domain;
  IdentityClass cls = IdentityClass::kNone;
  std::string name;
  std::string ToString() const;
};

// Names (agent ids, operator names, trust domains' labels): 1-63 chars of
// [a-z0-9._-], starting with a letter or digit.
absl::Status ValidateName(absl::string_view field, absl::string_view name);
absl::StatusOr<SpiffeId> ParseSpiffeId(absl::string_view uri);
std::string MakeSpiffeId(absl::string_view trust_domain, IdentityClass cls, absl::string_view name);

// Server credentials. With `require_client_cert`, the handshake fails
// without a client certificate issued by the CA; otherwise a certificate is
// requested and verified if presented, and each method decides (see
// controlplane/rpc/authz.h).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const writeback::v1::TlsConfig& cfg, bool require_client_cert);

// Client credentials presenting cfg's certificate. The server must present
// a certificate from cfg.ca_file whose SPIFFE ID equals `expected_server_id`
// (host names are not used). If cfg has no cert/key, no client certificate is
// presented (enrolment).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const writeback::v1::TlsConfig& cfg, const std::string& expected_server_id);

// The caller's SPIFFE ID, or "" if it presented no valid one.
std::string PeerSpiffeId(const grpc::ServerContextBase& ctx);

// Default channel arguments: message size limits and keepalive (documented
// in docs/operations.md).
grpc::ChannelArguments DefaultChannelArgs();

}  // namespace wb::tls
