// Connector type "posix_account": local (service) accounts. Operations:
// lock, expire, set_shell, remove_group, delete (common/actions/
// posix_account.cc; docs/connectors/posix_account.md).
//
// Changes are made by the system's own tools (usermod, chage, gpasswd,
// userdel), which take the same locks as every other account tool, through
// execve with an argument vector — never a shell. With a configured root
// other than "/", every tool gets its prefix option (usermod/userdel -P,
// chage -R, gpasswd -Q) so the instance works on <root>/etc.
//
// Verify never trusts a tool's exit code: it reads passwd, shadow, group and
// gshadow under the root again and checks the account's state there; if an
// SSH login probe is configured (and there is an identity file for the user)
// it then tries to log in as the user and expects refusal.
//
// Target object: a user name (wb::actions::ValidatePosixUserName). Refused:
// a user not in allowed_users (PERMISSION_DENIED), an account with uid 0
// (FAILED_PRECONDITION; never touched). An account that does not exist is
// already compliant for every operation.
//
// Plan.state binds the plan to the account's records (passwd line, shadow
// fields other than the password hash, group memberships); Apply refuses
// with FAILED_PRECONDITION if they changed since the plan. It also carries
// the before-state for a later rollback: old shell, groups, lock and expiry.
// The password hash is never read into memory beyond parsing, never stored,
// never logged.
//
// Thread-safety: all methods may be called concurrently; Apply calls are
// serialised per instance.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "connectors/connector.h"
#include "connectors/posix_account/account_db.h"
#include "connectors/probes/ssh_probe.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors {

class PosixAccountConnector final : public Connector {
 public:
  // Validates cfg (settings must be posix_account; errors name the field,
  // e.g. "connectors[hosts].posix_account.root: must be an absolute path").
  static absl::StatusOr<std::unique_ptr<Connector>> Create(
      const writeback::v1::ConnectorInstanceConfig& cfg);

  absl::string_view type() const override { return "posix_account"; }
  const std::string& instance_name() const override { return name_; }
  absl::StatusOr<writeback::v1::Plan> PlanChange(const CallContext& ctx,
                                                 const Action& action) override;
  absl::StatusOr<writeback::v1::ApplyResult> Apply(const CallContext& ctx, const Action& action,
                                                   const writeback::v1::Plan& plan) override;
  absl::StatusOr<writeback::v1::Verification> Verify(const CallContext& ctx,
                                                     const Action& action) override;
  // OK iff the account databases under the root are readable and the tools
  // exist and are executable.
  absl::Status Check(const CallContext& ctx) override;

 private:
  struct Tools {
    std::string usermod, chage, gpasswd, userdel;
  };
  PosixAccountConnector(std::string name, writeback::v1::PosixAccountConfig cfg, std::string root,
                        Tools tools, std::optional<probes::SshEndpoint> probe)
      : name_(std::move(name)),
        cfg_(std::move(cfg)),
        root_(std::move(root)),
        tools_(std::move(tools)),
        probe_(std::move(probe)) {}

  absl::Status ValidateAndAuthorize(const Action& action) const;
  // Tool argv prefix for the configured root ({} for "/").
  std::vector<std::string> ToolArgv(const std::string& tool) const;
  std::vector<std::string> ApplyArgv(const Action& action) const;
  std::string HostPath(const std::string& path_in_root) const;

  const std::string name_;
  const writeback::v1::PosixAccountConfig cfg_;
  const std::string root_;  // "/" or an absolute directory without trailing '/'
  const Tools tools_;
  const std::optional<probes::SshEndpoint> probe_;
  absl::Mutex apply_mu_;
};

}  // namespace wb::connectors
