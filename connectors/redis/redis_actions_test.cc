// The redis action grammar (common/actions/redis.cc).
#include "common/actions/actions.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::actions {
namespace {

using ::testing::HasSubstr;
using writeback::v1::ActionParams;

ActionParams Rd() {
  ActionParams p;
  p.mutable_redis();
  return p;
}

TEST(RedisActions, UserNames) {
  for (const char* ok : {"svc", "a\"b", "x;y#z", "ü∕x", "~*", ">pw"}) {
    EXPECT_TRUE(ValidateTargetObject("redis", ok).ok()) << ok;
  }
  for (const char* bad : {"", "a b", "a\nb", "a\tb", "\r\nFLUSHALL", "a\x7f"}) {
    EXPECT_FALSE(ValidateTargetObject("redis", bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidateTargetObject("redis", std::string("a\0b", 3)).ok());
  EXPECT_FALSE(ValidateTargetObject("redis", std::string(513, 'u')).ok());
  EXPECT_THAT(ValidateTargetObject("redis", "a b", "spec.targets[1].object").message(),
              HasSubstr("spec.targets[1].object: must not contain whitespace"));
}

TEST(RedisActions, RemovePermissions) {
  auto p = Rd();
  EXPECT_THAT(ValidateAction("redis", "remove_permissions", p).message(),
              HasSubstr("needs commands or key_patterns"));
  p.mutable_redis()->add_commands("flushall");
  p.mutable_redis()->add_commands("config|set");
  p.mutable_redis()->add_commands("@dangerous");
  p.mutable_redis()->add_key_patterns("~cache:*");
  p.mutable_redis()->add_key_patterns("%R~logs:*");
  p.mutable_redis()->add_key_patterns("allkeys");
  EXPECT_TRUE(ValidateAction("redis", "remove_permissions", p).ok());
  for (const char* bad : {"FLUSHALL", "flushall x", "@all", "config|", "-get", "+@all"}) {
    auto q = p;
    q.mutable_redis()->set_commands(0, bad);
    EXPECT_THAT(ValidateAction("redis", "remove_permissions", q).message(),
                HasSubstr("commands[0]"))
        << bad;
  }
  for (const char* bad : {"cache:*", "~", "~a b", "%X~a"}) {
    auto q = p;
    q.mutable_redis()->set_key_patterns(0, bad);
    EXPECT_THAT(ValidateAction("redis", "remove_permissions", q).message(),
                HasSubstr("key_patterns[0]"))
        << bad;
  }
  EXPECT_THAT(ValidateAction("redis", "disable_user", p).message(), HasSubstr("not used"));
}

TEST(RedisActions, RotationNeedsHashesNeverPasswords) {
  auto p = Rd();
  p.mutable_redis()->set_new_password_sha256(std::string(64, 'b'));
  EXPECT_THAT(ValidateAction("redis", "rotate_password", p).message(),
              HasSubstr("expected_password_sha256s"));
  p.mutable_redis()->add_expected_password_sha256s(std::string(64, 'c'));
  EXPECT_TRUE(ValidateAction("redis", "rotate_password", p).ok());
  p.mutable_redis()->set_new_password_sha256("new-password");
  EXPECT_THAT(ValidateAction("redis", "rotate_password", p).message(),
              HasSubstr("new_password_sha256"));
  auto k = Rd();
  k.mutable_redis()->set_keep_connections(true);
  EXPECT_TRUE(ValidateAction("redis", "disable_user", k).ok());
  EXPECT_THAT(ValidateAction("redis", "kill_connections", k).message(),
              HasSubstr("keep_connections: not used"));
}

}  // namespace
}  // namespace wb::actions
