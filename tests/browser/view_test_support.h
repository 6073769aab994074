// Shared pieces of the operators'-view end-to-end tests: sandboxed
// authorized_keys files, running a program (no shell) with a time limit, and
// HTTP GETs to the dashboard.
#pragma once

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/fs/fs.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "gtest/gtest.h"
#include "writeback/v1/config.pb.h"

extern char** environ;

namespace wb::e2e {

// Home directories with authorized_keys files, and a connector instance on them.
class KeysSandbox {
 public:
  std::string KeysPath(const std::string& user) const {
    return absl::StrCat(dir_.path(), "/home/", user, "/.ssh/authorized_keys");
  }
  void Write(const std::string& user, const std::string& content) {
    ASSERT_TRUE(fs::MakeDirs(absl::StrCat(dir_.path(), "/home/", user, "/.ssh"), 0700).ok());
    ASSERT_TRUE(fs::WriteFileAtomic(KeysPath(user), content, {.mode = 0600}).ok());
  }
  std::string Read(const std::string& user) const {
    auto r = fs::ReadFile(KeysPath(user));
    return r.ok() ? *r : "";
  }
  writeback::v1::ConnectorInstanceConfig Instance(const std::string& name) const {
    writeback::v1::ConnectorInstanceConfig c;
    c.set_name(name);
    c.set_type("ssh_authorized_keys");
    c.add_allowed_operations("remove_key");
    c.mutable_ssh_authorized_keys()->set_path_template(dir_.path() +
                                                       "/home/{user}/.ssh/authorized_keys");
    return c;
  }

 private:
  testing::TempDir dir_;
};

struct ProgramResult {
  int exit_code = -1;  // -1: did not start or was killed
  std::string out, err;
};

// Runs argv[0] (an absolute path) with `argv`, stdout and stderr to files in
// `dir`; kills it after `timeout`.
inline ProgramResult RunProgram(const std::vector<std::string>& argv, const std::string& dir,
                                absl::Duration timeout = absl::Seconds(120)) {
  static int n = 0;
  const std::string out = absl::StrCat(dir, "/prog-", ++n, ".out");
  const std::string err = absl::StrCat(dir, "/prog-", n, ".err");
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  // Its own process group, so a timeout kills the whole tree (/usr/bin/chromium
  // is a shell wrapper around the browser and its helper processes).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  ProgramResult r;
  pid_t pid;
  const int rc = posix_spawn(&pid, cargv[0], &fa, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    r.err = absl::StrCat("cannot start ", argv[0], ": ", strerror(rc));
    return r;
  }
  int status = 0;
  bool done = testing::WaitFor([&] { return waitpid(pid, &status, WNOHANG) == pid; },
                               std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)),
                               std::chrono::milliseconds(20));
  if (!done) {
    kill(-pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  r.exit_code = done && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  auto o = fs::ReadFile(out);
  auto e = fs::ReadFile(err);
  r.out = o.ok() ? *o : "";
  r.err = e.ok() ? *e : "";
  return r;
}

// GET http://127.0.0.1:port/path; status -1 if no answer.
struct HttpResult {
  int status = -1;
  std::string body;
  std::string content_type;
};
inline HttpResult HttpGet(int port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5);
  c.set_read_timeout(10);
  auto r = c.Get(path.c_str());
  if (!r) return {};
  return {r->status, r->body, r->get_header_value("Content-Type")};
}

// The port a control plane wrote to its web_port_file.
inline int ReadPort(const std::string& path) {
  auto r = fs::ReadFile(path);
  return r.ok() ? std::atoi(r->c_str()) : 0;
}

}  // namespace wb::e2e
