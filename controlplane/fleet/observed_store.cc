#include "controlplane/fleet/observed_store.h"

#include "absl/time/clock.h"
#include "controlplane/metrics/metrics.h"

namespace wb::controlplane {

using writeback::v1::AgentRecord;
using writeback::v1::DecisionRecord;
using writeback::v1::TaskRecord;

namespace {

// Times one write with the monotonic clock (latency, not "now": not the
// injected clock).
class WriteTimer {
 public:
  WriteTimer(Metrics* m, absl::string_view op) : m_(m), op_(op), start_(absl::Now()) {}
  void Done(bool ok) {
    if (m_ != nullptr) m_->ObserveStoreWrite(op_, absl::Now() - start_, ok);
  }

 private:
  Metrics* m_;
  absl::string_view op_;
  absl::Time start_;
};

}  // namespace

ObservedStore::ObservedStore(Store* inner, StoreObserver* observer, Metrics* metrics)
    : inner_(inner), observer_(observer), metrics_(metrics) {}

absl::Status ObservedStore::CreateDecision(const DecisionRecord& decision,
                                           const std::vector<TaskRecord>& tasks,
                                           absl::string_view request_id,
                                           const std::vector<DecisionUpdate>& others,
                                           const audit::AuditEvents& audit_events) {
  WriteTimer t(metrics_, "create_decision");
  absl::Status s = inner_->CreateDecision(decision, tasks, request_id, others, audit_events);
  t.Done(s.ok());
  if (s.ok() && observer_ != nullptr) {
    for (const DecisionUpdate& u : others) {
      observer_->OnProgress(u.decision, u.decision_changed, u.tasks);
    }
    observer_->OnDecisionCreated(decision, tasks);
  }
  return s;
}

absl::Status ObservedStore::SaveProgress(const DecisionRecord& decision, bool decision_changed,
                                         const std::vector<TaskRecord>& tasks,
                                         const audit::AuditEvents& audit_events) {
  WriteTimer t(metrics_, "save_progress");
  absl::Status s = inner_->SaveProgress(decision, decision_changed, tasks, audit_events);
  t.Done(s.ok());
  if (s.ok() && observer_ != nullptr) observer_->OnProgress(decision, decision_changed, tasks);
  return s;
}

absl::Status ObservedStore::SaveProgressBatch(const std::vector<DecisionUpdate>& updates,
                                              const audit::AuditEvents& audit_events) {
  WriteTimer t(metrics_, "save_progress");
  absl::Status s = inner_->SaveProgressBatch(updates, audit_events);
  t.Done(s.ok());
  if (s.ok() && observer_ != nullptr) {
    for (const DecisionUpdate& u : updates) {
      observer_->OnProgress(u.decision, u.decision_changed, u.tasks);
    }
  }
  return s;
}

absl::Status ObservedStore::PutBinding(const writeback::v1::InstanceBinding& binding,
                                       const audit::AuditEvents& audit_events) {
  WriteTimer t(metrics_, "put_binding");
  absl::Status s = inner_->PutBinding(binding, audit_events);
  t.Done(s.ok());
  if (s.ok() && observer_ != nullptr) observer_->OnBindingPut(binding);
  return s;
}

absl::StatusOr<std::vector<writeback::v1::InstanceBinding>> ObservedStore::ListBindings() {
  return inner_->ListBindings();
}

absl::Status ObservedStore::AppendAudit(const audit::AuditEvents& events) {
  WriteTimer t(metrics_, "append_audit");
  absl::Status s = inner_->AppendAudit(events);
  t.Done(s.ok());
  return s;
}

absl::Status ObservedStore::PutAgent(const AgentRecord& agent) {
  WriteTimer t(metrics_, "put_agent");
  absl::Status s = inner_->PutAgent(agent);
  t.Done(s.ok());
  if (s.ok() && observer_ != nullptr) observer_->OnAgentPut(agent);
  return s;
}

absl::StatusOr<uint64_t> ObservedStore::NextDecisionVersion() {
  return inner_->NextDecisionVersion();
}

absl::StatusOr<DecisionRecord> ObservedStore::GetDecision(absl::string_view decision_id) {
  return inner_->GetDecision(decision_id);
}

absl::StatusOr<TaskRecord> ObservedStore::GetTask(absl::string_view task_id) {
  return inner_->GetTask(task_id);
}

absl::StatusOr<writeback::v1::TaskHead> ObservedStore::GetTaskHead(absl::string_view task_id) {
  return inner_->GetTaskHead(task_id);
}

absl::StatusOr<AgentRecord> ObservedStore::GetAgent(absl::string_view agent_id) {
  return inner_->GetAgent(agent_id);
}

absl::StatusOr<std::string> ObservedStore::FindDecisionByRequestId(absl::string_view request_id) {
  return inner_->FindDecisionByRequestId(request_id);
}

absl::StatusOr<std::vector<AgentRecord>> ObservedStore::ListAgents() {
  return inner_->ListAgents();
}

absl::StatusOr<std::vector<DecisionRecord>> ObservedStore::QueryDecisions(const DecisionQuery& q) {
  return inner_->QueryDecisions(q);
}

absl::StatusOr<std::vector<std::string>> ObservedStore::PeekOutbox(
    absl::string_view agent_id, size_t limit,
    const std::function<bool(absl::string_view task_id)>& skip) {
  return inner_->PeekOutbox(agent_id, limit, skip);
}

absl::StatusOr<std::vector<std::string>> ObservedStore::ExpiredDecisions(int64_t now_unix_ms,
                                                                         size_t limit) {
  return inner_->ExpiredDecisions(now_unix_ms, limit);
}

absl::Status ObservedStore::PutTrustPolicy(const writeback::v1::SignedEnvelope& policy) {
  return inner_->PutTrustPolicy(policy);
}

absl::StatusOr<std::optional<writeback::v1::SignedEnvelope>> ObservedStore::GetTrustPolicy() {
  return inner_->GetTrustPolicy();
}

absl::Status ObservedStore::PutJoinToken(const writeback::v1::JoinTokenRecord& token) {
  return inner_->PutJoinToken(token);
}

absl::StatusOr<writeback::v1::JoinTokenRecord> ObservedStore::GetJoinToken(
    absl::string_view token_digest) {
  return inner_->GetJoinToken(token_digest);
}

absl::StatusOr<std::vector<writeback::v1::JoinTokenRecord>> ObservedStore::ListJoinTokens() {
  return inner_->ListJoinTokens();
}

absl::StatusOr<audit::ChainHead> ObservedStore::AuditHead() { return inner_->AuditHead(); }

absl::Status ObservedStore::ScanAudit(uint64_t from_seq, const audit::EntryFn& fn) {
  return inner_->ScanAudit(from_seq, fn);
}

}  // namespace wb::controlplane
