// Real OpenSSH ed25519 public keys for tests, made with common/crypto (no
// ssh-keygen needed): the authorized_keys line and its SHA256 fingerprint,
// exactly as `ssh-keygen -lf` prints it.
#pragma once

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/crypto/crypto.h"

namespace wb::e2e {

struct SshTestKey {
  std::string line;         // "ssh-ed25519 AAAA... comment"
  std::string fingerprint;  // "SHA256:..."
};

inline SshTestKey MakeSshKey(const std::string& comment) {
  auto k = crypto::Ed25519PrivateKey::Generate();
  auto u32 = [](uint32_t n) {
    std::string s(4, '\0');
    s[0] = static_cast<char>(n >> 24);
    s[1] = static_cast<char>(n >> 16);
    s[2] = static_cast<char>(n >> 8);
    s[3] = static_cast<char>(n);
    return s;
  };
  const std::string type = "ssh-ed25519";
  const std::string blob = absl::StrCat(u32(type.size()), type, u32(32), k.public_key().raw());
  SshTestKey out;
  out.line = absl::StrCat(type, " ", crypto::Base64Encode(blob), " ", comment);
  out.fingerprint = absl::StrCat(
      "SHA256:", absl::StrReplaceAll(crypto::Base64Encode(crypto::Sha256(blob)), {{"=", ""}}));
  return out;
}

}  // namespace wb::e2e
