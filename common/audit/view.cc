#include "common/audit/view.h"

#include "common/crypto/crypto.h"

namespace wb::audit {

namespace v1 = writeback::v1;

v1::AuditEntryView EntryView(uint64_t seq, absl::string_view value) {
  v1::AuditEntryView view;
  view.set_seq(seq);
  v1::AuditEntry entry;
  if (!entry.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    view.set_event_base64(crypto::Base64Encode(value));
    view.set_error("entry does not parse (event_base64 holds the whole stored value)");
    return view;
  }
  view.set_hash_hex(crypto::HexEncode(entry.hash()));
  view.set_event_base64(crypto::Base64Encode(entry.event()));
  v1::AuditEvent e;
  if (!e.ParseFromString(entry.event())) {
    view.set_error("event does not parse");
    return view;
  }
  if (e.seq() != seq) view.set_error("event's seq is not its key's");
  view.set_time_unix_ms(e.time_unix_ms());
  view.set_kind(KindName(e.kind()));
  view.set_actor(e.actor());
  view.set_decision_id(e.decision_id());
  view.set_task_id(e.task_id());
  view.set_agent_id(e.agent_id());
  view.set_old_state(e.old_state());
  view.set_new_state(e.new_state());
  view.set_detail(e.detail());
  if (!e.digest().empty()) view.set_digest_hex(crypto::HexEncode(e.digest()));
  view.set_prev_hash_hex(crypto::HexEncode(e.prev_hash()));
  return view;
}

v1::VerifyAuditResponse ReportToProto(const VerifyReport& r) {
  v1::VerifyAuditResponse p;
  p.set_ok(r.ok);
  p.set_entries_checked(r.entries_checked);
  p.set_head_seq(r.head.seq);
  p.set_head_hash_hex(r.head.seq == 0 ? std::string() : crypto::HexEncode(r.head.hash));
  p.set_broken_seq(r.broken_seq);
  p.set_broken_reason(r.broken_reason);
  p.set_anchor_checked(r.anchor_checked);
  return p;
}

}  // namespace wb::audit
