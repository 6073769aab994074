#include "common/actions/actions.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "common/actions/action_class.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::actions {
namespace {

using ::testing::HasSubstr;

constexpr char kFp[] = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";

writeback::v1::ActionParams SshParams(const std::string& fp) {
  writeback::v1::ActionParams p;
  p.mutable_ssh_authorized_keys()->set_fingerprint(fp);
  return p;
}

TEST(Actions, AcceptsValidRemoveKey) {
  EXPECT_TRUE(ValidateAction("ssh_authorized_keys", "remove_key", SshParams(kFp)).ok());
}

TEST(Actions, MalformedFingerprintNamesTheField) {
  auto s = ValidateAction("ssh_authorized_keys", "remove_key", SshParams("MD5:aa"), "spec.");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("spec.params.ssh_authorized_keys.fingerprint"));
  EXPECT_FALSE(
      ValidateAction("ssh_authorized_keys", "remove_key", SshParams(std::string(kFp) + "A")).ok());
  std::string bad = kFp;
  bad[10] = '$';
  EXPECT_FALSE(ValidateAction("ssh_authorized_keys", "remove_key", SshParams(bad)).ok());
}

TEST(Actions, UnknownOperationAndTypeAndMismatchedParams) {
  EXPECT_THAT(ValidateAction("ssh_authorized_keys", "rm -rf", SshParams(kFp)).message(),
              HasSubstr("operation"));
  EXPECT_THAT(ValidateAction("nope", "remove_key", SshParams(kFp)).message(),
              HasSubstr("unknown connector type"));
  EXPECT_THAT(ValidateAction("ssh_authorized_keys", "remove_key", {}).message(),
              HasSubstr("params: missing"));
}

TEST(Actions, FieldsNotUsedByAnOperationAreRefused) {
  auto p = SshParams(kFp);
  p.mutable_ssh_authorized_keys()->set_comment("x");
  EXPECT_THAT(ValidateAction("ssh_authorized_keys", "remove_key", p).message(),
              HasSubstr("comment: not used"));
}

TEST(Actions, CommentAndExclusiveSet) {
  writeback::v1::ActionParams p;
  p.mutable_ssh_authorized_keys()->set_comment("deploy@ci");
  EXPECT_TRUE(ValidateAction("ssh_authorized_keys", "remove_by_comment", p).ok());
  p.mutable_ssh_authorized_keys()->set_comment("a\nb");
  EXPECT_FALSE(ValidateAction("ssh_authorized_keys", "remove_by_comment", p).ok());
  writeback::v1::ActionParams x;
  x.mutable_ssh_authorized_keys()->add_keep_fingerprints(kFp);
  x.mutable_ssh_authorized_keys()->add_keep_fingerprints("bad");
  EXPECT_THAT(ValidateAction("ssh_authorized_keys", "exclusive_set", x).message(),
              HasSubstr("keep_fingerprints[1]"));
}

TEST(Actions, UserNames) {
  for (const char* ok : {"root", "deploy", "svc-backup", "_apt", "host$", "a1_b-c"}) {
    EXPECT_TRUE(ValidatePosixUserName("t", ok).ok()) << ok;
  }
  for (const char* bad : {"", "Root", "1abc", "a b", "../etc", "a/b", "a;rm", "$", "a$b",
                          "abcdefghijklmnopqrstuvwxyz0123456789"}) {
    EXPECT_FALSE(ValidatePosixUserName("t", bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidatePosixUserName("t", std::string("a\0b", 3)).ok());
  EXPECT_THAT(ValidateTargetObject("ssh_authorized_keys", "", "spec.targets[0].object").message(),
              HasSubstr("spec.targets[0].object: must not be empty"));
}

writeback::v1::ActionParams Ini(const std::string& section, const std::string& key) {
  writeback::v1::ActionParams p;
  p.mutable_secret_file()->set_section(section);
  p.mutable_secret_file()->set_key(key);
  return p;
}

// The grammar refuses the INI keys that no line can carry (configparser's
// rules, as the connector parses them).
TEST(Actions, IniKeysThatCannotBeWrittenAreRefused) {
  EXPECT_TRUE(ValidateAction("secret_file", "remove_ini_key", Ini("prod", "db_password")).ok());
  EXPECT_TRUE(ValidateAction("secret_file", "remove_ini_key", Ini("prod", "db password")).ok());
  auto s = ValidateAction("secret_file", "remove_ini_key", Ini("prod", "db:password"), "spec.");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("spec.params.secret_file.key: 'db:password' cannot be an "
                                     "INI key"));
  EXPECT_THAT(s.message(), HasSubstr("holds the key 'db'"));
  for (const char* bad : {"a=b", "; x", "#x", "[x", " x", "x ", "x\u00a0", "\u3000x", "a\tb"}) {
    EXPECT_FALSE(ValidateAction("secret_file", "remove_ini_key", Ini("prod", bad)).ok()) << bad;
  }
  EXPECT_FALSE(ValidateAction("secret_file", "remove_ini_section", Ini("\u00a0prod", "")).ok());
}

// Reason, reference, labels, request ids (ValidateText): no character that
// changes or hides what a reader sees.
TEST(Actions, TextRefusesBidiInvisibleAndControlCharacters) {
  EXPECT_TRUE(
      ValidateText("spec.reason", "rotate the leaked key, INC-7 ⚠️ é", 1024, false).ok());
  const std::pair<const char*, const char*> cases[] = {
      {"pay \u202Eexe.txt", "U+202E (right-to-left override"},
      {"ro\u200Bot", "U+200B (zero width space)"},
      {"csi \xC2\x9B"
       "31m",
       "U+009B (a control character)"},
      {"bell \x07", "U+0007 (a control character)"},
      {"iso \u2066x", "U+2066 (left-to-right isolate"},
      {"tag \xF3\xA0\x80\x81", "U+E0001"},
      {"bad \xFF", "not valid UTF-8"},
  };
  for (const auto& [text, why] : cases) {
    auto s = ValidateText("spec.reason", text, 1024, false);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(s.message(), HasSubstr("spec.reason: ")) << text;
    EXPECT_THAT(s.message(), HasSubstr(why)) << text;
  }
}

}  // namespace
}  // namespace wb::actions

namespace wb::actions {
namespace {

TEST(ActionClass, EveryOperationOfEveryTypeHasAKnownClass) {
  size_t n = 0;
  for (const std::string& type : ConnectorTypes()) {
    for (const std::string& op : OperationsOf(type)) {
      const absl::string_view cls = ActionClassOf(type, op);
      EXPECT_NE(std::find(ActionClasses().begin(), ActionClasses().end(), cls),
                ActionClasses().end())
          << type << "/" << op << " has class '" << cls << "'";
      ++n;
    }
  }
  EXPECT_GT(n, 40u);
  EXPECT_EQ(ActionClassOf("postgres", "drop_role"), "delete");
  EXPECT_EQ(ActionClassOf("vault", "policy_replace"), "grant");
  EXPECT_EQ(ActionClassOf("postgres", "no_such_op"), "");
  EXPECT_EQ(ActionClassOf("", "lock"), "");
}

TEST(OperationTraits, EveryOperationSaysWhetherItIsReRunAfterAnInterruptedApply) {
  for (const std::string& type : ConnectorTypes()) {
    for (const std::string& op : OperationsOf(type)) {
      const OperationTraits* t = OperationTraitsOf(type, op);
      ASSERT_NE(t, nullptr) << type << "/" << op;
      EXPECT_EQ(t->action_class, ActionClassOf(type, op));
      // Whatever is not idempotent by itself says why, for the result.
      EXPECT_EQ(t->idempotency == Idempotency::kIdempotent, t->not_idempotent_because.empty())
          << type << "/" << op;
      // Only an exec program's idempotency is left to the instance.
      EXPECT_EQ(t->idempotency == Idempotency::kDeclaredByInstance, type == "exec")
          << type << "/" << op;
    }
  }
  EXPECT_EQ(OperationTraitsOf("ssh_authorized_keys", "remove_key")->idempotency,
            Idempotency::kIdempotent);
  EXPECT_EQ(OperationTraitsOf("ldap", "replace_password")->idempotency, Idempotency::kIdempotent);
  // Rotations whose re-run would end sessions opened with the new secret,
  // session kills and deletions are not re-run.
  for (const auto& [type, op] :
       std::vector<std::pair<std::string, std::string>>{{"postgres", "set_password"},
                                                        {"redis", "rotate_password"},
                                                        {"postgres", "terminate_sessions"},
                                                        {"redis", "kill_connections"},
                                                        {"posix_account", "delete"},
                                                        {"vault", "kv_destroy"}}) {
    EXPECT_EQ(OperationTraitsOf(type, op)->idempotency, Idempotency::kNotIdempotent)
        << type << "/" << op;
  }
  // Every deletion is either not re-run or left to the instance (exec).
  for (const std::string& type : ConnectorTypes()) {
    for (const std::string& op : OperationsOf(type)) {
      if (ActionClassOf(type, op) != "delete") continue;
      EXPECT_NE(OperationTraitsOf(type, op)->idempotency, Idempotency::kIdempotent)
          << type << "/" << op;
    }
  }
  EXPECT_EQ(OperationTraitsOf("postgres", "no_such_op"), nullptr);
  EXPECT_EQ(OperationTraitsOf("", "lock"), nullptr);
}

}  // namespace
}  // namespace wb::actions
