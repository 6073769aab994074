// wbctl agent list
#include "cli/command.h"

namespace wb::cli {
namespace {

int Run(Context& ctx) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  auto timeout = ctx.Timeout(absl::Seconds(10));
  if (!timeout.ok()) return ctx.Fail(timeout.status());
  auto client = ctx.Client();
  if (!client.ok()) return ctx.Fail(client.status());
  auto resp = (*client)->ListAgents(*timeout);
  if (!resp.ok()) return ctx.Fail(resp.status());
  return ctx.Emit(FormatAgentList(*resp, *format, ctx.Now()));
}

const bool kRegistered = RegisterCommand({
    .path = {"agent", "list"},
    .description = "List agents: connection, last heartbeat, version, instances, labels",
    .group_description = "Inspect agents",
    .setup = [](CLI::App*) -> Action { return Run; },
});

}  // namespace
}  // namespace wb::cli
