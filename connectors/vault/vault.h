// Connector type "vault": HashiCorp Vault and OpenBao (one HTTP API),
// docs/connectors/vault.md. Operations and their target objects are listed
// on writeback.v1.VaultParams (proto/writeback/v1/action.proto).
//
// What each verb does (paths below /v1/, every name URL-encoded component by
// component, connectors/vault/vault_path.h):
//   kv_delete / kv_destroy   plan: GET <mount>/metadata/<path>; apply: POST
//       <mount>/delete|destroy/<path> {"versions": [...]} with the explicit
//       version numbers found by the plan (also for "the latest version", so
//       a version written meanwhile is never hit); verify: GET
//       <mount>/data/<path>?version=N must be a 404 whose metadata says
//       deleted (deletion_time) or destroyed.
//   kv_delete_metadata       DELETE <mount>/metadata/<path>; verify: the
//       metadata reads 404.
//   token_revoke_accessor    POST auth/token/revoke-accessor — Vault revokes
//       the token AND its children; the API has no accessor-based orphan
//       revocation (revoke-orphan needs the token itself, which a task never
//       carries). Verify: auth/token/lookup-accessor answers 400 "invalid
//       accessor".
//   approle_destroy_secret_id POST auth/<mount>/role/<role>/
//       secret-id-accessor/destroy; verify: .../secret-id-accessor/lookup
//       answers 404 (or, before Vault 1.9, 500 "failed to find accessor
//       entry").
//   lease_revoke / lease_revoke_prefix  POST sys/leases/revoke (sync: true) /
//       sys/leases/revoke-prefix/<prefix> (sync: true); verify: sys/leases/
//       lookup answers 400 "invalid lease" / LIST sys/leases/lookup/<prefix>/
//       answers 404.
//   policy_replace           plan captures the old rules (plan.state keeps
//       the whole document for rollback); apply POSTs sys/policy/<name>;
//       verify reads it back and compares byte for byte. Never creates a
//       policy that does not exist.
//   kv_destroy_and_revoke_token  kv_destroy of the secret plus
//       token_revoke_accessor of params.token_accessor; VERIFIED only when
//       both checks are.
//
// Honest outcomes: a conclusion that rests on an absence (404, "invalid
// accessor", "invalid lease") counts only when sys/capabilities-self shows
// that the agent's token may read what was checked; otherwise Verify says
// UNVERIFIED (and PlanChange refuses to call it "no change", with
// PERMISSION_DENIED naming the missing capability). A 403 is never an
// effect. Evidence never contains secret data: KV reads record metadata and
// status codes only.
//
// Plan.state is JSON private to this connector. Stale plans: KV operations
// and policy_replace refuse (FAILED_PRECONDITION) when the secret's
// current_version or the policy's rules changed since the plan; revocations
// act on the target as it is (revoking twice is harmless).
//
// Thread-safety: all methods may be called concurrently; Apply calls are
// serialised per instance.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "connectors/connector.h"
#include "connectors/vault/vault_client.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors {

class VaultConnector final : public Connector {
 public:
  // Validates cfg (errors name the field, e.g.
  // "connectors[v].vault.address: ..."). Reads no credential yet.
  static absl::StatusOr<std::unique_ptr<Connector>> Create(
      const writeback::v1::ConnectorInstanceConfig& cfg);

  absl::string_view type() const override { return "vault"; }
  const std::string& instance_name() const override { return name_; }
  absl::StatusOr<writeback::v1::Plan> PlanChange(const CallContext& ctx,
                                                 const Action& action) override;
  absl::StatusOr<writeback::v1::ApplyResult> Apply(const CallContext& ctx, const Action& action,
                                                   const writeback::v1::Plan& plan) override;
  absl::StatusOr<writeback::v1::Verification> Verify(const CallContext& ctx,
                                                     const Action& action) override;
  // GET auth/token/lookup-self with the agent's credential.
  absl::Status Check(const CallContext& ctx) override;

 private:
  VaultConnector(std::string name, writeback::v1::VaultConfig cfg,
                 std::unique_ptr<vault::VaultClient> client)
      : name_(std::move(name)), cfg_(std::move(cfg)), client_(std::move(client)) {}

  const std::string name_;
  const writeback::v1::VaultConfig cfg_;
  const std::unique_ptr<vault::VaultClient> client_;
  absl::Mutex apply_mu_;
};

}  // namespace wb::connectors
