// Compromised database (issue 8, docs/security.md "the control plane's
// database"): with the control plane stopped, the test edits its RocksDB
// directly, as an attacker holding the disk and the dispatch key (it lives on
// the control plane host) but neither the trust root nor an approver key:
//   a. a destructive decision without approvals, its task signed and QUEUED;
//   b. a decision whose task carries approvals copied from another decision;
//   c. widened routing: a task for another agent's instance addressed to a1,
//      a2's task put in a1's outbox, and a2's AgentRecord given ssh-a so that
//      the control plane routes an (honestly approved) ssh-a decision to a2;
//   d. audit chain entries deleted in the middle, or the tail truncated;
//   e. the honest, approved decision replayed under a new task id (its exact
//      statement and real approvals) after the key it removed was re-added.
// After the restart the agents refuse every resulting task with the reason
// code of their check, nothing is applied, and VerifyAudit names the break.
// (While the edited binding gives ssh-a to a2, a1's offer of ssh-a is
// refused; its stream is served. The statement of the rerouted decision
// names a2 — what the approver signed — and a2 refuses it: NOT_ALLOWED.)
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "common/fs/fs.h"
#include "common/trust/approvals.h"
#include "common/trust/policy.h"
#include "controlplane/audit/raw_db_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/trust_fixture.h"
#include "tests/integration/ssh_test_keys.h"

namespace wb::e2e {
namespace {

using ::testing::HasSubstr;
using writeback::v1::RejectReason;

constexpr char kDomain[] = "writeback.test";

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The store's key layout (controlplane/store/rocksdb_store.h).
std::string BigEndian(uint64_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}
uint64_t ParseBigEndian64(const std::string& s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}
std::string OutboxKey(const std::string& agent_id, uint64_t version, uint32_t target_index) {
  return absl::StrCat(agent_id, std::string(1, '\0'), BigEndian(version, 8),
                      BigEndian(target_index, 4));
}

// One forged task (and its decision) as the dispatcher would have stored it.
struct Forgery {
  std::string what;
  std::string instance;
  std::string object;
  google::protobuf::RepeatedPtrField<writeback::v1::Approval> approvals;
  std::string audience;      // Task.audience (signed)
  std::string outbox_agent;  // whose outbox, TaskRecord.agent_id
  RejectReason expect = writeback::v1::REJECT_REASON_UNSPECIFIED;
  // Filled by Forge.
  std::string decision_id;
  std::string task_id;
};

class CompromisedDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) approver_keys_.push_back(crypto::Ed25519PrivateKey::Generate());
    key_ = MakeSshKey("must-survive@ops");
  }

  writeback::v1::TrustPolicy Policy(const std::string& dispatch_pub_file) {
    return ThreeApproverPolicy(kDomain, 1, dispatch_pub_file, approver_keys_);
  }

  std::string WriteSigned(const writeback::v1::TrustPolicy& p, const std::string& path) {
    auto env = trust::SignPolicy(p, root_);
    EXPECT_TRUE(env.ok()) << env.status();
    EXPECT_TRUE(fs::WriteFileAtomic(path, env->SerializeAsString()).ok());
    return path;
  }

  // The one signed policy file of the deployment (signed once: the agents
  // and the control plane hold the same bytes).
  std::string PolicyFile(const std::string& dispatch_pub_file) {
    const std::string path = keys_dir_->Sub("policy-v1.signed");
    if (!policy_written_) WriteSigned(Policy(dispatch_pub_file), path);
    policy_written_ = true;
    return path;
  }

  writeback::v1::ConnectorInstanceConfig SshInstance(const std::string& name) {
    writeback::v1::ConnectorInstanceConfig c;
    c.set_name(name);
    c.set_type("ssh_authorized_keys");
    c.add_allowed_operations("remove_key");
    c.mutable_ssh_authorized_keys()->set_path_template(
        absl::StrCat(keys_dir_->path(), "/", name, "/{user}/authorized_keys"));
    return c;
  }

  // a1 serves ssh-a, a2 serves ssh-b; the control plane and both agents pin
  // the root and hold the same signed policy.
  void StartDeployment() {
    keys_dir_ = std::make_unique<testing::TempDir>();
    Harness::Options o;
    o.agents["a1"] = {SshInstance("ssh-a")};
    o.agents["a2"] = {SshInstance("ssh-b")};
    const std::string root_pub = keys_dir_->Sub("root.pub");
    ASSERT_TRUE(fs::WriteFileAtomic(root_pub, root_.public_key().ToPem()).ok());
    o.tweak_agent = [=, this](writeback::v1::AgentConfig& a) {
      const std::string dispatch_pub = a.dispatch_public_key_files(0);
      a.clear_dispatch_public_key_files();
      a.set_trust_root_public_key_file(root_pub);
      a.set_trust_policy_file(PolicyFile(dispatch_pub));
    };
    o.tweak_controlplane = [=, this](writeback::v1::ControlPlaneConfig& cp) {
      std::string pub = cp.dispatch_key_file();  // dispatch.pub is next to dispatch.key
      pub.replace(pub.size() - 3, 3, "pub");
      cp.set_trust_root_public_key_file(root_pub);
      cp.set_trust_policy_file(PolicyFile(pub));
    };
    auto h = Harness::Start(o);
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = *std::move(h);
  }

  std::string KeysFile(const std::string& instance, const std::string& user) {
    return absl::StrCat(keys_dir_->path(), "/", instance, "/", user, "/authorized_keys");
  }
  void PlantKey(const std::string& instance, const std::string& user) {
    ASSERT_TRUE(fs::MakeDirs(absl::StrCat(keys_dir_->path(), "/", instance, "/", user)).ok());
    ASSERT_TRUE(fs::WriteFileAtomic(KeysFile(instance, user), key_.line + "\n").ok());
  }
  bool KeyPresent(const std::string& instance, const std::string& user) {
    return ReadAll(KeysFile(instance, user)).find(key_.line) != std::string::npos;
  }

  grpc::Status Approve(const std::string& id, int approver) {
    auto view = h_->Get(id);
    EXPECT_TRUE(view.ok()) << view.status();
    auto stub = h_->OperatorStub("alice");
    EXPECT_TRUE(stub.ok());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    writeback::v1::ApproveDecisionRequest req;
    req.set_decision_id(id);
    *req.mutable_approval() =
        trust::Approve(view->statement_bytes(), approver_keys_[approver], absl::Now());
    writeback::v1::ApproveDecisionResponse resp;
    return (*stub)->ApproveDecision(&ctx, req, &resp);
  }

  // `wbctl audit verify [--expect-head ANCHOR]` through the API.
  writeback::v1::VerifyAuditResponse VerifyAudit(const std::string& anchor = "") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    writeback::v1::VerifyAuditRequest req;
    req.set_expect_head(anchor);
    writeback::v1::VerifyAuditResponse resp;
    grpc::Status s = h_->admin().VerifyAudit(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  // The honest phase: a decision on ssh-a approved by alice, VERIFIED; the
  // audit chain verifies. Returns the decision id; sets anchor_.
  std::string HonestPhase() {
    PlantKey("ssh-a", "deploy");
    auto r = h_->Submit(SshRemoveKeySpec("ssh-a", {"deploy"}, key_.fingerprint, "leaked"));
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    EXPECT_EQ(r->state(), writeback::v1::DECISION_STATE_PENDING_APPROVAL);
    EXPECT_TRUE(Approve(r->decision_id(), /*approver=*/1).ok());
    auto done = h_->WaitTerminal(r->decision_id());
    EXPECT_TRUE(done.ok()) << done.status();
    if (!done.ok()) return "";
    EXPECT_EQ(DecisionState_Name(done->state()), "DECISION_STATE_VERIFIED") << done->state_detail();
    EXPECT_FALSE(KeyPresent("ssh-a", "deploy"));
    writeback::v1::VerifyAuditResponse v = VerifyAudit();
    EXPECT_TRUE(v.ok()) << v.broken_reason();
    anchor_ = absl::StrCat(v.head_seq(), ":", v.head_hash_hex());
    anchor_seq_ = v.head_seq();
    std::printf("honest phase: decision %s VERIFIED, audit chain OK, anchor %s\n",
                r->decision_id().c_str(), anchor_.c_str());
    return r->decision_id();
  }

  // Writes `f` into the stopped control plane's store exactly as
  // Dispatcher::Submit/FanOut and RocksDbStore::CreateDecision would: the
  // statement serialized once, the task signed with the dispatch key, the
  // decision DISPATCHED, the task QUEUED in `f.outbox_agent`'s outbox.
  void Forge(audit::testing::RawDb& db, const crypto::Ed25519PrivateKey& dispatch_key,
             const std::string& requester, Forgery& f) {
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    const uint64_t version =
        ParseBigEndian64(db.GetIn("meta", "counter/decision_version").value_or("")) + 1;
    writeback::v1::DecisionStatement st;
    st.set_decision_id(absl::StrCat("d-", crypto::HexEncode(crypto::RandomBytes(12))));
    st.set_version(version);
    st.set_requester(requester);
    st.set_connector_instance(f.instance);
    st.set_operation("remove_key");
    st.mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(key_.fingerprint);
    st.add_targets()->set_object(f.object);
    st.set_reason(f.what);
    st.set_reference("TEST-1");
    st.set_created_at_unix_ms(now_ms);
    st.set_expires_at_unix_ms(now_ms + 600 * 1000);
    st.set_agent_id(f.audience);  // the attacker names whichever agent suits it
    const std::string statement_bytes = st.SerializeAsString();

    writeback::v1::Task t;
    t.set_task_id(absl::StrCat("t-", crypto::HexEncode(crypto::RandomBytes(12))));
    t.set_audience(f.audience);
    t.set_statement(statement_bytes);
    *t.mutable_approvals() = f.approvals;
    t.set_target_index(0);
    t.set_connector_instance(st.connector_instance());
    t.set_operation(st.operation());
    *t.mutable_target() = st.targets(0);
    t.set_decision_version(version);
    t.set_issued_at_unix_ms(now_ms);
    t.set_not_before_unix_ms(now_ms);
    t.set_expires_at_unix_ms(st.expires_at_unix_ms());
    t.set_dispatch_key_id(dispatch_key.key_id());
    writeback::v1::TaskRecord rec;
    rec.set_task_id(t.task_id());
    rec.set_decision_id(st.decision_id());
    rec.set_target_index(0);
    rec.set_agent_id(f.outbox_agent);
    rec.set_state(writeback::v1::TASK_STATE_QUEUED);
    rec.set_queued_at_unix_ms(now_ms);
    *rec.mutable_signed_task() =
        envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, t.SerializeAsString(), dispatch_key);

    writeback::v1::DecisionRecord d;
    d.set_statement(statement_bytes);
    *d.mutable_parsed() = st;
    *d.mutable_approvals() = f.approvals;
    d.set_submitted_at_unix_ms(now_ms);
    d.set_state(writeback::v1::DECISION_STATE_DISPATCHED);
    d.set_dispatched_at_unix_ms(now_ms);
    d.add_task_ids(t.task_id());

    db.PutIn("decisions", st.decision_id(), d.SerializeAsString());
    db.PutIn("meta", absl::StrCat("ver/", BigEndian(version, 8)), st.decision_id());
    db.PutIn("meta",
             absl::StrCat("exp/", BigEndian(static_cast<uint64_t>(st.expires_at_unix_ms()), 8),
                          st.decision_id()),
             "");
    db.PutIn("meta", "counter/decision_version", BigEndian(version, 8));
    db.PutIn("tasks", t.task_id(), rec.SerializeAsString());
    db.PutIn("outbox", OutboxKey(f.outbox_agent, version, 0), t.task_id());
    f.decision_id = st.decision_id();
    f.task_id = t.task_id();
  }

  // Replays the decision `d` (already VERIFIED): its exact statement and its
  // real approvals under a new task id, re-queued in `agent_id`'s outbox and
  // the decision put back to DISPATCHED. Returns the new task id.
  std::string ForgeReplay(audit::testing::RawDb& db, const crypto::Ed25519PrivateKey& dispatch_key,
                          writeback::v1::DecisionRecord d, const std::string& agent_id) {
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    const writeback::v1::DecisionStatement& st = d.parsed();
    writeback::v1::Task t;
    t.set_task_id(absl::StrCat("t-", crypto::HexEncode(crypto::RandomBytes(12))));
    t.set_audience(agent_id);
    t.set_statement(d.statement());
    *t.mutable_approvals() = d.approvals();
    t.set_target_index(0);
    t.set_connector_instance(st.connector_instance());
    t.set_operation(st.operation());
    *t.mutable_target() = st.targets(0);
    t.set_decision_version(st.version());
    t.set_issued_at_unix_ms(now_ms);
    t.set_not_before_unix_ms(now_ms);
    t.set_expires_at_unix_ms(st.expires_at_unix_ms());
    t.set_dispatch_key_id(dispatch_key.key_id());
    writeback::v1::TaskRecord rec;
    rec.set_task_id(t.task_id());
    rec.set_decision_id(st.decision_id());
    rec.set_target_index(0);
    rec.set_agent_id(agent_id);
    rec.set_state(writeback::v1::TASK_STATE_QUEUED);
    rec.set_queued_at_unix_ms(now_ms);
    *rec.mutable_signed_task() =
        envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, t.SerializeAsString(), dispatch_key);
    d.add_task_ids(t.task_id());
    d.set_state(writeback::v1::DECISION_STATE_DISPATCHED);
    d.clear_state_detail();
    d.set_finished_at_unix_ms(0);
    db.PutIn("decisions", st.decision_id(), d.SerializeAsString());
    db.PutIn("tasks", t.task_id(), rec.SerializeAsString());
    db.PutIn("outbox", OutboxKey(agent_id, st.version(), 0), t.task_id());
    return t.task_id();
  }

  crypto::Ed25519PrivateKey root_ = crypto::Ed25519PrivateKey::Generate();
  std::vector<crypto::Ed25519PrivateKey> approver_keys_;
  SshTestKey key_;
  std::unique_ptr<testing::TempDir> keys_dir_;
  std::unique_ptr<Harness> h_;
  bool policy_written_ = false;
  std::string anchor_;
  uint64_t anchor_seq_ = 0;
};

TEST_F(CompromisedDbTest, AgentsRefuseEveryForgedTaskAndAuditVerifyNamesTheBreak) {
  ASSERT_NO_FATAL_FAILURE(StartDeployment());
  const std::string honest_id = HonestPhase();
  ASSERT_FALSE(honest_id.empty());
  ASSERT_FALSE(HasFailure());
  for (const auto& [inst, user] : std::vector<std::pair<std::string, std::string>>{
           {"ssh-a", "root-ops"}, {"ssh-a", "ci"}, {"ssh-b", "build"}, {"ssh-a", "deploy"}}) {
    PlantKey(inst, user);
  }
  const std::string a1 = h_->agent_spiffe_id("a1");
  const std::string a2 = h_->agent_spiffe_id("a2");

  // ---- The attacker's edits, with the control plane (and a2) stopped. ----
  h_->StopControlPlane();
  h_->StopAgent("a2");  // so that the widened route is used before a2 says hello again
  std::vector<Forgery> forged(4);
  uint64_t deleted_from = 0, deleted_to = 0;
  std::string replay_task;
  {
    audit::testing::RawDb db(h_->controlplane_config().data_dir());
    auto dispatch_key = crypto::Ed25519PrivateKey::LoadFile(h_->pki().dispatch_key_file());
    ASSERT_TRUE(dispatch_key.ok()) << dispatch_key.status();
    writeback::v1::DecisionRecord honest;
    ASSERT_TRUE(honest.ParseFromString(db.GetIn("decisions", honest_id).value_or("")));
    ASSERT_EQ(honest.approvals_size(), 1);
    const std::string& requester = honest.parsed().requester();

    const google::protobuf::RepeatedPtrField<writeback::v1::Approval> none;
    auto make = [&](std::string what, std::string instance, std::string object,
                    const google::protobuf::RepeatedPtrField<writeback::v1::Approval>& approvals,
                    std::string audience, RejectReason expect) {
      Forgery f;
      f.what = std::move(what);
      f.instance = std::move(instance);
      f.object = std::move(object);
      f.approvals = approvals;
      f.audience = std::move(audience);
      f.outbox_agent = a1;
      f.expect = expect;
      return f;
    };
    forged[0] = make("a: destructive, no approvals", "ssh-a", "root-ops", none, a1,
                     writeback::v1::REJECT_REASON_INSUFFICIENT_APPROVALS);
    forged[1] = make("b: approvals copied from the honest decision", "ssh-a", "root-ops",
                     honest.approvals(), a1, writeback::v1::REJECT_REASON_INSUFFICIENT_APPROVALS);
    forged[2] = make("c1: a2's instance addressed to a1", "ssh-b", "build", honest.approvals(), a1,
                     writeback::v1::REJECT_REASON_NOT_ALLOWED);
    forged[3] = make("c2: a2's task in a1's outbox", "ssh-b", "build", honest.approvals(), a2,
                     writeback::v1::REJECT_REASON_WRONG_AUDIENCE);
    for (Forgery& f : forged) ASSERT_NO_FATAL_FAILURE(Forge(db, *dispatch_key, requester, f));
    // e: the honest decision replayed (its statement and real approvals) under
    // a new task id, after the key it removed was legitimately added again.
    replay_task = ForgeReplay(db, *dispatch_key, honest, a1);

    // c3: ssh-a moved from a1's record to a2's, and its binding rewritten
    // to a2 (without an audit entry): the control plane will route ssh-a
    // decisions to a2 and name a2 in their statements.
    writeback::v1::AgentRecord r1, r2;
    ASSERT_TRUE(r1.ParseFromString(db.GetIn("agents", a1).value_or("")));
    ASSERT_TRUE(r2.ParseFromString(db.GetIn("agents", a2).value_or("")));
    ASSERT_EQ(r1.instances_size(), 1);
    *r2.add_instances() = r1.instances(0);
    r1.clear_instances();
    db.PutIn("agents", a1, r1.SerializeAsString());
    db.PutIn("agents", a2, r2.SerializeAsString());
    writeback::v1::InstanceBinding b;
    ASSERT_TRUE(b.ParseFromString(db.GetIn("meta", "bind/ssh-a").value_or("")));
    ASSERT_EQ(b.agent_id(), a1);
    b.set_agent_id(a2);
    db.PutIn("meta", "bind/ssh-a", b.SerializeAsString());

    // d: delete the approval of the honest decision from the audit chain,
    // and the entry after it.
    for (const auto& [seq, value] : db.Entries()) {
      writeback::v1::AuditEntry e;
      writeback::v1::AuditEvent ev;
      ASSERT_TRUE(e.ParseFromString(value) && ev.ParseFromString(e.event()));
      if (ev.kind() == writeback::v1::AUDIT_EVENT_KIND_DECISION_APPROVED) {
        deleted_from = seq;
        break;
      }
    }
    ASSERT_GT(deleted_from, 1u);
    deleted_to = deleted_from + 1;
    ASSERT_LT(deleted_to, anchor_seq_);  // in the middle: the anchor stays
    for (uint64_t s = deleted_from; s <= deleted_to; ++s) db.Delete(s);
    // The raw view of the chain already shows the gap.
    audit::VerifyReport raw = db.Verify();
    EXPECT_FALSE(raw.ok);
    EXPECT_EQ(raw.broken_seq, deleted_from) << raw.broken_reason;
  }

  // ---- Restart: the control plane delivers what it finds. ----
  ASSERT_TRUE(h_->StartControlPlane().ok());

  // c3: an honest ssh-a decision, approved by alice, now routed to a2.
  auto rerouted = h_->Submit(SshRemoveKeySpec("ssh-a", {"ci"}, key_.fingerprint, "rotation"));
  ASSERT_TRUE(rerouted.ok()) << rerouted.status();
  ASSERT_TRUE(Approve(rerouted->decision_id(), /*approver=*/1).ok());
  {
    auto v = h_->Get(rerouted->decision_id());
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_EQ(v->tasks_size(), 1);
    EXPECT_EQ(v->tasks(0).agent_id(), a2);  // the widened route was used
  }
  ASSERT_TRUE(h_->StartAgent("a2").ok());
  ASSERT_TRUE(h_->WaitAgentConnected("a2").ok());
  ASSERT_TRUE(h_->WaitAgentConnected("a1").ok());

  struct Expected {
    std::string what, decision_id;
    RejectReason reason;
  };
  std::vector<Expected> expected;
  for (const Forgery& f : forged) expected.push_back({f.what, f.decision_id, f.expect});
  expected.push_back({"c3: ssh-a routed to a2 by its edited AgentRecord", rerouted->decision_id(),
                      writeback::v1::REJECT_REASON_NOT_ALLOWED});
  expected.push_back({"e: the honest decision replayed under a new task id", honest_id,
                      writeback::v1::REJECT_REASON_ROLLBACK});

  size_t refused = 0, applied = 0;
  for (const Expected& e : expected) {
    auto done = h_->WaitTerminal(e.decision_id);  // polls, 60 s deadline
    ASSERT_TRUE(done.ok()) << e.what << ": " << done.status();
    // The replayed decision has its honest task (VERIFIED) and the replay.
    ASSERT_EQ(done->tasks_size(), e.decision_id == honest_id ? 2 : 1) << e.what;
    const auto& t = done->tasks(done->tasks_size() - 1);
    if (e.decision_id == honest_id) {
      EXPECT_EQ(t.task_id(), replay_task);
    }
    EXPECT_EQ(DecisionState_Name(done->state()), "DECISION_STATE_FAILED") << e.what;
    EXPECT_EQ(writeback::v1::TaskState_Name(t.state()), "TASK_STATE_REJECTED") << e.what;
    EXPECT_EQ(writeback::v1::RejectReason_Name(t.reject_reason()),
              writeback::v1::RejectReason_Name(e.reason))
        << e.what << ": " << t.message();
    if (t.state() == writeback::v1::TASK_STATE_REJECTED) ++refused;
    if (t.outcome() != writeback::v1::OUTCOME_REJECTED) ++applied;
    std::printf("forged %-52s -> %s (%s)\n", e.what.c_str(),
                writeback::v1::RejectReason_Name(t.reject_reason()).c_str(), t.message().c_str());
  }
  // The copied approvals are shown for what they are.
  {
    auto v = h_->Get(forged[1].decision_id);
    ASSERT_TRUE(v.ok());
    ASSERT_EQ(v->approvals_size(), 1);
    EXPECT_FALSE(v->approvals(0).counts());
    EXPECT_THAT(v->approvals(0).problem(), HasSubstr("digest mismatch"));
    ASSERT_EQ(v->tasks_size(), 1);
    EXPECT_THAT(v->tasks(0).message(), HasSubstr("approves a different statement"));
  }
  // Nothing was applied: every planted key is still there.
  EXPECT_TRUE(KeyPresent("ssh-a", "root-ops"));
  EXPECT_TRUE(KeyPresent("ssh-a", "ci"));
  EXPECT_TRUE(KeyPresent("ssh-b", "build"));
  EXPECT_TRUE(KeyPresent("ssh-a", "deploy"));  // added again after the honest removal
  std::printf("forged tasks: %zu, refused by agents: %zu, applied: %zu\n", expected.size(), refused,
              applied);
  EXPECT_EQ(refused, expected.size());
  EXPECT_EQ(applied, 0u);

  // ---- The audit chain names the first deleted entry. ----
  writeback::v1::VerifyAuditResponse v = VerifyAudit();
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.broken_seq(), deleted_from);
  EXPECT_THAT(v.broken_reason(),
              HasSubstr(absl::StrCat("seq ", deleted_from, ": missing (the chain jumps from ",
                                     deleted_from - 1, " to ", deleted_to + 1, ")")));
  EXPECT_GT(v.head_seq(), anchor_seq_);  // the results were appended after it
  writeback::v1::VerifyAuditResponse anchored = VerifyAudit(anchor_);
  EXPECT_TRUE(anchored.anchor_checked());
  EXPECT_FALSE(anchored.ok());
  EXPECT_EQ(anchored.broken_seq(), deleted_from);  // the anchor itself is intact
  std::printf("audit verify: %s (head %llu)\n", v.broken_reason().c_str(),
              static_cast<unsigned long long>(v.head_seq()));
}

TEST_F(CompromisedDbTest, TruncatedTailIsCaughtOnlyWithTheAnchor) {
  ASSERT_NO_FATAL_FAILURE(StartDeployment());
  ASSERT_FALSE(HonestPhase().empty());
  ASSERT_FALSE(HasFailure());
  ASSERT_GE(anchor_seq_, 3u);

  h_->StopControlPlane();
  {
    audit::testing::RawDb db(h_->controlplane_config().data_dir());
    db.Delete(anchor_seq_);  // the result and what followed it: gone
    db.Delete(anchor_seq_ - 1);
  }
  ASSERT_TRUE(h_->StartControlPlane().ok());

  // The chain alone still links: a truncated tail is invisible without the
  // anchor (docs: anchor the head outside the control plane host).
  writeback::v1::VerifyAuditResponse plain = VerifyAudit();
  EXPECT_TRUE(plain.ok()) << plain.broken_reason();
  writeback::v1::VerifyAuditResponse anchored = VerifyAudit(anchor_);
  EXPECT_TRUE(anchored.anchor_checked());
  EXPECT_FALSE(anchored.ok());
  EXPECT_EQ(anchored.broken_seq(), anchor_seq_) << anchored.broken_reason();
  std::printf("audit verify with anchor %s: %s\n", anchor_.c_str(),
              anchored.broken_reason().c_str());
}

}  // namespace
}  // namespace wb::e2e
