#include "controlplane/web/web_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "common/text/display.h"
#include "controlplane/web/dashboard.h"

namespace wb::controlplane {
namespace {

using ::testing::HasSubstr;

TEST(WebListenAddressTest, PlainHttpOnlyOnLoopback) {
  EXPECT_TRUE(ValidateWebListenAddress("web_listen_address", "127.0.0.1:0", false).ok());
  EXPECT_TRUE(ValidateWebListenAddress("web_listen_address", "[::1]:8080", false).ok());
  EXPECT_TRUE(ValidateWebListenAddress("web_listen_address", "localhost:8080", false).ok());
  auto wide = ValidateWebListenAddress("web_listen_address", "0.0.0.0:8080", false);
  EXPECT_EQ(wide.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wide.message(), HasSubstr("web_tls"));
  EXPECT_TRUE(ValidateWebListenAddress("web_listen_address", "0.0.0.0:8443", true).ok());
  EXPECT_THAT(ValidateWebListenAddress("web_listen_address", "8080", false).message(),
              HasSubstr("web_listen_address: '8080' is not host:port"));
  EXPECT_FALSE(ValidateWebListenAddress("web_listen_address", "127.0.0.1:99999", false).ok());
}

class WebServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WebServerOptions o;
    o.listen_address = "127.0.0.1:0";
    server_ = std::make_unique<WebServer>(o);
    server_->Get("/hello", [](const WebRequest& r) {
      auto it = r.params.find("name");
      return WebResponse{200, "text/plain",
                         absl::StrCat("hi ", it == r.params.end() ? "?" : it->second)};
    });
    server_->Get("/item/([a-z]+)", [](const WebRequest& r) {
      return WebResponse{404, "application/json",
                         absl::StrCat("{\"id\":\"", r.matches.at(0), "\"}")};
    });
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }
  std::unique_ptr<WebServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(WebServerTest, ServesRoutesWithSafeHeaders) {
  auto r = client_->Get("/hello?name=ops");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hi ops");
  EXPECT_EQ(r->get_header_value("Cache-Control"), "no-store");
  EXPECT_THAT(r->get_header_value("Content-Security-Policy"), HasSubstr("default-src 'none'"));
  EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
  auto item = client_->Get("/item/abc");
  ASSERT_TRUE(item);
  EXPECT_EQ(item->status, 404);
  EXPECT_EQ(item->body, "{\"id\":\"abc\"}");
  auto missing = client_->Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(WebServerTest, ReadOnlyAndLoopbackHostOnly) {
  auto post = client_->Post("/hello", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  // A page on another origin that rebinds its name to 127.0.0.1 sends its
  // own Host header: refused.
  auto rebound = client_->Get("/hello", {{"Host", "evil.example:80"}});
  ASSERT_TRUE(rebound);
  EXPECT_EQ(rebound->status, 421);
  auto local = client_->Get("/hello", {{"Host", "localhost"}});
  ASSERT_TRUE(local);
  EXPECT_EQ(local->status, 200);
}

TEST_F(WebServerTest, StopIsPromptAndIdempotent) {
  server_->Stop();
  server_->Stop();
  auto r = client_->Get("/hello");
  EXPECT_FALSE(r);
}

TEST(DashboardTest, SelfContainedPage) {
  const absl::string_view html = DashboardHtml();
  EXPECT_THAT(std::string(html), HasSubstr("<!doctype html>"));
  EXPECT_THAT(std::string(html), HasSubstr("/api/fleet"));
  // No external assets: nothing is loaded from another origin.
  EXPECT_EQ(html.find("http://") == absl::string_view::npos ||
                html.find("http://www.w3.org/2000/svg") != absl::string_view::npos,
            true);
  EXPECT_EQ(html.find("https://"), absl::string_view::npos);
  EXPECT_EQ(html.find("<script src"), absl::string_view::npos);
  EXPECT_EQ(html.find("<link"), absl::string_view::npos);
}

// The page escapes what wbctl escapes: its table is common/text's.
TEST(DashboardTest, ThePageEscapesTheSameCharactersAsWbctl) {
  const std::string html(DashboardHtml());
  const size_t at = html.find("const UNSAFE_RANGES = ");
  ASSERT_NE(at, std::string::npos);
  const std::string line = html.substr(at, html.find(';', at) - at);
  std::string want = "const UNSAFE_RANGES = [";
  bool first = true;
  for (const auto& [lo, hi] : text::UnsafeRanges()) {
    absl::StrAppend(&want, first ? "" : ", ", "[", lo, ", ", hi, "]");
    first = false;
  }
  EXPECT_EQ(line, want + "]");
  EXPECT_NE(line.find("[8232, 8238]"), std::string::npos);  // U+2028..U+202E
}

}  // namespace
}  // namespace wb::controlplane
