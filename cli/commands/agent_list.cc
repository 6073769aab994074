// wbctl agent list [--limit N] [--page-token T]
// Every agent, fetched page after page; with --limit or --page-token, one
// page, and the token of the next one on stderr.
#include <memory>

#include "cli/command.h"

namespace wb::cli {
namespace {

struct Options {
  uint32_t limit = 0;
  std::string page_token;
};

int Run(const Options& o, Context& ctx) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  writeback::v1::ListAgentsRequest req;
  req.set_page_size(o.limit);
  req.set_page_token(o.page_token);
  if (o.limit != 0 || !o.page_token.empty()) {
    auto resp =
        CallAdmin(ctx, absl::Seconds(10), &writeback::v1::AdminService::Stub::ListAgents, req);
    if (!resp.ok()) return ctx.Fail(resp.status());
    const int code = ctx.Emit(FormatAgentList(*resp, *format, ctx.Now()));
    PrintNextPageToken(ctx, resp->next_page_token());
    return code;
  }
  writeback::v1::ListAgentsResponse all;
  auto s = CallAdminPages(ctx, absl::Seconds(10), &writeback::v1::AdminService::Stub::ListAgents,
                          req, [&all](writeback::v1::ListAgentsResponse&& page) {
                            for (auto& a : *page.mutable_agents()) *all.add_agents() = std::move(a);
                          });
  if (!s.ok()) return ctx.Fail(s);
  return ctx.Emit(FormatAgentList(all, *format, ctx.Now()));
}

const bool kRegistered = RegisterCommand({
    .path = {"agent", "list"},
    .description = "List agents: connection, last heartbeat, version, instances, labels",
    .group_description = "Inspect agents",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<Options>();
      AddPageOptions(app, &o->limit, &o->page_token, "agents");
      return [o](Context& ctx) { return Run(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
