#include "connectors/testing/host/mount_ns.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace wb::connectors::testing::host {
namespace {

bool SameNamespace(const char* a, const char* b) {
  struct stat sa, sb;
  if (::stat(a, &sa) != 0 || ::stat(b, &sb) != 0) return true;  // unknown: assume shared
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace

bool InPrivateMountNamespace() {
  return !SameNamespace("/proc/thread-self/ns/mnt", "/proc/1/ns/mnt");
}

absl::Status EnterPrivateMountNamespace() {
  if (InPrivateMountNamespace()) return absl::OkStatus();
  if (::unshare(CLONE_NEWNS) != 0) {
    return absl::ErrnoToStatus(errno, "unshare(CLONE_NEWNS) (needs root)");
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return absl::ErrnoToStatus(errno, "make / private");
  }
  if (!InPrivateMountNamespace()) {
    return absl::InternalError("unshare succeeded but the mount namespace is still init's");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<EtcOverlay>> EtcOverlay::Mount(const std::string& etc_dir) {
  if (!InPrivateMountNamespace()) {
    return absl::FailedPreconditionError(
        "refusing to mount over /etc outside a private mount namespace");
  }
  if (::mount(etc_dir.c_str(), "/etc", nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("bind ", etc_dir, " over /etc"));
  }
  return std::unique_ptr<EtcOverlay>(new EtcOverlay());
}

EtcOverlay::~EtcOverlay() { ::umount2("/etc", MNT_DETACH); }

}  // namespace wb::connectors::testing::host
