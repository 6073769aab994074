#include "connectors/vault/testing/fake_vault.h"

#include <httplib.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace wb::connectors::vault::testing {

using json = nlohmann::json;

namespace {

struct Token {
  std::string accessor;
  TokenSpec spec;
  std::string parent;  // token id, empty = orphan
  std::string issue_time;
  std::string path = "auth/token/create";
};

struct KvVersion {
  std::map<std::string, std::string> data;
  std::string created_time;
  std::string deletion_time;
  bool destroyed = false;
};

struct KvSecret {
  uint64_t current = 0;
  std::map<uint64_t, KvVersion> versions;
  std::string created_time, updated_time;
};

struct SecretId {
  std::string secret_id;
  std::string creation_time;
};

struct Role {
  std::string role_id;
  TokenSpec token;
  std::map<std::string, SecretId> secret_ids;  // accessor → secret-id
};

struct Lease {
  std::string issue_time, expire_time, last_renewal;
  int64_t ttl = 0;
};

struct Reply {
  int status = 204;
  json body;  // null → no body
};

Reply Errors(int status, std::vector<std::string> errors) {
  return {status, json{{"errors", errors}}};
}

// Vault's envelope around "data" for a 200.
json Envelope(const json& data, uint64_t request) {
  return json{{"request_id",
               absl::StrCat("00000000-0000-0000-0000-", absl::Dec(request, absl::kZeroPad12))},
              {"lease_id", ""},
              {"renewable", false},
              {"lease_duration", 0},
              {"data", data},
              {"wrap_info", nullptr},
              {"warnings", nullptr},
              {"auth", nullptr}};
}

bool Matches(const std::string& pattern, const std::string& path) {
  if (!pattern.empty() && pattern.back() == '*') {
    return absl::StartsWith(path, absl::string_view(pattern).substr(0, pattern.size() - 1));
  }
  return pattern == path;
}

}  // namespace

struct FakeVault::State {
  Options opts;
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  int port = 0;

  mutable absl::Mutex mu;
  int64_t clock_seconds ABSL_GUARDED_BY(mu) = 0;
  uint64_t counter ABSL_GUARDED_BY(mu) = 0;
  std::map<std::string, Token> tokens ABSL_GUARDED_BY(mu);  // token id → token
  Credential root ABSL_GUARDED_BY(mu);
  std::set<std::string> kv_mounts ABSL_GUARDED_BY(mu);
  std::map<std::string, KvSecret> kv ABSL_GUARDED_BY(mu);                          // "mount\npath"
  std::map<std::string, std::map<std::string, Role>> approle ABSL_GUARDED_BY(mu);  // mount → roles
  std::map<std::string, Lease> leases ABSL_GUARDED_BY(mu);
  std::map<std::string, std::string> policies ABSL_GUARDED_BY(mu);
  int denied_status ABSL_GUARDED_BY(mu) = 403;
  std::vector<FakeRequest> requests ABSL_GUARDED_BY(mu);
  int logins ABSL_GUARDED_BY(mu) = 0;

  std::string Now() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return absl::FormatTime(
        absl::RFC3339_sec,
        absl::FromCivil(absl::CivilSecond(2024, 5, 1, 0, 0, 0), absl::UTCTimeZone()) +
            absl::Seconds(clock_seconds),
        absl::UTCTimeZone());
  }
  std::string Tick() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ++clock_seconds;
    return Now();
  }
  std::string Random(absl::string_view prefix) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ++counter;
    // Deterministic, unique, and shaped like Vault's identifiers.
    return absl::StrCat(prefix, absl::Hex(counter * 2654435761u + 0x5eed, absl::kZeroPad8),
                        absl::Hex(counter, absl::kZeroPad8));
  }

  Credential NewToken(const TokenSpec& spec, const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    Token t;
    t.spec = spec;
    t.parent = spec.parent_token;
    t.accessor = Random("acc");
    t.issue_time = Tick();
    t.path = path;
    const std::string id = Random("hvs.");
    tokens[id] = t;
    return {id, t.accessor};
  }

  const Token* FindToken(const std::string& id) const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    auto it = tokens.find(id);
    return it == tokens.end() ? nullptr : &it->second;
  }

  // Capabilities of `token` on `path`, as Vault's ACL would give them: the
  // most specific matching rule wins (exact beats prefix, longer prefix
  // beats shorter).
  std::vector<std::string> Caps(const std::string& token, const std::string& path) const
      ABSL_SHARED_LOCKS_REQUIRED(mu) {
    if (token == root.secret) return {"root"};
    const Token* t = FindToken(token);
    if (t == nullptr) return {"deny"};
    const AclRule* best = nullptr;
    auto rank = [](const AclRule& r) {
      const bool glob = !r.path.empty() && r.path.back() == '*';
      return std::pair<int, size_t>(glob ? 0 : 1, r.path.size());
    };
    for (const auto& r : t->spec.rules) {
      if (Matches(r.path, path) && (best == nullptr || rank(r) > rank(*best))) best = &r;
    }
    if (best == nullptr) return {"deny"};
    for (const auto& c : best->capabilities) {
      if (c == "deny") return {"deny"};
    }
    return best->capabilities;
  }

  bool Allowed(const std::string& token, const std::string& path,
               std::initializer_list<const char*> needs) const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    const auto caps = Caps(token, path);
    if (caps.size() == 1 && caps[0] == "root") return true;
    for (const char* n : needs) {
      if (std::find(caps.begin(), caps.end(), n) == caps.end()) return false;
    }
    return true;
  }

  Reply Denied() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    if (denied_status == 404) return Errors(404, {});
    return Errors(403, {"1 error occurred:\n\t* permission denied\n\n"});
  }

  void RevokeTree(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::vector<std::string> children;
    for (const auto& [tid, t] : tokens) {
      if (t.parent == id) children.push_back(tid);
    }
    for (const auto& c : children) RevokeTree(c);
    tokens.erase(id);
  }

  json TokenData(const std::string& id, const Token& t, bool with_id) const {
    std::vector<std::string> policies = t.spec.policies;
    return json{{"accessor", t.accessor},
                {"creation_time", 1714521600},
                {"creation_ttl", t.spec.ttl_seconds},
                {"display_name", t.spec.display_name},
                {"entity_id", ""},
                {"expire_time", nullptr},
                {"explicit_max_ttl", 0},
                {"id", with_id ? id : ""},
                {"issue_time", t.issue_time},
                {"meta", nullptr},
                {"num_uses", 0},
                {"orphan", t.parent.empty()},
                {"path", t.path},
                {"policies", policies},
                {"renewable", true},
                {"ttl", t.spec.ttl_seconds}};
  }

  static std::string KvKey(const std::string& mount, const std::string& path) {
    return absl::StrCat(mount, "\n", path);
  }

  json VersionMeta(uint64_t n, const KvVersion& v) const {
    return json{{"created_time", v.created_time},
                {"custom_metadata", nullptr},
                {"deletion_time", v.deletion_time},
                {"destroyed", v.destroyed},
                {"version", n}};
  }

  // Routes one request. `rest` is the decoded path below /v1/.
  Reply Handle(const std::string& method, const std::string& rest, const httplib::Request& req,
               const json& body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  Reply HandleKv(const std::string& method, const std::string& mount, const std::string& op,
                 const std::string& path, const std::string& token, const httplib::Request& req,
                 const json& body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  Reply HandleAppRole(const std::string& method, const std::string& mount, const std::string& sub,
                      const std::string& token, const json& body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  Reply HandleLeases(const std::string& method, const std::string& rest, const std::string& token,
                     const httplib::Request& req, const json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  Reply HandlePolicy(const std::string& method, const std::string& name, const std::string& token,
                     const json& body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
};

using State = FakeVault::State;

Reply State::Handle(const std::string& method, const std::string& rest, const httplib::Request& req,
                    const json& body) {
  const std::string ns = req.get_header_value("X-Vault-Namespace");
  if (!opts.required_namespace.empty() && ns != opts.required_namespace) {
    return Errors(403, {"1 error occurred:\n\t* permission denied\n\n"});
  }

  // AppRole login is the only unauthenticated endpoint used.
  for (const auto& [mount, roles] : approle) {
    if (rest == absl::StrCat("auth/", mount, "/login")) {
      if (method != "POST" && method != "PUT") return Errors(405, {});
      ++logins;
      const std::string role_id = body.value("role_id", "");
      const std::string secret_id = body.value("secret_id", "");
      for (const auto& [name, role] : roles) {
        if (role.role_id != role_id) continue;
        for (const auto& [acc, sid] : role.secret_ids) {
          if (sid.secret_id != secret_id) continue;
          const Credential c = NewToken(role.token, absl::StrCat("auth/", mount, "/login"));
          json auth = {{"client_token", c.secret},
                       {"accessor", c.accessor},
                       {"policies", role.token.policies},
                       {"token_policies", role.token.policies},
                       {"metadata", {{"role_name", name}}},
                       {"lease_duration", role.token.ttl_seconds},
                       {"renewable", true},
                       {"entity_id", ""},
                       {"token_type", "service"},
                       {"orphan", true}};
          json out = Envelope(nullptr, counter);
          out["auth"] = auth;
          return {200, out};
        }
      }
      return Errors(400, {"invalid role or secret ID"});
    }
  }

  const std::string token = req.get_header_value("X-Vault-Token");
  if (FindToken(token) == nullptr && token != root.secret) {
    return Errors(403, {"1 error occurred:\n\t* permission denied\n\n"});
  }

  if (rest == "sys/capabilities-self") {
    if (method != "POST" && method != "PUT") return Errors(405, {});
    if (!body.contains("paths") || !body["paths"].is_array()) {
      return Errors(400, {"missing required 'paths' parameter"});
    }
    json data = json::object();
    for (const auto& p : body["paths"]) {
      if (p.is_string()) data[p.get<std::string>()] = Caps(token, p.get<std::string>());
    }
    if (body["paths"].size() == 1 && body["paths"][0].is_string()) {
      data["capabilities"] = Caps(token, body["paths"][0].get<std::string>());
    }
    json out = Envelope(data, counter);
    for (const auto& [k, v] : data.items()) out[k] = v;
    return {200, out};
  }
  if (rest == "auth/token/lookup-self") {
    if (method != "GET") return Errors(405, {});
    if (token == root.secret) {
      return {200, Envelope(json{{"display_name", "root"},
                                 {"policies", {"root"}},
                                 {"accessor", root.accessor},
                                 {"ttl", 0}},
                            counter)};
    }
    return {200, Envelope(TokenData(token, *FindToken(token), true), counter)};
  }
  if (rest == "auth/token/lookup-accessor" || rest == "auth/token/revoke-accessor") {
    if (method != "POST" && method != "PUT") return Errors(405, {});
    if (!Allowed(token, rest, {"update"})) return Denied();
    const std::string accessor = body.value("accessor", "");
    for (const auto& [id, t] : tokens) {
      if (t.accessor != accessor) continue;
      if (rest == "auth/token/lookup-accessor")
        return {200, Envelope(TokenData(id, t, false), counter)};
      const std::string victim = id;
      RevokeTree(victim);
      Tick();
      return {204, nullptr};
    }
    return Errors(400, {"invalid accessor"});
  }
  for (const auto& [mount, roles] : approle) {
    const std::string prefix = absl::StrCat("auth/", mount, "/");
    if (absl::StartsWith(rest, prefix)) {
      return HandleAppRole(method, mount, rest.substr(prefix.size()), token, body);
    }
  }
  if (absl::StartsWith(rest, "sys/leases/")) return HandleLeases(method, rest, token, req, body);
  if (absl::StartsWith(rest, "sys/policy/")) {
    return HandlePolicy(method, rest.substr(strlen("sys/policy/")), token, body);
  }
  // KV v2 mounts: the longest mount that prefixes the path.
  std::string best;
  for (const auto& m : kv_mounts) {
    if (absl::StartsWith(rest, m + "/") && m.size() > best.size()) best = m;
  }
  if (!best.empty()) {
    absl::string_view sub = absl::string_view(rest).substr(best.size() + 1);
    const size_t slash = sub.find('/');
    if (slash != absl::string_view::npos && slash + 1 < sub.size()) {
      return HandleKv(method, best, std::string(sub.substr(0, slash)),
                      std::string(sub.substr(slash + 1)), token, req, body);
    }
  }
  return Errors(404, {absl::StrCat("no handler for route \"", rest, "\". route entry not found.")});
}

Reply State::HandleKv(const std::string& method, const std::string& mount, const std::string& op,
                      const std::string& path, const std::string& token,
                      const httplib::Request& req, const json& body) {
  const std::string acl = absl::StrCat(mount, "/", op, "/", path);
  auto it = kv.find(KvKey(mount, path));
  KvSecret* secret = it == kv.end() ? nullptr : &it->second;

  if (op == "data" && method == "GET") {
    if (!Allowed(token, acl, {"read"})) return Denied();
    uint64_t n = 0;
    if (req.has_param("version") && !absl::SimpleAtoi(req.get_param_value("version"), &n)) {
      return Errors(400, {"invalid version"});
    }
    if (secret == nullptr) return Errors(404, {});
    if (n == 0) n = secret->current;
    auto v = secret->versions.find(n);
    if (v == secret->versions.end()) return Errors(404, {});
    json data = {{"data", nullptr}, {"metadata", VersionMeta(n, v->second)}};
    if (!v->second.destroyed && v->second.deletion_time.empty()) {
      data["data"] = v->second.data;
      return {200, Envelope(data, counter)};
    }
    return {404, Envelope(data, counter)};
  }
  if (op == "metadata" && method == "GET") {
    if (!Allowed(token, acl, {"read"})) return Denied();
    if (secret == nullptr) return Errors(404, {});
    json versions = json::object();
    for (const auto& [n, v] : secret->versions) {
      json m = VersionMeta(n, v);
      m.erase("custom_metadata");
      m.erase("version");
      versions[absl::StrCat(n)] = m;
    }
    return {200, Envelope(json{{"cas_required", false},
                               {"created_time", secret->created_time},
                               {"current_version", secret->current},
                               {"custom_metadata", nullptr},
                               {"delete_version_after", "0s"},
                               {"max_versions", 0},
                               {"oldest_version", 0},
                               {"updated_time", secret->updated_time},
                               {"versions", versions}},
                          counter)};
  }
  if (op == "metadata" && method == "DELETE") {
    if (!Allowed(token, acl, {"delete"})) return Denied();
    if (secret != nullptr) {
      kv.erase(it);
      Tick();
    }
    return {204, nullptr};
  }
  if ((op == "delete" || op == "destroy") && (method == "POST" || method == "PUT")) {
    if (!Allowed(token, acl, {"update"})) return Denied();
    if (!body.contains("versions") || !body["versions"].is_array() || body["versions"].empty()) {
      return Errors(400, {"no version number provided"});
    }
    if (secret == nullptr) return {204, nullptr};
    const std::string now = Tick();
    for (const auto& jv : body["versions"]) {
      if (!jv.is_number_unsigned()) return Errors(400, {"invalid version"});
      auto v = secret->versions.find(jv.get<uint64_t>());
      if (v == secret->versions.end()) continue;
      if (op == "delete") {
        if (!v->second.destroyed && v->second.deletion_time.empty()) v->second.deletion_time = now;
      } else {
        v->second.destroyed = true;
        v->second.data.clear();
      }
    }
    return {204, nullptr};
  }
  return Errors(405, {});
}

Reply State::HandleAppRole(const std::string& method, const std::string& mount,
                           const std::string& sub, const std::string& token, const json& body) {
  const std::vector<std::string> parts = absl::StrSplit(sub, '/');
  if (parts.size() != 4 || parts[0] != "role" || parts[2] != "secret-id-accessor" ||
      (parts[3] != "lookup" && parts[3] != "destroy")) {
    return Errors(404, {absl::StrCat("no handler for route \"auth/", mount, "/", sub, "\"")});
  }
  if (method != "POST" && method != "PUT") return Errors(405, {});
  if (!Allowed(token, absl::StrCat("auth/", mount, "/", sub), {"update"})) return Denied();
  auto& roles = approle[mount];
  auto r = roles.find(parts[1]);
  if (r == roles.end())
    return Errors(500, {absl::StrCat("role \"", parts[1], "\" does not exist")});
  const std::string accessor = body.value("secret_id_accessor", "");
  auto s = r->second.secret_ids.find(accessor);
  const std::string missing =
      absl::StrCat("failed to find accessor entry for secret_id_accessor: \"", accessor, "\"");
  if (parts[3] == "lookup") {
    if (s == r->second.secret_ids.end()) {
      return {404, Envelope(json{{"error", missing}}, counter)};
    }
    return {200, Envelope(json{{"cidr_list", json::array()},
                               {"creation_time", s->second.creation_time},
                               {"expiration_time", "0001-01-01T00:00:00Z"},
                               {"last_updated_time", s->second.creation_time},
                               {"metadata", json::object()},
                               {"secret_id_accessor", accessor},
                               {"secret_id_num_uses", 0},
                               {"secret_id_ttl", 0},
                               {"token_bound_cidrs", json::array()}},
                          counter)};
  }
  if (s == r->second.secret_ids.end()) return Errors(500, {missing});
  r->second.secret_ids.erase(s);
  Tick();
  return {204, nullptr};
}

Reply State::HandleLeases(const std::string& method, const std::string& rest,
                          const std::string& token, const httplib::Request& req, const json& body) {
  if (rest == "sys/leases/lookup" && (method == "POST" || method == "PUT")) {
    if (!Allowed(token, rest, {"update"})) return Denied();
    const std::string id = body.value("lease_id", "");
    auto l = leases.find(id);
    if (l == leases.end()) return Errors(400, {"invalid lease"});
    return {200, Envelope(json{{"id", id},
                               {"issue_time", l->second.issue_time},
                               {"expire_time", l->second.expire_time},
                               {"last_renewal", l->second.last_renewal.empty()
                                                    ? json(nullptr)
                                                    : json(l->second.last_renewal)},
                               {"renewable", true},
                               {"ttl", l->second.ttl}},
                          counter)};
  }
  if (absl::StartsWith(rest, "sys/leases/lookup/") && method == "GET" &&
      req.get_param_value("list") == "true") {
    std::string prefix = rest.substr(strlen("sys/leases/lookup/"));
    if (!absl::EndsWith(prefix, "/")) prefix += "/";
    if (!Allowed(token, absl::StrCat("sys/leases/lookup/", prefix), {"list", "sudo"})) {
      return Denied();
    }
    std::set<std::string> keys;
    for (const auto& [id, l] : leases) {
      if (!absl::StartsWith(id, prefix)) continue;
      const std::string tail = id.substr(prefix.size());
      const size_t slash = tail.find('/');
      keys.insert(slash == std::string::npos ? tail : tail.substr(0, slash + 1));
    }
    if (keys.empty()) return Errors(404, {});
    return {200, Envelope(json{{"keys", keys}}, counter)};
  }
  if (rest == "sys/leases/revoke" && (method == "POST" || method == "PUT")) {
    if (!Allowed(token, rest, {"update"})) return Denied();
    if (leases.erase(body.value("lease_id", "")) > 0) Tick();
    return {204, nullptr};
  }
  if (absl::StartsWith(rest, "sys/leases/revoke-prefix/") &&
      (method == "POST" || method == "PUT")) {
    if (!Allowed(token, rest, {"update", "sudo"})) return Denied();
    const std::string prefix = rest.substr(strlen("sys/leases/revoke-prefix/"));
    for (auto l = leases.begin(); l != leases.end();) {
      if (l->first == prefix || absl::StartsWith(l->first, prefix + "/")) {
        l = leases.erase(l);
      } else {
        ++l;
      }
    }
    Tick();
    return {204, nullptr};
  }
  return Errors(404, {absl::StrCat("no handler for route \"", rest, "\"")});
}

Reply State::HandlePolicy(const std::string& method, const std::string& raw_name,
                          const std::string& token, const json& body) {
  std::string name = raw_name;
  absl::AsciiStrToLower(&name);  // Vault stores policy names lower-cased
  const std::string acl = absl::StrCat("sys/policy/", name);
  if (method == "GET") {
    if (!Allowed(token, acl, {"read"})) return Denied();
    auto p = policies.find(name);
    if (p == policies.end()) return Errors(404, {});
    json out = Envelope(json{{"name", name}, {"rules", p->second}}, counter);
    out["name"] = name;
    out["rules"] = p->second;
    return {200, out};
  }
  if (method == "POST" || method == "PUT") {
    if (!Allowed(token, acl, {"update"})) return Denied();
    if (name == "root") return Errors(400, {"cannot update \"root\" policy"});
    std::string rules = body.value("policy", body.value("rules", ""));
    if (rules.empty()) return Errors(400, {"'policy' parameter not supplied or empty"});
    policies[name] = rules;
    Tick();
    return {204, nullptr};
  }
  return Errors(405, {});
}

absl::StatusOr<std::unique_ptr<FakeVault>> FakeVault::Start(Options opts) {
  std::unique_ptr<FakeVault> fake(new FakeVault());
  fake->state_ = std::make_unique<State>();
  State* s = fake->state_.get();
  s->opts = opts;
  if (!opts.tls_cert_file.empty()) {
    s->server =
        std::make_unique<httplib::SSLServer>(opts.tls_cert_file.c_str(), opts.tls_key_file.c_str());
  } else {
    s->server = std::make_unique<httplib::Server>();
  }
  if (!s->server->is_valid())
    return absl::InternalError("fake vault: server setup failed (TLS files?)");
  {
    absl::MutexLock lock(&s->mu);
    TokenSpec root_spec;
    root_spec.display_name = "root";
    root_spec.policies = {"root"};
    s->root = s->NewToken(root_spec, "auth/token/root");
    s->tokens.erase(s->root.secret);  // root is special-cased, never listed or revoked
    s->policies["root"] = "";
    s->policies["default"] = "path \"auth/token/lookup-self\" {\n  capabilities = [\"read\"]\n}\n";
  }
  auto handler = [s](const httplib::Request& req, httplib::Response& res) {
    json body = nullptr;
    if (!req.body.empty()) {
      body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
      if (body.is_discarded() || !body.is_object()) {
        res.status = 400;
        res.set_content(R"({"errors":["failed to parse JSON input"]})", "application/json");
        return;
      }
    } else {
      body = json::object();
    }
    Reply reply;
    {
      absl::MutexLock lock(&s->mu);
      s->requests.push_back(
          {req.method, req.target, req.path, req.get_header_value("X-Vault-Namespace"), req.body});
      if (!absl::StartsWith(req.path, "/v1/")) {
        reply = Errors(404, {});
      } else {
        reply = s->Handle(req.method, req.path.substr(4), req, body);
      }
    }
    res.status = reply.status;
    if (!reply.body.is_null()) res.set_content(reply.body.dump(), "application/json");
  };
  s->server->Get(".*", handler);
  s->server->Post(".*", handler);
  s->server->Put(".*", handler);
  s->server->Delete(".*", handler);
  s->port = s->server->bind_to_any_port("127.0.0.1");
  if (s->port <= 0) return absl::InternalError("fake vault: cannot bind 127.0.0.1:0");
  s->thread = std::thread([s] { s->server->listen_after_bind(); });
  // httplib's stop() is a no-op until the listening loop runs: wait for it,
  // so that a fake destroyed right after Create cannot hang the join.
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!s->server->is_running() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  return fake;
}

FakeVault::~FakeVault() {
  if (state_ == nullptr) return;
  state_->server->stop();
  if (state_->thread.joinable()) state_->thread.join();
}

std::string FakeVault::address() const {
  return absl::StrCat(state_->opts.tls_cert_file.empty() ? "http" : "https",
                      "://127.0.0.1:", state_->port);
}

Credential FakeVault::root() const {
  absl::MutexLock lock(&state_->mu);
  return state_->root;
}

Credential FakeVault::CreateToken(const TokenSpec& spec) {
  absl::MutexLock lock(&state_->mu);
  return state_->NewToken(spec, "auth/token/create");
}

bool FakeVault::TokenValid(const std::string& token) const {
  absl::MutexLock lock(&state_->mu);
  return token == state_->root.secret || state_->FindToken(token) != nullptr;
}

std::vector<std::string> FakeVault::LiveAccessors() const {
  absl::MutexLock lock(&state_->mu);
  std::vector<std::string> out;
  for (const auto& [id, t] : state_->tokens) out.push_back(t.accessor);
  std::sort(out.begin(), out.end());
  return out;
}

void FakeVault::EnableKv(const std::string& mount) {
  absl::MutexLock lock(&state_->mu);
  state_->kv_mounts.insert(mount);
}

uint64_t FakeVault::KvPut(const std::string& mount, const std::string& path,
                          const std::map<std::string, std::string>& data) {
  absl::MutexLock lock(&state_->mu);
  KvSecret& s = state_->kv[State::KvKey(mount, path)];
  const std::string now = state_->Tick();
  if (s.created_time.empty()) s.created_time = now;
  s.updated_time = now;
  ++s.current;
  s.versions[s.current] = KvVersion{data, now, "", false};
  return s.current;
}

void FakeVault::EnableAppRole(const std::string& mount) {
  absl::MutexLock lock(&state_->mu);
  state_->approle[mount];
}

void FakeVault::CreateRole(const std::string& mount, const std::string& role,
                           const std::string& role_id, const TokenSpec& token) {
  absl::MutexLock lock(&state_->mu);
  Role& r = state_->approle[mount][role];
  r.role_id = role_id;
  r.token = token;
}

Credential FakeVault::CreateSecretId(const std::string& mount, const std::string& role) {
  absl::MutexLock lock(&state_->mu);
  Role& r = state_->approle[mount][role];
  const std::string accessor = state_->Random("sida-");
  const std::string secret = state_->Random("sid-");
  r.secret_ids[accessor] = SecretId{secret, state_->Tick()};
  return {secret, accessor};
}

absl::StatusOr<std::string> FakeVault::Login(const std::string& mount, const std::string& role_id,
                                             const std::string& secret_id) {
  httplib::Request req;
  req.method = "POST";
  absl::MutexLock lock(&state_->mu);
  if (!state_->opts.required_namespace.empty()) {
    req.headers.emplace("X-Vault-Namespace", state_->opts.required_namespace);
  }
  const Reply r = state_->Handle("POST", absl::StrCat("auth/", mount, "/login"), req,
                                 json{{"role_id", role_id}, {"secret_id", secret_id}});
  if (r.status != 200) {
    return absl::PermissionDeniedError(absl::StrCat("login refused: HTTP ", r.status));
  }
  return r.body["auth"]["client_token"].get<std::string>();
}

void FakeVault::CreateLease(const std::string& lease_id, int64_t ttl_seconds) {
  absl::MutexLock lock(&state_->mu);
  Lease& l = state_->leases[lease_id];
  l.issue_time = state_->Tick();
  l.expire_time = absl::FormatTime(
      absl::RFC3339_sec,
      absl::FromCivil(absl::CivilSecond(2024, 5, 1, 0, 0, 0), absl::UTCTimeZone()) +
          absl::Seconds(state_->clock_seconds + ttl_seconds),
      absl::UTCTimeZone());
  l.ttl = ttl_seconds;
}

void FakeVault::RenewLease(const std::string& lease_id) {
  absl::MutexLock lock(&state_->mu);
  auto l = state_->leases.find(lease_id);
  if (l != state_->leases.end()) l->second.last_renewal = state_->Tick();
}

void FakeVault::PutPolicy(const std::string& name, const std::string& rules) {
  absl::MutexLock lock(&state_->mu);
  state_->policies[name] = rules;
}

std::optional<std::string> FakeVault::Policy(const std::string& name) const {
  absl::MutexLock lock(&state_->mu);
  auto p = state_->policies.find(name);
  if (p == state_->policies.end()) return std::nullopt;
  return p->second;
}

void FakeVault::SetDeniedStatus(int status) {
  absl::MutexLock lock(&state_->mu);
  state_->denied_status = status;
}

std::string FakeVault::Snapshot() const {
  absl::MutexLock lock(&state_->mu);
  const State& s = *state_;
  std::string out;
  for (const auto& [id, t] : s.tokens) {
    absl::StrAppend(&out, "token ", t.accessor, " ", t.spec.display_name, "\n");
  }
  for (const auto& [key, secret] : s.kv) {
    absl::StrAppend(&out, "kv ", absl::StrReplaceAll(key, {{"\n", ":"}}),
                    " current=", secret.current, "\n");
    for (const auto& [n, v] : secret.versions) {
      absl::StrAppend(&out, "  v", n, " deleted=", v.deletion_time, " destroyed=", v.destroyed,
                      " data=", absl::StrJoin(v.data, ",", absl::PairFormatter("=")), "\n");
    }
  }
  for (const auto& [mount, roles] : s.approle) {
    for (const auto& [name, role] : roles) {
      for (const auto& [acc, sid] : role.secret_ids) {
        absl::StrAppend(&out, "secret-id ", mount, "/", name, " ", acc, "\n");
      }
    }
  }
  for (const auto& [id, l] : s.leases) {
    absl::StrAppend(&out, "lease ", id, " renewed=", l.last_renewal, "\n");
  }
  for (const auto& [name, rules] : s.policies) {
    absl::StrAppend(&out, "policy ", name, "\n", rules, "\n--\n");
  }
  return out;
}

std::vector<FakeRequest> FakeVault::Requests() const {
  absl::MutexLock lock(&state_->mu);
  return state_->requests;
}

int FakeVault::logins() const {
  absl::MutexLock lock(&state_->mu);
  return state_->logins;
}

}  // namespace wb::connectors::vault::testing
