#include "connectors/postgres/pg_session.h"

#include <libpq-fe.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace wb::connectors::pg {
namespace {

struct CParams {
  std::vector<const char*> keys;
  std::vector<const char*> values;
  explicit CParams(const ConnParams& p) {
    for (const auto& [k, v] : p) {
      keys.push_back(k.c_str());
      values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
  }
};

std::string Trimmed(const char* s) {
  return std::string(absl::StripAsciiWhitespace(s == nullptr ? "" : s));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Session>> Session::Open(const ConnParams& params) {
  CParams c(params);
  PGconn* conn = PQconnectdbParams(c.keys.data(), c.values.data(), 0);
  if (conn == nullptr) return absl::ResourceExhaustedError("libpq: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat("connect: ", msg));
  }
  return std::unique_ptr<Session>(new Session(conn));
}

LoginAttempt Session::TryLogin(const ConnParams& params) {
  CParams c(params);
  LoginAttempt a;
  PGconn* conn = PQconnectdbParams(c.keys.data(), c.values.data(), 0);
  if (conn == nullptr) {
    a.message = "libpq: out of memory";
    return a;
  }
  a.accepted = PQstatus(conn) == CONNECTION_OK;
  a.password_requested = PQconnectionUsedPassword(conn) != 0;
  if (!a.accepted) a.message = Trimmed(PQerrorMessage(conn));
  PQfinish(conn);
  return a;
}

Session::~Session() { PQfinish(conn_); }

absl::StatusOr<std::vector<Row>> Session::Query(absl::string_view sql,
                                                const std::vector<std::string>& params) {
  const std::string text(sql);
  std::vector<const char*> values;
  std::vector<int> lengths;
  for (const auto& v : params) {
    values.push_back(v.c_str());
    lengths.push_back(static_cast<int>(v.size()));
  }
  PGresult* r = PQexecParams(conn_, text.c_str(), static_cast<int>(params.size()), nullptr,
                             values.data(), lengths.data(), nullptr, 0);
  const ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    const char* primary = r != nullptr ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    const std::string code = state != nullptr ? state : "";
    const std::string msg = primary != nullptr ? primary : Trimmed(PQerrorMessage(conn_));
    PQclear(r);
    const std::string full =
        absl::StrCat(msg, code.empty() ? "" : " (SQLSTATE ", code, code.empty() ? "" : ")");
    if (PQstatus(conn_) != CONNECTION_OK) return absl::UnavailableError(full);
    if (code == "42501") return absl::PermissionDeniedError(full);
    if (code == "57014") return absl::DeadlineExceededError(full);
    return absl::FailedPreconditionError(full);
  }
  std::vector<Row> rows;
  const int n = PQntuples(r);
  const int f = PQnfields(r);
  rows.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    Row row;
    row.reserve(static_cast<size_t>(f));
    for (int j = 0; j < f; ++j) {
      if (PQgetisnull(r, i, j)) {
        row.push_back(std::nullopt);
      } else {
        row.push_back(std::string(PQgetvalue(r, i, j), static_cast<size_t>(PQgetlength(r, i, j))));
      }
    }
    rows.push_back(std::move(row));
  }
  PQclear(r);
  return rows;
}

absl::StatusOr<std::string> Session::Quote(absl::string_view identifier) {
  char* q = PQescapeIdentifier(conn_, identifier.data(), identifier.size());
  if (q == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot quote identifier: ", Trimmed(PQerrorMessage(conn_))));
  }
  std::string out(q);
  PQfreemem(q);
  return out;
}

absl::StatusOr<std::string> Session::QuoteLiteral(absl::string_view value) {
  char* q = PQescapeLiteral(conn_, value.data(), value.size());
  if (q == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot quote literal: ", Trimmed(PQerrorMessage(conn_))));
  }
  std::string out(q);
  PQfreemem(q);
  return out;
}

}  // namespace wb::connectors::pg
