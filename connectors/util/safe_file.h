// File access for connectors that edit files inside directories other users
// control (a user's ~/.ssh, a drop-in directory): every step below an
// operator-configured directory is done relative to an open directory
// descriptor and never follows a symbolic link, so a user who swaps a
// directory or the file for a symlink cannot redirect a read or a write of
// the (root) agent to another file.
//
// The write is the same protocol as wb::fs::WriteFileAtomic (temp file in the
// same directory, fsync, rename, directory fsync), but done with openat/
// renameat on the held directory descriptor instead of on path strings.
//
// Thread-safety: free functions, safe to call concurrently; UniqueFd is a
// move-only owner of one descriptor and not itself synchronised.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wb::connectors::util {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// A file named by a trusted directory (configured by the operator; opened
// following symlinks) and the components below it (untrusted: opened with
// O_NOFOLLOW). The last component is the file name. Components must be
// single names: no '/', not "", "." or "..".
struct FileLocation {
  std::string trusted_dir;
  std::vector<std::string> components;
  // trusted_dir + "/" + components joined, for messages and evidence.
  std::string Display() const;
};

// The directory that holds the file, opened; `missing` is set (and `dir`
// invalid) when a directory on the way does not exist.
struct ParentDir {
  UniqueFd dir;
  bool missing = false;
  std::string file_name;
};

// Opens the parent directory of `loc`. A component that is a symlink or not
// a directory gives FAILED_PRECONDITION naming it; a missing trusted_dir or
// component gives `missing` (not an error).
absl::StatusOr<ParentDir> OpenParentNoFollow(const FileLocation& loc);

struct FileSnapshot {
  bool exists = false;
  std::string content;
  mode_t mode = 0;  // permission bits (07777)
  uid_t uid = 0;
  gid_t gid = 0;
};

// Reads `name` in the directory `dir_fd`. Missing → exists=false. A symlink
// or anything but a regular file (FIFO, device, directory) is refused with
// FAILED_PRECONDITION without blocking; so is a file larger than max_bytes.
// `display` is used in messages only.
absl::StatusOr<FileSnapshot> ReadRegularFileAt(int dir_fd, const std::string& name,
                                               const std::string& display,
                                               size_t max_bytes = 16 << 20);

// Atomically replaces `name` in `dir_fd` with `content`, owned by uid:gid
// with permission bits `mode`: temp file ".<name>.wbtmp.<random>" created
// O_EXCL|O_NOFOLLOW in the same directory, written, fchown, fchmod, fsync,
// renameat over `name` (a symlink at `name` is replaced, never followed),
// fsync of the directory. On failure the temp file is removed and `name` is
// untouched.
absl::Status ReplaceFileAt(int dir_fd, const std::string& name, absl::string_view content,
                           mode_t mode, uid_t uid, gid_t gid, const std::string& display);

}  // namespace wb::connectors::util
