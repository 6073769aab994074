#include "connectors/posix_account/posix_account.h"

#include <sys/stat.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/fs/fs.h"
#include "connectors/posix_account/account_db.h"
#include "connectors/registry.h"
#include "connectors/testing/contract_suite.h"
#include "connectors/testing/host/sandbox.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::connectors {
namespace {

using testing::ConnectorContractTest;
using testing::ContractCase;
using testing::ContractCaseName;
using testing::ContractFixture;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::StalePlanPolicy;
using testing::host::HostRoot;

writeback::v1::ConnectorInstanceConfig Config(const std::string& root) {
  writeback::v1::ConnectorInstanceConfig cfg;
  cfg.set_name("accounts");
  cfg.set_type("posix_account");
  for (const char* op : {"lock", "expire", "set_shell", "remove_group", "delete"}) {
    cfg.add_allowed_operations(op);
  }
  cfg.mutable_posix_account()->set_root(root);
  return cfg;
}

absl::StatusOr<std::unique_ptr<Connector>> Make(const writeback::v1::ConnectorInstanceConfig& cfg) {
  Registry registry;
  RegisterBuiltinConnectors(registry);
  return registry.Create(cfg);
}

Action Act(const std::string& op, const std::string& user) {
  Action a;
  a.operation = op;
  a.object = user;
  a.params.mutable_posix_account();
  return a;
}

Action RemoveGroup(const std::string& user, const std::string& group) {
  Action a = Act("remove_group", user);
  a.params.mutable_posix_account()->set_group(group);
  return a;
}

Action SetShell(const std::string& user, const std::string& shell = "") {
  Action a = Act("set_shell", user);
  a.params.mutable_posix_account()->set_shell(shell);
  return a;
}

Action Delete(const std::string& user, bool keep_home) {
  Action a = Act("delete", user);
  a.params.mutable_posix_account()->set_keep_home(keep_home);
  return a;
}

posix::AccountView Read(const HostRoot& root, const std::string& user) {
  auto files = posix::ReadAccountFiles(root.root());
  EXPECT_TRUE(files.ok()) << files.status();
  return files.ok() ? posix::DescribeAccount(*files, user) : posix::AccountView{};
}

class PosixAccountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = HostRoot::Create();
    ASSERT_TRUE(r.ok()) << r.status();
    root_ = std::move(*r);
    ASSERT_TRUE(root_->AddGroup("deploy").ok());
    ASSERT_TRUE(root_->AddUser({.name = "svc-app", .groups = {"deploy", "users"}}).ok());
    ASSERT_TRUE(root_->AddUser({.name = "alice"}).ok());
    auto c = Make(Config(root_->root()));
    ASSERT_TRUE(c.ok()) << c.status();
    connector_ = std::move(*c);
  }

  // Plan, apply, verify; returns the verification.
  writeback::v1::Verification Run(const Action& a) {
    auto plan = connector_->PlanChange(ctx_, a);
    EXPECT_TRUE(plan.ok()) << plan.status();
    if (!plan.ok()) return {};
    auto applied = connector_->Apply(ctx_, a, *plan);
    EXPECT_TRUE(applied.ok()) << applied.status();
    auto v = connector_->Verify(ctx_, a);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : writeback::v1::Verification();
  }

  std::unique_ptr<HostRoot> root_;
  std::unique_ptr<Connector> connector_;
  FakeClock clock_;
  CallContext ctx_{.deadline = absl::InfiniteFuture(), .clock = &clock_};
};

TEST_F(PosixAccountTest, LockLocksThePasswordInShadowOnly) {
  ASSERT_EQ(Read(*root_, "svc-app").password, posix::PasswordState::kHash);
  const std::string passwd_before = root_->ReadEtc("passwd");
  auto v = Run(Act("lock", "svc-app"));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
  EXPECT_EQ(Read(*root_, "svc-app").password, posix::PasswordState::kLocked);
  EXPECT_EQ(Read(*root_, "alice").password, posix::PasswordState::kHash);
  EXPECT_EQ(root_->ReadEtc("passwd"), passwd_before);
  EXPECT_THAT(v.detail(), HasSubstr("does not stop SSH key logins"));
  ASSERT_GT(v.after_size(), 0);
  EXPECT_EQ(v.after(0).check(), "read_account_databases");
  EXPECT_EQ(v.after(0).facts().at("password"), "locked");
}

TEST_F(PosixAccountTest, ExpireSetsAnExpiryInThePast) {
  auto plan = connector_->PlanChange(ctx_, Act("expire", "svc-app"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->before_size(), 1);
  EXPECT_EQ(plan->before(0).facts().at("expire"), "never");
  EXPECT_EQ(plan->before(0).facts().at("expired"), "false");
  auto v = Run(Act("expire", "svc-app"));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
  const auto after = Read(*root_, "svc-app");
  EXPECT_EQ(after.expire_days, "1");
  EXPECT_TRUE(after.ExpiredOn(0 + 1));
  EXPECT_EQ(v.after(0).facts().at("expired"), "true");
  EXPECT_EQ(Read(*root_, "alice").expire_days, "");
}

TEST_F(PosixAccountTest, AFutureExpiryIsNotExpired) {
  // Day 30000 is in 2052, after the fake clock's 2027.
  ASSERT_TRUE(root_->Tool("chage", {"-E", "30000", "svc-app"}).ok());
  auto plan = connector_->PlanChange(ctx_, Act("expire", "svc-app"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->no_change());
  auto v = connector_->Verify(ctx_, Act("expire", "svc-app"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED);
  // An expiry date that passed by the clock's today is compliant.
  clock_.Set(absl::FromUnixSeconds(int64_t{30001} * 86400));
  auto later = connector_->PlanChange(ctx_, Act("expire", "svc-app"));
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(later->no_change()) << later->summary();
}

TEST_F(PosixAccountTest, SetShellDefaultsToNologinAndRecordsTheOldShell) {
  auto plan = connector_->PlanChange(ctx_, SetShell("svc-app"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->before(0).facts().at("shell"), "/bin/bash");
  EXPECT_THAT(plan->changes(0), HasSubstr("from /bin/bash to /usr/sbin/nologin"));
  EXPECT_THAT(plan->state(), HasSubstr("\"shell\":\"/bin/bash\""));
  auto v = Run(SetShell("svc-app"));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
  EXPECT_EQ(Read(*root_, "svc-app").shell, "/usr/sbin/nologin");
  auto f = Run(SetShell("alice", "/bin/false"));
  EXPECT_EQ(f.outcome(), writeback::v1::OUTCOME_VERIFIED);
  EXPECT_EQ(Read(*root_, "alice").shell, "/bin/false");
}

TEST_F(PosixAccountTest, RemoveGroupRemovesOneSupplementaryGroup) {
  ASSERT_THAT(Read(*root_, "svc-app").groups, ElementsAre("deploy", "users"));
  auto plan = connector_->PlanChange(ctx_, RemoveGroup("svc-app", "deploy"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->before(0).facts().at("groups"), "deploy,users");
  auto v = Run(RemoveGroup("svc-app", "deploy"));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
  const auto after = Read(*root_, "svc-app");
  EXPECT_THAT(after.groups, ElementsAre("users"));
  EXPECT_TRUE(after.gshadow_groups.empty() ||
              std::find(after.gshadow_groups.begin(), after.gshadow_groups.end(), "deploy") ==
                  after.gshadow_groups.end());
  // A group the user is not in, or that does not exist: nothing to do.
  auto none = connector_->PlanChange(ctx_, RemoveGroup("alice", "deploy"));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->no_change());
  auto missing = connector_->PlanChange(ctx_, RemoveGroup("alice", "no-such-group"));
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->no_change());
}

TEST_F(PosixAccountTest, RemoveGroupRefusesThePrimaryGroup) {
  auto plan = connector_->PlanChange(ctx_, RemoveGroup("svc-app", "svc-app"));
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition) << plan.status();
  EXPECT_THAT(plan.status().message(), HasSubstr("primary group"));
}

TEST_F(PosixAccountTest, DeleteRemovesAccountHomeAndMemberships) {
  const std::string home = root_->root() + "/home/svc-app";
  struct stat st;
  ASSERT_EQ(::stat(home.c_str(), &st), 0);
  auto plan = connector_->PlanChange(ctx_, Delete("svc-app", false));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->state(), HasSubstr("svc-app:x:"));           // the passwd line, for rollback
  EXPECT_THAT(plan->state(), ::testing::Not(HasSubstr("$6$")));  // never the hash
  auto v = Run(Delete("svc-app", false));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
  EXPECT_FALSE(Read(*root_, "svc-app").exists);
  EXPECT_FALSE(Read(*root_, "svc-app").has_shadow);
  EXPECT_THAT(root_->ReadEtc("group"), ::testing::Not(HasSubstr("svc-app")));
  EXPECT_NE(::stat(home.c_str(), &st), 0) << "home directory still there";
  EXPECT_TRUE(Read(*root_, "alice").exists);
}

TEST_F(PosixAccountTest, DeleteKeepingHome) {
  const std::string home = root_->root() + "/home/alice";
  auto v = Run(Delete("alice", true));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
  EXPECT_FALSE(Read(*root_, "alice").exists);
  struct stat st;
  EXPECT_EQ(::stat(home.c_str(), &st), 0) << "home directory was removed";
}

TEST_F(PosixAccountTest, DeleteRefusesASharedOrShallowHomeUnlessKept) {
  ASSERT_TRUE(root_->Tool("useradd", {"-M", "-d", "/home/alice", "bob"}).ok());
  auto shared = connector_->PlanChange(ctx_, Delete("bob", false));
  EXPECT_EQ(shared.status().code(), absl::StatusCode::kFailedPrecondition) << shared.status();
  EXPECT_THAT(shared.status().message(), HasSubstr("overlaps the home of account alice"));
  auto kept = connector_->PlanChange(ctx_, Delete("bob", true));
  EXPECT_TRUE(kept.ok()) << kept.status();

  ASSERT_TRUE(fs::MakeDirs(root_->root() + "/srv", 0755).ok());
  ASSERT_TRUE(root_->Tool("useradd", {"-M", "-d", "/srv", "carol"}).ok());
  auto shallow = connector_->PlanChange(ctx_, Delete("carol", false));
  EXPECT_EQ(shallow.status().code(), absl::StatusCode::kFailedPrecondition) << shallow.status();
  // A home that does not exist cannot be hit: allowed.
  ASSERT_TRUE(root_->Tool("useradd", {"-M", "-d", "/nonexistent", "dave"}).ok());
  auto v = Run(Delete("dave", false));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
}

TEST_F(PosixAccountTest, NeverTouchesUidZero) {
  ASSERT_TRUE(root_->Tool("useradd", {"-M", "-o", "-u", "0", "toor"}).ok());
  for (const Action& a : {Act("lock", "root"), Act("expire", "toor"), Delete("root", true)}) {
    auto plan = connector_->PlanChange(ctx_, a);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition) << a.object;
    auto v = connector_->Verify(ctx_, a);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED);
  }
}

TEST_F(PosixAccountTest, AMissingAccountIsAlreadyCompliant) {
  for (const Action& a : {Act("lock", "ghost"), Act("expire", "ghost"), SetShell("ghost"),
                          RemoveGroup("ghost", "deploy"), Delete("ghost", false)}) {
    SCOPED_TRACE(a.operation);
    auto plan = connector_->PlanChange(ctx_, a);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_TRUE(plan->no_change());
    EXPECT_THAT(plan->summary(), HasSubstr("does not exist"));
    auto v = connector_->Verify(ctx_, a);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_VERIFIED);
  }
}

// Re-verification (docs/connectors/posix_account.md, "Re-verification:
// drift or cannot tell"): a locked account deleted since is in place, not
// "cannot tell"; the name created again without a lock is drift; a group
// made the user's primary group is drift for remove_group.
TEST_F(PosixAccountTest, ReverifiedAccountGoneIsInPlaceAndBackUnlockedIsDrift) {
  const Action lock = Act("lock", "svc-app");
  ASSERT_EQ(Run(lock).outcome(), writeback::v1::OUTCOME_VERIFIED);
  ASSERT_TRUE(root_->Tool("userdel", {"svc-app"}).ok());
  auto v = connector_->Verify(ctx_, lock);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_VERIFIED) << v->detail();
  EXPECT_THAT(v->detail(), HasSubstr("does not exist"));
  ASSERT_TRUE(root_->AddUser({.name = "svc-app"}).ok());
  v = connector_->Verify(ctx_, lock);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();

  const Action rg = RemoveGroup("alice", "deploy");
  // alice's primary gid becomes deploy's (by hand: usermod -P resolves -g
  // on the host).
  auto files = posix::ReadAccountFiles(root_->root());
  ASSERT_TRUE(files.ok()) << files.status();
  const posix::GroupView deploy = posix::DescribeGroup(*files, "deploy");
  ASSERT_TRUE(deploy.exists);
  std::vector<std::string> lines = absl::StrSplit(files->passwd, '\n');
  for (std::string& line : lines) {
    std::vector<std::string> f = absl::StrSplit(line, ':');
    if (f.size() == 7 && f[0] == "alice") {
      f[3] = absl::StrCat(deploy.gid);
      line = absl::StrJoin(f, ":");
    }
  }
  ASSERT_TRUE(
      fs::WriteFileAtomic(root_->etc() + "/passwd", absl::StrJoin(lines, "\n"), {.mode = 0644})
          .ok());
  v = connector_->Verify(ctx_, rg);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();
  EXPECT_THAT(v->detail(), HasSubstr("primary group"));
}

TEST_F(PosixAccountTest, AllowedUsersIsEnforced) {
  auto cfg = Config(root_->root());
  cfg.mutable_posix_account()->add_allowed_users("alice");
  auto c = Make(cfg);
  ASSERT_TRUE(c.ok()) << c.status();
  auto denied = (*c)->PlanChange(ctx_, Act("lock", "svc-app"));
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE((*c)->PlanChange(ctx_, Act("lock", "alice")).ok());
}

TEST_F(PosixAccountTest, ApplyRefusesAPlanForAnotherAccountOrOperation) {
  auto plan = connector_->PlanChange(ctx_, Act("lock", "alice"));
  ASSERT_TRUE(plan.ok());
  auto other_user = connector_->Apply(ctx_, Act("lock", "svc-app"), *plan);
  EXPECT_EQ(other_user.status().code(), absl::StatusCode::kInvalidArgument);
  auto other_op = connector_->Apply(ctx_, Act("expire", "alice"), *plan);
  EXPECT_EQ(other_op.status().code(), absl::StatusCode::kInvalidArgument);
  writeback::v1::Plan junk;
  junk.set_state("{not json");
  EXPECT_EQ(connector_->Apply(ctx_, Act("lock", "alice"), junk).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Read(*root_, "alice").password, posix::PasswordState::kHash);
}

TEST_F(PosixAccountTest, ApplyReportsAToolFailure) {
  // No shadow entry: usermod -L has nothing to lock; the plan says so.
  ASSERT_TRUE(root_->Tool("useradd", {"-M", "nosh"}).ok());
  const std::string shadow = root_->ReadEtc("shadow");
  std::string cut;
  for (absl::string_view line : absl::StrSplit(shadow, '\n', absl::SkipEmpty())) {
    if (!absl::StartsWith(line, "nosh:")) absl::StrAppend(&cut, line, "\n");
  }
  ASSERT_TRUE(fs::WriteFileAtomic(root_->etc() + "/shadow", cut, {.mode = 0640}).ok());
  auto plan = connector_->PlanChange(ctx_, Act("lock", "nosh"));
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition) << plan.status();
}

TEST_F(PosixAccountTest, ExpiredDeadlineIsRefused) {
  CallContext late{.deadline = clock_.Now() - absl::Seconds(1), .clock = &clock_};
  EXPECT_EQ(connector_->PlanChange(late, Act("lock", "alice")).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(PosixAccountConfigTest, RejectsBadConfig) {
  auto bad = [](auto mutate) {
    auto cfg = Config("/tmp");
    mutate(cfg);
    return Make(cfg).status();
  };
  auto s = bad([](auto& c) { c.clear_posix_account(); });
  EXPECT_THAT(s.message(), HasSubstr("posix_account"));
  s = bad([](auto& c) { c.mutable_posix_account()->set_root("relative/root"); });
  EXPECT_THAT(s.message(), HasSubstr("connectors[accounts].posix_account.root"));
  s = bad([](auto& c) { c.mutable_posix_account()->set_root("/srv/../etc"); });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = bad([](auto& c) { c.mutable_posix_account()->add_allowed_users("Bad User"); });
  EXPECT_THAT(s.message(), HasSubstr("allowed_users[0]"));
  s = bad([](auto& c) { c.mutable_posix_account()->set_tools_dir("bin"); });
  EXPECT_THAT(s.message(), HasSubstr("tools_dir"));
  s = bad([](auto& c) { c.mutable_posix_account()->mutable_probe()->set_port(22); });
  EXPECT_THAT(s.message(), HasSubstr("probe.host_public_key_file"));
  s = bad([](auto& c) { c.add_allowed_operations("drop_everything"); });
  EXPECT_THAT(s.message(), HasSubstr("allowed_operations"));
}

TEST(PosixAccountConfigTest, CheckNeedsReadableDatabasesAndTools) {
  auto root = HostRoot::Create();
  ASSERT_TRUE(root.ok());
  FakeClock clock;
  CallContext ctx{.deadline = absl::InfiniteFuture(), .clock = &clock};
  auto good = Make(Config((*root)->root()));
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE((*good)->Check(ctx).ok());
  auto cfg = Config((*root)->root());
  cfg.mutable_posix_account()->set_tools_dir((*root)->dir() + "/no-tools");
  auto no_tools = Make(cfg);
  ASSERT_TRUE(no_tools.ok());
  EXPECT_EQ((*no_tools)->Check(ctx).code(), absl::StatusCode::kFailedPrecondition);
  auto no_root = Make(Config((*root)->dir() + "/missing"));
  ASSERT_TRUE(no_root.ok());
  EXPECT_FALSE((*no_root)->Check(ctx).ok());
}

// ---- The shared contract suite, once per operation. ----

// Stale plans: a plan is bound to the account's records; changing them (here
// the GECOS field) behind the plan makes Apply refuse with
// FAILED_PRECONDITION and touch nothing.
class PosixFixture : public ContractFixture {
 public:
  explicit PosixFixture(Action action) : action_(std::move(action)) {}
  absl::StatusOr<std::unique_ptr<Connector>> MakeConnector() override {
    auto r = HostRoot::Create();
    if (!r.ok()) return r.status();
    root_ = std::move(*r);
    return Make(Config(root_->root()));
  }
  absl::Status Arrange() override {
    if (auto s = root_->AddGroup("deploy"); !s.ok()) return s;
    return root_->AddUser({.name = "svc-app", .groups = {"deploy"}});
  }
  Action EffectiveAction() override { return action_; }
  std::vector<std::pair<std::string, Action>> MalformedActions() override {
    std::vector<std::pair<std::string, Action>> out;
    auto with = [&](const std::string& name, auto mutate) {
      Action a = action_;
      mutate(a);
      out.emplace_back(name, a);
    };
    with("unknown_operation", [](Action& a) { a.operation = "unlock"; });
    with("missing_params", [](Action& a) { a.params.Clear(); });
    with("wrong_params", [](Action& a) { a.params.mutable_sudoers()->set_user("x"); });
    with("user_dotdot", [](Action& a) { a.object = "../root"; });
    with("user_empty", [](Action& a) { a.object = ""; });
    with("user_uppercase", [](Action& a) { a.object = "Svc-app"; });
    with("user_shell", [](Action& a) { a.object = "svc;rm -rf /"; });
    with("user_option", [](Action& a) { a.object = "-R/"; });
    with("bad_shell", [](Action& a) {
      a.operation = "set_shell";
      a.params.mutable_posix_account()->set_shell("/bin/bash");
    });
    with("bad_group", [](Action& a) {
      a.operation = "remove_group";
      a.params.mutable_posix_account()->set_group("deploy,users");
    });
    with("keep_home_on_lock", [](Action& a) {
      a.operation = "lock";
      a.params.mutable_posix_account()->set_keep_home(true);
    });
    return out;
  }
  absl::StatusOr<std::string> Snapshot() override {
    return testing::host::TreeSnapshot(root_->root());
  }
  absl::Status ChangeTargetBehindPlan() override {
    return root_->Tool("usermod", {"-c", "changed behind the plan", "svc-app"});
  }
  StalePlanPolicy stale_plan_policy() const override {
    return StalePlanPolicy::kFailedPrecondition;
  }

 private:
  Action action_;
  std::unique_ptr<HostRoot> root_;
};

INSTANTIATE_TEST_SUITE_P(
    PosixAccount, ConnectorContractTest,
    ::testing::Values(
        ContractCase{"lock", [] { return std::make_unique<PosixFixture>(Act("lock", "svc-app")); }},
        ContractCase{"expire",
                     [] { return std::make_unique<PosixFixture>(Act("expire", "svc-app")); }},
        ContractCase{"set_shell",
                     [] { return std::make_unique<PosixFixture>(SetShell("svc-app")); }},
        ContractCase{
            "remove_group",
            [] { return std::make_unique<PosixFixture>(RemoveGroup("svc-app", "deploy")); }},
        ContractCase{"delete",
                     [] { return std::make_unique<PosixFixture>(Delete("svc-app", false)); }}),
    ContractCaseName);

}  // namespace
}  // namespace wb::connectors
