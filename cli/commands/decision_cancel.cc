// wbctl decision cancel ID: withdraw the decision's tasks that have no
// result yet (QUEUED/DELIVERED -> CANCELED). A task already running on its
// agent may still finish; its result is recorded (docs/delivery.md).
#include <memory>

#include "absl/strings/str_cat.h"
#include "cli/command.h"

namespace wb::cli {
namespace {

struct Options {
  std::string id;
};

int Run(const Options& o, Context& ctx) {
  auto timeout = ctx.Timeout(absl::Seconds(10));
  if (!timeout.ok()) return ctx.Fail(timeout.status());
  auto client = ctx.Client();
  if (!client.ok()) return ctx.Fail(client.status());
  auto r = (*client)->CancelDecision(o.id, *timeout);
  if (!r.ok()) return ctx.Fail(r.status());
  return ctx.Emit(absl::StrCat(
      "decision ", r->decision_id(), ": ", r->tasks_canceled(), " task(s) canceled; state ",
      writeback::v1::DecisionState_Name(r->state()), r->state_detail().empty() ? "" : " (",
      r->state_detail(), r->state_detail().empty() ? "" : ")", "\n"));
}

const bool kRegistered = RegisterCommand({
    .path = {"decision", "cancel"},
    .description = "Withdraw a decision's tasks that have no result yet",
    .group_description = "Submit and inspect decisions",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<Options>();
      app->add_option("ID", o->id, "Decision id")->required();
      return [o](Context& ctx) { return Run(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
