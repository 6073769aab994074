// The vault connector against FakeVault (connectors/vault/testing), which
// follows Vault's API documentation endpoint by endpoint.
#include "connectors/vault/vault.h"

#include <fstream>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "common/pki/pki.h"
#include "common/testing/temp_dir.h"
#include "connectors/registry.h"
#include "connectors/testing/contract_suite.h"
#include "connectors/vault/http_client.h"
#include "connectors/vault/testing/fake_vault.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace wb::connectors {
namespace {

using vault::testing::AclRule;
using vault::testing::Credential;
using vault::testing::FakeVault;
using vault::testing::TokenSpec;
using ::wb::connectors::testing::ConnectorContractTest;
using ::wb::connectors::testing::ContractCase;
using ::wb::connectors::testing::ContractCaseName;
using ::wb::connectors::testing::ContractFixture;
using ::wb::connectors::testing::StalePlanPolicy;
using writeback::v1::OUTCOME_FAILED;
using writeback::v1::OUTCOME_UNVERIFIED;
using writeback::v1::OUTCOME_VERIFIED;

// The agent's token, granted exactly what docs/connectors/vault.md lists.
std::vector<AclRule> AgentRules() {
  return {
      {"secret/data/*", {"read"}},
      {"secret/metadata/*", {"read", "delete"}},
      {"secret/delete/*", {"update"}},
      {"secret/destroy/*", {"update"}},
      {"auth/token/lookup-accessor", {"update"}},
      {"auth/token/revoke-accessor", {"update"}},
      {"auth/approle/role/*", {"update"}},
      {"sys/leases/lookup", {"update"}},
      {"sys/leases/lookup/*", {"list", "sudo"}},
      {"sys/leases/revoke", {"update"}},
      {"sys/leases/revoke-prefix/*", {"update", "sudo"}},
      {"sys/policy/*", {"read", "update"}},
  };
}

TokenSpec Tok(std::string name, std::vector<AclRule> rules = {}, std::string parent = "",
              int64_t ttl = 3600, std::vector<std::string> policies = {"default"}) {
  TokenSpec t;
  t.display_name = std::move(name);
  t.rules = std::move(rules);
  t.parent_token = std::move(parent);
  t.ttl_seconds = ttl;
  t.policies = std::move(policies);
  return t;
}

FakeVault::Options NamespaceOpts(std::string ns) {
  FakeVault::Options o;
  o.required_namespace = std::move(ns);
  return o;
}

FakeVault::Options TlsOpts(std::string cert, std::string key) {
  FakeVault::Options o;
  o.tls_cert_file = std::move(cert);
  o.tls_key_file = std::move(key);
  return o;
}

std::unique_ptr<FakeVault> MustStart(FakeVault::Options opts = {}) {
  auto f = FakeVault::Start(std::move(opts));
  EXPECT_TRUE(f.ok()) << f.status();
  if (!f.ok()) return nullptr;
  (*f)->EnableKv("secret");
  (*f)->EnableAppRole("approle");
  return std::move(*f);
}

std::string WriteFile(const wb::testing::TempDir& dir, const std::string& name,
                      const std::string& content) {
  const std::string path = dir.Sub(name);
  EXPECT_TRUE(fs::WriteFileAtomic(path, content).ok());
  return path;
}

writeback::v1::ConnectorInstanceConfig VaultCfg(const std::string& address,
                                                const std::string& token_file) {
  writeback::v1::ConnectorInstanceConfig cfg;
  cfg.set_name("vault-prod");
  cfg.set_type("vault");
  for (const auto& op : actions::OperationsOf("vault")) cfg.add_allowed_operations(op);
  cfg.mutable_vault()->set_address(address);
  if (!token_file.empty()) cfg.mutable_vault()->set_token_file(token_file);
  return cfg;
}

Action VaultAction(const std::string& op, const std::string& object) {
  Action a;
  a.operation = op;
  a.object = object;
  a.task_id = "t-1";
  a.params.mutable_vault();
  return a;
}

Action Kv(const std::string& op, const std::string& path, std::vector<uint64_t> versions = {}) {
  Action a = VaultAction(op, path);
  a.params.mutable_vault()->set_mount("secret");
  for (uint64_t v : versions) a.params.mutable_vault()->add_versions(v);
  return a;
}

// ---------------------------------------------------------------------------
// Contract suite: one fixture per operation.

class VaultFixture : public ContractFixture {
 public:
  VaultFixture() {
    fake_ = MustStart();
    agent_ = fake_->CreateToken(Tok("writeback-agent", AgentRules()));
    token_file_ = WriteFile(dir_, "agent.token", agent_.secret + "\n");
  }
  absl::StatusOr<std::unique_ptr<Connector>> MakeConnector() override {
    return VaultConnector::Create(VaultCfg(fake_->address(), token_file_));
  }
  absl::StatusOr<std::string> Snapshot() override { return fake_->Snapshot(); }

  std::vector<std::pair<std::string, Action>> MalformedActions() override {
    std::vector<std::pair<std::string, Action>> out;
    auto with = [&](const std::string& name, auto mutate) {
      Action a = EffectiveAction();
      mutate(a);
      out.emplace_back(name, std::move(a));
    };
    with("unknown_operation", [](Action& a) { a.operation = "sys_seal"; });
    with("missing_params", [](Action& a) { a.params.Clear(); });
    with("params_of_another_type", [](Action& a) { a.params.mutable_exec(); });
    with("dotdot_component", [](Action& a) { a.object = "app/../../sys/seal"; });
    with("dot_component", [](Action& a) { a.object = "./app"; });
    with("empty_component", [](Action& a) { a.object = "app//db"; });
    with("leading_slash", [](Action& a) { a.object = "/app/db"; });
    with("trailing_slash", [](Action& a) { a.object = "app/db/"; });
    with("control_character", [](Action& a) { a.object = "app\r\nX-Vault-Token: x"; });
    with("not_ascii", [](Action& a) { a.object = "caf\xc3\xa9"; });
    with("empty_object", [](Action& a) { a.object.clear(); });
    return out;
  }

 protected:
  wb::testing::TempDir dir_;
  std::unique_ptr<FakeVault> fake_;
  Credential agent_;
  std::string token_file_;
};

class KvFixture : public VaultFixture {
 public:
  KvFixture(std::string op, std::vector<uint64_t> versions)
      : op_(std::move(op)), versions_(std::move(versions)) {}
  absl::Status Arrange() override {
    fake_->KvPut("secret", "app/db", {{"password", "hunter2"}});
    fake_->KvPut("secret", "app/db", {{"password", "hunter3"}});
    fake_->KvPut("secret", "app/other", {{"password", "keep"}});
    return absl::OkStatus();
  }
  Action EffectiveAction() override { return Kv(op_, "app/db", versions_); }
  std::vector<std::pair<std::string, Action>> MalformedActions() override {
    auto out = VaultFixture::MalformedActions();
    Action a = EffectiveAction();
    a.params.mutable_vault()->set_mount("secret/../sys");
    out.emplace_back("dotdot_mount", a);
    a = EffectiveAction();
    a.params.mutable_vault()->set_mount("");
    out.emplace_back("missing_mount", a);
    a = EffectiveAction();
    a.params.mutable_vault()->set_role("x");
    out.emplace_back("role_given_to_kv", a);
    if (op_ != "kv_delete_metadata") {
      a = EffectiveAction();
      a.params.mutable_vault()->add_versions(0);
      out.emplace_back("version_zero", a);
    }
    return out;
  }
  absl::Status ChangeTargetBehindPlan() override {
    fake_->KvPut("secret", "app/db", {{"password", "hunter4"}});
    return absl::OkStatus();
  }
  StalePlanPolicy stale_plan_policy() const override {
    // A new version written after the plan may be exactly what the decision
    // is about: refuse and plan again.
    return StalePlanPolicy::kFailedPrecondition;
  }

 private:
  std::string op_;
  std::vector<uint64_t> versions_;
};

class TokenFixture : public VaultFixture {
 public:
  absl::Status Arrange() override {
    leaked_ = fake_->CreateToken(Tok("ci-leaked", {}, "", 3600, {"default", "app-ci"}));
    child_ = fake_->CreateToken(Tok("ci-child", {}, leaked_.secret));
    return absl::OkStatus();
  }
  Action EffectiveAction() override {
    return VaultAction("token_revoke_accessor", leaked_.accessor);
  }
  std::vector<std::pair<std::string, Action>> MalformedActions() override {
    auto out = VaultFixture::MalformedActions();
    out.emplace_back("accessor_with_space", VaultAction("token_revoke_accessor", "acc x"));
    out.emplace_back("accessor_with_query", VaultAction("token_revoke_accessor", "acc?x=1"));
    Action a = EffectiveAction();
    a.params.mutable_vault()->set_mount("secret");
    out.emplace_back("mount_given_to_token", a);
    return out;
  }
  absl::Status ChangeTargetBehindPlan() override {
    fake_->CreateToken(Tok("ci-child-2", {}, leaked_.secret));
    return absl::OkStatus();
  }
  StalePlanPolicy stale_plan_policy() const override {
    // Revoking the token (and whatever children it has now) is right whatever
    // changed.
    return StalePlanPolicy::kStillCorrect;
  }

 private:
  Credential leaked_, child_;
};

class SecretIdFixture : public VaultFixture {
 public:
  absl::Status Arrange() override {
    fake_->CreateRole("approle", "billing", "role-id-billing", Tok("approle"));
    leaked_ = fake_->CreateSecretId("approle", "billing");
    other_ = fake_->CreateSecretId("approle", "billing");
    return absl::OkStatus();
  }
  Action EffectiveAction() override {
    Action a = VaultAction("approle_destroy_secret_id", leaked_.accessor);
    a.params.mutable_vault()->set_role("billing");
    return a;
  }
  std::vector<std::pair<std::string, Action>> MalformedActions() override {
    auto out = VaultFixture::MalformedActions();
    Action a = EffectiveAction();
    a.params.mutable_vault()->set_role("../token");
    out.emplace_back("role_with_dotdot", a);
    a = EffectiveAction();
    a.params.mutable_vault()->clear_role();
    out.emplace_back("missing_role", a);
    a = EffectiveAction();
    a.params.mutable_vault()->set_mount("approle/../token");
    out.emplace_back("mount_with_dotdot", a);
    return out;
  }
  absl::Status ChangeTargetBehindPlan() override {
    fake_->CreateSecretId("approle", "billing");
    return absl::OkStatus();
  }
  StalePlanPolicy stale_plan_policy() const override { return StalePlanPolicy::kStillCorrect; }

 private:
  Credential leaked_, other_;
};

class LeaseFixture : public VaultFixture {
 public:
  explicit LeaseFixture(bool prefix) : prefix_(prefix) {}
  absl::Status Arrange() override {
    fake_->CreateLease("database/creds/readonly/a1");
    fake_->CreateLease("database/creds/readonly/b2");
    fake_->CreateLease("database/creds/admin/c3");
    return absl::OkStatus();
  }
  Action EffectiveAction() override {
    return prefix_ ? VaultAction("lease_revoke_prefix", "database/creds/readonly")
                   : VaultAction("lease_revoke", "database/creds/readonly/a1");
  }
  absl::Status ChangeTargetBehindPlan() override {
    if (prefix_) {
      fake_->CreateLease("database/creds/readonly/new");
    } else {
      fake_->RenewLease("database/creds/readonly/a1");
    }
    return absl::OkStatus();
  }
  StalePlanPolicy stale_plan_policy() const override { return StalePlanPolicy::kStillCorrect; }

 private:
  bool prefix_;
};

constexpr char kWidePolicy[] =
    "path \"secret/data/*\" {\n  capabilities = [\"read\", \"update\"]\n}\n";
constexpr char kNarrowPolicy[] = "path \"secret/data/app/*\" {\n  capabilities = [\"read\"]\n}\n";

class PolicyFixture : public VaultFixture {
 public:
  absl::Status Arrange() override {
    fake_->PutPolicy("app-ci", kWidePolicy);
    return absl::OkStatus();
  }
  Action EffectiveAction() override {
    Action a = VaultAction("policy_replace", "app-ci");
    a.params.mutable_vault()->set_policy(kNarrowPolicy);
    return a;
  }
  std::vector<std::pair<std::string, Action>> MalformedActions() override {
    auto out = VaultFixture::MalformedActions();
    Action a = EffectiveAction();
    a.object = "root";
    out.emplace_back("root_policy", a);
    a.object = "App-CI";
    out.emplace_back("uppercase_policy", a);
    a = EffectiveAction();
    a.params.mutable_vault()->clear_policy();
    out.emplace_back("missing_document", a);
    a = EffectiveAction();
    a.params.mutable_vault()->set_policy(std::string("path \"x\" {}\x01"));
    out.emplace_back("document_with_control_character", a);
    return out;
  }
  absl::Status ChangeTargetBehindPlan() override {
    fake_->PutPolicy("app-ci", std::string(kWidePolicy) + "# edited by someone else\n");
    return absl::OkStatus();
  }
  StalePlanPolicy stale_plan_policy() const override {
    // The plan captured the old document for rollback; a changed one would
    // be lost without anyone having seen it.
    return StalePlanPolicy::kFailedPrecondition;
  }
};

class DestroyAndRevokeFixture : public VaultFixture {
 public:
  absl::Status Arrange() override {
    fake_->KvPut("secret", "payments/stripe", {{"key", "sk_live_1"}});
    reader_ = fake_->CreateToken(Tok("payments-reader"));
    return absl::OkStatus();
  }
  Action EffectiveAction() override {
    Action a = Kv("kv_destroy_and_revoke_token", "payments/stripe");
    a.params.mutable_vault()->set_token_accessor(reader_.accessor);
    return a;
  }
  std::vector<std::pair<std::string, Action>> MalformedActions() override {
    auto out = VaultFixture::MalformedActions();
    Action a = EffectiveAction();
    a.params.mutable_vault()->set_token_accessor("acc/../x");
    out.emplace_back("bad_token_accessor", a);
    a.params.mutable_vault()->clear_token_accessor();
    out.emplace_back("missing_token_accessor", a);
    return out;
  }
  absl::Status ChangeTargetBehindPlan() override {
    fake_->KvPut("secret", "payments/stripe", {{"key", "sk_live_2"}});
    return absl::OkStatus();
  }
  StalePlanPolicy stale_plan_policy() const override {
    return StalePlanPolicy::kFailedPrecondition;
  }

 private:
  Credential reader_;
};

template <typename F, typename... Args>
ContractCase Case(std::string name, Args... args) {
  return ContractCase{std::move(name), [=] { return std::make_unique<F>(args...); }};
}

INSTANTIATE_TEST_SUITE_P(
    Vault, ConnectorContractTest,
    ::testing::Values(
        Case<KvFixture>("kv_delete_latest", std::string("kv_delete"), std::vector<uint64_t>{}),
        Case<KvFixture>("kv_delete_given_version", std::string("kv_delete"),
                        std::vector<uint64_t>{1}),
        Case<KvFixture>("kv_destroy_all", std::string("kv_destroy"), std::vector<uint64_t>{}),
        Case<KvFixture>("kv_destroy_given_versions", std::string("kv_destroy"),
                        std::vector<uint64_t>{1, 2}),
        Case<KvFixture>("kv_delete_metadata", std::string("kv_delete_metadata"),
                        std::vector<uint64_t>{}),
        Case<TokenFixture>("token_revoke_accessor"),
        Case<SecretIdFixture>("approle_destroy_secret_id"),
        Case<LeaseFixture>("lease_revoke", false), Case<LeaseFixture>("lease_revoke_prefix", true),
        Case<PolicyFixture>("policy_replace"),
        Case<DestroyAndRevokeFixture>("kv_destroy_and_revoke_token")),
    ContractCaseName);

// ---------------------------------------------------------------------------

class VaultConnectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = MustStart();
    ASSERT_NE(fake_, nullptr);
    agent_ = fake_->CreateToken(Tok("writeback-agent", AgentRules()));
    token_file_ = WriteFile(dir_, "agent.token", agent_.secret);
    connector_ = Make(VaultCfg(fake_->address(), token_file_));
  }

  std::unique_ptr<Connector> Make(const writeback::v1::ConnectorInstanceConfig& cfg) {
    auto c = VaultConnector::Create(cfg);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  // Plan + Apply, which must both succeed.
  void MustApply(Connector& c, const Action& a) {
    auto plan = c.PlanChange(ctx_, a);
    ASSERT_TRUE(plan.ok()) << plan.status();
    auto applied = c.Apply(ctx_, a, *plan);
    ASSERT_TRUE(applied.ok()) << applied.status();
  }

  writeback::v1::Outcome VerifyOutcome(Connector& c, const Action& a) {
    auto v = c.Verify(ctx_, a);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? v->outcome() : writeback::v1::OUTCOME_UNSPECIFIED;
  }

  // Raw API call (as another client would), e.g. with an old token.
  vault::HttpResponse Raw(const std::string& method, const std::string& path,
                          const std::string& token, const std::string& body = "") {
    vault::HttpClient http({});
    vault::HttpRequest req{method, absl::StrCat(fake_->address(), "/v1/", path), {}, body};
    req.headers.emplace_back("X-Vault-Token", token);
    auto r = http.Do(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : vault::HttpResponse{};
  }

  wb::testing::TempDir dir_;
  std::unique_ptr<FakeVault> fake_;
  Credential agent_;
  std::string token_file_;
  std::unique_ptr<Connector> connector_;
  FakeClock clock_;
  CallContext ctx_{.deadline = absl::InfiniteFuture(), .clock = &clock_};
};

TEST_F(VaultConnectorTest, HostileNamesAreEncodedComponentByComponent) {
  const std::string path = "team a/we?ird=1#frag/100%/x%2Fy";
  fake_->KvPut("secret", path, {{"k", "v"}});
  auto plan = connector_->PlanChange(ctx_, Kv("kv_delete", path));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->no_change()) << "the fake must have found the secret under its real name";
  bool seen = false;
  for (const auto& r : fake_->Requests()) {
    if (r.method == "GET" && absl::StrContains(r.target, "/metadata/")) {
      EXPECT_EQ(r.target, "/v1/secret/metadata/team%20a/we%3Fird%3D1%23frag/100%25/x%252Fy");
      EXPECT_EQ(r.path, "/v1/secret/metadata/" + path);
      seen = true;
    }
  }
  EXPECT_TRUE(seen);
  MustApply(*connector_, Kv("kv_delete", path));
  EXPECT_EQ(VerifyOutcome(*connector_, Kv("kv_delete", path)), OUTCOME_VERIFIED);
}

TEST_F(VaultConnectorTest, HostileValuesAreRefusedBeforeAnyRequest) {
  struct Bad {
    std::string name;
    Action action;
  };
  std::vector<Bad> bad;
  for (const char* object : {"../sys/seal", "app/..", "app/./db", "", "/app", "app/", "a//b",
                             "a\nb", "a\x7f", "\xff\xfe"}) {
    bad.push_back({absl::StrCat("kv object ", absl::CEscape(object)), Kv("kv_destroy", object)});
  }
  for (const char* mount : {"..", "secret/..", "", "/secret", "secret//x"}) {
    Action a = Kv("kv_destroy", "app/db");
    a.params.mutable_vault()->set_mount(mount);
    bad.push_back({absl::StrCat("mount ", mount), a});
  }
  for (const char* acc : {"a/b", "..", "a b", "a%2F..", "a?b"}) {
    bad.push_back({absl::StrCat("accessor ", acc), VaultAction("token_revoke_accessor", acc)});
  }
  for (const char* role : {"../x", "a/b", "", "a b"}) {
    Action a = VaultAction("approle_destroy_secret_id", "acc1");
    a.params.mutable_vault()->set_role(role);
    bad.push_back({absl::StrCat("role ", role), a});
  }
  for (const char* name : {"root", "Root", "../default", "a/b"}) {
    Action a = VaultAction("policy_replace", name);
    a.params.mutable_vault()->set_policy("path \"x\" {}");
    bad.push_back({absl::StrCat("policy ", name), a});
  }
  for (const char* lease : {"database/creds/../x", "/x", "x/"}) {
    bad.push_back({absl::StrCat("lease ", lease), VaultAction("lease_revoke_prefix", lease)});
  }
  const size_t before = fake_->Requests().size();
  for (const auto& b : bad) {
    SCOPED_TRACE(b.name);
    auto plan = connector_->PlanChange(ctx_, b.action);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument) << plan.status();
    auto v = connector_->Verify(ctx_, b.action);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << v.status();
  }
  EXPECT_EQ(fake_->Requests().size(), before) << "a refused action reached the server";
}

TEST_F(VaultConnectorTest, KvVerifyIsFailedWhileReadableAndNeverCopiesSecretData) {
  fake_->KvPut("secret", "app/db", {{"password", "hunter2"}});
  auto v = connector_->Verify(ctx_, Kv("kv_delete", "app/db"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), OUTCOME_FAILED) << v->detail();
  EXPECT_FALSE(absl::StrContains(v->DebugString(), "hunter2"));
  auto plan = connector_->PlanChange(ctx_, Kv("kv_delete", "app/db"));
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(absl::StrContains(plan->DebugString(), "hunter2"));
}

TEST_F(VaultConnectorTest, SoftDeletedIsNotDestroyed) {
  fake_->KvPut("secret", "app/db", {{"password", "hunter2"}});
  MustApply(*connector_, Kv("kv_delete", "app/db"));
  EXPECT_EQ(VerifyOutcome(*connector_, Kv("kv_delete", "app/db")), OUTCOME_VERIFIED);
  auto v = connector_->Verify(ctx_, Kv("kv_destroy", "app/db", {1}));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->outcome(), OUTCOME_FAILED);
  EXPECT_TRUE(absl::StrContains(v->detail(), "deleted but not destroyed")) << v->detail();
  MustApply(*connector_, Kv("kv_destroy", "app/db", {1}));
  EXPECT_EQ(VerifyOutcome(*connector_, Kv("kv_destroy", "app/db", {1})), OUTCOME_VERIFIED);
  // Explicit versions go out as such (never "DELETE data/…", which would hit
  // whatever is latest by then).
  bool explicit_versions = false;
  for (const auto& r : fake_->Requests()) {
    if (r.path == "/v1/secret/destroy/app/db") {
      explicit_versions = nlohmann::json::parse(r.body)["versions"] == nlohmann::json::array({1});
    }
    EXPECT_FALSE(r.method == "DELETE" && absl::StrContains(r.path, "/data/"));
  }
  EXPECT_TRUE(explicit_versions);
}

TEST_F(VaultConnectorTest, AbsenceWithoutReadPermissionIsUnverified) {
  // The agent may delete but not read, and the server masks denials as 404.
  const Credential blind =
      fake_->CreateToken(Tok("blind-agent", {{"secret/metadata/*", {"delete"}},
                                             {"auth/token/revoke-accessor", {"update"}}}));
  auto c = Make(VaultCfg(fake_->address(), WriteFile(dir_, "blind.token", blind.secret)));
  ASSERT_NE(c, nullptr);
  fake_->SetDeniedStatus(404);
  fake_->KvPut("secret", "app/db", {{"password", "hunter2"}});

  // The secret is still there, yet every read answers 404: never VERIFIED.
  auto v = c->Verify(ctx_, Kv("kv_delete_metadata", "app/db"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), OUTCOME_UNVERIFIED) << v->detail();
  EXPECT_TRUE(absl::StrContains(v->detail(), "cannot tell")) << v->detail();
  // Nor does the plan call it "nothing to do".
  auto plan = c->PlanChange(ctx_, Kv("kv_delete_metadata", "app/db"));
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied) << plan.status();
  EXPECT_TRUE(absl::StrContains(plan.status().message(), "lacks 'read' on secret/metadata/app/db"))
      << plan.status();

  // After a real delete (by someone allowed), the blind check still cannot tell.
  fake_->SetDeniedStatus(403);
  MustApply(*connector_, Kv("kv_delete_metadata", "app/db"));
  fake_->SetDeniedStatus(404);
  EXPECT_EQ(VerifyOutcome(*c, Kv("kv_delete_metadata", "app/db")), OUTCOME_UNVERIFIED);
  EXPECT_EQ(VerifyOutcome(*c, Kv("kv_destroy", "app/db", {1})), OUTCOME_UNVERIFIED);
  EXPECT_EQ(VerifyOutcome(*connector_, Kv("kv_delete_metadata", "app/db")), OUTCOME_VERIFIED);

  // Same for tokens: a lookup the agent may not make proves nothing.
  const Credential leaked = fake_->CreateToken(Tok("leaked"));
  EXPECT_EQ(VerifyOutcome(*c, VaultAction("token_revoke_accessor", leaked.accessor)),
            OUTCOME_UNVERIFIED);
  fake_->SetDeniedStatus(403);
  EXPECT_EQ(VerifyOutcome(*c, VaultAction("token_revoke_accessor", leaked.accessor)),
            OUTCOME_UNVERIFIED);
}

TEST_F(VaultConnectorTest, RevokedTokenAndItsChildrenAreRefused) {
  const Credential leaked = fake_->CreateToken(Tok("leaked"));
  const Credential child = fake_->CreateToken(Tok("child", {}, leaked.secret));
  ASSERT_EQ(Raw("GET", "auth/token/lookup-self", leaked.secret).status, 200);
  const Action a = VaultAction("token_revoke_accessor", leaked.accessor);
  auto plan = connector_->PlanChange(ctx_, a);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(absl::StrContains(plan->changes(0), "every token it created")) << plan->changes(0);
  EXPECT_EQ(plan->before(0).facts().at("display_name"), "leaked");
  EXPECT_FALSE(absl::StrContains(plan->DebugString(), leaked.secret)) << "the token id leaked";
  ASSERT_TRUE(connector_->Apply(ctx_, a, *plan).ok());
  auto v = connector_->Verify(ctx_, a);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->outcome(), OUTCOME_VERIFIED) << v->detail();
  // Independent of the connector: the old token and its child are refused.
  EXPECT_EQ(Raw("GET", "auth/token/lookup-self", leaked.secret).status, 403);
  EXPECT_EQ(Raw("GET", "auth/token/lookup-self", child.secret).status, 403);
  // And the lookup the connector relies on answers as the docs say.
  const auto look = Raw("POST", "auth/token/lookup-accessor", fake_->root().secret,
                        nlohmann::json{{"accessor", leaked.accessor}}.dump());
  EXPECT_EQ(look.status, 400);
  EXPECT_TRUE(absl::StrContains(look.body, "invalid accessor")) << look.body;
}

TEST_F(VaultConnectorTest, DestroyedSecretIdNoLongerLogsIn) {
  fake_->CreateRole("approle", "billing", "role-id-billing", Tok("billing"));
  const Credential sid = fake_->CreateSecretId("approle", "billing");
  ASSERT_TRUE(fake_->Login("approle", "role-id-billing", sid.secret).ok());
  Action a = VaultAction("approle_destroy_secret_id", sid.accessor);
  a.params.mutable_vault()->set_role("billing");
  MustApply(*connector_, a);
  EXPECT_EQ(VerifyOutcome(*connector_, a), OUTCOME_VERIFIED);
  EXPECT_FALSE(fake_->Login("approle", "role-id-billing", sid.secret).ok());
  // A role that does not exist is an error, not "already compliant".
  a.params.mutable_vault()->set_role("nosuchrole");
  auto plan = connector_->PlanChange(ctx_, a);
  EXPECT_FALSE(plan.ok());
  EXPECT_EQ(VerifyOutcome(*connector_, a), OUTCOME_UNVERIFIED);
}

TEST_F(VaultConnectorTest, LeasesAreRevokedSynchronously) {
  fake_->CreateLease("database/creds/readonly/a1");
  fake_->CreateLease("database/creds/readonly/b2");
  fake_->CreateLease("database/creds/admin/c3");
  MustApply(*connector_, VaultAction("lease_revoke", "database/creds/readonly/a1"));
  MustApply(*connector_, VaultAction("lease_revoke_prefix", "database/creds/readonly"));
  int sync = 0;
  for (const auto& r : fake_->Requests()) {
    if (absl::StartsWith(r.path, "/v1/sys/leases/revoke")) {
      EXPECT_EQ(nlohmann::json::parse(r.body)["sync"], true) << r.path;
      ++sync;
    }
  }
  EXPECT_EQ(sync, 2);
  EXPECT_EQ(
      VerifyOutcome(*connector_, VaultAction("lease_revoke_prefix", "database/creds/readonly")),
      OUTCOME_VERIFIED);
  EXPECT_EQ(VerifyOutcome(*connector_, VaultAction("lease_revoke_prefix", "database/creds/admin")),
            OUTCOME_FAILED);
  EXPECT_TRUE(absl::StrContains(fake_->Snapshot(), "lease database/creds/admin/c3"));
}

TEST_F(VaultConnectorTest, PolicyPlanCapturesTheOldDocument) {
  fake_->PutPolicy("app-ci", kWidePolicy);
  Action a = VaultAction("policy_replace", "app-ci");
  a.params.mutable_vault()->set_policy(kNarrowPolicy);
  auto plan = connector_->PlanChange(ctx_, a);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const auto state = nlohmann::json::parse(plan->state());
  EXPECT_EQ(state["policy"]["old_rules"], kWidePolicy);
  EXPECT_EQ(plan->before(0).facts().at("rules"), kWidePolicy);
  ASSERT_TRUE(connector_->Apply(ctx_, a, *plan).ok());
  EXPECT_EQ(fake_->Policy("app-ci"), kNarrowPolicy);
  EXPECT_EQ(VerifyOutcome(*connector_, a), OUTCOME_VERIFIED);
  // Edited afterwards: no longer as decided.
  fake_->PutPolicy("app-ci", kWidePolicy);
  EXPECT_EQ(VerifyOutcome(*connector_, a), OUTCOME_FAILED);
  // Never creates a policy.
  Action missing = VaultAction("policy_replace", "does-not-exist");
  missing.params.mutable_vault()->set_policy(kNarrowPolicy);
  EXPECT_EQ(connector_->PlanChange(ctx_, missing).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(fake_->Policy("does-not-exist").has_value());
}

TEST_F(VaultConnectorTest, DestroyAndRevokeNeedsBothChecks) {
  fake_->KvPut("secret", "payments/stripe", {{"key", "sk_live_1"}});
  const Credential reader = fake_->CreateToken(Tok("payments-reader"));
  Action a = Kv("kv_destroy_and_revoke_token", "payments/stripe");
  a.params.mutable_vault()->set_token_accessor(reader.accessor);
  MustApply(*connector_, a);
  auto v = connector_->Verify(ctx_, a);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->outcome(), OUTCOME_VERIFIED) << v->detail();
  std::set<std::string> checks;
  for (const auto& o : v->after()) checks.insert(o.check());
  EXPECT_TRUE(checks.count("vault_kv_read_version")) << v->DebugString();
  EXPECT_TRUE(checks.count("vault_token_lookup_accessor")) << v->DebugString();
  // A new token under the same accessor cannot exist, but a new version of
  // the secret can: then the compound check fails.
  fake_->KvPut("secret", "payments/stripe", {{"key", "sk_live_2"}});
  EXPECT_EQ(VerifyOutcome(*connector_, a), OUTCOME_FAILED);
}

TEST_F(VaultConnectorTest, AllowlistsAreEnforced) {
  auto cfg = VaultCfg(fake_->address(), token_file_);
  cfg.mutable_vault()->add_allowed_kv_mounts("kv-apps");
  cfg.mutable_vault()->add_allowed_policies("app-ci");
  auto c = Make(cfg);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->PlanChange(ctx_, Kv("kv_destroy", "app/db")).status().code(),
            absl::StatusCode::kPermissionDenied);
  Action p = VaultAction("policy_replace", "admin");
  p.params.mutable_vault()->set_policy(kNarrowPolicy);
  EXPECT_EQ(c->PlanChange(ctx_, p).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(VaultConnectorTest, CheckUsesTheAgentTokenAndNeverShowsIt) {
  EXPECT_TRUE(connector_->Check(ctx_).ok());
  const std::string bogus = "hvs.not-a-real-token-0123456789";
  auto c = Make(VaultCfg(fake_->address(), WriteFile(dir_, "bogus.token", bogus)));
  ASSERT_NE(c, nullptr);
  const absl::Status s = c->Check(ctx_);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_FALSE(absl::StrContains(s.message(), bogus)) << s;
  auto plan = c->PlanChange(ctx_, Kv("kv_destroy", "app/db"));
  EXPECT_FALSE(absl::StrContains(plan.status().message(), bogus));
}

TEST_F(VaultConnectorTest, RotatedTokenFileIsPickedUpAfterA403) {
  ASSERT_TRUE(connector_->Check(ctx_).ok());
  // Revoke the agent's token; a new one is written to the file (as a Vault
  // Agent sink would do).
  ASSERT_EQ(Raw("POST", "auth/token/revoke-accessor", fake_->root().secret,
                nlohmann::json{{"accessor", agent_.accessor}}.dump())
                .status,
            204);
  EXPECT_EQ(connector_->Check(ctx_).code(), absl::StatusCode::kPermissionDenied);
  const Credential fresh = fake_->CreateToken(Tok("agent-2", AgentRules()));
  ASSERT_TRUE(fs::WriteFileAtomic(token_file_, fresh.secret + "\n").ok());
  EXPECT_TRUE(connector_->Check(ctx_).ok());
}

TEST_F(VaultConnectorTest, AppRoleLoginIsCachedAndRenewedOn403AndExpiry) {
  fake_->CreateRole("approle", "writeback-agent", "agent-role-id",
                    Tok("approle-agent", AgentRules(), "", 600));
  const Credential sid = fake_->CreateSecretId("approle", "writeback-agent");
  auto cfg = VaultCfg(fake_->address(), "");
  auto* ar = cfg.mutable_vault()->mutable_approle();
  ar->set_role_id_file(WriteFile(dir_, "role_id", "agent-role-id\n"));
  ar->set_secret_id_file(WriteFile(dir_, "secret_id", sid.secret + "\n"));
  auto c = Make(cfg);
  ASSERT_NE(c, nullptr);
  fake_->KvPut("secret", "app/db", {{"password", "hunter2"}});

  ASSERT_TRUE(c->Check(ctx_).ok());
  ASSERT_TRUE(c->PlanChange(ctx_, Kv("kv_destroy", "app/db")).ok());
  EXPECT_EQ(fake_->logins(), 1) << "the token must be cached";

  // Revoked behind the agent's back: a 403, one new login, and it works.
  for (const auto& acc : fake_->LiveAccessors()) {
    if (acc == agent_.accessor) continue;
    auto look = Raw("POST", "auth/token/lookup-accessor", fake_->root().secret,
                    nlohmann::json{{"accessor", acc}}.dump());
    if (absl::StrContains(look.body, "approle-agent")) {
      Raw("POST", "auth/token/revoke-accessor", fake_->root().secret,
          nlohmann::json{{"accessor", acc}}.dump());
    }
  }
  ASSERT_TRUE(c->Check(ctx_).ok());
  EXPECT_EQ(fake_->logins(), 2);

  // 80% of the 600 s lease later (by the call's clock): logs in again.
  clock_.Advance(absl::Seconds(481));
  ASSERT_TRUE(c->Check(ctx_).ok());
  EXPECT_EQ(fake_->logins(), 3);

  // The secret-id itself never shows in a request log line we keep besides
  // the login body, and never in an error.
  ASSERT_TRUE(fs::WriteFileAtomic(ar->secret_id_file(), "wrong-secret-id\n").ok());
  clock_.Advance(absl::Seconds(600));
  const absl::Status s = c->Check(ctx_);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_FALSE(absl::StrContains(s.message(), "wrong-secret-id")) << s;
}

TEST_F(VaultConnectorTest, NamespaceHeaderIsSent) {
  auto ns_fake = MustStart(NamespaceOpts("team-a/apps"));
  ASSERT_NE(ns_fake, nullptr);
  const Credential t = ns_fake->CreateToken(Tok("agent", AgentRules()));
  const std::string tf = WriteFile(dir_, "ns.token", t.secret);
  auto cfg = VaultCfg(ns_fake->address(), tf);
  auto without = Make(cfg);
  EXPECT_EQ(without->Check(ctx_).code(), absl::StatusCode::kPermissionDenied);
  cfg.mutable_vault()->set_namespace_("team-a/apps");
  auto with = Make(cfg);
  EXPECT_TRUE(with->Check(ctx_).ok());
  EXPECT_EQ(ns_fake->Requests().back().namespace_, "team-a/apps");
}

TEST_F(VaultConnectorTest, TlsWithAConfiguredCa) {
  auto pki = pki::Pki::Init(dir_.Sub("pki"), {}, absl::Now());
  ASSERT_TRUE(pki.ok()) << pki.status();
  const auto server = pki->controlplane();  // names 127.0.0.1
  auto tls_fake = MustStart(TlsOpts(server.tls.cert_file(), server.tls.key_file()));
  ASSERT_NE(tls_fake, nullptr);
  ASSERT_TRUE(absl::StartsWith(tls_fake->address(), "https://"));
  const Credential t = tls_fake->CreateToken(Tok("agent", AgentRules()));
  auto cfg = VaultCfg(tls_fake->address(), WriteFile(dir_, "tls.token", t.secret));
  auto untrusting = Make(cfg);  // system store: does not know this CA
  EXPECT_EQ(untrusting->Check(ctx_).code(), absl::StatusCode::kUnavailable);
  cfg.mutable_vault()->set_ca_file(pki->ca_file());
  auto trusting = Make(cfg);
  EXPECT_TRUE(trusting->Check(ctx_).ok());
}

TEST_F(VaultConnectorTest, ConfigIsValidated) {
  const std::string tf = token_file_;
  struct Case {
    std::string name;
    std::function<void(writeback::v1::VaultConfig&)> mutate;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"plain_http_remote", [](auto& v) { v.set_address("http://10.1.2.3:8200"); }, ".address"},
      {"no_scheme", [](auto& v) { v.set_address("vault:8200"); }, ".address"},
      {"path_in_address", [](auto& v) { v.set_address("https://vault/v1/secret"); }, ".address"},
      {"no_credential", [](auto& v) { v.clear_token_file(); }, "connectors[vault-prod].vault"},
      {"two_credentials",
       [&](auto& v) {
         v.mutable_approle()->set_role_id_file(tf);
         v.mutable_approle()->set_secret_id_file(tf);
       },
       "connectors[vault-prod].vault"},
      {"relative_token_file", [](auto& v) { v.set_token_file("agent.token"); }, ".token_file"},
      {"missing_token_file", [&](auto& v) { v.set_token_file(dir_.Sub("nope")); }, ".token_file"},
      {"missing_ca", [&](auto& v) { v.set_ca_file(dir_.Sub("ca.pem")); }, ".ca_file"},
      {"bad_namespace", [](auto& v) { v.set_namespace_("a/../b"); }, ".namespace"},
      {"bad_allowed_mount", [](auto& v) { v.add_allowed_kv_mounts("a//b"); },
       ".allowed_kv_mounts[0]"},
      {"root_in_allowed_policies", [](auto& v) { v.add_allowed_policies("root"); },
       ".allowed_policies[0]"},
      {"timeout_too_long", [](auto& v) { v.set_request_timeout_ms(600'000); },
       ".request_timeout_ms"},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.name);
    auto cfg = VaultCfg(fake_->address(), tf);
    k.mutate(*cfg.mutable_vault());
    auto c = VaultConnector::Create(cfg);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(c.status().message(), k.field)) << c.status();
  }
  writeback::v1::ConnectorInstanceConfig wrong;
  wrong.set_name("v");
  wrong.set_type("vault");
  EXPECT_FALSE(VaultConnector::Create(wrong).ok());
}

TEST_F(VaultConnectorTest, BuiltThroughTheRegistry) {
  Registry registry;
  RegisterBuiltinConnectors(registry);
  auto c = registry.Create(VaultCfg(fake_->address(), token_file_));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->type(), "vault");
}

}  // namespace
}  // namespace wb::connectors
