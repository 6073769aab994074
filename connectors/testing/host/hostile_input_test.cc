// Hostile input into every parameter of every host connector
// (posix_account, sudoers, secret_file): shell metacharacters, "../", NUL,
// newlines, 64 KiB strings, Unicode look-alikes, option-looking values,
// invalid UTF-8. Every value must be refused or handled literally (a plan
// that changes nothing); afterwards no file anywhere in the sandbox has
// changed and no system tool was run: the connectors' tools_dir points at
// an argv recorder (argv_recorder.cc) that logs every invocation before
// running the real tool. A final positive control shows the recorder does
// see the connectors' commands.
#include <unistd.h>

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/actions/actions.h"
#include "common/fs/fs.h"
#include "connectors/registry.h"
#include "connectors/testing/host/sandbox.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#ifndef WB_ARGV_RECORDER
#error "WB_ARGV_RECORDER must name the argv recorder binary"
#endif

namespace wb::connectors {
namespace {

using testing::host::HostRoot;
using testing::host::TreeSnapshot;

std::vector<std::string> HostileValues(const std::string& sandbox) {
  std::vector<std::string> base = {
      // Shell metacharacters and command substitution.
      "; rm -rf /",
      "$(touch " + sandbox + "/pwned)",
      "`touch " + sandbox + "/pwned`",
      "| cat /etc/shadow",
      "&& reboot",
      "|| true",
      "a'b",
      "a\"b",
      "${IFS}id",
      "$HOME",
      "> /etc/passwd",
      "< /dev/zero",
      "*",
      "?",
      "[a-z]*",
      "~root",
      "!",
      "!!",
      "#",
      "a b",
      "a\tb",
      "\\",
      "\\\\x",
      "$((1+1))",
      "{a,b}",
      "a&",
      "(id)",
      "%s%s%s%n",
      "%x%x",
      "{user}",
      "%u",
      "%h",
      "'; DROP TABLE x; --",
      // Paths.
      "..",
      ".",
      "/",
      "../",
      "../../etc/passwd",
      "a/../../b",
      "....//",
      "..\\..\\windows",
      "%2e%2e%2f",
      "/etc/shadow",
      "/etc/sudoers",
      "/proc/self/environ",
      "/dev/sda",
      "//etc",
      "./x",
      "x/",
      "~/.ssh/authorized_keys",
      sandbox + "/outside/keep.env",
      sandbox + "/secrets/../outside/keep.env",
      sandbox + "/secrets/./.env",
      sandbox + "/secrets/link/keep.env",
      sandbox + "/secrets//.env",
      // NUL, newlines, control characters.
      std::string("a\0b", 3),
      std::string("\0", 1),
      std::string("svc-app\0", 8),
      std::string("/etc/passwd\0.env", 16),
      "a\nb",
      "\n",
      "a\r\nb",
      "svc-app\nroot:x:0:0::/:/bin/sh",
      "x\n[default]\nk=v",
      "\x1b[31mred",
      "\x7f",
      "\b\b\b",
      "\r",
      "\f",
      "\v",
      // Options and tool syntax.
      "-rf",
      "--help",
      "-P/",
      "-R /",
      "--root=/",
      "-oProxyCommand=id",
      "-",
      "--",
      "root",
      "ALL",
      "%sudo",
      "+netgroup",
      "#0",
      "svc-app,root",
      "svc-app:x",
      "user=root",
      "[section]",
      "key=value",
      "=",
      ":",
      "]",
      "\"}",
      "{}",
      "[]",
      "null",
      "true",
      // Unicode look-alikes and invalid UTF-8.
      "\xd0\xb0"
      "dmin",                                              // Cyrillic a
      "r\xd0\xbe\xd0\xbet",                                // Cyrillic o o
      "\xef\xbd\x92\xef\xbd\x8f\xef\xbd\x8f\xef\xbd\x94",  // fullwidth root
      "root\xe2\x80\x8b",                                  // zero-width space
      "\xe2\x80\xaeroot",                                  // right-to-left override
      "svc\xc2\xa0"
      "app",        // no-break space
      "e\xcc\x81",  // combining acute
      "\xc4\xb1",   // dotless i
      "\xf0\x9d\x90\xab"
      "oot",           // mathematical bold r
      "\xe2\x80\xa8",  // line separator
      "\xff\xfe",
      "\xc0\xaf",
      "\xed\xa0\x80",
      "\xf4\x90\x80\x80",
      "\xe2\x28\xa1",
      // Sizes.
      "",
      " ",
      std::string(33, 'a'),
      std::string(256, 'a'),
      std::string(257, 'b'),
      std::string(4097, 'c'),
      std::string(65536, 'a'),
      std::string(65536, '\n'),
      [] {
        std::string s;
        while (s.size() < 65536) s += "../";
        return s;
      }(),
  };
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& v) {
    if (seen.insert(v).second) out.push_back(v);
  };
  seen.insert("svc-app");  // the one valid, existing name: not hostile
  for (const auto& v : base) add(v);
  // The same, glued to a valid name: the checks must look at the whole value.
  for (const auto& v : base) {
    if (v.size() > 300) continue;
    add("svc-app" + v);
    add(v + "svc-app");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Connector>> Make(const writeback::v1::ConnectorInstanceConfig& c) {
  Registry registry;
  RegisterBuiltinConnectors(registry);
  return registry.Create(c);
}

// The lines of `after` that are not in `before` (and the reverse), short.
std::string Diff(const std::string& before, const std::string& after) {
  std::vector<std::string> b = absl::StrSplit(before, '\n');
  std::vector<std::string> a = absl::StrSplit(after, '\n');
  std::set<std::string> bs(b.begin(), b.end()), as(a.begin(), a.end());
  std::string out;
  for (const auto& l : a) {
    if (!bs.count(l)) absl::StrAppend(&out, "+ ", l.substr(0, 200), "\n");
  }
  for (const auto& l : b) {
    if (!as.count(l)) absl::StrAppend(&out, "- ", l.substr(0, 200), "\n");
  }
  return out;
}

// Every result a connector returns must survive the wire (proto3 strings
// must be valid UTF-8).
template <typename M>
void ExpectWireSafe(const M& m) {
  std::string bytes;
  ASSERT_TRUE(m.SerializeToString(&bytes));
  M back;
  EXPECT_TRUE(back.ParseFromString(bytes)) << "not valid on the wire";
}

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = HostRoot::Create();
    ASSERT_TRUE(r.ok()) << r.status();
    root_ = std::move(*r);
    sandbox_ = root_->dir();
    ASSERT_TRUE(root_->AddGroup("deploy").ok());
    ASSERT_TRUE(root_->AddUser({.name = "svc-app", .groups = {"deploy"}}).ok());
    // Tools: every one is the recorder.
    tools_ = sandbox_ + "/tools";
    ASSERT_TRUE(fs::MakeDirs(tools_, 0755).ok());
    for (const char* t :
         {"usermod", "chage", "gpasswd", "userdel", "visudo", "cvtsudoers", "sudo"}) {
      ASSERT_EQ(::symlink(WB_ARGV_RECORDER, (tools_ + "/" + t).c_str()), 0) << t;
    }
    // sudoers.d with a drop-in; secret files; files outside every target.
    sudoers_dir_ = root_->etc() + "/sudoers.d";
    ASSERT_TRUE(fs::MakeDirs(sudoers_dir_, 0755).ok());
    ASSERT_TRUE(fs::WriteFileAtomic(sudoers_dir_ + "/deploy",
                                    "svc-app ALL=(root) NOPASSWD: /usr/bin/systemctl restart app\n",
                                    {.mode = 0440})
                    .ok());
    secrets_ = sandbox_ + "/secrets";
    ASSERT_TRUE(fs::MakeDirs(secrets_ + "/config", 0755).ok());
    ASSERT_TRUE(fs::WriteFileAtomic(secrets_ + "/.env", "DB_PASSWORD=s3cret\nPORT=1\n").ok());
    ASSERT_TRUE(
        fs::WriteFileAtomic(secrets_ + "/config/app.json", "{\"db\": {\"password\": \"s3cret\"}}\n")
            .ok());
    ASSERT_TRUE(
        fs::WriteFileAtomic(secrets_ + "/credentials", "[ci]\naws_secret_access_key = s3cret\n")
            .ok());
    ASSERT_TRUE(fs::MakeDirs(sandbox_ + "/outside", 0755).ok());
    ASSERT_TRUE(fs::WriteFileAtomic(sandbox_ + "/outside/keep.env", "DB_PASSWORD=keep\n").ok());
    ASSERT_EQ(::symlink((sandbox_ + "/outside").c_str(), (secrets_ + "/link").c_str()), 0);

    writeback::v1::ConnectorInstanceConfig posix;
    posix.set_name("hostile-posix");
    posix.set_type("posix_account");
    posix.mutable_posix_account()->set_root(root_->root());
    posix.mutable_posix_account()->set_tools_dir(tools_);
    writeback::v1::ConnectorInstanceConfig sudo;
    sudo.set_name("hostile-sudo");
    sudo.set_type("sudoers");
    sudo.mutable_sudoers()->set_sudoers_dir(sudoers_dir_);
    sudo.mutable_sudoers()->set_tools_dir(tools_);
    writeback::v1::ConnectorInstanceConfig secret;
    secret.set_name("hostile-secret");
    secret.set_type("secret_file");
    secret.mutable_secret_file()->add_allowed_roots(secrets_);
    for (auto* c : {&posix, &sudo, &secret}) {
      auto made = Make(*c);
      ASSERT_TRUE(made.ok()) << made.status();
      connectors_[c->type()] = std::move(*made);
    }
    auto snap = Snap();
    ASSERT_TRUE(snap.ok()) << snap.status();
    before_ = *snap;
    values_ = HostileValues(sandbox_);
    ASSERT_GE(values_.size(), 200u);
    RecordProperty("hostile_values", static_cast<int>(values_.size()));
  }

  absl::StatusOr<std::string> Snap() { return TreeSnapshot(sandbox_, {"tools/calls.log"}); }

  std::vector<std::string> Calls() {
    auto log = fs::ReadFile(tools_ + "/calls.log");
    if (!log.ok()) return {};
    return absl::StrSplit(*log, '\n', absl::SkipEmpty());
  }

  // Feeds every hostile value through `mutate` into `base` and runs
  // PlanChange, Verify and Apply. Returns how many values were refused.
  int Feed(Connector& c, const Action& base, const std::string& param,
           const std::function<void(Action&, const std::string&)>& mutate) {
    auto valid_plan = c.PlanChange(ctx_, base);
    EXPECT_TRUE(valid_plan.ok()) << param << ": " << valid_plan.status();
    int refused = 0;
    for (const auto& v : values_) {
      SCOPED_TRACE(
          absl::StrCat(c.type(), " ", param, " = '", v.substr(0, 80), "' (", v.size(), " bytes)"));
      Action a = base;
      mutate(a, v);
      auto plan = c.PlanChange(ctx_, a);
      if (plan.ok()) {
        EXPECT_TRUE(plan->no_change())
            << "a hostile value found something to change: " << plan->summary();
        ExpectWireSafe(*plan);
      } else {
        ++refused;
        EXPECT_NE(plan.status().code(), absl::StatusCode::kInternal) << plan.status();
        EXPECT_NE(plan.status().code(), absl::StatusCode::kUnknown) << plan.status();
      }
      auto v1 = c.Verify(ctx_, a);
      if (v1.ok()) ExpectWireSafe(*v1);
      for (const auto* p :
           {plan.ok() ? &*plan : nullptr, valid_plan.ok() ? &*valid_plan : nullptr}) {
        if (p == nullptr) continue;
        auto applied = c.Apply(ctx_, a, *p);
        if (applied.ok()) {
          EXPECT_EQ(applied->changes_size(), 0) << "Apply changed something";
        }
      }
    }
    return refused;
  }

  std::unique_ptr<HostRoot> root_;
  std::string sandbox_, tools_, sudoers_dir_, secrets_, before_;
  std::map<std::string, std::unique_ptr<Connector>> connectors_;
  std::vector<std::string> values_;
  FakeClock clock_;
  CallContext ctx_{.deadline = absl::InfiniteFuture(), .clock = &clock_};
};

Action PosixAct(const std::string& op) {
  Action a;
  a.operation = op;
  a.object = "svc-app";
  a.params.mutable_posix_account();
  if (op == "remove_group") a.params.mutable_posix_account()->set_group("no-such-group");
  return a;
}

TEST_F(HostileInputTest, PosixAccount) {
  Connector& c = *connectors_["posix_account"];
  // Valid bases that change nothing, so only a hostile value could.
  ASSERT_TRUE(root_->Tool("usermod", {"-L", "svc-app"}).ok());
  ASSERT_TRUE(root_->Tool("usermod", {"-s", "/usr/sbin/nologin", "svc-app"}).ok());
  auto snap = Snap();
  ASSERT_TRUE(snap.ok());
  before_ = *snap;
  int refused = 0, total = 0;
  auto feed = [&](const Action& base, const std::string& param, auto mutate) {
    refused += Feed(c, base, param, mutate);
    total += static_cast<int>(values_.size());
  };
  feed(PosixAct("lock"), "target", [](Action& a, const std::string& v) { a.object = v; });
  feed(PosixAct("set_shell"), "shell",
       [](Action& a, const std::string& v) { a.params.mutable_posix_account()->set_shell(v); });
  feed(PosixAct("remove_group"), "group",
       [](Action& a, const std::string& v) { a.params.mutable_posix_account()->set_group(v); });
  feed(PosixAct("lock"), "operation", [](Action& a, const std::string& v) { a.operation = v; });
  EXPECT_GT(refused, total * 9 / 10);
  EXPECT_EQ(Diff(before_, Snap().value_or("")), "") << "a file in the sandbox changed";
  EXPECT_THAT(Calls(), ::testing::IsEmpty()) << "a tool ran";
}

TEST_F(HostileInputTest, Sudoers) {
  Connector& c = *connectors_["sudoers"];
  Action remove_file;
  remove_file.operation = "remove_file";
  remove_file.object = "no-such-file";
  remove_file.params.mutable_sudoers();
  Action remove_rules;
  remove_rules.operation = "remove_user_rules";
  remove_rules.object = "deploy";
  remove_rules.params.mutable_sudoers()->set_user("nobody-here");
  Feed(c, remove_file, "target", [](Action& a, const std::string& v) { a.object = v; });
  Feed(c, remove_rules, "user",
       [](Action& a, const std::string& v) { a.params.mutable_sudoers()->set_user(v); });
  Feed(c, remove_file, "operation", [](Action& a, const std::string& v) { a.operation = v; });
  EXPECT_EQ(Diff(before_, Snap().value_or("")), "") << "a file in the sandbox changed";
  // Only Verify's cvtsudoers runs, on a scratch copy of the drop-in, for
  // user names that passed validation (values glued to a valid name, like
  // "svc-app-rf", are valid names: handled literally, found nowhere).
  EXPECT_FALSE(Calls().empty()) << "expected cvtsudoers runs for the valid names";
  for (const auto& call : Calls()) {
    SCOPED_TRACE(call);
    EXPECT_TRUE(absl::StartsWith(call, "cvtsudoers -f sudoers -m user=")) << call;
    const std::string user(absl::string_view(call).substr(30, call.find_first_of(", ", 30) - 30));
    EXPECT_TRUE(actions::ValidatePosixUserName("user", user).ok()) << user;
    EXPECT_THAT(call, ::testing::HasSubstr(" -- /"));
    EXPECT_THAT(call, ::testing::Not(::testing::HasSubstr(sudoers_dir_)));
  }
}

TEST_F(HostileInputTest, SecretFile) {
  Connector& c = *connectors_["secret_file"];
  auto act = [&](const std::string& op, const std::string& file) {
    Action a;
    a.operation = op;
    a.object = secrets_ + "/" + file;
    auto* p = a.params.mutable_secret_file();
    if (op == "remove_env_key") p->set_key("NOT_THERE");
    if (op == "remove_ini_key") {
      p->set_section("ci");
      p->set_key("not_there");
    }
    if (op == "remove_ini_section") p->set_section("not-there");
    if (op == "remove_json_path") {
      p->add_json_path("db");
      p->add_json_path("not_there");
    }
    return a;
  };
  Feed(c, act("delete_file", "no-such-file"), "target",
       [](Action& a, const std::string& v) { a.object = v; });
  Feed(c, act("remove_env_key", ".env"), "target(relative)",
       [this](Action& a, const std::string& v) { a.object = secrets_ + "/" + v; });
  Feed(c, act("remove_env_key", ".env"), "key",
       [](Action& a, const std::string& v) { a.params.mutable_secret_file()->set_key(v); });
  Feed(c, act("remove_ini_key", "credentials"), "key(ini)",
       [](Action& a, const std::string& v) { a.params.mutable_secret_file()->set_key(v); });
  Feed(c, act("remove_ini_key", "credentials"), "section(ini key)",
       [](Action& a, const std::string& v) { a.params.mutable_secret_file()->set_section(v); });
  Feed(c, act("remove_ini_section", "credentials"), "section",
       [](Action& a, const std::string& v) { a.params.mutable_secret_file()->set_section(v); });
  Feed(
      c, act("remove_json_path", "config/app.json"), "json_path[0]",
      [](Action& a, const std::string& v) { a.params.mutable_secret_file()->set_json_path(0, v); });
  Feed(
      c, act("remove_json_path", "config/app.json"), "json_path[1]",
      [](Action& a, const std::string& v) { a.params.mutable_secret_file()->set_json_path(1, v); });
  Feed(c, act("delete_file", "no-such-file"), "operation",
       [](Action& a, const std::string& v) { a.operation = v; });
  EXPECT_EQ(Diff(before_, Snap().value_or("")), "") << "a file in the sandbox changed";
  EXPECT_THAT(Calls(), ::testing::IsEmpty()) << "a tool ran";
}

// Hostile content in the target files themselves is handled literally too.
TEST_F(HostileInputTest, KeysThatLookLikeCommandsAreRemovedLiterally) {
  Connector& c = *connectors_["secret_file"];
  ASSERT_TRUE(fs::WriteFileAtomic(secrets_ + "/odd.json",
                                  "{\"$(touch x)\": 1, \"; rm -rf /\": 2, \"../x\": 3}")
                  .ok());
  Action a;
  a.operation = "remove_json_path";
  a.object = secrets_ + "/odd.json";
  a.params.mutable_secret_file()->add_json_path("; rm -rf /");
  auto plan = c.PlanChange(ctx_, a);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_FALSE(plan->no_change());
  ASSERT_TRUE(c.Apply(ctx_, a, *plan).ok());
  EXPECT_EQ(fs::ReadFile(secrets_ + "/odd.json").value_or(""), "{\"$(touch x)\":1,\"../x\":3}");
  EXPECT_THAT(Calls(), ::testing::IsEmpty());
}

// The recorder is not vacuous: a real change runs exactly the tool meant.
TEST_F(HostileInputTest, PositiveControlTheRecorderSeesRealCommands) {
  Connector& c = *connectors_["posix_account"];
  auto plan = c.PlanChange(ctx_, PosixAct("lock"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto applied = c.Apply(ctx_, PosixAct("lock"), *plan);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_THAT(Calls(),
              ::testing::ElementsAre(absl::StrCat("usermod -P ", root_->root(), " -L -- svc-app")));
  auto v = c.Verify(ctx_, PosixAct("lock"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_VERIFIED);
}

}  // namespace
}  // namespace wb::connectors
