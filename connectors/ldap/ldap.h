// Connector type "ldap": directory service accounts (libldap 2.5).
// Operations (writeback.v1.LdapParams; docs/connectors/ldap.md): lock,
// remove_from_groups, replace_password, remove_password, delete_entry.
//
// Config (writeback.v1.LdapConfig): ldaps://, or ldap:// with StartTLS; the
// server certificate is always verified (against ca_file if set). Plain
// ldap:// only with allow_plaintext_loopback and a loopback host (tests).
// The connector's bind password is read from password_file at every
// connection (never from the YAML, never logged).
//
// Target object: the value of the account's naming attribute; the DN is
// <user_rdn_attribute>=<RFC 4514-escaped object>,<user_base_dn>. Groups are
// found under group_base_dn with RFC 4515-escaped filters, and changed by
// the DNs the server returns. PERMISSION_DENIED for protected objects and
// for the connector's own DN.
//
// Plan.state binds the plan to the operation, the object and a digest of
// what the operation depends on (the lock attribute, the userPassword values,
// the groups that list the account); Apply refuses with FAILED_PRECONDITION
// if it moved.
//
// Verify reads the entry (lock attribute, userPassword, pwdPolicySubentry),
// the policy (pwdLockout), the groups that still list the account, the
// connections still bound as it (cn=Monitor, when monitor_dn is set; LDAP
// has no way to end them) and, where a LoginProbe is configured, binds with
// the old credential. Error 49 is the same for a bad password, a locked
// account and a missing entry, so the probe only corroborates the entry
// read; evidence says which observation proved what. An entry whose naming
// value is not exactly the object (a look-alike the DN resolves to) is
// refused by PlanChange and Apply; Verify reports FAILED when it undoes the
// effect and the same refusal otherwise, never VERIFIED.
//
// Thread-safety: all methods may be called concurrently; each call uses its
// own connection.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "connectors/connector.h"
#include "connectors/ldap/ldap_session.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors {

class LdapConnector final : public Connector {
 public:
  // Validates cfg (settings must be ldap); errors name the field.
  static absl::StatusOr<std::unique_ptr<Connector>> Create(
      const writeback::v1::ConnectorInstanceConfig& cfg);

  absl::string_view type() const override { return "ldap"; }
  const std::string& instance_name() const override { return name_; }
  absl::StatusOr<writeback::v1::Plan> PlanChange(const CallContext& ctx,
                                                 const Action& action) override;
  absl::StatusOr<writeback::v1::ApplyResult> Apply(const CallContext& ctx, const Action& action,
                                                   const writeback::v1::Plan& plan) override;
  absl::StatusOr<writeback::v1::Verification> Verify(const CallContext& ctx,
                                                     const Action& action) override;
  // Connects (with TLS as configured) and binds as bind_dn.
  absl::Status Check(const CallContext& ctx) override;

  // The DN of a target object (not validated here). For tests and docs.
  std::string DnOf(absl::string_view object) const;

 private:
  LdapConnector(std::string name, writeback::v1::LdapConfig cfg, ldapc::TlsMode tls)
      : name_(std::move(name)), cfg_(std::move(cfg)), tls_(std::move(tls)) {}

  absl::Status Authorize(const Action& action) const;
  absl::Duration Timeout(const CallContext& ctx) const;
  absl::StatusOr<std::unique_ptr<ldapc::Session>> Connect(const CallContext& ctx) const;

  const std::string name_;
  const writeback::v1::LdapConfig cfg_;
  const ldapc::TlsMode tls_;
};

}  // namespace wb::connectors
