// `writeback-agent bundle apply FILE --out RESULTS` (docs/networks.md
// "Air-gapped sites"): an agent without a network path to the control plane
// applies a task bundle and writes a signed result bundle.
//
//   1. reads the bundle file (clear error for a wrong or damaged file);
//   2. opens the agent's own journal: refused while `writeback-agent run`
//      holds it (RocksDB's lock), so the two never act at once;
//   3. checks the bundle as a whole (common/bundle CheckTaskBundle): the
//      manifest is signed by a dispatch key this agent trusts (the trust
//      policy's in root mode, the pinned keys otherwise), names this agent,
//      has not expired, and the file's tasks are exactly its entries — a
//      partial or mixed bundle is refused before anything runs;
//   4. runs every task through the SAME executor as online
//      (agent/executor: CheckTask with approvals, time window, replay and
//      rollback, rate budget, audience; journal; plan/apply/verify);
//   5. waits for every task's result (condition variable with a deadline),
//      then writes the result bundle atomically (temp file + rename),
//      signed with the agent's result key.
// Resumable: a task the journal already finished returns its stored result
// (the executor's replay path), a task left unfinished by an interruption
// is recovered by the executor on start (an interrupted idempotent apply is
// finished, any other is verified), so running the same bundle again
// completes it without acting twice. An expired bundle is refused unless
// the journal already knows some of its tasks (an interrupted run): then
// the stored results are written and the rest is refused (EXPIRED) by the
// ordinary checks.
//
// Not thread-safe: one call at a time per data_dir (the journal lock
// enforces it across processes).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "connectors/registry.h"
#include "writeback/v1/config.pb.h"
#include "writeback/v1/decision.pb.h"

namespace wb::agent {

struct BundleApplyOptions {
  std::string bundle_path;
  std::string out_path;
  // How long to wait for every task to finish.
  absl::Duration wait = absl::Minutes(30);
};

struct BundleTaskReport {
  std::string task_id;
  std::string connector_instance;
  std::string operation;
  std::string target;
  writeback::v1::Result result;  // parsed from the signed result
  bool from_journal = false;     // finished by an earlier run
};

struct BundleApplyReport {
  std::string bundle_id;
  int64_t expires_at_unix_ms = 0;
  bool expired = false;                 // applied after expiry to finish an interrupted run
  std::vector<BundleTaskReport> tasks;  // in manifest order
};

// Validates what bundle apply needs from `cfg` (agent_id, result_key_file,
// data_dir, dispatch keys or trust root, connectors), then runs the steps
// above. Errors name the field or the file and the reason; on any error
// before step 4 nothing was applied.
absl::StatusOr<BundleApplyReport> ApplyBundle(const writeback::v1::AgentConfig& cfg,
                                              const connectors::Registry& registry,
                                              const BundleApplyOptions& opts,
                                              const Clock* clock = SystemClock::Get());

}  // namespace wb::agent
