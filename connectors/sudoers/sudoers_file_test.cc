#include "connectors/sudoers/sudoers_file.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::connectors::sudoers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(SudoersFileTest, ClassifiesLines) {
  const std::string text =
      "# a comment\n"
      "\n"
      "Defaults:alice !requiretty\n"
      "User_Alias OPS = alice, bob : DEVS = carol\n"
      "Cmnd_Alias RESTART = /usr/bin/systemctl restart app\n"
      "@includedir /etc/more\n"
      "#1001 ALL = /bin/true\n"
      "alice, %admins ALL = (root) NOPASSWD: /bin/ls, \\\n"
      "    /bin/cat\n"
      "this line is nonsense\n";
  const auto lines = ParseSudoers(text);
  ASSERT_THAT(lines, SizeIs(9));
  EXPECT_EQ(lines[0].kind, LineKind::kComment);
  EXPECT_EQ(lines[1].kind, LineKind::kBlank);
  EXPECT_EQ(lines[2].kind, LineKind::kDefaults);
  EXPECT_EQ(lines[3].kind, LineKind::kAlias);
  ASSERT_THAT(lines[3].aliases, SizeIs(2));
  EXPECT_EQ(lines[3].aliases[0].name, "OPS");
  EXPECT_EQ(lines[3].aliases[1].members[0].name, "carol");
  EXPECT_EQ(lines[4].kind, LineKind::kAlias);
  EXPECT_TRUE(lines[4].aliases.empty());
  EXPECT_EQ(lines[5].kind, LineKind::kInclude);
  EXPECT_EQ(lines[6].kind, LineKind::kUserSpec);
  EXPECT_EQ(lines[6].users[0].name, "#1001");
  EXPECT_EQ(lines[7].kind, LineKind::kUserSpec);
  EXPECT_EQ(lines[7].line_number, 8);
  ASSERT_THAT(lines[7].users, SizeIs(2));
  EXPECT_EQ(lines[7].users[1].name, "%admins");
  EXPECT_EQ(lines[8].kind, LineKind::kOther);
  EXPECT_EQ(lines[8].line_number, 10);
  EXPECT_EQ(LineText(text, lines[7]),
            "alice, %admins ALL = (root) NOPASSWD: /bin/ls,      /bin/cat");
}

TEST(SudoersFileTest, RemovesASingleUserRuleWithItsContinuationLines) {
  const std::string text =
      "# keep me\n"
      "svc ALL=(root) NOPASSWD: /usr/bin/systemctl restart app, \\\n"
      "   /usr/bin/systemctl status app\n"
      "bob ALL = /bin/ls\n";
  const UserEdit e = RemoveUser(text, "svc");
  EXPECT_EQ(e.direct_refs, 1);
  EXPECT_EQ(e.new_content, "# keep me\nbob ALL = /bin/ls\n");
  ASSERT_THAT(e.changes, SizeIs(1));
  EXPECT_THAT(e.changes[0], HasSubstr("line 2: removed rule: svc ALL=(root)"));
}

TEST(SudoersFileTest, RemovesTheUserFromSharedListsOnly) {
  const std::string text = "bob,svc , carol   ALL = (ALL) /bin/ls # trailing\n";
  const UserEdit e = RemoveUser(text, "svc");
  EXPECT_EQ(e.new_content, "bob, carol   ALL = (ALL) /bin/ls # trailing\n");
  EXPECT_EQ(e.direct_refs, 1);
}

TEST(SudoersFileTest, NeverRemovesADenial) {
  const std::string text = "ALL, !svc ALL = /bin/ls\nsvc, !svc ALL = /bin/df\n";
  const UserEdit e = RemoveUser(text, "svc");
  // Line 1 only denies svc: untouched (reported as indirect via ALL).
  // Line 2: the positive svc goes; only a denial is left, so the rule goes.
  EXPECT_EQ(e.new_content, "ALL, !svc ALL = /bin/ls\n");
  EXPECT_THAT(e.indirect, ElementsAre(HasSubstr("line 1: via ALL")));
}

TEST(SudoersFileTest, EmptiesUserAliasesToNobody) {
  const std::string text =
      "User_Alias OPS = svc : DEVS = carol, svc\n"
      "OPS, DEVS ALL = /bin/df\n";
  const UserEdit e = RemoveUser(text, "svc");
  EXPECT_EQ(e.new_content, "User_Alias OPS = !ALL : DEVS = carol\nOPS, DEVS ALL = /bin/df\n");
  EXPECT_EQ(e.direct_refs, 2);
  EXPECT_THAT(e.indirect, IsEmpty());  // the aliases are this file's
}

TEST(SudoersFileTest, KeepsDefaultsAndReportsIndirectGrants) {
  const std::string text =
      "Defaults:svc !requiretty\n"
      "%deploy ALL = /bin/ls\n"
      "+ops ALL = /bin/df\n"
      "EXTERNAL ALL = /bin/du\n"
      "#1001 ALL = /bin/true\n";
  const UserEdit e = RemoveUser(text, "svc");
  EXPECT_EQ(e.direct_refs, 0);
  EXPECT_EQ(e.new_content, text);
  EXPECT_THAT(e.indirect, SizeIs(4));
}

TEST(SudoersFileTest, QuotedAndEscapedNamesCompareUnescaped) {
  const std::string text = "\"svc\" ALL = /bin/ls\nsv\\c ALL = /bin/df\nsvcx ALL = /bin/du\n";
  const UserEdit e = RemoveUser(text, "svc");
  EXPECT_EQ(e.direct_refs, 2);
  EXPECT_EQ(e.new_content, "svcx ALL = /bin/du\n");
}

TEST(SudoersFileTest, CommentsThatMentionTheUserStay) {
  const std::string text = "# svc ALL = /bin/ls was removed last year\n#svc ALL=ALL\n";
  const UserEdit e = RemoveUser(text, "svc");
  EXPECT_EQ(e.direct_refs, 0);
  EXPECT_EQ(e.new_content, text);
}

TEST(SudoersFileTest, NoFinalNewlineAndCrlf) {
  const std::string text = "bob ALL = /bin/ls\r\nsvc ALL = /bin/df";
  const UserEdit e = RemoveUser(text, "svc");
  EXPECT_EQ(e.new_content, "bob ALL = /bin/ls\r\n");
}

TEST(SudoersFileTest, GarbageIsLeftAlone) {
  const std::string text = std::string("svc\0ALL = x\n\"svc ALL\n\\\n", 23);
  const UserEdit e = RemoveUser(text, "svc");
  EXPECT_EQ(e.new_content.size(), text.size());
}

}  // namespace
}  // namespace wb::connectors::sudoers
