#include "common/envelope/envelope.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/unknown_field_set.h"

namespace wb::envelope {

using writeback::v1::PayloadType;
using writeback::v1::SignedEnvelope;

const crypto::Ed25519PublicKey* Keyring::Find(absl::string_view key_id) const {
  auto it = keys_.find(key_id);
  return it == keys_.end() ? nullptr : &it->second;
}

std::string SigningInput(PayloadType type, absl::string_view payload) {
  return absl::StrCat("writeback.v1/", writeback::v1::PayloadType_Name(type), "\n", payload);
}

SignedEnvelope Sign(PayloadType type, std::string payload, const crypto::Ed25519PrivateKey& key) {
  SignedEnvelope env;
  env.set_payload_type(type);
  env.set_key_id(key.key_id());
  env.set_signature(key.Sign(SigningInput(type, payload)));
  env.set_payload(std::move(payload));
  return env;
}

absl::Status VerifyWithKey(const SignedEnvelope& env, PayloadType expected,
                           const crypto::Ed25519PublicKey& key) {
  if (expected == writeback::v1::PAYLOAD_TYPE_UNSPECIFIED || env.payload_type() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("envelope: payload_type is ",
                                                   PayloadType_Name(env.payload_type()),
                                                   ", expected ", PayloadType_Name(expected)));
  }
  if (env.payload().empty()) return absl::InvalidArgumentError("envelope: payload is empty");
  if (env.key_id() != key.key_id()) {
    return absl::NotFoundError(absl::StrCat("envelope: key_id ", env.key_id(), " is not trusted"));
  }
  if (!key.Verify(SigningInput(expected, env.payload()), env.signature())) {
    return absl::UnauthenticatedError("envelope: signature does not verify");
  }
  return absl::OkStatus();
}

absl::Status Verify(const SignedEnvelope& env, PayloadType expected, const Keyring& keyring) {
  if (expected == writeback::v1::PAYLOAD_TYPE_UNSPECIFIED || env.payload_type() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("envelope: payload_type is ",
                                                   PayloadType_Name(env.payload_type()),
                                                   ", expected ", PayloadType_Name(expected)));
  }
  const crypto::Ed25519PublicKey* key = keyring.Find(env.key_id());
  if (key == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("envelope: key_id '", env.key_id(), "' is not trusted"));
  }
  return VerifyWithKey(env, expected, *key);
}

bool HasUnknownFields(const google::protobuf::Message& msg) {
  const google::protobuf::Reflection* r = msg.GetReflection();
  if (!r->GetUnknownFields(msg).empty()) return true;
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  r->ListFields(msg, &fields);
  for (const auto* f : fields) {
    if (f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(msg, f); ++i) {
        if (HasUnknownFields(r->GetRepeatedMessage(msg, f, i))) return true;
      }
    } else if (HasUnknownFields(r->GetMessage(msg, f))) {
      return true;
    }
  }
  return false;
}

}  // namespace wb::envelope
