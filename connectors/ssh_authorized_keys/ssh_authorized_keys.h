// Connector type "ssh_authorized_keys": removes SSH public keys from a local
// user's authorized_keys file. Operations: remove_key (by SHA256
// fingerprint), remove_by_comment, exclusive_set (keep only listed keys).
// See docs/connectors/ssh_authorized_keys.md.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "connectors/connector.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors {

class SshAuthorizedKeysConnector final : public Connector {
 public:
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
  absl::Status Check(const CallContext& ctx) override;

 private:
  SshAuthorizedKeysConnector(std::string name, writeback::v1::SshAuthorizedKeysConfig cfg)
      : name_(std::move(name)), cfg_(std::move(cfg)) {}
  std::string name_;
  writeback::v1::SshAuthorizedKeysConfig cfg_;
};

}  // namespace wb::connectors
