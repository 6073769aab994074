// Signing and verifying SignedEnvelopes (proto/writeback/v1/envelope.proto).
//
// The signature covers "writeback.v1/<payload type>\n" followed by the exact
// payload bytes, so bytes signed as one type (a result) can never pass as
// another (a task). Verify before parsing; never re-serialize a payload.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/crypto/crypto.h"
#include "google/protobuf/message.h"
#include "writeback/v1/envelope.pb.h"

namespace wb::envelope {

// Public keys by key id. Immutable after set-up; safe to share for reading.
class Keyring {
 public:
  void Add(const crypto::Ed25519PublicKey& key) { keys_[key.key_id()] = key; }
  const crypto::Ed25519PublicKey* Find(absl::string_view key_id) const;
  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }

 private:
  std::map<std::string, crypto::Ed25519PublicKey, std::less<>> keys_;
};

// The bytes actually signed for `payload` of `type`.
std::string SigningInput(writeback::v1::PayloadType type, absl::string_view payload);

writeback::v1::SignedEnvelope Sign(writeback::v1::PayloadType type, std::string payload,
                                   const crypto::Ed25519PrivateKey& key);

// Checks the envelope's type, key and signature. Error codes (stable; the
// agent maps them to reject reasons):
//   INVALID_ARGUMENT   wrong or missing payload type, empty payload
//   NOT_FOUND          key id not in the keyring
//   UNAUTHENTICATED    signature does not verify
absl::Status Verify(const writeback::v1::SignedEnvelope& env, writeback::v1::PayloadType expected,
                    const Keyring& keyring);
// Same, against a single known key.
absl::Status VerifyWithKey(const writeback::v1::SignedEnvelope& env,
                           writeback::v1::PayloadType expected,
                           const crypto::Ed25519PublicKey& key);

// True if `msg` or any message inside it carries unknown fields. Signed
// payloads with unknown fields are refused: a field this build cannot read
// must not ride along under a valid signature.
bool HasUnknownFields(const google::protobuf::Message& msg);

}  // namespace wb::envelope
