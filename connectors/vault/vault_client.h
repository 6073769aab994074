// The Vault / OpenBao HTTP API as the connector uses it: the agent's own
// authentication, the namespace header and JSON bodies.
//
// Authentication (exactly one, from writeback.v1.VaultConfig):
//   - token_file: the token is read from the file when first needed and
//     again after a 403 (so a rotated file — e.g. a Vault Agent sink — is
//     picked up); if the re-read token differs, the request is retried once.
//   - approle: role_id_file + secret_id_file, login at auth/<mount>/login;
//     the token is cached and logged in again once 80% of its lease has
//     passed (by the call's clock) or after a 403, retrying the request once.
// The token, role id and secret id are secrets: never logged, never in an
// error message or evidence.
//
// Every request carries X-Vault-Request: true, and X-Vault-Namespace when a
// namespace is configured.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "connectors/connector.h"
#include "connectors/vault/http_client.h"
#include "nlohmann/json.hpp"
#include "writeback/v1/config.pb.h"

namespace wb::connectors::vault {

struct VaultResponse {
  long status = 0;
  nlohmann::json body;  // null if the body was empty or not JSON

  // The strings of body["errors"], joined with "; " (Vault's error format).
  std::string Errors() const;
  // body["data"][key] if present, else body[key] (some endpoints answer at
  // the top level, most under "data"); null if neither.
  const nlohmann::json& Field(const char* key) const;
};

class VaultClient {
 public:
  // Validates the settings; `where` prefixes field names in errors (e.g.
  // "connectors[v].vault"). Reads no files yet.
  static absl::StatusOr<std::unique_ptr<VaultClient>> Create(const writeback::v1::VaultConfig& cfg,
                                                             const std::string& where);

  // One authenticated API call. `path` is the API path below /v1/, already
  // encoded (vault_path.h). `body` is sent as JSON when not null. Any HTTP
  // status is a response; errors are for transport and authentication
  // failures.
  absl::StatusOr<VaultResponse> Call(const CallContext& ctx, absl::string_view method,
                                     const std::string& path, const nlohmann::json& body = nullptr);

  // POST sys/capabilities-self for raw (unencoded) ACL paths: path → the
  // token's capabilities ("deny" when none). An error when the endpoint
  // itself answers anything but 200.
  absl::StatusOr<std::map<std::string, std::vector<std::string>>> CapabilitiesSelf(
      const CallContext& ctx, const std::vector<std::string>& paths);

  const std::string& address() const { return address_; }

 private:
  VaultClient(std::string address, writeback::v1::VaultConfig cfg, HttpClient http)
      : address_(std::move(address)), cfg_(std::move(cfg)), http_(std::move(http)) {}

  absl::StatusOr<VaultResponse> Send(const CallContext& ctx, absl::string_view method,
                                     const std::string& path, const nlohmann::json& body,
                                     const std::string* token);
  // The current token (reading the file or logging in when needed).
  absl::StatusOr<std::string> Token(const CallContext& ctx);
  // After a 403: refreshes the token; true if it changed (worth a retry).
  absl::StatusOr<bool> Refresh(const CallContext& ctx, const std::string& used);
  absl::StatusOr<std::string> ReadTokenFile();
  absl::Status Login(const CallContext& ctx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string address_;  // "https://host:port", no trailing '/'
  const writeback::v1::VaultConfig cfg_;
  const HttpClient http_;

  absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  absl::Time renew_after_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
};

// Validates a Vault address: "https://host[:port]" (a trailing '/' is
// dropped), or "http://" for a loopback host only (127.0.0.1, [::1],
// localhost). No user info, path, query or fragment. Returns it normalised.
absl::StatusOr<std::string> ValidateAddress(absl::string_view field, absl::string_view address);

}  // namespace wb::connectors::vault
