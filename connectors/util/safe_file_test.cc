#include "connectors/util/safe_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/fs/fs.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::connectors::util {
namespace {

using ::testing::HasSubstr;

class SafeFileTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs::MakeDirs(tmp_.Sub("root/a/b")).ok()); }
  FileLocation Loc(std::vector<std::string> components) const {
    return FileLocation{tmp_.Sub("root"), std::move(components)};
  }
  wb::testing::TempDir tmp_;
};

TEST_F(SafeFileTest, OpensTheParentAndReadsTheFile) {
  ASSERT_TRUE(fs::WriteFileAtomic(tmp_.Sub("root/a/b/f"), "hello", {.mode = 0640}).ok());
  auto parent = OpenParentNoFollow(Loc({"a", "b", "f"}));
  ASSERT_TRUE(parent.ok()) << parent.status();
  EXPECT_FALSE(parent->missing);
  EXPECT_EQ(parent->file_name, "f");
  auto snap = ReadRegularFileAt(parent->dir.get(), "f", "f");
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_TRUE(snap->exists);
  EXPECT_EQ(snap->content, "hello");
  EXPECT_EQ(snap->mode, 0640u);
  EXPECT_EQ(Loc({"a", "b", "f"}).Display(), tmp_.Sub("root/a/b/f"));
}

TEST_F(SafeFileTest, MissingPiecesAreMissingNotErrors) {
  auto p = OpenParentNoFollow(Loc({"nope", "b", "f"}));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->missing);
  p = OpenParentNoFollow(FileLocation{tmp_.Sub("absent"), {"f"}});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->missing);
  p = OpenParentNoFollow(Loc({"a", "b", "f"}));
  ASSERT_TRUE(p.ok());
  auto snap = ReadRegularFileAt(p->dir.get(), "f", "f");
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_FALSE(snap->exists);
}

TEST_F(SafeFileTest, SymlinkedOrNonDirectoryComponentsAreRefused) {
  ASSERT_EQ(::symlink(tmp_.Sub("root/a").c_str(), tmp_.Sub("root/link").c_str()), 0);
  auto p = OpenParentNoFollow(Loc({"link", "b", "f"}));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition) << p.status();
  EXPECT_THAT(p.status().message(), HasSubstr("symbolic link"));
  ASSERT_TRUE(fs::WriteFileAtomic(tmp_.Sub("root/a/file"), "x").ok());
  p = OpenParentNoFollow(Loc({"a", "file", "f"}));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition) << p.status();
  EXPECT_THAT(p.status().message(), HasSubstr("not a directory"));
}

TEST_F(SafeFileTest, InvalidComponentsAreRefused) {
  for (const std::vector<std::string>& c :
       std::vector<std::vector<std::string>>{{}, {"..", "f"}, {".", "f"}, {"a/b", "f"}, {""}}) {
    auto p = OpenParentNoFollow(Loc(c));
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << p.status();
  }
}

TEST_F(SafeFileTest, ReadRefusesSymlinksAndSpecialFilesAndHugeFiles) {
  auto p = OpenParentNoFollow(Loc({"a", "b", "f"}));
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(fs::WriteFileAtomic(tmp_.Sub("target"), "secret").ok());
  ASSERT_EQ(::symlink(tmp_.Sub("target").c_str(), tmp_.Sub("root/a/b/link").c_str()), 0);
  auto r = ReadRegularFileAt(p->dir.get(), "link", "link");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  ASSERT_EQ(::mkfifo(tmp_.Sub("root/a/b/fifo").c_str(), 0600), 0);
  r = ReadRegularFileAt(p->dir.get(), "fifo", "fifo");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  ASSERT_TRUE(fs::WriteFileAtomic(tmp_.Sub("root/a/b/big"), std::string(2048, 'x')).ok());
  r = ReadRegularFileAt(p->dir.get(), "big", "big", 1024);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
}

TEST_F(SafeFileTest, ReplaceSetsModeAndReplacesASymlinkInsteadOfFollowingIt) {
  auto p = OpenParentNoFollow(Loc({"a", "b", "f"}));
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(fs::WriteFileAtomic(tmp_.Sub("victim"), "untouched").ok());
  ASSERT_EQ(::symlink(tmp_.Sub("victim").c_str(), tmp_.Sub("root/a/b/f").c_str()), 0);
  const absl::Status s =
      ReplaceFileAt(p->dir.get(), "f", "new", 0604, ::geteuid(), ::getegid(), "f");
  ASSERT_TRUE(s.ok()) << s;
  struct stat st;
  ASSERT_EQ(::lstat(tmp_.Sub("root/a/b/f").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0604u);
  EXPECT_EQ(*fs::ReadFile(tmp_.Sub("root/a/b/f")), "new");
  EXPECT_EQ(*fs::ReadFile(tmp_.Sub("victim")), "untouched");
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp_.Sub("root/a/b"))) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u) << "temp file left behind";
}

TEST_F(SafeFileTest, FailedReplaceLeavesTheOriginalAndNoTempFile) {
  auto p = OpenParentNoFollow(Loc({"a", "b", "f"}));
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(fs::WriteFileAtomic(tmp_.Sub("root/a/b/f"), "original").ok());
  // A directory in the file's place: renameat of a file over it fails.
  ASSERT_TRUE(fs::MakeDirs(tmp_.Sub("root/a/b/d/inner")).ok());
  const absl::Status s =
      ReplaceFileAt(p->dir.get(), "d", "new", 0600, ::geteuid(), ::getegid(), "d");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(std::filesystem::is_directory(tmp_.Sub("root/a/b/d/inner")));
  EXPECT_EQ(*fs::ReadFile(tmp_.Sub("root/a/b/f")), "original");
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp_.Sub("root/a/b"))) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 2u) << "temp file left behind";
}

TEST(UniqueFdTest, ClosesOnDestructionAndMove) {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  {
    UniqueFd a(fd);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), fd);
  }
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "descriptor still open";
}

}  // namespace
}  // namespace wb::connectors::util
