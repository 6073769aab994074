#include "common/crypto/csr.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace wb::crypto {
namespace {

constexpr size_t kMaxCsrBytes = 16 * 1024;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct ReqFree {
  void operator()(X509_REQ* r) const { X509_REQ_free(r); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using KeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using ReqPtr = std::unique_ptr<X509_REQ, ReqFree>;

BioPtr MemBio(absl::string_view s) {
  return BioPtr(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}

std::string BioString(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::Status Error(absl::string_view what) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return absl::InvalidArgumentError(
      absl::StrCat("csr: ", what, e != 0 ? ": " : "", e != 0 ? buf : ""));
}

}  // namespace

absl::StatusOr<std::string> MakeCsr(absl::string_view private_key_pem,
                                    absl::string_view common_name) {
  BioPtr in = MemBio(private_key_pem);
  KeyPtr key(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr));
  if (!key) return Error("cannot read the private key");
  ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1) return Error("X509_REQ_new");
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  const std::string cn(common_name);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1) {
    return Error("subject");
  }
  if (X509_REQ_set_pubkey(req.get(), key.get()) != 1) return Error("set public key");
  // Ed25519 keys sign without a separate digest; EC keys with SHA-256.
  const EVP_MD* md = EVP_PKEY_id(key.get()) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (X509_REQ_sign(req.get(), key.get(), md) <= 0) return Error("sign");
  BioPtr out(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509_REQ(out.get(), req.get()) != 1) return Error("write");
  return BioString(out.get());
}

absl::StatusOr<std::string> VerifyCsr(absl::string_view csr_pem) {
  if (csr_pem.size() > kMaxCsrBytes) {
    return absl::InvalidArgumentError(absl::StrCat("csr: larger than ", kMaxCsrBytes, " bytes"));
  }
  BioPtr in = MemBio(csr_pem);
  ReqPtr req(PEM_read_bio_X509_REQ(in.get(), nullptr, nullptr, nullptr));
  if (!req) return Error("not a PEM certificate request");
  KeyPtr key(X509_REQ_get_pubkey(req.get()));
  if (!key) return Error("no public key");
  const int type = EVP_PKEY_id(key.get());
  if (type != EVP_PKEY_EC && type != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("csr: the key must be ECDSA P-256 or Ed25519");
  }
  if (X509_REQ_verify(req.get(), key.get()) != 1) {
    return Error("the request's signature does not verify (no proof of possession)");
  }
  BioPtr out(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(out.get(), key.get()) != 1) return Error("write public key");
  return BioString(out.get());
}

}  // namespace wb::crypto
