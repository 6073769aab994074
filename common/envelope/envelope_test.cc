#include "common/envelope/envelope.h"

#include "gtest/gtest.h"

namespace wb::envelope {
namespace {

using writeback::v1::PAYLOAD_TYPE_RESULT;
using writeback::v1::PAYLOAD_TYPE_TASK;

TEST(Envelope, SignVerify) {
  auto k = crypto::Ed25519PrivateKey::Generate();
  Keyring ring;
  ring.Add(k.public_key());
  auto env = Sign(PAYLOAD_TYPE_TASK, "payload-bytes", k);
  EXPECT_EQ(env.key_id(), k.key_id());
  EXPECT_TRUE(Verify(env, PAYLOAD_TYPE_TASK, ring).ok());
}

TEST(Envelope, RefusesAlteredPayload) {
  auto k = crypto::Ed25519PrivateKey::Generate();
  Keyring ring;
  ring.Add(k.public_key());
  auto env = Sign(PAYLOAD_TYPE_TASK, "payload-bytes", k);
  env.mutable_payload()->back() ^= 1;
  EXPECT_EQ(Verify(env, PAYLOAD_TYPE_TASK, ring).code(), absl::StatusCode::kUnauthenticated);
}

TEST(Envelope, RefusesUnknownKey) {
  auto k = crypto::Ed25519PrivateKey::Generate();
  Keyring ring;
  ring.Add(crypto::Ed25519PrivateKey::Generate().public_key());
  auto env = Sign(PAYLOAD_TYPE_TASK, "p", k);
  EXPECT_EQ(Verify(env, PAYLOAD_TYPE_TASK, ring).code(), absl::StatusCode::kNotFound);
}

TEST(Envelope, TypeIsBoundIntoSignature) {
  auto k = crypto::Ed25519PrivateKey::Generate();
  Keyring ring;
  ring.Add(k.public_key());
  auto env = Sign(PAYLOAD_TYPE_RESULT, "p", k);
  // Expecting a task: refused even though the signature is valid for a result.
  EXPECT_EQ(Verify(env, PAYLOAD_TYPE_TASK, ring).code(), absl::StatusCode::kInvalidArgument);
  // Relabelled as a task: the signature no longer verifies.
  env.set_payload_type(PAYLOAD_TYPE_TASK);
  EXPECT_EQ(Verify(env, PAYLOAD_TYPE_TASK, ring).code(), absl::StatusCode::kUnauthenticated);
}

TEST(Envelope, KeyIdSwapDoesNotHelp) {
  auto k = crypto::Ed25519PrivateKey::Generate();
  auto trusted = crypto::Ed25519PrivateKey::Generate();
  Keyring ring;
  ring.Add(trusted.public_key());
  auto env = Sign(PAYLOAD_TYPE_TASK, "p", k);
  env.set_key_id(trusted.key_id());
  EXPECT_EQ(Verify(env, PAYLOAD_TYPE_TASK, ring).code(), absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace wb::envelope
