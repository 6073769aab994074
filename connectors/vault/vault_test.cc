// The vault connector against FakeVault (connectors/vault/testing), which
// follows Vault's API documentation endpoint by endpoint: the contract suite
// for every operation, and KV and input-validation tests. Tokens, AppRole,
// leases, policies and configuration: vault_credentials_test.cc.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "connectors/testing/contract_suite.h"
#include "connectors/vault/testing/fake_vault.h"
#include "connectors/vault/vault_test_fixture.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace wb::connectors {
namespace {

using vault::testing::Credential;
using vault::testing::FakeVault;
using vaulttest::AgentRules;
using vaulttest::kNarrowPolicy;
using vaulttest::Kv;
using vaulttest::kWidePolicy;
using vaulttest::MustStart;
using vaulttest::Tok;
using vaulttest::VaultAction;
using vaulttest::VaultCfg;
using vaulttest::VaultConnectorTest;
using vaulttest::WriteFile;
using ::wb::connectors::testing::ConnectorContractTest;
using ::wb::connectors::testing::ContractCase;
using ::wb::connectors::testing::ContractCaseName;
using ::wb::connectors::testing::ContractFixture;
using ::wb::connectors::testing::StalePlanPolicy;
using writeback::v1::OUTCOME_FAILED;
using writeback::v1::OUTCOME_UNVERIFIED;
using writeback::v1::OUTCOME_VERIFIED;

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

}  // namespace
}  // namespace wb::connectors
