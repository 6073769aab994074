// The operators'-view half of writeback.v1.AdminService: FleetStatus,
// GetAgent, WatchDecision, ReverifyDecision and TailEvents, plus the extra
// fields of a DecisionView (timeline, re-verifications, drift). The admin
// service (controlplane/api/admin_service.h) delegates these methods to an
// AdminView; implementations check the caller against the authorization
// table themselves.
#pragma once

#include <grpcpp/grpcpp.h>

#include <vector>

#include "controlplane/store/store.h"
#include "writeback/v1/admin_service.pb.h"
#include "writeback/v1/records.pb.h"

namespace wb::controlplane {

class AdminView {
 public:
  virtual ~AdminView() = default;
  virtual grpc::Status FleetStatus(grpc::ServerContext* ctx,
                                   const writeback::v1::FleetStatusRequest* req,
                                   writeback::v1::FleetStatusResponse* resp) = 0;
  virtual grpc::Status GetAgent(grpc::ServerContext* ctx, const writeback::v1::GetAgentRequest* req,
                                writeback::v1::GetAgentResponse* resp) = 0;
  virtual grpc::Status WatchDecision(
      grpc::ServerContext* ctx, const writeback::v1::WatchDecisionRequest* req,
      grpc::ServerWriter<writeback::v1::WatchDecisionResponse>* writer) = 0;
  virtual grpc::Status ReverifyDecision(grpc::ServerContext* ctx,
                                        const writeback::v1::ReverifyDecisionRequest* req,
                                        writeback::v1::ReverifyDecisionResponse* resp) = 0;
  virtual grpc::Status TailEvents(
      grpc::ServerContext* ctx, const writeback::v1::TailEventsRequest* req,
      grpc::ServerWriter<writeback::v1::TailEventsResponse>* writer) = 0;
  virtual grpc::Status RetireDecision(grpc::ServerContext* ctx,
                                      const writeback::v1::RetireDecisionRequest* req,
                                      writeback::v1::RetireDecisionResponse* resp) = 0;
};

// A DecisionView of `d` and its tasks (in d.task_ids order). With
// `with_evidence`, task views include plan, applied changes, verification
// and message.
writeback::v1::DecisionView MakeDecisionView(const writeback::v1::DecisionRecord& d,
                                             const std::vector<writeback::v1::TaskRecord>& tasks,
                                             bool with_evidence);

// The DecisionView fields this issue adds that follow from the records
// alone: timeline, drifted_at, remediated_by, remediates. Pure.
void AddTimeline(const writeback::v1::DecisionRecord& d,
                 const std::vector<writeback::v1::TaskRecord>& tasks,
                 writeback::v1::DecisionView* view);

// Adds the latest re-verification of each target (view.reverifications),
// read from `store`; with `with_evidence` they carry the verification.
absl::Status AddReverifications(Store& store, const writeback::v1::DecisionRecord& d,
                                bool with_evidence, writeback::v1::DecisionView* view);

}  // namespace wb::controlplane
