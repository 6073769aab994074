// The audit chain's format (docs/operations.md "Audit chain"), shared by the
// store that appends to it, the verifier and the offline reader.
//
// Each entry is one writeback.v1.AuditEvent serialized ONCE by the store,
// stored with its hash as a writeback.v1.AuditEntry{event, hash} under the
// key BE64(seq) in the column family "audit":
//   hash(seq) = SHA-256("writeback.v1/audit\n" || event bytes of seq)
//   event(seq).prev_hash = hash(seq - 1), 32 zero bytes for seq 1.
// Verifiers recompute hashes from the stored bytes; nothing is ever
// re-serialized to be checked.
//
// Pure functions (hashing through common/crypto); thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "writeback/v1/records.pb.h"

namespace wb::audit {

// Name of the RocksDB column family holding the chain.
inline constexpr char kAuditColumnFamily[] = "audit";
// Domain separation prefix of every entry's hash.
inline constexpr char kAuditHashDomain[] = "writeback.v1/audit\n";
inline constexpr size_t kHashBytes = 32;

using AuditEvents = std::vector<writeback::v1::AuditEvent>;

// The last entry of a chain: seq 0 and 32 zero bytes for an empty chain.
struct ChainHead {
  uint64_t seq = 0;
  std::string hash = std::string(kHashBytes, '\0');
};

// SHA-256(kAuditHashDomain || event_bytes), raw 32 bytes.
std::string EntryHash(absl::string_view event_bytes);
// prev_hash of seq 1.
const std::string& ZeroHash();

// Key of entry `seq`: 8 bytes big-endian (sorts in seq order).
std::string EntryKey(uint64_t seq);
// INVALID_ARGUMENT unless `key` is exactly 8 bytes.
absl::StatusOr<uint64_t> ParseEntryKey(absl::string_view key);

// Sets `event`'s seq and prev_hash from `head`, serializes it once and
// returns the stored value (an AuditEntry); advances `head` to it.
std::string SealEvent(writeback::v1::AuditEvent event, ChainHead* head);

// The kind without its prefix: "DECISION_SUBMITTED"; "UNKNOWN(<n>)" for a
// value this build does not know.
std::string KindName(writeback::v1::AuditEventKind kind);

// "SEQ:HEX" (an anchor, as printed by verify) -> ChainHead. INVALID_ARGUMENT
// naming `field` when SEQ is not a positive integer or HEX not 64 hex digits.
absl::StatusOr<ChainHead> ParseAnchor(absl::string_view text, absl::string_view field);
// "SEQ:HEX".
std::string FormatAnchor(const ChainHead& head);

// ---- Building events (seq and prev_hash are left to the store) ----

writeback::v1::AuditEvent NewEvent(writeback::v1::AuditEventKind kind, absl::string_view actor,
                                   int64_t now_unix_ms);
// DECISION_SUBMITTED: digest of the statement bytes.
writeback::v1::AuditEvent DecisionSubmitted(absl::string_view actor, int64_t now_unix_ms,
                                            const writeback::v1::DecisionRecord& decision);
// DECISION_DISPATCHED for one task: digest of its signed payload.
writeback::v1::AuditEvent TaskDispatched(absl::string_view actor, int64_t now_unix_ms,
                                         const writeback::v1::TaskRecord& task);
// TASK_RESULT: digest of the signed result payload, detail the outcome.
writeback::v1::AuditEvent TaskResult(absl::string_view actor, int64_t now_unix_ms,
                                     const writeback::v1::TaskRecord& task);
// DECISION_APPROVED: one approval added (detail names the approver key).
writeback::v1::AuditEvent DecisionApproved(absl::string_view actor, int64_t now_unix_ms,
                                           absl::string_view decision_id,
                                           absl::string_view approver_key_id,
                                           absl::string_view statement_digest);
// TASK_STATE_CHANGED from `old_state` to the task's state.
writeback::v1::AuditEvent TaskStateChanged(absl::string_view actor, int64_t now_unix_ms,
                                           const writeback::v1::TaskRecord& task,
                                           writeback::v1::TaskState old_state);
// DECISION_STATE_CHANGED from `old_state` to the decision's state (detail:
// its state_detail).
writeback::v1::AuditEvent DecisionStateChanged(absl::string_view actor, int64_t now_unix_ms,
                                               const writeback::v1::DecisionRecord& decision,
                                               writeback::v1::DecisionState old_state);

// Appends to `out`: TASK_STATE_CHANGED for each of `tasks` whose state is
// not its old state (`old_task_states`, same order and size), then
// DECISION_STATE_CHANGED if `decision`'s state is not `old_decision_state`
// (a change of state_detail alone is not a state change).
void AddStateChanges(absl::string_view actor, int64_t now_unix_ms,
                     const writeback::v1::DecisionRecord& decision,
                     writeback::v1::DecisionState old_decision_state,
                     const std::vector<writeback::v1::TaskRecord>& tasks,
                     const std::vector<writeback::v1::TaskState>& old_task_states,
                     AuditEvents* out);

}  // namespace wb::audit
