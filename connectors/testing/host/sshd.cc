#include "connectors/testing/host/sshd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/fs/fs.h"
#include "connectors/testing/run_program.h"

namespace wb::connectors::testing::host {

absl::StatusOr<std::unique_ptr<TestSshd>> TestSshd::Start(const HostRoot& root, Options opts) {
  std::unique_ptr<TestSshd> s(new TestSshd());
  s->dir_ = root.dir() + "/sshd";
  s->etc_ = root.etc();
  if (auto st = fs::MakeDirs(s->dir_, 0755); !st.ok()) return st;
  const std::string key = s->dir_ + "/ssh_host_ed25519_key";
  auto kg = RunProgramOk(
      {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wb-test-host", "-f", key});
  if (!kg.ok()) return kg.status();
  s->host_pub_file_ = key + ".pub";
  auto pub = fs::ReadFile(s->host_pub_file_);
  if (!pub.ok()) return pub.status();
  s->host_pub_ = std::string(absl::StripTrailingAsciiWhitespace(*pub));
  s->config_ = s->dir_ + "/sshd_config";
  const std::string cfg = absl::StrCat(
      "HostKey ", key, "\n",                                                //
      "PidFile none\n",                                                     //
      "UsePAM ", opts.use_pam ? "yes" : "no", "\n",                         //
      "StrictModes no\n",                                                   //
      "AuthorizedKeysFile ", root.root(), "/home/%u/.ssh/authorized_keys",  //
      opts.second_keys_file ? absl::StrCat(" ", root.root(), "/etc/ssh/authorized_keys/%u")
                            : std::string(),
      "\n",                                 //
      "PubkeyAuthentication yes\n",         //
      "PasswordAuthentication no\n",        //
      "KbdInteractiveAuthentication no\n",  //
      "PermitRootLogin no\n",               //
      "LogLevel VERBOSE\n");
  if (auto st = fs::WriteFileAtomic(s->config_, cfg, {.mode = 0644}); !st.ok()) return st;
  s->log_path_ = s->dir_ + "/sshd.log";
  s->log_fd_ = ::open(s->log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (s->log_fd_ < 0) return absl::ErrnoToStatus(errno, "open sshd log");
  // Check the config once (outside any namespace: only syntax and key).
  auto t = RunProgram({"/usr/sbin/sshd", "-t", "-f", s->config_});
  if (!t.ok()) return t.status();
  // -t fails without /run/sshd on the host; that is expected here (the
  // children get their own /run). Any other complaint is a real error.
  if (t->exit_code != 0 && t->err.find("privilege separation directory") == std::string::npos) {
    return absl::InternalError(absl::StrCat("sshd -t: ", t->err));
  }

  s->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) return absl::ErrnoToStatus(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return absl::ErrnoToStatus(errno, "bind 127.0.0.1:0");
  }
  if (::listen(s->listen_fd_, 16) != 0) return absl::ErrnoToStatus(errno, "listen");
  socklen_t len = sizeof addr;
  if (::getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::ErrnoToStatus(errno, "getsockname");
  }
  s->port_ = ntohs(addr.sin_port);
  if (::pipe2(s->stop_pipe_, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  s->thread_ = std::thread([p = s.get()] { p->AcceptLoop(); });
  return s;
}

TestSshd::~TestSshd() {
  if (stop_pipe_[1] >= 0) {
    const char c = 'x';
    (void)!::write(stop_pipe_[1], &c, 1);
  }
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> l(mu_);
    for (pid_t pid : children_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    children_.clear();
  }
  for (int fd : {listen_fd_, stop_pipe_[0], stop_pipe_[1], log_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

std::string TestSshd::Log() const {
  auto c = fs::ReadFile(log_path_);
  return c.ok() ? *c : std::string("<no log>");
}

void TestSshd::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, 1000) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    {
      // Reap finished children.
      std::lock_guard<std::mutex> l(mu_);
      for (auto it = children_.begin(); it != children_.end();) {
        if (::waitpid(*it, nullptr, WNOHANG) == *it) {
          it = children_.erase(it);
        } else {
          ++it;
        }
      }
    }
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    Spawn(conn);
    ::close(conn);
    connections_.fetch_add(1);
  }
}

void TestSshd::Spawn(int conn_fd) {
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe system calls until execve.
  const std::string sshd = "/usr/sbin/sshd";
  std::vector<std::string> args = {sshd, "-i", "-e", "-f", config_};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char env0[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  char env1[] = "LC_ALL=C";
  char* envp[] = {env0, env1, nullptr};
  const char* etc = etc_.c_str();
  const int log_fd = log_fd_;

  const pid_t pid = ::fork();
  if (pid < 0) return;
  if (pid == 0) {
    if (::unshare(CLONE_NEWNS) != 0) ::_exit(120);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(121);
    if (::mount(etc, "/etc", nullptr, MS_BIND | MS_REC, nullptr) != 0) ::_exit(122);
    if (::mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) ::_exit(123);
    if (::mkdir("/run/sshd", 0755) != 0) ::_exit(124);
    if (::dup2(conn_fd, 0) < 0 || ::dup2(conn_fd, 1) < 0 || ::dup2(log_fd, 2) < 0) ::_exit(125);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(sshd.c_str(), argv.data(), envp);
    ::_exit(127);
  }
  std::lock_guard<std::mutex> l(mu_);
  children_.push_back(pid);
}

}  // namespace wb::connectors::testing::host
