#include "common/logging/logging.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace wb::log {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Log values are often untrusted (paths, messages relayed from agents and
// the control plane): a newline cannot forge a line, ESC cannot drive the
// terminal, U+202E cannot reorder what an operator reads.
TEST(LoggingTest, TextLinesEscapeWhatWouldForgeOrHideText) {
  ASSERT_TRUE(Init("logging_test", "info", "text").ok());
  const std::string line = RenderForTest(
      "task rejected", {{"object", "/srv/a\u202Etxt.exe\nINFO fake line"}, {"m", "\x1b[2J\xff"}});
  EXPECT_EQ(line, "task rejected object=/srv/a\\u202etxt.exe\\nINFO fake line m=\\x1b[2J\\xff");
}

TEST(LoggingTest, JsonLinesStayValidAndShowTheCharacters) {
  ASSERT_TRUE(Init("logging_test", "info", "json").ok());
  const std::string line =
      RenderForTest("m", {{"object", "a\u202Eb\u200Bc\xC2\x9B"}, {"bad", "x\xffy"}});
  EXPECT_THAT(line, HasSubstr("a\\u202eb\\u200bc\\u009b"));
  EXPECT_THAT(line, Not(HasSubstr("\u202E")));
  auto j = nlohmann::json::parse("{" + line + "}", nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << line;
  EXPECT_EQ(j["object"], "a\u202Eb\u200Bc\xC2\x9B");
  EXPECT_EQ(j["bad"], "x\uFFFDy");
  ASSERT_TRUE(Init("logging_test", "info", "text").ok());
}

}  // namespace
}  // namespace wb::log
