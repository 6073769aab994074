// wbctl decision reverify ID   (verify-only tasks now)
// wbctl decision remediate ID  (re-issue a DRIFTED decision's drifted targets)
// One RPC, ReverifyDecision, with or without `remediate`.
#include <memory>

#include "cli/commands/view_client.h"
#include "cli/commands/view_format.h"

namespace wb::cli {
namespace {

int Run(const std::string& id, bool remediate, Context& ctx) {
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
  req.set_remediate(remediate);
  writeback::v1::ReverifyDecisionResponse resp;
  if (auto s = c->Check(c->stub->ReverifyDecision(&call, req, &resp)); !s.ok()) return ctx.Fail(s);
  if (*format == OutputFormat::kTable) return ctx.Emit(ReverifyText(resp));
  return ctx.Emit(RenderMessage(resp, *format));
}

CommandDef ReverifyCommand(std::string name, std::string description, bool remediate) {
  return CommandDef{
      .path = {"decision", std::move(name)},
      .description = std::move(description),
      .group_description = "Submit and inspect decisions",
      .setup = [remediate](CLI::App* app) -> Action {
        auto id = std::make_shared<std::string>();
        app->add_option("id", *id, "Decision id")->required();
        return [id, remediate](Context& ctx) { return Run(*id, remediate, ctx); };
      },
  };
}

const bool kReverifyRegistered = RegisterCommand(ReverifyCommand(
    "reverify", "Re-verify a VERIFIED or DRIFTED decision now (verify-only tasks)", false));
const bool kRemediateRegistered = RegisterCommand(ReverifyCommand(
    "remediate", "Re-issue the drifted targets of a DRIFTED decision as a new decision", true));

}  // namespace
}  // namespace wb::cli
