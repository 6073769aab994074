#include "common/relay/relay.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/envelope/envelope.h"
#include "common/tls/tls.h"

namespace wb::relay {

using writeback::v1::ConnectStatement;
using writeback::v1::SignedEnvelope;

absl::StatusOr<std::vector<std::string>> ParseRelayPath(absl::string_view header,
                                                        absl::string_view trust_domain) {
  std::vector<std::string> path;
  if (header.empty()) return path;
  absl::flat_hash_set<std::string> seen;
  for (absl::string_view part : absl::StrSplit(header, ',')) {
    if (path.size() >= kMaxRelayHops) {
      return absl::InvalidArgumentError(
          absl::StrCat(kRelayPathHeader, ": more than ", kMaxRelayHops, " relays"));
    }
    auto id = tls::ParseSpiffeId(part);
    if (!id.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(kRelayPathHeader, "[", path.size(), "]: ", id.status().message()));
    }
    if (id->cls != tls::IdentityClass::kAgent || id->trust_domain != trust_domain) {
      return absl::InvalidArgumentError(absl::StrCat(kRelayPathHeader, "[", path.size(), "]: '",
                                                     part, "' is not an agent of ", trust_domain));
    }
    if (!seen.insert(std::string(part)).second) {
      return absl::InvalidArgumentError(absl::StrCat(kRelayPathHeader, "[", path.size(), "]: '",
                                                     part, "' appears twice (a relay loop)"));
    }
    path.emplace_back(part);
  }
  return path;
}

std::string FormatRelayPath(const std::vector<std::string>& path) {
  return absl::StrJoin(path, ",");
}

SignedEnvelope MakeConnectProof(const writeback::v1::Hello& hello,
                                const crypto::Ed25519PrivateKey& result_key, absl::Time now) {
  ConnectStatement st;
  st.set_agent_id(hello.agent_id());
  st.set_hello(hello.SerializeAsString());
  st.set_signed_at_unix_ms(absl::ToUnixMillis(now));
  st.set_nonce(crypto::RandomBytes(kConnectNonceBytes));
  return envelope::Sign(writeback::v1::PAYLOAD_TYPE_CONNECT, st.SerializeAsString(), result_key);
}

absl::StatusOr<VerifiedConnect> VerifyConnectProof(const SignedEnvelope& proof,
                                                   absl::string_view agent_id,
                                                   const crypto::Ed25519PublicKey& result_key,
                                                   absl::Time now) {
  if (proof.payload().empty()) {
    return absl::PermissionDeniedError(
        "connect_proof: required for a stream forwarded by a relay (agent too old?)");
  }
  if (absl::Status s =
          envelope::VerifyWithKey(proof, writeback::v1::PAYLOAD_TYPE_CONNECT, result_key);
      !s.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("connect_proof: not signed by the result key registered for ", agent_id, " (",
                     s.message(), ")"));
  }
  ConnectStatement st;
  if (!st.ParseFromString(proof.payload()) || envelope::HasUnknownFields(st)) {
    return absl::InvalidArgumentError("connect_proof.payload: not a ConnectStatement");
  }
  if (st.agent_id() != agent_id) {
    return absl::PermissionDeniedError(
        absl::StrCat("connect_proof.agent_id: '", st.agent_id(), "' is not '", agent_id, "'"));
  }
  VerifiedConnect out;
  // Fields of a newer agent's Hello that this version does not know are
  // ignored, not refused: the signature covers the exact bytes, and only
  // the fields known here are acted on, so a Hello can grow (Hello.features)
  // with agents upgraded before their relays and control planes.
  if (!out.hello.ParseFromString(st.hello())) {
    return absl::InvalidArgumentError("connect_proof.hello: not a Hello");
  }
  if (out.hello.agent_id() != agent_id) {
    return absl::PermissionDeniedError(absl::StrCat(
        "connect_proof.hello.agent_id: '", out.hello.agent_id(), "' is not '", agent_id, "'"));
  }
  const absl::Time signed_at = absl::FromUnixMillis(st.signed_at_unix_ms());
  if (absl::AbsDuration(now - signed_at) > kConnectProofMaxSkew) {
    return absl::InvalidArgumentError(absl::StrCat(
        "connect_proof.signed_at_unix_ms: ", absl::FormatTime(signed_at), " is more than ",
        absl::FormatDuration(kConnectProofMaxSkew), " from the control plane's clock"));
  }
  if (st.nonce().size() != kConnectNonceBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("connect_proof.nonce: must be ", kConnectNonceBytes, " bytes"));
  }
  out.nonce = st.nonce();
  out.signed_at_unix_ms = st.signed_at_unix_ms();
  return out;
}

}  // namespace wb::relay
