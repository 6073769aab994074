// Helpers shared by the pieces of the vault connector
// (connectors/vault/vault_internal.h).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/macros.h"
#include "connectors/vault/vault_internal.h"

namespace wb::connectors::vault_ops {
namespace {

bool HasCap(const std::vector<std::string>& caps, absl::string_view need) {
  return std::any_of(caps.begin(), caps.end(),
                     [&](const std::string& c) { return c == need || c == "root"; });
}

}  // namespace

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

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

const json& DataOrBody(const VaultResponse& r) {
  if (r.body.is_object()) {
    auto it = r.body.find("data");
    if (it != r.body.end() && it->is_object()) return *it;
  }
  return r.body;
}

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

absl::StatusOr<Capabilities> Capabilities::Query(
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
  out.obs_.set_detail(missing.empty()
                          ? "the agent's token may read everything it checks"
                          : absl::StrCat("the agent's token lacks ", absl::StrJoin(missing, ", ")));
  return out;
}

absl::Status RequireCap(VaultClient& c, const CallContext& ctx, const std::string& path,
                        const std::string& cap, absl::string_view conclusion) {
  WB_ASSIGN_OR_RETURN(auto caps, Capabilities::Query(c, ctx, {{path, cap}}));
  if (caps.Has(path, cap)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("cannot tell whether ", conclusion,
                                                  ": the agent's token lacks '", cap, "' on ", path,
                                                  " (see docs/connectors/vault.md)"));
}

}  // namespace wb::connectors::vault_ops
