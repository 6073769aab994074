// Fuzz target: the agent's acceptance of a signed trust policy
// (common/trust/policy.h VerifyPolicy against the pinned root key). Built
// only when the target wb_trust exists (tests/fuzz/CMakeLists.txt).
//
// Input: byte 0 bit 0 chooses the mode:
//   0  the rest is a SignedEnvelope, verified as is;
//   1  the rest is the policy payload, signed by the fuzzer's root key as
//      PAYLOAD_TYPE_TRUST_POLICY (so parsing and every later check run);
// bytes 1-2: the minimum version the agent already holds (big-endian).
// A policy accepted under the root key must be refused under another key
// and above its own version; a violation aborts.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/envelope/envelope.h"
#include "common/trust/policy.h"
#include "tests/fuzz/fuzz_support.h"

namespace wb::fuzz {
namespace {

// The fuzzer's pinned root: ApproverKey(1) doubles as the test root key.
const crypto::Ed25519PrivateKey& RootKey() { return ApproverKey(1); }

void Run(const uint8_t* data, size_t size) {
  QuietProtobufLogs();
  Reader in(data, size);
  const uint8_t flags = in.Byte();
  uint64_t min_version = static_cast<uint64_t>(in.Byte()) << 8;
  min_version |= in.Byte();
  const std::string rest = in.Rest();
  writeback::v1::SignedEnvelope env;
  if ((flags & 1) == 0) {
    if (!env.ParseFromString(rest)) return;
  } else {
    env = envelope::Sign(writeback::v1::PAYLOAD_TYPE_TRUST_POLICY, rest, RootKey());
  }
  auto p = trust::VerifyPolicy(env, RootKey().public_key(), min_version, Now());
  if (!p.ok()) return;
  Require(!trust::VerifyPolicy(env, DispatchKey().public_key(), min_version, Now()).ok(),
          "trust policy accepted under another root key");
  if (p->version() < UINT64_MAX) {
    Require(!trust::VerifyPolicy(env, RootKey().public_key(), p->version() + 1, Now()).ok(),
            "trust policy accepted below the minimum version");
  }
  Require(!envelope::HasUnknownFields(p->policy), "trust policy accepted with unknown fields");
  Require(trust::ValidatePolicy(p->policy).ok(), "an invalid trust policy accepted");
}

}  // namespace
}  // namespace wb::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wb::fuzz::Run(data, size);
  return 0;
}
