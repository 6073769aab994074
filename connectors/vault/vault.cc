#include "connectors/vault/vault.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/actions/actions.h"
#include "common/crypto/crypto.h"
#include "common/status/macros.h"
#include "connectors/util/connector_util.h"
#include "connectors/vault/vault_path.h"

namespace wb::connectors {
namespace {

using util::CheckDeadline;

using json = nlohmann::json;
using vault::EncodePath;
using vault::VaultClient;
using vault::VaultResponse;
using writeback::v1::Observation;

constexpr absl::string_view kType = "vault";
constexpr size_t kRulesInEvidence = 4096;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// The validated, resolved action.
struct Target {
  std::string op;
  std::string object;  // secret path, accessor, lease id/prefix or policy name
  std::string mount;   // KV mount or AppRole auth mount
  std::vector<uint64_t> versions;
  std::string role;
  std::string policy;
  std::string token_accessor;  // token_revoke_accessor: = object

  bool kv() const { return absl::StartsWith(op, "kv_"); }
};

// An unexpected HTTP answer as a status: 403 → PERMISSION_DENIED, 5xx and
// the rest → UNAVAILABLE / FAILED_PRECONDITION.
absl::Status HttpError(absl::string_view what, const VaultResponse& r) {
  const std::string msg = absl::StrCat(what, ": HTTP ", r.status,
                                       r.Errors().empty() ? "" : absl::StrCat(": ", r.Errors()));
  if (r.status == 403) return absl::PermissionDeniedError(msg);
  if (r.status >= 500 || r.status == 429) return absl::UnavailableError(msg);
  return absl::FailedPreconditionError(msg);
}

Observation Obs(const CallContext& ctx, absl::string_view check, absl::string_view subject) {
  Observation o;
  o.set_check(std::string(check));
  o.set_subject(std::string(subject));
  o.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  return o;
}

// body["data"] when it is an object, else the body itself (a few endpoints
// answer at the top level).
const json& DataOrBody(const VaultResponse& r) {
  if (r.body.is_object()) {
    auto it = r.body.find("data");
    if (it != r.body.end() && it->is_object()) return *it;
  }
  return r.body;
}

bool HasCap(const std::vector<std::string>& caps, absl::string_view need) {
  return std::any_of(caps.begin(), caps.end(),
                     [&](const std::string& c) { return c == need || c == "root"; });
}

std::string JoinVersions(const std::vector<uint64_t>& v) { return absl::StrJoin(v, ","); }

std::string StringField(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  if (it->is_array()) {
    std::vector<std::string> parts;
    for (const auto& e : *it) parts.push_back(e.is_string() ? e.get<std::string>() : e.dump());
    return absl::StrJoin(parts, ",");
  }
  return "";
}

// ----------------------------------------------------------------------------
// Capabilities: which absences may be believed.

class Capabilities {
 public:
  // Queries every (path, capability) pair at once and records the answer.
  static absl::StatusOr<Capabilities> Query(
      VaultClient& c, const CallContext& ctx,
      const std::vector<std::pair<std::string, std::string>>& needs) {
    std::vector<std::string> paths;
    for (const auto& [p, cap] : needs) {
      if (std::find(paths.begin(), paths.end(), p) == paths.end()) paths.push_back(p);
    }
    WB_ASSIGN_OR_RETURN(auto caps, c.CapabilitiesSelf(ctx, paths));
    Capabilities out;
    out.obs_ = Obs(ctx, "vault_capabilities_self", "sys/capabilities-self");
    std::vector<std::string> missing;
    for (const auto& [p, cap] : needs) {
      const auto& have = caps[p];
      (*out.obs_.mutable_facts())[p] = absl::StrJoin(have, ",");
      if (HasCap(have, cap)) {
        out.granted_.insert({p, cap});
      } else {
        missing.push_back(absl::StrCat(cap, " on ", p));
      }
    }
    out.obs_.set_detail(
        missing.empty() ? "the agent's token may read everything it checks"
                        : absl::StrCat("the agent's token lacks ", absl::StrJoin(missing, ", ")));
    return out;
  }
  bool Has(const std::string& path, const std::string& cap) const {
    return granted_.count({path, cap}) > 0;
  }
  const Observation& observation() const { return obs_; }

 private:
  std::set<std::pair<std::string, std::string>> granted_;
  Observation obs_;
};

// Refuses to call an absence "no change" when the token could not have seen
// the thing anyway.
absl::Status RequireCap(VaultClient& c, const CallContext& ctx, const std::string& path,
                        const std::string& cap, absl::string_view conclusion) {
  WB_ASSIGN_OR_RETURN(auto caps, Capabilities::Query(c, ctx, {{path, cap}}));
  if (caps.Has(path, cap)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("cannot tell whether ", conclusion,
                                                  ": the agent's token lacks '", cap, "' on ", path,
                                                  " (see docs/connectors/vault.md)"));
}

// Accumulates what Verify saw.
class Findings {
 public:
  void Add(Observation o) { obs_.push_back(std::move(o)); }
  void Confirmed(std::string note) {
    ++confirmed_;
    notes_.push_back(std::move(note));
  }
  void NotDone(std::string note) {
    ++not_done_;
    notes_.push_back(std::move(note));
  }
  void CannotTell(std::string note) {
    ++cannot_tell_;
    notes_.push_back(std::move(note));
  }
  void Merge(Findings other) {
    for (auto& o : other.obs_) obs_.push_back(std::move(o));
    for (auto& n : other.notes_) notes_.push_back(std::move(n));
    confirmed_ += other.confirmed_;
    not_done_ += other.not_done_;
    cannot_tell_ += other.cannot_tell_;
  }
  writeback::v1::Verification Conclude() {
    writeback::v1::Verification v;
    if (not_done_ > 0) {
      v.set_outcome(writeback::v1::OUTCOME_FAILED);
    } else if (cannot_tell_ > 0 || confirmed_ == 0) {
      v.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
    } else {
      v.set_outcome(writeback::v1::OUTCOME_VERIFIED);
    }
    v.set_detail(absl::StrJoin(notes_, "; "));
    for (auto& o : obs_) *v.add_after() = std::move(o);
    return v;
  }

 private:
  std::vector<Observation> obs_;
  std::vector<std::string> notes_;
  int confirmed_ = 0, not_done_ = 0, cannot_tell_ = 0;
};

// ----------------------------------------------------------------------------
// KV v2

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

// ----------------------------------------------------------------------------
// Tokens

constexpr char kLookupAccessor[] = "auth/token/lookup-accessor";

enum class Presence { kPresent, kAbsent, kDenied, kOther };

struct Looked {
  Presence presence = Presence::kOther;
  VaultResponse r;
};

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

// ----------------------------------------------------------------------------
// Policies

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
