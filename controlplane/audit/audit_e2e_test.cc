// The audit chain end to end: a real control plane in-process
// (controlplane/api/test_env.h), a fake agent over mTLS, and whole wbctl
// commands (cli/, RunWbctl) against it: a decision's life appends the
// expected events in order; `wbctl audit verify` / `export`; then, with the
// control plane STOPPED, its RocksDB is edited directly and, after a
// restart, verify names the break (and so does the offline form).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/command.h"
#include "common/audit/chain.h"
#include "common/crypto/crypto.h"
#include "common/testing/wait.h"
#include "controlplane/api/test_env.h"
#include "controlplane/audit/raw_db_testing.h"

namespace wb::controlplane {
namespace {

namespace v1 = writeback::v1;
using audit::testing::RawDb;
using test::FakeAgent;
using test::TestEnv;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct CliResult {
  int code = -1;
  std::string out, err;
};

class AuditE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = TestEnv::Start();
    ASSERT_NE(env_, nullptr);
  }

  CliResult Wbctl(std::vector<std::string> args) {
    const auto& tls = env_->pki().operator_identity("alice").tls;
    for (const std::string& a : {std::string("--address"), absl::StrCat("127.0.0.1:", env_->port()),
                                 std::string("--controlplane-id"), env_->pki().controlplane_id(),
                                 std::string("--ca"), tls.ca_file(), std::string("--cert"),
                                 tls.cert_file(), std::string("--key"), tls.key_file()}) {
      args.push_back(a);
    }
    std::ostringstream out, err;
    cli::RunOptions run;
    run.out = &out;
    run.err = &err;
    CliResult r;
    r.code = cli::RunWbctl(args, run);
    r.out = out.str();
    r.err = err.str();
    return r;
  }
  std::string DataDir() const { return env_->dir() + "/data"; }

  // Agent a1 says hello once (and leaves), so that instance "hosts" has a
  // route and decisions for it can be submitted; their tasks stay queued.
  void RegisterAgent() {
    FakeAgent agent(env_->Channel(env_->pki().agent("a1").tls), env_->AgentId("a1"),
                    env_->AgentResultKey("a1"));
    ASSERT_TRUE(agent.Connect().ok());
    agent.Close();
  }

  // Submits a decision for `users` on instance "hosts"; returns its id.
  std::string Submit(const std::vector<std::string>& users) {
    auto stub = env_->Operator();
    grpc::ClientContext ctx;
    test::SetDeadline(&ctx);
    v1::SubmitDecisionRequest req;
    *req.mutable_spec() = test::SshSpec(users);
    v1::SubmitDecisionResponse resp;
    grpc::Status s = stub->SubmitDecision(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.decision_id();
  }

  // Every entry through the ExportAudit RPC.
  std::vector<v1::AuditEntryView> Export() {
    auto stub = env_->Operator();
    grpc::ClientContext ctx;
    test::SetDeadline(&ctx);
    auto reader = stub->ExportAudit(&ctx, v1::ExportAuditRequest());
    std::vector<v1::AuditEntryView> out;
    v1::AuditEntryView v;
    while (reader->Read(&v)) out.push_back(v);
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  // "KIND old->new" lines of the entries about `decision_id`.
  std::vector<std::string> KindsOf(const std::string& decision_id) {
    std::vector<std::string> out;
    for (const auto& v : Export()) {
      if (v.decision_id() != decision_id) continue;
      std::string line = v.kind();
      if (!v.new_state().empty()) {
        absl::StrAppend(&line, " ", v.old_state().empty() ? "" : v.old_state() + "->",
                        v.new_state());
      }
      out.push_back(line);
    }
    return out;
  }

  // The "head: SEQ:HEX" line of `audit verify`.
  static std::string HeadFrom(const std::string& out) {
    for (absl::string_view line : absl::StrSplit(out, '\n')) {
      if (absl::StartsWith(line, "head: ")) return std::string(line.substr(6));
    }
    return "";
  }

  std::unique_ptr<TestEnv> env_;
};

TEST_F(AuditE2eTest, ADecisionsLifeIsRecordedInOrderAndVerifies) {
  FakeAgent agent(env_->Channel(env_->pki().agent("a1").tls), env_->AgentId("a1"),
                  env_->AgentResultKey("a1"));
  ASSERT_TRUE(agent.Connect().ok());
  const std::string operator_id = env_->pki().operator_identity("alice").spiffe_id;

  // Decision 1: two targets, both applied and verified.
  const std::string d1 = Submit({"deploy", "ci"});
  auto t1 = agent.ReadTask();
  auto t2 = agent.ReadTask();
  ASSERT_TRUE(t1.ok() && t2.ok());
  for (const auto* t : {&*t1, &*t2}) {
    v1::Task task;
    ASSERT_TRUE(task.ParseFromString(t->payload()));
    ASSERT_TRUE(agent.Ack(task.task_id()));
  }
  for (const auto* t : {&*t1, &*t2}) {
    ASSERT_TRUE(agent.SendResult(agent.MakeResult(*t, v1::OUTCOME_VERIFIED)));
    auto ack = agent.ReadResultAck();
    ASSERT_TRUE(ack.ok() && ack->accepted()) << (ack.ok() ? ack->error() : "");
  }
  EXPECT_THAT(
      KindsOf(d1),
      ElementsAre("DECISION_SUBMITTED DECISION_STATE_DISPATCHED",
                  "DECISION_DISPATCHED TASK_STATE_QUEUED", "DECISION_DISPATCHED TASK_STATE_QUEUED",
                  "TASK_STATE_CHANGED TASK_STATE_QUEUED->TASK_STATE_DELIVERED",
                  "TASK_STATE_CHANGED TASK_STATE_QUEUED->TASK_STATE_DELIVERED", "TASK_RESULT",
                  "TASK_STATE_CHANGED TASK_STATE_DELIVERED->TASK_STATE_VERIFIED", "TASK_RESULT",
                  "TASK_STATE_CHANGED TASK_STATE_DELIVERED->TASK_STATE_VERIFIED",
                  "DECISION_STATE_CHANGED DECISION_STATE_DISPATCHED->DECISION_STATE_VERIFIED"));

  // Decision 2: canceled before its agent acknowledged it.
  const std::string d2 = Submit({"backup"});
  ASSERT_TRUE(agent.ReadTask().ok());
  {
    auto stub = env_->Operator();
    grpc::ClientContext ctx;
    test::SetDeadline(&ctx);
    v1::CancelDecisionRequest req;
    req.set_decision_id(d2);
    v1::CancelDecisionResponse resp;
    ASSERT_TRUE(stub->CancelDecision(&ctx, req, &resp).ok());
  }
  EXPECT_THAT(
      KindsOf(d2),
      ElementsAre("DECISION_SUBMITTED DECISION_STATE_DISPATCHED",
                  "DECISION_DISPATCHED TASK_STATE_QUEUED", "DECISION_CANCELED",
                  "TASK_STATE_CHANGED TASK_STATE_QUEUED->TASK_STATE_CANCELED",
                  "DECISION_STATE_CHANGED DECISION_STATE_DISPATCHED->DECISION_STATE_CANCELED"));

  // Actors and digests.
  const auto all = Export();
  for (const auto& v : all) {
    if (v.kind() == "DECISION_SUBMITTED" || v.kind() == "DECISION_CANCELED") {
      EXPECT_EQ(v.actor(), operator_id);
    }
    if (v.kind() == "TASK_RESULT") {
      EXPECT_EQ(v.actor(), env_->AgentId("a1"));
    }
    if (v.kind() == "DECISION_DISPATCHED") {
      EXPECT_EQ(v.actor(), env_->pki().controlplane_id());
      EXPECT_EQ(v.digest_hex().size(), 64u);
    }
  }
  auto d1_view = [&] {
    auto stub = env_->Operator();
    grpc::ClientContext ctx;
    test::SetDeadline(&ctx);
    v1::GetDecisionRequest req;
    req.set_decision_id(d1);
    v1::DecisionView view;
    EXPECT_TRUE(stub->GetDecision(&ctx, req, &view).ok());
    return view;
  }();
  // The chain starts with the test environment's instance bindings.
  size_t first = 0;
  while (first < all.size() && all[first].kind() != "DECISION_SUBMITTED") {
    EXPECT_EQ(all[first].kind(), "INSTANCE_BOUND");
    ++first;
  }
  ASSERT_LT(first + 3, all.size());
  EXPECT_EQ(all[first].digest_hex(),
            crypto::HexEncode(crypto::Sha256(d1_view.statement().SerializeAsString())));
  EXPECT_EQ(all[first + 3].digest_hex(), "") << "state changes carry no digest";

  // wbctl audit verify: OK, with the head to record.
  CliResult r = Wbctl({"audit", "verify"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("audit chain OK (control plane): ", all.size(),
                                            " entries checked")));
  const std::string head = HeadFrom(r.out);
  EXPECT_TRUE(absl::StartsWith(head, absl::StrCat(all.size(), ":"))) << r.out;
  r = Wbctl({"audit", "verify", "--expect-head", head, "-o", "json"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json["ok"], true);
  EXPECT_EQ(json["anchor_checked"], true);
  EXPECT_EQ(json["entries_checked"], absl::StrCat(all.size()));

  // wbctl audit export: JSON Lines that re-verify from their own bytes.
  const std::string file = env_->dir() + "/audit.jsonl";
  r = Wbctl({"audit", "export", "--out", file});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("exported ", all.size(), " audit entries (seq 1..",
                                            all.size(), ")")));
  std::ifstream in(file);
  std::string line, prev = crypto::HexEncode(std::string(32, '\0'));
  size_t lines = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    auto bytes = crypto::Base64Decode(j["event_base64"].get<std::string>());
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ(crypto::HexEncode(audit::EntryHash(*bytes)), j["hash_hex"]);
    EXPECT_EQ(j["prev_hash_hex"], prev);
    prev = j["hash_hex"];
    ++lines;
  }
  EXPECT_EQ(lines, all.size());
  r = Wbctl({"audit", "export", "--from", "3", "--limit", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2);
  EXPECT_THAT(r.out, HasSubstr("\"seq\":\"3\""));
  std::printf("audit e2e: %zu entries for 2 decisions, verified and exported\n", all.size());
}

TEST_F(AuditE2eTest, ADeletedRecordIsReportedAfterARestartAndOffline) {
  RegisterAgent();
  for (int i = 0; i < 3; ++i) Submit({absl::StrCat("user", i)});
  const size_t before = Export().size();
  // Two instance bindings (the test environment), then submitted +
  // dispatched, three times.
  ASSERT_EQ(before, 8u);

  env_->StopServer();
  RawDb(DataDir()).Delete(5);

  // Offline, with the control plane stopped.
  CliResult r = Wbctl({"audit", "verify", "--data-dir", DataDir()});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("BROKEN (data dir"));
  EXPECT_THAT(r.out, HasSubstr("seq 5: missing (the chain jumps from 4 to 6)"));

  ASSERT_TRUE(env_->StartServer().ok());
  r = Wbctl({"audit", "verify"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("audit chain BROKEN (control plane): seq 5: missing (the chain "
                               "jumps from 4 to 6)"));
  r = Wbctl({"audit", "verify", "-o", "json"});
  EXPECT_EQ(r.code, 1);
  auto json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json["ok"], false);
  EXPECT_EQ(json["broken_seq"], "5");

  // The chain continues from its head after the restart.
  Submit({"after-restart"});
  auto entries = Export();
  ASSERT_EQ(entries.size(), before - 1 + 2);
  EXPECT_EQ(entries.back().seq(), before + 2);
  EXPECT_EQ(entries[entries.size() - 2].kind(), "DECISION_SUBMITTED");
}

TEST_F(AuditE2eTest, AChangedRecordIsReportedAfterARestart) {
  RegisterAgent();
  for (int i = 0; i < 2; ++i) Submit({absl::StrCat("user", i)});
  env_->StopServer();
  {
    RawDb db(DataDir());
    std::string v = db.Get(4);
    v[v.size() / 2] ^= 0x04;
    db.Put(4, v);
  }
  ASSERT_TRUE(env_->StartServer().ok());
  CliResult r = Wbctl({"audit", "verify"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("seq 4: "));
}

TEST_F(AuditE2eTest, ACutTailIsReportedOnlyAgainstAnAnchor) {
  RegisterAgent();
  for (int i = 0; i < 4; ++i) Submit({absl::StrCat("user", i)});
  CliResult r = Wbctl({"audit", "verify"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string head = HeadFrom(r.out);
  ASSERT_TRUE(absl::StartsWith(head, "10:")) << r.out;  // 2 bindings + 4 x 2

  env_->StopServer();
  {
    RawDb db(DataDir());
    for (uint64_t s = 8; s <= 10; ++s) db.Delete(s);
  }
  ASSERT_TRUE(env_->StartServer().ok());
  r = Wbctl({"audit", "verify"});
  EXPECT_EQ(r.code, 0) << "a cut tail alone is a valid chain (documented limit)";
  r = Wbctl({"audit", "verify", "--expect-head", head});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("seq 10: missing (the chain ends at seq 7"));
  r = Wbctl({"audit", "verify", "--expect-head", "8:nothex"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--expect-head"));
}

TEST_F(AuditE2eTest, BadInputIsAUsageErrorNamingTheFlag) {
  CliResult r = Wbctl({"audit", "verify", "--data-dir", env_->dir() + "/not-a-data-dir"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--data-dir"));
  r = Wbctl({"audit", "export", "--from", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--from"));
  r = Wbctl({"audit", "export", "--out", env_->dir() + "/no/such/dir/audit.jsonl"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--out"));
  // A chain of only the test environment's two instance bindings verifies.
  r = Wbctl({"audit", "verify"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("2 entries checked"));
}

}  // namespace
}  // namespace wb::controlplane
