#include "common/relay/relay.h"

#include "common/envelope/envelope.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::relay {
namespace {

using ::testing::HasSubstr;

constexpr char kTd[] = "writeback.test";
constexpr char kA[] = "spiffe://writeback.test/agent/a";
constexpr char kR1[] = "spiffe://writeback.test/agent/r1";
constexpr char kR2[] = "spiffe://writeback.test/agent/r2";

TEST(RelayPathTest, ParsesAndFormats) {
  auto p = ParseRelayPath(absl::StrCat(kR2, ",", kR1), kTd);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(*p, ::testing::ElementsAre(kR2, kR1));
  EXPECT_EQ(FormatRelayPath(*p), absl::StrCat(kR2, ",", kR1));
  EXPECT_TRUE(ParseRelayPath("", kTd)->empty());
}

TEST(RelayPathTest, RefusesLoopsStrangersAndLongPaths) {
  EXPECT_THAT(std::string(ParseRelayPath(absl::StrCat(kR1, ",", kR1), kTd).status().message()),
              HasSubstr("appears twice"));
  EXPECT_THAT(std::string(ParseRelayPath("spiffe://other.test/agent/r1", kTd).status().message()),
              HasSubstr("is not an agent of writeback.test"));
  EXPECT_THAT(
      std::string(ParseRelayPath("spiffe://writeback.test/operator/admin", kTd).status().message()),
      HasSubstr("is not an agent"));
  EXPECT_FALSE(ParseRelayPath("not-a-spiffe-id", kTd).ok());
  std::vector<std::string> many;
  for (size_t i = 0; i <= kMaxRelayHops; ++i) {
    many.push_back(absl::StrCat("spiffe://writeback.test/agent/r", i));
  }
  EXPECT_THAT(std::string(ParseRelayPath(FormatRelayPath(many), kTd).status().message()),
              HasSubstr("more than"));
}

class ConnectProofTest : public ::testing::Test {
 protected:
  writeback::v1::Hello MakeHello(const std::string& id) {
    writeback::v1::Hello h;
    h.set_agent_id(id);
    h.set_version("1.0");
    h.set_result_public_key(key_.public_key().raw());
    return h;
  }
  crypto::Ed25519PrivateKey key_ = crypto::Ed25519PrivateKey::Generate();
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
};

TEST_F(ConnectProofTest, ValidProofGivesTheSignedHello) {
  auto proof = MakeConnectProof(MakeHello(kA), key_, now_);
  auto v = VerifyConnectProof(proof, kA, key_.public_key(), now_ + absl::Seconds(3));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->hello.agent_id(), kA);
  EXPECT_EQ(v->nonce.size(), kConnectNonceBytes);
  // Two proofs never share a nonce.
  auto again =
      VerifyConnectProof(MakeConnectProof(MakeHello(kA), key_, now_), kA, key_.public_key(), now_);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->nonce, v->nonce);
}

// A newer agent's Hello may carry fields this version does not know: the
// proof still verifies (they are signed, and ignored here), so Hello can
// grow with agents upgraded before their relays and control planes.
TEST_F(ConnectProofTest, UnknownHelloFieldsOfANewerAgentAreIgnored) {
  std::string bytes = MakeHello(kA).SerializeAsString();
  bytes += std::string("\x98\x06\x01", 3);  // field 99, varint 1: not in this Hello
  writeback::v1::Hello newer;
  ASSERT_TRUE(newer.ParseFromString(bytes));
  newer.add_features("statement_digest");
  auto v = VerifyConnectProof(MakeConnectProof(newer, key_, now_), kA, key_.public_key(), now_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->hello.agent_id(), kA);
  EXPECT_EQ(v->hello.features_size(), 1);
}

TEST_F(ConnectProofTest, RefusesEveryAlteration) {
  const auto proof = MakeConnectProof(MakeHello(kA), key_, now_);
  // Missing.
  EXPECT_THAT(std::string(VerifyConnectProof({}, kA, key_.public_key(), now_).status().message()),
              HasSubstr("required for a stream forwarded by a relay"));
  // Another key (a relay signing for the agent).
  auto other = crypto::Ed25519PrivateKey::Generate();
  EXPECT_THAT(std::string(VerifyConnectProof(MakeConnectProof(MakeHello(kA), other, now_), kA,
                                             key_.public_key(), now_)
                              .status()
                              .message()),
              HasSubstr("not signed by the result key registered"));
  // Every byte of the payload flipped: never accepted.
  for (size_t i = 0; i < proof.payload().size(); ++i) {
    auto bad = proof;
    (*bad.mutable_payload())[i] ^= 0x01;
    EXPECT_FALSE(VerifyConnectProof(bad, kA, key_.public_key(), now_).ok()) << "byte " << i;
  }
  // Wrong type.
  auto typed = proof;
  typed.set_payload_type(writeback::v1::PAYLOAD_TYPE_RESULT);
  EXPECT_FALSE(VerifyConnectProof(typed, kA, key_.public_key(), now_).ok());
  // Proof of another agent presented for this one.
  EXPECT_THAT(std::string(VerifyConnectProof(MakeConnectProof(MakeHello(kR1), key_, now_), kA,
                                             key_.public_key(), now_)
                              .status()
                              .message()),
              HasSubstr("connect_proof.agent_id"));
  // Stale and future.
  EXPECT_THAT(std::string(VerifyConnectProof(proof, kA, key_.public_key(), now_ + absl::Minutes(6))
                              .status()
                              .message()),
              HasSubstr("signed_at_unix_ms"));
  EXPECT_FALSE(VerifyConnectProof(proof, kA, key_.public_key(), now_ - absl::Minutes(6)).ok());
}

TEST_F(ConnectProofTest, HelloInsideMustNameTheSameAgent) {
  writeback::v1::ConnectStatement st;
  st.set_agent_id(kA);
  st.set_hello(MakeHello(kR2).SerializeAsString());
  st.set_signed_at_unix_ms(absl::ToUnixMillis(now_));
  st.set_nonce(std::string(kConnectNonceBytes, 'n'));
  auto env = envelope::Sign(writeback::v1::PAYLOAD_TYPE_CONNECT, st.SerializeAsString(), key_);
  EXPECT_THAT(std::string(VerifyConnectProof(env, kA, key_.public_key(), now_).status().message()),
              HasSubstr("connect_proof.hello.agent_id"));
}

}  // namespace
}  // namespace wb::relay
