// Join tokens that never leave the agent host (docs/security.md, enrolment;
// docs/networks.md: enrolment through relays).
//
// A token ("wbj_" + 64 hex) is the seed of a one-time Ed25519 key pair. The
// control plane keeps SHA-256(token) (to find it) and the public key; the
// agent sends the digest and a signature, by the token's key, over the
// request it binds (its CSR and its result public key). Whoever sees the
// request on its way (a relay) learns neither the token nor a way to bind
// it to another CSR or result key.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto/crypto.h"

namespace wb::crypto {

// The token's key pair: seed = SHA-256("writeback.v1/join-token\n" + token).
absl::StatusOr<Ed25519PrivateKey> JoinTokenKey(absl::string_view token);

// What an enrolment signs: a domain-separated digest of the CSR and the
// result public key.
std::string EnrollmentBinding(absl::string_view csr_pem, absl::string_view result_public_key);

}  // namespace wb::crypto
