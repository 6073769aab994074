// Signing tasks: one per target of a decision (FanOut) or of a
// re-verification (controlplane/reverify), and the statement bytes a stream
// sends before the first task that names them (docs/architecture.md
// "Statements travel once").
#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "common/protocol/features.h"
#include "common/status/macros.h"
#include "common/trust/approvals.h"
#include "controlplane/dispatch/dispatcher.h"

namespace wb::controlplane {

using writeback::v1::DecisionRecord;
using writeback::v1::DecisionStatement;
using writeback::v1::TaskRecord;

std::vector<TaskRecord> Dispatcher::FanOut(
    const DecisionStatement& st, const std::string& statement_bytes,
    const google::protobuf::RepeatedPtrField<writeback::v1::Approval>& approvals,
    const std::string& agent_id, int64_t now_ms) {
  TaskIssue issue;
  issue.statement = &st;
  issue.statement_bytes = &statement_bytes;
  issue.approvals = &approvals;
  issue.agent_id = agent_id;
  issue.target_indexes.reserve(static_cast<size_t>(st.targets_size()));
  for (int i = 0; i < st.targets_size(); ++i) issue.target_indexes.push_back(i);
  issue.now_ms = now_ms;
  issue.expires_at_unix_ms = st.expires_at_unix_ms();
  return SignTasks(issue);
}

absl::StatusOr<std::string> Dispatcher::StatementOf(absl::string_view decision_id,
                                                    absl::string_view digest) {
  WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(decision_id));
  if (!crypto::ConstantTimeEquals(trust::StatementDigest(d.statement()), digest)) {
    return absl::DataLossError(
        absl::StrCat("decision ", decision_id, ": stored statement does not match its tasks"));
  }
  return std::move(*d.mutable_statement());
}

std::string Dispatcher::AgentServing(absl::string_view instance) const {
  absl::MutexLock l(&dir_mu_);
  auto it = routes_.find(instance);
  return it == routes_.end() ? "" : it->second.agent_id;
}

std::vector<TaskRecord> Dispatcher::SignTasks(const TaskIssue& issue) {
  const DecisionStatement& st = *issue.statement;
  bool by_digest = false;
  {
    absl::MutexLock l(&dir_mu_);
    auto it = agents_.find(issue.agent_id);
    by_digest = it != agents_.end() && protocol::HasFeature(it->second.record.features(),
                                                            protocol::kFeatureStatementDigest);
  }
  const std::string digest = trust::StatementDigest(*issue.statement_bytes);
  std::vector<TaskRecord> tasks;
  tasks.reserve(issue.target_indexes.size());
  writeback::v1::Task t;  // the fields every task shares, set once
  t.set_audience(issue.agent_id);
  if (by_digest) {
    t.set_statement_digest(digest);
  } else {
    t.set_statement(*issue.statement_bytes);
  }
  if (issue.approvals != nullptr) *t.mutable_approvals() = *issue.approvals;
  t.set_connector_instance(st.connector_instance());
  t.set_operation(st.operation());
  t.set_decision_version(st.version());
  t.set_issued_at_unix_ms(issue.now_ms);
  t.set_not_before_unix_ms(issue.now_ms);
  t.set_expires_at_unix_ms(issue.expires_at_unix_ms);
  t.set_dispatch_key_id(key_.key_id());
  t.set_verify_only(issue.verify_only);
  for (int i : issue.target_indexes) {
    t.set_task_id(issue.new_task_id ? issue.new_task_id() : NewId("t-"));
    t.set_target_index(static_cast<uint32_t>(i));
    *t.mutable_target() = st.targets(i);
    TaskRecord rec;
    rec.set_task_id(t.task_id());
    rec.set_decision_id(st.decision_id());
    rec.set_target_index(static_cast<uint32_t>(i));
    rec.set_agent_id(issue.agent_id);
    rec.set_state(writeback::v1::TASK_STATE_QUEUED);
    rec.set_queued_at_unix_ms(issue.now_ms);
    rec.set_verify_only(issue.verify_only);
    rec.set_connector_instance(st.connector_instance());
    rec.set_object(st.targets(i).object());
    if (by_digest) rec.set_statement_digest(digest);
    // Serialized once; these exact bytes are signed, stored and sent.
    *rec.mutable_signed_task() =
        envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, t.SerializeAsString(), key_);
    tasks.push_back(std::move(rec));
  }
  return tasks;
}

}  // namespace wb::controlplane
