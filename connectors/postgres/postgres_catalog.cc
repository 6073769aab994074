// The postgres connector's observations of the catalog and their evidence
// (connectors/postgres/postgres_catalog.h).
#include "connectors/postgres/postgres_catalog.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/macros.h"
#include "connectors/util/connector_util.h"

namespace wb::connectors::postgres_catalog {
namespace {

using writeback::v1::Observation;

std::string Str(const std::optional<std::string>& v) { return v.value_or(""); }

// A text[] literal of privilege keywords (from the fixed sets of PrivilegesOf
// in postgres.cc only).
std::string ArrayLiteral(const std::set<std::string>& s) {
  return absl::StrCat("{", absl::StrJoin(s, ","), "}");
}

}  // namespace

// ---- Observations of the catalog ----

absl::StatusOr<RoleState> ReadRole(pg::Session& s, const std::string& role) {
  WB_ASSIGN_OR_RETURN(
      auto rows,
      s.Query("SELECT r.oid::text, r.rolcanlogin, r.rolsuper, "
              "CASE WHEN r.rolvaliduntil IS NULL OR r.rolvaliduntil = 'infinity' THEN 'infinity' "
              "WHEN r.rolvaliduntil = '-infinity' THEN '-infinity' "
              "ELSE to_char(r.rolvaliduntil AT TIME ZONE 'UTC', "
              "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') END, "
              "coalesce(r.rolvaliduntil <= now(), false), "
              "pg_catalog.has_column_privilege('pg_catalog.pg_authid', 'rolpassword', 'SELECT') "
              "FROM pg_catalog.pg_roles r WHERE r.rolname = $1",
              {role}));
  RoleState st;
  if (rows.empty()) return st;
  const auto& r = rows[0];
  st.exists = true;
  st.oid = Str(r[0]);
  st.can_login = Truthy(r[1]);
  st.super = Truthy(r[2]);
  st.valid_until = Str(r[3]);
  st.expired = Truthy(r[4]);
  st.password_readable = Truthy(r[5]);
  if (st.password_readable) {
    WB_ASSIGN_OR_RETURN(auto pw,
                        s.Query("SELECT CASE WHEN rolpassword IS NULL THEN 'none' ELSE "
                                "encode(sha256(convert_to(rolpassword, 'UTF8')), 'hex') END "
                                "FROM pg_catalog.pg_authid WHERE oid = $1::oid",
                                {st.oid}));
    if (!pw.empty()) st.password_sha256 = Str(pw[0][0]);
  }
  return st;
}

absl::StatusOr<std::vector<std::string>> ReadSessions(pg::Session& s, const std::string& oid) {
  std::vector<std::string> pids;
  if (oid.empty()) return pids;
  WB_ASSIGN_OR_RETURN(auto rows, s.Query("SELECT pid::text FROM pg_catalog.pg_stat_activity "
                                         "WHERE usesysid = $1::oid AND pid <> pg_backend_pid() "
                                         "ORDER BY pid",
                                         {oid}));
  for (const auto& r : rows) pids.push_back(Str(r[0]));
  return pids;
}

absl::StatusOr<std::string> SchemaOid(pg::Session& s, const std::string& schema) {
  WB_ASSIGN_OR_RETURN(auto rows, s.Query("SELECT oid::text FROM pg_catalog.pg_namespace "
                                         "WHERE nspname = $1",
                                         {schema}));
  if (rows.empty()) {
    return absl::NotFoundError(
        absl::StrCat("schema '", util::PrintableUtf8(schema), "' does not exist in this database"));
  }
  return Str(rows[0][0]);
}

absl::StatusOr<SchemaState> ReadDirectGrants(pg::Session& s, const std::string& schema,
                                             const std::string& role_oid, const PrivSet& privs) {
  SchemaState st;
  WB_ASSIGN_OR_RETURN(st.oid, SchemaOid(s, schema));
  if (role_oid.empty()) return st;
  WB_ASSIGN_OR_RETURN(
      auto rows,
      s.Query("SELECT c.relname::text, c.relkind::text, a.privilege_type "
              "FROM pg_catalog.pg_class c, LATERAL pg_catalog.aclexplode(c.relacl) a "
              "WHERE c.relnamespace = $1::oid AND c.relkind IN ('r','p','v','m','f','S') "
              "AND a.grantee = $2::oid "
              "UNION ALL "
              "SELECT '', 'n', a.privilege_type "
              "FROM pg_catalog.pg_namespace n, LATERAL pg_catalog.aclexplode(n.nspacl) a "
              "WHERE n.oid = $1::oid AND a.grantee = $2::oid "
              "ORDER BY 1, 2, 3",
              {st.oid, role_oid}));
  for (const auto& r : rows) {
    Grant g{Str(r[0]), Str(r[1]), Str(r[2])};
    const std::set<std::string>& wanted = g.relkind == "n"   ? privs.schema
                                          : g.relkind == "S" ? privs.seq
                                                             : privs.table;
    if (wanted.count(g.privilege)) st.grants.push_back(std::move(g));
  }
  return st;
}

absl::StatusOr<std::vector<Grant>> ReadEffective(pg::Session& s, const std::string& schema_oid,
                                                 const std::string& role_oid,
                                                 const PrivSet& privs) {
  WB_ASSIGN_OR_RETURN(
      auto rows, s.Query("SELECT c.relname::text, c.relkind::text, p.priv "
                         "FROM pg_catalog.pg_class c, unnest($3::text[]) p(priv) "
                         "WHERE c.relnamespace = $1::oid AND c.relkind IN ('r','p','v','m','f') "
                         // A column-level grant (GRANT UPDATE (col) ON t) is not seen by
                         // has_table_privilege; has_any_column_privilege sees both.
                         "AND CASE WHEN p.priv IN ('SELECT','INSERT','UPDATE','REFERENCES') "
                         "THEN pg_catalog.has_any_column_privilege($2::oid, c.oid, p.priv) "
                         "ELSE pg_catalog.has_table_privilege($2::oid, c.oid, p.priv) END "
                         "UNION ALL "
                         "SELECT c.relname::text, 'S', p.priv "
                         "FROM pg_catalog.pg_class c, unnest($4::text[]) p(priv) "
                         "WHERE c.relnamespace = $1::oid AND c.relkind = 'S' "
                         "AND pg_catalog.has_sequence_privilege($2::oid, c.oid, p.priv) "
                         "UNION ALL "
                         "SELECT '', 'n', p.priv FROM unnest($5::text[]) p(priv) "
                         "WHERE pg_catalog.has_schema_privilege($2::oid, $1::oid, p.priv) "
                         "ORDER BY 1, 2, 3",
                         {schema_oid, role_oid, ArrayLiteral(privs.table), ArrayLiteral(privs.seq),
                          ArrayLiteral(privs.schema)}));
  std::vector<Grant> out;
  for (const auto& r : rows) out.push_back(Grant{Str(r[0]), Str(r[1]), Str(r[2])});
  return out;
}

// ---- Evidence ----

Observation RoleObservation(const CallContext& ctx, const std::string& role, const RoleState& st) {
  Observation o;
  o.set_check("pg_roles");
  o.set_subject(util::PrintableUtf8(role));
  o.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  auto& f = *o.mutable_facts();
  f["exists"] = st.exists ? "true" : "false";
  if (st.exists) {
    f["oid"] = st.oid;
    f["rolcanlogin"] = st.can_login ? "true" : "false";
    f["rolsuper"] = st.super ? "true" : "false";
    f["rolvaliduntil"] = st.valid_until;
    f["password_expired"] = st.expired ? "true" : "false";
    f["password_sha256"] = st.password_readable ? st.password_sha256 : "unreadable";
    o.set_detail(absl::StrCat("role ", util::PrintableUtf8(role), " (oid ", st.oid, "): ",
                              st.can_login ? "LOGIN" : "NOLOGIN", st.super ? ", SUPERUSER" : "",
                              ", valid until ", st.valid_until, st.expired ? " (expired)" : ""));
  } else {
    o.set_detail(absl::StrCat("no role named ", util::PrintableUtf8(role), " in pg_roles"));
  }
  return o;
}

Observation SessionsObservation(const CallContext& ctx, const std::string& role,
                                const std::vector<std::string>& pids) {
  Observation o;
  o.set_check("pg_stat_activity");
  o.set_subject(util::PrintableUtf8(role));
  o.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  (*o.mutable_facts())["sessions"] = absl::StrCat(pids.size());
  (*o.mutable_facts())["pids"] = absl::StrJoin(pids, ",");
  o.set_detail(absl::StrCat(pids.size(), " backend(s) of the role",
                            pids.empty() ? "" : absl::StrCat(": pids ", absl::StrJoin(pids, ","))));
  return o;
}

Observation GrantsObservation(const CallContext& ctx, absl::string_view check,
                              const std::string& role, const std::string& schema,
                              const std::vector<Grant>& grants) {
  Observation o;
  o.set_check(std::string(check));
  o.set_subject(
      absl::StrCat(util::PrintableUtf8(role), " on schema ", util::PrintableUtf8(schema)));
  o.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  (*o.mutable_facts())["count"] = absl::StrCat(grants.size());
  std::vector<std::string> d;
  for (const auto& g : grants) d.push_back(g.Describe(schema));
  std::string list = absl::StrJoin(d, "; ");
  if (list.size() > 4000) list = absl::StrCat(list.substr(0, 4000), "...");
  (*o.mutable_facts())["privileges"] = list;
  o.set_detail(absl::StrCat(grants.size(), " privilege(s)", grants.empty() ? "" : ": ", list));
  return o;
}

}  // namespace wb::connectors::postgres_catalog
