// The vault connector class: configuration, resolving an action, and the
// dispatch of PlanChange / Apply / Verify to the operations
// (connectors/vault/vault_internal.h: vault_kv.cc, vault_credentials.cc,
// vault_policy.cc).
#include "connectors/vault/vault.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/actions/actions.h"
#include "common/status/macros.h"
#include "connectors/util/connector_util.h"
#include "connectors/vault/vault_internal.h"
#include "connectors/vault/vault_path.h"

namespace wb::connectors {
namespace {

using util::CheckDeadline;

using json = nlohmann::json;
using vault::VaultClient;
using vault::VaultResponse;
using vault_ops::Findings;
using vault_ops::HttpError;
using vault_ops::Invalid;
using vault_ops::Target;

using vault_ops::ApplyKvMetadata;
using vault_ops::ApplyKvVersions;
using vault_ops::ApplyLease;
using vault_ops::ApplyPolicy;
using vault_ops::ApplySecretId;
using vault_ops::ApplyToken;
using vault_ops::PlanKvMetadata;
using vault_ops::PlanKvVersions;
using vault_ops::PlanLease;
using vault_ops::PlanPolicy;
using vault_ops::PlanSecretId;
using vault_ops::PlanToken;
using vault_ops::VerifyKvMetadata;
using vault_ops::VerifyKvVersions;
using vault_ops::VerifyLease;
using vault_ops::VerifyPolicy;
using vault_ops::VerifySecretId;
using vault_ops::VerifyToken;

constexpr absl::string_view kType = "vault";

}  // namespace

// ----------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Connector>> VaultConnector::Create(
    const writeback::v1::ConnectorInstanceConfig& cfg) {
  const std::string where = absl::StrCat("connectors[", cfg.name(), "].vault");
  if (cfg.settings_case() != writeback::v1::ConnectorInstanceConfig::kVault) {
    return Invalid(where, "missing: a connector of type vault needs vault settings");
  }
  const auto& v = cfg.vault();
  for (int i = 0; i < v.allowed_kv_mounts_size(); ++i) {
    WB_RETURN_IF_ERROR(vault::ValidatePath(absl::StrCat(where, ".allowed_kv_mounts[", i, "]"),
                                           v.allowed_kv_mounts(i)));
  }
  for (int i = 0; i < v.allowed_policies_size(); ++i) {
    WB_RETURN_IF_ERROR(vault::ValidatePolicyName(absl::StrCat(where, ".allowed_policies[", i, "]"),
                                                 v.allowed_policies(i)));
  }
  WB_ASSIGN_OR_RETURN(auto client, VaultClient::Create(v, where));
  return std::unique_ptr<Connector>(new VaultConnector(cfg.name(), v, std::move(client)));
}

namespace {

absl::StatusOr<Target> Resolve(const writeback::v1::VaultConfig& cfg, const std::string& instance,
                               const Action& a) {
  WB_RETURN_IF_ERROR(actions::ValidateAction(kType, a.operation, a.params));
  WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, a.object, "target"));
  const auto& p = a.params.vault();
  Target t;
  t.op = a.operation;
  t.object = a.object;
  t.mount = p.mount();
  t.versions.assign(p.versions().begin(), p.versions().end());
  t.role = p.role();
  t.policy = p.policy();
  t.token_accessor = p.token_accessor();
  if (t.op == "token_revoke_accessor" || t.op == "approle_destroy_secret_id") {
    WB_RETURN_IF_ERROR(vault::ValidateAccessor("target", t.object));
  }
  if (t.op == "token_revoke_accessor") t.token_accessor = t.object;
  if (t.op == "approle_destroy_secret_id" && t.mount.empty()) t.mount = "approle";
  if (t.op == "policy_replace") {
    WB_RETURN_IF_ERROR(vault::ValidatePolicyName("target", t.object));
    if (cfg.allowed_policies_size() > 0 &&
        std::find(cfg.allowed_policies().begin(), cfg.allowed_policies().end(), t.object) ==
            cfg.allowed_policies().end()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "target: policy '", t.object, "' is not in allowed_policies of connector ", instance));
    }
  }
  if (t.kv() && cfg.allowed_kv_mounts_size() > 0 &&
      std::find(cfg.allowed_kv_mounts().begin(), cfg.allowed_kv_mounts().end(), t.mount) ==
          cfg.allowed_kv_mounts().end()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "params.vault.mount: '", t.mount, "' is not in allowed_kv_mounts of connector ", instance));
  }
  return t;
}

absl::StatusOr<json> ParseState(const std::string& state) {
  json st = json::parse(state, nullptr, /*allow_exceptions=*/false);
  if (st.is_discarded() || !st.is_object()) {
    return Invalid("plan.state", "not a plan made by a vault connector");
  }
  return st;
}

}  // namespace

absl::StatusOr<writeback::v1::Plan> VaultConnector::PlanChange(const CallContext& ctx,
                                                               const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_ASSIGN_OR_RETURN(const Target t, Resolve(cfg_, name_, action));
  VaultClient& c = *client_;
  writeback::v1::Plan plan;
  json state = {{"op", t.op}};
  if (t.op == "kv_delete" || t.op == "kv_destroy" || t.op == "kv_destroy_and_revoke_token") {
    WB_ASSIGN_OR_RETURN(state["kv"], PlanKvVersions(c, ctx, t, &plan));
  } else if (t.op == "kv_delete_metadata") {
    WB_ASSIGN_OR_RETURN(state["kv"], PlanKvMetadata(c, ctx, t, &plan));
  } else if (t.op == "approle_destroy_secret_id") {
    WB_ASSIGN_OR_RETURN(state["secret_id"], PlanSecretId(c, ctx, t, &plan));
  } else if (t.op == "lease_revoke" || t.op == "lease_revoke_prefix") {
    WB_ASSIGN_OR_RETURN(state["lease"], PlanLease(c, ctx, t, &plan));
  } else if (t.op == "policy_replace") {
    WB_ASSIGN_OR_RETURN(state["policy"], PlanPolicy(c, ctx, t, &plan));
  }
  if (t.op == "token_revoke_accessor" || t.op == "kv_destroy_and_revoke_token") {
    WB_ASSIGN_OR_RETURN(state["token"], PlanToken(c, ctx, t.token_accessor, &plan));
  }
  plan.set_no_change(plan.changes_size() == 0);
  plan.set_state(state.dump());
  plan.set_summary(plan.no_change() ? absl::StrCat(t.op, " ", t.object, ": nothing to change")
                                    : absl::StrCat(t.op, " ", t.object, ": ",
                                                   absl::StrJoin(plan.changes(), "; ")));
  return plan;
}

absl::StatusOr<writeback::v1::ApplyResult> VaultConnector::Apply(const CallContext& ctx,
                                                                 const Action& action,
                                                                 const writeback::v1::Plan& plan) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_ASSIGN_OR_RETURN(const Target t, Resolve(cfg_, name_, action));
  WB_ASSIGN_OR_RETURN(const json st, ParseState(plan.state()));
  if (st.value("op", "") != t.op) return Invalid("plan.state", "made for another operation");
  writeback::v1::ApplyResult result;
  if (plan.no_change()) return result;
  absl::MutexLock lock(&apply_mu_);
  VaultClient& c = *client_;
  std::vector<std::string> changes;
  auto add = [&](absl::StatusOr<std::vector<std::string>> r) -> absl::Status {
    if (!r.ok()) return r.status();
    for (auto& s : *r) changes.push_back(std::move(s));
    return absl::OkStatus();
  };
  const json none;
  auto part = [&](const char* key) -> const json& { return st.contains(key) ? st[key] : none; };
  if (t.op == "kv_delete" || t.op == "kv_destroy" || t.op == "kv_destroy_and_revoke_token") {
    WB_RETURN_IF_ERROR(add(ApplyKvVersions(c, ctx, t, part("kv"))));
  } else if (t.op == "kv_delete_metadata") {
    WB_RETURN_IF_ERROR(add(ApplyKvMetadata(c, ctx, t, part("kv"))));
  } else if (t.op == "approle_destroy_secret_id") {
    WB_RETURN_IF_ERROR(add(ApplySecretId(c, ctx, t)));
  } else if (t.op == "lease_revoke" || t.op == "lease_revoke_prefix") {
    WB_RETURN_IF_ERROR(add(ApplyLease(c, ctx, t)));
  } else if (t.op == "policy_replace") {
    WB_RETURN_IF_ERROR(add(ApplyPolicy(c, ctx, t, part("policy"))));
  }
  if (t.op == "token_revoke_accessor" || t.op == "kv_destroy_and_revoke_token") {
    WB_RETURN_IF_ERROR(add(ApplyToken(c, ctx, t.token_accessor)));
  }
  for (auto& s : changes) result.add_changes(std::move(s));
  return result;
}

absl::StatusOr<writeback::v1::Verification> VaultConnector::Verify(const CallContext& ctx,
                                                                   const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_ASSIGN_OR_RETURN(const Target t, Resolve(cfg_, name_, action));
  if (ctx.reverification && t.op == "lease_revoke_prefix") {
    // Leases issued under the prefix since are legitimate: nothing lasting
    // to re-verify (the control plane does not schedule it; an operator
    // asking gets this answer).
    writeback::v1::Verification v;
    v.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
    v.set_detail(
        "lease_revoke_prefix has no lasting effect to re-verify (it revoked the leases under the "
        "prefix when it ran)");
    return v;
  }
  VaultClient& c = *client_;
  Findings f;
  if (t.op == "kv_delete" || t.op == "kv_destroy" || t.op == "kv_destroy_and_revoke_token") {
    WB_ASSIGN_OR_RETURN(Findings k, VerifyKvVersions(c, ctx, t));
    f.Merge(std::move(k));
  } else if (t.op == "kv_delete_metadata") {
    WB_ASSIGN_OR_RETURN(Findings k, VerifyKvMetadata(c, ctx, t));
    f.Merge(std::move(k));
  } else if (t.op == "approle_destroy_secret_id") {
    WB_ASSIGN_OR_RETURN(Findings k, VerifySecretId(c, ctx, t));
    f.Merge(std::move(k));
  } else if (t.op == "lease_revoke" || t.op == "lease_revoke_prefix") {
    WB_ASSIGN_OR_RETURN(Findings k, VerifyLease(c, ctx, t));
    f.Merge(std::move(k));
  } else if (t.op == "policy_replace") {
    WB_ASSIGN_OR_RETURN(Findings k, VerifyPolicy(c, ctx, t));
    f.Merge(std::move(k));
  }
  if (t.op == "token_revoke_accessor" || t.op == "kv_destroy_and_revoke_token") {
    WB_ASSIGN_OR_RETURN(Findings k, VerifyToken(c, ctx, t.token_accessor));
    f.Merge(std::move(k));
  }
  return f.Conclude();
}

absl::Status VaultConnector::Check(const CallContext& ctx) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_ASSIGN_OR_RETURN(VaultResponse r, client_->Call(ctx, "GET", "auth/token/lookup-self"));
  if (r.status == 200) return absl::OkStatus();
  return HttpError(absl::StrCat("GET ", client_->address(), "/v1/auth/token/lookup-self"), r);
}

}  // namespace wb::connectors
