// A thin wrapper over one blocking hiredis connection, for the redis
// connector. Every command is sent with redisCommandArgv: each argument is
// its own RESP bulk string, never formatted into a command line. Not
// thread-safe; one Session per call.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct redisContext;

namespace wb::connectors::resp {

// A reply, flattened.
struct Value {
  enum Type { kNil, kStatus, kError, kString, kInteger, kArray };
  Type type = kNil;
  std::string str;  // status, error, string
  long long integer = 0;
  std::vector<Value> elements;

  bool is_error() const { return type == kError; }
  bool is_ok() const { return type == kStatus && str == "OK"; }
};

class Session {
 public:
  // Connects to host:port within `timeout` (also the per-command timeout).
  static absl::StatusOr<std::unique_ptr<Session>> Open(const std::string& host, int port,
                                                       absl::Duration timeout);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Sends one command; an error reply is a Value of type kError, a broken
  // connection an UNAVAILABLE status.
  absl::StatusOr<Value> Command(const std::vector<std::string>& argv);
  // Command, with an error reply turned into a status naming `what`
  // (PERMISSION_DENIED for NOPERM, FAILED_PRECONDITION otherwise).
  absl::StatusOr<Value> Must(const std::vector<std::string>& argv, absl::string_view what);

 private:
  explicit Session(redisContext* c) : ctx_(c) {}
  redisContext* ctx_;
};

}  // namespace wb::connectors::resp
