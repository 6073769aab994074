// The "postgres" connector type (connectors/postgres). Role and schema names
// follow PostgreSQL's grammar for quoted identifiers: any UTF-8 without NUL,
// at most 63 bytes (NAMEDATALEN - 1; a longer name would be silently
// truncated by the server, so it is refused here). The connector always
// quotes them, so quotes, semicolons and the like are valid names.
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/actions/actions.h"
#include "common/actions/spec.h"
#include "common/crypto/crypto.h"

namespace wb::actions {
namespace {

constexpr size_t kMaxIdentifierBytes = 63;

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

absl::Status ValidateIdentifier(absl::string_view field, absl::string_view name) {
  if (name.empty()) return Invalid(field, "must not be empty");
  if (name.size() > kMaxIdentifierBytes) {
    return Invalid(field, absl::StrCat("longer than ", kMaxIdentifierBytes,
                                       " bytes (PostgreSQL would truncate it)"));
  }
  if (name.find('\0') != absl::string_view::npos) return Invalid(field, "contains a NUL byte");
  if (!IsValidUtf8(name)) return Invalid(field, "is not valid UTF-8");
  return absl::OkStatus();
}

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!(absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>", base64 parts,
// keys of 32 bytes.
absl::Status ValidateScramVerifier(absl::string_view field, absl::string_view v) {
  constexpr absl::string_view kPrefix = "SCRAM-SHA-256$";
  const absl::Status bad = Invalid(
      field,
      "must be a SCRAM-SHA-256 verifier "
      "'SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>' (never a cleartext password)");
  if (v.size() > 512 || v.substr(0, kPrefix.size()) != kPrefix) return bad;
  std::vector<absl::string_view> halves = absl::StrSplit(v.substr(kPrefix.size()), '$');
  if (halves.size() != 2) return bad;
  std::vector<absl::string_view> a = absl::StrSplit(halves[0], ':');
  std::vector<absl::string_view> b = absl::StrSplit(halves[1], ':');
  if (a.size() != 2 || b.size() != 2) return bad;
  uint32_t iterations = 0;
  for (char c : a[0]) {
    if (!absl::ascii_isdigit(c)) return bad;
  }
  if (!absl::SimpleAtoi(a[0], &iterations) || iterations == 0) return bad;
  auto salt = crypto::Base64Decode(a[1]);
  if (!salt.ok() || salt->empty()) return bad;
  for (absl::string_view key : {b[0], b[1]}) {
    auto k = crypto::Base64Decode(key);
    if (!k.ok() || k->size() != 32) return bad;
  }
  // Base64Decode may be lenient: insist on the base64 alphabet.
  for (absl::string_view part : {a[1], b[0], b[1]}) {
    for (char c : part) {
      if (!(absl::ascii_isalnum(c) || c == '+' || c == '/' || c == '=')) return bad;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePreconditions(const writeback::v1::PostgresParams& p, const std::string& f) {
  const std::string& pw = p.expected_password_sha256();
  if (!pw.empty() && pw != "none" && !IsHex64(pw)) {
    return Invalid(f + "expected_password_sha256",
                   "must be 64 lowercase hex characters (SHA-256 of pg_authid.rolpassword) or "
                   "'none'");
  }
  const std::string& vu = p.expected_valid_until();
  if (!vu.empty() && vu != "infinity") {
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, vu, &t, &err)) {
      return Invalid(f + "expected_valid_until",
                     "must be 'infinity' or an RFC 3339 time such as 2030-01-01T00:00:00Z");
    }
  }
  return absl::OkStatus();
}

absl::Status NotUsed(const std::string& f, absl::string_view name, absl::string_view op) {
  return Invalid(f + std::string(name), absl::StrCat("not used by ", op));
}

const std::set<std::string>& KnownPrivileges() {
  static const auto* s =
      new std::set<std::string>{"SELECT",     "INSERT",  "UPDATE", "DELETE", "TRUNCATE",
                                "REFERENCES", "TRIGGER", "USAGE",  "CREATE", "ALL"};
  return *s;
}

absl::Status ValidatePostgres(absl::string_view operation,
                              const writeback::v1::ActionParams& params, const std::string& f) {
  const auto& p = params.postgres();
  const bool uses_schema = operation == "revoke_privileges" || operation == "reduce_to_read_only";
  const bool uses_sessions =
      operation == "disable_login" || operation == "set_password" || operation == "expire_password";
  const bool uses_preconditions = operation == "disable_login" || operation == "set_password" ||
                                  operation == "expire_password" || operation == "drop_role";
  if (uses_schema) {
    WB_RETURN_IF_ERROR(ValidateIdentifier(f + "schema", p.schema()));
  } else if (!p.schema().empty()) {
    return NotUsed(f, "schema", operation);
  }
  if (operation == "revoke_privileges") {
    if (p.privileges_size() == 0) return Invalid(f + "privileges", "must list at least one");
    std::set<std::string> seen;
    for (int i = 0; i < p.privileges_size(); ++i) {
      const std::string field = absl::StrCat(f, "privileges[", i, "]");
      const std::string up = absl::AsciiStrToUpper(p.privileges(i));
      if (KnownPrivileges().count(up) == 0) {
        return Invalid(field,
                       "must be one of SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, "
                       "TRIGGER, USAGE, CREATE, ALL");
      }
      if (!seen.insert(up).second) return Invalid(field, "listed twice");
    }
  } else if (p.privileges_size() > 0) {
    return NotUsed(f, "privileges", operation);
  }
  if (operation == "set_password") {
    WB_RETURN_IF_ERROR(ValidateScramVerifier(f + "new_password_scram", p.new_password_scram()));
    if (p.expected_password_sha256().empty() && p.expected_valid_until().empty()) {
      return Invalid(f + "expected_password_sha256",
                     "set_password needs a precondition: expected_password_sha256 or "
                     "expected_valid_until");
    }
  } else if (!p.new_password_scram().empty()) {
    return NotUsed(f, "new_password_scram", operation);
  }
  if (uses_preconditions) {
    WB_RETURN_IF_ERROR(ValidatePreconditions(p, f));
  } else {
    if (!p.expected_password_sha256().empty()) {
      return NotUsed(f, "expected_password_sha256", operation);
    }
    if (!p.expected_valid_until().empty()) return NotUsed(f, "expected_valid_until", operation);
  }
  if (operation == "drop_role") {
    if (!p.reassign_owned_to().empty()) {
      WB_RETURN_IF_ERROR(ValidateIdentifier(f + "reassign_owned_to", p.reassign_owned_to()));
    }
  } else if (!p.reassign_owned_to().empty()) {
    return NotUsed(f, "reassign_owned_to", operation);
  }
  if (!uses_sessions && p.keep_sessions()) return NotUsed(f, "keep_sessions", operation);
  return absl::OkStatus();
}

}  // namespace

const ConnectorSpec& PostgresSpec() {
  static const auto* spec = new ConnectorSpec{
      "postgres",
      {"disable_login", "terminate_sessions", "revoke_privileges", "reduce_to_read_only",
       "set_password", "expire_password", "drop_role"},
      ValidatePostgres,
      [](absl::string_view object, absl::string_view field) {
        return ValidateIdentifier(field, object);
      },
  };
  return *spec;
}

}  // namespace wb::actions
