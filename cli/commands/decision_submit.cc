// wbctl decision submit: build a DecisionSpec from flags and/or a YAML file,
// submit it, optionally wait for the outcome.
#include <memory>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/exit_codes.h"
#include "cli/request.h"
#include "cli/wait.h"

namespace wb::cli {
namespace {

struct Options {
  std::string file, instance, operation, fingerprint, comment, reason, reference, ttl, request_id;
  std::vector<std::string> targets, keep_fingerprints;
  bool wait = false;
  // To tell "given" from "empty" for flags that override the file.
  CLI::Option *o_instance, *o_operation, *o_targets, *o_fingerprint, *o_comment, *o_keep, *o_reason,
      *o_reference, *o_ttl;
};

template <typename T>
std::optional<T> IfGiven(const CLI::Option* opt, const T& value) {
  return opt->count() > 0 ? std::optional<T>(value) : std::nullopt;
}

int Run(const Options& o, Context& ctx) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  DecisionFlags flags;
  flags.file = o.file;
  flags.instance = IfGiven(o.o_instance, o.instance);
  flags.operation = IfGiven(o.o_operation, o.operation);
  flags.targets = IfGiven(o.o_targets, o.targets);
  flags.fingerprint = IfGiven(o.o_fingerprint, o.fingerprint);
  flags.comment = IfGiven(o.o_comment, o.comment);
  flags.keep_fingerprints = IfGiven(o.o_keep, o.keep_fingerprints);
  flags.reason = IfGiven(o.o_reason, o.reason);
  flags.reference = IfGiven(o.o_reference, o.reference);
  flags.ttl = IfGiven(o.o_ttl, o.ttl);
  flags.request_id = o.request_id;
  auto req = BuildSubmitRequest(flags);
  if (!req.ok()) return ctx.Fail(req.status());

  auto rpc_timeout = ctx.Timeout(absl::Seconds(10));
  if (!rpc_timeout.ok()) return ctx.Fail(rpc_timeout.status());
  auto client = ctx.Client();
  if (!client.ok()) return ctx.Fail(client.status());
  auto resp = (*client)->SubmitDecision(*req, *rpc_timeout);
  if (!resp.ok()) return ctx.Fail(resp.status());
  if (!o.wait) return ctx.Emit(FormatSubmitResponse(*resp, *format));

  auto wait_timeout = ctx.Timeout(absl::Seconds(60));
  if (!wait_timeout.ok()) return ctx.Fail(wait_timeout.status());
  ctx.err() << "wbctl: submitted decision " << Printable(resp->decision_id()) << " (version "
            << resp->version() << "); waiting up to " << absl::FormatDuration(*wait_timeout)
            << " for a final state\n";
  AdminClient* c = *client;
  const std::string id = resp->decision_id();
  auto waited =
      WaitForDecision([c, &id](absl::Duration t) { return c->GetDecision(id, t); }, ctx.clock(),
                      [&ctx](absl::Duration d) { ctx.Sleep(d); }, *wait_timeout, *rpc_timeout);
  if (!waited.ok()) return ctx.Fail(waited.status());
  const int printed = ctx.Emit(FormatDecisionView(waited->view, *format, ctx.Now()));
  if (printed != kExitOk) return printed;
  if (!waited->finished) {
    ctx.err() << "wbctl: decision " << Printable(id) << " is still "
              << DecisionStateName(waited->view.state()) << " after "
              << absl::FormatDuration(*wait_timeout) << "\n";
    return kExitFailed;
  }
  const int code = ExitCodeForFinalState(waited->view.state());
  if (code != kExitOk) {
    ctx.err() << "wbctl: decision " << Printable(id) << " ended "
              << DecisionStateName(waited->view.state()) << "\n";
  }
  return code;
}

const bool kRegistered = RegisterCommand({
    .path = {"decision", "submit"},
    .description = "Submit a decision (from flags and/or -f FILE); --wait for its outcome",
    .group_description = "Submit and inspect decisions",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<Options>();
      app->add_option("-f,--file", o->file, "YAML file mapped onto writeback.v1.DecisionSpec");
      o->o_instance = app->add_option("--instance", o->instance, "Connector instance");
      o->o_operation = app->add_option("--operation", o->operation, "Operation, e.g. remove_key");
      o->o_targets = OnePerFlag(
          app->add_option("--target", o->targets, "Target object, e.g. a user name (repeatable)"));
      o->o_fingerprint = app->add_option("--fingerprint", o->fingerprint,
                                         "ssh_authorized_keys: SHA256 key fingerprint");
      o->o_comment =
          app->add_option("--comment", o->comment, "ssh_authorized_keys: key comment to remove");
      o->o_keep = OnePerFlag(app->add_option("--keep-fingerprint", o->keep_fingerprints,
                                             "ssh_authorized_keys exclusive_set: key to keep "
                                             "(repeatable)"));
      o->o_reason = app->add_option("--reason", o->reason, "Why (required)");
      o->o_reference = app->add_option("--reference", o->reference, "Ticket or review campaign");
      o->o_ttl = app->add_option("--ttl", o->ttl, "Lifetime of the tasks (e.g. 3600, 90m, 2h)");
      app->add_option("--request-id", o->request_id,
                      "Idempotency key: resubmitting it returns the first decision");
      app->add_flag("--wait", o->wait, "Wait until the decision reaches a final state");
      return [o](Context& ctx) { return Run(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
