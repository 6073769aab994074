#include "connectors/exec/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace wb::connectors::exec {
namespace {

// Owns one descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Close(); }
  int get() const { return fd_; }
  bool open() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void Reset(int fd) {
    Close();
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// What the child reports through the status pipe when it fails before (or
// in) execve.
struct ChildFailure {
  int stage;
  int err;
};

enum Stage : int {
  kStageDup = 1,
  kStageSetgroups,
  kStageSetgid,
  kStageSetuid,
  kStageChdir,
  kStageDeathSignal,
  kStageExec,
};

const char* StageName(int stage) {
  switch (stage) {
    case kStageDup:
      return "dup2";
    case kStageSetgroups:
      return "setgroups";
    case kStageSetgid:
      return "setgid";
    case kStageSetuid:
      return "setuid";
    case kStageChdir:
      return "chdir to working_dir";
    case kStageDeathSignal:
      return "parent-death signal";
    case kStageExec:
      return "execve";
  }
  return "child setup";
}

absl::Status ErrnoError(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(err)));
}

absl::Status MakePipe(Fd& read_end, Fd& write_end) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoError("pipe2", errno);
  read_end.Reset(p[0]);
  write_end.Reset(p[1]);
  return absl::OkStatus();
}

void SetNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Child side, between fork and execve: async-signal-safe calls only.
[[noreturn]] void ChildFail(int status_fd, int stage) {
  const ChildFailure f{stage, errno};
  ssize_t ignored = ::write(status_fd, &f, sizeof f);
  (void)ignored;
  ::_exit(127);
}

bool MoveFd(int from, int to) {
  if (from == to) return ::fcntl(to, F_SETFD, 0) == 0;  // keep it across execve
  return ::dup2(from, to) == to;
}

[[noreturn]] void RunChild(const SubprocessSpec& spec, char* const* argv, char* const* envp,
                           int in_r, int out_w, int err_w, int status_w, long max_fd,
                           pid_t parent) {
  ::setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < 32; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
  }
  if (!MoveFd(in_r, 0) || !MoveFd(out_w, 1) || !MoveFd(err_w, 2)) {
    ChildFail(status_w, kStageDup);
  }
  // Nothing else of the agent's (sockets, database files) reaches the program.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (long fd = 3; fd < max_fd; ++fd) ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  }
  if (spec.gid.has_value()) {
    const gid_t g = *spec.gid;
    if (::setgroups(1, &g) != 0) ChildFail(status_w, kStageSetgroups);
    if (::setgid(g) != 0) ChildFail(status_w, kStageSetgid);
  }
  if (spec.uid.has_value() && ::setuid(*spec.uid) != 0) ChildFail(status_w, kStageSetuid);
  if (::chdir(spec.working_dir.c_str()) != 0) ChildFail(status_w, kStageChdir);
  // The program dies with the thread that started it (after the credential
  // switch, which clears this setting). Checked again afterwards, in case
  // the parent died before the call.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(status_w, kStageDeathSignal);
  if (::getppid() != parent) ::_exit(127);
  ::execve(spec.program.c_str(), argv, envp);
  ChildFail(status_w, kStageExec);
}

int64_t MillisUntil(std::chrono::steady_clock::time_point t) {
  const auto d = t - std::chrono::steady_clock::now();
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

absl::StatusOr<SubprocessResult> RunSubprocess(const SubprocessSpec& spec) {
  if (spec.program.empty() || spec.program[0] != '/') {
    return absl::InvalidArgumentError("program: must be an absolute path");
  }
  if (spec.argv.empty()) return absl::InvalidArgumentError("argv: must hold at least argv[0]");
  if (spec.uid.has_value() && !spec.gid.has_value()) {
    return absl::InvalidArgumentError("gid: must be set when uid is set");
  }

  // Everything the child needs is prepared before fork.
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  long max_fd = ::sysconf(_SC_OPEN_MAX);
  if (max_fd < 0 || max_fd > 65536) max_fd = 65536;

  Fd in_r, in_w, out_r, out_w, err_r, err_w, status_r, status_w;
  if (auto s = MakePipe(in_r, in_w); !s.ok()) return s;
  if (auto s = MakePipe(out_r, out_w); !s.ok()) return s;
  if (auto s = MakePipe(err_r, err_w); !s.ok()) return s;
  if (auto s = MakePipe(status_r, status_w); !s.ok()) return s;

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork", errno);
  if (pid == 0) {
    RunChild(spec, argv.data(), envp.data(), in_r.get(), out_w.get(), err_w.get(), status_w.get(),
             max_fd, parent);
  }
  ::setpgid(pid, pid);  // also done by the child; whichever runs first wins
  in_r.Close();
  out_w.Close();
  err_w.Close();
  status_w.Close();

  auto reap = [pid]() {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
  };

  // The status pipe closes on a successful execve (O_CLOEXEC) or carries the
  // reason the child could not get there.
  ChildFailure failure{};
  size_t got = 0;
  while (got < sizeof failure) {
    const ssize_t n =
        ::read(status_r.get(), reinterpret_cast<char*>(&failure) + got, sizeof failure - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got == sizeof failure) {
    reap();
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot run ", spec.program, ": ", StageName(failure.stage), ": ", strerror(failure.err)));
  }

  // A descriptor that becomes readable when the child exits; -1 (old kernel):
  // poll with a short tick instead.
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  SetNonBlocking(in_w.get());
  SetNonBlocking(out_r.get());
  SetNonBlocking(err_r.get());
  if (spec.stdin_data.empty()) in_w.Close();

  sigset_t pipe_set, old_mask;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
  bool saw_epipe = false;

  SubprocessResult result;
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(std::max<int64_t>(0, absl::ToInt64Milliseconds(spec.timeout)));
  size_t in_off = 0;
  bool exited = false;
  bool timed_out = false;
  bool too_large = false;
  char buf[65536];

  auto on_exit = [&]() {
    exited = true;
    // Stragglers left in the group die with it. The leader is a zombie until
    // reaped below, so the group id still names this group.
    ::kill(-pid, SIGKILL);
    pidfd.Close();
  };

  while (!(exited && !out_r.open() && !err_r.open())) {
    const int64_t left = MillisUntil(deadline);
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[4];
    int nfds = 0;
    int i_in = -1, i_out = -1, i_err = -1, i_pid = -1;
    if (in_w.open()) {
      i_in = nfds;
      fds[nfds++] = {in_w.get(), POLLOUT, 0};
    }
    if (out_r.open()) {
      i_out = nfds;
      fds[nfds++] = {out_r.get(), POLLIN, 0};
    }
    if (err_r.open()) {
      i_err = nfds;
      fds[nfds++] = {err_r.get(), POLLIN, 0};
    }
    if (!exited && pidfd.open()) {
      i_pid = nfds;
      fds[nfds++] = {pidfd.get(), POLLIN, 0};
    }
    const bool tick = !exited && !pidfd.open();
    const int wait_ms = static_cast<int>(std::min<int64_t>(left, tick ? 10 : 1000));
    const int n = ::poll(fds, static_cast<nfds_t>(nfds), std::max(wait_ms, 1));
    if (n < 0) {
      if (errno == EINTR) continue;
      timed_out = true;  // cannot wait any more: treat as the timeout
      break;
    }
    if (i_in >= 0 && fds[i_in].revents != 0) {
      const size_t chunk = std::min<size_t>(spec.stdin_data.size() - in_off, 65536);
      const ssize_t w = ::write(in_w.get(), spec.stdin_data.data() + in_off, chunk);
      if (w > 0) {
        in_off += static_cast<size_t>(w);
        if (in_off == spec.stdin_data.size()) in_w.Close();
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        if (errno == EPIPE) saw_epipe = true;
        in_w.Close();  // the program stopped reading; not our failure
      }
    }
    if (i_out >= 0 && fds[i_out].revents != 0) {
      const ssize_t r = ::read(out_r.get(), buf, sizeof buf);
      if (r > 0) {
        if (result.out.size() + static_cast<size_t>(r) > spec.max_stdout) {
          result.out.append(buf, spec.max_stdout - result.out.size());
          too_large = true;
          break;
        }
        result.out.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        out_r.Close();
      }
    }
    if (i_err >= 0 && fds[i_err].revents != 0) {
      const ssize_t r = ::read(err_r.get(), buf, sizeof buf);
      if (r > 0) {
        const size_t room = spec.max_stderr - std::min(spec.max_stderr, result.err.size());
        const size_t keep = std::min(room, static_cast<size_t>(r));
        result.err.append(buf, keep);
        if (keep < static_cast<size_t>(r)) result.err_truncated = true;
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        err_r.Close();
      }
    }
    if (i_pid >= 0 && (fds[i_pid].revents & POLLIN) != 0) {
      on_exit();
    } else if (tick) {
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid) {
        on_exit();
      }
    }
  }

  if (timed_out || too_large) ::kill(-pid, SIGKILL);
  const int status = reap();
  if (saw_epipe) {
    sigset_t pending;
    sigemptyset(&pending);
    if (::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
      const timespec zero{0, 0};
      ::sigtimedwait(&pipe_set, nullptr, &zero);
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);

  if (timed_out) {
    result.end = SubprocessResult::End::kTimedOut;
  } else if (too_large) {
    result.end = SubprocessResult::End::kOutputTooLarge;
  } else if (WIFEXITED(status)) {
    result.end = SubprocessResult::End::kExited;
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.end = SubprocessResult::End::kSignaled;
    result.term_signal = WTERMSIG(status);
  }
  return result;
}

std::string DescribeEnd(const SubprocessResult& r, const SubprocessSpec& spec) {
  switch (r.end) {
    case SubprocessResult::End::kExited:
      return absl::StrCat("exited with status ", r.exit_code);
    case SubprocessResult::End::kSignaled:
      return absl::StrCat("killed by signal ", r.term_signal, " (", strsignal(r.term_signal), ")");
    case SubprocessResult::End::kTimedOut:
      return absl::StrCat("timed out after ", absl::FormatDuration(spec.timeout),
                          "; its process group was killed");
    case SubprocessResult::End::kOutputTooLarge:
      return absl::StrCat("wrote more than ", spec.max_stdout,
                          " bytes to stdout; its process group was killed");
  }
  return "ended";
}

}  // namespace wb::connectors::exec
