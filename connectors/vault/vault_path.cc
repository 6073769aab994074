#include "connectors/vault/vault_path.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace wb::connectors::vault {
namespace {

constexpr size_t kMaxPathBytes = 1024;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

bool Unreserved(char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

}  // namespace

absl::Status ValidatePath(absl::string_view field, absl::string_view path) {
  if (path.empty()) return Invalid(field, "must not be empty");
  if (path.size() > kMaxPathBytes) {
    return Invalid(field, absl::StrCat("longer than ", kMaxPathBytes, " bytes"));
  }
  for (unsigned char c : path) {
    if (c < 0x20 || c > 0x7e) return Invalid(field, "may contain only printable ASCII characters");
  }
  for (absl::string_view comp : absl::StrSplit(path, '/')) {
    if (comp.empty()) {
      return Invalid(field, "must not contain an empty component (leading, trailing or '//')");
    }
    if (comp == "." || comp == "..")
      return Invalid(field, "must not contain '.' or '..' components");
  }
  return absl::OkStatus();
}

absl::Status ValidateAccessor(absl::string_view field, absl::string_view a) {
  if (a.empty()) return Invalid(field, "must not be empty");
  if (a.size() > 128) return Invalid(field, "longer than 128 characters");
  if (a == "." || a == "..") return Invalid(field, "must not be '.' or '..'");
  for (char c : a) {
    if (!(absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-')) {
      return Invalid(field, "may contain only letters, digits, '.', '_' and '-'");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePolicyName(absl::string_view field, absl::string_view name) {
  if (name.empty()) return Invalid(field, "must not be empty");
  if (name.size() > 128) return Invalid(field, "longer than 128 characters");
  if (!(absl::ascii_islower(name[0]) || absl::ascii_isdigit(name[0]))) {
    return Invalid(field, "policy name must start with a-z or 0-9");
  }
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '.' || c == '-')) {
      return Invalid(field, "policy name may contain only a-z, 0-9, '_', '.' and '-'");
    }
  }
  if (name == "root") return Invalid(field, "the root policy cannot be replaced");
  return absl::OkStatus();
}

absl::Status ValidateNamespace(absl::string_view field, absl::string_view ns) {
  if (ns.empty()) return absl::OkStatus();
  return ValidatePath(field, ns);
}

std::string EncodeComponent(absl::string_view component) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(component.size());
  for (char c : component) {
    if (Unreserved(c)) {
      out.push_back(c);
    } else {
      const auto u = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0x0f]);
    }
  }
  return out;
}

std::string EncodePath(absl::string_view path) {
  return absl::StrJoin(absl::StrSplit(path, '/'), "/", [](std::string* out, absl::string_view c) {
    out->append(EncodeComponent(c));
  });
}

}  // namespace wb::connectors::vault
