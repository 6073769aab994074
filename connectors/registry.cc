#include "connectors/registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/actions/actions.h"
#include "common/tls/tls.h"
#include "connectors/exec/exec.h"
#include "connectors/ldap/ldap.h"
#include "connectors/posix_account/posix_account.h"
#include "connectors/postgres/postgres.h"
#include "connectors/redis/redis.h"
#include "connectors/secret_file/secret_file.h"
#include "connectors/ssh_authorized_keys/ssh_authorized_keys.h"
#include "connectors/sudoers/sudoers.h"
#include "connectors/vault/vault.h"

namespace wb::connectors {

absl::Status Registry::Register(const std::string& type, Factory factory) {
  if (!factories_.emplace(type, std::move(factory)).second) {
    return absl::AlreadyExistsError(absl::StrCat("connector type ", type, " registered twice"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Connector>> Registry::Create(
    const writeback::v1::ConnectorInstanceConfig& cfg) const {
  const std::string where = absl::StrCat("connectors[", cfg.name(), "]");
  if (auto s = tls::ValidateName(where + ".name", cfg.name()); !s.ok()) return s;
  auto it = factories_.find(cfg.type());
  if (it == factories_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".type: unknown connector type '", cfg.type(), "'"));
  }
  const auto& ops = actions::OperationsOf(cfg.type());
  for (const auto& op : cfg.allowed_operations()) {
    if (std::find(ops.begin(), ops.end(), op) == ops.end()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".allowed_operations: '", op,
                                                     "' is not an operation of ", cfg.type()));
    }
  }
  return it->second(cfg);
}

void RegisterBuiltinConnectors(Registry& registry) {
  (void)registry.Register("ssh_authorized_keys", &SshAuthorizedKeysConnector::Create);
  (void)registry.Register("posix_account", &PosixAccountConnector::Create);
  (void)registry.Register("sudoers", &SudoersConnector::Create);
  (void)registry.Register("secret_file", &SecretFileConnector::Create);
  (void)registry.Register("exec", &ExecConnector::Create);
  (void)registry.Register("postgres", &PostgresConnector::Create);
  (void)registry.Register("redis", &RedisConnector::Create);
  (void)registry.Register("ldap", &LdapConnector::Create);
  (void)registry.Register("vault", &VaultConnector::Create);
}

}  // namespace wb::connectors
