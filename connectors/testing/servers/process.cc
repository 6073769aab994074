#include "connectors/testing/servers/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace wb::connectors::testing {
namespace {

int DecodeStatus(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

absl::StatusOr<ChildProcess> ChildProcess::Spawn(const SpawnOptions& opts) {
  if (opts.argv.empty() || opts.argv[0].empty() || opts.argv[0][0] != '/') {
    return absl::InvalidArgumentError("Spawn: argv[0] must be an absolute path");
  }
  if (opts.log_file.empty()) return absl::InvalidArgumentError("Spawn: log_file is required");
  // Everything the child needs is prepared before fork: after fork only
  // async-signal-safe calls.
  std::vector<char*> argv;
  for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_storage =
      opts.env.empty() ? std::vector<std::string>{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"} : opts.env;
  std::vector<char*> envp;
  for (const auto& e : env_storage) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const int log_fd = ::open(opts.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open ", opts.log_file));
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    ::close(log_fd);
    return absl::ErrnoToStatus(errno, "open /dev/null");
  }
  const char* wd = opts.working_dir.empty() ? nullptr : opts.working_dir.c_str();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(log_fd);
    ::close(null_fd);
    return absl::ErrnoToStatus(e, "fork");
  }
  if (pid == 0) {
    // Own process group, so that nothing the test's terminal sends reaches it.
    ::setpgid(0, 0);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    if (opts.gid.has_value()) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(*opts.gid) != 0) ::_exit(126);
    }
    if (opts.uid.has_value() && ::setuid(*opts.uid) != 0) ::_exit(126);
    if (wd != nullptr && ::chdir(wd) != 0) ::_exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  return ChildProcess(pid);
}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0) Stop(SIGKILL, absl::Seconds(10));
    pid_ = o.pid_;
    status_ = o.status_;
    o.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Stop(SIGKILL, absl::Seconds(10));
}

bool ChildProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = DecodeStatus(status);
    pid_ = -1;
    return false;
  }
  return r == 0;
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("process ", pid_, " still running"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status_;
}

int ChildProcess::Stop(int sig, absl::Duration grace) {
  if (!Running()) return status_;
  ::kill(pid_, sig);
  auto code = Wait(grace);
  if (code.ok()) return *code;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  status_ = DecodeStatus(status);
  pid_ = -1;
  return status_;
}

absl::StatusOr<std::string> RunToCompletion(SpawnOptions opts, absl::Duration timeout) {
  char tmpl[] = "/tmp/wbrun.XXXXXX";
  const int fd = ::mkstemp(tmpl);
  if (fd < 0) return absl::ErrnoToStatus(errno, "mkstemp");
  ::close(fd);
  opts.log_file = tmpl;
  auto child = ChildProcess::Spawn(opts);
  if (!child.ok()) {
    ::unlink(tmpl);
    return child.status();
  }
  auto code = child->Wait(timeout);
  std::string out = ReadFileOrEmpty(tmpl);
  ::unlink(tmpl);
  if (!code.ok()) {
    child->Stop(SIGKILL, absl::Seconds(5));
    return absl::DeadlineExceededError(
        absl::StrCat(absl::StrJoin(opts.argv, " "), " did not finish: ", out));
  }
  if (*code != 0) {
    return absl::InternalError(
        absl::StrCat(absl::StrJoin(opts.argv, " "), " exited ", *code, ": ", out));
  }
  return out;
}

ProgramRun RunLogged(const std::vector<std::string>& argv, const std::string& log,
                     absl::Duration timeout) {
  ::unlink(log.c_str());
  SpawnOptions o;
  o.argv = argv;
  o.log_file = log;
  ProgramRun r;
  auto child = ChildProcess::Spawn(o);
  if (!child.ok()) {
    r.out = std::string(child.status().message());
    return r;
  }
  auto code = child->Wait(timeout);
  if (!code.ok()) child->Stop(SIGKILL, absl::Seconds(5));
  r.code = code.ok() ? *code : -1;
  r.out = ReadFileOrEmpty(log);
  return r;
}

absl::StatusOr<int> PickFreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    ::close(fd);
    return absl::ErrnoToStatus(e, "bind 127.0.0.1:0");
  }
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int e = errno;
    ::close(fd);
    return absl::ErrnoToStatus(e, "getsockname");
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

absl::StatusOr<std::pair<uid_t, gid_t>> LookupUser(const std::string& name) {
  passwd pw;
  passwd* result = nullptr;
  std::vector<char> buf(16384);
  const int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &result);
  if (rc != 0 || result == nullptr) {
    return absl::NotFoundError(absl::StrCat("no system user '", name, "'"));
  }
  return std::make_pair(pw.pw_uid, pw.pw_gid);
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace wb::connectors::testing
