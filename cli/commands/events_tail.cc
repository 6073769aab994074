// wbctl events tail [--backlog N] [--no-follow] [--decision ID] [--agent ID]
#include <memory>

#include "cli/commands/view_client.h"
#include "cli/commands/view_format.h"

namespace wb::cli {
namespace {

struct Options {
  uint32_t backlog = 20;
  bool no_follow = false;
  std::string decision, agent;
};

int Run(const Options& o, Context& ctx) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  // Following has no end of its own: --timeout (or Ctrl-C) ends it.
  auto timeout = ctx.Timeout(o.no_follow ? absl::Seconds(10) : absl::InfiniteDuration());
  if (!timeout.ok()) return ctx.Fail(timeout.status());
  auto c = DialView(ctx);
  if (!c.ok()) return ctx.Fail(c.status());
  grpc::ClientContext call;
  if (*timeout != absl::InfiniteDuration()) SetDeadline(&call, *timeout);
  writeback::v1::TailEventsRequest req;
  req.set_backlog(o.backlog);
  req.set_follow(!o.no_follow);
  req.set_decision_id(o.decision);
  req.set_agent_id(o.agent);
  auto reader = c->stub->TailEvents(&call, req);
  writeback::v1::TailEventsResponse msg;
  while (reader->Read(&msg)) {
    if (*format == OutputFormat::kTable) {
      if (msg.dropped() > 0) ctx.out() << "... " << msg.dropped() << " event(s) missed\n";
      ctx.out() << EventLine(msg.event());
      ctx.out().flush();
    } else if (int code = ctx.Emit(StreamDocument(msg, *format)); code != kExitOk) {
      call.TryCancel();
      reader->Finish();
      return code;
    }
  }
  const grpc::Status st = reader->Finish();
  // The end of --timeout is the normal end of a follow.
  if (st.ok() || (!o.no_follow && st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)) {
    return kExitOk;
  }
  return ctx.Fail(c->Check(st));
}

const bool kRegistered = RegisterCommand({
    .path = {"events", "tail"},
    .description = "Print recent events and follow new ones (decisions, tasks, drift, agents)",
    .group_description = "The control plane's live event feed",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<Options>();
      app->add_option("--backlog", o->backlog, "Past events to print first (0-10000)")
          ->check(CLI::Range(0u, 10000u));
      app->add_flag("--no-follow", o->no_follow, "Print the backlog and exit");
      app->add_option("--decision", o->decision, "Only events of this decision");
      app->add_option("--agent", o->agent, "Only events of this agent (name or SPIFFE ID)");
      return [o](Context& ctx) { return Run(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
