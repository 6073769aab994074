// Hostile identifiers against the postgres connector and a real server: more
// than 200 role names (and table names the connector reads back from the
// catalog, and a schema and a role whose own names hold quotes and would-be
// injections). Valid names are acted on exactly; invalid ones are refused
// with INVALID_ARGUMENT; no injected statement runs: the catalog shows only
// the intended changes, the canaries are intact, and the server's statement
// log (log_statement=all) has no error from the connector's session.
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/actions/actions.h"
#include "connectors/postgres/postgres.h"
#include "connectors/postgres/postgres_test_env.h"
#include "connectors/testing/servers/hostile_values.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::connectors {
namespace {

using pgtest::PgEnv;
using testing::HostileValues;

PgEnv* const kEnv = PgEnv::Get();

std::string One(const std::string& sql, const std::vector<std::string>& params = {}) {
  auto r = kEnv->admin().Query(sql, params);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok() || r->empty() || (*r)[0].empty()) return "<none>";
  return (*r)[0][0].value_or("<null>");
}

TEST(PostgresHostileIdentifiers, OnlyTheIntendedChangesHappen) {
  ASSERT_TRUE(kEnv->ok());
  auto& admin = kEnv->admin();
  const std::vector<std::string> values = HostileValues();
  ASSERT_GE(values.size(), 200u);

  const std::string schema = "hostile\"; DROP TABLE public.canary; --";
  const std::string reader = "reader\"'; DROP TABLE public.canary; --";
  ASSERT_TRUE(
      admin
          .ExecGenerated("SELECT format('CREATE SCHEMA %I AUTHORIZATION app_owner', $1::text) "
                         "UNION ALL SELECT format('CREATE ROLE %I LOGIN', $2::text) "
                         "UNION ALL SELECT format('GRANT USAGE ON SCHEMA %I TO %I', "
                         "$1::text, $2::text) "
                         "UNION ALL SELECT 'CREATE ROLE svc LOGIN'",
                         {schema, reader})
          .ok());
  const std::string roles_before = One("SELECT count(*) FROM pg_roles");

  auto cfg = kEnv->Config("pg-hostile");
  auto c = PostgresConnector::Create(cfg);
  ASSERT_TRUE(c.ok()) << c.status();
  FakeClock clock;
  CallContext ctx{absl::InfiniteFuture(), &clock};

  int refused = 0, acted = 0, created_roles = 0, created_tables = 0;
  std::vector<std::string> created;
  for (const std::string& v : values) {
    SCOPED_TRACE(absl::StrCat("value #", &v - values.data(), " (", v.size(), " bytes)"));
    Action a;
    a.operation = "disable_login";
    a.object = v;
    a.params.mutable_postgres();
    if (!actions::ValidateTargetObject("postgres", v).ok()) {
      EXPECT_EQ((*c)->PlanChange(ctx, a).status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ((*c)->Verify(ctx, a).status().code(), absl::StatusCode::kInvalidArgument);
      ++refused;
      continue;
    }
    // The server quotes (format %I), independently of the connector's
    // PQescapeIdentifier. Reserved names ("public", "pg_*") cannot be roles;
    // the connector must then find nothing to do.
    if (admin.ExecGenerated("SELECT format('CREATE ROLE %I LOGIN', $1::text)", {v}).ok()) {
      ++created_roles;
      created.push_back(v);
    }
    if (admin
            .ExecGenerated("SELECT format('CREATE TABLE %I.%I (id int)', $1::text, $2::text) "
                           "UNION ALL SELECT format('ALTER TABLE %I.%I OWNER TO app_owner', "
                           "$1::text, $2::text) "
                           "UNION ALL SELECT format('GRANT SELECT, INSERT ON %I.%I TO %I', "
                           "$1::text, $2::text, $3::text)",
                           {schema, v, reader})
            .ok()) {
      ++created_tables;
    }
    auto plan = (*c)->PlanChange(ctx, a);
    if (v == "postgres") {
      EXPECT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied);
      continue;
    }
    ASSERT_TRUE(plan.ok()) << plan.status();
    auto applied = (*c)->Apply(ctx, a, *plan);
    ASSERT_TRUE(applied.ok()) << applied.status();
    auto ver = (*c)->Verify(ctx, a);
    ASSERT_TRUE(ver.ok()) << ver.status();
    EXPECT_EQ(ver->outcome(), writeback::v1::OUTCOME_VERIFIED) << ver->detail();
    ++acted;
  }
  EXPECT_GT(refused, 20);
  EXPECT_GT(acted, 150);
  EXPECT_GT(created_tables, 150);

  // Names read back from the catalog: every hostile table of the hostile
  // schema loses INSERT for the hostile reader, keeps SELECT.
  Action ro;
  ro.operation = "reduce_to_read_only";
  ro.object = reader;
  ro.params.mutable_postgres()->set_schema(schema);
  auto plan = (*c)->PlanChange(ctx, ro);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->changes_size(), created_tables);
  auto applied = (*c)->Apply(ctx, ro, *plan);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->changes_size(), created_tables);
  auto ver = (*c)->Verify(ctx, ro);
  ASSERT_TRUE(ver.ok()) << ver.status();
  EXPECT_EQ(ver->outcome(), writeback::v1::OUTCOME_VERIFIED) << ver->detail();

  // The catalog shows exactly what was meant.
  EXPECT_EQ(One("SELECT count(*) FROM public.canary"), "2");
  EXPECT_EQ(One("SELECT count(*) FROM pg_roles WHERE rolname = 'pwned'"), "0");
  EXPECT_EQ(One("SELECT rolcanlogin::text FROM pg_roles WHERE rolname = 'svc'"), "true")
      << "a look-alike name touched the real 'svc'";
  EXPECT_EQ(One("SELECT rolcanlogin::text FROM pg_roles WHERE rolname = $1", {reader}), "true");
  EXPECT_EQ(One("SELECT count(*) FROM pg_roles"),
            absl::StrCat(std::stoi(roles_before) + created_roles));
  for (const auto& v : created) {
    EXPECT_EQ(One("SELECT rolcanlogin::text FROM pg_roles WHERE rolname = $1", {v}), "false")
        << v.substr(0, 80);
  }
  EXPECT_EQ(One("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = $1 AND has_table_privilege($2::text, c.oid, 'INSERT')",
                {schema, reader}),
            "0");
  EXPECT_EQ(One("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = $1 AND has_table_privilege($2::text, c.oid, 'SELECT')",
                {schema, reader}),
            absl::StrCat(created_tables));
  EXPECT_EQ(One("SELECT rolcanlogin::text FROM pg_roles WHERE rolname = 'writeback'"), "true");
  EXPECT_EQ(One("SELECT rolsuper::text FROM pg_roles WHERE rolname = 'writeback'"), "false");

  // The statement log: the connector's session never caused an error (an
  // injection that breaks out of quoting shows up as a syntax error or a
  // failed statement), and every statement it sent is one the connector
  // makes.
  const std::string log = kEnv->server().ReadLog();
  int statements = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::StrContains(line, " writeback/pg-hostile: ")) continue;
    EXPECT_FALSE(absl::StrContains(line, "ERROR:")) << line.substr(0, 300);
    const size_t at = line.find("execute <unnamed>: ");
    if (at == absl::string_view::npos) continue;
    ++statements;
    const absl::string_view stmt = line.substr(at + 19);
    bool known = false;
    for (absl::string_view prefix :
         {"SELECT ", "BEGIN", "COMMIT", "ROLLBACK", "ALTER ROLE \"", "REVOKE "}) {
      if (absl::StartsWith(stmt, prefix)) known = true;
    }
    EXPECT_TRUE(known) << stmt.substr(0, 300);
  }
  EXPECT_GT(statements, 1000);
}

}  // namespace
}  // namespace wb::connectors
