// Fuzz target: the control plane's acceptance of a signed result
// (controlplane/dispatch/result_intake.h VerifyResultEnvelope: signature by
// the agent's registered key, parse, agent_id, outcome).
//
// Input: byte 0 bit 0 chooses the mode:
//   0  the rest is a SignedEnvelope, verified as is;
//   1  the rest is the Result payload, signed by the fuzzer's agent key (so
//      parsing and the later checks run).
// An accepted result must be the exact payload, name this agent and map to
// a task state; a violation aborts.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/envelope/envelope.h"
#include "controlplane/dispatch/result_intake.h"
#include "tests/fuzz/fuzz_support.h"

namespace wb::fuzz {
namespace {

void Run(const uint8_t* data, size_t size) {
  QuietProtobufLogs();
  Reader in(data, size);
  const uint8_t flags = in.Byte();
  const std::string rest = in.Rest();
  writeback::v1::SignedEnvelope env;
  if ((flags & 1) == 0) {
    if (!env.ParseFromString(rest)) return;
  } else {
    env = envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT, rest, AgentResultKey());
  }
  std::string task_id = "not cleared";
  auto r =
      controlplane::VerifyResultEnvelope(env, AgentResultKey().public_key(), kAgentId, &task_id);
  if (!r.ok()) {
    Require(
        r.status().code() == absl::StatusCode::kInvalidArgument && !r.status().message().empty(),
        "refusal is not INVALID_ARGUMENT with a message");
    Require(task_id != "not cleared", "task_id not set on a refusal");
    return;
  }
  Require(r->agent_id() == kAgentId, "accepted another agent's result");
  Require(controlplane::TaskStateForResult(*r) != writeback::v1::TASK_STATE_UNSPECIFIED,
          "accepted an unknown outcome");
  Require(task_id == r->task_id(), "task_id is not the result's");
  writeback::v1::Result reparsed;
  Require(reparsed.ParseFromString(env.payload()) &&
              reparsed.SerializeAsString() == r->SerializeAsString(),
          "accepted result is not the signed payload");
  // Another agent's stream and another key refuse the same envelope.
  Require(!controlplane::VerifyResultEnvelope(env, AgentResultKey().public_key(),
                                              "spiffe://writeback.test/agent/a2")
               .ok(),
          "accepted for another stream's agent");
  Require(!controlplane::VerifyResultEnvelope(env, DispatchKey().public_key(), kAgentId).ok(),
          "accepted under another key");
}

}  // namespace
}  // namespace wb::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wb::fuzz::Run(data, size);
  return 0;
}
