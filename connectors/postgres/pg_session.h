// A thin RAII wrapper over one libpq connection, for the postgres connector.
// Every statement goes through PQexecParams (the extended protocol: one
// statement per call, never several separated by ';'); values are bound
// parameters; identifiers are quoted by PQescapeIdentifier (Quote()), also
// for names read back from the catalog. Errors carry the SQLSTATE and the
// server's primary message only (never the statement text, which may hold a
// password verifier). Not thread-safe; one Session per call.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

typedef struct pg_conn PGconn;

namespace wb::connectors::pg {

using Row = std::vector<std::optional<std::string>>;
using ConnParams = std::vector<std::pair<std::string, std::string>>;

// The outcome of a login attempt (a probe): whether the server accepted it,
// and if not whether it had asked for the password (so the refusal came
// from authentication or authorization, not from the network or pg_hba).
struct LoginAttempt {
  bool accepted = false;
  bool password_requested = false;
  std::string message;  // libpq's error message, trimmed; no secret
};

class Session {
 public:
  // Connects with libpq keyword/value parameters (PQconnectdbParams, no
  // conninfo string is ever built). UNAVAILABLE with the server's message
  // when the connection fails.
  static absl::StatusOr<std::unique_ptr<Session>> Open(const ConnParams& params);
  // Tries to log in with `params` and closes the connection at once.
  static LoginAttempt TryLogin(const ConnParams& params);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs one statement with bound text parameters; returns its rows.
  // PERMISSION_DENIED for SQLSTATE 42501, DEADLINE_EXCEEDED for 57014,
  // UNAVAILABLE when the connection broke, FAILED_PRECONDITION otherwise.
  absl::StatusOr<std::vector<Row>> Query(absl::string_view sql,
                                         const std::vector<std::string>& params = {});
  absl::Status Exec(absl::string_view sql, const std::vector<std::string>& params = {}) {
    return Query(sql, params).status();
  }
  // A quoted identifier ("a""b"), via PQescapeIdentifier.
  absl::StatusOr<std::string> Quote(absl::string_view identifier);
  // A quoted literal, via PQescapeLiteral. Only for utility statements that
  // take no bound parameters (ALTER ROLE ... PASSWORD).
  absl::StatusOr<std::string> QuoteLiteral(absl::string_view value);

 private:
  explicit Session(PGconn* c) : conn_(c) {}
  PGconn* conn_;
};

}  // namespace wb::connectors::pg
