// Checks an audit chain (chain.h) from seq 1 and names the FIRST broken link.
//
// Checks, entry by entry in key order:
//   seq contiguous from 1       "seq 17: missing (the chain jumps from 16 to 18)"
//                               "seq 1: missing (the chain starts at seq 4)"
//   stored value parses         "seq 9: entry does not parse"
//   hash recomputed from the stored event bytes equals the stored hash
//                               "seq 9: hash does not match its bytes"
//   event parses, its seq is the key's, its kind is set
//                               "seq 9: event does not parse" / "event says seq 8"
//   prev_hash = previous entry's hash (32 zero bytes for seq 1)
//                               "seq 12: prev_hash does not match seq 11"
//   a read error of the source  "seq 12: unreadable (...)"
// With an anchor (SEQ:HEX recorded from an earlier verify), the entry SEQ
// must exist and its bytes hash to HEX:
//                               "seq 40: missing (the chain ends at seq 35; the anchor expects it)"
//                               "seq 40: hash ... does not match the anchor ..."
//
// What it cannot detect (docs/operations.md): the chain is not signed, so
// whoever can write the database can delete entries at the END of the chain
// (without an anchor that is invisible), or rewrite an entry and every one
// after it with fresh hashes (only an anchor at or after the rewritten
// entry shows it). Anchors must be kept outside the control plane's host.
//
// The scan continues past a break (without checking links) to report the
// head and to check the anchor. Pure logic; a ChainVerifier is not
// thread-safe, VerifyChain is.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/audit/chain.h"

namespace wb::audit {

struct VerifyReport {
  bool ok = true;
  // Entries read (all of them, also past a break).
  uint64_t entries_checked = 0;
  // The last entry read: its key's seq and stored hash (seq 0 when empty).
  ChainHead head;
  // The first broken link when !ok: its seq and the full reason, which
  // starts with "seq <broken_seq>: ".
  uint64_t broken_seq = 0;
  std::string broken_reason;
  bool anchor_checked = false;
};

// Calls `fn(seq, stored value)` for every entry with seq >= from_seq, in seq
// order, until `fn` returns false. Errors: the read error.
using EntryFn = std::function<bool(uint64_t seq, absl::string_view value)>;
using ScanFn = std::function<absl::Status(uint64_t from_seq, const EntryFn& fn)>;

class ChainVerifier {
 public:
  explicit ChainVerifier(std::optional<ChainHead> anchor = std::nullopt);

  // The next stored entry, in key order.
  void Add(uint64_t seq, absl::string_view value);
  // The source failed after the entries added so far.
  void SourceError(const absl::Status& status);
  // The report; call once, after the last Add.
  VerifyReport Finish();

 private:
  void Break(uint64_t seq, std::string reason);
  void CheckAnchor(uint64_t seq, absl::string_view value);

  std::optional<ChainHead> anchor_;
  bool anchor_seen_ = false;
  uint64_t anchor_break_seq_ = 0;
  std::string anchor_break_;
  bool chain_broken_ = false;
  // The previous entry (its seq and verified hash).
  ChainHead prev_;
  VerifyReport report_;
};

// Scans the whole chain through `scan` and verifies it.
VerifyReport VerifyChain(const ScanFn& scan, std::optional<ChainHead> anchor);

}  // namespace wb::audit
