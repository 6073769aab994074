// A Store decorator that tells an observer about every successful write and
// times every write (writeback_store_write_seconds). The control plane hands
// it to the dispatcher in place of the real store, so the fleet model, the
// event feed and the re-verification scheduler see every durable change
// without the dispatcher knowing about them.
//
// The observer is called after the inner write returned OK, on the writing
// thread, while the caller still holds whatever lock it took around the
// write (for the dispatcher: the decision's lock), so calls for one decision
// arrive in write order. Observers must be quick and must not write to the
// store from inside the callback.
//
// Thread-safety: as the inner store; the observer must be thread-safe.
#pragma once

#include <string>
#include <vector>

#include "controlplane/store/store.h"

namespace wb::controlplane {

class Metrics;

class StoreObserver {
 public:
  virtual ~StoreObserver() = default;
  virtual void OnDecisionCreated(const writeback::v1::DecisionRecord& decision,
                                 const std::vector<writeback::v1::TaskRecord>& tasks) = 0;
  virtual void OnProgress(const writeback::v1::DecisionRecord& decision, bool decision_changed,
                          const std::vector<writeback::v1::TaskRecord>& tasks) = 0;
  virtual void OnAgentPut(const writeback::v1::AgentRecord& agent) = 0;
  virtual void OnBindingPut(const writeback::v1::InstanceBinding& binding) {}
};

class ObservedStore final : public Store {
 public:
  // Nothing is owned; `observer` and `metrics` may be null. All must
  // outlive this store.
  ObservedStore(Store* inner, StoreObserver* observer, Metrics* metrics);

  absl::Status CreateDecision(const writeback::v1::DecisionRecord& decision,
                              const std::vector<writeback::v1::TaskRecord>& tasks,
                              absl::string_view request_id,
                              const std::vector<DecisionUpdate>& others,
                              const audit::AuditEvents& audit_events) override;
  using Store::CreateDecision;
  absl::Status SaveProgress(const writeback::v1::DecisionRecord& decision, bool decision_changed,
                            const std::vector<writeback::v1::TaskRecord>& tasks,
                            const audit::AuditEvents& audit_events) override;
  absl::Status SaveProgressBatch(const std::vector<DecisionUpdate>& updates,
                                 const audit::AuditEvents& audit_events) override;
  absl::Status PutBinding(const writeback::v1::InstanceBinding& binding,
                          const audit::AuditEvents& audit_events) override;
  absl::StatusOr<std::vector<writeback::v1::InstanceBinding>> ListBindings() override;
  absl::Status AppendAudit(const audit::AuditEvents& events) override;
  absl::Status PutAgent(const writeback::v1::AgentRecord& agent) override;
  absl::StatusOr<uint64_t> NextDecisionVersion() override;
  absl::Status PutTrustPolicy(const writeback::v1::SignedEnvelope& policy) override;
  absl::Status PutJoinToken(const writeback::v1::JoinTokenRecord& token) override;
  absl::StatusOr<writeback::v1::JoinTokenRecord> GetJoinToken(
      absl::string_view token_digest) override;
  absl::StatusOr<std::vector<writeback::v1::JoinTokenRecord>> ListJoinTokens() override;
  absl::StatusOr<std::optional<writeback::v1::SignedEnvelope>> GetTrustPolicy() override;

  absl::StatusOr<writeback::v1::DecisionRecord> GetDecision(absl::string_view decision_id) override;
  absl::StatusOr<writeback::v1::TaskRecord> GetTask(absl::string_view task_id) override;
  absl::StatusOr<writeback::v1::TaskHead> GetTaskHead(absl::string_view task_id) override;
  absl::StatusOr<writeback::v1::AgentRecord> GetAgent(absl::string_view agent_id) override;
  absl::StatusOr<std::string> FindDecisionByRequestId(absl::string_view request_id) override;
  absl::StatusOr<std::vector<writeback::v1::AgentRecord>> ListAgents() override;
  absl::StatusOr<std::vector<writeback::v1::DecisionRecord>> QueryDecisions(
      const DecisionQuery& q) override;
  absl::StatusOr<std::vector<std::string>> PeekOutbox(
      absl::string_view agent_id, size_t limit,
      const std::function<bool(absl::string_view task_id)>& skip) override;
  absl::StatusOr<std::vector<std::string>> ExpiredDecisions(int64_t now_unix_ms,
                                                            size_t limit) override;
  absl::StatusOr<audit::ChainHead> AuditHead() override;
  absl::Status ScanAudit(uint64_t from_seq, const audit::EntryFn& fn) override;

  Store* inner() const { return inner_; }

 private:
  Store* const inner_;
  StoreObserver* const observer_;
  Metrics* const metrics_;
};

}  // namespace wb::controlplane
