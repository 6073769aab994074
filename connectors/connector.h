// The connector interface: the agent's hands, one implementation per kind of
// target (DESIGN.md section 5). A connector knows nothing of how tasks arrive.
//
// Contract every implementation keeps (checked by connectors/testing/
// contract_suite.h):
//   - PlanChange only reads. It validates the action (INVALID_ARGUMENT naming
//     the field for malformed input), captures the before-state and says
//     whether anything needs to change (plan.no_change).
//   - Apply makes the change described by a Plan from PlanChange. It is
//     idempotent: applying an already-applied change changes nothing. If the
//     target moved since the plan (precondition in plan.state), it fails with
//     FAILED_PRECONDITION instead of acting on a stale view.
//   - Verify observes the target again, independently of Apply, and reports
//     VERIFIED only when an observation confirmed the effect; UNVERIFIED when
//     nothing available could tell; FAILED when the effect is not there.
//   - Check is cheap: can the connector reach its target with its configured
//     credential.
//   - No shell, ever; identifiers are validated and refused, never "cleaned".
// Thread-safety: one instance may be called from several threads at once for
// different targets; implementations serialize per target where needed.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "writeback/v1/action.pb.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors {

// What the connector is asked to do to one target object.
struct Action {
  std::string operation;               // e.g. "remove_key"
  writeback::v1::ActionParams params;  // typed parameters
  std::string object;                  // the target object (user, role, path…)
  std::string task_id;                 // for logs and evidence only
  uint64_t decision_version = 0;
};

struct CallContext {
  absl::Time deadline = absl::InfiniteFuture();
  const Clock* clock = SystemClock::Get();
  // Verify called for a re-verification (a verify-only task, long after the
  // apply): judge the lasting effect only. What the apply ended at one
  // moment (sessions, connections, leases live then) is not judged: ones
  // opened since are legitimate, not drift.
  bool reverification = false;
};

class Connector {
 public:
  virtual ~Connector() = default;
  virtual absl::string_view type() const = 0;
  virtual const std::string& instance_name() const = 0;

  virtual absl::StatusOr<writeback::v1::Plan> PlanChange(const CallContext& ctx,
                                                         const Action& action) = 0;
  virtual absl::StatusOr<writeback::v1::ApplyResult> Apply(const CallContext& ctx,
                                                           const Action& action,
                                                           const writeback::v1::Plan& plan) = 0;
  virtual absl::StatusOr<writeback::v1::Verification> Verify(const CallContext& ctx,
                                                             const Action& action) = 0;
  virtual absl::Status Check(const CallContext& ctx) = 0;
};

}  // namespace wb::connectors
