// wbctl decision list [--state STATE] [--since WHEN] [--limit N] [--page-token T]
// Every matching decision, fetched page after page; with --limit or
// --page-token, one page, and the token of the next one on stderr.
#include <algorithm>
#include <memory>

#include "cli/command.h"
#include "cli/commands/view_format.h"

namespace wb::cli {
namespace {

struct Options {
  std::string state;
  std::string since;
  uint32_t limit = 0;
  std::string page_token;
};

// Decisions per request when fetching every page.
constexpr uint32_t kPageSize = 1000;

int Run(const Options& o, Context& ctx) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  writeback::v1::ListDecisionsRequest req;
  const bool one_page = o.limit != 0 || !o.page_token.empty();
  // limit for control planes that predate page_size (one page of it).
  req.set_limit(std::min(o.limit, kPageSize));
  req.set_page_size(one_page ? o.limit : kPageSize);
  req.set_page_token(o.page_token);
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
  if (one_page) {
    auto resp =
        CallAdmin(ctx, absl::Seconds(10), &writeback::v1::AdminService::Stub::ListDecisions, req);
    if (!resp.ok()) return ctx.Fail(resp.status());
    const int code = ctx.Emit(FormatDecisionList(*resp, *format, ctx.Now()));
    PrintNextPageToken(ctx, resp->next_page_token());
    return code;
  }
  writeback::v1::ListDecisionsResponse all;
  auto s = CallAdminPages(ctx, absl::Seconds(10), &writeback::v1::AdminService::Stub::ListDecisions,
                          req, [&all](writeback::v1::ListDecisionsResponse&& page) {
                            for (auto& d : *page.mutable_decisions()) {
                              *all.add_decisions() = std::move(d);
                            }
                          });
  if (!s.ok()) return ctx.Fail(s);
  return ctx.Emit(FormatDecisionList(all, *format, ctx.Now()));
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
      app->add_option("--limit", o->limit,
                      "One page of at most N decisions (the server serves at most 1000), "
                      "newest first; the next page's token goes to stderr")
          ->check(CLI::Range(0u, 100000u));
      app->add_option("--page-token", o->page_token,
                      "One page, from where an earlier --limit page ended");
      return [o](Context& ctx) { return Run(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
