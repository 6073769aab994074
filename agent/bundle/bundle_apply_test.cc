// `bundle apply` with the real journal, executor and ssh_authorized_keys
// connector on sandboxed files (pinned mode): applies, verifies and writes a
// signed result bundle; resumes from the journal; refuses a partial bundle,
// an expired one and a journal held by another process, applying nothing.
#include "agent/bundle/bundle_apply.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "agent/journal/journal.h"
#include "agent/testing/task_factory.h"
#include "common/bundle/bundle.h"
#include "common/fs/fs.h"
#include "common/testing/temp_dir.h"
#include "common/trust/approvals.h"
#include "common/trust/testing.h"
#include "tests/integration/ssh_test_keys.h"

namespace wb::agent {
namespace {

using writeback::v1::SignedEnvelope;

constexpr char kAgent[] = "spiffe://writeback.test/agent/gap";

class BundleApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    connectors::RegisterBuiltinConnectors(registry_);
    leaked_ = e2e::MakeSshKey("leaked");
    kept_ = e2e::MakeSshKey("kept");
    for (const char* u : {"alice", "bob"}) {
      ASSERT_TRUE(fs::MakeDirs(dir_.Sub(absl::StrCat("home/", u, "/.ssh")), 0700).ok());
      ASSERT_TRUE(
          fs::WriteFileAtomic(Keys(u), absl::StrCat(kept_.line, "\n", leaked_.line, "\n")).ok());
    }
    ASSERT_TRUE(
        fs::WriteFileAtomic(dir_.path() + "/dispatch.pub", dispatch_.public_key().ToPem()).ok());
    ASSERT_TRUE(fs::WriteFileAtomic(dir_.path() + "/result.key", result_key_.ToPem()).ok());
    cfg_.set_agent_id(kAgent);
    cfg_.set_result_key_file(dir_.path() + "/result.key");
    cfg_.set_data_dir(dir_.Sub("data"));
    cfg_.add_dispatch_public_key_files(dir_.path() + "/dispatch.pub");
    auto* c = cfg_.add_connectors();
    c->set_name("ssh-main");
    c->set_type("ssh_authorized_keys");
    c->add_allowed_operations("remove_key");
    c->mutable_ssh_authorized_keys()->set_path_template(dir_.path() +
                                                        "/home/{user}/.ssh/authorized_keys");
  }

  std::string Keys(const std::string& user) {
    return absl::StrCat(dir_.path(), "/home/", user, "/.ssh/authorized_keys");
  }
  std::string KeysNow(const std::string& user) { return *fs::ReadFile(Keys(user)); }

  // A bundle removing the leaked key for alice and bob; written to a file.
  writeback::v1::TaskBundle Bundle(std::vector<std::string> users = {"alice", "bob"},
                                   absl::Duration trip = absl::Hours(1),
                                   const crypto::Ed25519PrivateKey* approver = nullptr,
                                   const crypto::Ed25519PrivateKey* manifest_key = nullptr) {
    writeback::v1::BundleManifest m;
    m.set_bundle_id("b-test");
    m.set_agent_id(kAgent);
    m.set_controlplane_id("spiffe://writeback.test/controlplane/cp");
    m.set_created_at_unix_ms(absl::ToUnixMillis(now_));
    m.set_expires_at_unix_ms(absl::ToUnixMillis(now_ + trip));
    std::vector<SignedEnvelope> tasks;
    for (const std::string& u : users) {
      testing::TaskSpec s;
      s.task_id = absl::StrCat("t-", u);
      s.decision_id = absl::StrCat("d-", u);
      s.version = u == "alice" ? 1 : 2;
      s.audience = kAgent;
      s.object = u;
      s.fingerprint = leaked_.fingerprint;
      s.now = now_;
      s.ttl = trip;
      const std::string statement = testing::MakeStatement(s).SerializeAsString();
      writeback::v1::Task task = testing::MakeTaskFor(s, statement, dispatch_.key_id());
      // Root mode: alice's task carries an approval, bob's none.
      if (approver != nullptr && u == "alice") {
        *task.add_approvals() = trust::Approve(statement, *approver, now_);
      }
      tasks.push_back(testing::SignTask(task, dispatch_));
      auto* e = m.add_entries();
      e->set_task_id(s.task_id);
      e->set_task_digest(bundle::PayloadDigest(tasks.back()));
    }
    const crypto::Ed25519PrivateKey& key = manifest_key != nullptr ? *manifest_key : dispatch_;
    return bundle::MakeTaskBundle(
        envelope::Sign(writeback::v1::PAYLOAD_TYPE_BUNDLE_MANIFEST, m.SerializeAsString(), key),
        std::move(tasks));
  }

  absl::StatusOr<BundleApplyReport> Apply(const writeback::v1::TaskBundle& b) {
    const std::string path = dir_.path() + "/tasks.bundle";
    EXPECT_TRUE(fs::WriteFileAtomic(path, b.SerializeAsString()).ok());
    BundleApplyOptions o;
    o.bundle_path = path;
    o.out_path = out_;
    o.wait = absl::Seconds(30);
    return ApplyBundle(cfg_, registry_, o, &clock_);
  }

  wb::testing::TempDir dir_;
  connectors::Registry registry_;
  e2e::SshTestKey leaked_, kept_;
  crypto::Ed25519PrivateKey dispatch_ = crypto::Ed25519PrivateKey::Generate();
  crypto::Ed25519PrivateKey result_key_ = crypto::Ed25519PrivateKey::Generate();
  writeback::v1::AgentConfig cfg_;
  absl::Time now_ = absl::Now();
  SystemClock clock_;
  std::string out_ = dir_.path() + "/results.bundle";
};

TEST_F(BundleApplyTest, AppliesVerifiesAndWritesASignedResultBundle) {
  auto r = Apply(Bundle());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->tasks.size(), 2u);
  for (const auto& t : r->tasks) {
    EXPECT_EQ(t.result.outcome(), writeback::v1::OUTCOME_VERIFIED) << t.result.DebugString();
    EXPECT_FALSE(t.from_journal);
  }
  EXPECT_EQ(KeysNow("alice"), absl::StrCat(kept_.line, "\n"));
  EXPECT_EQ(KeysNow("bob"), absl::StrCat(kept_.line, "\n"));
  // The file verifies with this agent's result key and carries the manifest.
  auto f = bundle::ReadResultBundleFile(out_);
  ASSERT_TRUE(f.ok()) << f.status();
  envelope::Keyring keys;
  keys.Add(dispatch_.public_key());
  auto v = bundle::VerifyResultBundle(*f, result_key_.public_key(), keys);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->bundle.results_size(), 2);
  EXPECT_EQ(v->manifest.bundle_id(), "b-test");

  // Run again (as after an interruption): the stored results, nothing redone.
  auto again = Apply(Bundle());
  ASSERT_TRUE(again.ok()) << again.status();
  for (const auto& t : again->tasks) {
    EXPECT_TRUE(t.from_journal);
    EXPECT_EQ(t.result.outcome(), writeback::v1::OUTCOME_VERIFIED);
  }
}

TEST_F(BundleApplyTest, ResumesAnInterruptedRun) {
  // The run was interrupted after alice's task (simulated by applying the
  // same signed bytes for alice alone); the full bundle then finishes bob's
  // and returns alice's stored result without acting again.
  auto first = Apply(Bundle({"alice"}));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(KeysNow("alice"), absl::StrCat(kept_.line, "\n"));
  EXPECT_NE(KeysNow("bob"), absl::StrCat(kept_.line, "\n"));
  const std::string first_file = *fs::ReadFile(out_);
  // Put the leaked key back for alice: a second apply would remove it again.
  ASSERT_TRUE(
      fs::WriteFileAtomic(Keys("alice"), absl::StrCat(kept_.line, "\n", leaked_.line, "\n")).ok());
  auto r = Apply(Bundle());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->tasks.size(), 2u);
  EXPECT_TRUE(r->tasks[0].from_journal);
  EXPECT_FALSE(r->tasks[1].from_journal);
  EXPECT_NE(KeysNow("alice").find(leaked_.line), std::string::npos) << "alice's task ran twice";
  EXPECT_EQ(KeysNow("bob"), absl::StrCat(kept_.line, "\n"));
  auto f = bundle::ReadResultBundleFile(out_);
  ASSERT_TRUE(f.ok()) << f.status();
  writeback::v1::ResultBundle rb;
  ASSERT_TRUE(rb.ParseFromString(f->bundle().payload()));
  ASSERT_EQ(rb.results_size(), 2);
  // Alice's result is exactly the journaled signed bytes of the first run.
  auto f1 = bundle::ParseResultBundleFile(first_file, "first");
  ASSERT_TRUE(f1.ok());
  writeback::v1::ResultBundle rb1;
  ASSERT_TRUE(rb1.ParseFromString(f1->bundle().payload()));
  EXPECT_EQ(rb.results(0).payload(), rb1.results(0).payload());
}

TEST_F(BundleApplyTest, RefusalsApplyNothing) {
  const std::string before = KeysNow("alice");
  // One task removed.
  auto partial = Bundle();
  partial.mutable_tasks()->RemoveLast();
  auto r = Apply(partial);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("a task was removed"), std::string::npos) << r.status();
  // Expired before it arrived.
  now_ -= absl::Hours(3);
  r = Apply(Bundle({"alice", "bob"}, absl::Hours(1)));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("expired at"), std::string::npos) << r.status();
  now_ += absl::Hours(3);
  // For another agent.
  cfg_.set_agent_id("spiffe://writeback.test/agent/other");
  r = Apply(Bundle());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not for this agent"), std::string::npos) << r.status();
  cfg_.set_agent_id(kAgent);
  // The journal is held (the agent daemon runs).
  {
    ASSERT_TRUE(fs::MakeDirs(cfg_.data_dir(), 0700).ok());
    auto held = Journal::Open(cfg_.data_dir() + "/journal");
    ASSERT_TRUE(held.ok()) << held.status();
    r = Apply(Bundle());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("is in use by another process"), std::string::npos)
        << r.status();
  }
  EXPECT_EQ(KeysNow("alice"), before);
  EXPECT_FALSE(fs::ReadFile(out_).ok());
}

TEST_F(BundleApplyTest, RootModeTrustsThePolicyAndChecksApprovals) {
  // A root-signed policy naming the dispatch key and one approver.
  trust::testing::PolicyKeys pk;
  pk.dispatch = dispatch_;
  writeback::v1::TrustPolicy policy = trust::testing::MakePolicy(pk, "writeback.test", 1, 1);
  ASSERT_TRUE(fs::WriteFileAtomic(dir_.path() + "/root.pub", pk.root.public_key().ToPem()).ok());
  ASSERT_TRUE(fs::WriteFileAtomic(dir_.path() + "/policy.signed",
                                  envelope::Sign(writeback::v1::PAYLOAD_TYPE_TRUST_POLICY,
                                                 policy.SerializeAsString(), pk.root)
                                      .SerializeAsString())
                  .ok());
  cfg_.clear_dispatch_public_key_files();
  cfg_.set_trust_root_public_key_file(dir_.path() + "/root.pub");
  cfg_.set_trust_policy_file(dir_.path() + "/policy.signed");

  // A manifest signed by a key the policy does not list: refused.
  auto stranger = crypto::Ed25519PrivateKey::Generate();
  auto bad = Apply(Bundle({"alice", "bob"}, absl::Hours(1), &pk.approvers[0], &stranger));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not signed by a trusted dispatch key"), std::string::npos)
      << bad.status();
  EXPECT_NE(KeysNow("alice").find(leaked_.line), std::string::npos);

  auto r = Apply(Bundle({"alice", "bob"}, absl::Hours(1), &pk.approvers[0]));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->tasks.size(), 2u);
  EXPECT_EQ(r->tasks[0].result.outcome(), writeback::v1::OUTCOME_VERIFIED)
      << r->tasks[0].result.DebugString();
  EXPECT_EQ(r->tasks[1].result.outcome(), writeback::v1::OUTCOME_REJECTED);
  EXPECT_EQ(r->tasks[1].result.reject_reason(),
            writeback::v1::REJECT_REASON_INSUFFICIENT_APPROVALS);
  EXPECT_EQ(KeysNow("alice"), absl::StrCat(kept_.line, "\n"));
  EXPECT_NE(KeysNow("bob").find(leaked_.line), std::string::npos) << "unapproved task applied";
}

}  // namespace
}  // namespace wb::agent
