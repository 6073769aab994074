#include "common/crypto/crypto.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"

namespace wb::crypto {
namespace {

std::string OpensslError(absl::string_view what) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return std::string(what);
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return absl::StrCat(what, ": ", buf);
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

BioPtr MemBio(absl::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string BioToString(BIO* bio) {
  const char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<PkeyPtr> ReadPrivatePem(absl::string_view pem) {
  BioPtr bio = MemBio(pem);
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (k == nullptr) return absl::InvalidArgumentError(OpensslError("not a PEM private key"));
  return PkeyPtr(k);
}

absl::StatusOr<PkeyPtr> ReadPublicPem(absl::string_view pem) {
  BioPtr bio = MemBio(pem);
  EVP_PKEY* k = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (k == nullptr) return absl::InvalidArgumentError(OpensslError("not a PEM public key"));
  return PkeyPtr(k);
}

absl::StatusOr<X509Ptr> ReadCertPem(absl::string_view pem) {
  BioPtr bio = MemBio(pem);
  X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (x == nullptr) return absl::InvalidArgumentError(OpensslError("not a PEM certificate"));
  return X509Ptr(x);
}

std::string PrivateToPem(EVP_PKEY* k) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PKCS8PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
  return BioToString(bio.get());
}

std::string PublicToPem(EVP_PKEY* k) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), k);
  return BioToString(bio.get());
}

absl::Time Asn1ToTime(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

absl::Status AddExt(X509* x, int nid, void* value, int critical) {
  if (X509_add1_ext_i2d(x, nid, value, critical, X509V3_ADD_DEFAULT) != 1) {
    return absl::InternalError(OpensslError(absl::StrCat("add extension ", nid)));
  }
  return absl::OkStatus();
}

absl::Status AddGeneralName(GENERAL_NAMES* gens, int type, absl::string_view value) {
  GENERAL_NAME* gn = GENERAL_NAME_new();
  if (type == GEN_IPADD) {
    unsigned char buf[16];
    int len = 0;
    std::string v(value);
    if (inet_pton(AF_INET, v.c_str(), buf) == 1) {
      len = 4;
    } else if (inet_pton(AF_INET6, v.c_str(), buf) == 1) {
      len = 16;
    } else {
      GENERAL_NAME_free(gn);
      return absl::InvalidArgumentError(absl::StrCat("ip_addresses: not an IP address: ", value));
    }
    ASN1_OCTET_STRING* os = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(os, buf, len);
    GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
  } else {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    ASN1_STRING_set(s, value.data(), static_cast<int>(value.size()));
    GENERAL_NAME_set0_value(gn, type, s);
  }
  sk_GENERAL_NAME_push(gens, gn);
  return absl::OkStatus();
}

absl::StatusOr<std::string> BuildCert(X509_NAME* issuer, EVP_PKEY* signer, EVP_PKEY* subject_key,
                                      const CertSpec& spec, absl::Time now) {
  X509Ptr x(X509_new());
  X509_set_version(x.get(), 2);
  std::string serial = RandomBytes(16);
  serial[0] = static_cast<char>(serial[0] & 0x7f);
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(serial.data()), 16, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x.get()));
  BN_free(bn);
  ASN1_TIME_set(X509_getm_notBefore(x.get()), absl::ToTimeT(now - spec.backdate));
  ASN1_TIME_set(X509_getm_notAfter(x.get()), absl::ToTimeT(now + spec.lifetime));
  X509_set_pubkey(x.get(), subject_key);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Writeback"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(x.get(), issuer != nullptr ? issuer : name);

  BASIC_CONSTRAINTS* bc = BASIC_CONSTRAINTS_new();
  bc->ca = spec.is_ca ? 0xff : 0;
  absl::Status s = AddExt(x.get(), NID_basic_constraints, bc, 1);
  BASIC_CONSTRAINTS_free(bc);
  if (!s.ok()) return s;

  ASN1_BIT_STRING* ku = ASN1_BIT_STRING_new();
  if (spec.is_ca) {
    ASN1_BIT_STRING_set_bit(ku, 5, 1);  // keyCertSign
    ASN1_BIT_STRING_set_bit(ku, 6, 1);  // cRLSign
  } else {
    ASN1_BIT_STRING_set_bit(ku, 0, 1);  // digitalSignature
    ASN1_BIT_STRING_set_bit(ku, 4, 1);  // keyAgreement
  }
  s = AddExt(x.get(), NID_key_usage, ku, 1);
  ASN1_BIT_STRING_free(ku);
  if (!s.ok()) return s;

  if (!spec.is_ca) {
    EXTENDED_KEY_USAGE* eku = sk_ASN1_OBJECT_new_null();
    sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth));
    sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth));
    s = AddExt(x.get(), NID_ext_key_usage, eku, 0);
    sk_ASN1_OBJECT_free(eku);
    if (!s.ok()) return s;

    GENERAL_NAMES* gens = sk_GENERAL_NAME_new_null();
    if (!spec.spiffe_id.empty()) s.Update(AddGeneralName(gens, GEN_URI, spec.spiffe_id));
    for (const auto& d : spec.dns_names) s.Update(AddGeneralName(gens, GEN_DNS, d));
    for (const auto& ip : spec.ip_addresses) s.Update(AddGeneralName(gens, GEN_IPADD, ip));
    if (s.ok() && sk_GENERAL_NAME_num(gens) > 0) s = AddExt(x.get(), NID_subject_alt_name, gens, 0);
    GENERAL_NAMES_free(gens);
    if (!s.ok()) return s;
  }
  if (X509_sign(x.get(), signer, EVP_sha256()) == 0) {
    return absl::InternalError(OpensslError("X509_sign"));
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), x.get());
  return BioToString(bio.get());
}

}  // namespace

void PkeyDeleter::operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }

std::string Sha256(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string HexEncode(absl::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

absl::StatusOr<std::string> HexDecode(absl::string_view hex) {
  if (hex.size() % 2 != 0) return absl::InvalidArgumentError("hex: odd length");
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nib(hex[i]), lo = nib(hex[i + 1]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("hex: invalid character");
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::string Base64Encode(absl::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

absl::StatusOr<std::string> Base64Decode(absl::string_view b64) {
  if (b64.size() % 4 != 0) return absl::InvalidArgumentError("base64: length not a multiple of 4");
  std::string out(3 * b64.size() / 4 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0) return absl::InvalidArgumentError("base64: invalid encoding");
  size_t pad = 0;
  if (!b64.empty() && b64.back() == '=') ++pad;
  if (b64.size() > 1 && b64[b64.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    std::abort();  // no entropy: nothing safe can be done
  }
  return out;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string KeyIdOf(absl::string_view raw_public_key) {
  return HexEncode(Sha256(raw_public_key).substr(0, 16));
}

// ---- Ed25519 ----

absl::StatusOr<Ed25519PublicKey> Ed25519PublicKey::FromRaw(absl::string_view raw32) {
  if (raw32.size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("Ed25519 public key must be 32 bytes, got ", raw32.size()));
  }
  Ed25519PublicKey k;
  k.raw_ = std::string(raw32);
  k.key_id_ = KeyIdOf(raw32);
  return k;
}

absl::StatusOr<Ed25519PublicKey> Ed25519PublicKey::FromPem(absl::string_view pem) {
  auto k = ReadPublicPem(pem);
  if (!k.ok()) return k.status();
  if (EVP_PKEY_id(k->get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("public key is not Ed25519");
  }
  unsigned char raw[32];
  size_t len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(k->get(), raw, &len) != 1 || len != 32) {
    return absl::InvalidArgumentError(OpensslError("Ed25519 raw public key"));
  }
  return FromRaw(absl::string_view(reinterpret_cast<char*>(raw), len));
}

absl::StatusOr<Ed25519PublicKey> Ed25519PublicKey::LoadFile(const std::string& path) {
  auto pem = fs::ReadFile(path, 1 << 20);
  if (!pem.ok()) return pem.status();
  auto k = FromPem(*pem);
  if (!k.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", k.status().message()));
  return k;
}

std::string Ed25519PublicKey::ToPem() const {
  PkeyPtr k(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw_.data()), raw_.size()));
  return PublicToPem(k.get());
}

bool Ed25519PublicKey::Verify(absl::string_view message, absl::string_view signature) const {
  if (raw_.size() != 32 || signature.size() != 64) return false;
  PkeyPtr k(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw_.data()), raw_.size()));
  if (!k) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, k.get()) == 1 &&
            EVP_DigestVerify(
                ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

namespace {
absl::StatusOr<Ed25519PublicKey> PublicOf(EVP_PKEY* k) {
  unsigned char raw[32];
  size_t len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(k, raw, &len) != 1 || len != 32) {
    return absl::InternalError(OpensslError("Ed25519 raw public key"));
  }
  return Ed25519PublicKey::FromRaw(absl::string_view(reinterpret_cast<char*>(raw), len));
}
}  // namespace

Ed25519PrivateKey Ed25519PrivateKey::Generate() {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  EVP_PKEY* k = nullptr;
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &k) != 1) {
    std::abort();
  }
  EVP_PKEY_CTX_free(ctx);
  Ed25519PrivateKey out;
  out.pkey_ = std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free);
  out.public_ = *PublicOf(k);
  return out;
}

absl::StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::FromSeed(absl::string_view seed32) {
  if (seed32.size() != 32) return absl::InvalidArgumentError("Ed25519 seed: must be 32 bytes");
  EVP_PKEY* k = EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const uint8_t*>(seed32.data()), seed32.size());
  if (k == nullptr) return absl::InternalError("Ed25519 seed: key not created");
  Ed25519PrivateKey out;
  out.pkey_ = std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free);
  auto pub = PublicOf(k);
  if (!pub.ok()) return pub.status();
  out.public_ = *pub;
  return out;
}

absl::StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::FromPem(absl::string_view pem) {
  auto k = ReadPrivatePem(pem);
  if (!k.ok()) return k.status();
  if (EVP_PKEY_id(k->get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("private key is not Ed25519");
  }
  Ed25519PrivateKey out;
  auto pub = PublicOf(k->get());
  if (!pub.ok()) return pub.status();
  out.public_ = *pub;
  out.pkey_ = std::shared_ptr<EVP_PKEY>(k->release(), EVP_PKEY_free);
  return out;
}

absl::StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::LoadFile(const std::string& path) {
  auto pem = fs::ReadFile(path, 1 << 20);
  if (!pem.ok()) return pem.status();
  auto k = FromPem(*pem);
  if (!k.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", k.status().message()));
  return k;
}

std::string Ed25519PrivateKey::ToPem() const { return PrivateToPem(pkey_.get()); }

absl::Status Ed25519PrivateKey::SaveFile(const std::string& path) const {
  return fs::WriteFileAtomic(path, ToPem(), {.mode = 0600});
}

std::string Ed25519PrivateKey::Sign(absl::string_view message) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char sig[64];
  size_t len = sizeof sig;
  if (EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, pkey_.get()) != 1 ||
      EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    std::abort();  // signing with a valid key cannot fail
  }
  EVP_MD_CTX_free(ctx);
  return std::string(reinterpret_cast<char*>(sig), len);
}

// ---- X.509 ----

std::string GenerateP256KeyPem() {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr);
  EVP_PKEY* k = nullptr;
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx) != 1 ||
      EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1) != 1 ||
      EVP_PKEY_keygen(ctx, &k) != 1) {
    std::abort();
  }
  EVP_PKEY_CTX_free(ctx);
  PkeyPtr key(k);
  return PrivateToPem(key.get());
}

absl::StatusOr<std::string> PublicKeyPemOf(absl::string_view private_key_pem) {
  auto k = ReadPrivatePem(private_key_pem);
  if (!k.ok()) return k.status();
  return PublicToPem(k->get());
}

absl::StatusOr<std::string> MakeSelfSignedCa(absl::string_view ca_key_pem, const CertSpec& spec,
                                             absl::Time now) {
  auto k = ReadPrivatePem(ca_key_pem);
  if (!k.ok()) return k.status();
  CertSpec ca = spec;
  ca.is_ca = true;
  return BuildCert(nullptr, k->get(), k->get(), ca, now);
}

absl::StatusOr<std::string> IssueCert(absl::string_view ca_cert_pem, absl::string_view ca_key_pem,
                                      absl::string_view subject_public_key_pem,
                                      const CertSpec& spec, absl::Time now) {
  auto ca = ReadCertPem(ca_cert_pem);
  if (!ca.ok()) return ca.status();
  auto ca_key = ReadPrivatePem(ca_key_pem);
  if (!ca_key.ok()) return ca_key.status();
  auto sub = ReadPublicPem(subject_public_key_pem);
  if (!sub.ok()) return sub.status();
  if (spec.is_ca) return absl::InvalidArgumentError("IssueCert: subordinate CAs not supported");
  return BuildCert(X509_get_subject_name(ca->get()), ca_key->get(), sub->get(), spec, now);
}

absl::StatusOr<CertInfo> ParseCert(absl::string_view cert_pem) {
  auto x = ReadCertPem(cert_pem);
  if (!x.ok()) return x.status();
  CertInfo info;
  auto* gens = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(x->get(), NID_subject_alt_name, nullptr, nullptr));
  if (gens != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(gens, i);
      int type = 0;
      const auto* v = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(gn, &type));
      std::string s(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
                    static_cast<size_t>(ASN1_STRING_length(v)));
      if (type == GEN_URI) info.uris.push_back(s);
      if (type == GEN_DNS) info.dns_names.push_back(s);
    }
    GENERAL_NAMES_free(gens);
  }
  X509_NAME* name = X509_get_subject_name(x->get());
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx >= 0) {
    const ASN1_STRING* d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    info.subject_cn.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(d)),
                           static_cast<size_t>(ASN1_STRING_length(d)));
  }
  info.not_before = Asn1ToTime(X509_get0_notBefore(x->get()));
  info.not_after = Asn1ToTime(X509_get0_notAfter(x->get()));
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x->get()), nullptr);
  char* hex = BN_bn2hex(bn);
  info.serial_hex = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  EVP_PKEY* pub = X509_get0_pubkey(x->get());
  if (pub != nullptr) info.public_key_pem = PublicToPem(pub);
  return info;
}

absl::Status VerifyCertChain(absl::string_view cert_pem, absl::string_view ca_pem, absl::Time now) {
  auto x = ReadCertPem(cert_pem);
  if (!x.ok()) return x.status();
  auto ca = ReadCertPem(ca_pem);
  if (!ca.ok()) return ca.status();
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca->get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, x->get(), nullptr);
  X509_STORE_CTX_set_time(ctx, 0, absl::ToTimeT(now));
  int rc = X509_verify_cert(ctx);
  std::string err = rc == 1 ? "" : X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  ERR_clear_error();
  if (rc != 1) return absl::PermissionDeniedError(absl::StrCat("certificate: ", err));
  return absl::OkStatus();
}

}  // namespace wb::crypto
