#include "connectors/vault/vault_client.h"

#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "connectors/vault/vault_path.h"

namespace wb::connectors::vault {
namespace {

using json = nlohmann::json;

constexpr uint32_t kDefaultTimeoutMs = 10'000;
constexpr uint32_t kMaxTimeoutMs = 300'000;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status ValidateFile(absl::string_view field, const std::string& path) {
  if (path.empty() || path[0] != '/') return Invalid(field, "must be an absolute path");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Invalid(field, absl::StrCat(path, " is not a readable file"));
  }
  return absl::OkStatus();
}

// Reads a credential file: trimmed, non-empty, visible ASCII only (it goes
// into a header or a JSON body). The message never contains the content.
absl::StatusOr<std::string> ReadCredential(absl::string_view what, const std::string& path) {
  auto content = fs::ReadFile(path, 64 * 1024);
  if (!content.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read ", what, " file ", path, ": ", content.status().message()));
  }
  std::string v(absl::StripAsciiWhitespace(*content));
  if (v.empty())
    return absl::FailedPreconditionError(absl::StrCat(what, " file ", path, " is empty"));
  for (unsigned char c : v) {
    if (c < 0x21 || c > 0x7e) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, " file ", path, " holds characters other than visible ASCII"));
    }
  }
  return v;
}

bool VisibleAscii(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x21 && static_cast<unsigned char>(c) <= 0x7e;
  });
}

std::string OneLine(absl::string_view s) {
  std::string out(s.substr(0, 512));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

}  // namespace

std::string VaultResponse::Errors() const {
  std::vector<std::string> out;
  if (body.is_object()) {
    auto it = body.find("errors");
    if (it != body.end() && it->is_array()) {
      for (const auto& e : *it) {
        if (e.is_string()) out.push_back(OneLine(e.get<std::string>()));
      }
    }
  }
  return absl::StrJoin(out, "; ");
}

const json& VaultResponse::Field(const char* key) const {
  static const json kNull;
  if (!body.is_object()) return kNull;
  auto data = body.find("data");
  if (data != body.end() && data->is_object()) {
    auto it = data->find(key);
    if (it != data->end()) return *it;
  }
  auto it = body.find(key);
  return it != body.end() ? *it : kNull;
}

absl::StatusOr<std::string> ValidateAddress(absl::string_view field, absl::string_view address) {
  absl::string_view rest = address;
  bool https = true;
  if (absl::ConsumePrefix(&rest, "https://")) {
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    https = false;
  } else {
    return Invalid(field, "must start with https:// (or http:// for a loopback address)");
  }
  absl::ConsumeSuffix(&rest, "/");
  if (rest.empty()) return Invalid(field, "has no host");
  if (rest.find_first_of("/?#@ \\") != absl::string_view::npos) {
    return Invalid(field, "must be scheme://host[:port] with no user, path, query or fragment");
  }
  absl::string_view host = rest, port;
  if (rest[0] == '[') {
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos) return Invalid(field, "unterminated [IPv6] host");
    host = rest.substr(0, close + 1);
    absl::string_view after = rest.substr(close + 1);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":")) return Invalid(field, "bad port");
    port = after;
    if (!after.empty() && port.empty()) return Invalid(field, "empty port");
  } else {
    const size_t colon = rest.find(':');
    if (colon != absl::string_view::npos) {
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
      if (port.empty()) return Invalid(field, "empty port");
    }
    if (host.empty()) return Invalid(field, "has no host");
    for (char c : host) {
      if (!(absl::ascii_isalnum(c) || c == '-' || c == '.')) {
        return Invalid(field, "host may contain only letters, digits, '-' and '.'");
      }
    }
  }
  if (!port.empty()) {
    int p = 0;
    if (!absl::SimpleAtoi(port, &p) || p < 1 || p > 65535) return Invalid(field, "bad port");
  }
  if (!https && host != "127.0.0.1" && host != "localhost" && host != "[::1]") {
    return Invalid(field, "http:// is accepted only for a loopback host; use https://");
  }
  return std::string(https ? "https://" : "http://") + std::string(rest);
}

absl::StatusOr<std::unique_ptr<VaultClient>> VaultClient::Create(
    const writeback::v1::VaultConfig& in, const std::string& where) {
  writeback::v1::VaultConfig cfg = in;
  WB_ASSIGN_OR_RETURN(std::string address, ValidateAddress(where + ".address", cfg.address()));
  if (!cfg.ca_file().empty()) WB_RETURN_IF_ERROR(ValidateFile(where + ".ca_file", cfg.ca_file()));
  WB_RETURN_IF_ERROR(ValidateNamespace(where + ".namespace", cfg.namespace_()));
  const bool token = !cfg.token_file().empty();
  const bool approle = cfg.has_approle();
  if (token == approle) {
    return Invalid(where, "set exactly one of token_file and approle (the agent's credential)");
  }
  if (token) WB_RETURN_IF_ERROR(ValidateFile(where + ".token_file", cfg.token_file()));
  if (approle) {
    auto* a = cfg.mutable_approle();
    if (a->mount().empty()) a->set_mount("approle");
    WB_RETURN_IF_ERROR(ValidatePath(where + ".approle.mount", a->mount()));
    WB_RETURN_IF_ERROR(ValidateFile(where + ".approle.role_id_file", a->role_id_file()));
    WB_RETURN_IF_ERROR(ValidateFile(where + ".approle.secret_id_file", a->secret_id_file()));
  }
  if (cfg.request_timeout_ms() == 0) cfg.set_request_timeout_ms(kDefaultTimeoutMs);
  if (cfg.request_timeout_ms() > kMaxTimeoutMs) {
    return Invalid(where + ".request_timeout_ms", absl::StrCat("at most ", kMaxTimeoutMs));
  }
  HttpClient http(
      {.ca_file = cfg.ca_file(), .timeout = absl::Milliseconds(cfg.request_timeout_ms())});
  return std::unique_ptr<VaultClient>(new VaultClient(std::move(address), std::move(cfg), http));
}

absl::StatusOr<std::string> VaultClient::ReadTokenFile() {
  return ReadCredential("token", cfg_.token_file());
}

absl::Status VaultClient::Login(const CallContext& ctx) {
  const auto& a = cfg_.approle();
  WB_ASSIGN_OR_RETURN(std::string role_id, ReadCredential("role_id", a.role_id_file()));
  WB_ASSIGN_OR_RETURN(std::string secret_id, ReadCredential("secret_id", a.secret_id_file()));
  const std::string path = absl::StrCat("auth/", EncodePath(a.mount()), "/login");
  WB_ASSIGN_OR_RETURN(
      VaultResponse r,
      Send(ctx, "POST", path, json{{"role_id", role_id}, {"secret_id", secret_id}}, nullptr));
  if (r.status != 200) {
    return absl::PermissionDeniedError(
        absl::StrCat("AppRole login at ", path, " refused: HTTP ", r.status, ": ", r.Errors()));
  }
  const json* auth = r.body.is_object() && r.body.contains("auth") ? &r.body["auth"] : nullptr;
  if (auth == nullptr || !auth->is_object() || !auth->contains("client_token") ||
      !(*auth)["client_token"].is_string() ||
      !VisibleAscii((*auth)["client_token"].get_ref<const std::string&>())) {
    return absl::UnavailableError(
        absl::StrCat("AppRole login at ", path, ": no usable auth.client_token"));
  }
  token_ = (*auth)["client_token"].get<std::string>();
  int64_t lease = 0;
  if (auth->contains("lease_duration") && (*auth)["lease_duration"].is_number_integer()) {
    lease = (*auth)["lease_duration"].get<int64_t>();
  }
  renew_after_ = lease > 0 ? ctx.clock->Now() + absl::Seconds(lease) * 0.8 : absl::InfiniteFuture();
  return absl::OkStatus();
}

absl::StatusOr<std::string> VaultClient::Token(const CallContext& ctx) {
  absl::MutexLock lock(&mu_);
  if (cfg_.has_approle()) {
    if (token_.empty() || ctx.clock->Now() >= renew_after_) WB_RETURN_IF_ERROR(Login(ctx));
  } else if (token_.empty()) {
    WB_ASSIGN_OR_RETURN(token_, ReadTokenFile());
  }
  return token_;
}

absl::StatusOr<bool> VaultClient::Refresh(const CallContext& ctx, const std::string& used) {
  absl::MutexLock lock(&mu_);
  if (token_ != used) return true;  // another call refreshed it already
  if (cfg_.has_approle()) {
    WB_RETURN_IF_ERROR(Login(ctx));
    return true;
  }
  WB_ASSIGN_OR_RETURN(std::string fresh, ReadTokenFile());
  if (fresh == token_) return false;
  token_ = std::move(fresh);
  return true;
}

absl::StatusOr<VaultResponse> VaultClient::Send(const CallContext& ctx, absl::string_view method,
                                                const std::string& path, const json& body,
                                                const std::string* token) {
  HttpRequest req;
  req.method = std::string(method);
  req.url = absl::StrCat(address_, "/v1/", path);
  req.headers.emplace_back("X-Vault-Request", "true");
  if (token != nullptr) req.headers.emplace_back("X-Vault-Token", *token);
  if (!cfg_.namespace_().empty()) req.headers.emplace_back("X-Vault-Namespace", cfg_.namespace_());
  if (!body.is_null()) {
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  const absl::Duration left = ctx.deadline - ctx.clock->Now();
  if (left <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError(absl::StrCat("deadline passed before ", method, " ", path));
  }
  WB_ASSIGN_OR_RETURN(HttpResponse http, http_.Do(req, left));
  VaultResponse r;
  r.status = http.status;
  if (!http.body.empty()) {
    r.body = json::parse(http.body, nullptr, /*allow_exceptions=*/false);
    if (r.body.is_discarded()) r.body = nullptr;
  }
  return r;
}

absl::StatusOr<VaultResponse> VaultClient::Call(const CallContext& ctx, absl::string_view method,
                                                const std::string& path, const json& body) {
  WB_ASSIGN_OR_RETURN(std::string token, Token(ctx));
  WB_ASSIGN_OR_RETURN(VaultResponse r, Send(ctx, method, path, body, &token));
  if (r.status != 403) return r;
  // The token may have expired or been rotated: refresh once and retry. A
  // second 403 is a real "permission denied" and is the caller's to judge.
  WB_ASSIGN_OR_RETURN(bool changed, Refresh(ctx, token));
  if (!changed) return r;
  WB_ASSIGN_OR_RETURN(token, Token(ctx));
  return Send(ctx, method, path, body, &token);
}

absl::StatusOr<std::map<std::string, std::vector<std::string>>> VaultClient::CapabilitiesSelf(
    const CallContext& ctx, const std::vector<std::string>& paths) {
  WB_ASSIGN_OR_RETURN(VaultResponse r,
                      Call(ctx, "POST", "sys/capabilities-self", json{{"paths", paths}}));
  if (r.status != 200) {
    return absl::PermissionDeniedError(
        absl::StrCat("sys/capabilities-self: HTTP ", r.status, ": ", r.Errors()));
  }
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& p : paths) {
    std::vector<std::string> caps;
    const json& v = r.Field(p.c_str());
    if (v.is_array()) {
      for (const auto& c : v) {
        if (c.is_string()) caps.push_back(c.get<std::string>());
      }
    }
    if (caps.empty()) caps.push_back("deny");
    out[p] = std::move(caps);
  }
  return out;
}

}  // namespace wb::connectors::vault
