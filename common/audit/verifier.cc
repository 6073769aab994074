#include "common/audit/verifier.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"

namespace wb::audit {

namespace v1 = writeback::v1;

ChainVerifier::ChainVerifier(std::optional<ChainHead> anchor) : anchor_(std::move(anchor)) {
  report_.head = ChainHead();
}

void ChainVerifier::Break(uint64_t seq, std::string reason) {
  if (chain_broken_) return;
  chain_broken_ = true;
  report_.ok = false;
  report_.broken_seq = seq;
  report_.broken_reason = absl::StrCat("seq ", seq, ": ", reason);
}

void ChainVerifier::CheckAnchor(uint64_t seq, absl::string_view value) {
  if (!anchor_.has_value() || seq != anchor_->seq) return;
  anchor_seen_ = true;
  v1::AuditEntry entry;
  std::string got = "unreadable bytes";
  if (entry.ParseFromArray(value.data(), static_cast<int>(value.size())))
    got = crypto::HexEncode(EntryHash(entry.event()));
  if (got != crypto::HexEncode(anchor_->hash)) {
    anchor_break_seq_ = seq;
    anchor_break_ = absl::StrCat("seq ", seq, ": its bytes hash to ", got, ", the anchor expects ",
                                 crypto::HexEncode(anchor_->hash),
                                 " (rewritten, or the chain was cut and re-grown)");
  }
}

void ChainVerifier::Add(uint64_t seq, absl::string_view value) {
  ++report_.entries_checked;
  CheckAnchor(seq, value);
  v1::AuditEntry entry;
  const bool entry_ok = entry.ParseFromArray(value.data(), static_cast<int>(value.size()));
  report_.head.seq = seq;
  report_.head.hash = entry_ok ? entry.hash() : std::string();

  const uint64_t expected = prev_.seq + 1;
  if (chain_broken_) return;
  if (seq != expected) {
    if (prev_.seq == 0) {
      Break(expected, absl::StrCat("missing (the chain starts at seq ", seq, ")"));
    } else {
      Break(expected, absl::StrCat("missing (the chain jumps from ", prev_.seq, " to ", seq, ")"));
    }
    return;
  }
  if (!entry_ok) return Break(seq, "entry does not parse");
  if (entry.hash() != EntryHash(entry.event())) {
    return Break(seq, "hash does not match its bytes");
  }
  v1::AuditEvent event;
  if (!event.ParseFromString(entry.event())) return Break(seq, "event does not parse");
  if (event.seq() != seq) return Break(seq, absl::StrCat("event says seq ", event.seq()));
  if (event.kind() == v1::AUDIT_EVENT_KIND_UNSPECIFIED) return Break(seq, "event has no kind");
  if (event.prev_hash() != prev_.hash) {
    return Break(seq, seq == 1 ? std::string("prev_hash of the first entry is not zero")
                               : absl::StrCat("prev_hash does not match seq ", prev_.seq));
  }
  prev_.seq = seq;
  prev_.hash = entry.hash();
}

void ChainVerifier::SourceError(const absl::Status& status) {
  Break(report_.head.seq + 1, absl::StrCat("unreadable (", status.message(), ")"));
}

VerifyReport ChainVerifier::Finish() {
  if (anchor_.has_value()) {
    report_.anchor_checked = true;
    if (!anchor_seen_) {
      anchor_break_seq_ = anchor_->seq;
      anchor_break_ =
          absl::StrCat("seq ", anchor_->seq, ": missing (the chain ends at seq ", report_.head.seq,
                       "; the anchor expects it with hash ", crypto::HexEncode(anchor_->hash), ")");
    }
    if (!anchor_break_.empty() && (!chain_broken_ || anchor_break_seq_ < report_.broken_seq)) {
      chain_broken_ = true;
      report_.ok = false;
      report_.broken_seq = anchor_break_seq_;
      report_.broken_reason = anchor_break_;
    }
  }
  return report_;
}

VerifyReport VerifyChain(const ScanFn& scan, std::optional<ChainHead> anchor) {
  ChainVerifier v(std::move(anchor));
  absl::Status s = scan(1, [&v](uint64_t seq, absl::string_view value) {
    v.Add(seq, value);
    return true;
  });
  if (!s.ok()) v.SourceError(s);
  return v.Finish();
}

}  // namespace wb::audit
