// Test helpers: real SSH keys made by ssh-keygen (openssh-client), and their
// fingerprints as ssh-keygen prints them. Tests only; not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/fs/fs.h"
#include "common/testing/temp_dir.h"
#include "connectors/testing/run_program.h"

namespace wb::connectors::sshak::testing {

struct TestKey {
  std::string type;      // e.g. "ssh-ed25519"
  std::string blob_b64;  // the key data field
  std::string comment;
  std::string fingerprint;  // as printed by ssh-keygen -lf
  // "<type> <blob> <comment>" without newline.
  std::string Line() const {
    return comment.empty() ? absl::StrCat(type, " ", blob_b64)
                           : absl::StrCat(type, " ", blob_b64, " ", comment);
  }
};

// The fingerprints ssh-keygen -lf prints for `path` (one per key it accepts).
inline absl::StatusOr<std::vector<std::string>> SshKeygenFingerprints(const std::string& path) {
  auto out = connectors::testing::RunProgramOk({"ssh-keygen", "-lf", path});
  if (!out.ok()) return out.status();
  std::vector<std::string> fps;
  for (absl::string_view line : absl::StrSplit(*out, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(' ', 2));
    if (f.size() < 2) return absl::InternalError(absl::StrCat("ssh-keygen output: ", line));
    fps.emplace_back(f[1]);
  }
  return fps;
}

// Makes keys with ssh-keygen in a private temp dir; each (type, bits,
// comment) is generated once per process.
class KeyFactory {
 public:
  static KeyFactory& Get() {
    static KeyFactory f;  // destroyed at exit, removing its temp dir
    return f;
  }

  // keygen_type: ed25519 | rsa | ecdsa | dsa. bits: 0 for the default.
  absl::StatusOr<TestKey> Make(const std::string& keygen_type, const std::string& comment,
                               int bits = 0, const std::string& tag = "") {
    const std::string id = absl::StrCat(keygen_type, "/", bits, "/", comment, "/", tag);
    if (auto it = cache_.find(id); it != cache_.end()) return it->second;
    const std::string path = dir_.Sub(absl::StrCat("k", counter_++));
    std::vector<std::string> argv = {"ssh-keygen", "-q", "-t",    keygen_type, "-N",
                                     "",           "-C", comment, "-f",        path};
    if (bits > 0) {
      argv.push_back("-b");
      argv.push_back(absl::StrCat(bits));
    }
    auto gen = connectors::testing::RunProgramOk(argv);
    if (!gen.ok()) return gen.status();
    auto key = FromPubFile(path + ".pub", comment);
    if (!key.ok()) return key.status();
    key->comment = comment;
    cache_[id] = *key;
    return *key;
  }

  // Signs `user_key` with a CA key and returns the certificate as a key.
  absl::StatusOr<TestKey> Certify(const TestKey& user_key, const std::string& ca_type = "ed25519") {
    const std::string base = dir_.Sub(absl::StrCat("c", counter_++));
    auto ca = connectors::testing::RunProgramOk(
        {"ssh-keygen", "-q", "-t", ca_type, "-N", "", "-C", "ca", "-f", base + "_ca"});
    if (!ca.ok()) return ca.status();
    auto w = fs::WriteFileAtomic(base + ".pub", user_key.Line() + "\n");
    if (!w.ok()) return w;
    auto sign = connectors::testing::RunProgramOk(
        {"ssh-keygen", "-q", "-s", base + "_ca", "-I", "id", "-n", "alice", base + ".pub"});
    if (!sign.ok()) return sign.status();
    return FromPubFile(base + "-cert.pub", user_key.comment);
  }

  // Parses a one-key .pub file and asks ssh-keygen for its fingerprint.
  absl::StatusOr<TestKey> FromPubFile(const std::string& pub, const std::string& comment) {
    auto text = fs::ReadFile(pub);
    if (!text.ok()) return text.status();
    std::vector<std::string> f =
        absl::StrSplit(absl::StripTrailingAsciiWhitespace(*text), absl::MaxSplits(' ', 2));
    if (f.size() < 2) return absl::InternalError(absl::StrCat("bad .pub file ", pub));
    auto fps = SshKeygenFingerprints(pub);
    if (!fps.ok()) return fps.status();
    if (fps->size() != 1) return absl::InternalError("expected one fingerprint");
    TestKey k;
    k.type = f[0];
    k.blob_b64 = f[1];
    k.comment = comment;
    k.fingerprint = (*fps)[0];
    return k;
  }

  // A file in the factory's directory, for ad-hoc ssh-keygen -lf runs.
  std::string NewPath() { return dir_.Sub(absl::StrCat("f", counter_++)); }

 private:
  KeyFactory() = default;
  wb::testing::TempDir dir_;
  int counter_ = 0;
  std::map<std::string, TestKey> cache_;
};

}  // namespace wb::connectors::sshak::testing
