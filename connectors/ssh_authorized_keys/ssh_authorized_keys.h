// Connector type "ssh_authorized_keys": removes SSH public keys from a local
// user's authorized_keys file. Operations: remove_key (by SHA256
// fingerprint), remove_by_comment, exclusive_set (keep only listed keys).
// See docs/connectors/ssh_authorized_keys.md.
//
// Config (writeback.v1.SshAuthorizedKeysConfig): path_template is absolute,
// contains "{user}" exactly once and no "", "." or ".." component; the
// directory before the component holding "{user}" is the trusted prefix
// (configured by the operator, symlinks there are followed). Everything
// from the "{user}" component on is opened relative to directory descriptors
// with O_NOFOLLOW (connectors/util/safe_file.h): a symlinked ~/.ssh or
// authorized_keys is refused, never followed.
//
// Target object: a user name (Debian's grammar, wb::actions::
// ValidatePosixUserName), refused (INVALID_ARGUMENT, field "target") if it
// does not match, and PERMISSION_DENIED if allowed_users is non-empty and
// does not list it.
//
// Plan.state (opaque to callers) binds the plan to the file path and the
// SHA-256 of the bytes read; Apply refuses with FAILED_PRECONDITION ("file
// changed since plan") if the file no longer has those bytes. A missing file
// (or missing directory on the way) means "no keys".
//
// Optional SSH probe (config `probe` + `probe_key_dir`): Apply keeps each
// removed public key (public material only) in probe_key_dir/<user>/; once
// the file no longer holds a matching key, Verify offers every kept key that
// the action matches to the configured sshd without a signature
// (probes::ProbeKeyOffer, "ssh_key_offer_probe" observations): refused keeps
// VERIFIED, accepted makes it FAILED (sshd still lets the key in, e.g. from
// another AuthorizedKeysFile), an unreachable sshd makes it UNVERIFIED.
//
// Thread-safety: all methods may be called concurrently; Apply calls are
// serialised per instance (each is one small file rewrite).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "connectors/connector.h"
#include "connectors/probes/ssh_probe.h"
#include "connectors/util/safe_file.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors {

class SshAuthorizedKeysConnector final : public Connector {
 public:
  // Validates cfg (settings must be ssh_authorized_keys; errors name the
  // field, e.g. "connectors[web].ssh_authorized_keys.path_template: ...").
  static absl::StatusOr<std::unique_ptr<Connector>> Create(
      const writeback::v1::ConnectorInstanceConfig& cfg);

  absl::string_view type() const override { return "ssh_authorized_keys"; }
  const std::string& instance_name() const override { return name_; }
  absl::StatusOr<writeback::v1::Plan> PlanChange(const CallContext& ctx,
                                                 const Action& action) override;
  absl::StatusOr<writeback::v1::ApplyResult> Apply(const CallContext& ctx, const Action& action,
                                                   const writeback::v1::Plan& plan) override;
  absl::StatusOr<writeback::v1::Verification> Verify(const CallContext& ctx,
                                                     const Action& action) override;
  // OK iff the trusted prefix directory of path_template exists.
  absl::Status Check(const CallContext& ctx) override;

  // The file location for `user` (not validated here). For tests and docs.
  util::FileLocation LocationFor(absl::string_view user) const;

 private:
  SshAuthorizedKeysConnector(std::string name, writeback::v1::SshAuthorizedKeysConfig cfg,
                             std::string trusted_dir, std::vector<std::string> components,
                             std::optional<probes::SshEndpoint> probe)
      : name_(std::move(name)),
        cfg_(std::move(cfg)),
        trusted_dir_(std::move(trusted_dir)),
        components_(std::move(components)),
        probe_(std::move(probe)) {}

  absl::StatusOr<util::FileLocation> ResolveTarget(const Action& action) const;

  const std::string name_;
  const writeback::v1::SshAuthorizedKeysConfig cfg_;
  // path_template split: trusted prefix, then the components from the one
  // holding "{user}" to the file name.
  const std::string trusted_dir_;
  const std::vector<std::string> components_;
  const std::optional<probes::SshEndpoint> probe_;
  absl::Mutex apply_mu_;
};

}  // namespace wb::connectors
