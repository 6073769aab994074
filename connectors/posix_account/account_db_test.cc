#include "connectors/posix_account/account_db.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::connectors::posix {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

AccountFiles Files() {
  AccountFiles f;
  f.passwd =
      "root:x:0:0:root:/root:/bin/bash\n"
      "+nisuser::::::\n"
      "broken line without colons\n"
      "svc:x:1001:1001:Service,,,:/srv/svc:/bin/bash\r\n"
      "svc:x:2002:2002:duplicate:/tmp:/bin/sh\n"
      "other:x:1002:100::/home/other:/usr/sbin/nologin\n";
  f.shadow =
      "root:*:19000:0:99999:7:::\n"
      "svc:$6$salt$hash:19500:0:99999:7::1:\n"
      "other:!$6$salt$hash:19500:0:99999:7:::\n";
  f.group =
      "root:x:0:\n"
      "users:x:100:svc,other\n"
      "svc:x:1001:\n"
      "docker:x:999:other,svc\n"
      "docker:x:998:duplicate-ignored\n"
      "empty:x:500:\n";
  f.gshadow = "users:*::svc\ndocker:!::other\n";
  f.has_gshadow = true;
  return f;
}

TEST(AccountDbTest, DescribesAnAccountFromTheFirstEntry) {
  const AccountView v = DescribeAccount(Files(), "svc");
  ASSERT_TRUE(v.exists);
  EXPECT_EQ(v.uid, 1001u);
  EXPECT_EQ(v.gid, 1001u);
  EXPECT_EQ(v.home, "/srv/svc");
  EXPECT_EQ(v.shell, "/bin/bash");
  EXPECT_EQ(v.primary_group, "svc");
  EXPECT_THAT(v.groups, ElementsAre("docker", "users"));
  EXPECT_THAT(v.gshadow_groups, ElementsAre("users"));
  EXPECT_EQ(v.password, PasswordState::kHash);
  EXPECT_EQ(v.expire_days, "1");
  EXPECT_EQ(v.skipped_lines, 3);  // NIS line, broken line, duplicate
}

TEST(AccountDbTest, PasswordStates) {
  EXPECT_EQ(DescribeAccount(Files(), "other").password, PasswordState::kLocked);
  EXPECT_EQ(DescribeAccount(Files(), "root").password, PasswordState::kNoPassword);
  AccountFiles f = Files();
  f.shadow += "nopw::19500:0:99999:7:::\n";
  f.passwd += "nopw:x:1003:1003::/home/nopw:/bin/sh\n";
  EXPECT_EQ(DescribeAccount(f, "nopw").password, PasswordState::kEmpty);
  f.passwd += "noshadow:x:1004:1004::/home/n:/bin/sh\n";
  const AccountView n = DescribeAccount(f, "noshadow");
  EXPECT_TRUE(n.exists);
  EXPECT_FALSE(n.has_shadow);
  EXPECT_EQ(n.password, PasswordState::kMissing);
}

TEST(AccountDbTest, Expiry) {
  AccountView v = DescribeAccount(Files(), "svc");
  ASSERT_TRUE(v.ExpireDay().has_value());
  EXPECT_EQ(*v.ExpireDay(), 1);
  EXPECT_TRUE(v.ExpiredOn(1));
  EXPECT_TRUE(v.ExpiredOn(20000));
  EXPECT_FALSE(v.ExpiredOn(0));
  AccountView o = DescribeAccount(Files(), "other");
  EXPECT_FALSE(o.ExpireDay().has_value());
  EXPECT_FALSE(o.ExpiredOn(20000));
  o.expire_days = "-1";
  EXPECT_FALSE(o.ExpiredOn(20000));
  o.expire_days = "junk";
  EXPECT_FALSE(o.ExpiredOn(20000));
}

TEST(AccountDbTest, MissingAccountAndPrefixNames) {
  const AccountView v = DescribeAccount(Files(), "sv");  // a prefix of "svc"
  EXPECT_FALSE(v.exists);
  EXPECT_FALSE(v.has_shadow);
  EXPECT_THAT(v.groups, IsEmpty());
}

TEST(AccountDbTest, DescribesGroups) {
  const GroupView g = DescribeGroup(Files(), "docker");
  ASSERT_TRUE(g.exists);
  EXPECT_EQ(g.gid, 999u);
  EXPECT_THAT(g.members, ElementsAre("other", "svc"));
  EXPECT_THAT(g.gshadow_members, ElementsAre("other"));
  EXPECT_FALSE(DescribeGroup(Files(), "nope").exists);
  EXPECT_TRUE(DescribeGroup(Files(), "empty").members.empty());
}

TEST(AccountDbTest, HomeDirectories) {
  const auto homes = HomeDirectories(Files());
  EXPECT_EQ(homes.size(), 4u);
  EXPECT_EQ(homes[1].first, "/srv/svc");
  EXPECT_EQ(homes[1].second, "svc");
}

}  // namespace
}  // namespace wb::connectors::posix
