// Who may call which RPC: one table, method full name -> identity classes.
//
// Default deny: a method that is not in the table is refused for everyone.
// Every handler calls Check first and uses the identity it returns. The
// server also refuses to start unless every method of every service it
// registers has an entry (CheckCovers).
//
// Checks, in order:
//   method not in the table                     -> PERMISSION_DENIED
//   method public (e.g. gRPC health)            -> allowed, identity empty
//   no verified client certificate              -> UNAUTHENTICATED
//   SPIFFE ID malformed                         -> UNAUTHENTICATED
//   SPIFFE ID of another trust domain           -> PERMISSION_DENIED
//   identity class not allowed for the method   -> PERMISSION_DENIED
//
// Immutable after construction; thread-safe.
#pragma once

#include <grpcpp/server_context.h>

#include <map>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tls/tls.h"
#include "google/protobuf/descriptor.h"

namespace wb::controlplane {

// gRPC method paths ("/package.Service/Method").
inline constexpr char kSubmitDecisionMethod[] = "/writeback.v1.AdminService/SubmitDecision";
inline constexpr char kGetDecisionMethod[] = "/writeback.v1.AdminService/GetDecision";
inline constexpr char kListDecisionsMethod[] = "/writeback.v1.AdminService/ListDecisions";
inline constexpr char kListAgentsMethod[] = "/writeback.v1.AdminService/ListAgents";
inline constexpr char kCancelDecisionMethod[] = "/writeback.v1.AdminService/CancelDecision";
inline constexpr char kFleetStatusMethod[] = "/writeback.v1.AdminService/FleetStatus";
inline constexpr char kGetAgentMethod[] = "/writeback.v1.AdminService/GetAgent";
inline constexpr char kWatchDecisionMethod[] = "/writeback.v1.AdminService/WatchDecision";
inline constexpr char kReverifyDecisionMethod[] = "/writeback.v1.AdminService/ReverifyDecision";
inline constexpr char kTailEventsMethod[] = "/writeback.v1.AdminService/TailEvents";
inline constexpr char kApproveDecisionMethod[] = "/writeback.v1.AdminService/ApproveDecision";
inline constexpr char kPublishTrustPolicyMethod[] = "/writeback.v1.AdminService/PublishTrustPolicy";
inline constexpr char kGetTrustPolicyMethod[] = "/writeback.v1.AdminService/GetTrustPolicy";
inline constexpr char kCreateJoinTokenMethod[] = "/writeback.v1.AdminService/CreateJoinToken";
inline constexpr char kBanAgentMethod[] = "/writeback.v1.AdminService/BanAgent";
inline constexpr char kEnrollMethod[] = "/writeback.v1.EnrollmentService/Enroll";
inline constexpr char kRejoinMethod[] = "/writeback.v1.EnrollmentService/Rejoin";
inline constexpr char kRenewMethod[] = "/writeback.v1.EnrollmentService/Renew";
inline constexpr char kConnectMethod[] = "/writeback.v1.AgentService/Connect";
inline constexpr char kHealthCheckMethod[] = "/grpc.health.v1.Health/Check";
inline constexpr char kHealthWatchMethod[] = "/grpc.health.v1.Health/Watch";
inline constexpr char kVerifyAuditMethod[] = "/writeback.v1.AdminService/VerifyAudit";
inline constexpr char kExportAuditMethod[] = "/writeback.v1.AdminService/ExportAudit";
inline constexpr char kExportBundleMethod[] = "/writeback.v1.AdminService/ExportBundle";
inline constexpr char kImportBundleMethod[] = "/writeback.v1.AdminService/ImportBundle";
inline constexpr char kRetireDecisionMethod[] = "/writeback.v1.AdminService/RetireDecision";
inline constexpr char kBindInstanceMethod[] = "/writeback.v1.AdminService/BindInstance";
inline constexpr char kUnbindInstanceMethod[] = "/writeback.v1.AdminService/UnbindInstance";
inline constexpr char kApproveRebindMethod[] = "/writeback.v1.AdminService/ApproveRebind";
inline constexpr char kListInstancesMethod[] = "/writeback.v1.AdminService/ListInstances";

struct AccessRule {
  // Anyone, with or without a certificate (health checks, enrolment).
  bool public_method = false;
  // Identity classes of our trust domain allowed to call.
  std::set<tls::IdentityClass> classes;
};

class Authorizer {
 public:
  Authorizer(std::string trust_domain, std::map<std::string, AccessRule, std::less<>> table);

  // The control plane's table: AdminService -> operators, AgentService ->
  // agents, EnrollmentService Enroll and Rejoin and gRPC health -> public,
  // Renew -> agents.
  static Authorizer Default(std::string trust_domain);

  // Checks `peer_spiffe_id` ("" = no verified certificate) for `method`.
  // Returns the caller's identity (empty for a public method).
  absl::StatusOr<tls::SpiffeId> CheckPeer(absl::string_view method,
                                          absl::string_view peer_spiffe_id) const;
  // Same, with the caller's identity taken from the call's TLS peer.
  absl::StatusOr<tls::SpiffeId> Check(absl::string_view method,
                                      const grpc::ServerContextBase& ctx) const;

  // OK iff every method of `service` has an entry; otherwise names the
  // first one missing.
  absl::Status CheckCovers(const google::protobuf::ServiceDescriptor& service) const;

  const std::string& trust_domain() const { return trust_domain_; }

 private:
  std::string trust_domain_;
  std::map<std::string, AccessRule, std::less<>> table_;
};

}  // namespace wb::controlplane
