// Connector type "postgres": PostgreSQL roles as non-human identities
// (libpq). Operations (writeback.v1.PostgresParams; docs/connectors/
// postgres.md): disable_login, terminate_sessions, revoke_privileges,
// reduce_to_read_only, set_password, expire_password, drop_role.
//
// Config (writeback.v1.PostgresConfig): where and as whom to connect. The
// connector's own password is read from password_file at every connection
// (never from the YAML, never logged). sslmode defaults to verify-full;
// "disable" is accepted only for a loopback host or a Unix socket directory.
//
// Target object: a role name (1 to 63 bytes of UTF-8, no NUL), refused with
// INVALID_ARGUMENT otherwise; PERMISSION_DENIED for the connector's own
// role, a protected role, or one missing from a non-empty allowed_roles.
//
// SQL: every statement is one PQexecParams call; values are bound; every
// identifier, including names read back from the catalog, is quoted with
// PQescapeIdentifier. The only literal is the SCRAM verifier of
// set_password (ALTER ROLE takes no parameters), validated against the
// verifier grammar and quoted with PQescapeLiteral.
//
// Plan.state binds the plan to the operation, the role (name and oid) and a
// digest of the catalog state the operation depends on (login flag, validity,
// password digest; or the role's direct grants in the schema). Apply
// re-reads it, in the same transaction as the change, and refuses with
// FAILED_PRECONDITION if it moved. terminate_sessions binds only the role.
//
// Verify observes the catalog (pg_roles, pg_authid when readable,
// pg_stat_activity, has_*_privilege) and, where a LoginProbe is configured for
// the role, tries the old credential; evidence says which observation proved
// what (a refused login alone proves nothing).
//
// Thread-safety: all methods may be called concurrently; each call uses its
// own connection.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "connectors/connector.h"
#include "connectors/postgres/pg_session.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors {

class PostgresConnector final : public Connector {
 public:
  // Validates cfg (settings must be postgres); errors name the field, e.g.
  // "connectors[db].postgres.sslmode: ...".
  static absl::StatusOr<std::unique_ptr<Connector>> Create(
      const writeback::v1::ConnectorInstanceConfig& cfg);

  absl::string_view type() const override { return "postgres"; }
  const std::string& instance_name() const override { return name_; }
  absl::StatusOr<writeback::v1::Plan> PlanChange(const CallContext& ctx,
                                                 const Action& action) override;
  absl::StatusOr<writeback::v1::ApplyResult> Apply(const CallContext& ctx, const Action& action,
                                                   const writeback::v1::Plan& plan) override;
  absl::StatusOr<writeback::v1::Verification> Verify(const CallContext& ctx,
                                                     const Action& action) override;
  // Connects with the configured credential; refuses a standby.
  absl::Status Check(const CallContext& ctx) override;

 private:
  PostgresConnector(std::string name, writeback::v1::PostgresConfig cfg)
      : name_(std::move(name)), cfg_(std::move(cfg)) {}

  absl::Status Authorize(const Action& action) const;
  absl::StatusOr<pg::ConnParams> ConnectionParams(const CallContext& ctx, const std::string& user,
                                                  const std::string& password_file) const;
  absl::StatusOr<std::unique_ptr<pg::Session>> Connect(const CallContext& ctx) const;

  const std::string name_;
  const writeback::v1::PostgresConfig cfg_;
};

}  // namespace wb::connectors
