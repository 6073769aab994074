// The "redis" connector type (connectors/redis). ACL user names: Redis
// refuses spaces and NUL, and its ACL file is line- and space-separated, so
// whitespace and control characters are refused here too; at most 512 bytes.
// Every value travels as its own argv entry (redisCommandArgv).
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/actions/actions.h"
#include "common/actions/spec.h"

namespace wb::actions {
namespace {

constexpr size_t kMaxUserBytes = 512;
constexpr size_t kMaxPatternBytes = 1024;
constexpr int kMaxListEntries = 256;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// Well-formed UTF-8: shortest forms only, no surrogates, at most U+10FFFF.
bool IsValidUtf8(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// No whitespace, no control characters, valid UTF-8.
absl::Status ValidateToken(absl::string_view field, absl::string_view v, size_t max_len) {
  if (v.empty()) return Invalid(field, "must not be empty");
  if (v.size() > max_len) return Invalid(field, absl::StrCat("longer than ", max_len, " bytes"));
  for (unsigned char c : v) {
    if (c <= 0x20 || c == 0x7f) {
      return Invalid(field, "must not contain whitespace or control characters");
    }
  }
  if (!IsValidUtf8(v)) return Invalid(field, "is not valid UTF-8");
  return absl::OkStatus();
}

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!(absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsCommandWord(absl::string_view w) {
  // Starts with a letter: "-get" or "+get" would be an ACL rule, not a name.
  if (w.empty() || w.size() > 64 || !absl::ascii_islower(w[0])) return false;
  for (char c : w) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '-' || c == '.')) {
      return false;
    }
  }
  return true;
}

// "@category", "command" or "command|subcommand", lowercase.
absl::Status ValidateCommand(absl::string_view field, absl::string_view c) {
  if (absl::StartsWith(c, "@")) {
    if (!IsCommandWord(c.substr(1))) {
      return Invalid(field, "a category is '@' followed by lowercase letters, e.g. @dangerous");
    }
    if (c == "@all") {
      return Invalid(field, "removing @all is not a permission removal; use disable_user");
    }
    return absl::OkStatus();
  }
  const size_t bar = c.find('|');
  const bool ok = bar == absl::string_view::npos
                      ? IsCommandWord(c)
                      : IsCommandWord(c.substr(0, bar)) && IsCommandWord(c.substr(bar + 1));
  if (!ok) {
    return Invalid(field, "must be a lowercase command name, 'command|subcommand' or '@category'");
  }
  return absl::OkStatus();
}

// "allkeys", or "~pattern" / "%R~pattern" / "%W~pattern" / "%RW~pattern".
absl::Status ValidateKeyPattern(absl::string_view field, absl::string_view k) {
  WB_RETURN_IF_ERROR(ValidateToken(field, k, kMaxPatternBytes));
  if (k == "allkeys") return absl::OkStatus();
  for (absl::string_view prefix : {"~", "%R~", "%W~", "%RW~"}) {
    if (absl::StartsWith(k, prefix) && k.size() > prefix.size()) return absl::OkStatus();
  }
  return Invalid(field,
                 "must be a key pattern as ACL GETUSER lists it: '~pattern', '%R~pattern', "
                 "'%W~pattern', '%RW~pattern' or 'allkeys'");
}

absl::Status NotUsed(const std::string& f, absl::string_view name, absl::string_view op) {
  return Invalid(f + std::string(name), absl::StrCat("not used by ", op));
}

absl::Status ValidateRedis(absl::string_view operation, const writeback::v1::ActionParams& params,
                           const std::string& f) {
  const auto& p = params.redis();
  if (operation == "remove_permissions") {
    if (p.commands_size() == 0 && p.key_patterns_size() == 0) {
      return Invalid(f + "commands", "remove_permissions needs commands or key_patterns");
    }
    if (p.commands_size() > kMaxListEntries) {
      return Invalid(f + "commands", absl::StrCat("at most ", kMaxListEntries, " entries"));
    }
    if (p.key_patterns_size() > kMaxListEntries) {
      return Invalid(f + "key_patterns", absl::StrCat("at most ", kMaxListEntries, " entries"));
    }
    std::set<std::string> seen;
    for (int i = 0; i < p.commands_size(); ++i) {
      const std::string field = absl::StrCat(f, "commands[", i, "]");
      WB_RETURN_IF_ERROR(ValidateCommand(field, p.commands(i)));
      if (!seen.insert(p.commands(i)).second) return Invalid(field, "listed twice");
    }
    seen.clear();
    for (int i = 0; i < p.key_patterns_size(); ++i) {
      const std::string field = absl::StrCat(f, "key_patterns[", i, "]");
      WB_RETURN_IF_ERROR(ValidateKeyPattern(field, p.key_patterns(i)));
      if (!seen.insert(p.key_patterns(i)).second) return Invalid(field, "listed twice");
    }
  } else {
    if (p.commands_size() > 0) return NotUsed(f, "commands", operation);
    if (p.key_patterns_size() > 0) return NotUsed(f, "key_patterns", operation);
  }
  if (operation == "rotate_password") {
    if (!IsHex64(p.new_password_sha256())) {
      return Invalid(f + "new_password_sha256",
                     "must be 64 lowercase hex characters (SHA-256 of the new password)");
    }
    if (p.expected_password_sha256s_size() == 0) {
      return Invalid(f + "expected_password_sha256s",
                     "rotate_password needs the current password hashes as a precondition");
    }
    if (p.expected_password_sha256s_size() > kMaxListEntries) {
      return Invalid(f + "expected_password_sha256s",
                     absl::StrCat("at most ", kMaxListEntries, " entries"));
    }
    for (int i = 0; i < p.expected_password_sha256s_size(); ++i) {
      if (!IsHex64(p.expected_password_sha256s(i))) {
        return Invalid(absl::StrCat(f, "expected_password_sha256s[", i, "]"),
                       "must be 64 lowercase hex characters");
      }
    }
  } else {
    if (!p.new_password_sha256().empty()) return NotUsed(f, "new_password_sha256", operation);
    if (p.expected_password_sha256s_size() > 0) {
      return NotUsed(f, "expected_password_sha256s", operation);
    }
  }
  const bool uses_keep = operation == "disable_user" || operation == "reset_passwords" ||
                         operation == "rotate_password";
  if (!uses_keep && p.keep_connections()) return NotUsed(f, "keep_connections", operation);
  return absl::OkStatus();
}

}  // namespace

const ConnectorSpec& RedisSpec() {
  static const auto* spec = new ConnectorSpec{
      "redis",
      {"disable_user", "kill_connections", "reset_passwords", "rotate_password",
       "remove_permissions", "delete_user"},
      ValidateRedis,
      [](absl::string_view object, absl::string_view field) {
        return ValidateToken(field, object, kMaxUserBytes);
      },
  };
  return *spec;
}

}  // namespace wb::actions
