#include "connectors/vault/vault_path.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace wb::connectors::vault {
namespace {

bool Unreserved(char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

}  // namespace

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
