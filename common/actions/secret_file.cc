// The "secret_file" connector type: credentials in .env, JSON and INI files
// (connectors/secret_file, docs/connectors/secret_file.md).
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/actions/actions.h"
#include "common/actions/spec.h"
#include "common/text/display.h"

namespace wb::actions {
namespace {

constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxName = 256;
constexpr size_t kMaxJsonKey = 1024;
constexpr int kMaxJsonDepth = 32;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// Well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF),
// without C0 controls or DEL. Evidence carries these strings in proto3
// string fields, which must be valid UTF-8.
bool IsPrintableUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return false;
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) {
      n = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n;
  }
  return true;
}

absl::Status ValidateName(absl::string_view field, absl::string_view s, size_t max_len) {
  if (s.empty()) return Invalid(field, "must not be empty");
  if (s.size() > max_len) return Invalid(field, absl::StrCat("longer than ", max_len, " bytes"));
  if (!IsPrintableUtf8(s)) {
    return Invalid(field, "must be printable UTF-8 without control characters");
  }
  return absl::OkStatus();
}

absl::Status ValidateEnvKey(absl::string_view field, absl::string_view key) {
  if (key.empty()) return Invalid(field, "required");
  if (key.size() > kMaxName)
    return Invalid(field, absl::StrCat("longer than ", kMaxName, " bytes"));
  if (!(absl::ascii_isalpha(key[0]) || key[0] == '_')) {
    return Invalid(field, "must start with a letter or '_'");
  }
  for (char c : key) {
    if (!(absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-')) {
      return Invalid(field, "may contain only A-Z, a-z, 0-9, '_', '.' and '-'");
    }
  }
  return absl::OkStatus();
}

// INI names follow the rules the connector parses by (Python's
// configparser, docs/connectors/secret_file.md): a name that no line of an
// INI file can carry is refused here, so that "nothing to remove" is never
// the answer to a name that cannot match.

// White space at either end (configparser strips it, also U+00A0 & co.).
bool EdgeSpace(absl::string_view s) {
  uint32_t cp = 0;
  if (text::DecodeUtf8(s, 0, &cp) > 0 && text::IsWhiteSpace(cp)) return true;
  for (size_t n = 1; n <= 4 && n <= s.size(); ++n) {
    if (text::DecodeUtf8(s, s.size() - n, &cp) == n) return text::IsWhiteSpace(cp);
  }
  return false;
}

absl::Status ValidateIniSection(absl::string_view field, absl::string_view s) {
  WB_RETURN_IF_ERROR(ValidateName(field, s, kMaxName));
  if (absl::StrContains(s, "[") || absl::StrContains(s, "]")) {
    return Invalid(field, "must not contain '[' or ']'");
  }
  if (EdgeSpace(s)) return Invalid(field, "must not start or end with white space");
  return absl::OkStatus();
}

absl::Status ValidateIniKey(absl::string_view field, absl::string_view s) {
  WB_RETURN_IF_ERROR(ValidateName(field, s, kMaxName));
  if (const size_t d = s.find_first_of("=:"); d != absl::string_view::npos) {
    return Invalid(field, absl::StrCat("'", s,
                                       "' cannot be an INI key: a key ends at the first '=' or "
                                       "':', so the line \"",
                                       s, " = ...\" holds the key '",
                                       absl::StripTrailingAsciiWhitespace(s.substr(0, d)),
                                       "' (name that key to remove such a line)"));
  }
  if (s.front() == ';' || s.front() == '#' || s.front() == '[') {
    return Invalid(field, "must not start with ';', '#' or '[' (a comment or a section header)");
  }
  if (EdgeSpace(s)) {
    return Invalid(field, "must not start or end with white space (INI keys are trimmed)");
  }
  return absl::OkStatus();
}

absl::Status NotUsed(const std::string& field, absl::string_view operation) {
  return Invalid(field, absl::StrCat("not used by ", operation));
}

absl::Status ValidateSecretFile(absl::string_view operation,
                                const writeback::v1::ActionParams& params, const std::string& f) {
  const auto& p = params.secret_file();
  const bool uses_key = operation == "remove_env_key" || operation == "remove_ini_key";
  const bool uses_section = operation == "remove_ini_key" || operation == "remove_ini_section";
  const bool uses_path = operation == "remove_json_path";
  if (!uses_key && !p.key().empty()) return NotUsed(f + "key", operation);
  if (!uses_section && !p.section().empty()) return NotUsed(f + "section", operation);
  if (!uses_path && p.json_path_size() > 0) return NotUsed(f + "json_path", operation);
  if (operation == "remove_env_key") return ValidateEnvKey(f + "key", p.key());
  if (operation == "remove_ini_key") {
    // An empty section names the keys before the first section header.
    if (!p.section().empty()) WB_RETURN_IF_ERROR(ValidateIniSection(f + "section", p.section()));
    return ValidateIniKey(f + "key", p.key());
  }
  if (operation == "remove_ini_section") return ValidateIniSection(f + "section", p.section());
  if (uses_path) {
    if (p.json_path_size() == 0) return Invalid(f + "json_path", "required by remove_json_path");
    if (p.json_path_size() > kMaxJsonDepth) {
      return Invalid(f + "json_path", absl::StrCat("at most ", kMaxJsonDepth, " members"));
    }
    for (int i = 0; i < p.json_path_size(); ++i) {
      WB_RETURN_IF_ERROR(
          ValidateName(absl::StrCat(f, "json_path[", i, "]"), p.json_path(i), kMaxJsonKey));
    }
  }
  return absl::OkStatus();
}

// An absolute, normalised path: no "", "." or ".." component, no trailing '/'.
absl::Status ValidateSecretPath(absl::string_view object, absl::string_view field) {
  if (object.size() > kMaxPath) {
    return Invalid(field, absl::StrCat("path longer than ", kMaxPath, " bytes"));
  }
  if (!IsPrintableUtf8(object)) {
    return Invalid(field, "path must be printable UTF-8 without control characters");
  }
  if (object.front() != '/') return Invalid(field, "must be an absolute path");
  if (object.size() == 1) return Invalid(field, "must name a file, not '/'");
  for (absl::string_view c : absl::StrSplit(object.substr(1), '/')) {
    if (c.empty()) return Invalid(field, "path must not contain '//' or end with '/'");
    if (c == "." || c == "..") return Invalid(field, "path must not contain '.' or '..'");
  }
  return absl::OkStatus();
}

}  // namespace

const ConnectorSpec& SecretFileSpec() {
  static const auto* spec = new ConnectorSpec{
      "secret_file",
      {"remove_env_key", "remove_json_path", "remove_ini_key", "remove_ini_section", "delete_file"},
      ValidateSecretFile,
      ValidateSecretPath,
  };
  return *spec;
}

}  // namespace wb::actions
