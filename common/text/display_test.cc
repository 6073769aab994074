#include "common/text/display.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace wb::text {
namespace {

TEST(DisplayTest, OrdinaryTextIsUnchanged) {
  for (const char* s : {"", "plain", "é, 日本語, emoji ⚠️ and 😀",
                        "a\\u202e (literal backslash)", "cn=a\\,b,dc=example"}) {
    EXPECT_FALSE(FindUnsafe(s).has_value()) << s;
    EXPECT_EQ(EscapeForDisplay(s), s);
    EXPECT_EQ(EscapeForDisplay(s, EscapeStyle::kJson), s);
  }
}

TEST(DisplayTest, EscapesEachKindVisibly) {
  EXPECT_EQ(EscapeForDisplay("invoice\u202Etxt.exe"), "invoice\\u202etxt.exe");
  EXPECT_EQ(EscapeForDisplay("ro\u200Bot"), "ro\\u200bot");
  EXPECT_EQ(EscapeForDisplay("a\xC2\x9B"
                             "31m"),
            "a\\u009b31m");  // C1 CSI
  EXPECT_EQ(EscapeForDisplay("a\x1B[31mb"), "a\\x1b[31mb");
  EXPECT_EQ(EscapeForDisplay("l1\nl2\tx\r"), "l1\\nl2\\tx\\r");
  EXPECT_EQ(EscapeForDisplay("del\x7F"), "del\\x7f");
  EXPECT_EQ(EscapeForDisplay("bad\xFFutf8"), "bad\\xffutf8");
  EXPECT_EQ(EscapeForDisplay("tag\xF3\xA0\x80\x81"), "tag\\U000e0001");  // U+E0001
  EXPECT_EQ(EscapeForDisplay("iso\u2066x\u2069"), "iso\\u2066x\\u2069");
  EXPECT_EQ(EscapeForDisplay("bom\uFEFF"), "bom\\ufeff");
  EXPECT_EQ(EscapeForDisplay("shy\u00AD"), "shy\\u00ad");
}

TEST(DisplayTest, KeepNewlinesKeepsOnlyNewlines) {
  EXPECT_EQ(EscapeForDisplay("a\nb\u202E\t", EscapeStyle::kTextKeepNewlines), "a\nb\\u202e\\t");
}

TEST(DisplayTest, EscapingTwiceChangesNothing) {
  for (const char* s : {"x\u202Ey", "\x1B[2J", "\xFF\xFE", "\xF3\xA0\x80\x81", "a\nb"}) {
    for (auto style : {EscapeStyle::kText, EscapeStyle::kTextKeepNewlines, EscapeStyle::kJson}) {
      const std::string once = EscapeForDisplay(s, style);
      EXPECT_TRUE(IsValidUtf8(once)) << once;
      EXPECT_EQ(EscapeForDisplay(once, style), once) << s;
    }
  }
}

TEST(DisplayTest, JsonStyleKeepsTheDocumentsValues) {
  nlohmann::json doc = {
      {"reason", "pay\u202Eexe.txt"}, {"tag", "a\xF3\xA0\x80\x81z"}, {"zw", "r\u200Boot"}};
  const std::string raw = doc.dump(2);
  const std::string escaped = EscapeForDisplay(raw, EscapeStyle::kJson);
  // Only the layout's newlines are left.
  EXPECT_EQ(EscapeForDisplay(escaped, EscapeStyle::kTextKeepNewlines), escaped);
  EXPECT_NE(escaped.find("pay\\u202eexe.txt"), std::string::npos) << escaped;
  EXPECT_NE(escaped.find("a\\udb40\\udc01z"), std::string::npos) << escaped;
  EXPECT_EQ(nlohmann::json::parse(escaped), doc);
}

TEST(DisplayTest, FindUnsafeSaysWhatAndWhere) {
  auto u = FindUnsafe("ok \u202E!");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->offset, 3u);
  EXPECT_EQ(u->cp, 0x202Eu);
  EXPECT_EQ(Describe(*u), "U+202E (right-to-left override, a bidirectional control)");
  u = FindUnsafe("ab\xC3");
  ASSERT_TRUE(u.has_value());
  EXPECT_FALSE(u->valid_utf8);
  EXPECT_EQ(Describe(*u), "byte 0xc3 (not UTF-8)");
  EXPECT_EQ(Describe(*FindUnsafe("\xC2\x85")), "U+0085 (a control character)");
  EXPECT_EQ(Describe(*FindUnsafe("\xF3\xA0\x80\x81")),
            "U+E0001 (an invisible formatting character)");
  // Overlong forms and surrogates are not UTF-8.
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));
  EXPECT_TRUE(IsValidUtf8("日本"));
}

TEST(DisplayTest, RangesAreSortedAndMatchThePredicate) {
  const auto& r = UnsafeRanges();
  ASSERT_FALSE(r.empty());
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_LE(r[i].first, r[i].second);
    if (i > 0) {
      EXPECT_LT(r[i - 1].second + 1, r[i].first) << "ranges " << i - 1 << ", " << i;
    }
    EXPECT_TRUE(IsUnsafeCodePoint(r[i].first));
    EXPECT_TRUE(IsUnsafeCodePoint(r[i].second));
    if (r[i].first > 0) {
      EXPECT_FALSE(IsUnsafeCodePoint(r[i].first - 1)) << r[i].first;
    }
    EXPECT_FALSE(IsUnsafeCodePoint(r[i].second + 1)) << r[i].second;
  }
  EXPECT_FALSE(IsUnsafeCodePoint('a'));
  EXPECT_FALSE(IsUnsafeCodePoint(0xFE0F));  // emoji presentation stays
}

}  // namespace
}  // namespace wb::text
