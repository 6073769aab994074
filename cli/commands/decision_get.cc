// wbctl decision get ID: one decision, its tasks and their evidence.
#include <memory>

#include "cli/command.h"

namespace wb::cli {
namespace {

struct Options {
  std::string id;
};

int Run(const Options& o, Context& ctx) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  auto timeout = ctx.Timeout(absl::Seconds(10));
  if (!timeout.ok()) return ctx.Fail(timeout.status());
  auto client = ctx.Client();
  if (!client.ok()) return ctx.Fail(client.status());
  auto view = (*client)->GetDecision(o.id, *timeout);
  if (!view.ok()) return ctx.Fail(view.status());
  return ctx.Emit(FormatDecisionView(*view, *format, ctx.Now()));
}

const bool kRegistered = RegisterCommand({
    .path = {"decision", "get"},
    .description = "Show a decision: statement, state, and per task the outcome and evidence",
    .group_description = "Submit and inspect decisions",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<Options>();
      app->add_option("ID", o->id, "Decision id")->required();
      return [o](Context& ctx) { return Run(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
