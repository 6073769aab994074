// wbctl decision watch ID [--timeout D]
#include <memory>

#include "cli/commands/view_client.h"
#include "cli/commands/view_format.h"
#include "cli/wait.h"

namespace wb::cli {
namespace {

int Run(const std::string& id, Context& ctx) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  auto timeout = ctx.Timeout(absl::Hours(24));
  if (!timeout.ok()) return ctx.Fail(timeout.status());
  auto c = DialView(ctx);
  if (!c.ok()) return ctx.Fail(c.status());
  grpc::ClientContext call;
  SetDeadline(&call, *timeout);
  writeback::v1::WatchDecisionRequest req;
  req.set_decision_id(id);
  auto reader = c->stub->WatchDecision(&call, req);
  writeback::v1::WatchDecisionResponse msg;
  bool seen = false;
  writeback::v1::DecisionState last = writeback::v1::DECISION_STATE_UNSPECIFIED;
  while (reader->Read(&msg)) {
    seen = true;
    last = msg.decision().state();
    if (*format == OutputFormat::kTable) {
      ctx.out() << WatchLine(msg, ctx.Now());
      ctx.out().flush();
    } else if (int code = ctx.Emit(StreamDocument(msg, *format)); code != kExitOk) {
      call.TryCancel();
      reader->Finish();
      return code;
    }
  }
  const grpc::Status st = reader->Finish();
  if (!st.ok()) {
    if (seen && st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      ctx.err() << "wbctl: decision " << Printable(id) << " is still " << DecisionStateName(last)
                << " after " << absl::FormatDuration(*timeout) << "\n";
      return kExitFailed;
    }
    return ctx.Fail(c->Check(st));
  }
  const int code = ExitCodeForFinalState(last);
  if (code != kExitOk)
    ctx.err() << "wbctl: decision " << Printable(id) << " ended " << DecisionStateName(last)
              << "\n";
  return code;
}

const bool kRegistered = RegisterCommand({
    .path = {"decision", "watch"},
    .description = "Follow a decision's state changes until it is final (exit 0 only if VERIFIED)",
    .group_description = "Submit and inspect decisions",
    .setup = [](CLI::App* app) -> Action {
      auto id = std::make_shared<std::string>();
      app->add_option("id", *id, "Decision id")->required();
      return [id](Context& ctx) { return Run(*id, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
