#include "controlplane/web/web_server.h"

#include <httplib.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging/logging.h"

namespace wb::controlplane {
namespace {

bool SplitHostPort(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = address.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return absl::SimpleAtoi(address.substr(colon + 1), port) && *port >= 0 && *port <= 65535;
}

bool IsLoopbackName(absl::string_view host) {
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

// The host name of a Host header ("127.0.0.1:8080", "[::1]:80", "localhost").
std::string HostOf(absl::string_view header) {
  if (absl::StartsWith(header, "[")) {
    const size_t end = header.find(']');
    return std::string(end == absl::string_view::npos ? header : header.substr(1, end - 1));
  }
  const size_t colon = header.find(':');
  return std::string(colon == absl::string_view::npos ? header : header.substr(0, colon));
}

}  // namespace

absl::Status ValidateWebListenAddress(const std::string& field, const std::string& address,
                                      bool tls) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(address, &host, &port) || host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": '", address, "' is not host:port (port 0 = any)"));
  }
  if (!tls && !IsLoopbackName(host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field,
        ": plain HTTP is served only on a loopback address (127.0.0.1, ::1, localhost); "
        "set web_tls to serve '",
        host, "'"));
  }
  return absl::OkStatus();
}

struct WebServer::Impl {
  std::unique_ptr<httplib::Server> server;
};

WebServer::WebServer(WebServerOptions opts) : opts_(std::move(opts)) {}

WebServer::~WebServer() { Stop(); }

void WebServer::Get(const std::string& pattern, WebHandler handler) {
  routes_.emplace_back(pattern, std::move(handler));
}

absl::Status WebServer::Start() {
  absl::MutexLock l(&mu_);
  if (started_) return absl::FailedPreconditionError("web server: already started");
  std::string host;
  int want_port = 0;
  if (!SplitHostPort(opts_.listen_address, &host, &want_port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("web_listen_address: '", opts_.listen_address, "' is not host:port"));
  }
  auto impl = std::make_unique<Impl>();
  if (opts_.tls) {
    auto s = std::make_unique<httplib::SSLServer>(
        opts_.cert_file.c_str(), opts_.key_file.c_str(),
        opts_.client_ca_file.empty() ? nullptr : opts_.client_ca_file.c_str());
    if (!s->is_valid()) {
      return absl::InvalidArgumentError(
          "web_tls: cannot load the control plane's certificate, key or CA for HTTPS");
    }
    impl->server = std::move(s);
  } else {
    impl->server = std::make_unique<httplib::Server>();
  }
  httplib::Server& svr = *impl->server;
  const int threads = std::max(1, opts_.threads);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  svr.set_read_timeout(10);
  svr.set_write_timeout(10);
  svr.set_default_headers({
      {"Cache-Control", "no-store"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'"},
  });
  const bool check_host = !opts_.tls;
  svr.set_pre_routing_handler([check_host](const httplib::Request& req, httplib::Response& res) {
    if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.set_header("Allow", "GET, HEAD");
      res.set_content("read-only: only GET is served\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (check_host && !IsLoopbackName(HostOf(req.get_header_value("Host")))) {
      res.status = 421;
      res.set_content("this server answers only to a loopback host name\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  for (const auto& [pattern, handler] : routes_) {
    WebHandler h = handler;
    svr.Get(pattern, [h](const httplib::Request& req, httplib::Response& res) {
      WebRequest r;
      r.path = req.path;
      for (size_t i = 1; i < req.matches.size(); ++i) r.matches.push_back(req.matches[i].str());
      for (const auto& [k, v] : req.params) r.params[k] = v;
      WebResponse out = h(r);
      res.status = out.status;
      res.set_content(std::move(out.body), out.content_type.c_str());
    });
  }
  int port = want_port == 0 ? svr.bind_to_any_port(host)
                            : (svr.bind_to_port(host, want_port) ? want_port : -1);
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("web_listen_address: cannot listen on ", opts_.listen_address));
  }
  impl_ = std::move(impl);
  port_ = port;
  started_ = true;
  httplib::Server* s = impl_->server.get();
  thread_ = std::thread([s] { s->listen_after_bind(); });
  // stop() is a no-op until the listening loop runs: wait for it, so that a
  // Stop right after Start cannot leave the thread listening.
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!s->is_running() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  log::Info("web dashboard listening",
            {{"address", absl::StrCat(host, ":", port)}, {"tls", opts_.tls ? "true" : "false"}});
  return absl::OkStatus();
}

void WebServer::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (impl_ != nullptr && impl_->server != nullptr) impl_->server->stop();
  }
  if (thread_.joinable()) thread_.join();
}

int WebServer::port() const {
  absl::MutexLock l(&mu_);
  return port_;
}

}  // namespace wb::controlplane
