#include "connectors/probes/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace wb::connectors::probes {
namespace {

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

absl::StatusOr<ScratchDir> ScratchDir::Make(const std::string& parent, const std::string& prefix) {
  std::string base = parent;
  if (base.empty()) {
    const char* t = std::getenv("TMPDIR");
    base = (t != nullptr && t[0] == '/') ? t : "/tmp";
  }
  std::string tmpl = absl::StrCat(base, "/", prefix, ".XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat("mkdtemp in ", base));
  }
  return ScratchDir(std::move(tmpl));
}

ScratchDir::~ScratchDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string PrintableAscii(absl::string_view s, size_t max_len) {
  std::string out;
  out.reserve(std::min(s.size(), max_len));
  for (char c : s.substr(0, max_len)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back((u >= 0x20 && u < 0x7f) || c == '\n' ? c : '?');
  }
  return out;
}

absl::StatusOr<SubprocessResult> RunToolOk(const std::vector<std::string>& argv,
                                           absl::Duration timeout) {
  SubprocessOptions opts;
  opts.timeout = timeout;
  auto r = RunSubprocess(argv, opts);
  if (!r.ok()) return r.status();
  if (r->timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat(argv[0], " did not finish within ", absl::FormatDuration(timeout)));
  }
  if (r->exit_code != 0) {
    return absl::InternalError(
        absl::StrCat(argv[0], " exited ", r->exit_code, ": ", PrintableAscii(r->err, 512)));
  }
  return r;
}

absl::Duration TimeLeft(absl::Time deadline, absl::Time now, absl::Duration cap) {
  if (deadline == absl::InfiniteFuture()) return cap;
  return std::clamp(deadline - now, absl::ZeroDuration(), cap);
}

absl::StatusOr<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                               const SubprocessOptions& options) {
  if (argv.empty()) return absl::InvalidArgumentError("RunSubprocess: empty argv");
  if (argv[0].empty() || argv[0][0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("RunSubprocess: program path must be absolute: ", argv[0]));
  }
  for (const auto& a : argv) {
    if (a.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError("RunSubprocess: an argument contains a NUL byte");
    }
  }
  for (const auto& e : options.env) {
    if (e.find('\0') != std::string::npos || e.find('=') == std::string::npos) {
      return absl::InvalidArgumentError("RunSubprocess: malformed environment entry");
    }
  }

  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    const int e = errno;
    CloseFd(out_pipe[0]);
    CloseFd(out_pipe[1]);
    return absl::ErrnoToStatus(e, "pipe2");
  }

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  // Descriptors the agent opened without O_CLOEXEC must not leak into tools.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGHUP);
  sigaddset(&defaults, SIGCHLD);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<char*> args = CStrings(argv);
  std::vector<char*> envp = CStrings(options.env);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  CloseFd(out_pipe[1]);
  CloseFd(err_pipe[1]);
  if (rc != 0) {
    CloseFd(out_pipe[0]);
    CloseFd(err_pipe[0]);
    return absl::ErrnoToStatus(rc, absl::StrCat("start ", argv[0]));
  }

  SubprocessResult result;
  const auto deadline =
      std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(options.timeout);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    const int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)));
    if (n < 0) {
      if (errno == EINTR) continue;
      ::kill(-pid, SIGKILL);
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        const size_t room =
            options.max_output_bytes - std::min(options.max_output_bytes, sinks[i]->size());
        const size_t take = std::min(room, static_cast<size_t>(got));
        sinks[i]->append(buf, take);
        if (take < static_cast<size_t>(got)) result.truncated = true;
      } else if (got == 0 || errno != EINTR) {
        CloseFd(fds[i].fd);
        --open_fds;
      }
    }
  }
  for (auto& f : fds) CloseFd(f.fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return absl::ErrnoToStatus(errno, "waitpid");
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace wb::connectors::probes
