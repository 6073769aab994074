// Policy operation of the vault connector: policy_replace.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/status/macros.h"
#include "connectors/vault/vault_internal.h"
#include "connectors/vault/vault_path.h"

namespace wb::connectors::vault_ops {
namespace {

constexpr size_t kRulesInEvidence = 4096;

struct PolicyRead {
  Presence presence = Presence::kOther;
  std::string rules;
  VaultResponse r;
};

std::string PolicyAcl(const Target& t) { return absl::StrCat("sys/policy/", t.object); }

absl::StatusOr<PolicyRead> ReadPolicy(VaultClient& c, const CallContext& ctx, const Target& t) {
  PolicyRead p;
  WB_ASSIGN_OR_RETURN(
      p.r, c.Call(ctx, "GET", absl::StrCat("sys/policy/", vault::EncodeComponent(t.object))));
  const json& rules = p.r.Field("rules");
  if (p.r.status == 200 && rules.is_string()) {
    p.presence = Presence::kPresent;
    p.rules = rules.get<std::string>();
  } else if (p.r.status == 404) {
    p.presence = Presence::kAbsent;
  } else if (p.r.status == 403) {
    p.presence = Presence::kDenied;
  }
  return p;
}

std::string Sha(absl::string_view s) { return crypto::HexEncode(crypto::Sha256(s)); }

Observation PolicyObservation(const CallContext& ctx, const Target& t, const PolicyRead& p) {
  Observation o = Obs(ctx, "vault_policy_read", PolicyAcl(t));
  auto& f = *o.mutable_facts();
  f["http_status"] = absl::StrCat(p.r.status);
  if (p.presence == Presence::kPresent) {
    f["rules_sha256"] = Sha(p.rules);
    f["rules_bytes"] = absl::StrCat(p.rules.size());
    f["rules"] = p.rules.substr(0, kRulesInEvidence);
    if (p.rules.size() > kRulesInEvidence) f["rules_truncated"] = "true";
    o.set_detail("policy present");
  } else if (p.presence == Presence::kAbsent) {
    o.set_detail("404: no such policy");
  } else {
    o.set_detail(absl::StrCat("HTTP ", p.r.status, ": ", p.r.Errors()));
  }
  return o;
}

}  // namespace

absl::StatusOr<json> PlanPolicy(VaultClient& c, const CallContext& ctx, const Target& t,
                                writeback::v1::Plan* plan) {
  WB_ASSIGN_OR_RETURN(PolicyRead p, ReadPolicy(c, ctx, t));
  if (p.presence == Presence::kDenied || p.presence == Presence::kOther) {
    return HttpError(absl::StrCat("GET ", PolicyAcl(t)), p.r);
  }
  if (p.presence == Presence::kAbsent) {
    WB_RETURN_IF_ERROR(
        RequireCap(c, ctx, PolicyAcl(t), "read", absl::StrCat("policy ", t.object, " exists")));
    return absl::FailedPreconditionError(
        absl::StrCat("policy ", t.object,
                     " does not exist: policy_replace narrows an existing policy and never "
                     "creates one"));
  }
  *plan->add_before() = PolicyObservation(ctx, t, p);
  if (p.rules != t.policy) {
    plan->add_changes(absl::StrCat(
        "replace the rules of policy ", t.object, " (sha256 ", Sha(p.rules), ", ", p.rules.size(),
        " bytes) with the new document (sha256 ", Sha(t.policy), ", ", t.policy.size(), " bytes)"));
  }
  // The whole old document: what a rollback would write back.
  return json{{"name", t.object}, {"old_rules", p.rules}, {"old_sha256", Sha(p.rules)}};
}

absl::StatusOr<std::vector<std::string>> ApplyPolicy(VaultClient& c, const CallContext& ctx,
                                                     const Target& t, const json& st) {
  if (!st.is_object() || st.value("name", "") != t.object || !st.contains("old_sha256") ||
      !st["old_sha256"].is_string()) {
    return Invalid("plan.state", "not a plan of this action");
  }
  WB_ASSIGN_OR_RETURN(PolicyRead p, ReadPolicy(c, ctx, t));
  if (p.presence != Presence::kPresent) return HttpError(absl::StrCat("GET ", PolicyAcl(t)), p.r);
  if (p.rules == t.policy) return std::vector<std::string>();
  if (Sha(p.rules) != st["old_sha256"].get<std::string>()) {
    return absl::FailedPreconditionError(
        absl::StrCat("policy ", t.object, " changed since the plan"));
  }
  WB_ASSIGN_OR_RETURN(
      VaultResponse r,
      c.Call(ctx, "POST", absl::StrCat("sys/policy/", vault::EncodeComponent(t.object)),
             json{{"policy", t.policy}}));
  if (r.status != 204 && r.status != 200) return HttpError(absl::StrCat("POST ", PolicyAcl(t)), r);
  return std::vector<std::string>{
      absl::StrCat("replaced the rules of policy ", t.object, " (now sha256 ", Sha(t.policy), ")")};
}

absl::StatusOr<Findings> VerifyPolicy(VaultClient& c, const CallContext& ctx, const Target& t) {
  Findings f;
  WB_ASSIGN_OR_RETURN(auto caps, Capabilities::Query(c, ctx, {{PolicyAcl(t), "read"}}));
  f.Add(caps.observation());
  WB_ASSIGN_OR_RETURN(PolicyRead p, ReadPolicy(c, ctx, t));
  f.Add(PolicyObservation(ctx, t, p));
  if (p.presence == Presence::kPresent) {
    if (p.rules == t.policy) {
      f.Confirmed(absl::StrCat("policy ", t.object, " reads back as written"));
    } else {
      f.NotDone(absl::StrCat("policy ", t.object, " differs from the decided document"));
    }
  } else if (p.presence == Presence::kAbsent && caps.Has(PolicyAcl(t), "read")) {
    f.NotDone(absl::StrCat("policy ", t.object, " does not exist"));
  } else {
    f.CannotTell(absl::StrCat("policy ", t.object, ": HTTP ", p.r.status,
                              " and the agent cannot tell that from 'no permission'"));
  }
  return f;
}

}  // namespace wb::connectors::vault_ops
