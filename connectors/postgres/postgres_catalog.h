// Internal to the postgres connector: what it reads from the catalog
// (pg_roles, pg_authid, pg_stat_activity, pg_class/pg_namespace ACLs,
// has_*_privilege) and the evidence it records of it. Not an interface:
// only connectors/postgres/postgres*.cc include this header; users of the
// connector include connectors/postgres/postgres.h.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "connectors/connector.h"
#include "connectors/postgres/pg_session.h"
#include "connectors/util/connector_util.h"
#include "writeback/v1/action.pb.h"

namespace wb::connectors::postgres_catalog {

// A boolean column as libpq returns it ("t" or "f").
inline bool Truthy(const std::optional<std::string>& v) { return v.has_value() && *v == "t"; }

// What an operation revokes, for the schema operations (PrivilegesOf in
// postgres.cc).
struct PrivSet {
  std::set<std::string> table;   // on tables, views, matviews, foreign tables
  std::set<std::string> seq;     // on sequences
  std::set<std::string> schema;  // on the schema itself
};

// ---- Observations of the catalog ----

struct RoleState {
  bool exists = false;
  std::string oid;
  bool can_login = false;
  bool super = false;
  std::string valid_until = "infinity";  // "infinity", "-infinity" or UTC time
  bool expired = false;                  // rolvaliduntil <= now() on the server
  bool password_readable = false;
  std::string password_sha256;  // hex of rolpassword, "none"; "" when unreadable
};

absl::StatusOr<RoleState> ReadRole(pg::Session& s, const std::string& role);

absl::StatusOr<std::vector<std::string>> ReadSessions(pg::Session& s, const std::string& oid);

struct Grant {
  std::string relname;  // "" for the schema itself
  std::string relkind;  // r p v m f S, or "n" for the schema
  std::string privilege;
  std::string Describe(const std::string& schema) const {
    if (relkind == "n") return absl::StrCat(privilege, " on schema ", util::PrintableUtf8(schema));
    return absl::StrCat(privilege, " on ", relkind == "S" ? "sequence " : "",
                        util::PrintableUtf8(schema), ".", util::PrintableUtf8(relname));
  }
};

struct SchemaState {
  std::string oid;
  std::vector<Grant> grants;  // direct grants to the role, limited to the PrivSet
};

absl::StatusOr<std::string> SchemaOid(pg::Session& s, const std::string& schema);

absl::StatusOr<SchemaState> ReadDirectGrants(pg::Session& s, const std::string& schema,
                                             const std::string& role_oid, const PrivSet& privs);

// Privileges the role has, by any route (direct, PUBLIC, membership,
// ownership, superuser), as the server's has_*_privilege functions say; for
// SELECT, INSERT, UPDATE and REFERENCES also on any single column
// (has_any_column_privilege).
absl::StatusOr<std::vector<Grant>> ReadEffective(pg::Session& s, const std::string& schema_oid,
                                                 const std::string& role_oid, const PrivSet& privs);

// ---- Evidence ----

writeback::v1::Observation RoleObservation(const CallContext& ctx, const std::string& role,
                                           const RoleState& st);
writeback::v1::Observation SessionsObservation(const CallContext& ctx, const std::string& role,
                                               const std::vector<std::string>& pids);
writeback::v1::Observation GrantsObservation(const CallContext& ctx, absl::string_view check,
                                             const std::string& role, const std::string& schema,
                                             const std::vector<Grant>& grants);

}  // namespace wb::connectors::postgres_catalog
