// wbctl decision list [--state STATE] [--since WHEN] [--limit N]
#include <memory>

#include "cli/command.h"
#include "cli/commands/view_format.h"

namespace wb::cli {
namespace {

struct Options {
  std::string state;
  std::string since;
  uint32_t limit = 0;
};

int Run(const Options& o, Context& ctx) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  writeback::v1::ListDecisionsRequest req;
  req.set_limit(o.limit);
  if (!o.state.empty()) {
    auto s = ParseDecisionState(o.state);
    if (!s.ok()) return ctx.Fail(s.status());
    req.set_state(*s);
  }
  if (!o.since.empty()) {
    auto t = ParseSince(o.since, ctx.Now());
    if (!t.ok()) return ctx.Fail(t.status());
    req.set_since_unix_ms(*t);
  }
  auto timeout = ctx.Timeout(absl::Seconds(10));
  if (!timeout.ok()) return ctx.Fail(timeout.status());
  auto client = ctx.Client();
  if (!client.ok()) return ctx.Fail(client.status());
  auto resp = (*client)->ListDecisions(req, *timeout);
  if (!resp.ok()) return ctx.Fail(resp.status());
  return ctx.Emit(FormatDecisionList(*resp, *format, ctx.Now()));
}

const bool kRegistered = RegisterCommand({
    .path = {"decision", "list"},
    .description = "List recent decisions",
    .group_description = "Submit and inspect decisions",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<Options>();
      app->add_option("--state", o->state,
                      "Only decisions in this state (e.g. dispatched, verified, failed)");
      app->add_option("--since", o->since,
                      "Only decisions submitted since then: 30m, 2h, 7d or an RFC3339 time");
      app->add_option("--limit", o->limit, "At most N decisions (0 = server default, 100)")
          ->check(CLI::Range(0u, 100000u));
      return [o](Context& ctx) { return Run(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
