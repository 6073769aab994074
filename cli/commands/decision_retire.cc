// wbctl decision retire ID --reason TEXT: stop re-verifying a VERIFIED,
// DRIFTED or UNVERIFIABLE decision. It becomes RETIRED and no longer claims
// anything about its targets (docs/operations.md "Decision states").
#include <memory>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "writeback/v1/admin_service.grpc.pb.h"

namespace wb::cli {
namespace {

struct Options {
  std::string id;
  std::string reason;
};

int Run(const Options& o, Context& ctx) {
  writeback::v1::RetireDecisionRequest req;
  req.set_decision_id(o.id);
  req.set_reason(o.reason);
  auto r =
      CallAdmin(ctx, absl::Seconds(10), &writeback::v1::AdminService::Stub::RetireDecision, req);
  if (!r.ok()) return ctx.Fail(r.status());
  return ctx.Emit(absl::StrCat("decision ", Printable(r->decision_id()), " retired (was ",
                               DecisionStateName(r->retired_from()),
                               "): it is no longer re-verified\n"));
}

const bool kRegistered = RegisterCommand({
    .path = {"decision", "retire"},
    .description = "Stop re-verifying a verified decision (it becomes RETIRED)",
    .group_description = "Submit and inspect decisions",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<Options>();
      app->add_option("ID", o->id, "Decision id")->required();
      app->add_option("--reason", o->reason, "Why (kept in the decision and the audit chain)")
          ->required();
      return [o](Context& ctx) { return Run(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
