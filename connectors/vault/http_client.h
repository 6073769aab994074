// A small HTTP(S) client over libcurl for the Vault connector: one request at
// a time per call, TLS peer and host name always verified (against ca_file
// when given, else the system store), no redirects, no proxies, only http
// and https, a total timeout and a cap on the response size.
//
// Header values may carry secrets (X-Vault-Token): they are never logged and
// never appear in error messages.
//
// Thread-safety: Do() may be called from several threads at once (one curl
// handle per call).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace wb::connectors::vault {

struct HttpRequest {
  std::string method;  // "GET", "POST", "DELETE", ...
  std::string url;     // absolute, already encoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent when non-empty
};

struct HttpResponse {
  long status = 0;
  std::string body;
};

class HttpClient {
 public:
  struct Options {
    std::string ca_file;  // PEM bundle; empty = the system store
    absl::Duration timeout = absl::Seconds(10);
    size_t max_response_bytes = 4 << 20;
  };
  explicit HttpClient(Options opts);

  // Errors: UNAVAILABLE when no response arrived (connection, TLS, timeout;
  // the message names the URL and curl's reason), RESOURCE_EXHAUSTED when the
  // response was larger than max_response_bytes. Any HTTP status is a
  // response. `timeout` (if shorter) bounds this call.
  absl::StatusOr<HttpResponse> Do(const HttpRequest& req,
                                  absl::Duration timeout = absl::InfiniteDuration()) const;

 private:
  Options opts_;
};

}  // namespace wb::connectors::vault
