// Parsing of OpenSSH authorized_keys files and public-key fingerprints.
//
// The parser follows sshd(8) (AUTHORIZED_KEYS FILE FORMAT, and what
// OpenSSH 9.x's auth2-pubkeyfile.c / sshkey_read() actually accept), so that
// every line sshd would honour as a key is recognised as a key here:
//   - leading spaces/tabs are skipped; empty lines and lines whose first
//     non-blank byte is '#' are kept untouched;
//   - a line is first read as "<type> <base64 blob> [comment]"; if that
//     fails it is read as "<options> <type> <blob> [comment]", where the
//     options field ends at the first space/tab outside double quotes (\"
//     escapes a quote), exactly like sshkey_advance_past_options();
//   - <type> is any key or signature-algorithm name sshd accepts at the start
//     of a key (ssh-ed25519, ssh-rsa, rsa-sha2-256/512, ssh-dss,
//     ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com,
//     sk-ecdsa-sha2-nistp256@openssh.com, webauthn-sk-ecdsa-sha2-nistp256@
//     openssh.com and every *-cert-v01@openssh.com); it must denote the same
//     key kind (and curve) as the type inside the blob;
//   - like sshd (which reads lines as C strings), a NUL byte ends the part of
//     the line that is interpreted; the bytes are still kept.
// Anything else is kUnparseable: such lines are never removed by the
// connector and are preserved byte for byte.
//
// Fingerprints are what `ssh-keygen -lf` prints: "SHA256:" + unpadded base64
// of SHA-256 over the canonical wire encoding of the plain public key (for a
// certificate: of the certified key; RSA/DSA integers re-encoded minimally;
// the canonical type name).
//
// Pure functions, thread-safe. No secrets are handled (public keys only).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wb::connectors::sshak {

// What a decoded public-key blob is.
struct KeyBlobInfo {
  std::string type;        // the type name inside the blob, as written
  std::string plain_type;  // canonical name of the plain key, e.g. "ssh-rsa"
  bool is_cert = false;
  std::string fingerprint;  // "SHA256:..." as ssh-keygen -lf prints
};

// Decodes an SSH wire-format public key (the base64-decoded blob of an
// authorized_keys line). INVALID_ARGUMENT if it is not a key sshd could load.
absl::StatusOr<KeyBlobInfo> InspectKeyBlob(absl::string_view blob);

// "SHA256:" + unpadded base64 of SHA-256(`canonical_plain_blob`).
std::string Sha256Fingerprint(absl::string_view canonical_plain_blob);

enum class LineKind { kBlank, kComment, kKey, kUnparseable };

// One line of an authorized_keys file. `raw` points into the parsed content
// (which must outlive the Line) and includes the line's '\n', if any.
struct Line {
  LineKind kind = LineKind::kBlank;
  size_t number = 0;      // 1-based line number
  absl::string_view raw;  // exact bytes, including the terminating '\n'
  // Set for kKey:
  std::string key_type;  // type as written at the start of the key
  std::string fingerprint;
  // Text after the blob, with trailing whitespace (incl. '\r') removed; may
  // be empty. Untrusted bytes: use Printable() before showing it.
  std::string comment;
  bool has_options = false;
  // Set for kUnparseable: why the line is not a key.
  std::string reason;
};

// Splits `content` into lines (on '\n') and classifies each. The
// concatenation of every Line::raw is exactly `content`.
std::vector<Line> ParseAuthorizedKeys(absl::string_view content);

// `text` made safe for reports and proto string fields: printable ASCII is
// kept, every other byte becomes \xNN; cut to max_len bytes (then "...").
std::string Printable(absl::string_view text, size_t max_len = 200);

}  // namespace wb::connectors::sshak
