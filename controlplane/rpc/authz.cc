#include "controlplane/rpc/authz.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace wb::controlplane {

Authorizer::Authorizer(std::string trust_domain,
                       std::map<std::string, AccessRule, std::less<>> table)
    : trust_domain_(std::move(trust_domain)), table_(std::move(table)) {}

Authorizer Authorizer::Default(std::string trust_domain) {
  using tls::IdentityClass;
  const AccessRule operators{false, {IdentityClass::kOperator}};
  const AccessRule agents{false, {IdentityClass::kAgent}};
  const AccessRule anyone{true, {}};
  return Authorizer(std::move(trust_domain), {
                                                 {kSubmitDecisionMethod, operators},
                                                 {kGetDecisionMethod, operators},
                                                 {kListDecisionsMethod, operators},
                                                 {kListAgentsMethod, operators},
                                                 {kCancelDecisionMethod, operators},
                                                 {kFleetStatusMethod, operators},
                                                 {kGetAgentMethod, operators},
                                                 {kWatchDecisionMethod, operators},
                                                 {kReverifyDecisionMethod, operators},
                                                 {kTailEventsMethod, operators},
                                                 {kApproveDecisionMethod, operators},
                                                 {kPublishTrustPolicyMethod, operators},
                                                 {kGetTrustPolicyMethod, operators},
                                                 {kCreateJoinTokenMethod, operators},
                                                 {kBanAgentMethod, operators},
                                                 {kEnrollMethod, anyone},
                                                 {kRejoinMethod, anyone},
                                                 {kRenewMethod, agents},
                                                 {kConnectMethod, agents},
                                                 {kHealthCheckMethod, anyone},
                                                 {kHealthWatchMethod, anyone},
                                                 {kVerifyAuditMethod, operators},
                                                 {kExportAuditMethod, operators},
                                                 {kExportBundleMethod, operators},
                                                 {kImportBundleMethod, operators},
                                                 {kRetireDecisionMethod, operators},
                                                 {kBindInstanceMethod, operators},
                                                 {kUnbindInstanceMethod, operators},
                                                 {kApproveRebindMethod, operators},
                                                 {kListInstancesMethod, operators},
                                             });
}

absl::StatusOr<tls::SpiffeId> Authorizer::CheckPeer(absl::string_view method,
                                                    absl::string_view peer_spiffe_id) const {
  auto it = table_.find(method);
  if (it == table_.end()) {
    return absl::PermissionDeniedError(absl::StrCat(method, " is not open to any caller"));
  }
  const AccessRule& rule = it->second;
  if (rule.public_method) return tls::SpiffeId{};
  if (peer_spiffe_id.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat(method, " requires a client certificate with a SPIFFE ID"));
  }
  auto id = tls::ParseSpiffeId(peer_spiffe_id);
  if (!id.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("caller identity '", peer_spiffe_id, "' is not a Writeback SPIFFE ID"));
  }
  if (id->trust_domain != trust_domain_) {
    return absl::PermissionDeniedError(
        absl::StrCat("caller ", peer_spiffe_id, " is not of trust domain ", trust_domain_));
  }
  if (!rule.classes.contains(id->cls)) {
    std::vector<std::string> names;
    for (auto c : rule.classes) names.emplace_back(tls::IdentityClassName(c));
    return absl::PermissionDeniedError(
        absl::StrCat(method, " is not allowed for ", tls::IdentityClassName(id->cls),
                     " identities (allowed: ", absl::StrJoin(names, ", "), ")"));
  }
  return *std::move(id);
}

absl::StatusOr<tls::SpiffeId> Authorizer::Check(absl::string_view method,
                                                const grpc::ServerContextBase& ctx) const {
  return CheckPeer(method, tls::PeerSpiffeId(ctx));
}

absl::Status Authorizer::CheckCovers(const google::protobuf::ServiceDescriptor& service) const {
  for (int i = 0; i < service.method_count(); ++i) {
    const std::string path = absl::StrCat("/", service.full_name(), "/", service.method(i)->name());
    if (!table_.contains(path)) {
      return absl::FailedPreconditionError(
          absl::StrCat("authorization table has no entry for ", path));
    }
  }
  return absl::OkStatus();
}

}  // namespace wb::controlplane
