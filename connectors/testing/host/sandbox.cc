#include "connectors/testing/host/sandbox.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/fs/fs.h"
#include "connectors/posix_account/account_db.h"
#include "connectors/testing/run_program.h"

namespace wb::connectors::testing::host {
namespace {

// A dummy SHA-512 crypt string; no password hashes to it that anyone knows.
constexpr char kDummyHash[] =
    "$6$wbtestsalt$4Hm0uHvV6C2cH9tdzq3F3xT2vyZqz4u0P1sQ8gGdKpE1Qx0Hj7hL2o7yqvM0cA5yb1c9QeQ5q6a"
    "Y1mW3nP2x.";

absl::Status Write(const std::string& path, const std::string& content, mode_t mode) {
  return fs::WriteFileAtomic(path, content, {.mode = mode, .uid = 0, .gid = 0});
}

}  // namespace

absl::StatusOr<std::unique_ptr<HostRoot>> HostRoot::Create(Options opts) {
  std::unique_ptr<HostRoot> r(new HostRoot());
  if (::chmod(r->tmp_.path().c_str(), 0755) != 0) return absl::ErrnoToStatus(errno, "chmod");
  r->root_ = r->tmp_.path() + "/root";
  if (auto s = fs::MakeDirs(r->root_ + "/home", 0755); !s.ok()) return s;
  if (::chmod(r->root_.c_str(), 0755) != 0) return absl::ErrnoToStatus(errno, "chmod");
  if (opts.full_etc) {
    auto cp = RunProgramOk({"cp", "-a", "/etc", r->root_ + "/etc"});
    if (!cp.ok()) return cp.status();
    return r;
  }
  const std::string etc = r->root_ + "/etc";
  if (auto s = fs::MakeDirs(etc + "/default", 0755); !s.ok()) return s;
  if (::chmod(etc.c_str(), 0755) != 0) return absl::ErrnoToStatus(errno, "chmod");
  const std::vector<std::pair<std::string, std::string>> groups = {
      {"root", "0"}, {"users", "100"}, {"nogroup", "65534"}, {"shadow", "42"}};
  std::string group, gshadow;
  for (const auto& [g, id] : groups) {
    absl::StrAppend(&group, g, ":x:", id, ":\n");
    absl::StrAppend(&gshadow, g, ":*::\n");
  }
  if (auto s = Write(etc + "/passwd",
                     "root:x:0:0:root:/root:/bin/bash\n"
                     "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                     0644);
      !s.ok())
    return s;
  if (auto s =
          Write(etc + "/shadow", "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0640);
      !s.ok())
    return s;
  if (auto s = Write(etc + "/group", group, 0644); !s.ok()) return s;
  if (auto s = Write(etc + "/gshadow", gshadow, 0640); !s.ok()) return s;
  auto defs = fs::ReadFile("/etc/login.defs");
  if (!defs.ok()) return defs.status();
  if (auto s = Write(etc + "/login.defs", *defs, 0644); !s.ok()) return s;
  return r;
}

absl::Status HostRoot::Tool(const std::string& tool, std::vector<std::string> args) {
  std::vector<std::string> argv = {tool};
  if (tool == "chage" || tool == "passwd") {
    argv.insert(argv.end(), {"-R", root_});
  } else if (tool == "gpasswd") {
    argv.insert(argv.end(), {"-Q", root_});
  } else {
    argv.insert(argv.end(), {"-P", root_});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgramOk(argv).status();
}

absl::Status HostRoot::AddGroup(const std::string& name) { return Tool("groupadd", {name}); }

absl::Status HostRoot::AddUser(const User& u) {
  std::vector<std::string> args = {"-M", "-d", "/home/" + u.name, "-s", u.shell};
  if (!u.groups.empty()) args.insert(args.end(), {"-G", absl::StrJoin(u.groups, ",")});
  if (u.uid >= 0) args.insert(args.end(), {"-u", absl::StrCat(u.uid)});
  if (u.with_password) args.insert(args.end(), {"-p", kDummyHash});
  args.push_back(u.name);
  if (auto s = Tool("useradd", args); !s.ok()) return s;
  if (u.with_home) {
    const std::string home = root_ + "/home/" + u.name;
    if (auto s = fs::MakeDirs(home, 0755); !s.ok()) return s;
    if (auto s = Write(home + "/.profile", "# test\n", 0644); !s.ok()) return s;
    // userdel -r removes only a home the account owns.
    auto files = posix::ReadAccountFiles(root_);
    if (!files.ok()) return files.status();
    const posix::AccountView v = posix::DescribeAccount(*files, u.name);
    for (const std::string& p : {home, home + "/.profile"}) {
      if (::chown(p.c_str(), v.uid, v.gid) != 0) return absl::ErrnoToStatus(errno, "chown");
    }
  }
  return absl::OkStatus();
}

absl::Status HostRoot::WriteAuthorizedKeys(const std::string& user, const std::string& content) {
  const std::string dir = root_ + "/home/" + user + "/.ssh";
  if (auto s = fs::MakeDirs(dir, 0755); !s.ok()) return s;
  if (::chmod(dir.c_str(), 0755) != 0) return absl::ErrnoToStatus(errno, "chmod");
  return Write(dir + "/authorized_keys", content, 0644);
}

std::string HostRoot::ReadEtc(const std::string& name) const {
  auto c = fs::ReadFile(etc() + "/" + name);
  return c.ok() ? *c : std::string("<unreadable>");
}

absl::StatusOr<std::string> TreeSnapshot(const std::string& dir,
                                         const std::vector<std::string>& skip) {
  std::vector<std::string> entries;
  std::vector<std::string> todo = {""};
  while (!todo.empty()) {
    const std::string rel = todo.back();
    todo.pop_back();
    if (std::find(skip.begin(), skip.end(), rel) != skip.end()) continue;
    const std::string abs = rel.empty() ? dir : dir + "/" + rel;
    struct stat st;
    if (::lstat(abs.c_str(), &st) != 0) return absl::ErrnoToStatus(errno, abs);
    std::string e = absl::StrFormat("%s mode=%o uid=%d gid=%d", rel.empty() ? "." : rel, st.st_mode,
                                    st.st_uid, st.st_gid);
    if (S_ISREG(st.st_mode)) {
      auto c = fs::ReadFile(abs);
      if (!c.ok()) return c.status();
      absl::StrAppend(&e, " content=", *c);
    } else if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      const ssize_t n = ::readlink(abs.c_str(), buf, sizeof buf);
      if (n < 0) return absl::ErrnoToStatus(errno, abs);
      absl::StrAppend(&e, " -> ", absl::string_view(buf, static_cast<size_t>(n)));
    } else if (S_ISDIR(st.st_mode)) {
      DIR* d = ::opendir(abs.c_str());
      if (d == nullptr) return absl::ErrnoToStatus(errno, abs);
      while (dirent* de = ::readdir(d)) {
        const std::string name = de->d_name;
        if (name == "." || name == "..") continue;
        todo.push_back(rel.empty() ? name : rel + "/" + name);
      }
      ::closedir(d);
    }
    entries.push_back(e);
  }
  std::sort(entries.begin(), entries.end());
  return absl::StrJoin(entries, "\n");
}

}  // namespace wb::connectors::testing::host
