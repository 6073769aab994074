#include "connectors/ssh_authorized_keys/authorized_keys.h"

#include <cstdint>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/crypto/crypto.h"

namespace wb::connectors::sshak {
namespace {

enum class Kind { kRsa, kDsa, kEcdsa, kEd25519, kEcdsaSk, kEd25519Sk };

struct TypeName {
  absl::string_view name;
  Kind kind;
  int curve;  // 256/384/521 for the ECDSA kinds, else 0
  bool cert;
};

// Every name OpenSSH 9.x's peek_type_nid() accepts (plain, signature-only and
// certificate names). XMSS is not built into Debian's OpenSSH.
constexpr TypeName kTypeNames[] = {
    {"ssh-ed25519", Kind::kEd25519, 0, false},
    {"ssh-ed25519-cert-v01@openssh.com", Kind::kEd25519, 0, true},
    {"sk-ssh-ed25519@openssh.com", Kind::kEd25519Sk, 0, false},
    {"sk-ssh-ed25519-cert-v01@openssh.com", Kind::kEd25519Sk, 0, true},
    {"ssh-rsa", Kind::kRsa, 0, false},
    {"rsa-sha2-256", Kind::kRsa, 0, false},
    {"rsa-sha2-512", Kind::kRsa, 0, false},
    {"ssh-dss", Kind::kDsa, 0, false},
    {"ecdsa-sha2-nistp256", Kind::kEcdsa, 256, false},
    {"ecdsa-sha2-nistp384", Kind::kEcdsa, 384, false},
    {"ecdsa-sha2-nistp521", Kind::kEcdsa, 521, false},
    {"sk-ecdsa-sha2-nistp256@openssh.com", Kind::kEcdsaSk, 256, false},
    {"webauthn-sk-ecdsa-sha2-nistp256@openssh.com", Kind::kEcdsaSk, 256, false},
    {"ssh-rsa-cert-v01@openssh.com", Kind::kRsa, 0, true},
    {"rsa-sha2-256-cert-v01@openssh.com", Kind::kRsa, 0, true},
    {"rsa-sha2-512-cert-v01@openssh.com", Kind::kRsa, 0, true},
    {"ssh-dss-cert-v01@openssh.com", Kind::kDsa, 0, true},
    {"ecdsa-sha2-nistp256-cert-v01@openssh.com", Kind::kEcdsa, 256, true},
    {"ecdsa-sha2-nistp384-cert-v01@openssh.com", Kind::kEcdsa, 384, true},
    {"ecdsa-sha2-nistp521-cert-v01@openssh.com", Kind::kEcdsa, 521, true},
    {"sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", Kind::kEcdsaSk, 256, true},
};

// Inside a blob, sshkey_type_from_name() also takes the short names of plain
// types, case-insensitively. ECDSA short names carry no curve and are then
// refused by the ECDSA decoder, so only these are usable.
constexpr TypeName kBlobShortNames[] = {
    {"ED25519", Kind::kEd25519, 0, false},
    {"ED25519-SK", Kind::kEd25519Sk, 0, false},
    {"RSA", Kind::kRsa, 0, false},
    {"DSA", Kind::kDsa, 0, false},
};

std::optional<TypeName> LookupLineType(absl::string_view name) {
  for (const auto& t : kTypeNames) {
    if (t.name == name) return t;
  }
  return std::nullopt;
}

std::optional<TypeName> LookupBlobType(absl::string_view name) {
  if (auto t = LookupLineType(name)) return t;
  for (const auto& t : kBlobShortNames) {
    if (absl::EqualsIgnoreCase(t.name, name)) return t;
  }
  return std::nullopt;
}

std::string PlainName(Kind kind, int curve) {
  switch (kind) {
    case Kind::kRsa:
      return "ssh-rsa";
    case Kind::kDsa:
      return "ssh-dss";
    case Kind::kEcdsa:
      return absl::StrCat("ecdsa-sha2-nistp", curve);
    case Kind::kEd25519:
      return "ssh-ed25519";
    case Kind::kEcdsaSk:
      return "sk-ecdsa-sha2-nistp256@openssh.com";
    case Kind::kEd25519Sk:
      return "sk-ssh-ed25519@openssh.com";
  }
  return "";
}

// Reader of the SSH wire encoding (RFC 4251 section 5).
class WireReader {
 public:
  explicit WireReader(absl::string_view data) : rest_(data) {}
  bool ReadString(absl::string_view* out) {
    if (rest_.size() < 4) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(rest_.data());
    const uint64_t len =
        (uint64_t{p[0]} << 24) | (uint64_t{p[1]} << 16) | (uint64_t{p[2]} << 8) | uint64_t{p[3]};
    if (len > rest_.size() - 4) return false;
    *out = rest_.substr(4, static_cast<size_t>(len));
    rest_.remove_prefix(4 + static_cast<size_t>(len));
    return true;
  }
  bool empty() const { return rest_.empty(); }

 private:
  absl::string_view rest_;
};

void PutString(std::string* out, absl::string_view s) {
  const auto n = static_cast<uint32_t>(s.size());
  const char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)};
  out->append(len, 4);
  out->append(s.data(), s.size());
}

// Reads an mpint the way sshbuf_get_bignum2 does (negative refused, leading
// zero bytes ignored) and appends its minimal encoding.
bool CopyMpint(WireReader& r, std::string* out) {
  absl::string_view v;
  if (!r.ReadString(&v)) return false;
  if (!v.empty() && (static_cast<unsigned char>(v[0]) & 0x80) != 0) return false;
  while (!v.empty() && v[0] == '\0') v.remove_prefix(1);
  if (!v.empty() && (static_cast<unsigned char>(v[0]) & 0x80) != 0) {
    PutString(out, absl::StrCat(absl::string_view("\0", 1), v));
  } else {
    PutString(out, v);
  }
  return true;
}

bool CopyString(WireReader& r, std::string* out, absl::string_view* value = nullptr) {
  absl::string_view v;
  if (!r.ReadString(&v)) return false;
  PutString(out, v);
  if (value != nullptr) *value = v;
  return true;
}

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("key blob: ", why));
}

bool IsB64Char(char c) { return absl::ascii_isalnum(c) || c == '+' || c == '/'; }

// Decodes the blob token of a line like OpenSSH's b64_pton: whitespace is
// skipped, the length (without whitespace) must be a multiple of 4, and '='
// may only pad the end.
std::optional<std::string> DecodeBlobToken(absl::string_view token) {
  std::string clean;
  clean.reserve(token.size());
  for (char c : token) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) continue;
    clean.push_back(c);
  }
  if (clean.empty() || clean.size() % 4 != 0) return std::nullopt;
  size_t pad = 0;
  while (pad < 2 && !clean.empty() && clean[clean.size() - 1 - pad] == '=') ++pad;
  for (size_t i = 0; i < clean.size() - pad; ++i) {
    if (!IsB64Char(clean[i])) return std::nullopt;
  }
  auto decoded = crypto::Base64Decode(clean);
  if (!decoded.ok()) return std::nullopt;
  return *std::move(decoded);
}

struct ReadKeyResult {
  std::string key_type;
  std::string fingerprint;
  std::string comment;
};

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

size_t SkipBlanks(absl::string_view s, size_t i) {
  while (i < s.size() && IsBlank(s[i])) ++i;
  return i;
}

// sshkey_read(): "<type> <blob>[ <comment>]".
absl::StatusOr<ReadKeyResult> ReadKey(absl::string_view s) {
  size_t space = 0;
  while (space < s.size() && !IsBlank(s[space])) ++space;
  if (space == s.size()) return Bad("no key type followed by a key");
  const absl::string_view type = s.substr(0, space);
  auto line_type = LookupLineType(type);
  if (!line_type) return Bad(absl::StrCat("unknown key type '", Printable(type, 60), "'"));
  size_t i = SkipBlanks(s, space);
  if (i == s.size()) return Bad("missing key data");
  size_t end = i;
  while (end < s.size() && !IsBlank(s[end])) ++end;
  auto blob = DecodeBlobToken(s.substr(i, end - i));
  if (!blob) return Bad("key data is not valid base64");
  auto info = InspectKeyBlob(*blob);
  if (!info.ok()) return info.status();
  auto blob_type = LookupBlobType(info->type);
  if (!blob_type || blob_type->kind != line_type->kind || blob_type->cert != line_type->cert) {
    return Bad(absl::StrCat("type '", type, "' does not match the key's type '",
                            Printable(info->type, 60), "'"));
  }
  if (line_type->curve != 0 && info->plain_type != PlainName(line_type->kind, line_type->curve)) {
    return Bad(absl::StrCat("type '", type, "' does not match the key's curve"));
  }
  ReadKeyResult out;
  out.key_type = std::string(type);
  out.fingerprint = info->fingerprint;
  absl::string_view comment = s.substr(SkipBlanks(s, end));
  while (!comment.empty() && absl::ascii_isspace(static_cast<unsigned char>(comment.back()))) {
    comment.remove_suffix(1);
  }
  out.comment = std::string(comment);
  return out;
}

// sshkey_advance_past_options(): returns the index of the first blank outside
// quotes, or nullopt for an unterminated quote.
std::optional<size_t> AdvancePastOptions(absl::string_view s, size_t i) {
  bool quoted = false;
  for (; i < s.size() && (quoted || !IsBlank(s[i])); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '"') {
      ++i;
    } else if (s[i] == '"') {
      quoted = !quoted;
    }
  }
  if (i == s.size() && quoted) return std::nullopt;
  return i;
}

void ClassifyLine(Line& line) {
  absl::string_view s = line.raw;
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  // sshd interprets the line as a C string.
  if (const size_t nul = s.find('\0'); nul != absl::string_view::npos) s = s.substr(0, nul);
  size_t i = SkipBlanks(s, 0);
  absl::string_view rest = s.substr(i);
  if (rest.empty()) {
    line.kind = LineKind::kBlank;
    return;
  }
  if (rest[0] == '#') {
    line.kind = LineKind::kComment;
    return;
  }
  bool only_space = true;
  for (char c : rest) only_space = only_space && absl::ascii_isspace(static_cast<unsigned char>(c));
  if (only_space) {
    line.kind = LineKind::kBlank;
    return;
  }
  auto key = ReadKey(rest);
  if (!key.ok()) {
    auto after = AdvancePastOptions(s, i);
    if (!after) {
      line.kind = LineKind::kUnparseable;
      line.reason = "unterminated quote in options";
      return;
    }
    const absl::string_view after_options = s.substr(SkipBlanks(s, *after));
    auto with_options = ReadKey(after_options);
    if (!with_options.ok()) {
      line.kind = LineKind::kUnparseable;
      // Report the attempt that got further: the one with options if a key
      // type follows them, else the reading without options.
      size_t type_end = 0;
      while (type_end < after_options.size() && !IsBlank(after_options[type_end])) ++type_end;
      const bool options_then_type = LookupLineType(after_options.substr(0, type_end)).has_value();
      line.reason =
          std::string(options_then_type ? with_options.status().message() : key.status().message());
      return;
    }
    key = std::move(with_options);
    line.has_options = true;
  }
  line.kind = LineKind::kKey;
  line.key_type = std::move(key->key_type);
  line.fingerprint = std::move(key->fingerprint);
  line.comment = std::move(key->comment);
}

}  // namespace

std::string Sha256Fingerprint(absl::string_view canonical_plain_blob) {
  std::string b64 = crypto::Base64Encode(crypto::Sha256(canonical_plain_blob));
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  return absl::StrCat("SHA256:", b64);
}

absl::StatusOr<KeyBlobInfo> InspectKeyBlob(absl::string_view blob) {
  WireReader r(blob);
  absl::string_view type;
  if (!r.ReadString(&type)) return Bad("truncated key type");
  auto t = LookupBlobType(type);
  if (!t) return Bad(absl::StrCat("unknown key type '", Printable(type, 60), "'"));
  if (t->cert) {
    absl::string_view nonce;
    if (!r.ReadString(&nonce)) return Bad("truncated certificate nonce");
  }
  int curve = t->curve;
  std::string plain;
  bool ok = true;
  switch (t->kind) {
    case Kind::kRsa:
      ok = CopyMpint(r, &plain) && CopyMpint(r, &plain);
      break;
    case Kind::kDsa:
      ok = CopyMpint(r, &plain) && CopyMpint(r, &plain) && CopyMpint(r, &plain) &&
           CopyMpint(r, &plain);
      break;
    case Kind::kEd25519:
    case Kind::kEd25519Sk: {
      absl::string_view pk;
      ok = CopyString(r, &plain, &pk) && pk.size() == 32;
      if (ok && t->kind == Kind::kEd25519Sk) ok = CopyString(r, &plain);
      break;
    }
    case Kind::kEcdsa:
    case Kind::kEcdsaSk: {
      absl::string_view curve_name;
      ok = CopyString(r, &plain, &curve_name) && curve != 0 &&
           curve_name == absl::StrCat("nistp", curve) && CopyString(r, &plain);
      if (ok && t->kind == Kind::kEcdsaSk) ok = CopyString(r, &plain);
      break;
    }
  }
  if (!ok) return Bad(absl::StrCat("malformed ", Printable(type, 60), " key"));
  // A plain key must end here; a certificate's body (signed by its CA) follows.
  if (!t->cert && !r.empty()) return Bad("unexpected trailing data");
  if (t->cert && r.empty()) return Bad("truncated certificate");
  KeyBlobInfo info;
  info.type = std::string(type);
  info.plain_type = PlainName(t->kind, curve);
  info.is_cert = t->cert;
  std::string canonical;
  PutString(&canonical, info.plain_type);
  canonical += plain;
  info.fingerprint = Sha256Fingerprint(canonical);
  return info;
}

std::vector<Line> ParseAuthorizedKeys(absl::string_view content) {
  std::vector<Line> lines;
  size_t start = 0;
  size_t number = 0;
  while (start < content.size()) {
    size_t nl = content.find('\n', start);
    const size_t end = nl == absl::string_view::npos ? content.size() : nl + 1;
    Line line;
    line.number = ++number;
    line.raw = content.substr(start, end - start);
    ClassifyLine(line);
    lines.push_back(std::move(line));
    start = end;
  }
  return lines;
}

std::string Printable(absl::string_view text, size_t max_len) {
  std::string out;
  for (unsigned char c : text) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    }
  }
  return out;
}

}  // namespace wb::connectors::sshak
