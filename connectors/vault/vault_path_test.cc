#include "connectors/vault/vault_path.h"

#include "connectors/vault/vault_client.h"
#include "gtest/gtest.h"

namespace wb::connectors::vault {
namespace {

TEST(VaultPathTest, EncodesEachComponentOnItsOwn) {
  EXPECT_EQ(EncodeComponent("app-db_1.x~"), "app-db_1.x~");
  EXPECT_EQ(EncodeComponent("a b"), "a%20b");
  EXPECT_EQ(EncodeComponent("q?x=1&y#f"), "q%3Fx%3D1%26y%23f");
  EXPECT_EQ(EncodeComponent("100%"), "100%25");
  EXPECT_EQ(EncodeComponent("a/b"), "a%2Fb");
  EXPECT_EQ(EncodeComponent("\"';$`\\"), "%22%27%3B%24%60%5C");
  EXPECT_EQ(EncodePath("team a/app?/db%2F"), "team%20a/app%3F/db%252F");
}

TEST(VaultPathTest, RefusesHostilePaths) {
  for (const char* bad : {"", "..", ".", "a/../b", "../a", "a/..", "a/./b", "/a", "a/", "a//b",
                          "a\nb", "a\rb", "a\tb", "a\x7f", "caf\xc3\xa9", "a\x01"}) {
    SCOPED_TRACE(bad);
    const absl::Status s = ValidatePath("target", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message().substr(0, 7), "target:") << s;
  }
  for (const char* good : {"secret", "team/kv", "app/db", "a b/c?d", "x..y/.z", "100%"}) {
    EXPECT_TRUE(ValidatePath("target", good).ok()) << good;
  }
  EXPECT_TRUE(ValidatePath("target", std::string(1024, 'a')).ok());
  EXPECT_FALSE(ValidatePath("target", std::string(1025, 'a')).ok());
}

TEST(VaultPathTest, AccessorsPoliciesAndNamespaces) {
  EXPECT_TRUE(ValidateAccessor("a", "8609694a-cdbc-db9b-d345-e782dbb562ed").ok());
  EXPECT_TRUE(ValidateAccessor("a", "B6oixijqmeR4bsLOJH88Ska9.nsid").ok());
  for (const char* bad : {"", ".", "..", "a/b", "a b", "a?b", "a%2F", "a\n"}) {
    EXPECT_FALSE(ValidateAccessor("a", bad).ok()) << bad;
  }
  EXPECT_TRUE(ValidatePolicyName("p", "app-ci_v2.1").ok());
  for (const char* bad : {"", "root", "Admin", "-x", "a/b", "a b", ".."}) {
    EXPECT_FALSE(ValidatePolicyName("p", bad).ok()) << bad;
  }
  EXPECT_TRUE(ValidateNamespace("n", "").ok());
  EXPECT_TRUE(ValidateNamespace("n", "team-a/sub").ok());
  EXPECT_FALSE(ValidateNamespace("n", "team-a/../root").ok());
}

TEST(VaultPathTest, Addresses) {
  EXPECT_EQ(*ValidateAddress("a", "https://vault.example:8200/"), "https://vault.example:8200");
  EXPECT_EQ(*ValidateAddress("a", "http://127.0.0.1:8200"), "http://127.0.0.1:8200");
  EXPECT_EQ(*ValidateAddress("a", "http://[::1]:8200"), "http://[::1]:8200");
  EXPECT_EQ(*ValidateAddress("a", "https://[2001:db8::1]"), "https://[2001:db8::1]");
  for (const char* bad :
       {"vault:8200", "ftp://vault", "http://10.0.0.5:8200", "http://vault.example", "https://",
        "https://user@vault", "https://vault/v1", "https://vault?x", "https://vault:0",
        "https://vault:99999", "https://vau lt", "https://[::1"}) {
    EXPECT_FALSE(ValidateAddress("a", bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace wb::connectors::vault
