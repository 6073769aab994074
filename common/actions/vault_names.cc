#include "common/actions/vault_names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace wb::actions::vault {
namespace {

constexpr size_t kMaxPathBytes = 1024;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

}  // namespace

absl::Status ValidatePath(absl::string_view field, absl::string_view path) {
  if (path.empty()) return Invalid(field, "must not be empty");
  if (path.size() > kMaxPathBytes) {
    return Invalid(field, absl::StrCat("longer than ", kMaxPathBytes, " bytes"));
  }
  for (unsigned char c : path) {
    if (c < 0x20 || c > 0x7e) {
      return Invalid(field, "may contain only printable ASCII characters");
    }
  }
  for (absl::string_view comp : absl::StrSplit(path, '/')) {
    if (comp.empty()) {
      return Invalid(field, "must not contain an empty component (leading, trailing or '//')");
    }
    if (comp == "." || comp == "..") {
      return Invalid(field, "must not contain '.' or '..' components");
    }
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

absl::Status ValidateRoleName(absl::string_view field, absl::string_view name) {
  if (name.empty()) return Invalid(field, "must not be empty");
  if (name.size() > 128) return Invalid(field, "longer than 128 characters");
  if (!absl::ascii_isalnum(name[0])) {
    return Invalid(field, "must start with a letter or a digit");
  }
  for (char c : name) {
    if (!(absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '@' || c == '-')) {
      return Invalid(field, "may contain only letters, digits, '_', '.', '@' and '-'");
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

}  // namespace wb::actions::vault
