// Connector type "redis": Redis ACL users as non-human identities (hiredis).
// Operations (writeback.v1.RedisParams; docs/connectors/redis.md):
// disable_user, kill_connections, reset_passwords, rotate_password,
// remove_permissions, delete_user. Changes are persisted with ACL SAVE when
// the server has an ACL file (config acl_save: auto, the default, asks
// CONFIG GET aclfile; always; never).
//
// Config (writeback.v1.RedisConfig): address host:port, the connector's ACL
// user and a password_file (read at each connection, never logged).
// hiredis 0.14 has no TLS: a non-loopback address is refused unless
// allow_plaintext_remote is set (for a local TLS tunnel).
//
// Target object: an ACL user name (no whitespace or control characters, at
// most 512 bytes), refused with INVALID_ARGUMENT otherwise; PERMISSION_DENIED
// for the connector's own user, a protected user, or one missing from a
// non-empty allowed_users.
//
// Every command is an argument vector (redisCommandArgv); names read back
// from the server (key patterns) are sent back the same way.
//
// Plan.state binds the plan to the operation, the user and a digest of its
// ACL GETUSER reply; Apply refuses with FAILED_PRECONDITION if it moved.
// kill_connections binds only the user. rotate_password's precondition is
// the complete set of current password hashes.
//
// Verify reads ACL GETUSER, CLIENT LIST, ACL DRYRUN (for removed commands)
// and, where a LoginProbe is configured, tries AUTH with the old credential
// on a fresh connection; evidence says which observation proved what
// (WRONGPASS alone is the same for a wrong password, a disabled user and a
// missing one).
//
// Thread-safety: all methods may be called concurrently; each call uses its
// own connection.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "connectors/connector.h"
#include "connectors/redis/resp_session.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors {

class RedisConnector final : public Connector {
 public:
  // Validates cfg (settings must be redis); errors name the field.
  static absl::StatusOr<std::unique_ptr<Connector>> Create(
      const writeback::v1::ConnectorInstanceConfig& cfg);

  absl::string_view type() const override { return "redis"; }
  const std::string& instance_name() const override { return name_; }
  absl::StatusOr<writeback::v1::Plan> PlanChange(const CallContext& ctx,
                                                 const Action& action) override;
  absl::StatusOr<writeback::v1::ApplyResult> Apply(const CallContext& ctx, const Action& action,
                                                   const writeback::v1::Plan& plan) override;
  absl::StatusOr<writeback::v1::Verification> Verify(const CallContext& ctx,
                                                     const Action& action) override;
  // Connects, authenticates and PINGs.
  absl::Status Check(const CallContext& ctx) override;

 private:
  RedisConnector(std::string name, writeback::v1::RedisConfig cfg, std::string host, int port)
      : name_(std::move(name)), cfg_(std::move(cfg)), host_(std::move(host)), port_(port) {}

  absl::Status Authorize(const Action& action) const;
  absl::Duration Timeout(const CallContext& ctx) const;
  absl::StatusOr<std::unique_ptr<resp::Session>> Connect(const CallContext& ctx) const;

  const std::string name_;
  const writeback::v1::RedisConfig cfg_;
  const std::string host_;
  const int port_;
};

}  // namespace wb::connectors
