// wbctl's command framework. Each command lives in its own file under
// cli/commands/ and registers itself at static-initialisation time:
//
//   const bool kRegistered = wb::cli::RegisterCommand({
//       .path = {"decision", "get"},
//       .description = "Show one decision, its tasks and their evidence",
//       .setup = [](CLI::App* app) -> wb::cli::Action { ...add options...;
//                                                      return [state](Context& ctx) {...}; }});
//
// `setup` adds the command's options to its CLI11 sub-app and returns the
// action that runs if the command was chosen. Adding a command is one new
// file (plus its line in cli/CMakeLists.txt); nothing else changes.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/client.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "common/clock/clock.h"

namespace wb::cli {

// Flags that every command accepts (before or after the command name).
struct GlobalOptions {
  ConnectionFlags connection;
  std::string output = "table";
  std::string timeout;  // --timeout as given; "" = the command's default
};

// The process's surroundings, injected so tests can run whole commands.
struct RunOptions {
  std::ostream* out = nullptr;   // stdout
  std::ostream* err = nullptr;   // stderr
  const Clock* clock = nullptr;  // for "now" (ages, deadlines); default SystemClock
  // Waits between polls; default absl::SleepFor. Tests pass one that
  // advances a FakeClock.
  std::function<void(absl::Duration)> sleep;
  std::string env_config;  // value of $WBCTL_CONFIG ("" if unset)
};

// What a running command sees. Not thread-safe; one per invocation.
class Context {
 public:
  Context(const GlobalOptions& globals, const RunOptions& run);

  std::ostream& out() const { return *out_; }
  std::ostream& err() const { return *err_; }
  const Clock& clock() const { return *clock_; }
  absl::Time Now() const { return clock_->Now(); }
  void Sleep(absl::Duration d) const { sleep_(d); }

  absl::StatusOr<OutputFormat> format() const { return ParseOutputFormat(globals_.output); }
  // --timeout if given, else `default_value`.
  absl::StatusOr<absl::Duration> Timeout(absl::Duration default_value) const;
  // The control plane client: resolves the configuration and builds the
  // channel on first use. Owned by the Context.
  absl::StatusOr<AdminClient*> Client();

  // Prints "wbctl: <message>" to err() (escaped for display,
  // common/text/display.h) and returns the exit code for it.
  int Fail(const absl::Status& status) const;
  // Prints `doc` to out() and returns 0, or fails with its error. Anything
  // unsafe to display that a formatter let through is escaped (as JSON
  // escapes with -o json).
  int Emit(const absl::StatusOr<std::string>& doc) const;

 private:
  const GlobalOptions& globals_;
  std::ostream* out_;
  std::ostream* err_;
  const Clock* clock_;
  std::function<void(absl::Duration)> sleep_;
  std::string env_config_;
  std::unique_ptr<AdminClient> client_;
};

// Runs a chosen command; returns the process exit code (cli/exit_codes.h).
using Action = std::function<int(Context&)>;

struct CommandDef {
  std::vector<std::string> path;  // {"decision", "submit"}: group, then command
  std::string description;
  // Description of the group (path[0]); the first non-empty one is used.
  std::string group_description;
  std::function<Action(CLI::App* app)> setup;
};

// Adds a command to the process-wide registry. Call from a namespace-scope
// initializer; returns true. Not thread-safe (static initialisation only).
bool RegisterCommand(CommandDef def);

// Makes a repeatable option take exactly one value per occurrence
// (`--target a --target b`), so it never swallows a positional argument.
CLI::Option* OnePerFlag(CLI::Option* opt);

// One unary AdminService call with the command's --timeout (else
// `default_timeout`); errors as FromGrpcStatus gives them (the server's code
// and message, naming the address).
//   auto r = CallAdmin(ctx, absl::Seconds(10),
//                      &writeback::v1::AdminService::Stub::BanAgent, req);
template <typename Req, typename Resp>
absl::StatusOr<Resp> CallAdmin(Context& ctx, absl::Duration default_timeout,
                               grpc::Status (writeback::v1::AdminService::Stub::*method)(
                                   grpc::ClientContext*, const Req&, Resp*),
                               const Req& req) {
  auto timeout = ctx.Timeout(default_timeout);
  if (!timeout.ok()) return timeout.status();
  auto client = ctx.Client();
  if (!client.ok()) return client.status();
  auto stub = writeback::v1::AdminService::NewStub((*client)->channel());
  grpc::ClientContext gctx;
  gctx.set_deadline(absl::ToChronoTime(ctx.Now() + *timeout));
  Resp resp;
  if (grpc::Status s = ((*stub).*method)(&gctx, req, &resp); !s.ok()) {
    return FromGrpcStatus(s, (*client)->address());
  }
  return resp;
}

// Every page of a paged list (page_token / next_page_token, AIP-158):
// calls `method` from req.page_token on, handing each response to
// `add(Resp&&)`, until next_page_token is "". A server that hands the same
// token back is an error, not a loop.
template <typename Req, typename Resp, typename Add>
absl::Status CallAdminPages(Context& ctx, absl::Duration default_timeout,
                            grpc::Status (writeback::v1::AdminService::Stub::*method)(
                                grpc::ClientContext*, const Req&, Resp*),
                            Req req, Add add) {
  while (true) {
    auto page = CallAdmin(ctx, default_timeout, method, req);
    if (!page.ok()) return page.status();
    std::string next = page->next_page_token();
    add(*std::move(page));
    if (next.empty()) return absl::OkStatus();
    if (next == req.page_token()) {
      return absl::InternalError("the server handed back the same page token");
    }
    req.set_page_token(std::move(next));
  }
}

// One page was asked for (--limit / --page-token): tells on stderr how to
// get the next one, if there is one.
void PrintNextPageToken(Context& ctx, absl::string_view token);

// The --limit and --page-token options of a paged list of `items`
// ("agents").
void AddPageOptions(CLI::App* app, uint32_t* limit, std::string* page_token,
                    absl::string_view items);

// Runs wbctl with `args` (without the program name); returns the exit code.
int RunWbctl(const std::vector<std::string>& args, const RunOptions& run);

}  // namespace wb::cli
