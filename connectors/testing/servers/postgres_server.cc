#include "connectors/testing/servers/postgres_server.h"

#include <libpq-fe.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"

namespace wb::connectors::testing {
namespace {

absl::Status Chown(const std::string& path, std::optional<uid_t> uid, std::optional<gid_t> gid) {
  if (!uid.has_value()) return absl::OkStatus();
  if (::chown(path.c_str(), *uid, *gid) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("chown ", path));
  }
  return absl::OkStatus();
}

bool Ping(int port) {
  const std::string p = absl::StrCat(port);
  const char* keys[] = {"host", "port", "dbname", "connect_timeout", "gssencmode", nullptr};
  const char* vals[] = {"127.0.0.1", p.c_str(), "postgres", "2", "disable", nullptr};
  return PQpingParams(keys, vals, 0) == PQPING_OK;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start(const std::string& dir,
                                                                      const Options& opts) {
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  if (::geteuid() == 0) {
    WB_ASSIGN_OR_RETURN(auto ids, LookupUser("postgres"));
    uid = ids.first;
    gid = ids.second;
    const std::string parent = std::filesystem::path(dir).parent_path().string();
    struct stat st;
    if (::stat(parent.c_str(), &st) == 0) ::chmod(parent.c_str(), (st.st_mode & 07777) | 0011);
  }
  WB_RETURN_IF_ERROR(fs::MakeDirs(dir, 0700));
  WB_RETURN_IF_ERROR(Chown(dir, uid, gid));
  auto server = std::unique_ptr<PostgresServer>(new PostgresServer());
  server->password_ = crypto::HexEncode(crypto::RandomBytes(12));
  const std::string pwfile = dir + "/pwfile";
  WB_RETURN_IF_ERROR(fs::WriteFileAtomic(pwfile, server->password_ + "\n"));
  WB_RETURN_IF_ERROR(Chown(pwfile, uid, gid));
  const std::string data = dir + "/data";
  SpawnOptions init;
  init.argv = {opts.bin_dir + "/initdb",
               "-D",
               data,
               "-U",
               "postgres",
               "--pwfile",
               pwfile,
               "--auth=scram-sha-256",
               "-E",
               "UTF8",
               "--no-locale",
               "--no-sync",
               "--no-instructions"};
  init.uid = uid;
  init.gid = gid;
  init.working_dir = dir;
  WB_RETURN_IF_ERROR(RunToCompletion(init, absl::Seconds(120)).status());
  ::unlink(pwfile.c_str());

  server->log_path_ = dir + "/server.log";
  absl::Status last = absl::UnknownError("not started");
  for (int attempt = 0; attempt < 5; ++attempt) {
    WB_ASSIGN_OR_RETURN(const int port, PickFreePort());
    SpawnOptions run;
    run.argv = {opts.bin_dir + "/postgres",
                "-D",
                data,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                absl::StrCat("port=", port),
                "-c",
                "unix_socket_directories=",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "shared_buffers=16MB",
                "-c",
                "max_connections=60",
                "-c",
                "log_statement=all",
                "-c",
                "log_line_prefix=%m [%p] %u@%d %a: ",
                "-c",
                "password_encryption=scram-sha-256"};
    for (const auto& s : opts.settings) {
      run.argv.push_back("-c");
      run.argv.push_back(s);
    }
    run.uid = uid;
    run.gid = gid;
    run.working_dir = dir;
    run.log_file = server->log_path_;
    WB_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(run));
    auto holder = std::make_unique<ChildProcess>(std::move(child));
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    bool ready = false;
    while (absl::Now() < deadline && holder->Running()) {
      if (Ping(port)) {
        ready = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (ready) {
      server->child_ = std::move(holder);
      server->port_ = port;
      return server;
    }
    holder->Stop(SIGKILL, absl::Seconds(5));
    last = absl::InternalError(absl::StrCat("postgres did not start on port ", port, ": ",
                                            ReadFileOrEmpty(server->log_path_)));
  }
  return last;
}

PostgresServer::~PostgresServer() {
  if (child_ != nullptr) child_->Stop(SIGINT, absl::Seconds(30));
}

absl::StatusOr<std::unique_ptr<PgClient>> PgClient::Connect(int port, const std::string& user,
                                                            const std::string& password,
                                                            const std::string& dbname,
                                                            const std::string& application_name) {
  const std::string p = absl::StrCat(port);
  const char* keys[] = {
      "host",    "port",       "user", "password", "dbname", "application_name", "connect_timeout",
      "sslmode", "gssencmode", nullptr};
  const char* vals[] = {"127.0.0.1",    p.c_str(),
                        user.c_str(),   password.c_str(),
                        dbname.c_str(), application_name.c_str(),
                        "10",           "disable",
                        "disable",      nullptr};
  PGconn* c = PQconnectdbParams(keys, vals, 0);
  if (c == nullptr) return absl::ResourceExhaustedError("PQconnectdbParams: out of memory");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    return absl::PermissionDeniedError(msg);
  }
  // Set-up statements like DROP ... IF EXISTS send NOTICEs: keep them off stderr.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<PgClient>(new PgClient(c));
}

PgClient::~PgClient() { PQfinish(conn_); }

absl::StatusOr<std::vector<PgClient::Row>> PgClient::Query(const std::string& sql,
                                                           const std::vector<std::string>& params) {
  std::vector<const char*> values;
  std::vector<int> lengths;
  for (const auto& v : params) {
    values.push_back(v.data());
    lengths.push_back(static_cast<int>(v.size()));
  }
  PGresult* r = PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                             values.data(), lengths.data(), nullptr, 0);
  const ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    std::string msg = r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(conn_);
    PQclear(r);
    return absl::InternalError(absl::StrCat(sql.substr(0, 200), ": ", msg));
  }
  std::vector<Row> rows;
  for (int i = 0; i < PQntuples(r); ++i) {
    Row row;
    for (int j = 0; j < PQnfields(r); ++j) {
      if (PQgetisnull(r, i, j)) {
        row.push_back(std::nullopt);
      } else {
        row.push_back(std::string(PQgetvalue(r, i, j), PQgetlength(r, i, j)));
      }
    }
    rows.push_back(std::move(row));
  }
  PQclear(r);
  return rows;
}

absl::Status PgClient::Exec(const std::string& sql, const std::vector<std::string>& params) {
  return Query(sql, params).status();
}

absl::StatusOr<std::vector<std::string>> PgClient::ExecGenerated(
    const std::string& sql, const std::vector<std::string>& params) {
  WB_ASSIGN_OR_RETURN(auto rows, Query(sql, params));
  std::vector<std::string> done;
  for (const auto& row : rows) {
    if (row.empty() || !row[0].has_value()) continue;
    // A generated utility statement has no parameters: run it as one simple
    // query (it came out of format('%I'/'%L'), quoted by the server).
    PGresult* r = PQexec(conn_, row[0]->c_str());
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      std::string msg = PQresultErrorMessage(r);
      PQclear(r);
      return absl::InternalError(absl::StrCat(row[0]->substr(0, 200), ": ", msg));
    }
    PQclear(r);
    done.push_back(*row[0]);
  }
  return done;
}

bool PgClient::Alive() {
  PGresult* r = PQexec(conn_, "SELECT 1");
  const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
  PQclear(r);
  return ok;
}

int PgClient::backend_pid() const { return PQbackendPID(conn_); }

}  // namespace wb::connectors::testing
