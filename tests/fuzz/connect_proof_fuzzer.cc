// Fuzz target: what the control plane accepts from a stream forwarded by
// relays (common/relay): the relay path header and the agent's connect proof
// (issue 9, docs/networks.md).
//
// Input: byte 0 chooses the mode:
//   bit 1 set  the rest is an x-writeback-relay-path header value;
//   else bit 0 0  the rest is a SignedEnvelope, verified as is;
//          bit 0 1  the rest is the ConnectStatement payload, signed by the
//                   fuzzer's agent key (so parsing and the later checks run).
// An accepted path must re-format to the same header, name distinct agents
// of the trust domain and be at most kMaxRelayHops long; an accepted proof
// must be this agent's, fresh, with a 16-byte nonce, and be refused for
// another agent or under another key. A violation aborts.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "common/envelope/envelope.h"
#include "common/relay/relay.h"
#include "common/tls/tls.h"
#include "tests/fuzz/fuzz_support.h"

namespace wb::fuzz {
namespace {

// The fixed clock of the target (seeds are signed at this time).
const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

void Path(const std::string& header) {
  auto p = relay::ParseRelayPath(header, "writeback.test");
  if (!p.ok()) {
    Require(
        p.status().code() == absl::StatusCode::kInvalidArgument && !p.status().message().empty(),
        "path refusal is not INVALID_ARGUMENT with a message");
    return;
  }
  Require(p->size() <= relay::kMaxRelayHops, "accepted a path that is too long");
  Require(relay::FormatRelayPath(*p) == header, "accepted path does not re-format to the header");
  std::set<std::string> seen;
  for (const auto& hop : *p) {
    auto id = tls::ParseSpiffeId(hop);
    Require(
        id.ok() && id->cls == tls::IdentityClass::kAgent && id->trust_domain == "writeback.test",
        "accepted a hop that is not an agent of the trust domain");
    Require(seen.insert(hop).second, "accepted a loop");
  }
}

void Proof(const writeback::v1::SignedEnvelope& env) {
  auto v = relay::VerifyConnectProof(env, kAgentId, AgentResultKey().public_key(), kNow);
  if (!v.ok()) {
    Require((v.status().code() == absl::StatusCode::kInvalidArgument ||
             v.status().code() == absl::StatusCode::kPermissionDenied) &&
                !v.status().message().empty(),
            "proof refusal is not INVALID_ARGUMENT/PERMISSION_DENIED with a message");
    return;
  }
  Require(v->hello.agent_id() == kAgentId, "accepted a Hello of another agent");
  Require(v->nonce.size() == relay::kConnectNonceBytes, "accepted a short nonce");
  Require(absl::AbsDuration(absl::FromUnixMillis(v->signed_at_unix_ms) - kNow) <=
              relay::kConnectProofMaxSkew,
          "accepted a stale proof");
  Require(!relay::VerifyConnectProof(env, "spiffe://writeback.test/agent/a2",
                                     AgentResultKey().public_key(), kNow)
               .ok(),
          "accepted for another agent");
  Require(!relay::VerifyConnectProof(env, kAgentId, DispatchKey().public_key(), kNow).ok(),
          "accepted under another key");
}

void Run(const uint8_t* data, size_t size) {
  QuietProtobufLogs();
  Reader in(data, size);
  const uint8_t flags = in.Byte();
  const std::string rest = in.Rest();
  if ((flags & 2) != 0) {
    Path(rest);
    return;
  }
  writeback::v1::SignedEnvelope env;
  if ((flags & 1) == 0) {
    if (!env.ParseFromString(rest)) return;
  } else {
    env = envelope::Sign(writeback::v1::PAYLOAD_TYPE_CONNECT, rest, AgentResultKey());
  }
  Proof(env);
}

}  // namespace
}  // namespace wb::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wb::fuzz::Run(data, size);
  return 0;
}
