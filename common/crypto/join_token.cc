#include "common/crypto/join_token.h"

#include "absl/strings/str_cat.h"

namespace wb::crypto {

absl::StatusOr<Ed25519PrivateKey> JoinTokenKey(absl::string_view token) {
  if (token.empty()) return absl::InvalidArgumentError("token: required");
  return Ed25519PrivateKey::FromSeed(Sha256(absl::StrCat("writeback.v1/join-token\n", token)));
}

std::string EnrollmentBinding(absl::string_view csr_pem, absl::string_view result_public_key) {
  return absl::StrCat("writeback.v1/ENROLL\n", Sha256(csr_pem), result_public_key);
}

}  // namespace wb::crypto
