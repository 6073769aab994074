// Agent enrolment, renewal and re-joining (proto EnrollmentService;
// docs/security.md "Agent identities").
//
//   Enroll  public: a single-use, unexpired join token for one agent id
//           (AdminService.CreateJoinToken), a CSR whose own signature proves
//           the agent holds its new TLS key, and the agent's result public
//           key. The token is spent first (durably), then the result key is
//           registered and a certificate with the agent's SPIFFE ID issued
//           for cert_lifetime; a failure after spending needs a new token.
//   Renew   agents (their valid certificate): a new certificate for the same
//           identity.
//   Rejoin  public: an agent whose certificate expired signs
//           (agent id, CSR digest, time) with its registered result key.
// Every path refuses a banned agent. Enroll and Rejoin share a rate limit
// (max_requests_per_minute, RESOURCE_EXHAUSTED). Nothing secret is logged
// (a token is never logged, only its agent id).
//
// Thread-safe.
#pragma once

#include <deque>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock/clock.h"
#include "controlplane/dispatch/dispatcher.h"
#include "controlplane/rpc/authz.h"
#include "controlplane/store/store.h"
#include "writeback/v1/config.pb.h"
#include "writeback/v1/enrollment.grpc.pb.h"

namespace wb::controlplane {

inline constexpr uint32_t kDefaultCertLifetimeSeconds = 86400;
inline constexpr uint32_t kMaxJoinTokenTtlSeconds = 7 * 86400;
inline constexpr absl::Duration kRejoinMaxSkew = absl::Minutes(5);

// The issuing side, without gRPC (tests call it directly).
class Enroller {
 public:
  // Reads the CA certificate (ca_file) and key (cfg.ca_key_file) and checks
  // they match. Pointers must outlive the enroller.
  static absl::StatusOr<std::unique_ptr<Enroller>> Create(
      const writeback::v1::EnrollmentConfig& cfg, const std::string& ca_file,
      std::string trust_domain, Store* store, Dispatcher* dispatcher, const Clock* clock);

  // AdminService.CreateJoinToken. `agent` is a short id or a SPIFFE ID.
  // `instances` are bound to the agent when it enrols with the token; each
  // must be bindable to it at once (Dispatcher::CanBindAtOnce).
  absl::StatusOr<writeback::v1::CreateJoinTokenResponse> CreateToken(
      absl::string_view by, absl::string_view agent, uint32_t ttl_seconds,
      const std::vector<std::string>& instances = {});
  absl::StatusOr<writeback::v1::EnrollResponse> Enroll(const writeback::v1::EnrollRequest& req);
  absl::StatusOr<writeback::v1::EnrollResponse> Renew(absl::string_view agent_id,
                                                      const writeback::v1::RenewRequest& req);
  absl::StatusOr<writeback::v1::EnrollResponse> Rejoin(const writeback::v1::RejoinRequest& req);

 private:
  Enroller() = default;
  absl::Status TakeRate();
  absl::StatusOr<writeback::v1::EnrollResponse> Issue(const std::string& agent_id,
                                                      absl::string_view csr_pem);
  // Appends an identity event (digest of the issued certificate).
  absl::Status Record(writeback::v1::AuditEventKind kind, const std::string& agent_id,
                      const std::string& detail, const writeback::v1::EnrollResponse& issued);

  std::string ca_pem_;
  std::string ca_key_pem_;  // secret: never logged
  std::string trust_domain_;
  absl::Duration lifetime_;
  uint32_t per_minute_ = 60;
  Store* store_ = nullptr;
  Dispatcher* dispatcher_ = nullptr;
  const Clock* clock_ = nullptr;

  absl::Mutex token_mu_;  // spends a token once
  absl::Mutex rate_mu_;
  std::deque<int64_t> recent_ ABSL_GUARDED_BY(rate_mu_);  // request times, last minute
};

class EnrollmentServiceImpl final : public writeback::v1::EnrollmentService::Service {
 public:
  // `enroller` may be null: every call is then UNIMPLEMENTED ("enrolment is
  // not configured").
  EnrollmentServiceImpl(const Authorizer* authz, Enroller* enroller)
      : authz_(authz), enroller_(enroller) {}

  grpc::Status Enroll(grpc::ServerContext* ctx, const writeback::v1::EnrollRequest* req,
                      writeback::v1::EnrollResponse* resp) override;
  grpc::Status Rejoin(grpc::ServerContext* ctx, const writeback::v1::RejoinRequest* req,
                      writeback::v1::EnrollResponse* resp) override;
  grpc::Status Renew(grpc::ServerContext* ctx, const writeback::v1::RenewRequest* req,
                     writeback::v1::EnrollResponse* resp) override;

 private:
  const Authorizer* const authz_;
  Enroller* const enroller_;
};

}  // namespace wb::controlplane
