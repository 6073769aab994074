// LDAP end to end: a real control plane and agent (tests/e2e/harness.h) with
// the real ldap connector, against a real slapd (ppolicy, monitor) started by
// the test. The lock is enforced (the old credential is refused) and the
// decision is VERIFIED. LDAP has no operation that ends another client's
// bound connection: a session bound before the lock keeps working, and the
// decision says so (FAILED, naming the connection) instead of claiming
// success.
#include "absl/strings/str_cat.h"
#include "connectors/ldap/ldap_test_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace wb::e2e {
namespace {

using connectors::ldaptest::kSuffix;
using connectors::ldaptest::LdapEnv;
using connectors::testing::LdapClient;
using ::testing::HasSubstr;

LdapEnv* const kEnv = LdapEnv::Get();

std::string Account(const std::string& uid, const std::string& password) {
  const std::string dn = absl::StrCat("uid=", uid, ",ou=people,", kSuffix);
  EXPECT_TRUE(kEnv->admin()
                  .Add(dn, {{"objectClass", {"inetOrgPerson"}},
                            {"uid", {uid}},
                            {"cn", {uid}},
                            {"sn", {uid}},
                            {"userPassword", {password}}})
                  .ok());
  return dn;
}

writeback::v1::DecisionSpec LockSpec(const std::string& uid) {
  writeback::v1::DecisionSpec spec;
  spec.set_connector_instance("corp-directory");
  spec.set_operation("lock");
  spec.mutable_params()->mutable_ldap();
  spec.add_targets()->set_object(uid);
  spec.set_reason("service account unused for 180 days");
  spec.set_reference("IAM-77");
  return spec;
}

TEST(LdapE2e, LockThroughTheControlPlaneIsVerifiedAndLiveBindsAreReported) {
  ASSERT_TRUE(kEnv->ok());
  const std::string quiet_dn = Account("svc-backup-e2e", "backup-old-secret");
  const std::string busy_dn = Account("svc-report-e2e", "report-old-secret");
  auto live = LdapClient::Connect(kEnv->server().uri(), busy_dn, "report-old-secret");
  ASSERT_TRUE(live.ok()) << live.status();

  auto c = kEnv->Config("corp-directory");
  c.add_allowed_operations("lock");
  auto* probe = c.mutable_ldap()->add_probes();
  probe->set_account("svc-backup-e2e");
  probe->set_password_file(kEnv->WriteSecret("probe", "backup-old-secret"));
  Harness::Options o;
  o.agents["a1"] = {c};
  auto h = Harness::Start(o);
  ASSERT_TRUE(h.ok()) << h.status();

  // No session open: VERIFIED, with the policy, the monitor and the probe.
  auto sub = (*h)->Submit(LockSpec("svc-backup-e2e"));
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto view = (*h)->WaitTerminal(sub->decision_id());
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->state(), writeback::v1::DECISION_STATE_VERIFIED) << view->DebugString();
  ASSERT_EQ(view->tasks_size(), 1);
  const auto& t = view->tasks(0);
  EXPECT_EQ(t.outcome(), writeback::v1::OUTCOME_VERIFIED) << t.verification().detail();
  EXPECT_THAT(t.verification().detail(), HasSubstr("pwdLockout TRUE"));
  EXPECT_THAT(t.verification().detail(), HasSubstr("no connection is bound as the account"));
  EXPECT_THAT(view->DebugString(), ::testing::Not(HasSubstr("backup-old-secret")));
  auto again = LdapClient::Connect(kEnv->server().uri(), quiet_dn, "backup-old-secret");
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("(49)"));

  // A session bound before the lock: the lock is in place (new binds are
  // refused) but the decision does not claim the account is cut off.
  sub = (*h)->Submit(LockSpec("svc-report-e2e"));
  ASSERT_TRUE(sub.ok()) << sub.status();
  view = (*h)->WaitTerminal(sub->decision_id());
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->state(), writeback::v1::DECISION_STATE_FAILED) << view->DebugString();
  ASSERT_EQ(view->tasks_size(), 1);
  EXPECT_THAT(view->tasks(0).verification().detail(),
              HasSubstr("1 connection(s) still bound as the account"));
  EXPECT_FALSE(LdapClient::Connect(kEnv->server().uri(), busy_dn, "report-old-secret").ok());
}

}  // namespace
}  // namespace wb::e2e
