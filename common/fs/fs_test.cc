#include "common/fs/fs.h"

#include <sys/stat.h>

#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"

namespace wb::fs {
namespace {

TEST(Fs, AtomicWriteReplacesContentAndSetsMode) {
  testing::TempDir dir;
  const std::string p = dir.Sub("f");
  ASSERT_TRUE(WriteFileAtomic(p, "one", {.mode = 0640}).ok());
  ASSERT_TRUE(WriteFileAtomic(p, "two", {.mode = 0640}).ok());
  EXPECT_EQ(*ReadFile(p), "two");
  struct stat st;
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(Fs, ReadRefusesTooLargeAndMissing) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.Sub("big"), std::string(100, 'x')).ok());
  EXPECT_FALSE(ReadFile(dir.Sub("big"), 10).ok());
  EXPECT_EQ(ReadFile(dir.Sub("none")).status().code(), absl::StatusCode::kNotFound);
}

TEST(Fs, MakeDirsDoesNotChmodExisting) {
  testing::TempDir dir;
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  ASSERT_TRUE(MakeDirs(dir.path(), 0700).ok());
  struct stat st;
  ASSERT_EQ(stat(dir.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_TRUE(MakeDirs(dir.Sub("a/b"), 0700).ok());
  ASSERT_EQ(stat(dir.Sub("a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

}  // namespace
}  // namespace wb::fs
