// The vault connector against FakeVault (connectors/vault/testing): token
// revocation, AppRole secret-ids, leases, policies, kv_destroy_and_revoke_token,
// and the connector's configuration and credentials (allowlists, token file
// rotation, AppRole login, namespace, TLS, config validation). The contract
// suite and the KV tests: vault_test.cc.
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "common/pki/pki.h"
#include "connectors/registry.h"
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
using writeback::v1::OUTCOME_FAILED;
using writeback::v1::OUTCOME_UNVERIFIED;
using writeback::v1::OUTCOME_VERIFIED;

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
