// Unit tests of the crash-point library (common/faults/faults.h).
#include "common/faults/faults.h"

#include <sys/wait.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace wb::faults {
namespace {

TEST(CrashPlanTest, EmptySpecNeverCrashes) {
  CrashPlan p("");
  EXPECT_TRUE(p.empty());
  EXPECT_FALSE(p.Hit("cp.after_decision_write"));
}

TEST(CrashPlanTest, NameCrashesOnFirstHitOnly) {
  CrashPlan p("a.b, c.d");
  EXPECT_FALSE(p.Hit("x"));
  EXPECT_TRUE(p.Hit("c.d"));
  EXPECT_FALSE(p.Hit("c.d"));
  EXPECT_TRUE(p.Hit("a.b"));
}

TEST(CrashPlanTest, NthHit) {
  CrashPlan p("a:3");
  EXPECT_FALSE(p.Hit("a"));
  EXPECT_FALSE(p.Hit("a"));
  EXPECT_TRUE(p.Hit("a"));
  EXPECT_FALSE(p.Hit("a"));
}

TEST(CrashPlanTest, MalformedEntriesAreIgnored) {
  CrashPlan p("a:0,b:x,:2,,c:1");
  EXPECT_FALSE(p.Hit("a"));
  EXPECT_FALSE(p.Hit("b"));
  EXPECT_TRUE(p.Hit("c"));
}

TEST(CrashPointTest, KillsTheProcessWithSigkillWhenNamed) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv(kEnvVar, "unit.point:2", 1);
    WB_CRASH_POINT("unit.other");
    WB_CRASH_POINT("unit.point");  // first hit: survives
    WB_CRASH_POINT("unit.point");  // second hit: killed
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(CrashPointTest, InertWithoutTheVariable) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    unsetenv(kEnvVar);
    WB_CRASH_POINT("unit.point");
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace wb::faults
