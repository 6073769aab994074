#include "connectors/sudoers/sudoers.h"

#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "connectors/registry.h"
#include "connectors/testing/contract_suite.h"
#include "connectors/testing/host/mount_ns.h"
#include "connectors/testing/host/sandbox.h"
#include "connectors/testing/run_program.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::connectors {
namespace {

using testing::ConnectorContractTest;
using testing::ContractCase;
using testing::ContractCaseName;
using testing::ContractFixture;
using ::testing::HasSubstr;
using testing::StalePlanPolicy;
using testing::host::EtcOverlay;
using testing::host::HostRoot;

constexpr char kDropIn[] =
    "# deploy grants, managed by hand\n"
    "svc-app ALL=(root) NOPASSWD: /usr/bin/systemctl restart app, \\\n"
    "    /usr/bin/systemctl status app\n"
    "bob, svc-app ALL = (ALL) /bin/ls\n"
    "User_Alias OPS = svc-app, carol\n"
    "OPS ALL = /bin/df\n"
    "Defaults:svc-app !requiretty\n";

constexpr char kDropInWithoutSvc[] =
    "# deploy grants, managed by hand\n"
    "bob ALL = (ALL) /bin/ls\n"
    "User_Alias OPS = carol\n"
    "OPS ALL = /bin/df\n"
    "Defaults:svc-app !requiretty\n";

writeback::v1::ConnectorInstanceConfig Config(const std::string& dir) {
  writeback::v1::ConnectorInstanceConfig cfg;
  cfg.set_name("sudo");
  cfg.set_type("sudoers");
  cfg.add_allowed_operations("remove_file");
  cfg.add_allowed_operations("remove_user_rules");
  cfg.mutable_sudoers()->set_sudoers_dir(dir);
  return cfg;
}

absl::StatusOr<std::unique_ptr<Connector>> Make(const writeback::v1::ConnectorInstanceConfig& c) {
  Registry registry;
  RegisterBuiltinConnectors(registry);
  return registry.Create(c);
}

Action RemoveFile(const std::string& file) {
  Action a;
  a.operation = "remove_file";
  a.object = file;
  a.params.mutable_sudoers();
  return a;
}

Action RemoveUserRules(const std::string& file, const std::string& user) {
  Action a;
  a.operation = "remove_user_rules";
  a.object = file;
  a.params.mutable_sudoers()->set_user(user);
  return a;
}

const writeback::v1::Observation* Find(const writeback::v1::Verification& v,
                                       const std::string& check) {
  for (const auto& o : v.after()) {
    if (o.check() == check) return &o;
  }
  return nullptr;
}

class SudoersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = HostRoot::Create();
    ASSERT_TRUE(r.ok()) << r.status();
    root_ = std::move(*r);
    dir_ = root_->etc() + "/sudoers.d";
    ASSERT_TRUE(fs::MakeDirs(dir_, 0755).ok());
    ASSERT_TRUE(Put("deploy", kDropIn).ok());
    auto c = Make(Config(dir_));
    ASSERT_TRUE(c.ok()) << c.status();
    connector_ = std::move(*c);
  }
  absl::Status Put(const std::string& name, const std::string& content, mode_t mode = 0440) {
    return fs::WriteFileAtomic(dir_ + "/" + name, content, {.mode = mode, .uid = 0, .gid = 0});
  }
  std::string Get(const std::string& name) {
    auto c = fs::ReadFile(dir_ + "/" + name);
    return c.ok() ? *c : "<missing>";
  }
  writeback::v1::Verification Run(const Action& a) {
    auto plan = connector_->PlanChange(ctx_, a);
    EXPECT_TRUE(plan.ok()) << plan.status();
    if (!plan.ok()) return {};
    auto applied = connector_->Apply(ctx_, a, *plan);
    EXPECT_TRUE(applied.ok()) << applied.status();
    auto v = connector_->Verify(ctx_, a);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : writeback::v1::Verification{};
  }

  std::unique_ptr<HostRoot> root_;
  std::string dir_;
  std::unique_ptr<Connector> connector_;
  FakeClock clock_;
  CallContext ctx_{.deadline = absl::InfiniteFuture(), .clock = &clock_};
};

TEST_F(SudoersTest, RemoveUserRulesEditsOnlyThatUsersRules) {
  auto plan = connector_->PlanChange(ctx_, RemoveUserRules("deploy", "svc-app"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->no_change());
  EXPECT_EQ(plan->changes_size(), 3);
  EXPECT_THAT(plan->state(), HasSubstr("before_content_base64"));
  auto v = Run(RemoveUserRules("deploy", "svc-app"));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
  EXPECT_EQ(Get("deploy"), kDropInWithoutSvc);
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/deploy").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0440u);
  EXPECT_EQ(st.st_uid, 0u);
  ASSERT_NE(Find(v, "cvtsudoers_dropin"), nullptr);
  EXPECT_EQ(Find(v, "cvtsudoers_dropin")->facts().at("matching_rules"), "0");
  EXPECT_THAT(v.detail(), HasSubstr("checks: parse_dropin, cvtsudoers_dropin"));
  EXPECT_THAT(v.detail(), HasSubstr("sudo -l not used"));
}

TEST_F(SudoersTest, RemoveFileDeletesTheDropIn) {
  ASSERT_TRUE(Put("other", "bob ALL = /bin/ls\n").ok());
  auto v = Run(RemoveFile("deploy"));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
  EXPECT_EQ(Get("deploy"), "<missing>");
  EXPECT_EQ(Get("other"), "bob ALL = /bin/ls\n");
  auto again = connector_->PlanChange(ctx_, RemoveFile("deploy"));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->no_change());
}

TEST_F(SudoersTest, AGrantThroughAllIsReportedAsStillThere) {
  ASSERT_TRUE(Put("wide", "svc-app ALL = /bin/ls\nALL ALL = (root) /usr/bin/id\n").ok());
  auto plan = connector_->PlanChange(ctx_, RemoveUserRules("wide", "svc-app"));
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(plan->summary(), HasSubstr("indirectly"));
  auto v = Run(RemoveUserRules("wide", "svc-app"));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_FAILED) << v.detail();
  EXPECT_THAT(v.detail(), HasSubstr("sudo still matches it through: ALL ALL = (root) /usr/bin/id"));
  EXPECT_EQ(Get("wide"), "ALL ALL = (root) /usr/bin/id\n");
}

TEST_F(SudoersTest, ADropInThatVisudoRejectsIsNotTouched) {
  const std::string broken = "svc-app ALL = (ALL) NOPASSWD ALL\n";  // missing ':'
  ASSERT_TRUE(Put("broken", broken).ok());
  auto plan = connector_->PlanChange(ctx_, RemoveUserRules("broken", "svc-app"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto applied = connector_->Apply(ctx_, RemoveUserRules("broken", "svc-app"), *plan);
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition) << applied.status();
  EXPECT_THAT(applied.status().message(), HasSubstr("visudo"));
  EXPECT_EQ(Get("broken"), broken);
}

TEST_F(SudoersTest, RefusesASymlinkedDropIn) {
  ASSERT_TRUE(Put("real", kDropIn).ok());
  ASSERT_EQ(::symlink((dir_ + "/real").c_str(), (dir_ + "/link").c_str()), 0);
  auto plan = connector_->PlanChange(ctx_, RemoveFile("link"));
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition) << plan.status();
  EXPECT_EQ(Get("real"), kDropIn);
}

// Re-verification (docs/connectors/sudoers.md, "Re-verification: drift or
// cannot tell"). The connector never reads through a symlinked drop-in for
// an edit, but sudo follows one: when what it reaches passes sudo's
// ownership check, the drop-in is back (drift), not "cannot tell".
TEST_F(SudoersTest, ADropInBackAsASymlinkSudoFollowsIsDrift) {
  ASSERT_EQ(Run(RemoveFile("deploy")).outcome(), writeback::v1::OUTCOME_VERIFIED);
  const std::string outside = root_->dir() + "/elsewhere";
  ASSERT_TRUE(fs::WriteFileAtomic(outside, kDropIn, {.mode = 0440, .uid = 0, .gid = 0}).ok());
  ASSERT_EQ(::symlink(outside.c_str(), (dir_ + "/deploy").c_str()), 0);

  auto v = connector_->Verify(ctx_, RemoveFile("deploy"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();
  EXPECT_THAT(v->detail(), HasSubstr("is a symbolic link to '" + outside + "'"));
  EXPECT_THAT(v->detail(), HasSubstr("the drop-in is back"));
  const auto* obs = Find(*v, "stat_dropin_as_sudo");
  ASSERT_NE(obs, nullptr);
  EXPECT_EQ(obs->facts().at("symlink_target"), outside);
  EXPECT_EQ(obs->facts().at("mode"), "0440");
  // Group-writable is fine for sudo when the group is root's.
  ASSERT_EQ(::chmod(outside.c_str(), 0460), 0);
  v = connector_->Verify(ctx_, RemoveFile("deploy"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();

  // What sudo refuses to read grants nothing now, but the name is not gone
  // either: the connector cannot tell, and the read error stands.
  struct Refused {
    const char* why;
    uid_t uid;
    gid_t gid;
    mode_t mode;
  };
  for (const Refused& r :
       {Refused{"owned by another user", 1000, 0, 0440}, Refused{"world-writable", 0, 0, 0442},
        Refused{"group-writable, group not root", 0, 100, 0460}}) {
    SCOPED_TRACE(r.why);
    ASSERT_EQ(::chown(outside.c_str(), r.uid, r.gid), 0);
    ASSERT_EQ(::chmod(outside.c_str(), r.mode), 0);
    v = connector_->Verify(ctx_, RemoveFile("deploy"));
    EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();
    EXPECT_THAT(v.status().message(), HasSubstr("symbolic link"));
  }
  ASSERT_EQ(::unlink((dir_ + "/deploy").c_str()), 0);
  const std::string fifo = root_->dir() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& to : {fifo, root_->dir() + "/nothing"}) {
    SCOPED_TRACE(to);
    ASSERT_EQ(::symlink(to.c_str(), (dir_ + "/deploy").c_str()), 0);
    v = connector_->Verify(ctx_, RemoveFile("deploy"));
    EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();
    ASSERT_EQ(::unlink((dir_ + "/deploy").c_str()), 0);
  }
  // The connector still refuses to edit through the link.
  ASSERT_EQ(::symlink(outside.c_str(), (dir_ + "/deploy").c_str()), 0);
  EXPECT_EQ(connector_->PlanChange(ctx_, RemoveFile("deploy")).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(SudoersTest, RulesForTheUserBehindASymlinkSudoFollowsAreDrift) {
  const Action a = RemoveUserRules("deploy", "svc-app");
  ASSERT_EQ(Run(a).outcome(), writeback::v1::OUTCOME_VERIFIED);
  const std::string outside = root_->dir() + "/elsewhere";
  ASSERT_EQ(::unlink((dir_ + "/deploy").c_str()), 0);
  ASSERT_EQ(::symlink(outside.c_str(), (dir_ + "/deploy").c_str()), 0);

  // The user named again.
  ASSERT_TRUE(fs::WriteFileAtomic(outside, kDropIn, {.mode = 0440, .uid = 0, .gid = 0}).ok());
  auto v = connector_->Verify(ctx_, a);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();
  EXPECT_THAT(v->detail(), HasSubstr("still names svc-app 3 times"));
  EXPECT_EQ(Find(*v, "stat_dropin_as_sudo")->facts().at("direct_references"), "3");

  // Matched by sudo's parser without being named.
  ASSERT_TRUE(fs::WriteFileAtomic(outside, "ALL ALL = (root) /usr/bin/id\n",
                                  {.mode = 0440, .uid = 0, .gid = 0})
                  .ok());
  v = connector_->Verify(ctx_, a);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();
  EXPECT_THAT(v->detail(), HasSubstr("sudo still matches svc-app there through: ALL ALL"));
  ASSERT_NE(Find(*v, "cvtsudoers_dropin"), nullptr);

  // Nothing for the user behind the link: read through a link that can be
  // swapped, so no VERIFIED either — cannot tell.
  ASSERT_TRUE(
      fs::WriteFileAtomic(outside, kDropInWithoutSvc, {.mode = 0440, .uid = 0, .gid = 0}).ok());
  v = connector_->Verify(ctx_, a);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();

  // A grant sudo would not read (not root's): cannot tell.
  ASSERT_TRUE(fs::WriteFileAtomic(outside, kDropIn, {.mode = 0440, .uid = 1000, .gid = 0}).ok());
  v = connector_->Verify(ctx_, a);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();
}

// sudo (1.9.4+) skips a line with a syntax error and honours the rest;
// cvtsudoers refuses the whole file. A grant that only sudo's parser can
// attribute to the user (here through ALL) next to a broken line is
// therefore "cannot tell" (UNVERIFIED), not VERIFIED; a line that names
// the user is FAILED whatever else the file holds.
TEST_F(SudoersTest, ASyntaxErrorElsewhereMakesAnIndirectGrantCannotTell) {
  const Action a = RemoveUserRules("deploy", "svc-app");
  ASSERT_EQ(Run(a).outcome(), writeback::v1::OUTCOME_VERIFIED);
  ASSERT_TRUE(Put("deploy", "bob ALL = (ALL) NOPASSWD ALL\nALL ALL = (root) /usr/bin/id\n").ok());
  auto v = connector_->Verify(ctx_, a);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_UNVERIFIED) << v->detail();
  EXPECT_THAT(v->detail(), HasSubstr("sudo's parser could not confirm it"));
  ASSERT_TRUE(Put("deploy", "bob ALL = (ALL) NOPASSWD ALL\nsvc-app ALL = /bin/ls\n").ok());
  v = connector_->Verify(ctx_, a);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();
}

TEST_F(SudoersTest, ADropInOverTheSizeLimit) {
  ASSERT_EQ(Run(RemoveFile("deploy")).outcome(), writeback::v1::OUTCOME_VERIFIED);
  // sudo reads a drop-in of any size; the connector reads at most 1 MiB.
  const std::string big = absl::StrCat(kDropIn, "#", std::string(1 << 20, 'x'), "\n");
  ASSERT_TRUE(Put("deploy", big).ok());
  auto v = connector_->Verify(ctx_, RemoveFile("deploy"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();
  EXPECT_THAT(v->detail(), HasSubstr("is larger than 1048576 bytes"));
  // Whether it still grants the user cannot be read: cannot tell.
  auto rules = connector_->Verify(ctx_, RemoveUserRules("deploy", "svc-app"));
  EXPECT_EQ(rules.status().code(), absl::StatusCode::kFailedPrecondition) << rules.status();
  EXPECT_THAT(rules.status().message(), HasSubstr("larger than"));
}

TEST_F(SudoersTest, RefusesNamesSudoWouldIgnore) {
  for (const char* name : {"deploy.bak", "deploy~x.y", "../sudoers", "a/b", ".hidden", ""}) {
    auto plan = connector_->PlanChange(ctx_, RemoveFile(name));
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  auto plan = connector_->PlanChange(ctx_, RemoveFile("deploy.bak"));
  EXPECT_THAT(plan.status().message(), HasSubstr("sudo ignores such files"));
}

TEST(SudoersConfigTest, RejectsBadConfig) {
  auto cfg = Config("relative");
  EXPECT_THAT(Make(cfg).status().message(), HasSubstr("connectors[sudo].sudoers.sudoers_dir"));
  cfg = Config("/etc/../tmp");
  EXPECT_EQ(Make(cfg).status().code(), absl::StatusCode::kInvalidArgument);
  cfg = Config("/tmp");
  cfg.clear_sudoers();
  EXPECT_EQ(Make(cfg).status().code(), absl::StatusCode::kInvalidArgument);
  cfg = Config("/tmp");
  cfg.mutable_sudoers()->set_tools_dir("sbin");
  EXPECT_THAT(Make(cfg).status().message(), HasSubstr("tools_dir"));
}

// In a private mount namespace whose /etc is the throwaway root's (a full
// copy of /etc), this host's sudo reads the connector's directory, so
// Verify also asks `sudo -l -U`.
class SudoersWithSudoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount namespaces)";
    auto ns = testing::host::EnterPrivateMountNamespace();
    ASSERT_TRUE(ns.ok()) << ns;
    auto r = HostRoot::Create({.full_etc = true});
    ASSERT_TRUE(r.ok()) << r.status();
    root_ = std::move(*r);
    ASSERT_TRUE(root_->AddGroup("deployers").ok());
    ASSERT_TRUE(root_->AddUser({.name = "svc-app", .groups = {"deployers"}}).ok());
    ASSERT_TRUE(root_->AddUser({.name = "bob"}).ok());
    ASSERT_TRUE(root_->AddUser({.name = "carol"}).ok());
    dir_ = root_->etc() + "/sudoers.d";
    ASSERT_TRUE(fs::WriteFileAtomic(dir_ + "/deploy", kDropIn, {.mode = 0440}).ok());
    auto overlay = EtcOverlay::Mount(root_->etc());
    ASSERT_TRUE(overlay.ok()) << overlay.status();
    overlay_ = std::move(*overlay);
    auto c = Make(Config(dir_));
    ASSERT_TRUE(c.ok());
    connector_ = std::move(*c);
  }
  void TearDown() override { overlay_.reset(); }

  std::unique_ptr<HostRoot> root_;
  std::unique_ptr<EtcOverlay> overlay_;
  std::string dir_;
  std::unique_ptr<Connector> connector_;
  CallContext ctx_;
};

TEST_F(SudoersWithSudoTest, SudoListConfirmsTheGrantIsGone) {
  auto* sudoers = dynamic_cast<SudoersConnector*>(connector_.get());
  ASSERT_NE(sudoers, nullptr);
  ASSERT_TRUE(sudoers->SudoReadsDirectory());
  const Action a = RemoveUserRules("deploy", "svc-app");
  auto plan = connector_->PlanChange(ctx_, a);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(connector_->Apply(ctx_, a, *plan).ok());
  auto v = connector_->Verify(ctx_, a);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_VERIFIED) << v->detail();
  const auto* sudo = Find(*v, "sudo_list");
  ASSERT_NE(sudo, nullptr) << v->detail();
  EXPECT_EQ(sudo->facts().at("verdict"), "no_rules") << sudo->facts().at("output");
  EXPECT_THAT(v->detail(), HasSubstr("checks: parse_dropin, cvtsudoers_dropin, sudo_list"));
}

TEST_F(SudoersWithSudoTest, AGroupGrantSeenBySudoFailsVerification) {
  ASSERT_TRUE(fs::WriteFileAtomic(dir_ + "/group",
                                  "svc-app ALL = /bin/ls\n%deployers ALL = /bin/df\n",
                                  {.mode = 0440})
                  .ok());
  const Action a = RemoveUserRules("group", "svc-app");
  auto plan = connector_->PlanChange(ctx_, a);
  ASSERT_TRUE(plan.ok());
  ASSERT_TRUE(connector_->Apply(ctx_, a, *plan).ok());
  auto v = connector_->Verify(ctx_, a);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();
  EXPECT_THAT(v->detail(), HasSubstr("%deployers"));
}

// The claim the symlink rule rests on, checked against this host's sudo: it
// follows a symlinked drop-in whose target passes its ownership check, and
// ignores one that does not; Verify agrees with it both times.
TEST_F(SudoersWithSudoTest, SudoFollowsASymlinkedDropInAndVerifyAgrees) {
  const std::string outside = root_->dir() + "/elsewhere";
  ASSERT_TRUE(fs::WriteFileAtomic(outside, "svc-app ALL = (root) /usr/bin/df\n",
                                  {.mode = 0440, .uid = 0, .gid = 0})
                  .ok());
  ASSERT_EQ(::symlink(outside.c_str(), (dir_ + "/linked").c_str()), 0);
  const Action a = RemoveUserRules("linked", "svc-app");

  auto listed = testing::RunProgram({"sudo", "-n", "-l", "-U", "svc-app"});
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_THAT(listed->out, HasSubstr("/usr/bin/df")) << listed->out << listed->err;
  auto v = connector_->Verify(ctx_, a);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();

  ASSERT_EQ(::chown(outside.c_str(), 1000, 0), 0);
  listed = testing::RunProgram({"sudo", "-n", "-l", "-U", "svc-app"});
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_THAT(listed->out + listed->err, ::testing::Not(HasSubstr("/usr/bin/df")));
  EXPECT_THAT(listed->err, HasSubstr("is owned by uid 1000"));
  EXPECT_EQ(connector_->Verify(ctx_, a).status().code(), absl::StatusCode::kFailedPrecondition);
}

// ---- The shared contract suite. ----

// Stale plans: the plan is bound to the drop-in's SHA-256; any change behind
// it makes Apply refuse with FAILED_PRECONDITION and write nothing.
class SudoersFixture : public ContractFixture {
 public:
  explicit SudoersFixture(Action a) : action_(std::move(a)) {}
  absl::StatusOr<std::unique_ptr<Connector>> MakeConnector() override {
    auto r = HostRoot::Create();
    if (!r.ok()) return r.status();
    root_ = std::move(*r);
    dir_ = root_->etc() + "/sudoers.d";
    if (auto s = fs::MakeDirs(dir_, 0755); !s.ok()) return s;
    return Make(Config(dir_));
  }
  absl::Status Arrange() override {
    return fs::WriteFileAtomic(dir_ + "/deploy", kDropIn, {.mode = 0440});
  }
  Action EffectiveAction() override { return action_; }
  std::vector<std::pair<std::string, Action>> MalformedActions() override {
    std::vector<std::pair<std::string, Action>> out;
    auto with = [&](const std::string& name, auto mutate) {
      Action a = action_;
      mutate(a);
      out.emplace_back(name, a);
    };
    with("unknown_operation", [](Action& a) { a.operation = "remove_everything"; });
    with("missing_params", [](Action& a) { a.params.Clear(); });
    with("file_dotdot", [](Action& a) { a.object = "../sudoers"; });
    with("file_with_dot", [](Action& a) { a.object = "deploy.bak"; });
    with("file_slash", [](Action& a) { a.object = "sub/deploy"; });
    with("file_empty", [](Action& a) { a.object = ""; });
    with("file_shell", [](Action& a) { a.object = "deploy;rm"; });
    with("user_on_remove_file", [](Action& a) {
      a.operation = "remove_file";
      a.params.mutable_sudoers()->set_user("svc-app");
    });
    with("no_user", [](Action& a) {
      a.operation = "remove_user_rules";
      a.params.mutable_sudoers()->clear_user();
    });
    with("bad_user", [](Action& a) {
      a.operation = "remove_user_rules";
      a.params.mutable_sudoers()->set_user("%admins");
    });
    return out;
  }
  absl::StatusOr<std::string> Snapshot() override {
    return testing::host::TreeSnapshot(root_->root());
  }
  absl::Status ChangeTargetBehindPlan() override {
    return fs::WriteFileAtomic(dir_ + "/deploy", absl::StrCat(kDropIn, "# edited\n"),
                               {.mode = 0440});
  }
  StalePlanPolicy stale_plan_policy() const override {
    return StalePlanPolicy::kFailedPrecondition;
  }

 private:
  Action action_;
  std::unique_ptr<HostRoot> root_;
  std::string dir_;
};

INSTANTIATE_TEST_SUITE_P(Sudoers, ConnectorContractTest,
                         ::testing::Values(ContractCase{"remove_file",
                                                        [] {
                                                          return std::make_unique<SudoersFixture>(
                                                              RemoveFile("deploy"));
                                                        }},
                                           ContractCase{"remove_user_rules",
                                                        [] {
                                                          return std::make_unique<SudoersFixture>(
                                                              RemoveUserRules("deploy", "svc-app"));
                                                        }}),
                         ContractCaseName);

}  // namespace
}  // namespace wb::connectors
