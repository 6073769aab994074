// Throwaway roots for host-connector tests: a directory with its own etc/
// (account databases, sudoers, PAM, ssh config) that the system tools are
// pointed at (useradd/usermod/userdel -P, chage -R, gpasswd -Q), and that a
// child process can see as /etc through a private mount namespace
// (mount_ns.h). Nothing here ever writes to the machine's own /etc.
//
// Not thread-safe; one per test.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/testing/temp_dir.h"

namespace wb::connectors::testing::host {

class HostRoot {
 public:
  struct Options {
    // true: a full copy of the machine's /etc (cp -a; needed when sshd or
    // sudo run with this etc as /etc). false: a minimal synthetic etc with
    // only root and a few groups (fast; enough for the account tools).
    bool full_etc = false;
  };
  static absl::StatusOr<std::unique_ptr<HostRoot>> Create(Options opts);
  static absl::StatusOr<std::unique_ptr<HostRoot>> Create() { return Create(Options{}); }

  // The temp dir (mode 0755, so sshd can read keys below it as the user).
  const std::string& dir() const { return tmp_.path(); }
  // dir()/root: the throwaway root; etc() is root()/etc.
  const std::string& root() const { return root_; }
  std::string etc() const { return root_ + "/etc"; }

  struct User {
    std::string name = {};
    std::vector<std::string> groups = {};  // supplementary
    std::string shell = "/bin/bash";
    bool with_home = true;      // create root()/home/<name>
    bool with_password = true;  // a (dummy) password hash
    int uid = -1;               // -1: let useradd choose
  };
  // useradd -P root ...; home is "/home/<name>" inside the root.
  absl::Status AddUser(const User& u);
  absl::Status AddGroup(const std::string& name);
  // Runs a tool with -P root (useradd, usermod, userdel, groupadd) or -R
  // root (chage) prepended to args. For arranging test states.
  absl::Status Tool(const std::string& tool, std::vector<std::string> args);
  // root()/home/<user>/.ssh/authorized_keys with `lines`, readable by sshd.
  absl::Status WriteAuthorizedKeys(const std::string& user, const std::string& content);

  std::string ReadEtc(const std::string& name) const;

 private:
  HostRoot() = default;
  wb::testing::TempDir tmp_;
  std::string root_;
};

// Every entry below `dir` (sorted): relative path, type, mode, owner, and
// the bytes of files / targets of symlinks. Equal snapshots: nothing below
// `dir` was touched. `skip` lists relative paths left out (with their
// contents).
absl::StatusOr<std::string> TreeSnapshot(const std::string& dir,
                                         const std::vector<std::string>& skip = {});

}  // namespace wb::connectors::testing::host
