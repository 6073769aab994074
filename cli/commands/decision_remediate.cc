// wbctl decision remediate ID
#include <memory>

#include "cli/commands/view_client.h"
#include "cli/commands/view_format.h"

namespace wb::cli {
namespace {

int Run(const std::string& id, Context& ctx) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  auto timeout = ctx.Timeout(absl::Seconds(10));
  if (!timeout.ok()) return ctx.Fail(timeout.status());
  auto c = DialView(ctx);
  if (!c.ok()) return ctx.Fail(c.status());
  grpc::ClientContext call;
  SetDeadline(&call, *timeout);
  writeback::v1::ReverifyDecisionRequest req;
  req.set_decision_id(id);
  req.set_remediate(true);
  writeback::v1::ReverifyDecisionResponse resp;
  if (auto s = c->Check(c->stub->ReverifyDecision(&call, req, &resp)); !s.ok()) return ctx.Fail(s);
  if (*format == OutputFormat::kTable) return ctx.Emit(ReverifyText(resp));
  return ctx.Emit(RenderMessage(resp, *format));
}

const bool kRegistered = RegisterCommand({
    .path = {"decision", "remediate"},
    .description = "Re-issue the drifted targets of a DRIFTED decision as a new decision",
    .group_description = "Submit and inspect decisions",
    .setup = [](CLI::App* app) -> Action {
      auto id = std::make_shared<std::string>();
      app->add_option("id", *id, "Decision id")->required();
      return [id](Context& ctx) { return Run(*id, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
