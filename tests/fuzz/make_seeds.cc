// Writes the seed inputs of every fuzz target: real, valid inputs (signed
// tasks for every operation of every connector type, signed results of
// every outcome, valid params of every operation) plus a few refusals of
// each kind. Checks that every input meant to be valid is accepted, and
// exits non-zero otherwise (ctest: fuzz_seeds_valid).
//
//   wb_fuzz_make_seeds OUT_DIR     writes OUT_DIR/<target>/seed-<name>
//
// The committed corpora (tests/fuzz/corpus/<target>/) are these seeds grown
// by running the fuzzers and minimised with -merge=1 (docs/fuzzing.md).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "agent/checks/task_checks.h"
#include "common/actions/actions.h"
#include "common/envelope/envelope.h"
#include "common/relay/relay.h"
#include "common/trust/policy.h"
#include "connectors/connector.h"
#include "connectors/util/connector_util.h"
#include "controlplane/dispatch/result_intake.h"
#include "tests/fuzz/fuzz_support.h"

namespace wb::fuzz {
namespace {

namespace fs = std::filesystem;

int g_failures = 0;

void Expect(bool cond, const std::string& what) {
  if (cond) return;
  std::fprintf(stderr, "make_seeds: %s\n", what.c_str());
  ++g_failures;
}

class Writer {
 public:
  explicit Writer(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }
  void Add(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / absl::StrCat("seed-", name), std::ios::binary) << bytes;
    ++count_;
  }
  int count() const { return count_; }

 private:
  fs::path dir_;
  int count_ = 0;
};

std::string Flag(uint8_t f) { return std::string(1, static_cast<char>(f)); }

std::string NameOf(const Example& ex, int i) {
  return absl::StrCat(i, "-", ex.type, "-", ex.operation);
}

agent::Verdict Check(uint8_t flags, const std::string& rest) {
  auto env = TaskEnvelopeFor(flags, rest);
  if (!env.has_value()) return agent::Verdict::kReject;
  const agent::CheckContext& ctx = Context((flags >> 2) & 3);
  return agent::CheckTask(*env, ctx, (flags & 0x10) ? nullptr : &History()).verdict;
}

void TaskSeeds(Writer& w) {
  int i = 0;
  for (const Example& ex : ValidExamples()) {
    const std::string st = StatementFor(ex, 7).SerializeAsString();
    // Mode 2: the statement, threshold 0. Mode 3: with both approvals,
    // threshold 2. Both must be accepted.
    Expect(Check(0x02, st) == agent::Verdict::kAccept, "task seed refused: " + NameOf(ex, i));
    Expect(Check(0x0b, st) == agent::Verdict::kAccept, "approved seed refused: " + NameOf(ex, i));
    w.Add(absl::StrCat("statement-", NameOf(ex, i)), Flag(0x02) + st);
    w.Add(absl::StrCat("approved-", NameOf(ex, i)), Flag(0x0b) + st);
    ++i;
  }
  const Example& ex = ValidExamples().front();
  const std::string st = StatementFor(ex, 7).SerializeAsString();
  writeback::v1::Task t = TaskFor(st, StatementFor(ex, 7), "task-7");
  *t.add_approvals() = ApprovalFor(st, 0);
  const std::string payload = t.SerializeAsString();
  Expect(Check(0x01, payload) == agent::Verdict::kAccept, "payload seed refused");
  w.Add("payload", Flag(0x01) + payload);
  w.Add("payload-one-approval-of-two", Flag(0x09) + payload);
  const std::string env =
      envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, payload, DispatchKey()).SerializeAsString();
  Expect(Check(0x00, env) == agent::Verdict::kAccept, "envelope seed refused");
  w.Add("envelope", Flag(0x00) + env);
  w.Add("envelope-no-journal", Flag(0x10) + env);
  w.Add("envelope-other-key",
        Flag(0x00) + envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, payload, ApproverKey(0))
                         .SerializeAsString());
  w.Add("envelope-as-result",
        Flag(0x00) + envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT, payload, DispatchKey())
                         .SerializeAsString());
  const std::string seen =
      envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, SeenTaskPayload(), DispatchKey())
          .SerializeAsString();
  Expect(Check(0x00, seen) == agent::Verdict::kDuplicate, "duplicate seed not a duplicate");
  w.Add("duplicate", Flag(0x00) + seen);
  // Rollback: version 1 of alice's ssh key after version 5 was applied.
  const std::string old = StatementFor(ex, 1).SerializeAsString();
  Expect(Check(0x02, old) == agent::Verdict::kReject, "rollback seed accepted");
  w.Add("rollback", Flag(0x02) + old);
  writeback::v1::Task err = TaskFor(st, StatementFor(ex, 7), "journal-error");
  Expect(Check(0x01, err.SerializeAsString()) == agent::Verdict::kError, "journal error seed");
  w.Add("journal-error", Flag(0x01) + err.SerializeAsString());
  writeback::v1::Task wrong = TaskFor(st, StatementFor(ex, 7), "task-8");
  wrong.set_audience("spiffe://writeback.test/agent/b2");
  wrong.set_target_index(3);
  w.Add("wrong-audience", Flag(0x01) + wrong.SerializeAsString());
  w.Add("empty", Flag(0x01));
}

writeback::v1::Result ResultOf(writeback::v1::Outcome outcome, int i) {
  writeback::v1::Result r;
  r.set_task_id(absl::StrCat("task-", i));
  r.set_agent_id(kAgentId);
  r.set_decision_id("dec-1");
  r.set_decision_version(7);
  r.set_task_digest(crypto::Sha256("task bytes"));
  r.set_outcome(outcome);
  r.set_agent_time_unix_ms(kNowUnixMs);
  if (outcome == writeback::v1::OUTCOME_REJECTED) {
    r.set_reject_reason(i % 2 ? writeback::v1::REJECT_REASON_EXPIRED
                              : writeback::v1::REJECT_REASON_ROLLBACK);
    r.set_message("decision_version 1 is older than version 5");
    return r;
  }
  auto* plan = r.mutable_plan();
  plan->set_summary("remove 1 key");
  auto* o = plan->add_before();
  o->set_check("read_authorized_keys");
  o->set_subject("/home/alice/.ssh/authorized_keys");
  o->set_detail("1 matching key");
  (*o->mutable_facts())["matching_keys"] = "1";
  o->set_observed_at_unix_ms(kNowUnixMs);
  plan->add_changes("remove key SHA256:...");
  plan->set_state("state\nremove_key\n00");
  r.mutable_applied()->add_changes("removed 1 key");
  *r.mutable_verification()->add_after() = *o;
  return r;
}

void ResultSeeds(Writer& w) {
  int i = 0;
  for (auto outcome : {writeback::v1::OUTCOME_VERIFIED, writeback::v1::OUTCOME_UNVERIFIED,
                       writeback::v1::OUTCOME_FAILED, writeback::v1::OUTCOME_ALREADY_COMPLIANT,
                       writeback::v1::OUTCOME_REJECTED, writeback::v1::OUTCOME_REJECTED}) {
    const std::string payload = ResultOf(outcome, i).SerializeAsString();
    const auto env = envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT, payload, AgentResultKey());
    Expect(controlplane::VerifyResultEnvelope(env, AgentResultKey().public_key(), kAgentId).ok(),
           absl::StrCat("result seed ", i, " refused"));
    w.Add(absl::StrCat("payload-", i), Flag(1) + payload);
    w.Add(absl::StrCat("envelope-", i), Flag(0) + env.SerializeAsString());
    ++i;
  }
  writeback::v1::Result other = ResultOf(writeback::v1::OUTCOME_VERIFIED, 9);
  other.set_agent_id("spiffe://writeback.test/agent/b2");
  w.Add("other-agent", Flag(1) + other.SerializeAsString());
  other.set_agent_id(kAgentId);
  other.set_outcome(writeback::v1::OUTCOME_UNSPECIFIED);
  w.Add("no-outcome", Flag(1) + other.SerializeAsString());
  w.Add("task-as-result",
        Flag(0) + envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, "x", AgentResultKey())
                      .SerializeAsString());
  w.Add("empty", Flag(1));
}

// Relay path headers (flag 2) and connect proofs signed at the target's
// fixed clock (connect_proof_fuzzer.cc).
void ConnectSeeds(Writer& w) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  writeback::v1::Hello hello;
  hello.set_agent_id(kAgentId);
  hello.set_version("0.1.0");
  hello.set_result_public_key(AgentResultKey().public_key().raw());
  (*hello.mutable_labels())["segment"] = "cell";
  hello.add_instances()->set_name("hosts-a");
  const auto env = relay::MakeConnectProof(hello, AgentResultKey(), now);
  Expect(relay::VerifyConnectProof(env, kAgentId, AgentResultKey().public_key(), now).ok(),
         "connect proof seed refused");
  w.Add("proof-envelope", Flag(0) + env.SerializeAsString());
  w.Add("proof-payload", Flag(1) + env.payload());
  w.Add("proof-as-result", Flag(0) + envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT,
                                                    env.payload(), AgentResultKey())
                                         .SerializeAsString());
  const std::string r1 = "spiffe://writeback.test/agent/cell-relay";
  const std::string r2 = "spiffe://writeback.test/agent/dmz-relay";
  Expect(relay::ParseRelayPath(r1 + "," + r2, "writeback.test").ok(), "path seed refused");
  w.Add("path-one", Flag(2) + r2);
  w.Add("path-two", Flag(2) + r1 + "," + r2);
  w.Add("path-loop", Flag(2) + r1 + "," + r1);
  w.Add("path-operator", Flag(2) + "spiffe://writeback.test/operator/admin");
  w.Add("path-empty", Flag(2));
}

// A target file for the connector types whose parsers the target runs.
std::string ContentFor(const Example& ex) {
  if (ex.type == "ssh_authorized_keys") {
    return "# keys\n"
           "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMCGT2OzrVNsJveYuXisUe/+VI8xk/3iQ/axPvFswcDu "
           "deploy@ci\n"
           "no-pty,command=\"echo \\\"hi\\\"\" ssh-rsa "
           "AAAAB3NzaC1yc2EAAAADAQABAAAAgQC3hE/Xvgx8lSTD08Oo562w2/e+uGnNLXyF2lGZmT46IhNDLSRI7wnXLVy"
           "dtwzSdl80LCGkyqgnRobo9UvlDsGpZFL1CumsDn1i2eEHqBUkJ5F24xNR6q+L2H+"
           "newqy5DhHthX0JVzICMhR9jAx"
           "rIt8wT6xDjXJSC6iTk1sXpoJbw== old rsa\n"
           "  ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBDmzr8CI6ucCI"
           "jnw4dHgHRj8qejz9rM4uLsLu/E2dsjnPVaSjFO2Jnox7eTtCKM1CLN1ydPqeeggev56IiBHWtU=\r\n"
           "not a key\n";
  }
  if (ex.type == "sudoers") {
    return "# drop-in\nDefaults:deploy !requiretty\nUser_Alias OPS = deploy, alice, !bob\n"
           "deploy, \"alice\" ALL=(ALL) NOPASSWD: ALL\nOPS ALL = /usr/bin/systemctl \\\n"
           "  restart app\n%admins ALL=(ALL) ALL\n@includedir /etc/sudoers.d\n";
  }
  if (ex.type == "posix_account") {
    return "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n"
           "+nis\n---\n"
           "root:*:19000:0:99999:7:::\nalice:$y$j9T$abc$def:19000:0:99999:7::20000:\n---\n"
           "root:x:0:\nalice:x:1000:\ndocker:x:999:alice,bob\n---\n"
           "docker:!::alice\n";
  }
  if (ex.type == "secret_file") {
    if (ex.operation == "remove_json_path") {
      return "{\n  \"db\": {\"password\": \"x\", \"user\": \"u\"},\n  \"n\": [1, 2.5e3, "
             "\"\\u00e9\"]\n}\n";
    }
    if (ex.operation == "remove_env_key") {
      return "# env\nexport AWS_SECRET_ACCESS_KEY=abc\nOTHER=1\nQ=\"multi\nline\"\n"
             "AWS_SECRET_ACCESS_KEY='again'\n";
    }
    return "top=1\n[database]\npassword = x\n  continued\nuser: u\n; c\n[credentials]\n"
           "token=t\n[database]\npassword=y\n";
  }
  // Everyone else: a plan state of this very action.
  connectors::Action a;
  a.operation = ex.operation;
  a.params = ex.params;
  a.object = ex.object;
  return connectors::util::EncodePlanState(absl::StrCat("wb-fuzz-", ex.type, "-v1"), a,
                                           {"field-1"});
}

size_t IndexOf(const std::vector<std::string>& v, const std::string& s) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == s) return i;
  }
  return v.size();
}

void ConnectorSeeds(Writer& w) {
  int i = 0;
  for (const Example& ex : ValidExamples()) {
    Expect(actions::ValidateAction(ex.type, ex.operation, ex.params).ok(),
           "invalid example params: " + NameOf(ex, i));
    Expect(actions::ValidateTargetObject(ex.type, ex.object).ok(),
           "invalid example object: " + NameOf(ex, i));
    const size_t ti = IndexOf(actions::ConnectorTypes(), ex.type);
    const size_t oi = IndexOf(actions::OperationsOf(ex.type), ex.operation);
    w.Add(NameOf(ex, i), Flag(static_cast<uint8_t>(ti)) + Flag(static_cast<uint8_t>(oi)) + Flag(0) +
                             Str(ex.object) + Str(ContentFor(ex)) + ex.params.SerializeAsString());
    ++i;
  }
  // Every operation of every type has an example.
  for (const std::string& type : actions::ConnectorTypes()) {
    for (const std::string& op : actions::OperationsOf(type)) {
      bool found = false;
      for (const Example& ex : ValidExamples()) found |= ex.type == type && ex.operation == op;
      Expect(found, absl::StrCat("no example for ", type, " ", op));
    }
  }
}

void TrustPolicySeeds(Writer& w) {
  w.Add("payload-empty", Flag(1) + Flag(0) + Flag(1));
  // Valid policies (root = ApproverKey(1), as in the fuzzer), as payload and
  // as a signed envelope; each must verify.
  for (uint32_t t : {0u, 1u, 2u}) {
    writeback::v1::TrustPolicy p = PolicyWithThreshold(t, t + 1);
    if (t == 2) {
      auto& b = (*p.mutable_agent_rate_budgets())["spiffe://writeback.test/agent/a1"];
      b.set_max_tasks(5);
      b.set_window_seconds(60);
    }
    auto env = trust::SignPolicy(p, ApproverKey(1));
    if (!env.ok() || !trust::VerifyPolicy(*env, ApproverKey(1).public_key(), 1, Now()).ok()) {
      std::fprintf(stderr, "make_seeds: trust policy seed %u does not verify\n", t);
      ++g_failures;
      continue;
    }
    w.Add(absl::StrCat("policy-payload-", t), Flag(1) + Flag(0) + Flag(0) + p.SerializeAsString());
    w.Add(absl::StrCat("policy-envelope-", t),
          Flag(0) + Flag(0) + Flag(0) + env->SerializeAsString());
  }
  w.Add("envelope",
        Flag(0) + Flag(0) + Flag(0) +
            envelope::Sign(writeback::v1::PAYLOAD_TYPE_TRUST_POLICY, "\x08\x01", ApproverKey(1))
                .SerializeAsString());
}

}  // namespace
}  // namespace wb::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  using wb::fuzz::Writer;
  namespace fs = std::filesystem;
  const fs::path out = argv[1];
  Writer task(out / "task_envelope"), result(out / "result_verify"), conn(out / "connector_params"),
      trust(out / "trust_policy"), connect(out / "connect_proof");
  wb::fuzz::TaskSeeds(task);
  wb::fuzz::ResultSeeds(result);
  wb::fuzz::ConnectorSeeds(conn);
  wb::fuzz::TrustPolicySeeds(trust);
  wb::fuzz::ConnectSeeds(connect);
  std::printf(
      "make_seeds: task_envelope %d, result_verify %d, connector_params %d, "
      "trust_policy %d, connect_proof %d seeds in %s; %d failures\n",
      task.count(), result.count(), conn.count(), trust.count(), connect.count(), out.c_str(),
      wb::fuzz::g_failures);
  return wb::fuzz::g_failures == 0 ? 0 : 1;
}
