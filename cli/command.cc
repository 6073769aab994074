#include "cli/command.h"

#include <algorithm>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/exit_codes.h"
#include "cli/request.h"
#include "common/status/macros.h"
#include "common/text/display.h"

namespace wb::cli {
namespace {

std::vector<CommandDef>& Registry() {
  static auto* r = new std::vector<CommandDef>;
  return *r;
}

}  // namespace

Context::Context(const GlobalOptions& globals, const RunOptions& run)
    : globals_(globals),
      out_(run.out != nullptr ? run.out : &std::cout),
      err_(run.err != nullptr ? run.err : &std::cerr),
      clock_(run.clock != nullptr ? run.clock : SystemClock::Get()),
      sleep_(run.sleep ? run.sleep : [](absl::Duration d) { absl::SleepFor(d); }),
      env_config_(run.env_config) {}

absl::StatusOr<absl::Duration> Context::Timeout(absl::Duration default_value) const {
  if (globals_.timeout.empty()) return default_value;
  return ParseDurationFlag("--timeout", globals_.timeout);
}

absl::StatusOr<AdminClient*> Context::Client() {
  if (client_ == nullptr) {
    WB_ASSIGN_OR_RETURN(auto cfg, ResolveConfig(globals_.connection, env_config_));
    WB_ASSIGN_OR_RETURN(client_, AdminClient::Dial(cfg));
  }
  return client_.get();
}

void AddPageOptions(CLI::App* app, uint32_t* limit, std::string* page_token,
                    absl::string_view items) {
  app->add_option("--limit", *limit,
                  absl::StrCat("One page of at most N ", items,
                               " (the server serves at most 1000); the next page's token goes "
                               "to stderr"))
      ->check(CLI::Range(0u, 100000u));
  app->add_option("--page-token", *page_token,
                  "One page, from where an earlier --limit page ended");
}

void PrintNextPageToken(Context& ctx, absl::string_view token) {
  if (token.empty()) return;
  // The server's words: shown escaped (a real token is base64url anyway).
  ctx.err() << "next page: --page-token " << text::EscapeForDisplay(token) << "\n";
}

int Context::Fail(const absl::Status& status) const {
  // Messages carry the server's words and what was typed: shown escaped.
  *err_ << "wbctl: " << text::EscapeForDisplay(status.message()) << "\n";
  err_->flush();
  const int code = ExitCodeFor(status.code());
  return code == kExitOk ? kExitFailed : code;
}

int Context::Emit(const absl::StatusOr<std::string>& doc) const {
  if (!doc.ok()) return Fail(doc.status());
  // The formatters escape what they print (cli/format.h); this is the net
  // under them: a JSON document keeps its values (JSON escapes), anything
  // else keeps its lines.
  *out_ << text::EscapeForDisplay(*doc, globals_.output == "json"
                                            ? text::EscapeStyle::kJson
                                            : text::EscapeStyle::kTextKeepNewlines);
  out_->flush();
  return kExitOk;
}

bool RegisterCommand(CommandDef def) {
  Registry().push_back(std::move(def));
  return true;
}

CLI::Option* OnePerFlag(CLI::Option* opt) { return opt->allow_extra_args(false); }

namespace {

// Every value given on the command line must be UTF-8: it goes into the
// request (proto strings are UTF-8) or names a file we print. An error names
// the flag (or the positional argument) and where the bad byte is.
absl::Status CheckUtf8(const CLI::App& app) {
  for (const CLI::Option* opt : app.get_options()) {
    for (const std::string& v : opt->results()) {
      size_t i = 0;
      uint32_t cp = 0;
      for (size_t n = 0; i < v.size() && (n = text::DecodeUtf8(v, i, &cp)) > 0;) i += n;
      if (i == v.size()) continue;
      std::string name = opt->get_name();
      if (name.empty()) name = opt->get_name(/*positional=*/true);
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": not valid UTF-8 (byte 0x",
                       absl::Hex(static_cast<unsigned char>(v[i]), absl::kZeroPad2), " at offset ",
                       i, " of '", text::EscapeForDisplay(v), "')"));
    }
  }
  for (const CLI::App* sub : app.get_subcommands()) WB_RETURN_IF_ERROR(CheckUtf8(*sub));
  return absl::OkStatus();
}

}  // namespace

int RunWbctl(const std::vector<std::string>& args, const RunOptions& run) {
  GlobalOptions globals;
  Context ctx(globals, run);

  CLI::App app("wbctl: the Writeback operators' command line", "wbctl");
  app.fallthrough();  // global flags may follow the command name
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok, 1 operation failed, 2 usage or invalid input, "
      "3 control plane unreachable or refused us, 4 not found.");
  auto& conn = globals.connection;
  app.add_option("--config", conn.config_file,
                 "wbctl config file (YAML, writeback.v1.WbctlConfig); default $WBCTL_CONFIG");
  app.add_option("--address", conn.address, "Control plane address, host:port");
  app.add_option("--controlplane-id", conn.controlplane_id,
                 "SPIFFE ID the control plane must present");
  app.add_option("--ca", conn.ca_file, "CA bundle (PEM)");
  app.add_option("--cert", conn.cert_file, "Operator certificate (PEM)");
  app.add_option("--key", conn.key_file, "Operator private key (PEM)");
  app.add_option("-o,--output", globals.output, "Output format")
      ->check(CLI::IsMember({"table", "json", "yaml"}))
      ->capture_default_str();
  app.add_option("--timeout", globals.timeout,
                 "Deadline of each call (default 10s); with --wait, of the whole wait "
                 "(default 60s). Seconds or e.g. 30s, 2m");
  // A global flag given twice takes the last value, so a shell alias with
  // defaults can be overridden on the command line.
  for (CLI::Option* opt : app.get_options()) {
    opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  }

  // Sort so help lists groups and commands alphabetically, whatever the
  // static-initialisation order was.
  std::vector<const CommandDef*> defs;
  for (const auto& d : Registry()) defs.push_back(&d);
  std::sort(defs.begin(), defs.end(),
            [](const CommandDef* a, const CommandDef* b) { return a->path < b->path; });

  std::vector<std::pair<CLI::App*, Action>> leaves;
  for (const CommandDef* d : defs) {
    CLI::App* parent = &app;
    for (size_t i = 0; i < d->path.size(); ++i) {
      const bool leaf = i + 1 == d->path.size();
      CLI::App* sub = nullptr;
      for (CLI::App* existing : parent->get_subcommands({})) {
        if (existing->get_name() == d->path[i]) sub = existing;
      }
      if (sub == nullptr) {
        sub = parent->add_subcommand(d->path[i], leaf ? d->description : d->group_description);
        if (!leaf) sub->require_subcommand(1);
      } else if (!leaf && sub->get_description().empty() && !d->group_description.empty()) {
        sub->description(d->group_description);
      }
      parent = sub;
    }
    leaves.emplace_back(parent, d->setup(parent));
  }

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::Success& e) {  // --help, --help-all
    return app.exit(e, ctx.out(), ctx.err());
  } catch (const CLI::ParseError& e) {
    ctx.err() << "wbctl: " << text::EscapeForDisplay(e.what())
              << "\nRun 'wbctl --help' (or 'wbctl <command> --help').\n";
    return kExitUsage;
  }
  if (absl::Status s = CheckUtf8(app); !s.ok()) return ctx.Fail(s);
  for (auto& [sub, action] : leaves) {
    if (sub->parsed()) return action(ctx);
  }
  ctx.err() << "wbctl: no command given\n";
  return kExitUsage;
}

}  // namespace wb::cli
