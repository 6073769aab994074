// FakeVault: a FAKE of the HashiCorp Vault / OpenBao HTTP API, for tests
// only. Vault and OpenBao cannot be installed on the build machines, so the
// vault connector's tests run against this in-process HTTP server (cpp-
// httplib) on 127.0.0.1, port chosen by the kernel, plain HTTP or HTTPS.
//
// It implements ONLY the endpoints the connector uses, with the methods,
// status codes and JSON bodies of Vault's API documentation (OpenBao's API
// is the same). Behaviour per endpoint and the document it follows (paths
// in hashicorp/vault, website/content/api-docs/):
//
//   POST /v1/sys/capabilities-self               system/capabilities-self.mdx
//       {"paths": [...]} → 200 {"<path>": [caps], "capabilities": [caps] (one
//       path only), "data": {same}}; a path no rule matches → ["deny"]; the
//       root token → ["root"].
//   GET  /v1/auth/token/lookup-self              auth/token.mdx "Lookup a Token (Self)"
//   POST /v1/auth/token/lookup-accessor          auth/token.mdx "Lookup a Token (Accessor)"
//       200 {"data": {..., "id": ""}}; unknown accessor → 400
//       {"errors": ["invalid accessor"]}.
//   POST /v1/auth/token/revoke-accessor          auth/token.mdx "Revoke a Token Accessor"
//       204; revokes the token and all its children (tokens created with it
//       as parent); unknown accessor → 400 {"errors": ["invalid accessor"]}.
//   POST /v1/auth/<mount>/login                  auth/approle.mdx "Login with AppRole"
//       200 {"auth": {"client_token", "accessor", "lease_duration", ...}};
//       a wrong role_id/secret_id → 400 {"errors": ["invalid role or secret ID"]}.
//   POST /v1/auth/<mount>/role/<role>/secret-id-accessor/lookup
//                                                auth/approle.mdx "Read AppRole secret ID accessor"
//       200 {"data": {...}}; unknown accessor → 404 {"data": {"error":
//       "failed to find accessor entry for secret_id_accessor: \"...\""}}
//       (Vault >= 1.9, hashicorp/vault#12788); unknown role → 500.
//   POST /v1/auth/<mount>/role/<role>/secret-id-accessor/destroy
//                                                auth/approle.mdx "Destroy AppRole Secret ID
//                                                Accessor"
//       204; unknown accessor → 500 {"errors": ["failed to find accessor
//       entry for secret_id_accessor: \"...\""]} (path_role.go).
//   GET  /v1/<kv>/data/<path>?version=N          secret/kv/kv-v2.mdx "Read Secret Version"
//       200 {"data": {"data": {...}, "metadata": {...}}}; a deleted or
//       destroyed version → 404 with the same shape, "data": null and the
//       version's metadata (deletion_time / "destroyed": true); no such
//       version or secret → 404 {"errors": []}.
//   GET  /v1/<kv>/metadata/<path>                kv-v2.mdx "Read Secret Metadata"
//       200 {"data": {"current_version", "versions": {"1": {...}}, ...}};
//       none → 404 {"errors": []}.
//   POST /v1/<kv>/delete/<path>                  kv-v2.mdx "Delete Secret Versions" → 204
//   POST /v1/<kv>/destroy/<path>                 kv-v2.mdx "Destroy Secret Versions" → 204
//   DELETE /v1/<kv>/metadata/<path>              kv-v2.mdx "Delete Metadata and All Versions" → 204
//   POST /v1/sys/leases/lookup                   system/leases.mdx "Read lease"
//       200 {"data": {"id", "issue_time", "expire_time", "ttl", ...}};
//       unknown → 400 {"errors": ["invalid lease"]}.
//   GET  /v1/sys/leases/lookup/<prefix>/?list=true   leases.mdx "List leases" (sudo)
//       200 {"data": {"keys": [...]}}; none → 404 {"errors": []}.
//   POST /v1/sys/leases/revoke                   leases.mdx "Revoke lease" → 204
//   POST /v1/sys/leases/revoke-prefix/<prefix>   leases.mdx "Revoke prefix" (sudo) → 204
//   GET  /v1/sys/policy/<name>                   system/policy.mdx "Read policy"
//       200 {"name", "rules", "data": {"name", "rules"}}; none → 404 {"errors": []}.
//   POST /v1/sys/policy/<name>                   policy.mdx "Create/Update policy" → 204;
//       "root" → 400.
//   Anything else → 404 {"errors": ["no handler for route ..."]}.
//
// Authentication and authorisation (api-docs/index.mdx, "HTTP Status Codes"
// and the ACL concept page): every request but login needs X-Vault-Token of
// a live token, else 403 {"errors": ["permission denied"]} — this is how a
// revoked token is refused. Each token carries ACL rules (exact path, or a
// prefix ending in '*'; the most specific match wins, as in Vault) checked
// per endpoint with the capability Vault requires (read, update, delete,
// list, sudo). A denial is a 403 unless SetDeniedStatus(404) makes it a 404:
// a knob that models deployments where "no permission" surfaces as "not
// found", which the connector must not mistake for an effect.
//
// When Options.required_namespace is set, a request without that
// X-Vault-Namespace header is refused with 403.
//
// Time in bodies is a fixed fake clock starting 2024-05-01T00:00:00Z that
// advances one second per state change; nothing here reads the wall clock.
//
// Thread-safety: the server runs on its own thread; every method may be
// called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace wb::connectors::vault::testing {

struct AclRule {
  std::string path;                       // exact, or a prefix ending in '*'
  std::vector<std::string> capabilities;  // read, create, update, delete, list, sudo, deny
};

struct TokenSpec {
  std::string display_name = "token";
  std::vector<std::string> policies = {"default"};  // names reported by lookups
  std::vector<AclRule> rules;                       // what the token may do
  std::string parent_token;                         // empty = orphan
  int64_t ttl_seconds = 3600;
};

struct Credential {
  std::string secret;    // token or secret-id
  std::string accessor;  // its accessor
};

struct FakeRequest {
  std::string method;
  std::string target;  // as sent (still encoded)
  std::string path;    // decoded, as Vault routes it
  std::string namespace_;
  std::string body;
};

class FakeVault {
 public:
  struct Options {
    std::string tls_cert_file;  // both set: HTTPS with this PEM certificate and key
    std::string tls_key_file;
    std::string required_namespace;
  };

  static absl::StatusOr<std::unique_ptr<FakeVault>> Start(Options opts);
  ~FakeVault();
  FakeVault(const FakeVault&) = delete;
  FakeVault& operator=(const FakeVault&) = delete;

  // "http://127.0.0.1:PORT" (or https://).
  std::string address() const;
  Credential root() const;

  // Tokens.
  Credential CreateToken(const TokenSpec& spec);
  // Would a client presenting `token` be served (e.g. lookup-self)?
  bool TokenValid(const std::string& token) const;
  // Every accessor of a live token.
  std::vector<std::string> LiveAccessors() const;

  // KV v2.
  void EnableKv(const std::string& mount);
  // Writes a new version; returns its number.
  uint64_t KvPut(const std::string& mount, const std::string& path,
                 const std::map<std::string, std::string>& data);

  // AppRole.
  void EnableAppRole(const std::string& mount);
  void CreateRole(const std::string& mount, const std::string& role, const std::string& role_id,
                  const TokenSpec& token);
  Credential CreateSecretId(const std::string& mount, const std::string& role);
  // An AppRole login as a client would do it: the token, or the HTTP status.
  absl::StatusOr<std::string> Login(const std::string& mount, const std::string& role_id,
                                    const std::string& secret_id);

  // Leases.
  void CreateLease(const std::string& lease_id, int64_t ttl_seconds = 3600);
  void RenewLease(const std::string& lease_id);

  // Policies.
  void PutPolicy(const std::string& name, const std::string& rules);
  std::optional<std::string> Policy(const std::string& name) const;

  // 403 (Vault's behaviour, the default) or 404 for a denied request.
  void SetDeniedStatus(int status);

  // The whole stored state as text, for "did anything change" checks.
  std::string Snapshot() const;
  std::vector<FakeRequest> Requests() const;
  int logins() const;

  struct State;  // internal

 private:
  FakeVault() = default;
  std::unique_ptr<State> state_;
};

}  // namespace wb::connectors::vault::testing
