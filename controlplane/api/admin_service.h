// AdminService: the operators' API (writeback.v1.AdminService), synchronous
// unary handlers. Every handler first checks the caller against the
// authorization table (operators only).
//
// Reads:
//   GetDecision    full view: statement, state, every task with outcome,
//                  reject reason, plan, applied changes, verification.
//                  NOT_FOUND naming the id.
//   ListDecisions  newest first, paged (page_size 0 = 100, clamped to 1000;
//                  the older `limit` field as before); optional state filter
//                  (read through the store's state index). Task views carry
//                  states and outcomes but not the evidence
//                  (plan/applied/verification); use GetDecision.
//   ListAgents     every known agent, connected or not, by id, paged
//                  (page_size 0 = 500, clamped to 1000). ListInstances the same
//                  by instance name. Page tokens: paging.h.
//
// Writes:
//   SubmitDecision validated in full, durable before the reply.
//   CancelDecision withdraws tasks without a result (Dispatcher::Cancel):
//                  NOT_FOUND, FAILED_PRECONDITION if already finished.
//
// The audit chain (admin_audit.cc, common/audit):
//   VerifyAudit    walks the whole chain (audit::VerifyChain) and reports
//                  the first broken link; a broken chain is an OK reply
//                  with ok=false. INVALID_ARGUMENT for a malformed
//                  expect_head.
//   ExportAudit    streams entries from from_seq (at most `limit`, 0 = all)
//                  as stored, decoded, with the exact event bytes.
//
// Thread-safe; the pointers given to the constructor must outlive it.
#pragma once

#include <vector>

#include "controlplane/dispatch/dispatcher.h"
#include "controlplane/dispatch/sessions.h"
#include "controlplane/fleet/admin_view.h"
#include "controlplane/rpc/authz.h"
#include "controlplane/store/store.h"
#include "writeback/v1/admin_service.grpc.pb.h"

namespace wb::controlplane {

inline constexpr uint32_t kDefaultListLimit = 100;
inline constexpr uint32_t kMaxListLimit = 1000;

class Enroller;

class AdminServiceImpl final : public writeback::v1::AdminService::Service {
 public:
  AdminServiceImpl(const Authorizer* authz, Dispatcher* dispatcher, Store* store,
                   const SessionRegistry* sessions);

  grpc::Status SubmitDecision(grpc::ServerContext* ctx,
                              const writeback::v1::SubmitDecisionRequest* req,
                              writeback::v1::SubmitDecisionResponse* resp) override;
  grpc::Status ApproveDecision(grpc::ServerContext* ctx,
                               const writeback::v1::ApproveDecisionRequest* req,
                               writeback::v1::ApproveDecisionResponse* resp) override;
  grpc::Status PublishTrustPolicy(grpc::ServerContext* ctx,
                                  const writeback::v1::PublishTrustPolicyRequest* req,
                                  writeback::v1::PublishTrustPolicyResponse* resp) override;
  grpc::Status GetTrustPolicy(grpc::ServerContext* ctx,
                              const writeback::v1::GetTrustPolicyRequest* req,
                              writeback::v1::GetTrustPolicyResponse* resp) override;
  grpc::Status CreateJoinToken(grpc::ServerContext* ctx,
                               const writeback::v1::CreateJoinTokenRequest* req,
                               writeback::v1::CreateJoinTokenResponse* resp) override;
  grpc::Status BanAgent(grpc::ServerContext* ctx, const writeback::v1::BanAgentRequest* req,
                        writeback::v1::BanAgentResponse* resp) override;
  // Enrolment (null: CreateJoinToken is UNIMPLEMENTED). Set once, before serving.
  void SetEnroller(Enroller* enroller) { enroller_ = enroller; }
  grpc::Status GetDecision(grpc::ServerContext* ctx, const writeback::v1::GetDecisionRequest* req,
                           writeback::v1::DecisionView* resp) override;
  grpc::Status ListDecisions(grpc::ServerContext* ctx,
                             const writeback::v1::ListDecisionsRequest* req,
                             writeback::v1::ListDecisionsResponse* resp) override;
  grpc::Status CancelDecision(grpc::ServerContext* ctx,
                              const writeback::v1::CancelDecisionRequest* req,
                              writeback::v1::CancelDecisionResponse* resp) override;
  grpc::Status ListAgents(grpc::ServerContext* ctx, const writeback::v1::ListAgentsRequest* req,
                          writeback::v1::ListAgentsResponse* resp) override;

  // The operators' view (controlplane/fleet): these methods are delegated
  // to `view` (UNIMPLEMENTED until it is set). Set once, before serving;
  // not owned, must outlive the service.
  void SetView(AdminView* view) { view_ = view; }
  grpc::Status FleetStatus(grpc::ServerContext* ctx, const writeback::v1::FleetStatusRequest* req,
                           writeback::v1::FleetStatusResponse* resp) override;
  grpc::Status GetAgent(grpc::ServerContext* ctx, const writeback::v1::GetAgentRequest* req,
                        writeback::v1::GetAgentResponse* resp) override;
  grpc::Status WatchDecision(
      grpc::ServerContext* ctx, const writeback::v1::WatchDecisionRequest* req,
      grpc::ServerWriter<writeback::v1::WatchDecisionResponse>* writer) override;
  grpc::Status ReverifyDecision(grpc::ServerContext* ctx,
                                const writeback::v1::ReverifyDecisionRequest* req,
                                writeback::v1::ReverifyDecisionResponse* resp) override;
  grpc::Status TailEvents(grpc::ServerContext* ctx, const writeback::v1::TailEventsRequest* req,
                          grpc::ServerWriter<writeback::v1::TailEventsResponse>* writer) override;
  grpc::Status RetireDecision(grpc::ServerContext* ctx,
                              const writeback::v1::RetireDecisionRequest* req,
                              writeback::v1::RetireDecisionResponse* resp) override;

  // Instance bindings (Dispatcher::BindInstance and friends).
  grpc::Status BindInstance(grpc::ServerContext* ctx, const writeback::v1::BindInstanceRequest* req,
                            writeback::v1::BindInstanceResponse* resp) override;
  grpc::Status UnbindInstance(grpc::ServerContext* ctx,
                              const writeback::v1::UnbindInstanceRequest* req,
                              writeback::v1::BindInstanceResponse* resp) override;
  grpc::Status ApproveRebind(grpc::ServerContext* ctx,
                             const writeback::v1::ApproveRebindRequest* req,
                             writeback::v1::BindInstanceResponse* resp) override;
  grpc::Status ListInstances(grpc::ServerContext* ctx,
                             const writeback::v1::ListInstancesRequest* req,
                             writeback::v1::ListInstancesResponse* resp) override;

  // The audit chain (admin_audit.cc).
  grpc::Status VerifyAudit(grpc::ServerContext* ctx, const writeback::v1::VerifyAuditRequest* req,
                           writeback::v1::VerifyAuditResponse* resp) override;
  grpc::Status ExportAudit(grpc::ServerContext* ctx, const writeback::v1::ExportAuditRequest* req,
                           grpc::ServerWriter<writeback::v1::AuditEntryView>* writer) override;

  // Air-gapped bundles (Dispatcher::ExportBundle / ImportBundle).
  grpc::Status ExportBundle(grpc::ServerContext* ctx, const writeback::v1::ExportBundleRequest* req,
                            writeback::v1::ExportBundleResponse* resp) override;
  grpc::Status ImportBundle(grpc::ServerContext* ctx, const writeback::v1::ImportBundleRequest* req,
                            writeback::v1::ImportBundleResponse* resp) override;

 private:
  // An agent's SPIFFE ID from a request's agent_id (a bare name or the full
  // ID); INVALID_ARGUMENT naming agent_id if it is not an agent of our
  // trust domain.
  absl::StatusOr<std::string> AgentIdOf(const std::string& given) const;
  absl::StatusOr<std::vector<writeback::v1::TaskRecord>> LoadTasks(
      const writeback::v1::DecisionRecord& d);

  const Authorizer* const authz_;
  Dispatcher* const dispatcher_;
  Store* const store_;
  const SessionRegistry* const sessions_;
  AdminView* view_ = nullptr;
  Enroller* enroller_ = nullptr;
};

}  // namespace wb::controlplane
