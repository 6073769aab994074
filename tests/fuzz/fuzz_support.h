// Shared by the fuzz targets of tests/fuzz and their seed generator
// (make_seeds.cc): fixed test keys, the agent's fixed check context, valid
// examples of every operation of every connector type, and the small byte
// format the structured targets read their input in.
//
// Everything here is deterministic (fixed keys, fixed clock; Ed25519
// signatures are deterministic), so seeds regenerate byte for byte and a
// crashing input replays the same way. Test-only: the keys are public.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/checks/task_checks.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "writeback/v1/action.pb.h"
#include "writeback/v1/decision.pb.h"
#include "writeback/v1/envelope.pb.h"
#include "writeback/v1/trust.pb.h"

namespace wb::fuzz {

inline constexpr char kAgentId[] = "spiffe://writeback.test/agent/a1";
inline constexpr char kRequester[] = "spiffe://writeback.test/operator/olga";
// The agent's fixed "now" (2027-01-15).
inline constexpr int64_t kNowUnixMs = 1'800'000'000'000;
absl::Time Now();

// Fixed Ed25519 keys (PEMs in fuzz_support.cc).
const crypto::Ed25519PrivateKey& DispatchKey();
const crypto::Ed25519PrivateKey& ApproverKey(int i);  // i = 0 or 1
const crypto::Ed25519PrivateKey& AgentResultKey();

// The connector instance configured on the fuzzed agent for `type`:
// "<type>-1", every operation of the type allowed.
std::string InstanceOf(absl::string_view connector_type);

// A trust policy: dispatch key DispatchKey, approvers ApproverKey(0/1)
// (operator/approver-0, -1), every action class at `threshold`.
writeback::v1::TrustPolicy PolicyWithThreshold(uint32_t threshold, uint64_t version);
// The root that signs the contexts' policies (fixed per process).
const crypto::Ed25519PrivateKey& PolicyRootKey();

// The agent's context: one instance per connector type, max skew 60 s,
// now = Now(). Threshold 0: pinned mode, dispatch keyring {DispatchKey}, no
// approvals. 1 or 2: root mode with PolicyWithThreshold(threshold, 1).
// Built once per threshold; lives forever.
const agent::CheckContext& Context(uint32_t threshold);

// An in-memory journal, fixed at start (never changes between inputs):
//   task "seen-task"      kDone, with the digest of SeenTaskPayload()
//   task "journal-error"  FindTask fails (UNAVAILABLE)
//   AppliedVersion(InstanceOf("ssh_authorized_keys"), "alice") = 5;
//   object "journal-error" → UNAVAILABLE; everything else 0.
const agent::TaskHistory& History();
const std::string& SeenTaskPayload();

// A valid action for one operation of one connector type.
struct Example {
  std::string type;
  std::string operation;
  std::string object;
  writeback::v1::ActionParams params;
};
// At least one valid example for every operation of every connector type
// (ValidateAction and ValidateTargetObject accept each; checked by the seed
// generator).
const std::vector<Example>& ValidExamples();

// The statement a control plane would make for `ex` (one target).
writeback::v1::DecisionStatement StatementFor(const Example& ex, uint64_t version);
// The task for target 0 of `statement` (made from the parsed
// `statement`, carrying `statement_bytes` exactly), addressed to kAgentId,
// valid around Now(), signed-by key id of DispatchKey().
writeback::v1::Task TaskFor(const std::string& statement_bytes,
                            const writeback::v1::DecisionStatement& statement,
                            const std::string& task_id);
// An approval of `statement_bytes` by ApproverKey(i).
writeback::v1::Approval ApprovalFor(const std::string& statement_bytes, int i);

// The envelope the task_envelope target checks for an input whose first
// byte was `flags` and whose other bytes are `rest` (mode = flags & 3, see
// task_envelope_fuzzer.cc). nullopt if mode 0 and `rest` does not parse.
std::optional<writeback::v1::SignedEnvelope> TaskEnvelopeFor(uint8_t flags,
                                                             const std::string& rest);

// Structured inputs: a reader that never fails (missing bytes read as 0 or
// empty), and the matching writer for seeds.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size)
      : data_(reinterpret_cast<const char*>(data)), size_(size) {}
  uint8_t Byte();
  // A string prefixed by a 2-byte big-endian length (cut to what is left).
  std::string Str();
  // Everything not read yet.
  std::string Rest();

 private:
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
};
std::string Str(absl::string_view s);  // Reader::Str's encoding of s

// Aborts with `what` when `cond` is false: the fuzzers' property checks (a
// plain abort, so that it is a crash in every build type).
void Require(bool cond, absl::string_view what);

// Silences protobuf's log lines (invalid UTF-8 in string fields etc.).
void QuietProtobufLogs();

}  // namespace wb::fuzz
