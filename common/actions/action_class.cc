#include "common/actions/action_class.h"

#include <map>
#include <utility>

namespace wb::actions {
namespace {

using Key = std::pair<std::string, std::string>;

constexpr Idempotency kYes = Idempotency::kIdempotent;
constexpr Idempotency kNo = Idempotency::kNotIdempotent;

// Why an operation is not re-run after an interrupted apply (docs/delivery.md).
constexpr absl::string_view kDestroys =
    "it destroys its target for good: a re-run would also destroy anything created under the "
    "same name since the interrupted run";
constexpr absl::string_view kEndsSessions =
    "it ends the sessions that exist when it runs: a re-run would also end sessions opened since "
    "the interrupted run";
constexpr absl::string_view kPostgresRotation =
    "a re-run recognises its own rotation only when the connector's role may read "
    "pg_authid.rolpassword, and would end sessions opened with the new password";
constexpr absl::string_view kRedisRotation =
    "a re-run after the rotation would end the connections opened since with the new password";
constexpr absl::string_view kLatestVersion =
    "without versions it soft-deletes the latest version, which a write since the interrupted run "
    "would have moved";
constexpr absl::string_view kLeasePrefix =
    "it revokes the leases under the prefix when it runs: a re-run would also revoke leases "
    "issued since the interrupted run";
constexpr absl::string_view kExec =
    "the program's effect is opaque to the agent: the instance must declare the operation in "
    "exec.idempotent_operations";

const std::map<Key, OperationTraits, std::less<>>& Table() {
  static const auto* table = new std::map<Key, OperationTraits, std::less<>>{
      {{"ssh_authorized_keys", "remove_key"}, {"revoke", kYes, {}}},
      {{"ssh_authorized_keys", "remove_by_comment"}, {"revoke", kYes, {}}},
      {{"ssh_authorized_keys", "exclusive_set"}, {"revoke", kYes, {}}},
      {{"posix_account", "lock"}, {"disable", kYes, {}}},
      {{"posix_account", "expire"}, {"disable", kYes, {}}},
      {{"posix_account", "set_shell"}, {"disable", kYes, {}}},
      {{"posix_account", "remove_group"}, {"revoke", kYes, {}}},
      {{"posix_account", "delete"}, {"delete", kNo, kDestroys}},
      {{"sudoers", "remove_user_rules"}, {"revoke", kYes, {}}},
      {{"sudoers", "remove_file"}, {"revoke", kYes, {}}},
      {{"secret_file", "remove_env_key"}, {"rotate", kYes, {}}},
      {{"secret_file", "remove_json_path"}, {"rotate", kYes, {}}},
      {{"secret_file", "remove_ini_key"}, {"rotate", kYes, {}}},
      {{"secret_file", "remove_ini_section"}, {"rotate", kYes, {}}},
      {{"secret_file", "delete_file"}, {"delete", kNo, kDestroys}},
      {{"postgres", "disable_login"}, {"disable", kYes, {}}},
      {{"postgres", "terminate_sessions"}, {"disable", kNo, kEndsSessions, true}},
      {{"postgres", "revoke_privileges"}, {"revoke", kYes, {}}},
      {{"postgres", "reduce_to_read_only"}, {"revoke", kYes, {}}},
      {{"postgres", "set_password"}, {"rotate", kNo, kPostgresRotation}},
      {{"postgres", "expire_password"}, {"disable", kYes, {}}},
      {{"postgres", "drop_role"}, {"delete", kNo, kDestroys}},
      {{"redis", "disable_user"}, {"disable", kYes, {}}},
      {{"redis", "kill_connections"}, {"disable", kNo, kEndsSessions, true}},
      {{"redis", "reset_passwords"}, {"rotate", kYes, {}}},
      {{"redis", "rotate_password"}, {"rotate", kNo, kRedisRotation}},
      {{"redis", "remove_permissions"}, {"revoke", kYes, {}}},
      {{"redis", "delete_user"}, {"delete", kNo, kDestroys}},
      {{"ldap", "lock"}, {"disable", kYes, {}}},
      {{"ldap", "remove_from_groups"}, {"revoke", kYes, {}}},
      {{"ldap", "replace_password"}, {"rotate", kYes, {}}},
      {{"ldap", "remove_password"}, {"rotate", kYes, {}}},
      {{"ldap", "delete_entry"}, {"delete", kNo, kDestroys}},
      {{"vault", "kv_delete"}, {"revoke", kNo, kLatestVersion}},
      {{"vault", "kv_destroy"}, {"delete", kNo, kDestroys}},
      {{"vault", "kv_delete_metadata"}, {"delete", kNo, kDestroys}},
      {{"vault", "kv_destroy_and_revoke_token"}, {"delete", kNo, kDestroys}},
      {{"vault", "token_revoke_accessor"}, {"revoke", kYes, {}}},
      {{"vault", "approle_destroy_secret_id"}, {"revoke", kYes, {}}},
      {{"vault", "lease_revoke"}, {"revoke", kYes, {}}},
      {{"vault", "lease_revoke_prefix"}, {"revoke", kNo, kLeasePrefix, true}},
      {{"vault", "policy_replace"}, {"grant", kYes, {}}},
      {{"exec", "revoke"}, {"delete", Idempotency::kDeclaredByInstance, kExec}},
      {{"exec", "disable"}, {"delete", Idempotency::kDeclaredByInstance, kExec}},
      {{"exec", "remove"}, {"delete", Idempotency::kDeclaredByInstance, kExec}},
      {{"exec", "restrict"}, {"delete", Idempotency::kDeclaredByInstance, kExec}},
  };
  return *table;
}

}  // namespace

const std::vector<std::string>& ActionClasses() {
  static const auto* classes =
      new std::vector<std::string>{"disable", "revoke", "rotate", "delete", "grant"};
  return *classes;
}

const OperationTraits* OperationTraitsOf(absl::string_view connector_type,
                                         absl::string_view operation) {
  const auto& t = Table();
  auto it = t.find(Key(std::string(connector_type), std::string(operation)));
  return it == t.end() ? nullptr : &it->second;
}

absl::string_view ActionClassOf(absl::string_view connector_type, absl::string_view operation) {
  const OperationTraits* t = OperationTraitsOf(connector_type, operation);
  return t == nullptr ? absl::string_view() : t->action_class;
}

}  // namespace wb::actions
