#include "connectors/ssh_authorized_keys/ssh_authorized_keys.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/testing/temp_dir.h"
#include "connectors/registry.h"
#include "connectors/ssh_authorized_keys/authorized_keys.h"
#include "connectors/ssh_authorized_keys/test_keys.h"
#include "connectors/testing/contract_suite.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::connectors {
namespace {

using sshak::testing::KeyFactory;
using sshak::testing::TestKey;
using testing::ConnectorContractTest;
using testing::ContractCase;
using testing::ContractCaseName;
using testing::ContractFixture;
using ::testing::HasSubstr;
using testing::StalePlanPolicy;

TestKey MustKey(const std::string& type, const std::string& comment, int bits = 0) {
  auto k = KeyFactory::Get().Make(type, comment, bits);
  EXPECT_TRUE(k.ok()) << k.status();
  return k.ok() ? *k : TestKey{};
}

// Every entry under `root` (sorted): path, type, mode, owner, and the bytes
// of files / targets of symlinks. Equal snapshots: nothing was touched.
absl::StatusOr<std::string> TreeSnapshot(const std::string& root) {
  std::vector<std::string> entries;
  std::vector<std::string> todo = {""};
  while (!todo.empty()) {
    const std::string rel = todo.back();
    todo.pop_back();
    const std::string abs = rel.empty() ? root : root + "/" + rel;
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
      ssize_t n = ::readlink(abs.c_str(), buf, sizeof buf);
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

writeback::v1::ConnectorInstanceConfig MakeConfig(const std::string& path_template) {
  writeback::v1::ConnectorInstanceConfig cfg;
  cfg.set_name("ssh-test");
  cfg.set_type("ssh_authorized_keys");
  cfg.add_allowed_operations("remove_key");
  cfg.add_allowed_operations("remove_by_comment");
  cfg.add_allowed_operations("exclusive_set");
  cfg.mutable_ssh_authorized_keys()->set_path_template(path_template);
  return cfg;
}

absl::StatusOr<std::unique_ptr<Connector>> CreateViaRegistry(
    const writeback::v1::ConnectorInstanceConfig& cfg) {
  Registry registry;
  RegisterBuiltinConnectors(registry);
  return registry.Create(cfg);
}

Action RemoveKey(const std::string& user, const std::string& fp) {
  Action a;
  a.operation = "remove_key";
  a.object = user;
  a.params.mutable_ssh_authorized_keys()->set_fingerprint(fp);
  return a;
}

Action RemoveByComment(const std::string& user, const std::string& comment) {
  Action a;
  a.operation = "remove_by_comment";
  a.object = user;
  a.params.mutable_ssh_authorized_keys()->set_comment(comment);
  return a;
}

Action ExclusiveSet(const std::string& user, const std::vector<std::string>& keep) {
  Action a;
  a.operation = "exclusive_set";
  a.object = user;
  a.params.mutable_ssh_authorized_keys();  // present even when keep is empty
  for (const auto& k : keep) a.params.mutable_ssh_authorized_keys()->add_keep_fingerprints(k);
  return a;
}

// The standard file of the tests: the target key A twice (with options, and
// CRLF), keys B and C to keep, a comment, a blank and an unparseable line.
struct Keys {
  TestKey a = MustKey("ed25519", "old-deploy");
  TestKey b = MustKey("ed25519", "alice@laptop");
  TestKey c = MustKey("ecdsa", "backup key", 256);
  TestKey d = MustKey("ed25519", "added later");
  std::string LineA1() const {
    return absl::StrCat("from=\"10.0.0.0/8,192.168.1.1\",command=\"echo \\\"hi, there\\\"\" ",
                        a.Line(), "\n");
  }
  std::string LineA2() const { return absl::StrCat("no-pty ", a.Line(), "\r\n"); }
  std::string Kept() const {
    return absl::StrCat("# managed by hand\n", b.Line(), "  \n", "\n", "this is not a key\n",
                        c.Line(), "\n");
  }
  std::string Content() const {
    return absl::StrCat("# managed by hand\n", LineA1(), b.Line(), "  \n", "\n",
                        "this is not a key\n", LineA2(), c.Line(), "\n");
  }
};

enum class Op { kRemoveKey, kRemoveByComment, kExclusiveSet };

// Contract adapter. Stale plans: the connector binds a plan to the SHA-256
// of the file it read, so Apply after any change to the file is refused with
// FAILED_PRECONDITION and touches nothing (a re-plan sees the new content).
class SshFixture : public ContractFixture {
 public:
  explicit SshFixture(Op op) : op_(op) {}

  absl::StatusOr<std::unique_ptr<Connector>> MakeConnector() override {
    return CreateViaRegistry(MakeConfig(dir_.path() + "/home/{user}/.ssh/authorized_keys"));
  }
  absl::Status Arrange() override {
    if (auto s = fs::MakeDirs(dir_.path() + "/home/alice/.ssh", 0700); !s.ok()) return s;
    return fs::WriteFileAtomic(File(), keys_.Content(), {.mode = 0600});
  }
  Action EffectiveAction() override {
    switch (op_) {
      case Op::kRemoveKey:
        return RemoveKey("alice", keys_.a.fingerprint);
      case Op::kRemoveByComment:
        return RemoveByComment("alice", "old-deploy");
      case Op::kExclusiveSet:
        return ExclusiveSet("alice", {keys_.b.fingerprint, keys_.c.fingerprint});
    }
    return {};
  }
  std::vector<std::pair<std::string, Action>> MalformedActions() override {
    std::vector<std::pair<std::string, Action>> out;
    const Action good = EffectiveAction();
    auto with = [&](const std::string& name, auto mutate) {
      Action a = good;
      mutate(a);
      out.emplace_back(name, a);
    };
    with("unknown_operation", [](Action& a) { a.operation = "delete_everything"; });
    with("empty_operation", [](Action& a) { a.operation = ""; });
    with("missing_params", [](Action& a) { a.params.Clear(); });
    with("user_dotdot", [](Action& a) { a.object = "../root"; });
    with("user_empty", [](Action& a) { a.object = ""; });
    with("user_slash", [](Action& a) { a.object = "alice/../../etc"; });
    with("user_uppercase", [](Action& a) { a.object = "Alice"; });
    with("remove_key_bad_fp", [](Action& a) { a = RemoveKey("alice", "MD5:aa:bb"); });
    with("remove_key_short_fp", [](Action& a) { a = RemoveKey("alice", "SHA256:abc"); });
    with("remove_key_with_comment", [&](Action& a) {
      a = RemoveKey("alice", keys_.a.fingerprint);
      a.params.mutable_ssh_authorized_keys()->set_comment("x");
    });
    with("remove_by_comment_empty", [](Action& a) { a = RemoveByComment("alice", ""); });
    with("remove_by_comment_newline",
         [](Action& a) { a = RemoveByComment("alice", "old-deploy\nssh-rsa AAAA"); });
    with("exclusive_set_bad_entry", [&](Action& a) {
      a = ExclusiveSet("alice", {keys_.b.fingerprint, "SHA256:!"});
    });
    with("exclusive_set_with_fingerprint", [&](Action& a) {
      a = ExclusiveSet("alice", {keys_.b.fingerprint});
      a.params.mutable_ssh_authorized_keys()->set_fingerprint(keys_.a.fingerprint);
    });
    return out;
  }
  absl::StatusOr<std::string> Snapshot() override { return TreeSnapshot(dir_.path()); }
  absl::Status ChangeTargetBehindPlan() override {
    auto content = fs::ReadFile(File());
    if (!content.ok()) return content.status();
    return fs::WriteFileAtomic(File(), *content + keys_.d.Line() + "\n", {.mode = 0600});
  }
  StalePlanPolicy stale_plan_policy() const override {
    return StalePlanPolicy::kFailedPrecondition;
  }

 private:
  std::string File() const { return dir_.path() + "/home/alice/.ssh/authorized_keys"; }
  Op op_;
  Keys keys_;
  wb::testing::TempDir dir_;
};

INSTANTIATE_TEST_SUITE_P(
    SshAuthorizedKeys, ConnectorContractTest,
    ::testing::Values(
        ContractCase{"remove_key", [] { return std::make_unique<SshFixture>(Op::kRemoveKey); }},
        ContractCase{"remove_by_comment",
                     [] { return std::make_unique<SshFixture>(Op::kRemoveByComment); }},
        ContractCase{"exclusive_set",
                     [] { return std::make_unique<SshFixture>(Op::kExclusiveSet); }}),
    ContractCaseName);

// ---- connector-specific behaviour ----

class SshAuthorizedKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::MakeDirs(Dir("alice"), 0700).ok());
    auto c = CreateViaRegistry(MakeConfig(tmp_.path() + "/home/{user}/.ssh/authorized_keys"));
    ASSERT_TRUE(c.ok()) << c.status();
    connector_ = std::move(*c);
  }
  std::string Dir(const std::string& user) const { return tmp_.path() + "/home/" + user + "/.ssh"; }
  std::string File(const std::string& user = "alice") const {
    return Dir(user) + "/authorized_keys";
  }
  void Write(const std::string& content, const std::string& user = "alice") {
    ASSERT_TRUE(fs::MakeDirs(Dir(user), 0700).ok());
    ASSERT_TRUE(fs::WriteFileAtomic(File(user), content, {.mode = 0600}).ok());
  }
  std::string Read(const std::string& user = "alice") {
    auto c = fs::ReadFile(File(user));
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : "";
  }
  std::string Snap() {
    auto s = TreeSnapshot(tmp_.path());
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : "";
  }
  // Plan + Apply + Verify; returns the ApplyResult.
  writeback::v1::ApplyResult Run(const Action& action) {
    auto plan = connector_->PlanChange(ctx_, action);
    EXPECT_TRUE(plan.ok()) << plan.status();
    if (!plan.ok()) return {};
    auto applied = connector_->Apply(ctx_, action, *plan);
    EXPECT_TRUE(applied.ok()) << applied.status();
    auto v = connector_->Verify(ctx_, action);
    EXPECT_TRUE(v.ok()) << v.status();
    if (v.ok()) {
      EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_VERIFIED) << v->detail();
    }
    return applied.ok() ? *applied : writeback::v1::ApplyResult();
  }

  wb::testing::TempDir tmp_;
  Keys keys_;
  FakeClock clock_;
  CallContext ctx_{.deadline = absl::InfiniteFuture(), .clock = &clock_};
  std::unique_ptr<Connector> connector_;
};

TEST_F(SshAuthorizedKeysTest, RemoveKeyRemovesEveryCopyAndKeepsOtherBytes) {
  Write(keys_.Content());
  const auto result = Run(RemoveKey("alice", keys_.a.fingerprint));
  EXPECT_EQ(Read(), keys_.Kept());
  ASSERT_EQ(result.changes_size(), 2);
  EXPECT_THAT(result.changes(0), HasSubstr(keys_.a.fingerprint));
  EXPECT_THAT(result.changes(0), HasSubstr("line 2"));
  EXPECT_THAT(result.changes(1), HasSubstr("line 6"));
}

TEST_F(SshAuthorizedKeysTest, RemoveByCommentReportsEachRemovedKey) {
  Write(keys_.Content() + keys_.d.Line() + "\n");
  const auto result = Run(RemoveByComment("alice", "old-deploy"));
  EXPECT_EQ(Read(), keys_.Kept() + keys_.d.Line() + "\n");
  ASSERT_EQ(result.changes_size(), 2);
  for (const auto& c : result.changes()) {
    EXPECT_THAT(c, HasSubstr(keys_.a.fingerprint));
    EXPECT_THAT(c, HasSubstr("comment 'old-deploy'"));
  }
}

TEST_F(SshAuthorizedKeysTest, ExclusiveSetKeepsOnlyListedKeysAndReportsTheRest) {
  Write(keys_.Content() + keys_.d.Line() + "\n");
  auto plan = connector_->PlanChange(ctx_, ExclusiveSet("alice", {keys_.b.fingerprint}));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->changes_size(), 4);
  const auto result = Run(ExclusiveSet("alice", {keys_.b.fingerprint}));
  EXPECT_EQ(Read(),
            absl::StrCat("# managed by hand\n", keys_.b.Line(), "  \n\nthis is not a key\n"));
  ASSERT_EQ(result.changes_size(), 4);
  EXPECT_THAT(result.changes(0), HasSubstr("comment 'old-deploy'"));
  EXPECT_THAT(result.changes(2), HasSubstr(keys_.c.fingerprint));
  EXPECT_THAT(result.changes(2), HasSubstr("comment 'backup key'"));
  EXPECT_THAT(result.changes(3), HasSubstr(keys_.d.fingerprint));
  EXPECT_THAT(result.changes(3), HasSubstr("comment 'added later'"));
}

TEST_F(SshAuthorizedKeysTest, ExclusiveSetWithEmptyListRemovesAllKeysButNotOtherLines) {
  Write(keys_.Content());
  Run(ExclusiveSet("alice", {}));
  EXPECT_EQ(Read(), "# managed by hand\n\nthis is not a key\n");
}

TEST_F(SshAuthorizedKeysTest, PlanReportsBeforeStateWithoutWholeKeys) {
  Write(keys_.Content());
  const std::string before = Snap();
  auto plan = connector_->PlanChange(ctx_, RemoveKey("alice", keys_.a.fingerprint));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Snap(), before);
  EXPECT_FALSE(plan->no_change());
  ASSERT_EQ(plan->before_size(), 1);
  const auto& obs = plan->before(0);
  EXPECT_EQ(obs.check(), "read_authorized_keys");
  EXPECT_EQ(obs.subject(), File());
  EXPECT_EQ(obs.facts().at("keys_total"), "4");
  EXPECT_EQ(obs.facts().at("matched"), "2");
  EXPECT_EQ(obs.facts().at("unparseable_lines"), "1");
  EXPECT_EQ(obs.facts().at("file_present"), "true");
  EXPECT_EQ(obs.facts().at("sha256").size(), 64u);
  EXPECT_EQ(obs.observed_at_unix_ms(), clock_.NowUnixMs());
  EXPECT_EQ(plan->changes_size(), 2);
  EXPECT_EQ(plan->DebugString().find(keys_.a.blob_b64), std::string::npos)
      << "the plan must not carry whole keys";
}

TEST_F(SshAuthorizedKeysTest, NoMatchIsNoChange) {
  Write(keys_.Kept());
  auto plan = connector_->PlanChange(ctx_, RemoveKey("alice", keys_.a.fingerprint));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->no_change());
  EXPECT_EQ(plan->changes_size(), 0);
  auto applied = connector_->Apply(ctx_, RemoveKey("alice", keys_.a.fingerprint), *plan);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->changes_size(), 0);
  EXPECT_EQ(Read(), keys_.Kept());
}

TEST_F(SshAuthorizedKeysTest, MissingFileOrDirectoryMeansNoKeys) {
  for (const std::string user : {"alice", "bob"}) {  // alice: no file; bob: no home
    SCOPED_TRACE(user);
    const Action action = RemoveKey(user, keys_.a.fingerprint);
    auto plan = connector_->PlanChange(ctx_, action);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_TRUE(plan->no_change());
    EXPECT_EQ(plan->before(0).facts().at("file_present"), "false");
    auto applied = connector_->Apply(ctx_, action, *plan);
    ASSERT_TRUE(applied.ok()) << applied.status();
    auto v = connector_->Verify(ctx_, action);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_VERIFIED);
  }
  EXPECT_FALSE(std::filesystem::exists(File("alice")));
  EXPECT_FALSE(std::filesystem::exists(Dir("bob")));
}

TEST_F(SshAuthorizedKeysTest, FileAppearingAfterAPlanOfNoFileIsAStalePlan) {
  auto plan = connector_->PlanChange(ctx_, RemoveKey("alice", keys_.a.fingerprint));
  ASSERT_TRUE(plan.ok()) << plan.status();
  Write(keys_.Content());
  auto applied = connector_->Apply(ctx_, RemoveKey("alice", keys_.a.fingerprint), *plan);
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition) << applied.status();
  EXPECT_THAT(applied.status().message(), HasSubstr("file changed since plan"));
  EXPECT_EQ(Read(), keys_.Content());
}

TEST_F(SshAuthorizedKeysTest, VerifyFailsWhenTheKeyIsBackWithEvidence) {
  Write(keys_.Content());
  Run(RemoveKey("alice", keys_.a.fingerprint));
  Write(Read() + "restrict " + keys_.a.Line() + "\n");  // drift: the key came back
  auto v = connector_->Verify(ctx_, RemoveKey("alice", keys_.a.fingerprint));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED);
  ASSERT_EQ(v->after_size(), 1);
  EXPECT_EQ(v->after(0).check(), "read_authorized_keys");
  EXPECT_EQ(v->after(0).subject(), File());
  EXPECT_EQ(v->after(0).facts().at("matched"), "1");
  EXPECT_EQ(v->after(0).facts().at("keys_remaining"), "2");
  EXPECT_THAT(v->detail(), HasSubstr(keys_.a.fingerprint));
}

TEST_F(SshAuthorizedKeysTest, VerifiedEvidenceCarriesFileDigestAndCounts) {
  Write(keys_.Content());
  Run(RemoveKey("alice", keys_.a.fingerprint));
  auto v = connector_->Verify(ctx_, RemoveKey("alice", keys_.a.fingerprint));
  ASSERT_TRUE(v.ok()) << v.status();
  const auto& f = v->after(0).facts();
  EXPECT_EQ(f.at("matched"), "0");
  EXPECT_EQ(f.at("keys_remaining"), "2");
  EXPECT_EQ(f.at("sha256"), crypto::HexEncode(crypto::Sha256(keys_.Kept())));
}

TEST_F(SshAuthorizedKeysTest, OwnerGroupAndModeArePreserved) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  Write(keys_.Content());
  ASSERT_EQ(::chown(File().c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chmod(File().c_str(), 0640), 0);
  struct stat before;
  ASSERT_EQ(::stat(File().c_str(), &before), 0);
  Run(RemoveKey("alice", keys_.a.fingerprint));
  struct stat after;
  ASSERT_EQ(::stat(File().c_str(), &after), 0);
  EXPECT_NE(after.st_ino, before.st_ino) << "expected an atomic replace";
  EXPECT_EQ(after.st_uid, 65534u);
  EXPECT_EQ(after.st_gid, 65534u);
  EXPECT_EQ(after.st_mode & 07777, 0640u);
  EXPECT_EQ(Read(), keys_.Kept());
  // No temp file left behind.
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(Dir("alice"))) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
}

TEST_F(SshAuthorizedKeysTest, SymlinkedFileIsRefusedAndItsTargetUntouched) {
  const std::string victim = tmp_.path() + "/victim_keys";
  ASSERT_TRUE(fs::WriteFileAtomic(victim, keys_.Content()).ok());
  ASSERT_EQ(::symlink(victim.c_str(), File().c_str()), 0);
  const std::string before = Snap();
  const Action action = ExclusiveSet("alice", {});
  auto plan = connector_->PlanChange(ctx_, action);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition) << plan.status();
  EXPECT_THAT(plan.status().message(), HasSubstr("symbolic link"));
  writeback::v1::Plan forged;
  forged.set_state(
      absl::StrCat("sshak/v1\n", File(), "\n", crypto::HexEncode(crypto::Sha256(keys_.Content()))));
  auto applied = connector_->Apply(ctx_, action, forged);
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition) << applied.status();
  // sshd follows this link (a regular file of root, not group- or
  // world-writable) and the keys are there: the effect is undone (drift),
  // not "cannot tell".
  auto v = connector_->Verify(ctx_, action);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();
  EXPECT_THAT(v->detail(), HasSubstr("symbolic link"));
  EXPECT_THAT(v->detail(), HasSubstr("which sshd follows"));
  ASSERT_EQ(v->after_size(), 1);
  EXPECT_EQ(v->after(0).check(), "read_authorized_keys_behind_symlink");
  EXPECT_EQ(Snap(), before);
}

TEST_F(SshAuthorizedKeysTest, ASymlinkIsCannotTellUnlessSshdWouldHonourAKeyThere) {
  const std::string other = tmp_.path() + "/other_keys";
  ASSERT_TRUE(fs::WriteFileAtomic(other, keys_.b.Line() + "\n").ok());
  ASSERT_EQ(::symlink(other.c_str(), File().c_str()), 0);
  // No matching key behind the link: never vouched for (the link can be
  // swapped between this read and sshd's).
  auto v = connector_->Verify(ctx_, RemoveKey("alice", keys_.a.fingerprint));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();
  // The key there, but group-writable: sshd's StrictModes refuses the file.
  ASSERT_TRUE(fs::WriteFileAtomic(other, keys_.a.Line() + "\n").ok());
  ASSERT_EQ(::chmod(other.c_str(), 0664), 0);
  v = connector_->Verify(ctx_, RemoveKey("alice", keys_.a.fingerprint));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();
  ASSERT_EQ(::chmod(other.c_str(), 0600), 0);
  v = connector_->Verify(ctx_, RemoveKey("alice", keys_.a.fingerprint));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED);
  // A link to a FIFO does not block and is "cannot tell".
  const std::string fifo = tmp_.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ASSERT_EQ(::unlink(File().c_str()), 0);
  ASSERT_EQ(::symlink(fifo.c_str(), File().c_str()), 0);
  v = connector_->Verify(ctx_, RemoveKey("alice", keys_.a.fingerprint));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();
}

TEST_F(SshAuthorizedKeysTest, SymlinkedDirectoryOnTheWayIsRefused) {
  // bob's ~/.ssh points at another account's .ssh.
  ASSERT_TRUE(fs::MakeDirs(tmp_.path() + "/home/bob", 0700).ok());
  Write(keys_.Content(), "root");
  ASSERT_EQ(::symlink(Dir("root").c_str(), Dir("bob").c_str()), 0);
  const std::string before = Snap();
  for (const Action& action : {ExclusiveSet("bob", {}), RemoveKey("bob", keys_.a.fingerprint)}) {
    auto plan = connector_->PlanChange(ctx_, action);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition) << plan.status();
    EXPECT_THAT(plan.status().message(), HasSubstr("symbolic link"));
    auto v = connector_->Verify(ctx_, action);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();
  }
  EXPECT_EQ(Snap(), before);
}

TEST_F(SshAuthorizedKeysTest, NonRegularFilesAreRefusedWithoutBlocking) {
  ASSERT_EQ(::mkfifo(File().c_str(), 0600), 0);
  auto plan = connector_->PlanChange(ctx_, RemoveKey("alice", keys_.a.fingerprint));
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition) << plan.status();
  EXPECT_THAT(plan.status().message(), HasSubstr("not a regular file"));
  ASSERT_EQ(::unlink(File().c_str()), 0);
  ASSERT_EQ(::mkdir(File().c_str(), 0700), 0);
  auto v = connector_->Verify(ctx_, RemoveKey("alice", keys_.a.fingerprint));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();
}

TEST_F(SshAuthorizedKeysTest, HostileUserNamesAreRefusedAndTouchNothing) {
  Write(keys_.Content());
  Write(keys_.Content(), "root");
  const std::string before = Snap();
  auto plan = connector_->PlanChange(ctx_, ExclusiveSet("alice", {}));
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::vector<std::string> names = {"../root",
                                          "..",
                                          ".",
                                          "/",
                                          "/root",
                                          "alice/../root",
                                          "al\nice",
                                          std::string("alice\0root", 10),
                                          std::string(65536, 'a'),
                                          "a;reboot",
                                          "$(reboot)",
                                          "`id`",
                                          "a b",
                                          "a|b",
                                          "a&b",
                                          "*",
                                          "~root",
                                          "Alice",
                                          "-rf",
                                          "",
                                          "al\\ice",
                                          "alice\r",
                                          "root/.ssh",
                                          "{user}",
                                          "\xc3\xa9t\xc3\xa9"};
  for (const auto& name : names) {
    SCOPED_TRACE(sshak::Printable(name, 40));
    const Action action = ExclusiveSet(name, {});
    auto p = connector_->PlanChange(ctx_, action);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << p.status();
    EXPECT_THAT(p.status().message(), HasSubstr("target"));
    auto a = connector_->Apply(ctx_, action, *plan);
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << a.status();
    auto v = connector_->Verify(ctx_, action);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << v.status();
  }
  EXPECT_EQ(Snap(), before);
}

TEST_F(SshAuthorizedKeysTest, PlanForAnotherUserIsRefused) {
  Write(keys_.Content());
  Write(keys_.Content(), "bob");
  auto plan = connector_->PlanChange(ctx_, RemoveKey("alice", keys_.a.fingerprint));
  ASSERT_TRUE(plan.ok());
  auto applied = connector_->Apply(ctx_, RemoveKey("bob", keys_.a.fingerprint), *plan);
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kInvalidArgument) << applied.status();
  EXPECT_THAT(applied.status().message(), HasSubstr("plan.state"));
  writeback::v1::Plan junk;
  junk.set_state("whatever");
  applied = connector_->Apply(ctx_, RemoveKey("alice", keys_.a.fingerprint), junk);
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kInvalidArgument) << applied.status();
  EXPECT_EQ(Read("alice"), keys_.Content());
  EXPECT_EQ(Read("bob"), keys_.Content());
}

TEST_F(SshAuthorizedKeysTest, AllowedUsersLimitsTargets) {
  auto cfg = MakeConfig(tmp_.path() + "/home/{user}/.ssh/authorized_keys");
  cfg.mutable_ssh_authorized_keys()->add_allowed_users("deploy");
  auto c = CreateViaRegistry(cfg);
  ASSERT_TRUE(c.ok()) << c.status();
  Write(keys_.Content());
  auto plan = (*c)->PlanChange(ctx_, RemoveKey("alice", keys_.a.fingerprint));
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied) << plan.status();
  EXPECT_THAT(plan.status().message(), HasSubstr("allowed_users"));
  auto ok = (*c)->PlanChange(ctx_, RemoveKey("deploy", keys_.a.fingerprint));
  EXPECT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(Read(), keys_.Content());
}

TEST_F(SshAuthorizedKeysTest, PassedDeadlineActsOnNothing) {
  Write(keys_.Content());
  auto plan = connector_->PlanChange(ctx_, RemoveKey("alice", keys_.a.fingerprint));
  ASSERT_TRUE(plan.ok());
  CallContext late{.deadline = clock_.Now() - absl::Seconds(1), .clock = &clock_};
  auto applied = connector_->Apply(late, RemoveKey("alice", keys_.a.fingerprint), *plan);
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kDeadlineExceeded) << applied.status();
  EXPECT_EQ(Read(), keys_.Content());
}

TEST_F(SshAuthorizedKeysTest, ConcurrentAppliesForDifferentUsers) {
  const std::vector<std::string> users = {"u0", "u1", "u2", "u3", "u4", "u5"};
  for (const auto& u : users) Write(keys_.Content(), u);
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(users.size());
  for (size_t i = 0; i < users.size(); ++i) {
    threads.emplace_back([&, i] {
      const Action action = RemoveKey(users[i], keys_.a.fingerprint);
      auto plan = connector_->PlanChange(ctx_, action);
      if (!plan.ok()) {
        results[i] = plan.status();
        return;
      }
      results[i] = connector_->Apply(ctx_, action, *plan).status();
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < users.size(); ++i) {
    EXPECT_TRUE(results[i].ok()) << results[i];
    EXPECT_EQ(Read(users[i]), keys_.Kept());
  }
}

TEST_F(SshAuthorizedKeysTest, CheckNeedsTheTrustedPrefixDirectory) {
  EXPECT_TRUE(connector_->Check(ctx_).ok());
  auto c = CreateViaRegistry(MakeConfig(tmp_.path() + "/nope/{user}/authorized_keys"));
  ASSERT_TRUE(c.ok()) << c.status();
  const absl::Status s = (*c)->Check(ctx_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr(tmp_.path() + "/nope"));
}

TEST_F(SshAuthorizedKeysTest, UserInTheFileNameOfAFlatDirectory) {
  auto c = CreateViaRegistry(MakeConfig(tmp_.path() + "/keys/{user}.pub"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(fs::MakeDirs(tmp_.path() + "/keys").ok());
  ASSERT_TRUE(fs::WriteFileAtomic(tmp_.path() + "/keys/alice.pub", keys_.Content()).ok());
  const Action action = RemoveKey("alice", keys_.a.fingerprint);
  auto plan = (*c)->PlanChange(ctx_, action);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE((*c)->Apply(ctx_, action, *plan).ok());
  auto content = fs::ReadFile(tmp_.path() + "/keys/alice.pub");
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, keys_.Kept());
  EXPECT_TRUE((*c)->Check(ctx_).ok());
}

TEST(SshAuthorizedKeysConfigTest, CreateValidatesConfigAndNamesTheField) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "must not be empty"},
      {"home/{user}/.ssh/authorized_keys", "absolute"},
      {"/home/user/.ssh/authorized_keys", "must contain \"{user}\""},
      {"/home/{user}/{user}/authorized_keys", "exactly once"},
      {"/home/{user}/../root/.ssh/authorized_keys", "'..'"},
      {"/home/./{user}/authorized_keys", "'.'"},
      {"/home//{user}/authorized_keys", "empty component"},
      {"/home/{user}/", "empty component"},
      {"/home/{user}/.ssh/authorized_keys\n", "control character"},
  };
  for (const auto& [tmpl, why] : bad) {
    SCOPED_TRACE(tmpl);
    auto c = CreateViaRegistry(MakeConfig(tmpl));
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
    EXPECT_THAT(c.status().message(),
                HasSubstr("connectors[ssh-test].ssh_authorized_keys.path_template: "));
    EXPECT_THAT(c.status().message(), HasSubstr(why));
  }
  auto cfg = MakeConfig("/home/{user}/.ssh/authorized_keys");
  cfg.clear_settings();
  auto c = CreateViaRegistry(cfg);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("connectors[ssh-test].ssh_authorized_keys"));

  cfg = MakeConfig("/home/{user}/.ssh/authorized_keys");
  cfg.mutable_ssh_authorized_keys()->add_allowed_users("ok");
  cfg.mutable_ssh_authorized_keys()->add_allowed_users("../x");
  c = CreateViaRegistry(cfg);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(),
              HasSubstr("connectors[ssh-test].ssh_authorized_keys.allowed_users[1]"));

  c = CreateViaRegistry(MakeConfig("/home/{user}/.ssh/authorized_keys"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->type(), "ssh_authorized_keys");
  EXPECT_EQ((*c)->instance_name(), "ssh-test");
  const auto loc = static_cast<SshAuthorizedKeysConnector*>(c->get())->LocationFor("alice");
  EXPECT_EQ(loc.trusted_dir, "/home");
  EXPECT_EQ(loc.Display(), "/home/alice/.ssh/authorized_keys");
}

TEST(RegistryTest, CreateChecksTypeNameAndOperations) {
  auto cfg = MakeConfig("/home/{user}/.ssh/authorized_keys");
  cfg.set_type("mainframe");
  auto c = CreateViaRegistry(cfg);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("connectors[ssh-test].type"));

  cfg = MakeConfig("/home/{user}/.ssh/authorized_keys");
  cfg.add_allowed_operations("rm_rf");
  c = CreateViaRegistry(cfg);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("connectors[ssh-test].allowed_operations"));

  Registry registry;
  RegisterBuiltinConnectors(registry);
  EXPECT_TRUE(registry.Has("ssh_authorized_keys"));
  EXPECT_EQ(registry.Register("ssh_authorized_keys", &SshAuthorizedKeysConnector::Create).code(),
            absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace wb::connectors
