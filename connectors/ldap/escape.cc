#include "connectors/ldap/escape.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace wb::connectors::ldapesc {
namespace {

void AppendHex(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('\\');
  out.push_back(kHex[c >> 4]);
  out.push_back(kHex[c & 0xf]);
}

}  // namespace

std::string EscapeDnValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size() + 8);
  for (size_t i = 0; i < value.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    const bool first = i == 0;
    const bool last = i + 1 == value.size();
    if (c < 0x20 || c == 0x7f) {
      AppendHex(out, c);
    } else if (c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';' ||
               c == '=' || (first && (c == '#' || c == ' ')) || (last && c == ' ')) {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string MakeDn(absl::string_view attr, absl::string_view value, absl::string_view base) {
  return absl::StrCat(attr, "=", EscapeDnValue(value), base.empty() ? "" : ",", base);
}

std::string EscapeFilterValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size() + 8);
  for (char ch : value) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '*' || c == '(' || c == ')' || c == '\\' || c == 0) {
      AppendHex(out, c);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

bool IsAttributeName(absl::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  if (absl::ascii_isdigit(name[0])) {
    // Numeric OID: digits separated by single dots.
    bool dot = false;
    for (char c : name) {
      if (c == '.') {
        if (dot) return false;
        dot = true;
      } else if (absl::ascii_isdigit(c)) {
        dot = false;
      } else {
        return false;
      }
    }
    return !dot;
  }
  if (!absl::ascii_isalpha(name[0])) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '-') return false;
  }
  return true;
}

}  // namespace wb::connectors::ldapesc
