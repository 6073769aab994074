// Micro benchmarks of the dispatcher's per-task paths on a real (synced)
// RocksDB store, in one process: what a result, an ack or a stream's pull
// costs the control plane, and how that depends on the decision's size and
// on what the outbox went through. Figures are process CPU (the store's
// writer thread included), never used as a pass/fail threshold.
//
//   controlplane_dispatch_bench --benchmark_filter=Result
//
// docs/performance.md lists what it measured.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock/clock.h"
#include "common/envelope/envelope.h"
#include "common/testing/temp_dir.h"
#include "controlplane/dispatch/dispatcher.h"
#include "controlplane/store/rocksdb_store.h"

namespace wb::controlplane {
namespace {

constexpr char kAgent[] = "spiffe://writeback.test/agent/a";
constexpr char kOperator[] = "spiffe://writeback.test/operator/alice";

class NoSession : public AgentSession {
 public:
  void Wake() override {}
  void End(const absl::Status&) override {}
};

// A dispatcher on a fresh store, with one agent serving "hosts".
struct Rig {
  Rig() {
    store = *RocksDbStore::Open(dir.Sub("db"));
    DispatcherOptions o;
    o.controlplane_id = "spiffe://writeback.test/controlplane/cp";
    o.default_ttl_seconds = 3600;
    d = *Dispatcher::Create(store.get(), &clock, dispatch_key, &sessions, o);
    (void)d->BindInstance(kOperator, "hosts", kAgent, "bench");
    writeback::v1::Hello h;
    h.set_agent_id(kAgent);
    h.set_version("bench");
    h.set_result_public_key(agent_key.public_key().raw());
    auto* inst = h.add_instances();
    inst->set_name("hosts");
    inst->set_type("ssh_authorized_keys");
    inst->add_operations("remove_key");
    if (!d->Hello(kAgent, h).ok()) std::abort();
    sessions.Register(kAgent, &session, clock.NowUnixMs());
  }
  ~Rig() { sessions.Unregister(kAgent, &session); }

  // Submits one decision of `targets` targets; returns its tasks.
  std::vector<writeback::v1::TaskRecord> Submit(int targets) {
    writeback::v1::SubmitDecisionRequest r;
    auto* s = r.mutable_spec();
    s->set_connector_instance("hosts");
    s->set_operation("remove_key");
    s->mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(absl::StrCat(
        "SHA256:", std::string(42, 'A'), std::string(1, static_cast<char>('A' + next % 26))));
    for (int i = 0; i < targets; ++i) s->add_targets()->set_object(absl::StrCat("u", next, "x", i));
    s->set_reason("bench");
    ++next;
    auto resp = d->Submit(kOperator, r);
    if (!resp.ok()) std::abort();
    std::vector<writeback::v1::TaskRecord> out;
    auto dec = store->GetDecision(resp->decision_id());
    for (const auto& id : dec->task_ids()) out.push_back(*store->GetTask(id));
    return out;
  }

  writeback::v1::SignedEnvelope Result(const writeback::v1::TaskRecord& t) {
    writeback::v1::Result r;
    r.set_task_id(t.task_id());
    r.set_agent_id(kAgent);
    r.set_decision_id(t.decision_id());
    r.set_task_digest(crypto::Sha256(t.signed_task().payload()));
    r.set_outcome(writeback::v1::OUTCOME_VERIFIED);
    r.mutable_verification()->set_outcome(writeback::v1::OUTCOME_VERIFIED);
    return envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT, r.SerializeAsString(), agent_key);
  }

  wb::testing::TempDir dir;
  FakeClock clock;
  crypto::Ed25519PrivateKey dispatch_key = crypto::Ed25519PrivateKey::Generate();
  crypto::Ed25519PrivateKey agent_key = crypto::Ed25519PrivateKey::Generate();
  SessionRegistry sessions;
  NoSession session;
  std::unique_ptr<RocksDbStore> store;
  std::unique_ptr<Dispatcher> d;
  int next = 0;
};

// One result (ack, then the signed result) for every task of a decision of
// range(0) targets. Signing the results is outside the measurement.
void BM_ResultPerTask(benchmark::State& state) {
  Rig rig;
  const int targets = static_cast<int>(state.range(0));
  int64_t results = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto tasks = rig.Submit(targets);
    std::vector<writeback::v1::SignedEnvelope> signed_results;
    for (const auto& t : tasks) signed_results.push_back(rig.Result(t));
    state.ResumeTiming();
    for (size_t i = 0; i < tasks.size(); ++i) {
      if (!rig.d->AckTask(kAgent, tasks[i].task_id()).ok()) std::abort();
      if (!rig.d->IntakeResult(kAgent, signed_results[i]).accepted()) std::abort();
    }
    results += targets;
  }
  state.counters["per_result"] = benchmark::Counter(
      static_cast<double>(results), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_ResultPerTask)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000)
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);

// A stream's pull (NextTasks with a full in-flight window, then StillOpen)
// after range(0) tasks at the front of the outbox got their results: what
// the per-iteration cost of a stream depends on.
void BM_PullAfterFinished(benchmark::State& state) {
  Rig rig;
  const int finished = static_cast<int>(state.range(0));
  for (int done = 0; done < finished; done += 1000) {
    const auto tasks = rig.Submit(1000);
    for (const auto& t : tasks) {
      if (!rig.d->IntakeResult(kAgent, rig.Result(t)).accepted()) std::abort();
    }
  }
  rig.Submit(200);
  absl::flat_hash_set<std::string> in_flight;
  auto first = rig.d->NextTasks(kAgent, {}, 64);
  if (!first.ok()) std::abort();
  for (const auto& t : *first) in_flight.insert(t.task_id());
  for (auto _ : state) {
    auto next = rig.d->NextTasks(kAgent, in_flight, 1);
    benchmark::DoNotOptimize(next);
    auto open = rig.d->StillOpen(in_flight);
    benchmark::DoNotOptimize(open);
  }
}
BENCHMARK(BM_PullAfterFinished)
    ->Arg(0)
    ->Arg(4000)
    ->Arg(16000)
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace wb::controlplane

BENCHMARK_MAIN();
