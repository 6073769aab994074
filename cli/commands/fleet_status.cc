// wbctl fleet status [--state S] [--site S] [--segment S] [--check]
//                    [--limit N] [--page-token T]
// Every agent, fetched page after page (an agent that moved in the live
// order between pages is shown once); with --limit or --page-token, one
// page, and the token of the next one on stderr.
#include <memory>

#include "absl/container/flat_hash_set.h"
#include "cli/commands/view_client.h"
#include "cli/commands/view_format.h"

namespace wb::cli {
namespace {

struct Options {
  std::string state, site, segment;
  bool check = false;
  uint32_t limit = 0;
  std::string page_token;
};

int Run(const Options& o, Context& ctx) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  writeback::v1::FleetStatusRequest req;
  if (!o.state.empty()) {
    auto s = ParseAgentState(o.state);
    if (!s.ok()) return ctx.Fail(s.status());
    req.set_state(*s);
  }
  req.set_site(o.site);
  req.set_segment(o.segment);
  auto timeout = ctx.Timeout(absl::Seconds(10));
  if (!timeout.ok()) return ctx.Fail(timeout.status());
  auto c = DialView(ctx);
  if (!c.ok()) return ctx.Fail(c.status());
  const bool one_page = o.limit != 0 || !o.page_token.empty();
  req.set_page_size(o.limit);
  req.set_page_token(o.page_token);
  writeback::v1::FleetStatusResponse resp;
  absl::flat_hash_set<std::string> listed;
  while (true) {
    grpc::ClientContext call;
    SetDeadline(&call, *timeout);
    writeback::v1::FleetStatusResponse page;
    if (auto s = c->Check(c->stub->FleetStatus(&call, req, &page)); !s.ok()) return ctx.Fail(s);
    if (one_page) {
      resp = std::move(page);
      break;
    }
    // Summary, grid and time-to-verified: the latest page's (each page
    // carries them whole). Agents: every page's, each once.
    auto agents = std::move(*page.mutable_agents());
    page.clear_agents();
    auto kept = std::move(*resp.mutable_agents());
    resp = page;
    *resp.mutable_agents() = std::move(kept);
    for (auto& a : agents) {
      if (listed.insert(a.agent_id()).second) *resp.add_agents() = std::move(a);
    }
    if (page.next_page_token().empty()) break;
    if (page.next_page_token() == req.page_token()) {
      return ctx.Fail(absl::InternalError("the server handed back the same page token"));
    }
    req.set_page_token(page.next_page_token());
  }
  const std::string next = one_page ? resp.next_page_token() : "";
  resp.clear_next_page_token();
  const int code = ctx.Emit(FormatFleetStatus(resp, *format, ctx.Now()));
  PrintNextPageToken(ctx, next);
  if (code != kExitOk || !o.check) return code;
  const uint32_t degraded = resp.summary().stale() + resp.summary().offline();
  if (degraded == 0) return kExitOk;
  ctx.err() << "wbctl: " << degraded << " of " << resp.summary().agents()
            << " agents are not ONLINE\n";
  return kExitFailed;
}

const bool kRegistered = RegisterCommand({
    .path = {"fleet", "status"},
    .description = "Fleet summary and every agent's state, worst first",
    .group_description = "The fleet at a glance",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<Options>();
      app->add_option("--state", o->state, "Only agents in this state (online, stale, offline)");
      app->add_option("--site", o->site, "Only agents with this site label");
      app->add_option("--segment", o->segment, "Only agents with this segment label");
      AddPageOptions(app, &o->limit, &o->page_token, "agents");
      app->add_flag("--check", o->check,
                    "Exit 1 if any agent is STALE or OFFLINE (for monitoring scripts)");
      return [o](Context& ctx) { return Run(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
