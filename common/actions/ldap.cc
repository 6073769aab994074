// The "ldap" connector type (connectors/ldap). Targets and group names are
// attribute values (the account's and groups' naming attributes), not DNs:
// the connector builds the DN with RFC 4514 escaping and filters with RFC
// 4515 escaping, so any UTF-8 text without control characters is a valid
// value (at most 1024 bytes).
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/actions/actions.h"
#include "common/actions/spec.h"

namespace wb::actions {
namespace {

constexpr size_t kMaxValueBytes = 1024;
constexpr int kMaxGroups = 1000;

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

absl::Status ValidateValue(absl::string_view field, absl::string_view v) {
  if (v.empty()) return Invalid(field, "must not be empty");
  if (v.size() > kMaxValueBytes) {
    return Invalid(field, absl::StrCat("longer than ", kMaxValueBytes, " bytes"));
  }
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f) return Invalid(field, "contains a control character");
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

// "{SCHEME}value": an RFC 2307 / OpenLDAP hashed password.
absl::Status ValidatePasswordHash(absl::string_view field, absl::string_view h) {
  const absl::Status bad = Invalid(
      field, "must be a hashed userPassword value '{SCHEME}...' such as {SSHA} or {ARGON2}");
  if (h.size() < 4 || h.size() > 1024 || h[0] != '{') return bad;
  const size_t close = h.find('}');
  if (close == absl::string_view::npos || close < 2 || close + 1 >= h.size()) return bad;
  const std::string scheme = absl::AsciiStrToUpper(h.substr(1, close - 1));
  for (char c : scheme) {
    if (!(absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_')) return bad;
  }
  if (scheme == "CLEARTEXT" || scheme == "PLAIN") {
    return Invalid(field, "must be hashed, not {CLEARTEXT}");
  }
  for (unsigned char c : h) {
    if (c < 0x21 || c > 0x7e) return Invalid(field, "must be printable ASCII without spaces");
  }
  return absl::OkStatus();
}

absl::Status NotUsed(const std::string& f, absl::string_view name, absl::string_view op) {
  return Invalid(f + std::string(name), absl::StrCat("not used by ", op));
}

absl::Status ValidateLdap(absl::string_view operation, const writeback::v1::ActionParams& params,
                          const std::string& f) {
  const auto& p = params.ldap();
  if (operation == "remove_from_groups") {
    if (p.groups_size() > kMaxGroups) {
      return Invalid(f + "groups", absl::StrCat("at most ", kMaxGroups, " entries"));
    }
    std::set<std::string> seen;
    for (int i = 0; i < p.groups_size(); ++i) {
      const std::string field = absl::StrCat(f, "groups[", i, "]");
      WB_RETURN_IF_ERROR(ValidateValue(field, p.groups(i)));
      if (!seen.insert(p.groups(i)).second) return Invalid(field, "listed twice");
    }
  } else if (p.groups_size() > 0) {
    return NotUsed(f, "groups", operation);
  }
  if (operation == "replace_password") {
    WB_RETURN_IF_ERROR(ValidatePasswordHash(f + "new_password_hash", p.new_password_hash()));
    const std::string& e = p.expected_password_sha256();
    if (e.empty()) {
      return Invalid(f + "expected_password_sha256",
                     "replace_password needs a precondition on the current password");
    }
    if (e != "none" && !IsHex64(e)) {
      return Invalid(f + "expected_password_sha256",
                     "must be 64 lowercase hex characters or 'none'");
    }
  } else {
    if (!p.new_password_hash().empty()) return NotUsed(f, "new_password_hash", operation);
    if (!p.expected_password_sha256().empty()) {
      return NotUsed(f, "expected_password_sha256", operation);
    }
  }
  if (operation != "delete_entry" && p.keep_group_memberships()) {
    return NotUsed(f, "keep_group_memberships", operation);
  }
  return absl::OkStatus();
}

}  // namespace

const ConnectorSpec& LdapSpec() {
  static const auto* spec = new ConnectorSpec{
      "ldap",
      {"lock", "remove_from_groups", "replace_password", "remove_password", "delete_entry"},
      ValidateLdap,
      [](absl::string_view object, absl::string_view field) {
        return ValidateValue(field, object);
      },
  };
  return *spec;
}

}  // namespace wb::actions
