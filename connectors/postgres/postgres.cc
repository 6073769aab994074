#include "connectors/postgres/postgres.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/actions/actions.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "connectors/postgres/postgres_catalog.h"
#include "connectors/util/connector_util.h"

namespace wb::connectors {
namespace {

using util::CheckDeadline;

using writeback::v1::Observation;
using writeback::v1::PostgresParams;

using postgres_catalog::Grant;
using postgres_catalog::GrantsObservation;
using postgres_catalog::PrivSet;
using postgres_catalog::ReadDirectGrants;
using postgres_catalog::ReadEffective;
using postgres_catalog::ReadRole;
using postgres_catalog::ReadSessions;
using postgres_catalog::RoleObservation;
using postgres_catalog::RoleState;
using postgres_catalog::SchemaOid;
using postgres_catalog::SchemaState;
using postgres_catalog::SessionsObservation;
using postgres_catalog::Truthy;

constexpr absl::string_view kType = "postgres";
constexpr absl::string_view kStateMagic = "pg/v1";

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

bool IsLoopbackOrSocket(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host == "localhost" ||
         (!host.empty() && host[0] == '/');
}

// ---- What an operation revokes, for the schema operations ----

PrivSet PrivilegesOf(const Action& action) {
  PrivSet s;
  if (action.operation == "reduce_to_read_only") {
    s.table = {"INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"};
    s.seq = {"UPDATE", "USAGE"};
    s.schema = {"CREATE"};
    return s;
  }
  static const std::set<std::string> kTable = {"SELECT",   "INSERT",     "UPDATE", "DELETE",
                                               "TRUNCATE", "REFERENCES", "TRIGGER"};
  static const std::set<std::string> kSeq = {"SELECT", "UPDATE", "USAGE"};
  static const std::set<std::string> kSchema = {"USAGE", "CREATE"};
  for (const auto& p : action.params.postgres().privileges()) {
    const std::string up = absl::AsciiStrToUpper(p);
    if (up == "ALL") {
      s.table = kTable;
      s.seq = kSeq;
      s.schema = kSchema;
      continue;
    }
    if (kTable.count(up)) s.table.insert(up);
    if (kSeq.count(up)) s.seq.insert(up);
    if (kSchema.count(up)) s.schema.insert(up);
  }
  return s;
}

// ---- Plan state ----

std::string RoleDigest(const RoleState& st) {
  if (!st.exists) return "absent";
  return crypto::HexEncode(
      crypto::Sha256(absl::StrCat(st.oid, "|", st.can_login, "|", st.super, "|", st.valid_until,
                                  "|", st.password_readable ? st.password_sha256 : "unreadable")));
}

std::string GrantsDigest(const SchemaState& ss) {
  std::string all = ss.oid;
  for (const auto& g : ss.grants) {
    absl::StrAppend(&all, "\n", g.relkind, "\t", g.relname, "\t", g.privilege);
  }
  return crypto::HexEncode(crypto::Sha256(all));
}

std::string EncodeState(const Action& action, const RoleState& role, const std::string& digest) {
  return util::EncodePlanState(kStateMagic, action, {role.oid, digest});
}

bool IsRoleOp(absl::string_view op) {
  return op == "disable_login" || op == "set_password" || op == "expire_password" ||
         op == "drop_role";
}
bool IsSchemaOp(absl::string_view op) {
  return op == "revoke_privileges" || op == "reduce_to_read_only";
}
bool EndsSessions(const Action& a) {
  const auto& p = a.params.postgres();
  if (a.operation == "terminate_sessions" || a.operation == "drop_role") return true;
  return (a.operation == "disable_login" || a.operation == "set_password" ||
          a.operation == "expire_password") &&
         !p.keep_sessions();
}
bool ProbeApplies(absl::string_view op) { return IsRoleOp(op); }

std::string ScramDigest(const Action& a) {
  return crypto::HexEncode(crypto::Sha256(a.params.postgres().new_password_scram()));
}

// Whether the role-level effect of the operation is in place (sessions
// aside). Only meaningful for role operations.
bool RoleEffectDone(const Action& a, const RoleState& st) {
  if (a.operation == "drop_role") return !st.exists;
  if (!st.exists) return a.operation == "disable_login" || a.operation == "expire_password";
  if (a.operation == "disable_login") return !st.can_login;
  if (a.operation == "expire_password") return st.expired;
  if (a.operation == "set_password") {
    return st.password_readable && st.password_sha256 == ScramDigest(a);
  }
  return false;
}

absl::Status CheckPreconditions(const Action& a, const RoleState& st) {
  const PostgresParams& p = a.params.postgres();
  const std::string who = util::PrintableUtf8(a.object);
  if (!p.expected_password_sha256().empty()) {
    if (!st.exists) {
      return absl::FailedPreconditionError(absl::StrCat("role ", who, " does not exist"));
    }
    if (!st.password_readable) {
      return absl::FailedPreconditionError(absl::StrCat(
          "expected_password_sha256 cannot be checked: the connector's role may not read "
          "pg_authid.rolpassword (see docs/connectors/postgres.md)"));
    }
    if (st.password_sha256 != p.expected_password_sha256()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the password of role ", who, " is not the expected one (sha256 ",
                       st.password_sha256, ", expected ", p.expected_password_sha256(), ")"));
    }
  }
  if (!p.expected_valid_until().empty()) {
    if (!st.exists) {
      return absl::FailedPreconditionError(absl::StrCat("role ", who, " does not exist"));
    }
    bool same = false;
    if (p.expected_valid_until() == "infinity" || st.valid_until == "infinity" ||
        st.valid_until == "-infinity") {
      same = p.expected_valid_until() == st.valid_until;
    } else {
      absl::Time want, have;
      std::string err;
      same = absl::ParseTime(absl::RFC3339_full, p.expected_valid_until(), &want, &err) &&
             absl::ParseTime(absl::RFC3339_full, st.valid_until, &have, &err) && want == have;
    }
    if (!same) {
      return absl::FailedPreconditionError(absl::StrCat("role ", who, " is valid until ",
                                                        st.valid_until, ", expected ",
                                                        p.expected_valid_until()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> TerminateSessions(pg::Session& s, const std::string& role,
                                                           const std::string& oid) {
  std::vector<std::string> changes;
  WB_ASSIGN_OR_RETURN(auto pids, ReadSessions(s, oid));
  for (const auto& pid : pids) {
    // Waits up to 5 s for the backend to exit.
    auto r = s.Query("SELECT pg_catalog.pg_terminate_backend($1::int, 5000)", {pid});
    if (!r.ok()) {
      return absl::Status(r.status().code(),
                          absl::StrCat("terminate backend ", pid, " of role ",
                                       util::PrintableUtf8(role), ": ", r.status().message()));
    }
    if (!r->empty() && Truthy((*r)[0][0])) {
      changes.push_back(
          absl::StrCat("terminated backend ", pid, " of role ", util::PrintableUtf8(role)));
    }
  }
  return changes;
}

std::string PrivilegeList(const std::set<std::string>& privs) { return absl::StrJoin(privs, ", "); }

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> PostgresConnector::Create(
    const writeback::v1::ConnectorInstanceConfig& cfg) {
  const std::string where = absl::StrCat("connectors[", cfg.name(), "].postgres");
  if (cfg.settings_case() != writeback::v1::ConnectorInstanceConfig::kPostgres) {
    return Invalid(where, "missing: a connector of type postgres needs postgres settings");
  }
  writeback::v1::PostgresConfig c = cfg.postgres();
  if (c.host().empty()) return Invalid(where + ".host", "must not be empty");
  WB_RETURN_IF_ERROR(actions::ValidateText(where + ".host", c.host(), 255, false));
  if (c.port() > 65535) return Invalid(where + ".port", "must be at most 65535");
  if (c.port() == 0) c.set_port(5432);
  if (c.dbname().empty()) c.set_dbname("postgres");
  WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, c.dbname(), where + ".dbname"));
  if (c.user().empty()) return Invalid(where + ".user", "must not be empty");
  WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, c.user(), where + ".user"));
  if (c.sslmode().empty()) c.set_sslmode("verify-full");
  static const std::set<std::string> kModes = {"disable", "require", "verify-ca", "verify-full"};
  if (!kModes.count(c.sslmode())) {
    return Invalid(where + ".sslmode", "must be one of verify-full, verify-ca, require, disable");
  }
  if (c.sslmode() == "disable" && !IsLoopbackOrSocket(c.host())) {
    return Invalid(where + ".sslmode",
                   "'disable' is allowed only for a loopback host or a Unix socket directory");
  }
  for (const auto* path : {&c.password_file(), &c.sslrootcert(), &c.sslcert(), &c.sslkey()}) {
    if (!path->empty() && (*path)[0] != '/') {
      return Invalid(where,
                     absl::StrCat("'", util::PrintableUtf8(*path), "' must be an absolute path"));
    }
  }
  if (c.connect_timeout_seconds() == 0) c.set_connect_timeout_seconds(10);
  for (int i = 0; i < c.allowed_roles_size(); ++i) {
    WB_RETURN_IF_ERROR(actions::ValidateTargetObject(
        kType, c.allowed_roles(i), absl::StrCat(where, ".allowed_roles[", i, "]")));
  }
  for (int i = 0; i < c.protected_roles_size(); ++i) {
    WB_RETURN_IF_ERROR(actions::ValidateTargetObject(
        kType, c.protected_roles(i), absl::StrCat(where, ".protected_roles[", i, "]")));
  }
  for (int i = 0; i < c.probes_size(); ++i) {
    const std::string f = absl::StrCat(where, ".probes[", i, "]");
    WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, c.probes(i).account(), f + ".account"));
    if (c.probes(i).password_file().empty() || c.probes(i).password_file()[0] != '/') {
      return Invalid(f + ".password_file", "must be an absolute path");
    }
  }
  return std::unique_ptr<Connector>(new PostgresConnector(cfg.name(), std::move(c)));
}

absl::Status PostgresConnector::Authorize(const Action& action) const {
  WB_RETURN_IF_ERROR(actions::ValidateAction(kType, action.operation, action.params));
  WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, action.object, "target"));
  const std::string who = util::PrintableUtf8(action.object);
  if (action.object == cfg_.user()) {
    return absl::PermissionDeniedError(
        absl::StrCat("target: role ", who, " is the connector's own role"));
  }
  const auto& prot = cfg_.protected_roles();
  if (std::find(prot.begin(), prot.end(), action.object) != prot.end()) {
    return absl::PermissionDeniedError(absl::StrCat("target: role ", who, " is protected"));
  }
  const auto& allowed = cfg_.allowed_roles();
  if (!allowed.empty() &&
      std::find(allowed.begin(), allowed.end(), action.object) == allowed.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("target: role ", who, " is not in allowed_roles of connector ", name_));
  }
  return absl::OkStatus();
}

absl::StatusOr<pg::ConnParams> PostgresConnector::ConnectionParams(
    const CallContext& ctx, const std::string& user, const std::string& password_file) const {
  int64_t timeout = cfg_.connect_timeout_seconds();
  if (ctx.deadline != absl::InfiniteFuture()) {
    const int64_t left = absl::ToInt64Seconds(ctx.deadline - ctx.clock->Now());
    timeout = std::max<int64_t>(2, std::min(timeout, left));
  }
  pg::ConnParams p = {
      {"host", cfg_.host()},
      {"port", absl::StrCat(cfg_.port())},
      {"dbname", cfg_.dbname()},
      {"user", user},
      {"sslmode", cfg_.sslmode()},
      {"connect_timeout", absl::StrCat(timeout)},
      {"application_name", absl::StrCat("writeback/", name_)},
      {"client_encoding", "UTF8"},
      // Password or certificate authentication only; no GSSAPI negotiation
      // (which would also cost a Kerberos lookup on every connection).
      {"gssencmode", "disable"},
  };
  if (!cfg_.sslrootcert().empty()) p.push_back({"sslrootcert", cfg_.sslrootcert()});
  if (!cfg_.sslcert().empty()) p.push_back({"sslcert", cfg_.sslcert()});
  if (!cfg_.sslkey().empty()) p.push_back({"sslkey", cfg_.sslkey()});
  if (!password_file.empty()) {
    WB_ASSIGN_OR_RETURN(std::string pw, util::ReadSecretLine(password_file, "password_file"));
    p.push_back({"password", std::move(pw)});
  }
  return p;
}

absl::StatusOr<std::unique_ptr<pg::Session>> PostgresConnector::Connect(
    const CallContext& ctx) const {
  WB_ASSIGN_OR_RETURN(auto params, ConnectionParams(ctx, cfg_.user(), cfg_.password_file()));
  params.push_back({"target_session_attrs", "read-write"});
  WB_ASSIGN_OR_RETURN(auto s, pg::Session::Open(params));
  // Bound statements by the call's deadline (at most a minute each).
  int64_t ms = 60'000;
  if (ctx.deadline != absl::InfiniteFuture()) {
    ms = std::max<int64_t>(
        1000, std::min(ms, absl::ToInt64Milliseconds(ctx.deadline - ctx.clock->Now())));
  }
  WB_RETURN_IF_ERROR(
      s->Exec("SELECT pg_catalog.set_config('statement_timeout', $1, false)", {absl::StrCat(ms)}));
  return s;
}

absl::StatusOr<writeback::v1::Plan> PostgresConnector::PlanChange(const CallContext& ctx,
                                                                  const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(Authorize(action));
  WB_ASSIGN_OR_RETURN(auto s, Connect(ctx));
  const std::string& role = action.object;
  const std::string who = util::PrintableUtf8(role);
  WB_ASSIGN_OR_RETURN(const RoleState st, ReadRole(*s, role));
  WB_ASSIGN_OR_RETURN(const auto pids, ReadSessions(*s, st.oid));

  writeback::v1::Plan plan;
  *plan.add_before() = RoleObservation(ctx, role, st);
  *plan.add_before() = SessionsObservation(ctx, role, pids);
  std::vector<std::string> changes;
  const bool end_sessions = EndsSessions(action) && !pids.empty();
  const std::string& op = action.operation;

  if (op == "terminate_sessions") {
    plan.set_state(EncodeState(action, st, "-"));
    if (end_sessions) {
      changes.push_back(absl::StrCat("terminate ", pids.size(), " backend(s) of role ", who,
                                     " (pids ", absl::StrJoin(pids, ","), ")"));
    }
  } else if (IsSchemaOp(op)) {
    const PrivSet privs = PrivilegesOf(action);
    const std::string& schema = action.params.postgres().schema();
    WB_ASSIGN_OR_RETURN(const SchemaState ss, ReadDirectGrants(*s, schema, st.oid, privs));
    *plan.add_before() = GrantsObservation(ctx, "direct_grants", role, schema, ss.grants);
    plan.set_state(EncodeState(action, st, GrantsDigest(ss)));
    for (const auto& g : ss.grants) changes.push_back(absl::StrCat("revoke ", g.Describe(schema)));
    if (!st.exists) {
      plan.set_summary(absl::StrCat("role ", who, " does not exist: it holds no privileges"));
    }
  } else {
    plan.set_state(EncodeState(action, st, RoleDigest(st)));
    const bool done = RoleEffectDone(action, st);
    const std::string terminate = absl::StrCat("terminate ", pids.size(), " backend(s) of role ",
                                               who, " (pids ", absl::StrJoin(pids, ","), ")");
    if (!done) {
      if (op == "set_password" && !st.exists) {
        return absl::FailedPreconditionError(absl::StrCat("role ", who, " does not exist"));
      }
      WB_RETURN_IF_ERROR(CheckPreconditions(action, st));
      if (op == "disable_login") changes.push_back(absl::StrCat("ALTER ROLE ", who, " NOLOGIN"));
      if (op == "expire_password") {
        changes.push_back(absl::StrCat("ALTER ROLE ", who, " VALID UNTIL '-infinity'"));
      }
      if (op == "set_password") {
        changes.push_back(absl::StrCat("ALTER ROLE ", who, " PASSWORD <SCRAM verifier sha256 ",
                                       ScramDigest(action), ">"));
      }
      if (op == "drop_role") {
        if (st.can_login) changes.push_back(absl::StrCat("ALTER ROLE ", who, " NOLOGIN"));
        if (end_sessions) changes.push_back(terminate);
        const std::string& to = action.params.postgres().reassign_owned_to();
        if (!to.empty()) {
          changes.push_back(
              absl::StrCat("REASSIGN OWNED BY ", who, " TO ", util::PrintableUtf8(to)));
        }
        changes.push_back(absl::StrCat("DROP OWNED BY ", who));
        changes.push_back(absl::StrCat("DROP ROLE ", who));
      }
    }
    if (op != "drop_role" && end_sessions) changes.push_back(terminate);
    if (!st.exists && done) plan.set_summary(absl::StrCat("role ", who, " does not exist"));
  }
  plan.set_no_change(changes.empty());
  for (auto& c : changes) plan.add_changes(std::move(c));
  if (plan.summary().empty()) {
    plan.set_summary(plan.no_change() ? absl::StrCat(op, " of role ", who, ": already in effect")
                                      : absl::StrCat(op, " of role ", who, ": ",
                                                     plan.changes_size(), " change(s)"));
  }
  return plan;
}

absl::StatusOr<writeback::v1::ApplyResult> PostgresConnector::Apply(
    const CallContext& ctx, const Action& action, const writeback::v1::Plan& plan) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(Authorize(action));
  WB_ASSIGN_OR_RETURN(const std::vector<std::string> state,
                      util::DecodePlanState(kStateMagic, kType, action, plan.state(), 2));
  WB_ASSIGN_OR_RETURN(auto s, Connect(ctx));
  const std::string& role = action.object;
  const std::string who = util::PrintableUtf8(role);
  const std::string& op = action.operation;
  writeback::v1::ApplyResult result;

  WB_RETURN_IF_ERROR(s->Exec("BEGIN"));
  auto fail = [&](absl::Status st) {
    (void)s->Exec("ROLLBACK");
    return st;
  };
  auto role_or = ReadRole(*s, role);
  if (!role_or.ok()) return fail(role_or.status());
  const RoleState st = *role_or;
  if (st.oid != state[0]) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat("role ", who, " changed since plan (oid ", state[0].empty() ? "-" : state[0],
                     " then, ", st.oid.empty() ? "absent" : st.oid, " now)")));
  }
  auto quoted_role = s->Quote(role);
  if (!quoted_role.ok()) return fail(quoted_role.status());
  const std::string qrole = *quoted_role;

  if (IsSchemaOp(op)) {
    const PrivSet privs = PrivilegesOf(action);
    const std::string& schema = action.params.postgres().schema();
    auto ss = ReadDirectGrants(*s, schema, st.oid, privs);
    if (!ss.ok()) return fail(ss.status());
    if (GrantsDigest(*ss) != state[1]) {
      return fail(absl::FailedPreconditionError(
          absl::StrCat("the privileges of role ", who, " on schema ", util::PrintableUtf8(schema),
                       " changed since plan")));
    }
    auto qschema = s->Quote(schema);
    if (!qschema.ok()) return fail(qschema.status());
    // One REVOKE per object, naming only the privileges it holds; object
    // names are the catalog's, quoted.
    std::map<std::pair<std::string, std::string>, std::set<std::string>> by_object;
    for (const auto& g : ss->grants) by_object[{g.relkind, g.relname}].insert(g.privilege);
    for (const auto& [obj, p] : by_object) {
      std::string target;
      if (obj.first == "n") {
        target = absl::StrCat("SCHEMA ", *qschema);
      } else {
        auto qrel = s->Quote(obj.second);
        if (!qrel.ok()) return fail(qrel.status());
        target = absl::StrCat(obj.first == "S" ? "SEQUENCE " : "TABLE ", *qschema, ".", *qrel);
      }
      auto r = s->Exec(
          absl::StrCat("REVOKE ", PrivilegeList(p), " ON ", target, " FROM ", qrole, " CASCADE"));
      if (!r.ok()) return fail(r);
      for (const auto& priv : p) {
        result.add_changes(absl::StrCat(
            "revoked ", Grant{obj.second, obj.first, priv}.Describe(schema), " from role ", who));
      }
    }
    WB_RETURN_IF_ERROR(s->Exec("COMMIT"));
    return result;
  }

  if (op == "terminate_sessions") {
    WB_RETURN_IF_ERROR(s->Exec("COMMIT"));
    WB_ASSIGN_OR_RETURN(auto ended, TerminateSessions(*s, role, st.oid));
    for (auto& c : ended) result.add_changes(std::move(c));
    return result;
  }

  // Role operations: the catalog state must be the planned one.
  if (RoleDigest(st) != state[1]) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat("role ", who, " changed since plan (login, validity or password)")));
  }
  const bool done = RoleEffectDone(action, st);
  if (!done) {
    if (auto pre = CheckPreconditions(action, st); !pre.ok()) return fail(pre);
  }
  if (op == "disable_login" && !done) {
    if (auto r = s->Exec(absl::StrCat("ALTER ROLE ", qrole, " NOLOGIN")); !r.ok()) return fail(r);
    result.add_changes(absl::StrCat("ALTER ROLE ", who, " NOLOGIN"));
  } else if (op == "expire_password" && !done) {
    if (auto r = s->Exec(absl::StrCat("ALTER ROLE ", qrole, " VALID UNTIL '-infinity'")); !r.ok()) {
      return fail(r);
    }
    result.add_changes(absl::StrCat("ALTER ROLE ", who, " VALID UNTIL '-infinity'"));
  } else if (op == "set_password" && !done) {
    auto lit = s->QuoteLiteral(action.params.postgres().new_password_scram());
    if (!lit.ok()) return fail(lit.status());
    if (auto r = s->Exec(absl::StrCat("ALTER ROLE ", qrole, " PASSWORD ", *lit)); !r.ok()) {
      return fail(r);
    }
    result.add_changes(absl::StrCat("ALTER ROLE ", who, " PASSWORD <SCRAM verifier sha256 ",
                                    ScramDigest(action), ">"));
  } else if (op == "drop_role" && !done && st.can_login) {
    // First no new logins, then end the live ones, then drop.
    if (auto r = s->Exec(absl::StrCat("ALTER ROLE ", qrole, " NOLOGIN")); !r.ok()) return fail(r);
    result.add_changes(absl::StrCat("ALTER ROLE ", who, " NOLOGIN"));
  }
  WB_RETURN_IF_ERROR(s->Exec("COMMIT"));
  if (EndsSessions(action)) {
    WB_ASSIGN_OR_RETURN(auto ended, TerminateSessions(*s, role, st.oid));
    for (auto& c : ended) result.add_changes(std::move(c));
  }
  if (op == "drop_role" && !done) {
    WB_RETURN_IF_ERROR(s->Exec("BEGIN"));
    const std::string& to = action.params.postgres().reassign_owned_to();
    if (!to.empty()) {
      auto qto = s->Quote(to);
      if (!qto.ok()) return fail(qto.status());
      if (auto r = s->Exec(absl::StrCat("REASSIGN OWNED BY ", qrole, " TO ", *qto)); !r.ok()) {
        return fail(r);
      }
    }
    if (auto r = s->Exec(absl::StrCat("DROP OWNED BY ", qrole)); !r.ok()) return fail(r);
    if (auto r = s->Exec(absl::StrCat("DROP ROLE ", qrole)); !r.ok()) return fail(r);
    WB_RETURN_IF_ERROR(s->Exec("COMMIT"));
    if (!to.empty()) {
      result.add_changes(absl::StrCat("REASSIGN OWNED BY ", who, " TO ", util::PrintableUtf8(to)));
    }
    result.add_changes(absl::StrCat("DROP OWNED BY ", who));
    result.add_changes(absl::StrCat("DROP ROLE ", who));
  }
  return result;
}

absl::StatusOr<writeback::v1::Verification> PostgresConnector::Verify(const CallContext& ctx,
                                                                      const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(Authorize(action));
  WB_ASSIGN_OR_RETURN(auto s, Connect(ctx));
  const std::string& role = action.object;
  const std::string who = util::PrintableUtf8(role);
  const std::string& op = action.operation;
  WB_ASSIGN_OR_RETURN(const RoleState st, ReadRole(*s, role));
  WB_ASSIGN_OR_RETURN(const auto pids, ReadSessions(*s, st.oid));

  writeback::v1::Verification v;
  *v.add_after() = RoleObservation(ctx, role, st);
  *v.add_after() = SessionsObservation(ctx, role, pids);
  std::vector<std::string> proved;    // what the observations established
  std::vector<std::string> failures;  // what contradicts the effect
  bool unverifiable = false;

  if (IsSchemaOp(op)) {
    const std::string& schema = action.params.postgres().schema();
    if (!st.exists) {
      proved.push_back(absl::StrCat("pg_roles: role ", who,
                                    " does not exist, so it holds no "
                                    "privileges"));
    } else {
      const PrivSet privs = PrivilegesOf(action);
      WB_ASSIGN_OR_RETURN(const std::string schema_oid, SchemaOid(*s, schema));
      WB_ASSIGN_OR_RETURN(const auto left, ReadEffective(*s, schema_oid, st.oid, privs));
      *v.add_after() = GrantsObservation(ctx, "has_privilege", role, schema, left);
      if (left.empty()) {
        proved.push_back(absl::StrCat(
            "has_*_privilege: the role holds none of the revoked privileges on schema ",
            util::PrintableUtf8(schema), " or its relations and sequences, by any route"));
      } else {
        failures.push_back(absl::StrCat(
            "has_*_privilege: the role still holds ", left.size(),
            " of them (by a direct grant from another grantor, PUBLIC, membership, ownership "
            "or superuser): ",
            v.after(v.after_size() - 1).facts().at("privileges")));
      }
    }
  } else if (op == "terminate_sessions") {
    // Sessions are judged below.
  } else if (RoleEffectDone(action, st)) {
    if (op == "drop_role" || !st.exists) {
      proved.push_back(absl::StrCat("pg_roles: no role named ", who));
    } else if (op == "disable_login") {
      proved.push_back("pg_roles: rolcanlogin = false (NOLOGIN)");
    } else if (op == "expire_password") {
      proved.push_back(absl::StrCat("pg_roles: rolvaliduntil = ", st.valid_until,
                                    ", not after the server's now(): the password is expired"));
    } else if (op == "set_password") {
      proved.push_back(
          "pg_authid: the stored password verifier is the one requested (sha256 matches)");
    }
  } else if (op == "set_password" && st.exists && !st.password_readable) {
    unverifiable = true;
    proved.push_back(
        "pg_authid: not readable by the connector's role, so the stored verifier cannot be "
        "compared");
  } else if (op == "set_password" && !st.exists) {
    failures.push_back(absl::StrCat("pg_roles: no role named ", who));
  } else if (op == "set_password") {
    failures.push_back(absl::StrCat("pg_authid: the stored verifier (sha256 ", st.password_sha256,
                                    ") is not the requested one (sha256 ", ScramDigest(action),
                                    ")"));
  } else {
    failures.push_back(absl::StrCat("pg_roles: ", v.after(0).detail()));
  }

  // Sessions the apply ended are judged right after it; on re-verification
  // sessions opened since (with a new password, or before a later grant)
  // are legitimate and are only shown (observation above), not judged.
  if (op == "terminate_sessions" && ctx.reverification) {
    unverifiable = true;
    proved.push_back(
        "terminate_sessions has no lasting effect to re-verify (it ended the sessions that "
        "existed when it ran)");
  } else if (EndsSessions(action) && !ctx.reverification && !(op == "drop_role" && !st.exists)) {
    if (pids.empty()) {
      proved.push_back("pg_stat_activity: no backend of the role is left");
    } else {
      failures.push_back(absl::StrCat("pg_stat_activity: ", pids.size(),
                                      " backend(s) of the role still alive (pids ",
                                      absl::StrJoin(pids, ","), ")"));
    }
  }

  // The probe corroborates an effect the catalog shows; when the catalog
  // already contradicts it, a login would only leave a session behind.
  if (ProbeApplies(op) && failures.empty()) {
    for (const auto& probe : cfg_.probes()) {
      if (probe.account() != role) continue;
      Observation o;
      o.set_check("login_probe");
      o.set_subject(who);
      auto params = ConnectionParams(ctx, role, probe.password_file());
      if (!params.ok()) {
        o.set_detail(absl::StrCat("not attempted: ", params.status().message()));
        (*o.mutable_facts())["attempted"] = "false";
      } else {
        const pg::LoginAttempt a = pg::Session::TryLogin(*params);
        (*o.mutable_facts())["attempted"] = "true";
        (*o.mutable_facts())["accepted"] = a.accepted ? "true" : "false";
        (*o.mutable_facts())["password_requested"] = a.password_requested ? "true" : "false";
        if (a.accepted) {
          o.set_detail("the configured old credential still logs in");
          failures.push_back("login_probe: the old credential still logs in");
        } else if (a.password_requested) {
          o.set_detail(absl::StrCat("refused after the server asked for the password: ",
                                    util::PrintableUtf8(a.message, 300)));
          proved.push_back(
              "login_probe: the old credential is refused (on its own this would not say why: "
              "wrong password, expired, NOLOGIN and missing role look alike; the catalog "
              "observation above says which)");
        } else {
          o.set_detail(absl::StrCat("inconclusive, the server never asked for a password: ",
                                    util::PrintableUtf8(a.message, 300)));
        }
      }
      o.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
      *v.add_after() = std::move(o);
    }
  }

  if (!failures.empty()) {
    v.set_outcome(writeback::v1::OUTCOME_FAILED);
    v.set_detail(absl::StrCat(
        op, " of role ", who, " not in effect: ", absl::StrJoin(failures, "; "),
        proved.empty() ? "" : absl::StrCat(" (observed: ", absl::StrJoin(proved, "; "), ")")));
  } else if (unverifiable) {
    v.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
    v.set_detail(absl::StrCat(op, " of role ", who, ": ", absl::StrJoin(proved, "; ")));
  } else {
    v.set_outcome(writeback::v1::OUTCOME_VERIFIED);
    v.set_detail(absl::StrCat(op, " of role ", who, " verified: ", absl::StrJoin(proved, "; ")));
  }
  return v;
}

absl::Status PostgresConnector::Check(const CallContext& ctx) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_ASSIGN_OR_RETURN(auto s, Connect(ctx));
  WB_ASSIGN_OR_RETURN(auto rows, s->Query("SELECT pg_catalog.pg_is_in_recovery()"));
  if (!rows.empty() && Truthy(rows[0][0])) {
    return absl::FailedPreconditionError("the server is a standby (in recovery)");
  }
  return absl::OkStatus();
}

}  // namespace wb::connectors
