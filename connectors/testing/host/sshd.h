// A real OpenSSH server for tests, reachable on 127.0.0.1 at a port the
// kernel chose (port 0): the test process listens and accepts, and each
// connection is served by `/usr/sbin/sshd -i` (inetd mode) started in its
// own private mount namespace where the throwaway root's etc is bind-mounted
// over /etc and a tmpfs over /run (for /run/sshd). So sshd, PAM and NSS see
// exactly the account databases the connector under test changes, and the
// machine's own /etc is never read for accounts or touched.
//
//   auto root = HostRoot::Create({.full_etc = true});
//   auto sshd = TestSshd::Start(**root, {});
//   ... ssh -p (*sshd)->port() user@127.0.0.1 ...
//
// Needs root. Thread-safety: Start/Stop from the test thread; the accept
// loop runs on an internal thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "connectors/testing/host/sandbox.h"

namespace wb::connectors::testing::host {

class TestSshd {
 public:
  struct Options {
    bool use_pam = true;  // Debian's default
    // Also read <root>/etc/ssh/authorized_keys/%u (a second
    // AuthorizedKeysFile, as some sites configure).
    bool second_keys_file = false;
  };
  static absl::StatusOr<std::unique_ptr<TestSshd>> Start(const HostRoot& root, Options opts);
  ~TestSshd();

  int port() const { return port_; }
  // The host public key line ("ssh-ed25519 AAAA... comment") and its file.
  const std::string& host_public_key() const { return host_pub_; }
  const std::string& host_public_key_file() const { return host_pub_file_; }
  // sshd's log (-e -o LogLevel=VERBOSE), for failure messages.
  std::string Log() const;
  // Number of connections served so far.
  int connections() const { return connections_.load(); }

 private:
  TestSshd() = default;
  void AcceptLoop();
  void Spawn(int conn_fd);

  std::string dir_;
  std::string config_;
  std::string etc_;
  std::string log_path_;
  std::string host_pub_;
  std::string host_pub_file_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int log_fd_ = -1;
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
  std::mutex mu_;
  std::vector<pid_t> children_;
};

}  // namespace wb::connectors::testing::host
