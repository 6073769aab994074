#include "common/actions/action_class.h"

#include <map>
#include <utility>

namespace wb::actions {
namespace {

using Key = std::pair<std::string, std::string>;

const std::map<Key, std::string, std::less<>>& Table() {
  static const auto* table = new std::map<Key, std::string, std::less<>>{
      {{"ssh_authorized_keys", "remove_key"}, "revoke"},
      {{"ssh_authorized_keys", "remove_by_comment"}, "revoke"},
      {{"ssh_authorized_keys", "exclusive_set"}, "revoke"},
      {{"posix_account", "lock"}, "disable"},
      {{"posix_account", "expire"}, "disable"},
      {{"posix_account", "set_shell"}, "disable"},
      {{"posix_account", "remove_group"}, "revoke"},
      {{"posix_account", "delete"}, "delete"},
      {{"sudoers", "remove_user_rules"}, "revoke"},
      {{"sudoers", "remove_file"}, "revoke"},
      {{"secret_file", "remove_env_key"}, "rotate"},
      {{"secret_file", "remove_json_path"}, "rotate"},
      {{"secret_file", "remove_ini_key"}, "rotate"},
      {{"secret_file", "remove_ini_section"}, "rotate"},
      {{"secret_file", "delete_file"}, "delete"},
      {{"postgres", "disable_login"}, "disable"},
      {{"postgres", "terminate_sessions"}, "disable"},
      {{"postgres", "revoke_privileges"}, "revoke"},
      {{"postgres", "reduce_to_read_only"}, "revoke"},
      {{"postgres", "set_password"}, "rotate"},
      {{"postgres", "expire_password"}, "disable"},
      {{"postgres", "drop_role"}, "delete"},
      {{"redis", "disable_user"}, "disable"},
      {{"redis", "kill_connections"}, "disable"},
      {{"redis", "reset_passwords"}, "rotate"},
      {{"redis", "rotate_password"}, "rotate"},
      {{"redis", "remove_permissions"}, "revoke"},
      {{"redis", "delete_user"}, "delete"},
      {{"ldap", "lock"}, "disable"},
      {{"ldap", "remove_from_groups"}, "revoke"},
      {{"ldap", "replace_password"}, "rotate"},
      {{"ldap", "remove_password"}, "rotate"},
      {{"ldap", "delete_entry"}, "delete"},
      {{"vault", "kv_delete"}, "revoke"},
      {{"vault", "kv_destroy"}, "delete"},
      {{"vault", "kv_delete_metadata"}, "delete"},
      {{"vault", "kv_destroy_and_revoke_token"}, "delete"},
      {{"vault", "token_revoke_accessor"}, "revoke"},
      {{"vault", "approle_destroy_secret_id"}, "revoke"},
      {{"vault", "lease_revoke"}, "revoke"},
      {{"vault", "lease_revoke_prefix"}, "revoke"},
      {{"vault", "policy_replace"}, "grant"},
      {{"exec", "revoke"}, "delete"},
      {{"exec", "disable"}, "delete"},
      {{"exec", "remove"}, "delete"},
      {{"exec", "restrict"}, "delete"},
  };
  return *table;
}

}  // namespace

const std::vector<std::string>& ActionClasses() {
  static const auto* classes =
      new std::vector<std::string>{"disable", "revoke", "rotate", "delete", "grant"};
  return *classes;
}

absl::string_view ActionClassOf(absl::string_view connector_type, absl::string_view operation) {
  const auto& t = Table();
  auto it = t.find(Key(std::string(connector_type), std::string(operation)));
  if (it == t.end()) return "";
  return it->second;
}

}  // namespace wb::actions
