// Credential operations of the vault connector: tokens
// (token_revoke_accessor, also for kv_destroy_and_revoke_token), AppRole
// secret-ids (approle_destroy_secret_id) and leases (lease_revoke,
// lease_revoke_prefix).
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/macros.h"
#include "connectors/vault/vault_internal.h"
#include "connectors/vault/vault_path.h"

namespace wb::connectors::vault_ops {

using vault::EncodePath;

// ----------------------------------------------------------------------------
// Tokens

namespace {

constexpr char kLookupAccessor[] = "auth/token/lookup-accessor";

absl::StatusOr<Looked> LookupAccessor(VaultClient& c, const CallContext& ctx,
                                      const std::string& accessor) {
  Looked l;
  WB_ASSIGN_OR_RETURN(l.r, c.Call(ctx, "POST", kLookupAccessor, json{{"accessor", accessor}}));
  if (l.r.status == 200) {
    l.presence = Presence::kPresent;
  } else if (l.r.status == 400 && absl::StrContains(l.r.Errors(), "invalid accessor")) {
    l.presence = Presence::kAbsent;
  } else if (l.r.status == 403) {
    l.presence = Presence::kDenied;
  }
  return l;
}

Observation TokenObservation(const CallContext& ctx, const std::string& accessor, const Looked& l) {
  Observation o =
      Obs(ctx, "vault_token_lookup_accessor", absl::StrCat(kLookupAccessor, " ", accessor));
  auto& f = *o.mutable_facts();
  f["http_status"] = absl::StrCat(l.r.status);
  if (l.presence == Presence::kPresent) {
    // Never the token id: only descriptive fields.
    for (const char* k : {"display_name", "policies", "ttl", "orphan", "path", "creation_time",
                          "expire_time", "entity_id"}) {
      const std::string v = StringField(DataOrBody(l.r), k);
      if (!v.empty()) f[k] = v;
    }
    o.set_detail("the token exists");
  } else if (l.presence == Presence::kAbsent) {
    o.set_detail("400 invalid accessor: no such token");
  } else {
    o.set_detail(absl::StrCat("HTTP ", l.r.status, ": ", l.r.Errors()));
  }
  return o;
}

}  // namespace

absl::StatusOr<json> PlanToken(VaultClient& c, const CallContext& ctx, const std::string& accessor,
                               writeback::v1::Plan* plan) {
  WB_ASSIGN_OR_RETURN(Looked l, LookupAccessor(c, ctx, accessor));
  if (l.presence == Presence::kDenied || l.presence == Presence::kOther) {
    return HttpError(absl::StrCat("POST ", kLookupAccessor), l.r);
  }
  if (l.presence == Presence::kAbsent) {
    WB_RETURN_IF_ERROR(RequireCap(c, ctx, kLookupAccessor, "update",
                                  absl::StrCat("the token with accessor ", accessor, " exists")));
  }
  Observation o = TokenObservation(ctx, accessor, l);
  if (l.presence == Presence::kPresent) {
    const auto& facts = o.facts();
    auto fact = [&](const char* k) {
      auto it = facts.find(k);
      return it == facts.end() ? std::string("?") : it->second;
    };
    plan->add_changes(absl::StrCat("revoke the token with accessor ", accessor, " (display name '",
                                   fact("display_name"), "', policies ", fact("policies"),
                                   ") and every token it created"));
  }
  *plan->add_before() = std::move(o);
  return json{{"accessor", accessor}, {"existed", l.presence == Presence::kPresent}};
}

absl::StatusOr<std::vector<std::string>> ApplyToken(VaultClient& c, const CallContext& ctx,
                                                    const std::string& accessor) {
  WB_ASSIGN_OR_RETURN(VaultResponse r, c.Call(ctx, "POST", "auth/token/revoke-accessor",
                                              json{{"accessor", accessor}}));
  if (r.status == 204 || r.status == 200) {
    return std::vector<std::string>{
        absl::StrCat("revoked the token with accessor ", accessor, " and its children")};
  }
  if (r.status == 400 && absl::StrContains(r.Errors(), "invalid accessor")) {
    return std::vector<std::string>();  // already gone
  }
  return HttpError("POST auth/token/revoke-accessor", r);
}

absl::StatusOr<Findings> VerifyToken(VaultClient& c, const CallContext& ctx,
                                     const std::string& accessor) {
  Findings f;
  WB_ASSIGN_OR_RETURN(auto caps, Capabilities::Query(c, ctx, {{kLookupAccessor, "update"}}));
  f.Add(caps.observation());
  WB_ASSIGN_OR_RETURN(Looked l, LookupAccessor(c, ctx, accessor));
  f.Add(TokenObservation(ctx, accessor, l));
  if (l.presence == Presence::kPresent) {
    f.NotDone(absl::StrCat("the token with accessor ", accessor, " is still valid"));
  } else if (l.presence == Presence::kAbsent && caps.Has(kLookupAccessor, "update")) {
    f.Confirmed(absl::StrCat("the token with accessor ", accessor, " no longer exists"));
  } else {
    f.CannotTell(absl::StrCat("lookup of accessor ", accessor, " answered HTTP ", l.r.status,
                              " and the agent cannot tell that from 'no permission'"));
  }
  return f;
}

// ----------------------------------------------------------------------------
// AppRole secret-ids

namespace {

struct AppRolePaths {
  std::string lookup, destroy, lookup_api, destroy_api;
};

AppRolePaths AppRole(const Target& t) {
  AppRolePaths p;
  const std::string base = absl::StrCat("auth/", t.mount, "/role/", t.role, "/secret-id-accessor/");
  const std::string base_api = absl::StrCat("auth/", EncodePath(t.mount), "/role/",
                                            vault::EncodeComponent(t.role), "/secret-id-accessor/");
  p.lookup = base + "lookup";
  p.destroy = base + "destroy";
  p.lookup_api = base_api + "lookup";
  p.destroy_api = base_api + "destroy";
  return p;
}

// Vault >= 1.9 answers 404 for an unknown accessor, older ones 500 with this
// message (hashicorp/vault#12660).
bool SecretIdAbsent(const VaultResponse& r) {
  if (r.status == 404) return true;
  return r.status == 500 && absl::StrContains(r.Errors(), "failed to find accessor entry");
}

absl::StatusOr<Looked> LookupSecretId(VaultClient& c, const CallContext& ctx, const Target& t) {
  const AppRolePaths p = AppRole(t);
  Looked l;
  WB_ASSIGN_OR_RETURN(l.r,
                      c.Call(ctx, "POST", p.lookup_api, json{{"secret_id_accessor", t.object}}));
  if (l.r.status == 200) {
    l.presence = Presence::kPresent;
  } else if (SecretIdAbsent(l.r)) {
    l.presence = Presence::kAbsent;
  } else if (l.r.status == 403) {
    l.presence = Presence::kDenied;
  }
  return l;
}

Observation SecretIdObservation(const CallContext& ctx, const Target& t, const Looked& l) {
  const AppRolePaths p = AppRole(t);
  Observation o = Obs(ctx, "vault_approle_secret_id_lookup", absl::StrCat(p.lookup, " ", t.object));
  auto& f = *o.mutable_facts();
  f["http_status"] = absl::StrCat(l.r.status);
  if (l.presence == Presence::kPresent) {
    for (const char* k : {"creation_time", "expiration_time", "last_updated_time",
                          "secret_id_num_uses", "secret_id_ttl"}) {
      const std::string v = StringField(DataOrBody(l.r), k);
      if (!v.empty()) f[k] = v;
    }
    o.set_detail("the secret-id exists");
  } else if (l.presence == Presence::kAbsent) {
    o.set_detail("no secret-id with this accessor");
  } else {
    o.set_detail(absl::StrCat("HTTP ", l.r.status, ": ", l.r.Errors()));
  }
  return o;
}

}  // namespace

absl::StatusOr<json> PlanSecretId(VaultClient& c, const CallContext& ctx, const Target& t,
                                  writeback::v1::Plan* plan) {
  const AppRolePaths p = AppRole(t);
  WB_ASSIGN_OR_RETURN(Looked l, LookupSecretId(c, ctx, t));
  if (l.presence == Presence::kDenied || l.presence == Presence::kOther) {
    return HttpError(absl::StrCat("POST ", p.lookup), l.r);
  }
  if (l.presence == Presence::kAbsent) {
    WB_RETURN_IF_ERROR(
        RequireCap(c, ctx, p.lookup, "update",
                   absl::StrCat("the secret-id with accessor ", t.object, " exists")));
  } else {
    plan->add_changes(absl::StrCat("destroy the secret-id with accessor ", t.object,
                                   " of AppRole '", t.role, "' (auth mount ", t.mount, ")"));
  }
  *plan->add_before() = SecretIdObservation(ctx, t, l);
  return json{{"mount", t.mount}, {"role", t.role}, {"accessor", t.object}};
}

absl::StatusOr<std::vector<std::string>> ApplySecretId(VaultClient& c, const CallContext& ctx,
                                                       const Target& t) {
  const AppRolePaths p = AppRole(t);
  WB_ASSIGN_OR_RETURN(VaultResponse r,
                      c.Call(ctx, "POST", p.destroy_api, json{{"secret_id_accessor", t.object}}));
  if (r.status == 204 || r.status == 200) {
    return std::vector<std::string>{absl::StrCat("destroyed the secret-id with accessor ", t.object,
                                                 " of AppRole '", t.role, "'")};
  }
  if (SecretIdAbsent(r)) return std::vector<std::string>();
  return HttpError(absl::StrCat("POST ", p.destroy), r);
}

absl::StatusOr<Findings> VerifySecretId(VaultClient& c, const CallContext& ctx, const Target& t) {
  const AppRolePaths p = AppRole(t);
  Findings f;
  WB_ASSIGN_OR_RETURN(auto caps, Capabilities::Query(c, ctx, {{p.lookup, "update"}}));
  f.Add(caps.observation());
  WB_ASSIGN_OR_RETURN(Looked l, LookupSecretId(c, ctx, t));
  f.Add(SecretIdObservation(ctx, t, l));
  if (l.presence == Presence::kPresent) {
    f.NotDone(absl::StrCat("the secret-id with accessor ", t.object, " still exists"));
  } else if (l.presence == Presence::kAbsent && caps.Has(p.lookup, "update")) {
    f.Confirmed(absl::StrCat("the secret-id with accessor ", t.object, " no longer exists"));
  } else {
    f.CannotTell(absl::StrCat("lookup of secret-id accessor ", t.object, " answered HTTP ",
                              l.r.status, " and the agent cannot tell that from 'no permission'"));
  }
  return f;
}

// ----------------------------------------------------------------------------
// Leases

namespace {

constexpr char kLeaseLookup[] = "sys/leases/lookup";

std::string LeaseListAcl(const std::string& prefix) {
  return absl::StrCat("sys/leases/lookup/", prefix, "/");
}

absl::StatusOr<Looked> LookupLease(VaultClient& c, const CallContext& ctx, const Target& t) {
  Looked l;
  if (t.op == "lease_revoke") {
    WB_ASSIGN_OR_RETURN(l.r, c.Call(ctx, "POST", kLeaseLookup, json{{"lease_id", t.object}}));
    if (l.r.status == 200) {
      l.presence = Presence::kPresent;
    } else if (l.r.status == 400 && absl::StrContains(l.r.Errors(), "invalid lease")) {
      l.presence = Presence::kAbsent;
    }
  } else {
    WB_ASSIGN_OR_RETURN(
        l.r, c.Call(ctx, "GET",
                    absl::StrCat("sys/leases/lookup/", EncodePath(t.object), "/?list=true")));
    const json& keys = l.r.Field("keys");
    if (l.r.status == 200 && keys.is_array() && !keys.empty()) {
      l.presence = Presence::kPresent;
    } else if (l.r.status == 404 || (l.r.status == 200 && (keys.is_null() || keys.empty()))) {
      l.presence = Presence::kAbsent;
    }
  }
  if (l.r.status == 403) l.presence = Presence::kDenied;
  return l;
}

Observation LeaseObservation(const CallContext& ctx, const Target& t, const Looked& l) {
  const bool one = t.op == "lease_revoke";
  Observation o = one ? Obs(ctx, "vault_lease_lookup", absl::StrCat(kLeaseLookup, " ", t.object))
                      : Obs(ctx, "vault_lease_list", LeaseListAcl(t.object));
  auto& f = *o.mutable_facts();
  f["http_status"] = absl::StrCat(l.r.status);
  if (l.presence == Presence::kPresent) {
    if (one) {
      for (const char* k : {"issue_time", "expire_time", "ttl", "renewable"}) {
        const std::string v = StringField(DataOrBody(l.r), k);
        if (!v.empty()) f[k] = v;
      }
      o.set_detail("the lease exists");
    } else {
      f["leases"] = absl::StrCat(l.r.Field("keys").size());
      o.set_detail(absl::StrCat(l.r.Field("keys").size(), " lease(s) under the prefix"));
    }
  } else if (l.presence == Presence::kAbsent) {
    o.set_detail(one ? "400 invalid lease: no such lease" : "no lease under the prefix");
  } else {
    o.set_detail(absl::StrCat("HTTP ", l.r.status, ": ", l.r.Errors()));
  }
  return o;
}

std::pair<std::string, std::string> LeaseCheckNeed(const Target& t) {
  if (t.op == "lease_revoke") return {kLeaseLookup, "update"};
  return {LeaseListAcl(t.object), "list"};
}

}  // namespace

absl::StatusOr<json> PlanLease(VaultClient& c, const CallContext& ctx, const Target& t,
                               writeback::v1::Plan* plan) {
  WB_ASSIGN_OR_RETURN(Looked l, LookupLease(c, ctx, t));
  if (l.presence == Presence::kDenied || l.presence == Presence::kOther) {
    return HttpError(absl::StrCat("lookup of ", t.object), l.r);
  }
  if (l.presence == Presence::kAbsent) {
    const auto [path, cap] = LeaseCheckNeed(t);
    WB_RETURN_IF_ERROR(
        RequireCap(c, ctx, path, cap, absl::StrCat("lease(s) ", t.object, " exist")));
  }
  Observation o = LeaseObservation(ctx, t, l);
  if (l.presence == Presence::kPresent) {
    plan->add_changes(t.op == "lease_revoke"
                          ? absl::StrCat("revoke lease ", t.object, " (sync)")
                          : absl::StrCat("revoke every lease under ", t.object, " (",
                                         o.facts().at("leases"), " listed; sync)"));
  }
  *plan->add_before() = std::move(o);
  return json{{"lease", t.object}};
}

absl::StatusOr<std::vector<std::string>> ApplyLease(VaultClient& c, const CallContext& ctx,
                                                    const Target& t) {
  // Vault answers a revoke of an absent lease with 204 too: look first, so a
  // stale or repeated apply reports no change (idempotent by observation).
  WB_ASSIGN_OR_RETURN(Looked before, LookupLease(c, ctx, t));
  if (before.presence == Presence::kAbsent) return std::vector<std::string>();
  VaultResponse r;
  std::string what;
  if (t.op == "lease_revoke") {
    what = "POST sys/leases/revoke";
    WB_ASSIGN_OR_RETURN(
        r, c.Call(ctx, "POST", "sys/leases/revoke", json{{"lease_id", t.object}, {"sync", true}}));
  } else {
    what = absl::StrCat("POST sys/leases/revoke-prefix/", t.object);
    WB_ASSIGN_OR_RETURN(
        r, c.Call(ctx, "POST", absl::StrCat("sys/leases/revoke-prefix/", EncodePath(t.object)),
                  json{{"sync", true}}));
  }
  if (r.status != 204 && r.status != 200) return HttpError(what, r);
  return std::vector<std::string>{t.op == "lease_revoke"
                                      ? absl::StrCat("revoked lease ", t.object)
                                      : absl::StrCat("revoked every lease under ", t.object)};
}

absl::StatusOr<Findings> VerifyLease(VaultClient& c, const CallContext& ctx, const Target& t) {
  Findings f;
  const auto [path, cap] = LeaseCheckNeed(t);
  std::vector<std::pair<std::string, std::string>> needs = {{path, cap}};
  if (t.op == "lease_revoke_prefix") needs.emplace_back(path, "sudo");
  WB_ASSIGN_OR_RETURN(auto caps, Capabilities::Query(c, ctx, needs));
  f.Add(caps.observation());
  bool allowed = true;
  for (const auto& [p, k] : needs) allowed = allowed && caps.Has(p, k);
  WB_ASSIGN_OR_RETURN(Looked l, LookupLease(c, ctx, t));
  f.Add(LeaseObservation(ctx, t, l));
  if (l.presence == Presence::kPresent) {
    f.NotDone(absl::StrCat("lease(s) ", t.object, " still exist"));
  } else if (l.presence == Presence::kAbsent && allowed) {
    f.Confirmed(absl::StrCat("no lease ", t.object, " remains"));
  } else {
    f.CannotTell(absl::StrCat("lease lookup of ", t.object, " answered HTTP ", l.r.status,
                              " and the agent cannot tell that from 'no permission'"));
  }
  return f;
}

}  // namespace wb::connectors::vault_ops
