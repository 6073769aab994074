// Private mount namespaces for host-connector tests, so that programs that
// only ever read /etc (sudo, sshd, PAM) see a throwaway root's etc instead
// of the machine's.
//
//   - EnterPrivateMountNamespace() moves the CALLING THREAD into a new mount
//     namespace with every mount private (nothing propagates back to the
//     host). Children it starts inherit it.
//   - EtcOverlay bind-mounts a directory over /etc in that namespace and
//     undoes it on destruction. It refuses to mount unless the thread is
//     verifiably in a mount namespace made by EnterPrivateMountNamespace, so a failed
//     unshare can never put a test's files over the machine's /etc.
//
// Needs root (CAP_SYS_ADMIN). Not thread-safe: call from the test thread.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace wb::connectors::testing::host {

// Idempotent per thread.
absl::Status EnterPrivateMountNamespace();

// True iff EnterPrivateMountNamespace() moved the calling thread into a
// new mount namespace and it is still there.
bool InPrivateMountNamespace();

class EtcOverlay {
 public:
  // Bind-mounts `etc_dir` over /etc for the calling thread's namespace.
  static absl::StatusOr<std::unique_ptr<EtcOverlay>> Mount(const std::string& etc_dir);
  ~EtcOverlay();
  EtcOverlay(const EtcOverlay&) = delete;
  EtcOverlay& operator=(const EtcOverlay&) = delete;

 private:
  EtcOverlay() = default;
};

}  // namespace wb::connectors::testing::host
