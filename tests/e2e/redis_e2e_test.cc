// Redis end to end: a real control plane and agent (tests/e2e/harness.h)
// with the real redis connector, against a real redis-server started by the
// test. Live connections authenticated with the service credential are gone
// after the decision, the old credential is refused, the change is persisted
// to the ACL file, and the decision is VERIFIED.
#include "absl/strings/str_cat.h"
#include "connectors/redis/redis_test_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace wb::e2e {
namespace {

using connectors::redistest::RedisEnv;
using connectors::testing::RedisClient;
using ::testing::HasSubstr;

RedisEnv* const kEnv = RedisEnv::Get();

TEST(RedisE2e, DisableUserThroughTheControlPlaneEndsConnectionsAndIsVerified) {
  ASSERT_TRUE(kEnv->ok());
  const std::string user = "svc-sessions";
  const std::string password = "sessions-old-secret";
  ASSERT_EQ(kEnv->Admin({"ACL", "SETUSER", user, "on", ">" + password, "~*", "+@all"}).type,
            "status");
  auto live = RedisClient::Connect(kEnv->server().port(), user, password);
  ASSERT_TRUE(live.ok()) << live.status();
  ASSERT_TRUE((*live)->Alive());

  auto c = kEnv->Config("sessions-cache");
  c.add_allowed_operations("disable_user");
  c.mutable_redis()->add_protected_users("default");
  auto* probe = c.mutable_redis()->add_probes();
  probe->set_account(user);
  probe->set_password_file(kEnv->WriteSecret("probe", password));
  Harness::Options o;
  o.agents["a1"] = {c};
  auto h = Harness::Start(o);
  ASSERT_TRUE(h.ok()) << h.status();

  writeback::v1::DecisionSpec spec;
  spec.set_connector_instance("sessions-cache");
  spec.set_operation("disable_user");
  spec.mutable_params()->mutable_redis();
  spec.add_targets()->set_object(user);
  spec.set_reason("credential found in a public repository");
  spec.set_reference("SEC-88");
  auto sub = (*h)->Submit(spec);
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto view = (*h)->WaitTerminal(sub->decision_id());
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->state(), writeback::v1::DECISION_STATE_VERIFIED) << view->DebugString();
  ASSERT_EQ(view->tasks_size(), 1);
  const auto& t = view->tasks(0);
  EXPECT_EQ(t.outcome(), writeback::v1::OUTCOME_VERIFIED) << t.verification().detail();
  EXPECT_THAT(t.verification().detail(), HasSubstr("flags include 'off'"));
  EXPECT_THAT(t.verification().detail(), HasSubstr("no connection authenticated as the user"));
  bool probe_refused = false;
  for (const auto& ob : t.verification().after()) {
    if (ob.check() == "auth_probe") probe_refused = ob.facts().at("accepted") == "false";
  }
  EXPECT_TRUE(probe_refused) << t.verification().DebugString();
  EXPECT_THAT(view->DebugString(), ::testing::Not(HasSubstr(password)));

  EXPECT_FALSE((*live)->Alive()) << "the live connection survived";
  auto again = RedisClient::Connect(kEnv->server().port(), user, password);
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("WRONGPASS"));
  EXPECT_THAT(connectors::testing::ReadFileOrEmpty(kEnv->server().aclfile()),
              HasSubstr(absl::StrCat("user ", user, " off")));
}

}  // namespace
}  // namespace wb::e2e
