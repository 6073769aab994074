#include "common/actions/coverage.h"

#include "gtest/gtest.h"

namespace wb::actions {
namespace {

using writeback::v1::ActionParams;

constexpr char kFpA[] = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
constexpr char kFpB[] = "SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

ActionParams RemoveKey(const std::string& fp) {
  ActionParams p;
  p.mutable_ssh_authorized_keys()->set_fingerprint(fp);
  return p;
}

ActionParams Keep(std::initializer_list<std::string> fps) {
  ActionParams p;
  for (const auto& fp : fps) p.mutable_ssh_authorized_keys()->add_keep_fingerprints(fp);
  return p;
}

TEST(CoverageTest, SameOperationAndParametersCover) {
  const ActionParams a = RemoveKey(kFpA);
  auto r = Covers("ssh_authorized_keys", {"remove_key", a}, {"remove_key", a});
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(r->find("same parameters"), std::string::npos) << *r;
}

TEST(CoverageTest, AnotherKeyOfTheSameUserIsNotCovered) {
  // The sequence of issue 15: remove K0, then remove K1 for the same user.
  EXPECT_FALSE(Covers("ssh_authorized_keys", {"remove_key", RemoveKey(kFpB)},
                      {"remove_key", RemoveKey(kFpA)})
                   .has_value());
}

TEST(CoverageTest, ExclusiveSetCoversOnlyKeysItDoesNotKeep) {
  auto r = Covers("ssh_authorized_keys", {"exclusive_set", Keep({kFpB})},
                  {"remove_key", RemoveKey(kFpA)});
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(r->find(kFpA), std::string::npos) << *r;
  EXPECT_FALSE(Covers("ssh_authorized_keys", {"exclusive_set", Keep({kFpA, kFpB})},
                      {"remove_key", RemoveKey(kFpA)})
                   .has_value());
  // Never the other way round.
  EXPECT_FALSE(Covers("ssh_authorized_keys", {"remove_key", RemoveKey(kFpA)},
                      {"exclusive_set", Keep({kFpB})})
                   .has_value());
}

TEST(CoverageTest, DeleteCoversLockButNotTheReverse) {
  ActionParams p;
  p.mutable_posix_account();
  EXPECT_TRUE(Covers("posix_account", {"delete", p}, {"lock", p}).has_value());
  EXPECT_FALSE(Covers("posix_account", {"lock", p}, {"delete", p}).has_value());
  EXPECT_FALSE(Covers("posix_account", {"expire", p}, {"lock", p}).has_value());
}

TEST(CoverageTest, RotationsAreNeverCoveredByAnotherOperation) {
  ActionParams drop;
  drop.mutable_postgres();
  ActionParams rotate;
  rotate.mutable_postgres()->set_new_password_scram("SCRAM-SHA-256$4096:c2FsdA==$a:b");
  EXPECT_FALSE(Covers("postgres", {"drop_role", drop}, {"set_password", rotate}).has_value());
  EXPECT_TRUE(Covers("postgres", {"drop_role", drop}, {"disable_login", drop}).has_value());
}

TEST(CoverageTest, KeptSessionsOrConnectionsAreNotEnded) {
  ActionParams keep;
  keep.mutable_postgres()->set_keep_sessions(true);
  ActionParams none;
  none.mutable_postgres();
  EXPECT_FALSE(
      Covers("postgres", {"disable_login", keep}, {"terminate_sessions", none}).has_value());
  EXPECT_TRUE(
      Covers("postgres", {"disable_login", none}, {"terminate_sessions", none}).has_value());
  ActionParams rkeep;
  rkeep.mutable_redis()->set_keep_connections(true);
  ActionParams rnone;
  rnone.mutable_redis();
  EXPECT_FALSE(Covers("redis", {"disable_user", rkeep}, {"kill_connections", rnone}).has_value());
  EXPECT_TRUE(Covers("redis", {"disable_user", rnone}, {"kill_connections", rnone}).has_value());
}

TEST(CoverageTest, LdapDeleteKeepingGroupsDoesNotCoverGroupRemoval) {
  ActionParams keep;
  keep.mutable_ldap()->set_keep_group_memberships(true);
  ActionParams groups;
  groups.mutable_ldap()->add_groups("admins");
  EXPECT_FALSE(Covers("ldap", {"delete_entry", keep}, {"remove_from_groups", groups}).has_value());
  ActionParams plain;
  plain.mutable_ldap();
  EXPECT_TRUE(Covers("ldap", {"delete_entry", plain}, {"remove_from_groups", groups}).has_value());
}

TEST(CoverageTest, SecretFileSectionAndFile) {
  ActionParams section;
  section.mutable_secret_file()->set_section("db");
  ActionParams key;
  key.mutable_secret_file()->set_section("db");
  key.mutable_secret_file()->set_key("password");
  ActionParams other = key;
  other.mutable_secret_file()->set_section("cache");
  EXPECT_TRUE(Covers("secret_file", {"remove_ini_section", section}, {"remove_ini_key", key}));
  EXPECT_FALSE(Covers("secret_file", {"remove_ini_section", section}, {"remove_ini_key", other}));
  ActionParams del;
  del.mutable_secret_file();
  EXPECT_TRUE(Covers("secret_file", {"delete_file", del}, {"remove_ini_key", other}));
}

TEST(CoverageTest, VaultNeedsTheSameMount) {
  ActionParams meta;
  meta.mutable_vault()->set_mount("secret");
  ActionParams del;
  del.mutable_vault()->set_mount("secret");
  ActionParams other;
  other.mutable_vault()->set_mount("kv2");
  EXPECT_TRUE(Covers("vault", {"kv_delete_metadata", meta}, {"kv_delete", del}));
  EXPECT_FALSE(Covers("vault", {"kv_delete_metadata", meta}, {"kv_delete", other}));
}

TEST(CoverageTest, ExecOnlyIdentical) {
  ActionParams a;
  (*a.mutable_exec()->mutable_args())["k"] = "1";
  ActionParams b;
  (*b.mutable_exec()->mutable_args())["k"] = "2";
  EXPECT_TRUE(Covers("exec", {"revoke", a}, {"revoke", a}));
  EXPECT_FALSE(Covers("exec", {"revoke", b}, {"revoke", a}));
  EXPECT_FALSE(Covers("exec", {"remove", a}, {"revoke", a}));
}

}  // namespace
}  // namespace wb::actions
