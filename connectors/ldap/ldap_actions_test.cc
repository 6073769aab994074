// The ldap action grammar (common/actions/ldap.cc) and the connector's RFC
// 4514 / 4515 escaping.
#include "common/actions/actions.h"
#include "connectors/ldap/escape.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::actions {
namespace {

using ::testing::HasSubstr;
using writeback::v1::ActionParams;

ActionParams Ld() {
  ActionParams p;
  p.mutable_ldap();
  return p;
}

TEST(LdapActions, ObjectsAreAttributeValues) {
  for (const char* ok : {"svc-backup", "a,b+c", "*)(uid=*", "#x", " lead", "日本語"}) {
    EXPECT_TRUE(ValidateTargetObject("ldap", ok).ok()) << ok;
  }
  for (const char* bad : {"", "a\nb", "a\x01", "\xff"}) {
    EXPECT_FALSE(ValidateTargetObject("ldap", bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidateTargetObject("ldap", std::string(1025, 'o')).ok());
  EXPECT_FALSE(ValidateTargetObject("ldap", std::string("a\0b", 3)).ok());
}

TEST(LdapActions, Passwords) {
  auto p = Ld();
  p.mutable_ldap()->set_new_password_hash("{SSHA}abcdefgh");
  EXPECT_THAT(ValidateAction("ldap", "replace_password", p).message(),
              HasSubstr("expected_password_sha256"));
  p.mutable_ldap()->set_expected_password_sha256("none");
  EXPECT_TRUE(ValidateAction("ldap", "replace_password", p).ok());
  for (const char* bad : {"secret", "{CLEARTEXT}secret", "{SSHA}", "{}x", "{SSHA}a b"}) {
    p.mutable_ldap()->set_new_password_hash(bad);
    EXPECT_THAT(ValidateAction("ldap", "replace_password", p).message(),
                HasSubstr("new_password_hash"))
        << bad;
  }
  auto g = Ld();
  g.mutable_ldap()->add_groups("admins");
  EXPECT_TRUE(ValidateAction("ldap", "remove_from_groups", g).ok());
  EXPECT_THAT(ValidateAction("ldap", "lock", g).message(), HasSubstr("groups: not used by lock"));
  g.mutable_ldap()->add_groups("admins");
  EXPECT_THAT(ValidateAction("ldap", "remove_from_groups", g).message(),
              HasSubstr("groups[1]: listed twice"));
}

TEST(LdapEscaping, Rfc4514AndRfc4515) {
  using connectors::ldapesc::EscapeDnValue;
  using connectors::ldapesc::EscapeFilterValue;
  EXPECT_EQ(EscapeDnValue("a,b+c\"d\\e<f>g;h=i"), "a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h\\=i");
  EXPECT_EQ(EscapeDnValue("#lead"), "\\#lead");
  EXPECT_EQ(EscapeDnValue(" both "), "\\ both\\ ");
  EXPECT_EQ(EscapeDnValue(std::string("a\0b\n", 4)), "a\\00b\\0a");
  EXPECT_EQ(EscapeDnValue("mid#dle"), "mid#dle");
  EXPECT_EQ(EscapeDnValue("日本"), "日本");
  EXPECT_EQ(EscapeFilterValue("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
  EXPECT_EQ(EscapeFilterValue(std::string("a\\b\0", 4)), "a\\5cb\\00");
  EXPECT_EQ(connectors::ldapesc::MakeDn("uid", "x,y", "ou=p,dc=e"), "uid=x\\,y,ou=p,dc=e");
  EXPECT_TRUE(connectors::ldapesc::IsAttributeName("uniqueMember"));
  EXPECT_TRUE(connectors::ldapesc::IsAttributeName("2.5.4.3"));
  EXPECT_FALSE(connectors::ldapesc::IsAttributeName("2..5"));
  EXPECT_FALSE(connectors::ldapesc::IsAttributeName("a b"));
  EXPECT_FALSE(connectors::ldapesc::IsAttributeName("-x"));
}

}  // namespace
}  // namespace wb::actions
