// The "vault" connector type: HashiCorp Vault / OpenBao (connectors/vault).
// Grammars here are the ones both sides can check without knowing the
// operation of a target; the connector adds the per-operation ones
// (accessors, policy names) and URL-encodes every path component.
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/actions/actions.h"
#include "common/actions/spec.h"
#include "common/actions/vault_names.h"

namespace wb::actions {
namespace {

constexpr size_t kMaxPolicyBytes = 64 * 1024;
constexpr int kMaxVersions = 100;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// An ACL policy document (HCL or JSON): text with newlines and tabs, no other
// control characters.
absl::Status ValidatePolicyDocument(absl::string_view field, absl::string_view doc) {
  if (doc.empty()) return Invalid(field, "must not be empty");
  if (doc.size() > kMaxPolicyBytes) {
    return Invalid(field, absl::StrCat("longer than ", kMaxPolicyBytes, " bytes"));
  }
  for (unsigned char c : doc) {
    if ((c < 0x20 && c != '\n' && c != '\t' && c != '\r') || c == 0x7f) {
      return Invalid(field, "contains a control character other than newline or tab");
    }
  }
  return absl::OkStatus();
}

bool IsKvOperation(absl::string_view op) {
  return op == "kv_delete" || op == "kv_destroy" || op == "kv_delete_metadata" ||
         op == "kv_destroy_and_revoke_token";
}

bool TakesVersions(absl::string_view op) {
  return op == "kv_delete" || op == "kv_destroy" || op == "kv_destroy_and_revoke_token";
}

absl::Status ValidateVault(absl::string_view op, const writeback::v1::ActionParams& params,
                           const std::string& f) {
  const auto& p = params.vault();
  // mount
  if (IsKvOperation(op)) {
    WB_RETURN_IF_ERROR(vault::ValidatePath(f + "mount", p.mount()));
  } else if (op == "approle_destroy_secret_id") {
    if (!p.mount().empty()) WB_RETURN_IF_ERROR(vault::ValidatePath(f + "mount", p.mount()));
  } else if (!p.mount().empty()) {
    return Invalid(f + "mount", absl::StrCat("not used by ", op));
  }
  // versions
  if (TakesVersions(op)) {
    if (p.versions_size() > kMaxVersions) {
      return Invalid(f + "versions", absl::StrCat("at most ", kMaxVersions, " entries"));
    }
    std::set<uint64_t> seen;
    for (int i = 0; i < p.versions_size(); ++i) {
      const std::string vf = absl::StrCat(f, "versions[", i, "]");
      if (p.versions(i) == 0) return Invalid(vf, "versions start at 1");
      if (p.versions(i) > (uint64_t{1} << 53)) return Invalid(vf, "too large");
      if (!seen.insert(p.versions(i)).second) return Invalid(vf, "listed twice");
    }
  } else if (p.versions_size() > 0) {
    return Invalid(f + "versions", absl::StrCat("not used by ", op));
  }
  // role
  if (op == "approle_destroy_secret_id") {
    WB_RETURN_IF_ERROR(vault::ValidateRoleName(f + "role", p.role()));
  } else if (!p.role().empty()) {
    return Invalid(f + "role", absl::StrCat("not used by ", op));
  }
  // policy
  if (op == "policy_replace") {
    WB_RETURN_IF_ERROR(ValidatePolicyDocument(f + "policy", p.policy()));
  } else if (!p.policy().empty()) {
    return Invalid(f + "policy", absl::StrCat("not used by ", op));
  }
  // token_accessor
  if (op == "kv_destroy_and_revoke_token") {
    WB_RETURN_IF_ERROR(vault::ValidateAccessor(f + "token_accessor", p.token_accessor()));
  } else if (!p.token_accessor().empty()) {
    return Invalid(f + "token_accessor", absl::StrCat("not used by ", op));
  }
  return absl::OkStatus();
}

}  // namespace

const ConnectorSpec& VaultSpec() {
  static const auto* spec = new ConnectorSpec{
      "vault",
      {"kv_delete", "kv_destroy", "kv_delete_metadata", "kv_destroy_and_revoke_token",
       "token_revoke_accessor", "approle_destroy_secret_id", "lease_revoke", "lease_revoke_prefix",
       "policy_replace"},
      ValidateVault,
      [](absl::string_view object, absl::string_view field) {
        return vault::ValidatePath(field, object);
      },
  };
  return *spec;
}

}  // namespace wb::actions
