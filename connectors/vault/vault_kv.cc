// KV v2 operations of the vault connector: kv_delete, kv_destroy (also for
// kv_destroy_and_revoke_token) and kv_delete_metadata.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/status/macros.h"
#include "connectors/vault/vault_internal.h"
#include "connectors/vault/vault_path.h"

namespace wb::connectors::vault_ops {
namespace {

using vault::EncodePath;

std::string JoinVersions(const std::vector<uint64_t>& v) { return absl::StrJoin(v, ","); }

struct KvPaths {
  std::string display;                                       // mount/path
  std::string data, metadata, del, destroy;                  // raw ACL paths
  std::string data_api, metadata_api, del_api, destroy_api;  // encoded API paths
};

KvPaths Kv(const Target& t) {
  KvPaths p;
  p.display = absl::StrCat(t.mount, "/", t.object);
  p.data = absl::StrCat(t.mount, "/data/", t.object);
  p.metadata = absl::StrCat(t.mount, "/metadata/", t.object);
  p.del = absl::StrCat(t.mount, "/delete/", t.object);
  p.destroy = absl::StrCat(t.mount, "/destroy/", t.object);
  const std::string m = EncodePath(t.mount), o = EncodePath(t.object);
  p.data_api = absl::StrCat(m, "/data/", o);
  p.metadata_api = absl::StrCat(m, "/metadata/", o);
  p.del_api = absl::StrCat(m, "/delete/", o);
  p.destroy_api = absl::StrCat(m, "/destroy/", o);
  return p;
}

enum class VState { kLive, kDeleted, kDestroyed };

const char* VStateName(VState s) {
  switch (s) {
    case VState::kLive:
      return "live";
    case VState::kDeleted:
      return "deleted";
    case VState::kDestroyed:
      return "destroyed";
  }
  return "?";
}

// A version's state from its metadata. A deletion_time in the future (set by
// delete_version_after) is not a deletion yet.
VState StateOf(const json& meta, absl::Time now) {
  if (meta.is_object() && meta.contains("destroyed") && meta["destroyed"].is_boolean() &&
      meta["destroyed"].get<bool>()) {
    return VState::kDestroyed;
  }
  const std::string dt = StringField(meta, "deletion_time");
  if (dt.empty()) return VState::kLive;
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, dt, &t, &err) && t > now) return VState::kLive;
  return VState::kDeleted;
}

struct KvMeta {
  bool exists = false;
  uint64_t current_version = 0;
  std::map<uint64_t, VState> versions;
};

absl::StatusOr<KvMeta> ReadKvMeta(VaultClient& c, const CallContext& ctx, const KvPaths& p) {
  WB_ASSIGN_OR_RETURN(VaultResponse r, c.Call(ctx, "GET", p.metadata_api));
  KvMeta m;
  if (r.status == 404) return m;
  if (r.status != 200) return HttpError(absl::StrCat("GET ", p.metadata), r);
  m.exists = true;
  const json& cur = r.Field("current_version");
  if (cur.is_number_unsigned() || cur.is_number_integer()) m.current_version = cur.get<uint64_t>();
  const json& versions = r.Field("versions");
  if (versions.is_object()) {
    for (const auto& [k, v] : versions.items()) {
      uint64_t n = 0;
      if (absl::SimpleAtoi(k, &n)) m.versions[n] = StateOf(v, ctx.clock->Now());
    }
  }
  return m;
}

Observation KvMetaObservation(const CallContext& ctx, const KvPaths& p, const KvMeta& m,
                              const std::vector<uint64_t>& of_interest) {
  Observation o = Obs(ctx, "vault_kv_metadata", p.metadata);
  auto& f = *o.mutable_facts();
  f["metadata_present"] = m.exists ? "true" : "false";
  if (m.exists) {
    f["current_version"] = absl::StrCat(m.current_version);
    f["versions_total"] = absl::StrCat(m.versions.size());
  }
  for (uint64_t v : of_interest) {
    auto it = m.versions.find(v);
    f[absl::StrCat("version_", v)] = it == m.versions.end() ? "absent" : VStateName(it->second);
  }
  o.set_detail(m.exists ? absl::StrCat("current version ", m.current_version, ", ",
                                       m.versions.size(), " version(s) in metadata")
                        : "no metadata: no secret at this path");
  return o;
}

// Versions the action is about: the given ones, or (none given) the latest
// for a soft delete, every version for a destroy.
std::vector<uint64_t> KvTargets(const Target& t, const KvMeta& m) {
  if (!t.versions.empty()) return t.versions;
  std::vector<uint64_t> out;
  if (t.op == "kv_delete") {
    if (m.current_version > 0) out.push_back(m.current_version);
  } else {
    for (const auto& [v, s] : m.versions) out.push_back(v);
  }
  return out;
}

bool NeedsWork(const Target& t, VState s) {
  return t.op == "kv_delete" ? s == VState::kLive : s != VState::kDestroyed;
}

const char* KvVerb(const Target& t) { return t.op == "kv_delete" ? "soft-delete" : "destroy"; }

}  // namespace

absl::StatusOr<json> PlanKvVersions(VaultClient& c, const CallContext& ctx, const Target& t,
                                    writeback::v1::Plan* plan) {
  const KvPaths p = Kv(t);
  WB_ASSIGN_OR_RETURN(KvMeta m, ReadKvMeta(c, ctx, p));
  if (!m.exists) {
    WB_RETURN_IF_ERROR(RequireCap(c, ctx, p.metadata, "read", absl::StrCat(p.display, " exists")));
  }
  const std::vector<uint64_t> targets = KvTargets(t, m);
  std::vector<uint64_t> act;
  for (uint64_t v : targets) {
    auto it = m.versions.find(v);
    if (it != m.versions.end() && NeedsWork(t, it->second)) act.push_back(v);
  }
  *plan->add_before() = KvMetaObservation(ctx, p, m, targets);
  for (uint64_t v : act) {
    plan->add_changes(absl::StrCat(KvVerb(t), " version ", v, " of ", p.display));
  }
  return json{{"mount", t.mount},
              {"path", t.object},
              {"current_version", m.current_version},
              {"versions", act}};
}

absl::StatusOr<std::vector<std::string>> ApplyKvVersions(VaultClient& c, const CallContext& ctx,
                                                         const Target& t, const json& st) {
  const KvPaths p = Kv(t);
  if (!st.is_object() || st.value("mount", "") != t.mount || st.value("path", "") != t.object ||
      !st.contains("versions") || !st["versions"].is_array() || !st.contains("current_version") ||
      !st["current_version"].is_number()) {
    return Invalid("plan.state", "not a plan of this action");
  }
  std::vector<uint64_t> planned;
  for (const auto& v : st["versions"]) {
    if (!v.is_number_unsigned()) return Invalid("plan.state", "bad version");
    planned.push_back(v.get<uint64_t>());
  }
  WB_ASSIGN_OR_RETURN(KvMeta m, ReadKvMeta(c, ctx, p));
  if (!m.exists) return std::vector<std::string>();  // nothing left to read
  const uint64_t expected = st["current_version"].get<uint64_t>();
  if (m.current_version != expected) {
    return absl::FailedPreconditionError(
        absl::StrCat(p.display, " changed since the plan (current version ", expected, " then, ",
                     m.current_version, " now)"));
  }
  std::vector<uint64_t> still;
  for (uint64_t v : planned) {
    auto it = m.versions.find(v);
    if (it != m.versions.end() && NeedsWork(t, it->second)) still.push_back(v);
  }
  if (still.empty()) return std::vector<std::string>();
  const bool del = t.op == "kv_delete";
  WB_ASSIGN_OR_RETURN(VaultResponse r, c.Call(ctx, "POST", del ? p.del_api : p.destroy_api,
                                              json{{"versions", still}}));
  if (r.status != 204 && r.status != 200) {
    return HttpError(absl::StrCat("POST ", del ? p.del : p.destroy), r);
  }
  return std::vector<std::string>{absl::StrCat(del ? "soft-deleted" : "destroyed", " version(s) ",
                                               JoinVersions(still), " of ", p.display)};
}

absl::StatusOr<Findings> VerifyKvVersions(VaultClient& c, const CallContext& ctx, const Target& t) {
  const KvPaths p = Kv(t);
  Findings f;
  WB_ASSIGN_OR_RETURN(auto caps,
                      Capabilities::Query(c, ctx, {{p.data, "read"}, {p.metadata, "read"}}));
  f.Add(caps.observation());
  const bool can_data = caps.Has(p.data, "read");
  const bool can_meta = caps.Has(p.metadata, "read");

  KvMeta m;
  bool meta_known = false;
  if (can_meta) {
    auto read = ReadKvMeta(c, ctx, p);
    if (read.ok()) {
      m = *read;
      meta_known = true;
    } else {
      f.CannotTell(absl::StrCat("metadata unreadable: ", read.status().message()));
    }
  }
  if (t.versions.empty() && !meta_known) {
    f.CannotTell(absl::StrCat("which versions to check in ", p.display,
                              " needs the metadata, which the agent cannot read"));
    return f;
  }
  const std::vector<uint64_t> targets = KvTargets(t, m);
  if (meta_known) f.Add(KvMetaObservation(ctx, p, m, targets));
  if (targets.empty()) {
    // No version at all: metadata is absent or empty.
    f.Confirmed(absl::StrCat("no version of ", p.display, " exists"));
    return f;
  }
  const bool destroy = t.op != "kv_delete";
  for (uint64_t v : targets) {
    const std::string subject = absl::StrCat(p.data, "?version=", v);
    WB_ASSIGN_OR_RETURN(VaultResponse r,
                        c.Call(ctx, "GET", absl::StrCat(p.data_api, "?version=", v)));
    Observation o = Obs(ctx, "vault_kv_read_version", subject);
    auto& facts = *o.mutable_facts();
    facts["http_status"] = absl::StrCat(r.status);
    const json& meta = r.Field("metadata");
    if (r.status == 200) {
      facts["readable"] = "true";  // the secret's data is never copied
      o.set_detail("the version is readable");
      f.NotDone(absl::StrCat("version ", v, " of ", p.display, " is still readable"));
    } else if (r.status == 404 && meta.is_object()) {
      const VState s = StateOf(meta, absl::InfiniteFuture());
      facts["deletion_time"] = StringField(meta, "deletion_time");
      facts["destroyed"] = s == VState::kDestroyed ? "true" : "false";
      o.set_detail(absl::StrCat("404, version ", VStateName(s)));
      if (destroy && s != VState::kDestroyed) {
        f.NotDone(absl::StrCat("version ", v, " of ", p.display, " is deleted but not destroyed"));
      } else if (!can_data) {
        f.CannotTell(absl::StrCat("version ", v, ": the agent's token lacks read on ", p.data));
      } else {
        f.Confirmed(absl::StrCat("version ", v, " of ", p.display, " reads as ", VStateName(s)));
      }
    } else if (r.status == 404) {
      o.set_detail("404 without version metadata: no such version");
      const bool absent = meta_known && (!m.exists || m.versions.count(v) == 0);
      if (can_data && absent) {
        f.Confirmed(absl::StrCat("version ", v, " of ", p.display, " does not exist"));
      } else {
        f.CannotTell(absl::StrCat("version ", v, " of ", p.display,
                                  ": a 404 the agent cannot tell from 'no permission'"));
      }
    } else {
      o.set_detail(absl::StrCat("unexpected answer: ", r.Errors()));
      f.CannotTell(absl::StrCat("version ", v, ": HTTP ", r.status));
    }
    f.Add(std::move(o));
  }
  return f;
}

absl::StatusOr<json> PlanKvMetadata(VaultClient& c, const CallContext& ctx, const Target& t,
                                    writeback::v1::Plan* plan) {
  const KvPaths p = Kv(t);
  WB_ASSIGN_OR_RETURN(KvMeta m, ReadKvMeta(c, ctx, p));
  if (!m.exists) {
    WB_RETURN_IF_ERROR(RequireCap(c, ctx, p.metadata, "read", absl::StrCat(p.display, " exists")));
  }
  *plan->add_before() = KvMetaObservation(ctx, p, m, {});
  if (m.exists) {
    plan->add_changes(absl::StrCat("delete the metadata and all ", m.versions.size(),
                                   " version(s) of ", p.display));
  }
  return json{{"mount", t.mount}, {"path", t.object}, {"current_version", m.current_version}};
}

absl::StatusOr<std::vector<std::string>> ApplyKvMetadata(VaultClient& c, const CallContext& ctx,
                                                         const Target& t, const json& st) {
  const KvPaths p = Kv(t);
  if (!st.is_object() || st.value("mount", "") != t.mount || st.value("path", "") != t.object ||
      !st.contains("current_version") || !st["current_version"].is_number()) {
    return Invalid("plan.state", "not a plan of this action");
  }
  WB_ASSIGN_OR_RETURN(KvMeta m, ReadKvMeta(c, ctx, p));
  if (!m.exists) return std::vector<std::string>();
  const uint64_t expected = st["current_version"].get<uint64_t>();
  if (m.current_version != expected) {
    return absl::FailedPreconditionError(
        absl::StrCat(p.display, " changed since the plan (current version ", expected, " then, ",
                     m.current_version, " now)"));
  }
  WB_ASSIGN_OR_RETURN(VaultResponse r, c.Call(ctx, "DELETE", p.metadata_api));
  if (r.status != 204 && r.status != 200) return HttpError(absl::StrCat("DELETE ", p.metadata), r);
  return std::vector<std::string>{
      absl::StrCat("deleted the metadata and all versions of ", p.display)};
}

absl::StatusOr<Findings> VerifyKvMetadata(VaultClient& c, const CallContext& ctx, const Target& t) {
  const KvPaths p = Kv(t);
  Findings f;
  WB_ASSIGN_OR_RETURN(auto caps, Capabilities::Query(c, ctx, {{p.metadata, "read"}}));
  f.Add(caps.observation());
  WB_ASSIGN_OR_RETURN(VaultResponse r, c.Call(ctx, "GET", p.metadata_api));
  Observation o = Obs(ctx, "vault_kv_metadata", p.metadata);
  (*o.mutable_facts())["http_status"] = absl::StrCat(r.status);
  if (r.status == 200) {
    o.set_detail("metadata present");
    f.NotDone(absl::StrCat("metadata of ", p.display, " still exists"));
  } else if (r.status == 404 && caps.Has(p.metadata, "read")) {
    o.set_detail("404: no metadata");
    f.Confirmed(absl::StrCat("no metadata or version of ", p.display, " remains"));
  } else if (r.status == 404) {
    o.set_detail("404, but the agent's token may not read this path");
    f.CannotTell(absl::StrCat(p.metadata, ": a 404 the agent cannot tell from 'no permission'"));
  } else {
    o.set_detail(absl::StrCat("unexpected answer: ", r.Errors()));
    f.CannotTell(absl::StrCat(p.metadata, ": HTTP ", r.status));
  }
  f.Add(std::move(o));
  return f;
}

}  // namespace wb::connectors::vault_ops
