#include "connectors/util/safe_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto/crypto.h"

namespace wb::connectors::util {
namespace {

absl::Status ErrnoStatus(int err, absl::string_view what, absl::string_view path) {
  return absl::ErrnoToStatus(err, absl::StrCat(what, " ", path));
}

bool ValidComponent(const std::string& c) {
  return !c.empty() && c != "." && c != ".." && c.find('/') == std::string::npos &&
         c.find('\0') == std::string::npos;
}

absl::StatusOr<size_t> WriteAll(int fd, absl::string_view content) {
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "write");
    }
    off += static_cast<size_t>(n);
  }
  return off;
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

std::string FileLocation::Display() const {
  std::string dir = trusted_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (components.empty()) return dir;
  return absl::StrCat(dir == "/" ? "" : dir, "/", absl::StrJoin(components, "/"));
}

absl::StatusOr<ParentDir> OpenParentNoFollow(const FileLocation& loc) {
  if (loc.components.empty()) {
    return absl::InvalidArgumentError("file location has no file name");
  }
  for (const auto& c : loc.components) {
    if (!ValidComponent(c)) {
      return absl::InvalidArgumentError(absl::StrCat("invalid path component in ", loc.Display()));
    }
  }
  ParentDir out;
  out.file_name = loc.components.back();
  UniqueFd dir(::open(loc.trusted_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    if (errno == ENOENT) {
      out.missing = true;
      return out;
    }
    return ErrnoStatus(errno, "open directory", loc.trusted_dir);
  }
  std::string walked = loc.trusted_dir;
  for (size_t i = 0; i + 1 < loc.components.size(); ++i) {
    const std::string& c = loc.components[i];
    walked = absl::StrCat(walked == "/" ? "" : walked, "/", c);
    UniqueFd next(::openat(dir.get(), c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) {
      const int err = errno;
      if (err == ENOENT) {
        out.missing = true;
        return out;
      }
      if (err == ELOOP || err == ENOTDIR) {
        struct stat st;
        const bool is_link =
            ::fstatat(dir.get(), c.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
        return absl::FailedPreconditionError(
            absl::StrCat(walked, is_link ? " is a symbolic link; refusing to follow it"
                                         : " is not a directory"));
      }
      return ErrnoStatus(err, "open directory", walked);
    }
    dir = std::move(next);
  }
  out.dir = std::move(dir);
  return out;
}

absl::StatusOr<FileSnapshot> ReadRegularFileAt(int dir_fd, const std::string& name,
                                               const std::string& display, size_t max_bytes) {
  FileSnapshot snap;
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return snap;
    return ErrnoStatus(errno, "stat", display);
  }
  if (S_ISLNK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(display, " is a symbolic link; refusing to follow it"));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(display, " is not a regular file"));
  }
  // O_NONBLOCK: if the name was swapped for a FIFO since the stat, the open
  // must not hang; the fstat below then refuses it.
  UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return snap;
    if (errno == ELOOP) {
      return absl::FailedPreconditionError(
          absl::StrCat(display, " is a symbolic link; refusing to follow it"));
    }
    return ErrnoStatus(errno, "open", display);
  }
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "fstat", display);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(display, " is not a regular file"));
  }
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", display);
    }
    if (n == 0) break;
    snap.content.append(buf, static_cast<size_t>(n));
    if (snap.content.size() > max_bytes) {
      return absl::FailedPreconditionError(
          absl::StrCat(display, " is larger than ", max_bytes, " bytes"));
    }
  }
  snap.exists = true;
  snap.mode = st.st_mode & 07777;
  snap.uid = st.st_uid;
  snap.gid = st.st_gid;
  return snap;
}

absl::Status ReplaceFileAt(int dir_fd, const std::string& name, absl::string_view content,
                           mode_t mode, uid_t uid, gid_t gid, const std::string& display) {
  const std::string tmp =
      absl::StrCat(".", name, ".wbtmp.", crypto::HexEncode(crypto::RandomBytes(8)));
  UniqueFd fd(
      ::openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus(errno, "create temp file next to", display);
  auto fail = [&](absl::Status s) {
    fd = UniqueFd();
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    return s;
  };
  if (auto w = WriteAll(fd.get(), content); !w.ok()) {
    return fail(absl::Status(w.status().code(), absl::StrCat(w.status().message(), " ", display)));
  }
  // fchown before fchmod: chown clears set-id bits.
  if (::fchown(fd.get(), uid, gid) != 0) return fail(ErrnoStatus(errno, "fchown", display));
  if (::fchmod(fd.get(), mode) != 0) return fail(ErrnoStatus(errno, "fchmod", display));
  if (::fsync(fd.get()) != 0) return fail(ErrnoStatus(errno, "fsync", display));
  if (::close(fd.release()) != 0) return fail(ErrnoStatus(errno, "close", display));
  if (::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
    return fail(ErrnoStatus(errno, "rename over", display));
  }
  if (::fsync(dir_fd) != 0) return ErrnoStatus(errno, "fsync directory of", display);
  return absl::OkStatus();
}

}  // namespace wb::connectors::util
