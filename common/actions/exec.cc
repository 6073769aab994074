// The "exec" connector type: an operator-configured program with a JSON
// contract (connectors/exec, docs/connectors/exec.md). Parameters travel to
// the program literally, so the only rules are the ones that keep them
// well-formed JSON strings and bounded.
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/actions/actions.h"
#include "common/actions/spec.h"

namespace wb::actions {
namespace {

constexpr int kMaxArgs = 64;
constexpr size_t kMaxArgKey = 64;
constexpr size_t kMaxArgValue = 4096;
constexpr size_t kMaxObject = 1024;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// Well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF)
// without C0/C1 control characters or DEL.
absl::Status ValidatePrintableUtf8(absl::string_view field, absl::string_view s, size_t max_len,
                                   bool allow_empty) {
  if (s.empty()) return allow_empty ? absl::OkStatus() : Invalid(field, "must not be empty");
  if (s.size() > max_len) return Invalid(field, absl::StrCat("longer than ", max_len, " bytes"));
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp = 0;
    size_t n = 0;
    if (c < 0x80) {
      cp = c;
      n = 1;
    } else if ((c & 0xe0) == 0xc0) {
      cp = c & 0x1f;
      n = 2;
    } else if ((c & 0xf0) == 0xe0) {
      cp = c & 0x0f;
      n = 3;
    } else if ((c & 0xf8) == 0xf0) {
      cp = c & 0x07;
      n = 4;
    } else {
      return Invalid(field, "is not valid UTF-8");
    }
    if (i + n > s.size()) return Invalid(field, "is not valid UTF-8");
    for (size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return Invalid(field, "is not valid UTF-8");
      cp = (cp << 6) | (cc & 0x3f);
    }
    const bool overlong =
        (n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
    if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return Invalid(field, "is not valid UTF-8");
    }
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
      return Invalid(field, "contains a control character");
    }
    i += n;
  }
  return absl::OkStatus();
}

absl::Status ValidateArgKey(absl::string_view field, absl::string_view key) {
  if (key.empty() || key.size() > kMaxArgKey) {
    return Invalid(field, absl::StrCat("key must be 1 to ", kMaxArgKey, " characters"));
  }
  if (!absl::ascii_islower(key[0])) return Invalid(field, "key must start with a-z");
  for (char c : key) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_')) {
      return Invalid(field, "key may contain only a-z, 0-9 and '_'");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateExec(absl::string_view /*op*/, const writeback::v1::ActionParams& params,
                          const std::string& f) {
  const auto& args = params.exec().args();
  if (args.size() > kMaxArgs) {
    return Invalid(f + "args", absl::StrCat("at most ", kMaxArgs, " entries"));
  }
  for (const auto& [k, v] : args) {
    const std::string field = absl::StrCat(f, "args[", absl::CHexEscape(k), "]");
    WB_RETURN_IF_ERROR(ValidateArgKey(field, k));
    WB_RETURN_IF_ERROR(ValidatePrintableUtf8(field, v, kMaxArgValue, true));
  }
  return absl::OkStatus();
}

}  // namespace

const ConnectorSpec& ExecSpec() {
  static const auto* spec = new ConnectorSpec{
      "exec",
      {"revoke", "disable", "remove", "restrict"},
      ValidateExec,
      [](absl::string_view object, absl::string_view field) {
        return ValidatePrintableUtf8(field, object, kMaxObject, false);
      },
  };
  return *spec;
}

}  // namespace wb::actions
