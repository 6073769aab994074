#include "connectors/secret_file/formats.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::connectors::secret_file {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(EnvTest, RemovesEveryAssignmentOfTheKeyOnly) {
  const std::string env =
      "# database\n"
      "DB_HOST=db.internal\n"
      "DB_PASSWORD=hunter2\n"
      "export DB_PASSWORD = 'second'\n"
      "  DB_PASSWORD_OLD=keep\n"
      "DB_PASSWORDX=keep\n"
      "#DB_PASSWORD=commented out\n"
      "API_TOKEN=\"abc\"\n";
  const Removal r = RemoveEnvKey(env, "DB_PASSWORD");
  EXPECT_EQ(r.new_content,
            "# database\n"
            "DB_HOST=db.internal\n"
            "  DB_PASSWORD_OLD=keep\n"
            "DB_PASSWORDX=keep\n"
            "#DB_PASSWORD=commented out\n"
            "API_TOKEN=\"abc\"\n");
  EXPECT_THAT(r.removed, ElementsAre("DB_PASSWORD at line 3", "DB_PASSWORD at line 4"));
  EXPECT_EQ(r.entries, 6);
  for (const auto& s : r.removed) EXPECT_THAT(s, ::testing::Not(HasSubstr("hunter2")));
}

TEST(EnvTest, MultiLineQuotedValuesGoWhole) {
  const std::string env =
      "KEY=\"-----BEGIN KEY-----\n"
      "abc\\\"def\n"
      "-----END KEY-----\"\n"
      "OTHER='a\n"
      "KEY=not a key line, inside a quote\n"
      "b'\n"
      "LAST=1";
  const Removal r = RemoveEnvKey(env, "KEY");
  EXPECT_EQ(r.new_content, "OTHER='a\nKEY=not a key line, inside a quote\nb'\nLAST=1");
  EXPECT_THAT(r.removed, ElementsAre("KEY at line 1-3"));
}

TEST(EnvTest, AbsentKeyAndCrlf) {
  const std::string env = "A=1\r\nB=2\r\n";
  EXPECT_EQ(RemoveEnvKey(env, "C").new_content, env);
  EXPECT_THAT(RemoveEnvKey(env, "C").removed, IsEmpty());
  EXPECT_EQ(RemoveEnvKey(env, "A").new_content, "B=2\r\n");
}

TEST(IniTest, RemovesAKeyFromOneProfile) {
  const std::string ini =
      "[default]\n"
      "aws_access_key_id = AKIADEFAULT\n"
      "aws_secret_access_key = secretdefault\n"
      "\n"
      "[deploy]\n"
      "aws_access_key_id=AKIADEPLOY\n"
      "aws_secret_access_key=secretdeploy\n"
      "s3 =\n"
      "    max_concurrent_requests = 10\n"
      "; comment\n";
  const Removal r = RemoveIniKey(ini, "deploy", "aws_secret_access_key");
  EXPECT_EQ(r.new_content,
            "[default]\n"
            "aws_access_key_id = AKIADEFAULT\n"
            "aws_secret_access_key = secretdefault\n"
            "\n"
            "[deploy]\n"
            "aws_access_key_id=AKIADEPLOY\n"
            "s3 =\n"
            "    max_concurrent_requests = 10\n"
            "; comment\n");
  EXPECT_THAT(r.removed, ElementsAre("aws_secret_access_key in [deploy] at line 7"));
  const Removal nested = RemoveIniKey(ini, "deploy", "s3");
  EXPECT_THAT(nested.removed, ElementsAre("s3 in [deploy] at line 8-9"));
  EXPECT_THAT(nested.new_content, ::testing::Not(HasSubstr("max_concurrent")));
  // The indented line is a continuation, not a key of its own.
  EXPECT_THAT(RemoveIniKey(ini, "deploy", "max_concurrent_requests").removed, IsEmpty());
}

TEST(IniTest, GlobalKeysAndColons) {
  const std::string ini = "token: abc\n[s]\ntoken: def\n";
  EXPECT_EQ(RemoveIniKey(ini, "", "token").new_content, "[s]\ntoken: def\n");
  EXPECT_EQ(RemoveIniKey(ini, "s", "token").new_content, "token: abc\n[s]\n");
}

// The INI rules are configparser's (docs/connectors/secret_file.md).
TEST(IniTest, AColonEndsTheKey) {
  const std::string ini = "[prod]\ndb:password = hunter2\nuser = app\n";
  // configparser reads the key "db" (value "password = hunter2").
  EXPECT_THAT(RemoveIniKey(ini, "prod", "db:password").removed, IsEmpty());
  const Removal r = RemoveIniKey(ini, "prod", "db");
  EXPECT_THAT(r.removed, ElementsAre("db in [prod] at line 2"));
  EXPECT_EQ(r.new_content, "[prod]\nuser = app\n");
  EXPECT_EQ(RemoveIniKey("[p]\na = b: c\n", "p", "a").new_content, "[p]\n");
  EXPECT_EQ(RemoveIniKey("[p]\na: b = c\n", "p", "a").new_content, "[p]\n");
}

TEST(IniTest, IndentationDecidesWhatContinuesAValue) {
  // An indented key right after a header is a key.
  EXPECT_EQ(RemoveIniKey("[prod]\n  password = x\n", "prod", "password").new_content, "[prod]\n");
  // Blank and comment lines do not end a value; a deeper line after them
  // still belongs to it.
  EXPECT_EQ(RemoveIniKey("[s]\nk = a\n\n# note\n  b\nother = 1\n\n", "s", "k").new_content,
            "[s]\nother = 1\n\n");
  // Deeper than an indented key: its continuation, not a key.
  const std::string nested = "[s]\n  a = 1\n    b = 2\n  c = 3\n";
  EXPECT_THAT(RemoveIniKey(nested, "s", "b").removed, IsEmpty());
  EXPECT_EQ(RemoveIniKey(nested, "s", "a").new_content, "[s]\n  c = 3\n");
  // A header-looking continuation line is not a header.
  EXPECT_EQ(RemoveIniSection("[a]\nk = x\n  [b]\n[c]\nz=1\n", "a").new_content, "[c]\nz=1\n");
}

TEST(IniTest, KeysMatchWithoutCaseAndTrimmedOfUnicodeSpace) {
  const Removal r =
      RemoveIniKey("[default]\nAWS_Secret_Access_Key = x\n", "default", "aws_secret_access_key");
  EXPECT_THAT(r.removed, ElementsAre("AWS_Secret_Access_Key in [default] at line 2"));
  EXPECT_EQ(RemoveIniKey("[p]\npassword\u00a0= x\n", "p", "password").new_content, "[p]\n");
  EXPECT_EQ(RemoveIniKey("[p]\n\u3000password = x\n", "p", "password").new_content, "[p]\n");
}

TEST(IniTest, LinesEndAtAnyNewline) {
  EXPECT_EQ(RemoveIniKey("[prod]\rpassword = x\ruser = y\r", "prod", "password").new_content,
            "[prod]\ruser = y\r");
  EXPECT_EQ(RemoveIniKey("[prod]\r\npassword = x\r\n", "prod", "password").new_content,
            "[prod]\r\n");
}

TEST(IniTest, HeadersEndAtTheLastBracket) {
  // configparser: the section "a]b", not "a".
  EXPECT_THAT(RemoveIniKey("[a]b]\nk = 1\n", "a", "k").removed, IsEmpty());
  EXPECT_THAT(RemoveIniKey("[a]b]\nk = 1\n", "a]b", "k").removed, ::testing::SizeIs(1));
}

TEST(IniTest, DefaultKeysStillReachEverySection) {
  const std::string ini = "[DEFAULT]\npassword = x\n[prod]\npassword = y\nuser = u\n";
  const Removal r = RemoveIniKey(ini, "prod", "password");
  EXPECT_THAT(r.removed, ElementsAre("password in [prod] at line 4"));
  EXPECT_THAT(r.inherited, ElementsAre("password in [DEFAULT] at line 2"));
  EXPECT_THAT(RemoveIniKey(ini, "DEFAULT", "password").inherited, IsEmpty());
  EXPECT_THAT(RemoveIniKey(ini, "prod", "user").inherited, IsEmpty());
}

TEST(IniTest, RemovesWholeSections) {
  const std::string ini = "[default]\nk=1\n[old-ci]\nk=2\n# old\n\n[prod]\nk=3\n[ old-ci ]\nk=4";
  const Removal r = RemoveIniSection(ini, "old-ci");
  EXPECT_EQ(r.new_content, "[default]\nk=1\n[prod]\nk=3\n");
  EXPECT_EQ(r.removed.size(), 2u);
  EXPECT_EQ(r.entries, 4);
  EXPECT_THAT(RemoveIniSection(ini, "nope").removed, IsEmpty());
}

TEST(JsonTest, RemovesANestedMemberKeepingOrderAndIndent) {
  const std::string json =
      "{\n"
      "    \"name\": \"app\",\n"
      "    \"db\": {\n"
      "        \"user\": \"app\",\n"
      "        \"password\": \"hunter2\",\n"
      "        \"port\": 5432\n"
      "    },\n"
      "    \"z\": [1, 2]\n"
      "}\n";
  auto r = RemoveJsonPath(json, {"db", "password"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->new_content,
            "{\n"
            "    \"name\": \"app\",\n"
            "    \"db\": {\n"
            "        \"user\": \"app\",\n"
            "        \"port\": 5432\n"
            "    },\n"
            "    \"z\": [\n"
            "        1,\n"
            "        2\n"
            "    ]\n"
            "}\n");
  EXPECT_THAT(r->removed, ElementsAre("member /db/password"));
}

TEST(JsonTest, AbsentPathsChangeNothing) {
  const std::string json = "{\"a\":{\"b\":1},\"c\":[{\"d\":2}]}";
  for (const auto& path :
       std::vector<std::vector<std::string>>{{"x"}, {"a", "x"}, {"a", "b", "c"}, {"c", "0", "d"}}) {
    auto r = RemoveJsonPath(json, path);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->new_content, json);
    EXPECT_THAT(r->removed, IsEmpty());
  }
  auto compact = RemoveJsonPath(json, {"a", "b"});
  ASSERT_TRUE(compact.ok());
  EXPECT_EQ(compact->new_content, "{\"a\":{},\"c\":[{\"d\":2}]}");
}

TEST(JsonTest, KeysAreMatchedLiterally) {
  const std::string json = "{\"$(rm -rf /)\": 1, \"../x\": 2, \"k\\u00e9y\": 3}";
  auto r = RemoveJsonPath(json, {"$(rm -rf /)"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->new_content, "{\"../x\":2,\"k\xc3\xa9y\":3}");
  auto u = RemoveJsonPath(json, {"k\xc3\xa9y"});
  ASSERT_TRUE(u.ok());
  EXPECT_THAT(u->removed, ElementsAre(HasSubstr("member /k??y")));
}

TEST(JsonTest, RefusesGarbageAndDeepNesting) {
  EXPECT_EQ(RemoveJsonPath("{\"a\": ", {"a"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(RemoveJsonPath("\xff\xfe", {"a"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(RemoveJsonPath(std::string(100000, '['), {"a"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace wb::connectors::secret_file
