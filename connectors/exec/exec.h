// Connector type "exec": carries actions into systems Writeback has no
// connector for, through a program the operator supplies. The program is
// fixed by the agent's configuration (an absolute path, never taken from a
// task) and speaks a JSON contract (docs/connectors/exec.md):
//
//   argv:   [program, verb]   verb is "plan", "apply", "verify" or "check"
//   stdin:  one JSON request  {"contract": "writeback.exec/v1", "verb",
//           "connector_instance", "operation", "object", "params": {"args":
//           {...}}, "task_id", "decision_version", and "plan_state" for apply}
//   stdout: one JSON response (at most max_output_bytes)
//   exit:   0 with a response; anything else is a failure.
//
// Responses per verb:
//   plan:   {"no_change": bool, "summary": str, "changes": [str],
//            "before": OBS, "state": str}
//   apply:  {"changes": [str]}
//   verify: {"outcome": "verified"|"unverified"|"failed", "detail": str,
//            "after": OBS}
//   check:  {"ok": bool, "detail": str}
//   any:    {"error": {"code": "invalid_argument"|"failed_precondition"|
//            "failed", "message": str}}
//   OBS is {"check": str, "subject": str, "detail": str, "facts": {str: str}}.
//
// How results map onto the Connector contract:
//   - a non-zero exit, a signal, the timeout (the whole process group is
//     killed), oversized stdout or a malformed response: Plan/Apply/Check
//     return an error (ABORTED; DEADLINE_EXCEEDED for the timeout) and Verify
//     returns OUTCOME_UNVERIFIED ("cannot tell": nothing was observed), each
//     carrying the exit description and stderr (truncated to 4 KiB) as
//     evidence;
//   - "error" responses map to INVALID_ARGUMENT, FAILED_PRECONDITION and
//     ABORTED; Verify returns INVALID_ARGUMENT as an error and the other two
//     as OUTCOME_UNVERIFIED. Only the program's "outcome": "failed" is
//     OUTCOME_FAILED (the effect is gone: drift when re-verifying).
//   - the connector adds its own observation ("exec_program": program, verb,
//     how it ended) to every plan and verification.
//
// The action is validated (wb::actions, type "exec") before the program is
// ever started: malformed actions never reach it.
//
// The program runs with a clean environment (PATH, LANG, HOME, USER,
// LOGNAME, plus the configured `env`), in working_dir, as run_as_user/
// run_as_group when configured (the agent must then be root), with every
// other descriptor of the agent closed.
//
// Thread-safety: all methods may be called concurrently; Apply calls are
// serialised per instance.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "connectors/connector.h"
#include "connectors/exec/subprocess.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors {

class ExecConnector final : public Connector {
 public:
  // Validates cfg (errors name the field, e.g.
  // "connectors[x].exec.program: must be an absolute path"): program is an
  // absolute, existing, executable regular file that is not world-writable;
  // run_as_user/run_as_group exist; env names are [A-Z_][A-Z0-9_]{0,63};
  // idempotent_operations are exec operations, each listed once (the agent's
  // executor reads them from the config, not from the connector).
  static absl::StatusOr<std::unique_ptr<Connector>> Create(
      const writeback::v1::ConnectorInstanceConfig& cfg);

  absl::string_view type() const override { return "exec"; }
  const std::string& instance_name() const override { return name_; }
  absl::StatusOr<writeback::v1::Plan> PlanChange(const CallContext& ctx,
                                                 const Action& action) override;
  absl::StatusOr<writeback::v1::ApplyResult> Apply(const CallContext& ctx, const Action& action,
                                                   const writeback::v1::Plan& plan) override;
  absl::StatusOr<writeback::v1::Verification> Verify(const CallContext& ctx,
                                                     const Action& action) override;
  absl::Status Check(const CallContext& ctx) override;

 private:
  ExecConnector(std::string name, writeback::v1::ExecConfig cfg, std::vector<std::string> env,
                std::optional<uid_t> uid, std::optional<gid_t> gid)
      : name_(std::move(name)), cfg_(std::move(cfg)), env_(std::move(env)), uid_(uid), gid_(gid) {}

  // Runs the program for `verb` with `request` on stdin, bounded by the
  // configured timeout and the call's deadline.
  absl::StatusOr<exec::SubprocessResult> Run(const CallContext& ctx, absl::string_view verb,
                                             const std::string& request,
                                             exec::SubprocessSpec* spec_out) const;

  const std::string name_;
  const writeback::v1::ExecConfig cfg_;
  const std::vector<std::string> env_;
  const std::optional<uid_t> uid_;
  const std::optional<gid_t> gid_;
  absl::Mutex apply_mu_;
};

}  // namespace wb::connectors
