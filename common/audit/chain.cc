#include "common/audit/chain.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"

namespace wb::audit {

namespace v1 = writeback::v1;

std::string EntryHash(absl::string_view event_bytes) {
  return crypto::Sha256(absl::StrCat(kAuditHashDomain, event_bytes));
}

const std::string& ZeroHash() {
  static const std::string* const kZero = new std::string(kHashBytes, '\0');
  return *kZero;
}

std::string EntryKey(uint64_t seq) {
  std::string k(8, '\0');
  for (int i = 0; i < 8; ++i) k[i] = static_cast<char>((seq >> (8 * (7 - i))) & 0xff);
  return k;
}

absl::StatusOr<uint64_t> ParseEntryKey(absl::string_view key) {
  if (key.size() != 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("audit key ", crypto::HexEncode(key), " is not an 8-byte big-endian seq"));
  }
  uint64_t v = 0;
  for (char c : key) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

std::string SealEvent(v1::AuditEvent event, ChainHead* head) {
  event.set_seq(head->seq + 1);
  event.set_prev_hash(head->hash);
  v1::AuditEntry entry;
  entry.set_event(event.SerializeAsString());
  entry.set_hash(EntryHash(entry.event()));
  head->seq = event.seq();
  head->hash = entry.hash();
  return entry.SerializeAsString();
}

std::string KindName(v1::AuditEventKind kind) {
  if (!v1::AuditEventKind_IsValid(kind))
    return absl::StrCat("UNKNOWN(", static_cast<int>(kind), ")");
  std::string name = v1::AuditEventKind_Name(kind);
  constexpr absl::string_view kPrefix = "AUDIT_EVENT_KIND_";
  if (absl::StartsWith(name, kPrefix)) name.erase(0, kPrefix.size());
  return name;
}

absl::StatusOr<ChainHead> ParseAnchor(absl::string_view text, absl::string_view field) {
  const size_t colon = text.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": expected SEQ:HEX (as printed by audit verify), got '", text, "'"));
  }
  ChainHead h;
  if (!absl::SimpleAtoi(text.substr(0, colon), &h.seq) || h.seq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": SEQ must be a positive integer, got '", text.substr(0, colon), "'"));
  }
  const absl::string_view hex = text.substr(colon + 1);
  auto raw = crypto::HexDecode(hex);
  if (hex.size() != 2 * kHashBytes || !raw.ok() || raw->size() != kHashBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": HEX must be 64 hex digits (a SHA-256), got '", hex, "'"));
  }
  h.hash = *std::move(raw);
  return h;
}

std::string FormatAnchor(const ChainHead& head) {
  return absl::StrCat(head.seq, ":", crypto::HexEncode(head.hash));
}

v1::AuditEvent NewEvent(v1::AuditEventKind kind, absl::string_view actor, int64_t now_unix_ms) {
  v1::AuditEvent e;
  e.set_kind(kind);
  e.set_actor(std::string(actor));
  e.set_time_unix_ms(now_unix_ms);
  return e;
}

v1::AuditEvent DecisionSubmitted(absl::string_view actor, int64_t now_unix_ms,
                                 const v1::DecisionRecord& decision) {
  v1::AuditEvent e = NewEvent(v1::AUDIT_EVENT_KIND_DECISION_SUBMITTED, actor, now_unix_ms);
  const auto& st = decision.parsed();
  e.set_decision_id(st.decision_id());
  e.set_new_state(v1::DecisionState_Name(decision.state()));
  e.set_detail(absl::StrCat("version ", st.version(), ", ", st.connector_instance(), "/",
                            st.operation(), ", ", st.targets_size(), " target(s)"));
  e.set_digest(crypto::Sha256(decision.statement()));
  return e;
}

v1::AuditEvent TaskDispatched(absl::string_view actor, int64_t now_unix_ms,
                              const v1::TaskRecord& task) {
  v1::AuditEvent e = NewEvent(v1::AUDIT_EVENT_KIND_DECISION_DISPATCHED, actor, now_unix_ms);
  e.set_decision_id(task.decision_id());
  e.set_task_id(task.task_id());
  e.set_agent_id(task.agent_id());
  e.set_new_state(v1::TaskState_Name(task.state()));
  e.set_detail(task.verify_only() ? "verify-only task" : "task");
  e.set_digest(crypto::Sha256(task.signed_task().payload()));
  return e;
}

v1::AuditEvent TaskResult(absl::string_view actor, int64_t now_unix_ms,
                          const v1::TaskRecord& task) {
  v1::AuditEvent e = NewEvent(v1::AUDIT_EVENT_KIND_TASK_RESULT, actor, now_unix_ms);
  e.set_decision_id(task.decision_id());
  e.set_task_id(task.task_id());
  e.set_agent_id(task.agent_id());
  e.set_detail(v1::Outcome_Name(task.result().outcome()));
  e.set_digest(crypto::Sha256(task.signed_result().payload()));
  return e;
}

v1::AuditEvent DecisionApproved(absl::string_view actor, int64_t now_unix_ms,
                                absl::string_view decision_id, absl::string_view approver_key_id,
                                absl::string_view statement_digest) {
  v1::AuditEvent e = NewEvent(v1::AUDIT_EVENT_KIND_DECISION_APPROVED, actor, now_unix_ms);
  e.set_decision_id(std::string(decision_id));
  e.set_detail(absl::StrCat("approver key ", approver_key_id));
  e.set_digest(std::string(statement_digest));
  return e;
}

v1::AuditEvent TaskStateChanged(absl::string_view actor, int64_t now_unix_ms,
                                const v1::TaskRecord& task, v1::TaskState old_state) {
  v1::AuditEvent e = NewEvent(v1::AUDIT_EVENT_KIND_TASK_STATE_CHANGED, actor, now_unix_ms);
  e.set_decision_id(task.decision_id());
  e.set_task_id(task.task_id());
  e.set_agent_id(task.agent_id());
  e.set_old_state(v1::TaskState_Name(old_state));
  e.set_new_state(v1::TaskState_Name(task.state()));
  return e;
}

v1::AuditEvent DecisionStateChanged(absl::string_view actor, int64_t now_unix_ms,
                                    const v1::DecisionRecord& decision,
                                    v1::DecisionState old_state) {
  v1::AuditEvent e = NewEvent(v1::AUDIT_EVENT_KIND_DECISION_STATE_CHANGED, actor, now_unix_ms);
  e.set_decision_id(decision.parsed().decision_id());
  e.set_old_state(v1::DecisionState_Name(old_state));
  e.set_new_state(v1::DecisionState_Name(decision.state()));
  e.set_detail(decision.state_detail());
  return e;
}

void AddStateChanges(absl::string_view actor, int64_t now_unix_ms,
                     const v1::DecisionRecord& decision, v1::DecisionState old_decision_state,
                     const std::vector<v1::TaskRecord>& tasks,
                     const std::vector<v1::TaskState>& old_task_states, AuditEvents* out) {
  for (size_t i = 0; i < tasks.size() && i < old_task_states.size(); ++i) {
    if (tasks[i].state() != old_task_states[i]) {
      out->push_back(TaskStateChanged(actor, now_unix_ms, tasks[i], old_task_states[i]));
    }
  }
  if (decision.state() != old_decision_state) {
    out->push_back(DecisionStateChanged(actor, now_unix_ms, decision, old_decision_state));
  }
}

}  // namespace wb::audit
