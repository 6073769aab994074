#include "common/crypto/crypto.h"

#include <sys/stat.h>

#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"

namespace wb::crypto {
namespace {

TEST(Crypto, Sha256KnownVector) {
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Crypto, HexAndBase64RoundTrip) {
  const std::string bytes = RandomBytes(37);
  EXPECT_EQ(*HexDecode(HexEncode(bytes)), bytes);
  EXPECT_EQ(*Base64Decode(Base64Encode(bytes)), bytes);
  EXPECT_EQ(Base64Encode("ab"), "YWI=");
  EXPECT_EQ(*Base64Decode("YWI="), "ab");
  EXPECT_FALSE(HexDecode("abc").ok());
  EXPECT_FALSE(HexDecode("zz").ok());
  EXPECT_FALSE(Base64Decode("YWI").ok());
}

TEST(Crypto, Ed25519SignVerify) {
  auto k = Ed25519PrivateKey::Generate();
  std::string sig = k.Sign("hello");
  EXPECT_EQ(sig.size(), 64u);
  EXPECT_TRUE(k.public_key().Verify("hello", sig));
  EXPECT_FALSE(k.public_key().Verify("hellp", sig));
  sig[3] ^= 1;
  EXPECT_FALSE(k.public_key().Verify("hello", sig));
  auto other = Ed25519PrivateKey::Generate();
  EXPECT_FALSE(other.public_key().Verify("hello", k.Sign("hello")));
  EXPECT_EQ(k.key_id().size(), 32u);
  EXPECT_NE(k.key_id(), other.key_id());
}

TEST(Crypto, Ed25519PemRoundTripAndFileMode) {
  testing::TempDir dir;
  auto k = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(k.SaveFile(dir.Sub("k.pem")).ok());
  struct stat st;
  ASSERT_EQ(stat(dir.Sub("k.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = Ed25519PrivateKey::LoadFile(dir.Sub("k.pem"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->key_id(), k.key_id());
  auto pub = Ed25519PublicKey::FromPem(k.public_key().ToPem());
  ASSERT_TRUE(pub.ok());
  EXPECT_TRUE(pub->Verify("m", loaded->Sign("m")));
  EXPECT_FALSE(Ed25519PublicKey::FromRaw("short").ok());
  EXPECT_FALSE(Ed25519PrivateKey::FromPem("garbage").ok());
  // A P-256 key is not an Ed25519 key.
  EXPECT_FALSE(Ed25519PrivateKey::FromPem(GenerateP256KeyPem()).ok());
}

TEST(Crypto, CertificatesCarrySpiffeIdAndChain) {
  const absl::Time now = absl::Now();
  std::string ca_key = GenerateP256KeyPem();
  CertSpec ca_spec;
  ca_spec.common_name = "test ca";
  auto ca = MakeSelfSignedCa(ca_key, ca_spec, now);
  ASSERT_TRUE(ca.ok()) << ca.status();
  std::string leaf_key = GenerateP256KeyPem();
  CertSpec spec;
  spec.common_name = "a1";
  spec.spiffe_id = "spiffe://writeback.test/agent/a1";
  spec.lifetime = absl::Hours(1);
  auto cert = IssueCert(*ca, ca_key, *PublicKeyPemOf(leaf_key), spec, now);
  ASSERT_TRUE(cert.ok()) << cert.status();
  auto info = ParseCert(*cert);
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->uris.size(), 1u);
  EXPECT_EQ(info->uris[0], spec.spiffe_id);
  EXPECT_LT(info->not_after, now + absl::Hours(1) + absl::Seconds(2));
  EXPECT_TRUE(VerifyCertChain(*cert, *ca, now).ok());
  EXPECT_FALSE(VerifyCertChain(*cert, *ca, now + absl::Hours(2)).ok());  // expired
  std::string other_ca_key = GenerateP256KeyPem();
  auto other_ca = MakeSelfSignedCa(other_ca_key, ca_spec, now);
  EXPECT_FALSE(VerifyCertChain(*cert, *other_ca, now).ok());
}

}  // namespace
}  // namespace wb::crypto
