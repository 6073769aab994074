#include "common/actions/coverage.h"

#include <algorithm>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"

namespace wb::actions {
namespace {

bool In(absl::string_view op, std::initializer_list<absl::string_view> ops) {
  return std::find(ops.begin(), ops.end(), op) != ops.end();
}

std::string Because(const Effect& newer, const Effect& older, absl::string_view why) {
  return absl::StrCat(newer.operation, " covers ", older.operation, ": ", why);
}

std::optional<std::string> SshAuthorizedKeys(const Effect& n, const Effect& o) {
  const auto& np = n.params.ssh_authorized_keys();
  const auto& op = o.params.ssh_authorized_keys();
  if (n.operation == "exclusive_set" && o.operation == "remove_key") {
    const auto& keep = np.keep_fingerprints();
    if (std::find(keep.begin(), keep.end(), op.fingerprint()) == keep.end()) {
      return Because(n, o, absl::StrCat("the kept set excludes ", op.fingerprint()));
    }
  }
  return std::nullopt;
}

std::optional<std::string> Deletes(const Effect& n, const Effect& o, absl::string_view deleting,
                                   std::initializer_list<absl::string_view> covered,
                                   absl::string_view what) {
  if (n.operation == deleting && In(o.operation, covered)) {
    return Because(n, o, absl::StrCat("the ", what, " no longer exists"));
  }
  return std::nullopt;
}

std::optional<std::string> SecretFile(const Effect& n, const Effect& o) {
  if (n.operation == "delete_file") {
    return Because(n, o, "the file no longer exists");
  }
  if (n.operation == "remove_ini_section" && o.operation == "remove_ini_key" &&
      n.params.secret_file().section() == o.params.secret_file().section()) {
    return Because(n, o,
                   absl::StrCat("section '", n.params.secret_file().section(),
                                "' is removed with every key in it"));
  }
  return std::nullopt;
}

std::optional<std::string> Postgres(const Effect& n, const Effect& o) {
  if (auto r = Deletes(n, o, "drop_role",
                       {"disable_login", "terminate_sessions", "revoke_privileges",
                        "reduce_to_read_only", "expire_password"},
                       "role")) {
    return r;
  }
  if (n.operation == "disable_login" && o.operation == "terminate_sessions" &&
      !n.params.postgres().keep_sessions()) {
    return Because(n, o, "disable_login ends the role's sessions");
  }
  return std::nullopt;
}

std::optional<std::string> Redis(const Effect& n, const Effect& o) {
  if (auto r =
          Deletes(n, o, "delete_user",
                  {"disable_user", "kill_connections", "reset_passwords", "remove_permissions"},
                  "ACL user")) {
    return r;
  }
  if (n.operation == "disable_user" && o.operation == "kill_connections" &&
      !n.params.redis().keep_connections()) {
    return Because(n, o, "disable_user kills the user's connections");
  }
  return std::nullopt;
}

std::optional<std::string> Ldap(const Effect& n, const Effect& o) {
  if (n.operation != "delete_entry") return std::nullopt;
  if (In(o.operation, {"lock", "remove_password"})) {
    return Because(n, o, "the entry no longer exists");
  }
  if (o.operation == "remove_from_groups" && !n.params.ldap().keep_group_memberships()) {
    return Because(n, o, "delete_entry removes the entry from every group first");
  }
  return std::nullopt;
}

std::optional<std::string> Vault(const Effect& n, const Effect& o) {
  if (n.operation == "kv_delete_metadata" && In(o.operation, {"kv_delete", "kv_destroy"}) &&
      n.params.vault().mount() == o.params.vault().mount()) {
    return Because(n, o, "the secret's metadata and every version are deleted");
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> Covers(absl::string_view type, const Effect& newer,
                                  const Effect& older) {
  if (newer.operation == older.operation &&
      google::protobuf::util::MessageDifferencer::Equals(newer.params, older.params)) {
    return absl::StrCat("the same operation (", newer.operation, ") with the same parameters");
  }
  if (type == "ssh_authorized_keys") return SshAuthorizedKeys(newer, older);
  if (type == "posix_account") {
    return Deletes(newer, older, "delete", {"lock", "expire", "set_shell", "remove_group"},
                   "account");
  }
  if (type == "sudoers")
    return Deletes(newer, older, "remove_file", {"remove_user_rules"}, "drop-in");
  if (type == "secret_file") return SecretFile(newer, older);
  if (type == "postgres") return Postgres(newer, older);
  if (type == "redis") return Redis(newer, older);
  if (type == "ldap") return Ldap(newer, older);
  if (type == "vault") return Vault(newer, older);
  return std::nullopt;  // exec and unknown types: only identical decisions
}

}  // namespace wb::actions
