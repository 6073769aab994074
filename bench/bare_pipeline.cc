#include "bench/bare_pipeline.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/cleanup.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "common/testing/wait.h"
#include "tests/fault/deployment.h"

namespace wb::bench {

namespace stdfs = std::filesystem;

namespace {

// A loopback port free right now (bound to 0, then closed).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// Waits for `pid` up to `timeout`; SIGKILLs it after that. Its exit status,
// or an error when it was killed.
absl::StatusOr<int> WaitOrKill(pid_t pid, absl::Duration timeout, absl::string_view what) {
  int status = 0;
  const bool done = testing::WaitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; },
                                     std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)),
                                     std::chrono::milliseconds(20));
  if (!done) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return absl::DeadlineExceededError(
        absl::StrCat(what, " did not finish within ", absl::FormatDuration(timeout)));
  }
  return status;
}

absl::Status CopyTree(const std::string& from, const std::string& to) {
  std::error_code ec;
  stdfs::create_directories(to, ec);
  for (const char* part : {"build.sh", "scripts", "src"}) {
    stdfs::copy(stdfs::path(from) / part, stdfs::path(to) / part,
                stdfs::copy_options::recursive | stdfs::copy_options::overwrite_existing, ec);
    if (ec) return absl::InternalError(absl::StrCat("copy ", from, "/", part, ": ", ec.message()));
  }
  // The shared copy is read-only; the build writes next to its sources.
  for (auto it = stdfs::recursive_directory_iterator(to, ec);
       !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    stdfs::permissions(it->path(), stdfs::perms::owner_write, stdfs::perm_options::add, ec);
  }
  stdfs::permissions(to, stdfs::perms::owner_all, stdfs::perm_options::add, ec);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BareResult> ParseBareResult(const std::string& text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.rfind("RESULT ", 0) != 0) continue;
    std::map<std::string, std::string> kv;
    for (absl::string_view f : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      const size_t eq = f.find('=');
      if (eq != absl::string_view::npos) {
        kv[std::string(f.substr(0, eq))] = std::string(f.substr(eq + 1));
      }
    }
    BareResult r;
    r.result_line = std::string(line);
    if (!absl::SimpleAtod(kv["msgs_per_s"], &r.msgs_per_s) ||
        !absl::SimpleAtod(kv["server_cpu_us_per_op"], &r.server_cpu_us_per_op)) {
      return absl::InvalidArgumentError(
          absl::StrCat("RESULT line without msgs_per_s or "
                       "server_cpu_us_per_op: ",
                       line));
    }
    (void)absl::SimpleAtod(kv["client_cpu_us_per_op"], &r.client_cpu_us_per_op);
    return r;
  }
  return absl::NotFoundError("no RESULT line");
}

absl::StatusOr<BareResult> RunBarePipeline(const std::string& src_dir, const std::string& build_dir,
                                           const std::string& work_dir, absl::Duration timeout) {
  if (!stdfs::exists(stdfs::path(src_dir) / "build.sh") ||
      !stdfs::exists(stdfs::path(src_dir) / "src" / "grpc_server.cc")) {
    return absl::NotFoundError(absl::StrCat(src_dir, ": no perf-limits checkout (build.sh, src/)"));
  }
  const std::string copy = build_dir + "/perf-limits";
  const std::string server = copy + "/build/grpc_server";
  const std::string client = copy + "/build/grpc_client";
  std::error_code ec;
  stdfs::create_directories(work_dir, ec);
  if (!stdfs::exists(server) || !stdfs::exists(client) || !stdfs::exists(copy + "/certs/ca.pem")) {
    WB_RETURN_IF_ERROR(CopyTree(src_dir, copy));
    // Its own script, run without a shell command line (argv only).
    WB_ASSIGN_OR_RETURN(
        pid_t pid, fault::Spawn({"/bin/bash", copy + "/build.sh"}, work_dir + "/build.log", {}));
    RegisterChild(pid);
    auto built = WaitOrKill(pid, absl::Minutes(20), "perf-limits build.sh");
    UnregisterChild(pid);
    WB_ASSIGN_OR_RETURN(int st, built);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      return absl::InternalError(
          absl::StrCat("perf-limits build.sh failed; see ", work_dir, "/build.log"));
    }
  }
  const std::string tls = absl::StrCat("127.0.0.1:", FreePort());
  const std::string insecure = absl::StrCat("127.0.0.1:", FreePort());
  const std::string server_log = work_dir + "/server.log";
  const std::string client_log = work_dir + "/client.log";
  WB_ASSIGN_OR_RETURN(pid_t spid, fault::Spawn({server, "--insecure=" + insecure, "--tls=" + tls,
                                                "--certs=" + copy + "/certs",
                                                "--db=" + work_dir + "/e2e", "--db_sync=1"},
                                               server_log, {}));
  RegisterChild(spid);
  auto stop_server = [&] {
    ::kill(spid, SIGTERM);
    (void)WaitOrKill(spid, absl::Seconds(10), "perf-limits server");
    UnregisterChild(spid);
  };
  const bool up = testing::WaitFor(
      [&] {
        auto s = fs::ReadFile(server_log);
        return s.ok() && s->find("listening") != std::string::npos;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(20));
  if (!up) {
    stop_server();
    return absl::UnavailableError(
        absl::StrCat("perf-limits server did not start; see ", server_log));
  }
  // run_all.sh's e2e_sync_verify_w8: 100 agents, window 8, agents verify.
  const std::vector<std::string> argv = {client, "--mode=stream", "--secure=1", "--tls=" + tls,
                                         // Its server CPU comes over the plain port.
                                         "--insecure=" + insecure, "--certs=" + copy + "/certs",
                                         "--streams=100", "--channels=100", "--count=300",
                                         "--size=300", "--window=8", "--verify=1"};
  auto cpid = fault::Spawn(argv, client_log, {});
  if (!cpid.ok()) {
    stop_server();
    return cpid.status();
  }
  RegisterChild(*cpid);
  auto cst = WaitOrKill(*cpid, timeout, "perf-limits client");
  UnregisterChild(*cpid);
  stop_server();
  if (!cst.ok()) return cst.status();
  WB_ASSIGN_OR_RETURN(std::string out, fs::ReadFile(client_log));
  WB_ASSIGN_OR_RETURN(BareResult r, ParseBareResult(out));
  r.command = "grpc_client";
  for (size_t i = 1; i < argv.size(); ++i) {
    if (argv[i].rfind("--certs=", 0) == 0 || argv[i].rfind("--tls=", 0) == 0 ||
        argv[i].rfind("--insecure=", 0) == 0) {
      continue;
    }
    absl::StrAppend(&r.command, " ", argv[i]);
  }
  return r;
}

}  // namespace wb::bench
