// The control plane's read-only HTTP(S) server (cpp-httplib): the
// dashboard, its JSON API, /metrics, /healthz and /readyz, on its own port.
//
// Only GET (and HEAD) routes exist. Every response carries no-store caching
// and a strict Content-Security-Policy (inline script and style only, fetches
// to the same origin, no external assets). Over plain HTTP the server only
// binds a loopback address, and requests whose Host header is not a
// loopback name (localhost, 127.0.0.1, [::1]) are refused, so that a web
// page elsewhere cannot read it through DNS rebinding. Over HTTPS it uses
// the given certificate and, with a client CA, requires client certificates
// issued by that CA.
//
// Thread-safety: add routes before Start; Start/Stop/port from any thread.
// Handlers run on the server's worker threads, concurrently.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace wb::controlplane {

struct WebRequest {
  std::string path;
  std::vector<std::string> matches;           // regex groups of the route (1..n)
  std::map<std::string, std::string> params;  // query parameters (last value wins)
};

struct WebResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

using WebHandler = std::function<WebResponse(const WebRequest&)>;

struct WebServerOptions {
  std::string listen_address;  // host:port; port 0 = any
  bool tls = false;
  std::string cert_file, key_file;  // PEM, for tls
  std::string client_ca_file;       // non-empty: client certificates required
  int threads = 4;
};

// Checks `listen_address` ("host:port") and the plain-HTTP-on-loopback rule.
// INVALID_ARGUMENT naming `field`.
absl::Status ValidateWebListenAddress(const std::string& field, const std::string& address,
                                      bool tls);

class WebServer {
 public:
  explicit WebServer(WebServerOptions opts);
  ~WebServer();  // calls Stop()
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  // `pattern` is an ECMAScript regex matched against the whole path.
  void Get(const std::string& pattern, WebHandler handler);

  // Binds and starts serving on a thread of its own.
  absl::Status Start();
  // Stops accepting and joins the server thread. Idempotent.
  void Stop();
  int port() const;

 private:
  struct Impl;
  const WebServerOptions opts_;
  std::vector<std::pair<std::string, WebHandler>> routes_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  int port_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace wb::controlplane
