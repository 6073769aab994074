// What relays and the control plane share about forwarded agent streams
// (docs/networks.md):
//   - the relay path, carried in gRPC metadata (kRelayPathHeader) on the
//     upstream stream a relay opens for a downstream agent;
//   - the connect proof: the agent signs (with its registered result key)
//     the exact Hello it sends, a time and a nonce, so the control plane
//     authenticates an agent it only sees through relays.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/crypto/crypto.h"
#include "writeback/v1/agent_service.pb.h"
#include "writeback/v1/envelope.pb.h"

namespace wb::relay {

inline constexpr char kRelayPathHeader[] = "x-writeback-relay-path";
// Relays between an agent and the control plane, at most.
inline constexpr size_t kMaxRelayHops = 8;
// A connect proof is accepted within this distance of the verifier's clock.
inline constexpr absl::Duration kConnectProofMaxSkew = absl::Minutes(5);
inline constexpr size_t kConnectNonceBytes = 16;

// Parses a header value: comma-separated agent SPIFFE IDs of `trust_domain`,
// nearest the agent first, no repeats, at most kMaxRelayHops. "" = no relay.
absl::StatusOr<std::vector<std::string>> ParseRelayPath(absl::string_view header,
                                                        absl::string_view trust_domain);
std::string FormatRelayPath(const std::vector<std::string>& path);

// The agent's proof for `hello` (PAYLOAD_TYPE_CONNECT over a
// ConnectStatement with a fresh random nonce).
writeback::v1::SignedEnvelope MakeConnectProof(const writeback::v1::Hello& hello,
                                               const crypto::Ed25519PrivateKey& result_key,
                                               absl::Time now);

struct VerifiedConnect {
  writeback::v1::Hello hello;  // parsed from the signed bytes
  std::string nonce;
  int64_t signed_at_unix_ms = 0;
};

// Checks a proof from `agent_id` against its registered result key: type,
// signature, statement fields (agent id, hello that parses with the same
// agent id, time within kConnectProofMaxSkew of `now`, nonce length). The
// caller keeps the nonces it accepted and refuses a repeat. Errors name the
// field: PERMISSION_DENIED for a bad signature or another agent,
// INVALID_ARGUMENT for a malformed or stale statement.
absl::StatusOr<VerifiedConnect> VerifyConnectProof(const writeback::v1::SignedEnvelope& proof,
                                                   absl::string_view agent_id,
                                                   const crypto::Ed25519PublicKey& result_key,
                                                   absl::Time now);

}  // namespace wb::relay
