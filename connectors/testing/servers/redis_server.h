// Test support: a throwaway redis-server on 127.0.0.1 (generated config, an
// ACL file, no persistence) in a test's temporary directory, and a small
// hiredis client for set-up and for holding "live sessions". For tests only.
//
//   auto r = RedisServer::Start(tmp.Sub("redis"), {"user svc on >pw ~* +@all"});
//   auto admin = RedisClient::Connect((*r)->port(), "default", (*r)->admin_password());
//   (*admin)->Command({"ACL", "SETUSER", "x", "on"});
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "connectors/testing/servers/process.h"

struct redisContext;

namespace wb::connectors::testing {

class RedisServer {
 public:
  struct Options {
    std::string binary = "/usr/bin/redis-server";
    // Extra lines of the initial ACL file ("user <name> <rules...>"). The
    // `default` user always gets admin_password() and every permission.
    std::vector<std::string> acl_lines;
    bool with_aclfile = true;
  };
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(const std::string& dir,
                                                            const Options& opts);
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(const std::string& dir) {
    return Start(dir, Options());
  }
  ~RedisServer();  // SIGTERM, then SIGKILL after 10 s

  int port() const { return port_; }
  std::string address() const;  // "127.0.0.1:<port>"
  const std::string& admin_password() const { return password_; }
  const std::string& aclfile() const { return aclfile_; }
  std::string ReadLog() const { return ReadFileOrEmpty(log_path_); }

 private:
  RedisServer() = default;
  std::unique_ptr<ChildProcess> child_;
  int port_ = 0;
  std::string password_;
  std::string aclfile_;
  std::string log_path_;
};

// A reply, flattened: type is one of "status", "error", "string", "integer",
// "nil", "array".
struct RedisValue {
  std::string type;
  std::string str;
  long long integer = 0;
  std::vector<RedisValue> elements;
};

// One blocking hiredis connection. Not thread-safe.
class RedisClient {
 public:
  // Connects and, if user is non-empty, AUTHs (error carries the reply).
  static absl::StatusOr<std::unique_ptr<RedisClient>> Connect(int port, const std::string& user,
                                                              const std::string& password);
  ~RedisClient();
  // Every argument is its own argv entry. An error reply is returned as a
  // value of type "error"; a broken connection is an error status.
  absl::StatusOr<RedisValue> Command(const std::vector<std::string>& argv);
  // True if PING still answers PONG.
  bool Alive();

 private:
  explicit RedisClient(redisContext* c) : ctx_(c) {}
  redisContext* ctx_;
};

}  // namespace wb::connectors::testing
