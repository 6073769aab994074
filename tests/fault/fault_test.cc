// The fault suite (docs/delivery.md): at-least-once delivery and
// exactly-once effect under SIGKILLs of the real control plane and agents,
// at random moments and at every named crash point; partitions longer and
// shorter than a task's lifetime; duplicate and reordered deliveries.
//
// Effects are counted on the targets themselves: every agent's exec
// instance runs wb_fault_counter, which appends the task id to that agent's
// effects file on apply (and to its plans file on plan). A task id found
// twice there is a change applied twice. The counter is idempotent (its plan
// sees its own effect) and its instances declare it, so an apply interrupted
// by a kill is finished after the restart: no decision ends FAILED for it
// (failed_after_intent), and only such a re-run plans a task twice.
//
// Short form by default (ctest label "fault"). WB_FAULT_FULL=1 runs the long
// form (>= 2,000 decisions, >= 50 control-plane kills, >= 50 agent kills).
// WB_FAULT_SEED=N fixes the random seed (printed either way).
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/testing/task_factory.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/testing/wait.h"
#include "gtest/gtest.h"
#include "tests/fault/deployment.h"
#include "tests/integration/fake_controlplane.h"

namespace wb::fault {
namespace {

using writeback::v1::DecisionState;
using writeback::v1::DecisionView;
using writeback::v1::TaskState;

Binaries Bins() { return Binaries{WB_CONTROLPLANE_BINARY, WB_AGENT_BINARY, WB_COUNTER_BINARY}; }

bool FullForm() {
  const char* v = std::getenv("WB_FAULT_FULL");
  return v != nullptr && std::string(v) == "1";
}

uint32_t Seed() {
  uint32_t s = 0;
  const char* v = std::getenv("WB_FAULT_SEED");
  if (v != nullptr && absl::SimpleAtoi(v, &s)) return s;
  return std::random_device{}();
}

bool IsTerminal(DecisionState s) {
  return s == writeback::v1::DECISION_STATE_VERIFIED || s == writeback::v1::DECISION_STATE_FAILED ||
         s == writeback::v1::DECISION_STATE_EXPIRED || s == writeback::v1::DECISION_STATE_CANCELED;
}

bool IsOpenTask(TaskState s) {
  return s == writeback::v1::TASK_STATE_QUEUED || s == writeback::v1::TASK_STATE_DELIVERED;
}

int CountInFile(const std::string& path, absl::string_view needle) {
  auto content = fs::ReadFile(path, size_t{1} << 30);
  if (!content.ok()) return 0;
  int n = 0;
  for (size_t pos = content->find(needle.data(), 0, needle.size()); pos != std::string::npos;
       pos = content->find(needle.data(), pos + needle.size(), needle.size())) {
    ++n;
  }
  return n;
}

// Submits with retries (same request_id, so a submit whose reply was lost
// finds the decision it created). Restarts the control plane if it died.
// Returns the decision id once a submit returned success.
absl::StatusOr<std::string> SubmitWithRetry(Deployment& d, const writeback::v1::DecisionSpec& spec,
                                            const std::string& request_id,
                                            const std::vector<std::string>& cp_env = {},
                                            int* cp_crashes = nullptr) {
  absl::Status last;
  for (int attempt = 0; attempt < 40; ++attempt) {
    if (!d.ControlPlaneRunning()) {
      if (cp_crashes != nullptr) ++*cp_crashes;
      if (absl::Status s = d.StartControlPlane(cp_env); !s.ok()) {
        last = s;
        continue;
      }
    }
    auto r = d.Submit(spec, request_id);
    if (r.ok()) return r->decision_id();
    last = r.status();
    // Not accepted: wait until the control plane answers again (or died).
    testing::WaitFor([&] { return !d.ControlPlaneRunning() || d.ListAgents().ok(); },
                     std::chrono::seconds(10), std::chrono::milliseconds(20));
  }
  return last;
}

// What the agents' logs say about interrupted applies (agent/executor): task
// ids run again after a restart, and decisions whose result was made by a
// recovery (Result.recovered).
struct Recoveries {
  absl::flat_hash_map<std::string, int> reruns;  // task id -> re-runs
  absl::flat_hash_set<std::string> recovered_decisions;
  int not_rerun = 0;  // recoveries that only verified
};

// The value of `key=` in a text log line ("" if absent).
std::string Field(absl::string_view line, absl::string_view key) {
  const std::string k = absl::StrCat(" ", key, "=");
  const size_t at = line.find(k);
  if (at == absl::string_view::npos) return "";
  absl::string_view v = line.substr(at + k.size());
  return std::string(v.substr(0, v.find(' ')));
}

Recoveries ReadRecoveries(Deployment& d) {
  Recoveries out;
  for (int i = 0; i < d.agents(); ++i) {
    auto log = fs::ReadFile(d.agent_log(i), size_t{1} << 30);
    if (!log.ok()) continue;
    for (absl::string_view line : absl::StrSplit(*log, '\n')) {
      if (absl::StrContains(line, "interrupted apply: running plan, apply and verify again")) {
        ++out.reruns[Field(line, "task_id")];
      } else if (absl::StrContains(line, "interrupted apply: not run again")) {
        ++out.not_rerun;
      } else if (absl::StrContains(line, "task finished") && Field(line, "recovered") == "true") {
        out.recovered_decisions.insert(Field(line, "decision_id"));
      }
    }
  }
  return out;
}

struct EndState {
  int decisions = 0;
  int missing = 0;       // submit succeeded, decision not found
  int non_terminal = 0;  // decision or task still open
  int verified = 0;
  int failed = 0;
  int expired = 0;
  int applied_twice = 0;  // task ids more than once in an effects file
  int verified_without_effect = 0;
  int effects = 0;
  // Interrupted applies (agents' logs): decisions with a recovered result,
  // tasks run again, recoveries that only verified, and decisions FAILED
  // with a recovered result.
  int recovered = 0;
  int reruns = 0;
  int not_rerun = 0;
  int failed_after_intent = 0;
  // Tasks planned more often than once plus their re-runs: acted on twice
  // without an interruption to finish.
  int planned_twice_without_rerun = 0;
  uint64_t redeliveries = 0;  // delivery attempts beyond the first
  std::map<std::string, DecisionState> states;
};

// Waits until every decision in `ids` is terminal (bounded), then checks the
// end state against the targets' effects files.
EndState Converge(Deployment& d, const std::vector<std::string>& ids, absl::Duration timeout) {
  std::set<std::string> pending(ids.begin(), ids.end());
  testing::WaitFor(
      [&] {
        for (auto it = pending.begin(); it != pending.end();) {
          auto v = d.Get(*it);
          if (!v.ok() && v.status().code() != absl::StatusCode::kNotFound) return false;
          if (v.ok() && !IsTerminal(v->state())) return false;  // poll again later
          it = pending.erase(it);
        }
        return true;
      },
      std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)),
      std::chrono::milliseconds(200));

  EndState e;
  const Recoveries rec = ReadRecoveries(d);
  e.recovered = static_cast<int>(rec.recovered_decisions.size());
  e.not_rerun = rec.not_rerun;
  for (const auto& [task, n] : rec.reruns) e.reruns += n;
  absl::flat_hash_map<std::string, int> effects;
  for (int i = 0; i < d.agents(); ++i) {
    for (const auto& [task, n] : d.Effects(i)) {
      effects[task] += n;
      e.effects += n;
      if (n > 1) ++e.applied_twice;
    }
    for (const auto& [task, n] : d.Plans(i)) {
      auto it = rec.reruns.find(task);
      if (n > 1 + (it == rec.reruns.end() ? 0 : it->second)) ++e.planned_twice_without_rerun;
    }
  }
  for (const std::string& id : ids) {
    ++e.decisions;
    auto v = d.Get(id);
    if (!v.ok()) {
      ++e.missing;
      continue;
    }
    e.states[id] = v->state();
    if (!IsTerminal(v->state())) ++e.non_terminal;
    if (v->state() == writeback::v1::DECISION_STATE_VERIFIED) ++e.verified;
    if (v->state() == writeback::v1::DECISION_STATE_FAILED) {
      ++e.failed;
      if (rec.recovered_decisions.count(id) > 0) ++e.failed_after_intent;
    }
    if (v->state() == writeback::v1::DECISION_STATE_EXPIRED) ++e.expired;
    for (const auto& t : v->tasks()) {
      if (IsOpenTask(t.state())) ++e.non_terminal;
      if (t.delivery_attempts() > 1) e.redeliveries += t.delivery_attempts() - 1;
      if (t.state() == writeback::v1::TASK_STATE_VERIFIED && effects[t.task_id()] == 0) {
        ++e.verified_without_effect;
      }
    }
  }
  return e;
}

int DuplicatesSuppressed(Deployment& d) {
  int n = 0;
  for (int i = 0; i < d.agents(); ++i) n += CountInFile(d.agent_log(i), "task seen before");
  return n;
}

// ---------------------------------------------------------------------------
// Random SIGKILLs of the control plane and of agents during a run.

TEST(FaultTest, RandomKillsLoseNothingAndApplyNothingTwice) {
  const bool full = FullForm();
  const int kAgents = 20;
  const int kDecisions = full ? 2000 : 300;
  const int kCpKills = full ? 50 : 10;
  const int kAgentKills = full ? 60 : 10;
  const uint32_t seed = Seed();
  std::printf("fault run: %s form, seed %u\n", full ? "full" : "short", seed);
  std::mt19937 rng(seed);

  Deployment::Options o;
  o.agents = kAgents;
  auto d = Deployment::Start(Bins(), o);
  ASSERT_TRUE(d.ok()) << d.status();

  // Kill moments: before the i-th submit, chosen at random among all submits.
  std::vector<int> moments(kDecisions - 1);
  for (int i = 0; i < kDecisions - 1; ++i) moments[i] = i + 1;
  std::shuffle(moments.begin(), moments.end(), rng);
  std::set<int> cp_kill_at(moments.begin(), moments.begin() + kCpKills);
  std::shuffle(moments.begin(), moments.end(), rng);
  std::set<int> agent_kill_at(moments.begin(), moments.begin() + kAgentKills);

  std::multimap<int, int> agent_restart_at;  // submit index -> agent
  int cp_kills = 0, agent_kills = 0, cp_restarts_after_failure = 0;
  std::vector<std::string> ids;
  int submit_failures = 0;
  int last_agent = -1;  // the agent of the latest submit
  for (int i = 0; i < kDecisions; ++i) {
    if (cp_kill_at.count(i)) {
      (*d)->KillControlPlane();
      ++cp_kills;
      // Restarted by the next submit (same data dir and port).
    }
    if (agent_kill_at.count(i)) {
      // Every other kill hits the agent of the latest submit, most likely
      // busy with it (journaling, applying, reporting); the others a random
      // agent. An agent already down is passed over for the next running one,
      // so every planned kill happens.
      int a =
          agent_kills % 2 == 0 && last_agent >= 0 ? last_agent : static_cast<int>(rng() % kAgents);
      for (int k = 0; k < kAgents && !(*d)->AgentRunning(a); ++k) a = (a + 1) % kAgents;
      if ((*d)->AgentRunning(a)) {
        (*d)->KillAgent(a);
        ++agent_kills;
        // Down for 0-30 submits: tasks for it queue up meanwhile.
        agent_restart_at.emplace(i + static_cast<int>(rng() % 31), a);
      }
    }
    for (auto it = agent_restart_at.begin(); it != agent_restart_at.end() && it->first <= i;) {
      ASSERT_TRUE((*d)->StartAgent(it->second).ok());
      it = agent_restart_at.erase(it);
    }
    const int agent = static_cast<int>(rng() % kAgents);
    last_agent = agent;
    auto id = SubmitWithRetry(**d, (*d)->Spec(agent, absl::StrCat("obj-", i)),
                              absl::StrCat("req-", i), {}, &cp_restarts_after_failure);
    if (id.ok()) {
      ids.push_back(*id);
    } else {
      ++submit_failures;  // never returned success: not promised
    }
  }
  for (const auto& [_, a] : agent_restart_at) ASSERT_TRUE((*d)->StartAgent(a).ok());
  if (!(*d)->ControlPlaneRunning()) {
    ASSERT_TRUE((*d)->StartControlPlane().ok());
  }

  EndState e = Converge(**d, ids, full ? absl::Minutes(10) : absl::Minutes(3));
  const int dups = DuplicatesSuppressed(**d);
  std::printf(
      "fault figures: decisions=%d (submit failures never acknowledged: %d) "
      "kills: controlplane=%d agents=%d | verified=%d failed=%d expired=%d | "
      "effects=%d redeliveries=%llu duplicates_suppressed=%d | lost=%d non_terminal=%d "
      "applied_twice=%d verified_without_effect=%d | interrupted applies: recovered=%d "
      "reruns=%d not_rerun=%d planned_twice_without_rerun=%d failed_after_intent=%d\n",
      e.decisions, submit_failures, cp_kills, agent_kills, e.verified, e.failed, e.expired,
      e.effects, static_cast<unsigned long long>(e.redeliveries), dups, e.missing, e.non_terminal,
      e.applied_twice, e.verified_without_effect, e.recovered, e.reruns, e.not_rerun,
      e.planned_twice_without_rerun, e.failed_after_intent);
  EXPECT_EQ(e.decisions, kDecisions - submit_failures);
  EXPECT_EQ(submit_failures, 0);
  EXPECT_EQ(cp_kills, kCpKills);
  EXPECT_EQ(agent_kills, kAgentKills) << "planned agent kills that did not happen";
  EXPECT_EQ(e.missing, 0) << "lost decisions";
  EXPECT_EQ(e.non_terminal, 0);
  EXPECT_EQ(e.applied_twice, 0);
  EXPECT_EQ(e.verified_without_effect, 0);
  // The counter's operation is idempotent and declared so: an apply
  // interrupted by a kill is finished after the restart, never FAILED, and
  // only such a re-run plans a task a second time.
  EXPECT_EQ(e.failed_after_intent, 0);
  EXPECT_EQ(e.not_rerun, 0);
  EXPECT_EQ(e.planned_twice_without_rerun, 0);
  // Every effect belongs to a distinct task, and nothing was applied that was
  // never decided.
  EXPECT_LE(e.effects, e.decisions);
  // SIGKILLs never break the audit chain: its entries are written in the
  // same batch as the changes they describe.
  auto audit = (*d)->VerifyAudit();
  ASSERT_TRUE(audit.ok()) << audit.status();
  std::printf("fault audit chain: %s, %llu entries checked%s%s\n", audit->ok() ? "OK" : "BROKEN",
              static_cast<unsigned long long>(audit->entries_checked()), audit->ok() ? "" : ": ",
              audit->broken_reason().c_str());
  EXPECT_TRUE(audit->ok()) << audit->broken_reason();
  EXPECT_GE(audit->entries_checked(), static_cast<uint64_t>(2 * e.decisions));
}

// ---------------------------------------------------------------------------
// Every named crash point: hit, the process dies by SIGKILL, and after a
// restart the run converges (every decision terminal, nothing applied twice,
// VERIFIED exactly where the effect is on the target).

struct CrashCase {
  const char* point;
  bool in_agent;
  // Whether the exec instance declares its operation idempotent.
  bool idempotent;
  // A control-plane crash loses nothing: every decision ends VERIFIED. An
  // agent crash interrupts up to two tasks (two executor workers). Declared
  // idempotent, a task left in INTENT is finished on restart (plan, apply,
  // verify again): every decision ends VERIFIED. Not declared, it is only
  // verified: one that had not applied yet is observed not in effect and
  // reported FAILED, saying why it was not re-run (never applied then,
  // never twice).
  int min_failed;
  int max_failed;
  // At least this many tasks left in INTENT are run again after the restart.
  int min_reruns;
};

class CrashPointTest : public ::testing::TestWithParam<CrashCase> {};

TEST_P(CrashPointTest, HitAndConverges) {
  const CrashCase& c = GetParam();
  Deployment::Options o;
  o.agents = 2;
  o.exec_idempotent = c.idempotent;
  auto d = Deployment::Start(Bins(), o);
  ASSERT_TRUE(d.ok()) << d.status();
  const std::string env = absl::StrCat("WRITEBACK_CRASH_POINTS=", c.point, ":3");
  if (c.in_agent) {
    (*d)->KillAgent(0);
    ASSERT_TRUE((*d)->StartAgent(0, {env}).ok());
    ASSERT_TRUE((*d)->WaitAllAgentsConnected(absl::Seconds(30)).ok());
  } else {
    (*d)->KillControlPlane();
    ASSERT_TRUE((*d)->StartControlPlane({env}).ok());
  }
  constexpr int kDecisions = 8;
  std::vector<std::string> ids;
  int cp_crashes = 0;
  for (int i = 0; i < kDecisions; ++i) {
    auto id = SubmitWithRetry(**d, (*d)->Spec(i % 2, absl::StrCat("obj-", i)),
                              absl::StrCat("req-", i), {}, &cp_crashes);
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  }
  if (c.in_agent) {
    // The agent crashes by itself on its third pass through the point.
    auto status = (*d)->WaitAgentExit(0, absl::Seconds(60));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFSIGNALED(*status));
    EXPECT_EQ(WTERMSIG(*status), SIGKILL);
    ASSERT_TRUE((*d)->StartAgent(0).ok());
  } else if (cp_crashes == 0) {
    // cp.after_result_write: reached while results come in.
    auto status = (*d)->WaitControlPlaneExit(absl::Seconds(60));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFSIGNALED(*status));
    EXPECT_EQ(WTERMSIG(*status), SIGKILL);
    ASSERT_TRUE((*d)->StartControlPlane().ok());
  }
  const std::string log = c.in_agent ? (*d)->agent_log(0) : (*d)->controlplane_log();
  EXPECT_EQ(CountInFile(log, absl::StrCat("crash point ", c.point, " hit")), 1);

  EndState e = Converge(**d, ids, absl::Minutes(2));
  EXPECT_EQ(e.missing, 0);
  EXPECT_EQ(e.non_terminal, 0);
  EXPECT_EQ(e.applied_twice, 0);
  EXPECT_EQ(e.verified_without_effect, 0);
  EXPECT_EQ(e.verified + e.failed, kDecisions);
  EXPECT_GE(e.failed, c.min_failed);
  EXPECT_LE(e.failed, c.max_failed);
  EXPECT_GE(e.reruns, c.min_reruns);
  EXPECT_EQ(e.planned_twice_without_rerun, 0);
  if (c.idempotent) {
    EXPECT_EQ(e.failed_after_intent, 0);
    EXPECT_EQ(e.not_rerun, 0);
  } else {
    EXPECT_EQ(e.reruns, 0);
    // Every FAILED decision says why its interrupted apply was not re-run.
    for (const auto& [id, state] : e.states) {
      if (state != writeback::v1::DECISION_STATE_FAILED) continue;
      auto v = (*d)->Get(id);
      ASSERT_TRUE(v.ok() && v->tasks_size() == 1);
      EXPECT_TRUE(absl::StrContains(v->tasks(0).message(),
                                    "not re-run: operation 'revoke' of connector 'fx-a0' (exec) "
                                    "is not idempotent"))
          << v->tasks(0).message();
    }
  }
  std::printf(
      "crash point %s%s: decisions=%d verified=%d failed=%d effects=%d applied_twice=%d "
      "reruns=%d failed_after_intent=%d\n",
      c.point, c.idempotent ? "" : " (not idempotent)", e.decisions, e.verified, e.failed,
      e.effects, e.applied_twice, e.reruns, e.failed_after_intent);
}

INSTANTIATE_TEST_SUITE_P(
    Points, CrashPointTest,
    ::testing::Values(CrashCase{"cp.after_decision_write", false, true, 0, 0, 0},
                      CrashCase{"cp.after_result_write", false, true, 0, 0, 0},
                      CrashCase{"agent.after_intent", true, true, 0, 0, 1},
                      CrashCase{"agent.after_intent", true, false, 1, 2, 0},
                      CrashCase{"agent.after_apply", true, true, 0, 0, 1},
                      CrashCase{"agent.after_result_journal", true, true, 0, 0, 0}),
    [](const ::testing::TestParamInfo<CrashCase>& i) {
      std::string n = i.param.point;
      std::replace(n.begin(), n.end(), '.', '_');
      return i.param.idempotent ? n : n + "_not_idempotent";
    });

// ---------------------------------------------------------------------------
// Partitions and duplicates, through the scripted control plane
// (tests/integration/fake_controlplane), which delivers exactly the bytes
// the test chooses. Tasks are signed with the deployment's dispatch key.

class ScriptedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Deployment::Options o;
    o.agents = 1;
    o.start_processes = false;
    o.agent_max_clock_skew_seconds = 1;
    auto d = Deployment::Start(Bins(), o);
    ASSERT_TRUE(d.ok()) << d.status();
    d_ = std::move(*d);
    fake_ = std::make_unique<e2e::FakeControlPlane>(d_->pki().controlplane().tls);
    ASSERT_TRUE(d_->UseControlPlanePort(fake_->port()).ok());
    auto pem = fs::ReadFile(d_->pki().dispatch_key_file());
    ASSERT_TRUE(pem.ok());
    auto key = crypto::Ed25519PrivateKey::FromPem(*pem);
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = std::make_unique<crypto::Ed25519PrivateKey>(std::move(*key));
    audience_ = d_->pki().agent(d_->agent_name(0)).spiffe_id;
  }

  writeback::v1::SignedEnvelope Task(int k, absl::Time now, absl::Duration ttl) {
    agent::testing::TaskSpec s;
    s.task_id = absl::StrCat("task-", k);
    s.decision_id = absl::StrCat("dec-", k);
    s.version = static_cast<uint64_t>(k + 1);
    s.audience = audience_;
    s.instance = d_->instance(0);
    s.operation = "revoke";
    s.object = absl::StrCat("obj-", k);
    s.now = now;
    s.ttl = ttl;
    writeback::v1::DecisionStatement st = agent::testing::MakeStatement(s);
    st.mutable_params()->mutable_exec();  // replaces the ssh params
    return agent::testing::SignTask(
        agent::testing::MakeTaskFor(s, st.SerializeAsString(), key_->key_id()), *key_);
  }

  // Distinct task ids among the results received.
  std::map<std::string, writeback::v1::Result> ResultsById() {
    std::map<std::string, writeback::v1::Result> out;
    for (const auto& r : fake_->parsed_results()) out[r.task_id()] = r;
    return out;
  }

  std::unique_ptr<Deployment> d_;
  std::unique_ptr<e2e::FakeControlPlane> fake_;
  std::unique_ptr<crypto::Ed25519PrivateKey> key_;
  std::string audience_;
};

TEST_F(ScriptedTest, PartitionLongerThanLifetimeNeverApplies) {
  // The agent is "partitioned" (not running) while its task is queued; the
  // task's lifetime (2 s, plus the agent's 1 s skew) passes before it returns.
  const absl::Time now = absl::Now();
  fake_->Push(Task(0, now, absl::Seconds(2)));
  ASSERT_TRUE(testing::WaitFor([&] { return absl::Now() > now + absl::Seconds(4); },
                               std::chrono::seconds(10), std::chrono::milliseconds(50)));
  ASSERT_TRUE(d_->StartAgent(0).ok());
  ASSERT_TRUE(fake_->WaitResults(1));
  auto r = ResultsById();
  ASSERT_EQ(r.count("task-0"), 1u);
  EXPECT_EQ(r["task-0"].outcome(), writeback::v1::OUTCOME_REJECTED);
  EXPECT_EQ(r["task-0"].reject_reason(), writeback::v1::REJECT_REASON_EXPIRED);
  EXPECT_TRUE(d_->Effects(0).empty()) << "an expired task was applied";
}

TEST_F(ScriptedTest, PartitionShorterThanLifetimeAppliesEverythingQueued) {
  ASSERT_TRUE(d_->StartAgent(0).ok());
  ASSERT_TRUE(testing::WaitFor([&] { return fake_->connected(); }, std::chrono::seconds(30)));
  d_->KillAgent(0);  // partitioned: tasks queue up at the control plane
  ASSERT_TRUE(testing::WaitFor([&] { return !fake_->connected(); }, std::chrono::seconds(30)));
  const absl::Time now = absl::Now();
  constexpr int kTasks = 10;
  for (int k = 0; k < kTasks; ++k) fake_->Push(Task(k, now, absl::Hours(1)));
  ASSERT_TRUE(d_->StartAgent(0).ok());
  ASSERT_TRUE(testing::WaitFor([&] { return ResultsById().size() == kTasks; },
                               std::chrono::seconds(60), std::chrono::milliseconds(20)));
  auto effects = d_->Effects(0);
  for (const auto& [id, r] : ResultsById()) {
    EXPECT_EQ(r.outcome(), writeback::v1::OUTCOME_VERIFIED) << id << ": " << r.message();
    EXPECT_EQ(effects[id], 1) << id;
  }
  EXPECT_EQ(effects.size(), static_cast<size_t>(kTasks));
}

TEST_F(ScriptedTest, DuplicateAndReorderedDeliveriesApplyOnce) {
  ASSERT_TRUE(d_->StartAgent(0).ok());
  const absl::Time now = absl::Now();
  constexpr int kTasks = 30;
  std::vector<writeback::v1::SignedEnvelope> sends;
  for (int k = 0; k < kTasks; ++k) {
    const int copies = k % 3 == 0 ? 1 : (k % 3 == 1 ? 2 : 5);
    auto t = Task(k, now, absl::Hours(1));
    for (int c = 0; c < copies; ++c) sends.push_back(t);
  }
  std::mt19937 rng(Seed());
  std::shuffle(sends.begin(), sends.end(), rng);
  for (const auto& t : sends) fake_->Push(t);
  ASSERT_TRUE(testing::WaitFor([&] { return ResultsById().size() == kTasks; },
                               std::chrono::seconds(60), std::chrono::milliseconds(20)));
  // Redeliveries after the results: the stored result comes back, no effect.
  for (int k = 0; k < kTasks; k += 7) fake_->Push(Task(k, now, absl::Hours(1)));
  const size_t before = fake_->parsed_results().size();
  ASSERT_TRUE(fake_->WaitResults(before + (kTasks + 6) / 7));
  auto effects = d_->Effects(0);
  EXPECT_EQ(effects.size(), static_cast<size_t>(kTasks));
  for (const auto& [id, n] : effects) EXPECT_EQ(n, 1) << id << " applied " << n << " times";
  for (const auto& [id, r] : ResultsById()) {
    EXPECT_EQ(r.outcome(), writeback::v1::OUTCOME_VERIFIED) << id << ": " << r.message();
  }
}

}  // namespace
}  // namespace wb::fault
