// PostgreSQL end to end: a real control plane and a real agent
// (tests/e2e/harness.h) with the real postgres connector, against a real
// PostgreSQL 15 started by the test. A live session opened with the service
// credential is gone after the decision, the old credential is refused, and
// the decision is VERIFIED with the connector's evidence.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "connectors/postgres/postgres_test_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace wb::e2e {
namespace {

using connectors::pgtest::PgEnv;
using connectors::testing::PgClient;
using ::testing::HasSubstr;

PgEnv* const kEnv = PgEnv::Get();

TEST(PostgresE2e, DisableLoginThroughTheControlPlaneEndsSessionsAndIsVerified) {
  ASSERT_TRUE(kEnv->ok());
  const std::string role = "svc_billing_e2e";
  const std::string password = "billing-old-secret";
  ASSERT_TRUE(kEnv->admin()
                  .ExecGenerated("SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, "
                                 "$2::text)",
                                 {role, password})
                  .ok());
  auto live = PgClient::Connect(kEnv->server().port(), role, password);
  ASSERT_TRUE(live.ok()) << live.status();
  ASSERT_TRUE((*live)->Alive());

  auto c = kEnv->Config("billing-db");
  c.add_allowed_operations("disable_login");
  auto* probe = c.mutable_postgres()->add_probes();
  probe->set_account(role);
  probe->set_password_file(kEnv->WriteSecret("probe", password));
  Harness::Options o;
  o.agents["a1"] = {c};
  auto h = Harness::Start(o);
  ASSERT_TRUE(h.ok()) << h.status();

  writeback::v1::DecisionSpec spec;
  spec.set_connector_instance("billing-db");
  spec.set_operation("disable_login");
  spec.mutable_params()->mutable_postgres();
  spec.add_targets()->set_object(role);
  spec.set_reason("stale service role, owner left");
  spec.set_reference("IAM-1201");
  auto sub = (*h)->Submit(spec);
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto view = (*h)->WaitTerminal(sub->decision_id());
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->state(), writeback::v1::DECISION_STATE_VERIFIED) << view->DebugString();
  ASSERT_EQ(view->tasks_size(), 1);
  const auto& t = view->tasks(0);
  EXPECT_EQ(t.outcome(), writeback::v1::OUTCOME_VERIFIED) << t.verification().detail();
  EXPECT_THAT(t.verification().detail(), HasSubstr("rolcanlogin = false"));
  EXPECT_THAT(t.verification().detail(), HasSubstr("no backend of the role is left"));
  bool probe_refused = false;
  for (const auto& ob : t.verification().after()) {
    if (ob.check() == "login_probe") probe_refused = ob.facts().at("accepted") == "false";
  }
  EXPECT_TRUE(probe_refused) << t.verification().DebugString();
  EXPECT_THAT(view->DebugString(), ::testing::Not(HasSubstr(password)));

  // Independently of Writeback.
  EXPECT_FALSE((*live)->Alive()) << "the live session survived";
  auto again = PgClient::Connect(kEnv->server().port(), role, password);
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("not permitted to log in"));
}

}  // namespace
}  // namespace wb::e2e
