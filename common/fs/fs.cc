#include "common/fs/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"

namespace wb::fs {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::ErrnoToStatus(errno, absl::StrCat(what, " ", path));
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status s = Errno("read", path);
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      ::close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": larger than ", max_bytes, " bytes"));
    }
  }
  ::close(fd);
  return out;
}

absl::Status WriteFileAtomic(const std::string& path, absl::string_view content,
                             const WriteOptions& opts) {
  std::filesystem::path p(path);
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  std::random_device rd;
  const std::string tmp = absl::StrCat(dir, "/.", p.filename().string(), ".wbtmp.", rd());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, opts.mode);
  if (fd < 0) return Errno("create", tmp);
  auto fail = [&](absl::string_view what) {
    absl::Status s = Errno(what, tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  };
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write");
    }
    off += static_cast<size_t>(n);
  }
  if (::fchmod(fd, opts.mode) != 0) return fail("fchmod");
  if (opts.uid != static_cast<uid_t>(-1) || opts.gid != static_cast<gid_t>(-1)) {
    if (::fchown(fd, opts.uid, opts.gid) != 0) return fail("fchown");
  }
  if (::fsync(fd) != 0) return fail("fsync");
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Errno("close", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status s = Errno("rename", path);
    ::unlink(tmp.c_str());
    return s;
  }
  if (opts.fsync_dir) {
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return Errno("open dir", dir);
    int rc = ::fsync(dfd);
    ::close(dfd);
    if (rc != 0) return Errno("fsync dir", dir);
  }
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  const bool created = std::filesystem::create_directories(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", path, ": ", ec.message()));
  if (created && ::chmod(path.c_str(), mode) != 0) return Errno("chmod", path);
  return absl::OkStatus();
}

}  // namespace wb::fs
