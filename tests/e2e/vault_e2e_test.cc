// "Destroy secret X and revoke the token that read it", end to end: a real
// control plane and a real agent (tests/e2e/harness.h) with the real vault
// connector, against the Vault API fake (connectors/vault/testing), because
// Vault itself cannot be installed on the build machines.
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "common/testing/temp_dir.h"
#include "connectors/vault/testing/fake_vault.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace wb::e2e {
namespace {

using connectors::vault::testing::AclRule;
using connectors::vault::testing::Credential;
using connectors::vault::testing::FakeVault;
using connectors::vault::testing::TokenSpec;

TokenSpec Agent(std::vector<AclRule> rules) {
  TokenSpec t;
  t.display_name = "writeback-agent";
  t.rules = std::move(rules);
  return t;
}

class VaultE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto f = FakeVault::Start({});
    ASSERT_TRUE(f.ok()) << f.status();
    fake_ = std::move(*f);
    fake_->EnableKv("secret");
    fake_->KvPut("secret", "payments/stripe", {{"key", "sk_live_first"}});
    fake_->KvPut("secret", "payments/stripe", {{"key", "sk_live_exposed"}});
    fake_->KvPut("secret", "payments/other", {{"key", "untouched"}});
    TokenSpec reader;
    reader.display_name = "ci-payments-reader";
    reader_ = fake_->CreateToken(reader);
  }

  // Starts a deployment whose agent uses a token with `rules`.
  void StartWith(std::vector<AclRule> rules) {
    const Credential agent = fake_->CreateToken(Agent(std::move(rules)));
    const std::string token_file = dir_.Sub("vault.token");
    ASSERT_TRUE(fs::WriteFileAtomic(token_file, agent.secret).ok());
    writeback::v1::ConnectorInstanceConfig c;
    c.set_name("vault-prod");
    c.set_type("vault");
    c.add_allowed_operations("kv_destroy_and_revoke_token");
    c.mutable_vault()->set_address(fake_->address());
    c.mutable_vault()->set_token_file(token_file);
    c.mutable_vault()->add_allowed_kv_mounts("secret");
    Harness::Options o;
    o.agents["a1"] = {c};
    auto h = Harness::Start(o);
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = std::move(*h);
  }

  writeback::v1::DecisionSpec Spec() const {
    writeback::v1::DecisionSpec s;
    s.set_connector_instance("vault-prod");
    s.set_operation("kv_destroy_and_revoke_token");
    auto* p = s.mutable_params()->mutable_vault();
    p->set_mount("secret");
    p->set_token_accessor(reader_.accessor);
    s.add_targets()->set_object("payments/stripe");
    s.set_reason("Stripe key printed in a CI log; destroy it and revoke the token that read it");
    s.set_reference("INC-2041");
    return s;
  }

  wb::testing::TempDir dir_;
  std::unique_ptr<FakeVault> fake_;
  Credential reader_;
  std::unique_ptr<Harness> h_;
};

TEST_F(VaultE2eTest, DestroySecretAndRevokeReaderEndsVerifiedWithEvidenceFromBothChecks) {
  StartWith({{"secret/data/*", {"read"}},
             {"secret/metadata/*", {"read"}},
             {"secret/destroy/*", {"update"}},
             {"auth/token/lookup-accessor", {"update"}},
             {"auth/token/revoke-accessor", {"update"}}});
  ASSERT_NE(h_, nullptr);
  auto sub = h_->Submit(Spec());
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto view = h_->WaitTerminal(sub->decision_id());
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->state(), writeback::v1::DECISION_STATE_VERIFIED) << view->DebugString();
  ASSERT_EQ(view->tasks_size(), 1);
  const auto& t = view->tasks(0);
  EXPECT_EQ(t.outcome(), writeback::v1::OUTCOME_VERIFIED) << t.verification().detail();
  EXPECT_EQ(t.plan().changes_size(), 3) << t.plan().DebugString();  // 2 versions + 1 token

  // Evidence from both checks, as observed after the change.
  int destroyed_versions = 0;
  bool token_gone = false;
  for (const auto& o : t.verification().after()) {
    if (o.check() == "vault_kv_read_version") {
      EXPECT_EQ(o.facts().at("http_status"), "404");
      if (o.facts().at("destroyed") == "true") ++destroyed_versions;
    }
    if (o.check() == "vault_token_lookup_accessor") {
      token_gone = o.facts().at("http_status") == "400";
    }
  }
  EXPECT_EQ(destroyed_versions, 2) << t.verification().DebugString();
  EXPECT_TRUE(token_gone) << t.verification().DebugString();
  EXPECT_FALSE(absl::StrContains(view->DebugString(), "sk_live")) << "secret data in evidence";

  // Independently of Writeback: the token is refused, the data is gone, the
  // neighbour is untouched.
  EXPECT_FALSE(fake_->TokenValid(reader_.secret));
  const std::string state = fake_->Snapshot();
  EXPECT_FALSE(absl::StrContains(state, "sk_live")) << state;
  EXPECT_TRUE(absl::StrContains(state, "key=untouched")) << state;
}

TEST_F(VaultE2eTest, AnAgentThatCannotReadBackDoesNotClaimVerified) {
  // May destroy and revoke, may read metadata (to plan), but may not read the
  // versions back: the change happens, the proof cannot.
  StartWith({{"secret/metadata/*", {"read"}},
             {"secret/destroy/*", {"update"}},
             {"auth/token/lookup-accessor", {"update"}},
             {"auth/token/revoke-accessor", {"update"}}});
  ASSERT_NE(h_, nullptr);
  auto sub = h_->Submit(Spec());
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto view = h_->WaitTerminal(sub->decision_id());
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_NE(view->state(), writeback::v1::DECISION_STATE_VERIFIED) << view->DebugString();
  ASSERT_EQ(view->tasks_size(), 1);
  EXPECT_EQ(view->tasks(0).outcome(), writeback::v1::OUTCOME_UNVERIFIED)
      << view->tasks(0).DebugString();
  EXPECT_FALSE(fake_->TokenValid(reader_.secret)) << "the change itself was made";
}

}  // namespace
}  // namespace wb::e2e
