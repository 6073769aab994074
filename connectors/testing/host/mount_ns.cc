#include "connectors/testing/host/mount_ns.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace wb::connectors::testing::host {
namespace {

// The mount namespace (device, inode) a thread was in before this file's
// unshare moved it; unset if it never did.
struct NsId {
  bool set = false;
  dev_t dev = 0;
  ino_t ino = 0;
};
thread_local NsId original_ns;

bool CurrentNs(NsId& out) {
  struct stat st;
  if (::stat("/proc/thread-self/ns/mnt", &st) != 0) return false;
  out.set = true;
  out.dev = st.st_dev;
  out.ino = st.st_ino;
  return true;
}

}  // namespace

bool InPrivateMountNamespace() {
  NsId now;
  if (!original_ns.set || !CurrentNs(now)) return false;
  return now.dev != original_ns.dev || now.ino != original_ns.ino;
}

absl::Status EnterPrivateMountNamespace() {
  if (InPrivateMountNamespace()) return absl::OkStatus();
  NsId before;
  if (!CurrentNs(before)) return absl::ErrnoToStatus(errno, "stat /proc/thread-self/ns/mnt");
  if (::unshare(CLONE_NEWNS) != 0) {
    return absl::ErrnoToStatus(errno, "unshare(CLONE_NEWNS) (needs root)");
  }
  original_ns = before;
  if (!InPrivateMountNamespace()) {
    return absl::InternalError("unshare succeeded but the mount namespace did not change");
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return absl::ErrnoToStatus(errno, "make / private");
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
