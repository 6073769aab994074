// Test support: a throwaway PostgreSQL 15 server on 127.0.0.1 in a test's
// temporary directory, and a small libpq client for test set-up and for
// holding "live sessions". For tests only.
//
//   wb::testing::TempDir tmp;
//   auto pg = PostgresServer::Start(tmp.Sub("pg"));
//   auto admin = PgClient::Connect((*pg)->port(), "postgres", (*pg)->superuser_password());
//   (*admin)->Exec("SELECT format('CREATE ROLE %I LOGIN', $1)", {"svc"});
//
// initdb and the server refuse to run as root: when the test runs as root the
// cluster directory is given to the `postgres` system user and both run as
// it (fork + setuid + execve, no shell); the parent of `dir` is made
// traversable (o+x). Unix sockets are off; the server listens on 127.0.0.1
// only, with scram-sha-256 password authentication for every role.
// log_statement=all goes to log_path().
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "connectors/testing/servers/process.h"

typedef struct pg_conn PGconn;

namespace wb::connectors::testing {

class PostgresServer {
 public:
  struct Options {
    std::string bin_dir = "/usr/lib/postgresql/15/bin";
    // Extra "name=value" server settings (-c).
    std::vector<std::string> settings;
  };

  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start(const std::string& dir,
                                                               const Options& opts);
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start(const std::string& dir) {
    return Start(dir, Options());
  }
  // Fast shutdown (SIGINT), then SIGKILL if it takes more than 30 s.
  ~PostgresServer();

  int port() const { return port_; }
  std::string host() const { return "127.0.0.1"; }
  const std::string& superuser() const { return superuser_; }
  const std::string& superuser_password() const { return password_; }
  // The server log (stderr, with log_statement=all).
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const { return ReadFileOrEmpty(log_path_); }

 private:
  PostgresServer() = default;
  std::unique_ptr<ChildProcess> child_;
  int port_ = 0;
  std::string superuser_ = "postgres";
  std::string password_;
  std::string log_path_;
};

// One libpq connection (blocking). Not thread-safe.
class PgClient {
 public:
  using Row = std::vector<std::optional<std::string>>;

  // Connects to 127.0.0.1:port; the error carries the server's message.
  static absl::StatusOr<std::unique_ptr<PgClient>> Connect(
      int port, const std::string& user, const std::string& password,
      const std::string& dbname = "postgres", const std::string& application_name = "wbtest");
  ~PgClient();

  // Runs one statement with bound text parameters; returns its rows.
  absl::StatusOr<std::vector<Row>> Query(const std::string& sql,
                                         const std::vector<std::string>& params = {});
  absl::Status Exec(const std::string& sql, const std::vector<std::string>& params = {});
  // Runs the SQL that a query returns (one text column, one statement per
  // row), e.g. "SELECT format('CREATE ROLE %I', $1)": the server quotes, not
  // the test. Returns the statements run.
  absl::StatusOr<std::vector<std::string>> ExecGenerated(const std::string& sql,
                                                         const std::vector<std::string>& params);
  // True if the session still answers "SELECT 1".
  bool Alive();
  int backend_pid() const;
  PGconn* raw() { return conn_; }

 private:
  explicit PgClient(PGconn* c) : conn_(c) {}
  PGconn* conn_;
};

}  // namespace wb::connectors::testing
