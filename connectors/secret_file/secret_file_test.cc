#include "connectors/secret_file/secret_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "common/testing/temp_dir.h"
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
using ::testing::HasSubstr;
using ::testing::Not;
using testing::StalePlanPolicy;

constexpr char kSecret[] = "hunter2-very-secret";

const std::string kEnv = absl::StrCat("DB_HOST=db\nDB_PASSWORD=", kSecret, "\nPORT=5432\n");
const std::string kJson = absl::StrCat("{\n  \"db\": {\n    \"password\": \"", kSecret,
                                       "\",\n    \"user\": \"app\"\n  }\n}\n");
const std::string kIni =
    absl::StrCat("[default]\naws_access_key_id = AKIA1\naws_secret_access_key = ", kSecret,
                 "\n[ci]\naws_secret_access_key = ", kSecret, "\n");

writeback::v1::ConnectorInstanceConfig Config(const std::vector<std::string>& roots) {
  writeback::v1::ConnectorInstanceConfig cfg;
  cfg.set_name("secrets");
  cfg.set_type("secret_file");
  for (const char* op : {"remove_env_key", "remove_json_path", "remove_ini_key",
                         "remove_ini_section", "delete_file"}) {
    cfg.add_allowed_operations(op);
  }
  auto* s = cfg.mutable_secret_file();
  for (const auto& r : roots) s->add_allowed_roots(r);
  return cfg;
}

absl::StatusOr<std::unique_ptr<Connector>> Make(const writeback::v1::ConnectorInstanceConfig& c) {
  Registry registry;
  RegisterBuiltinConnectors(registry);
  return registry.Create(c);
}

Action EnvKey(const std::string& path, const std::string& key) {
  Action a;
  a.operation = "remove_env_key";
  a.object = path;
  a.params.mutable_secret_file()->set_key(key);
  return a;
}
Action JsonPath(const std::string& path, const std::vector<std::string>& p) {
  Action a;
  a.operation = "remove_json_path";
  a.object = path;
  for (const auto& k : p) a.params.mutable_secret_file()->add_json_path(k);
  return a;
}
Action IniKey(const std::string& path, const std::string& section, const std::string& key) {
  Action a;
  a.operation = "remove_ini_key";
  a.object = path;
  a.params.mutable_secret_file()->set_section(section);
  a.params.mutable_secret_file()->set_key(key);
  return a;
}
Action IniSection(const std::string& path, const std::string& section) {
  Action a;
  a.operation = "remove_ini_section";
  a.object = path;
  a.params.mutable_secret_file()->set_section(section);
  return a;
}
Action DeleteFile(const std::string& path) {
  Action a;
  a.operation = "delete_file";
  a.object = path;
  a.params.mutable_secret_file();
  return a;
}

class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.Sub("srv/app");
    ASSERT_TRUE(fs::MakeDirs(root_ + "/config", 0755).ok());
    ASSERT_TRUE(fs::MakeDirs(dir_.Sub("outside"), 0755).ok());
    ASSERT_TRUE(Put(root_ + "/.env", kEnv, 0640, 1234, 4321).ok());
    ASSERT_TRUE(Put(root_ + "/config/app.json", kJson).ok());
    ASSERT_TRUE(Put(root_ + "/credentials", kIni).ok());
    ASSERT_TRUE(Put(dir_.Sub("outside/secret.env"), kEnv).ok());
    auto c = Make(Config({root_}));
    ASSERT_TRUE(c.ok()) << c.status();
    connector_ = std::move(*c);
  }
  static absl::Status Put(const std::string& path, const std::string& content, mode_t mode = 0600,
                          uid_t uid = 0, gid_t gid = 0) {
    return fs::WriteFileAtomic(path, content, {.mode = mode, .uid = uid, .gid = gid});
  }
  static std::string Get(const std::string& path) {
    auto c = fs::ReadFile(path);
    return c.ok() ? *c : "<missing>";
  }
  // Plan, apply, verify; everything they return, serialized, for leak checks.
  writeback::v1::Verification Run(const Action& a, std::string* transcript = nullptr) {
    auto plan = connector_->PlanChange(ctx_, a);
    EXPECT_TRUE(plan.ok()) << plan.status();
    if (!plan.ok()) return {};
    auto applied = connector_->Apply(ctx_, a, *plan);
    EXPECT_TRUE(applied.ok()) << applied.status();
    auto v = connector_->Verify(ctx_, a);
    EXPECT_TRUE(v.ok()) << v.status();
    if (transcript != nullptr && applied.ok() && v.ok()) {
      *transcript = absl::StrCat(plan->DebugString(), applied->DebugString(), v->DebugString());
    }
    return v.ok() ? *v : writeback::v1::Verification{};
  }

  wb::testing::TempDir dir_;
  std::string root_;
  std::unique_ptr<Connector> connector_;
  FakeClock clock_;
  CallContext ctx_{.deadline = absl::InfiniteFuture(), .clock = &clock_};
};

TEST_F(SecretFileTest, RemovesAnEnvKeyKeepingOwnerModeAndOtherLines) {
  std::string transcript;
  auto v = Run(EnvKey(root_ + "/.env", "DB_PASSWORD"), &transcript);
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
  EXPECT_EQ(Get(root_ + "/.env"), "DB_HOST=db\nPORT=5432\n");
  struct stat st;
  ASSERT_EQ(::stat((root_ + "/.env").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 4321u);
  EXPECT_THAT(transcript, HasSubstr("DB_PASSWORD at line 2"));
  // The mode as ls and chmod show it (it used to read 01a0, hexadecimal).
  EXPECT_THAT(transcript, HasSubstr("value: \"0640\""));
  EXPECT_THAT(transcript, Not(HasSubstr(kSecret)));
  EXPECT_EQ(Get(dir_.Sub("outside/secret.env")), kEnv);
}

TEST_F(SecretFileTest, RemovesAJsonMember) {
  std::string transcript;
  auto v = Run(JsonPath(root_ + "/config/app.json", {"db", "password"}), &transcript);
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
  EXPECT_EQ(Get(root_ + "/config/app.json"), "{\n  \"db\": {\n    \"user\": \"app\"\n  }\n}\n");
  EXPECT_THAT(transcript, Not(HasSubstr(kSecret)));
}

TEST_F(SecretFileTest, RemovesAnIniKeyFromOneProfileAndAWholeProfile) {
  auto v = Run(IniKey(root_ + "/credentials", "default", "aws_secret_access_key"));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
  EXPECT_EQ(Get(root_ + "/credentials"),
            absl::StrCat("[default]\naws_access_key_id = AKIA1\n[ci]\naws_secret_access_key = ",
                         kSecret, "\n"));
  auto s = Run(IniSection(root_ + "/credentials", "ci"));
  EXPECT_EQ(s.outcome(), writeback::v1::OUTCOME_VERIFIED) << s.detail();
  EXPECT_EQ(Get(root_ + "/credentials"), "[default]\naws_access_key_id = AKIA1\n");
}

// configparser gives every section the keys of [DEFAULT]: removing the
// section's own copy leaves the key readable there, and Verify says so.
TEST_F(SecretFileTest, AKeyStillInheritedFromDefaultIsNotVerified) {
  ASSERT_TRUE(Put(root_ + "/app.ini", absl::StrCat("[DEFAULT]\npassword = ", kSecret,
                                                   "\n[prod]\npassword = ", kSecret, "\n"))
                  .ok());
  auto v = Run(IniKey(root_ + "/app.ini", "prod", "password"));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_FAILED) << v.detail();
  EXPECT_THAT(v.detail(), HasSubstr("through [DEFAULT] (password in [DEFAULT] at line 2)"));
  EXPECT_EQ(Get(root_ + "/app.ini"), absl::StrCat("[DEFAULT]\npassword = ", kSecret, "\n[prod]\n"));
  EXPECT_EQ(Run(IniKey(root_ + "/app.ini", "DEFAULT", "password")).outcome(),
            writeback::v1::OUTCOME_VERIFIED);
  EXPECT_EQ(Run(IniKey(root_ + "/app.ini", "prod", "password")).outcome(),
            writeback::v1::OUTCOME_VERIFIED);
}

TEST_F(SecretFileTest, DeletesAFile) {
  auto v = Run(DeleteFile(root_ + "/credentials"));
  EXPECT_EQ(v.outcome(), writeback::v1::OUTCOME_VERIFIED) << v.detail();
  EXPECT_EQ(Get(root_ + "/credentials"), "<missing>");
  auto again = connector_->PlanChange(ctx_, DeleteFile(root_ + "/credentials"));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->no_change());
}

TEST_F(SecretFileTest, RefusesPathsOutsideTheRoots) {
  for (const std::string& p :
       std::vector<std::string>{dir_.Sub("outside/secret.env"), dir_.Sub("srv/application/.env"),
                                root_, "/etc/shadow"}) {
    auto plan = connector_->PlanChange(ctx_, EnvKey(p, "DB_PASSWORD"));
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied) << p;
  }
  for (const std::string& p :
       std::vector<std::string>{root_ + "/../outside/secret.env", root_ + "/./.env",
                                root_ + "//.env", "relative/.env"}) {
    auto plan = connector_->PlanChange(ctx_, EnvKey(p, "DB_PASSWORD"));
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument) << p;
  }
  EXPECT_EQ(Get(dir_.Sub("outside/secret.env")), kEnv);
}

TEST_F(SecretFileTest, RefusesSymlinksBelowTheRoot) {
  ASSERT_EQ(::symlink(dir_.Sub("outside/secret.env").c_str(), (root_ + "/link.env").c_str()), 0);
  ASSERT_EQ(::symlink(dir_.Sub("outside").c_str(), (root_ + "/linkdir").c_str()), 0);
  for (const Action& a :
       {EnvKey(root_ + "/link.env", "DB_PASSWORD"),
        EnvKey(root_ + "/linkdir/secret.env", "DB_PASSWORD"), DeleteFile(root_ + "/link.env")}) {
    auto plan = connector_->PlanChange(ctx_, a);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition) << a.object;
    EXPECT_THAT(plan.status().message(), HasSubstr("symbolic link"));
  }
  EXPECT_EQ(Get(dir_.Sub("outside/secret.env")), kEnv);
}

// Re-verification (docs/connectors/secret_file.md, "Re-verification: drift
// or cannot tell"). The connector never reads through a symlink to edit,
// but whoever reads the path follows one: a link to a file that holds the
// removed secret again is drift, not "cannot tell".
TEST_F(SecretFileTest, TheSecretBackBehindASymlinkIsDrift) {
  const std::string env = root_ + "/.env";
  const Action a = EnvKey(env, "DB_PASSWORD");
  ASSERT_EQ(Run(a).outcome(), writeback::v1::OUTCOME_VERIFIED);
  const std::string outside = dir_.Sub("outside/secret.env");  // holds DB_PASSWORD
  ASSERT_EQ(::unlink(env.c_str()), 0);
  ASSERT_EQ(::symlink(outside.c_str(), env.c_str()), 0);

  auto v = connector_->Verify(ctx_, a);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();
  EXPECT_THAT(v->detail(), HasSubstr("is a symbolic link to '" + outside + "'"));
  EXPECT_THAT(v->detail(), HasSubstr("DB_PASSWORD at line 2"));
  ASSERT_EQ(v->after_size(), 1);
  EXPECT_EQ(v->after(0).check(), "parse_file_behind_symlink");
  EXPECT_EQ(v->after(0).facts().at("symlink_target"), outside);
  EXPECT_THAT(v->DebugString(), Not(HasSubstr(kSecret)));
  // The connector still refuses to edit through the link.
  EXPECT_EQ(connector_->PlanChange(ctx_, a).status().code(), absl::StatusCode::kFailedPrecondition);

  // Behind the link, the key is gone: read through a link that can be
  // swapped, so no VERIFIED either — cannot tell.
  ASSERT_TRUE(Put(outside, "DB_HOST=db\n").ok());
  v = connector_->Verify(ctx_, a);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();
  EXPECT_THAT(v.status().message(), HasSubstr("symbolic link"));

  // A link to a FIFO or to nothing: cannot tell (and the FIFO is never opened).
  const std::string fifo = dir_.Sub("outside/fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& to : {fifo, dir_.Sub("outside/nothing")}) {
    SCOPED_TRACE(to);
    ASSERT_EQ(::unlink(env.c_str()), 0);
    ASSERT_EQ(::symlink(to.c_str(), env.c_str()), 0);
    v = connector_->Verify(ctx_, a);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();
  }
}

TEST_F(SecretFileTest, AnIniKeyInheritedBehindASymlinkIsDrift) {
  const std::string ini = root_ + "/app.ini";
  ASSERT_TRUE(Put(ini, "[prod]\nuser = app\n").ok());
  const Action a = IniKey(ini, "prod", "password");
  ASSERT_EQ(connector_->Verify(ctx_, a)->outcome(), writeback::v1::OUTCOME_VERIFIED);
  const std::string outside = dir_.Sub("outside/app.ini");
  ASSERT_TRUE(Put(outside, absl::StrCat("[DEFAULT]\npassword = ", kSecret, "\n[prod]\n")).ok());
  ASSERT_EQ(::unlink(ini.c_str()), 0);
  ASSERT_EQ(::symlink(outside.c_str(), ini.c_str()), 0);
  auto v = connector_->Verify(ctx_, a);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();
  EXPECT_THAT(v->detail(), HasSubstr("through [DEFAULT]"));
}

TEST_F(SecretFileTest, ADeletedFileBackAsASymlinkOrOverTheLimitIsDrift) {
  const std::string creds = root_ + "/credentials";
  const Action del = DeleteFile(creds);
  ASSERT_EQ(Run(del).outcome(), writeback::v1::OUTCOME_VERIFIED);
  ASSERT_EQ(::symlink(dir_.Sub("outside/secret.env").c_str(), creds.c_str()), 0);
  auto v = connector_->Verify(ctx_, del);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();
  EXPECT_THAT(v->detail(), HasSubstr("the file is back"));
  ASSERT_EQ(::unlink(creds.c_str()), 0);
  ASSERT_EQ(::symlink(dir_.Sub("outside/nothing").c_str(), creds.c_str()), 0);
  EXPECT_EQ(connector_->Verify(ctx_, del).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_EQ(::unlink(creds.c_str()), 0);

  // Larger than max_file_bytes: the connector will not parse it, but a file
  // is at the path again — drift for delete_file; for a key, cannot tell.
  auto cfg = Config({root_});
  cfg.mutable_secret_file()->set_max_file_bytes(16);
  auto small = Make(cfg);
  ASSERT_TRUE(small.ok());
  ASSERT_TRUE(Put(creds, kIni).ok());
  v = (*small)->Verify(ctx_, del);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();
  EXPECT_THAT(v->detail(), HasSubstr("over the 16-byte limit"));
  auto key = (*small)->Verify(ctx_, IniKey(creds, "ci", "aws_secret_access_key"));
  EXPECT_EQ(key.status().code(), absl::StatusCode::kFailedPrecondition) << key.status();
  EXPECT_THAT(key.status().message(), HasSubstr("larger than 16 bytes"));
}

// A symlinked directory below the root is never followed, not even to
// look: cannot tell.
TEST_F(SecretFileTest, ASymlinkedDirectoryBelowTheRootCannotTell) {
  const Action a = JsonPath(root_ + "/config/app.json", {"db", "password"});
  ASSERT_EQ(Run(a).outcome(), writeback::v1::OUTCOME_VERIFIED);
  ASSERT_TRUE(fs::MakeDirs(dir_.Sub("outside/config"), 0755).ok());
  ASSERT_TRUE(Put(dir_.Sub("outside/config/app.json"), kJson).ok());
  ASSERT_EQ(::unlink((root_ + "/config/app.json").c_str()), 0);
  ASSERT_EQ(::rmdir((root_ + "/config").c_str()), 0);
  ASSERT_EQ(::symlink(dir_.Sub("outside/config").c_str(), (root_ + "/config").c_str()), 0);
  auto v = connector_->Verify(ctx_, a);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();
  EXPECT_THAT(v.status().message(), HasSubstr("symbolic link"));
}

TEST_F(SecretFileTest, APlanOnlyAppliesInTheInstanceThatMadeIt) {
  auto plan = connector_->PlanChange(ctx_, EnvKey(root_ + "/.env", "DB_PASSWORD"));
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(plan->state(), Not(HasSubstr(kSecret)));
  auto other = Make(Config({root_}));
  ASSERT_TRUE(other.ok());
  auto applied = (*other)->Apply(ctx_, EnvKey(root_ + "/.env", "DB_PASSWORD"), *plan);
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Get(root_ + "/.env"), kEnv);
}

TEST_F(SecretFileTest, RefusesLargeFilesAndReportsUnparseableJson) {
  auto cfg = Config({root_});
  cfg.mutable_secret_file()->set_max_file_bytes(16);
  auto small = Make(cfg);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ((*small)->PlanChange(ctx_, EnvKey(root_ + "/.env", "X")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Put(root_ + "/bad.json", "{\"password\": ").ok());
  EXPECT_EQ(
      connector_->PlanChange(ctx_, JsonPath(root_ + "/bad.json", {"password"})).status().code(),
      absl::StatusCode::kFailedPrecondition);
  auto v = connector_->Verify(ctx_, JsonPath(root_ + "/bad.json", {"password"}));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_UNVERIFIED);
}

TEST(SecretFileConfigTest, RejectsBadConfig) {
  EXPECT_THAT(Make(Config({})).status().message(), HasSubstr("allowed_roots"));
  EXPECT_THAT(Make(Config({"relative"})).status().message(), HasSubstr("allowed_roots[0]"));
  EXPECT_THAT(Make(Config({"/srv", "/srv/../etc"})).status().message(),
              HasSubstr("allowed_roots[1]"));
  EXPECT_EQ(Make(Config({"/"})).status().code(), absl::StatusCode::kInvalidArgument);
  auto cfg = Config({"/srv"});
  cfg.clear_secret_file();
  EXPECT_EQ(Make(cfg).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- The shared contract suite, once per operation. ----

// Stale plans: the plan is bound to a keyed digest of the file; any change
// behind it makes Apply refuse with FAILED_PRECONDITION and write nothing.
class SecretFixture : public ContractFixture {
 public:
  SecretFixture(std::string file, std::string content, std::function<Action(std::string)> act)
      : file_(std::move(file)), content_(std::move(content)), act_(std::move(act)) {}
  absl::StatusOr<std::unique_ptr<Connector>> MakeConnector() override {
    root_ = dir_.Sub("secrets");
    if (auto s = fs::MakeDirs(root_ + "/sub", 0755); !s.ok()) return s;
    return Make(Config({root_}));
  }
  absl::Status Arrange() override {
    return fs::WriteFileAtomic(root_ + "/sub/" + file_, content_, {.mode = 0600});
  }
  Action EffectiveAction() override { return act_(root_ + "/sub/" + file_); }
  std::vector<std::pair<std::string, Action>> MalformedActions() override {
    std::vector<std::pair<std::string, Action>> out;
    auto with = [&](const std::string& name, auto mutate) {
      Action a = EffectiveAction();
      mutate(a);
      out.emplace_back(name, a);
    };
    with("unknown_operation", [](Action& a) { a.operation = "shred"; });
    with("missing_params", [](Action& a) { a.params.Clear(); });
    with("relative_path", [](Action& a) { a.object = "sub/.env"; });
    with("dotdot", [&](Action& a) { a.object = root_ + "/sub/../../etc/passwd"; });
    with("nul", [](Action& a) { a.object = std::string("/tmp/a\0b", 8); });
    with("newline_key", [](Action& a) {
      a.operation = "remove_env_key";
      a.params.mutable_secret_file()->set_key("A\nB");
    });
    with("shell_key", [](Action& a) {
      a.operation = "remove_env_key";
      a.params.mutable_secret_file()->set_key("$(id)");
    });
    with("ini_section_bracket", [](Action& a) {
      a.operation = "remove_ini_section";
      a.params.mutable_secret_file()->set_section("a]b");
    });
    with("ini_key_with_colon", [](Action& a) {  // no INI line can carry it
      a.operation = "remove_ini_key";
      a.params.mutable_secret_file()->set_section("prod");
      a.params.mutable_secret_file()->set_key("db:password");
    });
    with("json_path_empty", [](Action& a) {
      a.operation = "remove_json_path";
      a.params.mutable_secret_file()->clear_json_path();
    });
    with("key_on_delete", [](Action& a) {
      a.operation = "delete_file";
      a.params.mutable_secret_file()->set_key("X");
    });
    return out;
  }
  absl::StatusOr<std::string> Snapshot() override {
    return testing::host::TreeSnapshot(dir_.path());
  }
  absl::Status ChangeTargetBehindPlan() override {
    return fs::WriteFileAtomic(root_ + "/sub/" + file_, content_ + "\n", {.mode = 0600});
  }
  StalePlanPolicy stale_plan_policy() const override {
    return StalePlanPolicy::kFailedPrecondition;
  }

 private:
  wb::testing::TempDir dir_;
  std::string root_;
  std::string file_, content_;
  std::function<Action(std::string)> act_;
};

INSTANTIATE_TEST_SUITE_P(
    SecretFile, ConnectorContractTest,
    ::testing::Values(
        ContractCase{"remove_env_key",
                     [] {
                       return std::make_unique<SecretFixture>(
                           ".env", kEnv, [](std::string p) { return EnvKey(p, "DB_PASSWORD"); });
                     }},
        ContractCase{"remove_json_path",
                     [] {
                       return std::make_unique<SecretFixture>("app.json", kJson, [](std::string p) {
                         return JsonPath(p, {"db", "password"});
                       });
                     }},
        ContractCase{"remove_ini_key",
                     [] {
                       return std::make_unique<SecretFixture>(
                           "credentials", kIni,
                           [](std::string p) { return IniKey(p, "ci", "aws_secret_access_key"); });
                     }},
        ContractCase{"remove_ini_section",
                     [] {
                       return std::make_unique<SecretFixture>(
                           "credentials", kIni, [](std::string p) { return IniSection(p, "ci"); });
                     }},
        ContractCase{"delete_file",
                     [] {
                       return std::make_unique<SecretFixture>(
                           "old.env", kEnv, [](std::string p) { return DeleteFile(p); });
                     }}),
    ContractCaseName);

}  // namespace
}  // namespace wb::connectors
