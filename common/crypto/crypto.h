// All cryptography of Writeback, in one place. Uses only EVP / X509 / PEM
// calls that BoringSSL also provides (Debian's gRPC links OpenSSL 3, other
// builds may link BoringSSL). Everything here is thread-safe: keys are
// immutable after construction.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace wb::crypto {

// Raw 32-byte SHA-256 digest.
std::string Sha256(absl::string_view data);
std::string HexEncode(absl::string_view bytes);
absl::StatusOr<std::string> HexDecode(absl::string_view hex);
std::string Base64Encode(absl::string_view bytes);                // padded
absl::StatusOr<std::string> Base64Decode(absl::string_view b64);  // accepts padded
// Cryptographically secure random bytes.
std::string RandomBytes(size_t n);
// Constant-time comparison.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// Key id of an Ed25519 public key: hex of the first 16 bytes of
// SHA-256(raw 32-byte key).
std::string KeyIdOf(absl::string_view raw_public_key);

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const;
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

class Ed25519PublicKey {
 public:
  static absl::StatusOr<Ed25519PublicKey> FromRaw(absl::string_view raw32);
  static absl::StatusOr<Ed25519PublicKey> FromPem(absl::string_view pem);
  static absl::StatusOr<Ed25519PublicKey> LoadFile(const std::string& path);

  const std::string& raw() const { return raw_; }
  const std::string& key_id() const { return key_id_; }
  std::string ToPem() const;
  // True iff `signature` is a valid Ed25519 signature of `message`.
  bool Verify(absl::string_view message, absl::string_view signature) const;

 private:
  std::string raw_;
  std::string key_id_;
};

class Ed25519PrivateKey {
 public:
  static Ed25519PrivateKey Generate();
  // The key whose 32-byte private seed is `seed32` (deterministic: the same
  // seed gives the same key; common/crypto/join_token.h).
  static absl::StatusOr<Ed25519PrivateKey> FromSeed(absl::string_view seed32);
  static absl::StatusOr<Ed25519PrivateKey> FromPem(absl::string_view pem);
  static absl::StatusOr<Ed25519PrivateKey> LoadFile(const std::string& path);

  // PKCS#8 PEM. Contains the secret: never log it.
  std::string ToPem() const;
  // Writes the PEM with mode 0600 (atomic).
  absl::Status SaveFile(const std::string& path) const;
  const Ed25519PublicKey& public_key() const { return public_; }
  const std::string& key_id() const { return public_.key_id(); }
  std::string Sign(absl::string_view message) const;

 private:
  std::shared_ptr<EVP_PKEY> pkey_;
  Ed25519PublicKey public_;
};

// ---- X.509 (TLS identities) ----

// A fresh ECDSA P-256 private key as PKCS#8 PEM.
std::string GenerateP256KeyPem();
absl::StatusOr<std::string> PublicKeyPemOf(absl::string_view private_key_pem);

struct CertSpec {
  std::string common_name;
  // The single URI SAN, e.g. "spiffe://writeback.test/agent/a1". Empty for a CA.
  std::string spiffe_id;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  absl::Duration lifetime = absl::Hours(24);
  bool is_ca = false;
  // Backdating of not_before, to absorb clock skew between hosts.
  absl::Duration backdate = absl::Minutes(5);
};

// A self-signed CA certificate for `ca_key_pem`.
absl::StatusOr<std::string> MakeSelfSignedCa(absl::string_view ca_key_pem, const CertSpec& spec,
                                             absl::Time now);
// A certificate for `subject_public_key_pem` signed by the CA.
absl::StatusOr<std::string> IssueCert(absl::string_view ca_cert_pem, absl::string_view ca_key_pem,
                                      absl::string_view subject_public_key_pem,
                                      const CertSpec& spec, absl::Time now);

struct CertInfo {
  std::vector<std::string> uris;
  std::vector<std::string> dns_names;
  std::string subject_cn;
  absl::Time not_before;
  absl::Time not_after;
  std::string serial_hex;
  std::string public_key_pem;
};
absl::StatusOr<CertInfo> ParseCert(absl::string_view cert_pem);

// Checks `cert_pem` chains to `ca_pem` and is valid at `now`.
absl::Status VerifyCertChain(absl::string_view cert_pem, absl::string_view ca_pem, absl::Time now);

}  // namespace wb::crypto
