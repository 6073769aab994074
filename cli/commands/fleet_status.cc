// wbctl fleet status [--state S] [--site S] [--segment S] [--check]
#include <memory>

#include "cli/commands/view_client.h"
#include "cli/commands/view_format.h"

namespace wb::cli {
namespace {

struct Options {
  std::string state, site, segment;
  bool check = false;
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
  grpc::ClientContext call;
  SetDeadline(&call, *timeout);
  writeback::v1::FleetStatusResponse resp;
  if (auto s = c->Check(c->stub->FleetStatus(&call, req, &resp)); !s.ok()) return ctx.Fail(s);
  const int code = ctx.Emit(FormatFleetStatus(resp, *format, ctx.Now()));
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
      app->add_flag("--check", o->check,
                    "Exit 1 if any agent is STALE or OFFLINE (for monitoring scripts)");
      return [o](Context& ctx) { return Run(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
