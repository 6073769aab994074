// wbctl agent show ID
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
  writeback::v1::GetAgentRequest req;
  req.set_agent_id(id);
  writeback::v1::GetAgentResponse resp;
  if (auto s = c->Check(c->stub->GetAgent(&call, req, &resp)); !s.ok()) return ctx.Fail(s);
  return ctx.Emit(FormatAgentShow(resp, *format, ctx.Now()));
}

const bool kRegistered = RegisterCommand({
    .path = {"agent", "show"},
    .description = "One agent: state, connection, instances and their health, counts, open tasks",
    .group_description = "Inspect agents",
    .setup = [](CLI::App* app) -> Action {
      auto id = std::make_shared<std::string>();
      app->add_option("id", *id, "Agent name (e.g. a1) or SPIFFE ID")->required();
      return [id](Context& ctx) { return Run(*id, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
