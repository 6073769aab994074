#include "common/trust/policy.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/actions/action_class.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "common/tls/tls.h"

namespace wb::trust {
namespace {

using writeback::v1::TrustPolicy;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("trust_policy.", field, ": ", why));
}

absl::Status CheckKey(absl::string_view field, const std::string& raw) {
  if (raw.size() != 32) {
    return Invalid(field,
                   absl::StrCat("must be a raw 32-byte Ed25519 key, got ", raw.size(), " bytes"));
  }
  if (auto k = crypto::Ed25519PublicKey::FromRaw(raw); !k.ok()) {
    return Invalid(field, k.status().message());
  }
  return absl::OkStatus();
}

absl::Status CheckName(absl::string_view field, const std::string& name) {
  if (name.empty()) return Invalid(field, "required");
  if (name.size() > 128) return Invalid(field, "at most 128 bytes");
  for (unsigned char ch : name) {
    if (ch < 0x20 || ch == 0x7f) return Invalid(field, "control characters are not allowed");
  }
  return absl::OkStatus();
}

absl::Status CheckIdentity(absl::string_view field, const std::string& id,
                           const std::string& trust_domain, tls::IdentityClass want) {
  auto parsed = tls::ParseSpiffeId(id);
  if (!parsed.ok() || parsed->cls != want || parsed->trust_domain != trust_domain) {
    return Invalid(field, absl::StrCat("'", id, "' is not an ", tls::IdentityClassName(want),
                                       " identity of trust domain ", trust_domain));
  }
  return absl::OkStatus();
}

absl::Status CheckBudget(absl::string_view field, const writeback::v1::RateBudget& b) {
  if (b.max_tasks() < 1) return Invalid(absl::StrCat(field, ".max_tasks"), "at least 1");
  if (b.window_seconds() < 1 || b.window_seconds() > kMaxRateWindowSeconds) {
    return Invalid(absl::StrCat(field, ".window_seconds"),
                   absl::StrCat("between 1 and ", kMaxRateWindowSeconds, " seconds"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePolicy(const TrustPolicy& p) {
  if (p.trust_domain().empty()) return Invalid("trust_domain", "required");
  if (p.version() == 0) return Invalid("version", "must be at least 1");
  if (p.dispatch_keys_size() == 0) return Invalid("dispatch_keys", "at least one key is required");
  if (p.dispatch_keys_size() > kMaxKeys) {
    return Invalid("dispatch_keys", absl::StrCat("at most ", kMaxKeys, " keys"));
  }
  std::set<std::string> keys;
  for (int i = 0; i < p.dispatch_keys_size(); ++i) {
    const std::string f = absl::StrCat("dispatch_keys[", i, "]");
    WB_RETURN_IF_ERROR(CheckName(f + ".name", p.dispatch_keys(i).name()));
    WB_RETURN_IF_ERROR(CheckKey(f + ".public_key", p.dispatch_keys(i).public_key()));
    if (!keys.insert(p.dispatch_keys(i).public_key()).second) {
      return Invalid(f + ".public_key", "listed twice");
    }
  }
  if (p.approvers_size() > kMaxApprovers) {
    return Invalid("approvers", absl::StrCat("at most ", kMaxApprovers, " approvers"));
  }
  std::set<std::string> names, identities, approver_keys;
  for (int i = 0; i < p.approvers_size(); ++i) {
    const auto& a = p.approvers(i);
    const std::string f = absl::StrCat("approvers[", i, "]");
    WB_RETURN_IF_ERROR(CheckName(f + ".name", a.name()));
    WB_RETURN_IF_ERROR(CheckIdentity(f + ".identity", a.identity(), p.trust_domain(),
                                     tls::IdentityClass::kOperator));
    WB_RETURN_IF_ERROR(CheckKey(f + ".public_key", a.public_key()));
    if (!names.insert(a.name()).second) return Invalid(f + ".name", "used by another approver");
    if (!identities.insert(a.identity()).second) {
      return Invalid(f + ".identity", "used by another approver");
    }
    if (!approver_keys.insert(a.public_key()).second) {
      return Invalid(f + ".public_key", "used by another approver");
    }
    if (keys.contains(a.public_key())) {
      return Invalid(f + ".public_key", "is also a dispatch key");
    }
  }
  for (const std::string& cls : actions::ActionClasses()) {
    auto it = p.approval_thresholds().find(cls);
    if (it == p.approval_thresholds().end()) {
      return Invalid(absl::StrCat("approval_thresholds.", cls),
                     "required (every action class must be listed; 0 = no approval)");
    }
    if (it->second > static_cast<uint32_t>(p.approvers_size())) {
      return Invalid(absl::StrCat("approval_thresholds.", cls),
                     absl::StrCat(it->second, " approvals required but the policy lists ",
                                  p.approvers_size(), " approvers"));
    }
  }
  for (const auto& [cls, n] : p.approval_thresholds()) {
    const auto& all = actions::ActionClasses();
    if (std::find(all.begin(), all.end(), cls) == all.end()) {
      return Invalid(absl::StrCat("approval_thresholds.", cls),
                     "unknown action class (known: disable, revoke, rotate, delete, grant)");
    }
  }
  if (!p.has_default_rate_budget()) return Invalid("default_rate_budget", "required");
  WB_RETURN_IF_ERROR(CheckBudget("default_rate_budget", p.default_rate_budget()));
  for (const auto& [agent, b] : p.agent_rate_budgets()) {
    const std::string f = absl::StrCat("agent_rate_budgets[", agent, "]");
    WB_RETURN_IF_ERROR(CheckIdentity(f, agent, p.trust_domain(), tls::IdentityClass::kAgent));
    WB_RETURN_IF_ERROR(CheckBudget(f, b));
  }
  return absl::OkStatus();
}

absl::StatusOr<writeback::v1::SignedEnvelope> SignPolicy(const TrustPolicy& policy,
                                                         const crypto::Ed25519PrivateKey& root) {
  WB_RETURN_IF_ERROR(ValidatePolicy(policy));
  return envelope::Sign(writeback::v1::PAYLOAD_TYPE_TRUST_POLICY, policy.SerializeAsString(), root);
}

absl::StatusOr<writeback::v1::SignedEnvelope> ReadSignedPolicyFile(const std::string& path) {
  WB_ASSIGN_OR_RETURN(std::string bytes, fs::ReadFile(path, 1 << 20));
  writeback::v1::SignedEnvelope env;
  if (!env.ParseFromString(bytes) ||
      env.payload_type() != writeback::v1::PAYLOAD_TYPE_TRUST_POLICY) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' is not a signed trust policy (write it with wbctl trust sign)"));
  }
  return env;
}

absl::StatusOr<VerifiedPolicy> VerifyPolicy(const writeback::v1::SignedEnvelope& env,
                                            const crypto::Ed25519PublicKey& root,
                                            uint64_t min_version, absl::Time now) {
  if (absl::Status s = envelope::VerifyWithKey(env, writeback::v1::PAYLOAD_TYPE_TRUST_POLICY, root);
      !s.ok()) {
    if (s.code() == absl::StatusCode::kInvalidArgument) {
      return absl::InvalidArgumentError(absl::StrCat("trust policy: ", s.message()));
    }
    return absl::UnauthenticatedError(
        absl::StrCat("trust policy: not signed by the pinned trust root (", s.message(), ")"));
  }
  VerifiedPolicy v;
  v.envelope = env;
  if (!v.policy.ParseFromString(env.payload())) {
    return absl::InvalidArgumentError("trust policy: payload is not a TrustPolicy");
  }
  if (envelope::HasUnknownFields(v.policy)) {
    return absl::InvalidArgumentError("trust policy: unknown fields present");
  }
  WB_RETURN_IF_ERROR(ValidatePolicy(v.policy));
  if (v.policy.version() < min_version) {
    return absl::FailedPreconditionError(absl::StrCat("trust policy: version ", v.policy.version(),
                                                      " is older than the required version ",
                                                      min_version, " (rollback refused)"));
  }
  if (absl::FromUnixMillis(v.policy.issued_at_unix_ms()) > now + kMaxIssuedAtSkew) {
    return absl::InvalidArgumentError(
        absl::StrCat("trust_policy.issued_at_unix_ms: ", v.policy.issued_at_unix_ms(),
                     " is more than ", absl::FormatDuration(kMaxIssuedAtSkew), " in the future"));
  }
  for (const auto& k : v.policy.dispatch_keys()) {
    v.dispatch_keys.Add(*crypto::Ed25519PublicKey::FromRaw(k.public_key()));
  }
  for (const auto& a : v.policy.approvers()) {
    v.approvers.push_back(
        Approver{a.name(), a.identity(), *crypto::Ed25519PublicKey::FromRaw(a.public_key())});
  }
  return v;
}

std::optional<uint32_t> VerifiedPolicy::ThresholdFor(absl::string_view action_class) const {
  auto it = policy.approval_thresholds().find(std::string(action_class));
  if (it == policy.approval_thresholds().end()) return std::nullopt;
  return it->second;
}

const Approver* VerifiedPolicy::FindApprover(absl::string_view key_id) const {
  for (const Approver& a : approvers) {
    if (a.key.key_id() == key_id) return &a;
  }
  return nullptr;
}

RateBudget VerifiedPolicy::BudgetFor(absl::string_view agent_id) const {
  const auto& per_agent = policy.agent_rate_budgets();
  auto it = per_agent.find(std::string(agent_id));
  const writeback::v1::RateBudget& b =
      it != per_agent.end() ? it->second : policy.default_rate_budget();
  return RateBudget{b.max_tasks(), absl::Seconds(b.window_seconds())};
}

}  // namespace wb::trust
