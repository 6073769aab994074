// Certificate signing requests for enrolment (issue 8). Part of
// common/crypto: EVP / X509_REQ / PEM calls that BoringSSL also provides.
// The requester proves possession of its private key by the CSR's own
// signature; the issuer decides the identity (the CSR's subject and
// extensions are ignored). Thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wb::crypto {

// A PEM CSR for the key in `private_key_pem` (PKCS#8), signed by that key.
absl::StatusOr<std::string> MakeCsr(absl::string_view private_key_pem,
                                    absl::string_view common_name);

// Parses a PEM CSR, checks its self-signature (proof of possession) and
// returns its public key as PEM. INVALID_ARGUMENT when malformed or the
// signature does not verify. At most 16 KiB of input.
absl::StatusOr<std::string> VerifyCsr(absl::string_view csr_pem);

}  // namespace wb::crypto
