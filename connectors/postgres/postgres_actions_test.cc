// The postgres action grammar (common/actions/postgres.cc): what the control
// plane and the agent accept, and the field each refusal names.
#include "common/actions/actions.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::actions {
namespace {

using ::testing::HasSubstr;
using writeback::v1::ActionParams;

ActionParams Pg() {
  ActionParams p;
  p.mutable_postgres();
  return p;
}

constexpr char kVerifier[] =
    "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$"
    "ZJXxH8gvKNPjWhOoWcK7hkTE3xbV1q8Urb/9hKhh2Ag=:qsU0u8pQDz6r3UgN/xDV/Tfi2ywWhrB2U8P3KpV4Mv8=";

TEST(PostgresActions, RoleNamesFollowQuotedIdentifierRules) {
  for (const char* ok : {"svc", "svc\"; DROP TABLE x; --", "a'b", "ѕvc", "with space"}) {
    EXPECT_TRUE(ValidateTargetObject("postgres", ok).ok()) << ok;
  }
  EXPECT_TRUE(ValidateTargetObject("postgres", std::string(63, 'r')).ok());
  EXPECT_THAT(
      ValidateTargetObject("postgres", std::string(64, 'r'), "spec.targets[0].object").message(),
      HasSubstr("spec.targets[0].object: longer than 63 bytes"));
  EXPECT_FALSE(ValidateTargetObject("postgres", std::string("a\0b", 3)).ok());
  EXPECT_FALSE(ValidateTargetObject("postgres", "\xff").ok());
  EXPECT_FALSE(ValidateTargetObject("postgres", "\xc0\xa2").ok());
  EXPECT_FALSE(ValidateTargetObject("postgres", "").ok());
}

TEST(PostgresActions, OperationsAndTheirFields) {
  EXPECT_TRUE(ValidateAction("postgres", "disable_login", Pg()).ok());
  EXPECT_TRUE(ValidateAction("postgres", "terminate_sessions", Pg()).ok());
  auto p = Pg();
  p.mutable_postgres()->set_schema("public");
  EXPECT_THAT(ValidateAction("postgres", "disable_login", p).message(),
              HasSubstr("params.postgres.schema: not used by disable_login"));
  EXPECT_TRUE(ValidateAction("postgres", "reduce_to_read_only", p).ok());
  EXPECT_THAT(ValidateAction("postgres", "revoke_privileges", p).message(),
              HasSubstr("privileges: must list at least one"));
  p.mutable_postgres()->add_privileges("insert");
  p.mutable_postgres()->add_privileges("ALL");
  EXPECT_TRUE(ValidateAction("postgres", "revoke_privileges", p).ok());
  p.mutable_postgres()->add_privileges("INSERT");
  EXPECT_THAT(ValidateAction("postgres", "revoke_privileges", p).message(),
              HasSubstr("privileges[2]: listed twice"));
  p.mutable_postgres()->set_privileges(2, "EXECUTE; DROP");
  EXPECT_THAT(ValidateAction("postgres", "revoke_privileges", p).message(),
              HasSubstr("privileges[2]: must be one of"));
  EXPECT_THAT(ValidateAction("postgres", "terminate_sessions", Pg()).ok(), true);
  auto k = Pg();
  k.mutable_postgres()->set_keep_sessions(true);
  EXPECT_THAT(ValidateAction("postgres", "terminate_sessions", k).message(),
              HasSubstr("keep_sessions: not used"));
}

TEST(PostgresActions, SetPasswordTakesAVerifierAndAPrecondition) {
  auto p = Pg();
  p.mutable_postgres()->set_new_password_scram(kVerifier);
  EXPECT_THAT(ValidateAction("postgres", "set_password", p).message(),
              HasSubstr("needs a precondition"));
  p.mutable_postgres()->set_expected_password_sha256("none");
  EXPECT_TRUE(ValidateAction("postgres", "set_password", p).ok());
  p.mutable_postgres()->set_expected_password_sha256(std::string(64, 'a'));
  EXPECT_TRUE(ValidateAction("postgres", "set_password", p).ok());
  p.mutable_postgres()->set_expected_password_sha256("ABC");
  EXPECT_THAT(ValidateAction("postgres", "set_password", p).message(),
              HasSubstr("expected_password_sha256"));
  p.mutable_postgres()->clear_expected_password_sha256();
  p.mutable_postgres()->set_expected_valid_until("2030-01-01T00:00:00Z");
  EXPECT_TRUE(ValidateAction("postgres", "set_password", p).ok());
  p.mutable_postgres()->set_expected_valid_until("next tuesday");
  EXPECT_THAT(ValidateAction("postgres", "set_password", p).message(),
              HasSubstr("expected_valid_until"));
  p.mutable_postgres()->set_expected_valid_until("infinity");
  for (const char* bad : {"hunter2", "md5abcdef", "SCRAM-SHA-256$4096:salt$a:b",
                          "SCRAM-SHA-256$0:c2FsdA==$a:b", "SCRAM-SHA-256$4096:c2FsdA=='; --"}) {
    p.mutable_postgres()->set_new_password_scram(bad);
    EXPECT_THAT(ValidateAction("postgres", "set_password", p).message(),
                HasSubstr("new_password_scram: must be a SCRAM-SHA-256 verifier"))
        << bad;
  }
}

TEST(PostgresActions, DropRoleReassignTarget) {
  auto p = Pg();
  p.mutable_postgres()->set_reassign_owned_to("app_owner");
  EXPECT_TRUE(ValidateAction("postgres", "drop_role", p).ok());
  p.mutable_postgres()->set_reassign_owned_to(std::string(70, 'x'));
  EXPECT_THAT(ValidateAction("postgres", "drop_role", p).message(), HasSubstr("reassign_owned_to"));
  p.mutable_postgres()->set_reassign_owned_to("app_owner");
  EXPECT_THAT(ValidateAction("postgres", "disable_login", p).message(),
              HasSubstr("reassign_owned_to: not used"));
}

}  // namespace
}  // namespace wb::actions
