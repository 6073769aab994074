// Shared by the vault connector tests (vault_test.cc,
// vault_credentials_test.cc): helpers that start a FakeVault
// (connectors/vault/testing) and build configs and actions, and the
// VaultConnectorTest fixture. Test-only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/actions/actions.h"
#include "common/clock/clock.h"
#include "common/fs/fs.h"
#include "common/testing/temp_dir.h"
#include "connectors/connector.h"
#include "connectors/vault/http_client.h"
#include "connectors/vault/testing/fake_vault.h"
#include "connectors/vault/vault.h"
#include "gtest/gtest.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors::vaulttest {

using vault::testing::AclRule;
using vault::testing::Credential;
using vault::testing::FakeVault;
using vault::testing::TokenSpec;

// The agent's token, granted exactly what docs/connectors/vault.md lists.
inline std::vector<AclRule> AgentRules() {
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

inline TokenSpec Tok(std::string name, std::vector<AclRule> rules = {}, std::string parent = "",
                     int64_t ttl = 3600, std::vector<std::string> policies = {"default"}) {
  TokenSpec t;
  t.display_name = std::move(name);
  t.rules = std::move(rules);
  t.parent_token = std::move(parent);
  t.ttl_seconds = ttl;
  t.policies = std::move(policies);
  return t;
}

inline std::unique_ptr<FakeVault> MustStart(FakeVault::Options opts = {}) {
  auto f = FakeVault::Start(std::move(opts));
  EXPECT_TRUE(f.ok()) << f.status();
  if (!f.ok()) return nullptr;
  (*f)->EnableKv("secret");
  (*f)->EnableAppRole("approle");
  return std::move(*f);
}

inline std::string WriteFile(const wb::testing::TempDir& dir, const std::string& name,
                             const std::string& content) {
  const std::string path = dir.Sub(name);
  EXPECT_TRUE(fs::WriteFileAtomic(path, content).ok());
  return path;
}

inline writeback::v1::ConnectorInstanceConfig VaultCfg(const std::string& address,
                                                       const std::string& token_file) {
  writeback::v1::ConnectorInstanceConfig cfg;
  cfg.set_name("vault-prod");
  cfg.set_type("vault");
  for (const auto& op : actions::OperationsOf("vault")) cfg.add_allowed_operations(op);
  cfg.mutable_vault()->set_address(address);
  if (!token_file.empty()) cfg.mutable_vault()->set_token_file(token_file);
  return cfg;
}

inline Action VaultAction(const std::string& op, const std::string& object) {
  Action a;
  a.operation = op;
  a.object = object;
  a.task_id = "t-1";
  a.params.mutable_vault();
  return a;
}

inline Action Kv(const std::string& op, const std::string& path,
                 std::vector<uint64_t> versions = {}) {
  Action a = VaultAction(op, path);
  a.params.mutable_vault()->set_mount("secret");
  for (uint64_t v : versions) a.params.mutable_vault()->add_versions(v);
  return a;
}

inline constexpr char kWidePolicy[] =
    "path \"secret/data/*\" {\n  capabilities = [\"read\", \"update\"]\n}\n";
inline constexpr char kNarrowPolicy[] =
    "path \"secret/data/app/*\" {\n  capabilities = [\"read\"]\n}\n";

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

}  // namespace wb::connectors::vaulttest
