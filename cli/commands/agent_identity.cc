// wbctl agent token create / agent ban: agent identities (docs/security.md).
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "cli/exit_codes.h"
#include "common/fs/fs.h"
#include "writeback/v1/admin_service.grpc.pb.h"

namespace wb::cli {
namespace {

struct TokenOptions {
  std::string id;
  uint32_t ttl_seconds = 3600;
  std::string out;                     // file to write the token to (0600); else stdout
  std::vector<std::string> instances;  // bound to the agent when it enrols
};

int CreateToken(const TokenOptions& o, Context& ctx) {
  writeback::v1::CreateJoinTokenRequest req;
  req.set_agent_id(o.id);
  req.set_ttl_seconds(o.ttl_seconds);
  for (const auto& i : o.instances) req.add_instances(i);
  auto r =
      CallAdmin(ctx, absl::Seconds(10), &writeback::v1::AdminService::Stub::CreateJoinToken, req);
  if (!r.ok()) return ctx.Fail(r.status());
  const writeback::v1::CreateJoinTokenResponse& resp = *r;
  const std::string expires =
      absl::StrCat(absl::FormatTime(absl::FromUnixMillis(resp.expires_at_unix_ms())),
                   resp.instances().empty()
                       ? ""
                       : absl::StrCat("; binds ", absl::StrJoin(resp.instances(), ", "), " to it"));
  if (!o.out.empty()) {
    if (absl::Status s = fs::WriteFileAtomic(o.out, resp.token() + "\n"); !s.ok()) {
      return ctx.Fail(s);
    }
    return ctx.Emit(absl::StrCat("join token for ", resp.agent_id(), " written to ", o.out,
                                 " (single use, expires ", expires, ")\n"));
  }
  ctx.err() << "join token for " << Printable(resp.agent_id()) << " (single use, expires "
            << expires << "):\n";
  return ctx.Emit(resp.token() + "\n");
}

struct BanOptions {
  std::string id;
  std::string reason;
};

int Ban(const BanOptions& o, Context& ctx) {
  writeback::v1::BanAgentRequest req;
  req.set_agent_id(o.id);
  req.set_reason(o.reason);
  auto r = CallAdmin(ctx, absl::Seconds(30), &writeback::v1::AdminService::Stub::BanAgent, req);
  if (!r.ok()) return ctx.Fail(r.status());
  const writeback::v1::BanAgentResponse& resp = *r;
  std::string relayed;
  if (resp.relayed_streams_ended() > 0) {
    relayed = absl::StrCat(", ", resp.relayed_streams_ended(),
                           " stream(s) it was relaying for other agents ended");
  }
  return ctx.Emit(absl::StrCat("agent ", resp.agent_id(), " banned: stream ",
                               resp.stream_ended() ? "ended" : "not open", ", ",
                               resp.tasks_canceled(), " task(s) canceled, ", resp.tokens_revoked(),
                               " join token(s) revoked", relayed, "\n"));
}

const bool kToken = RegisterCommand({
    .path = {"agent", "token", "create"},
    .description = "Make a single-use, expiring join token for one agent id",
    .group_description = "Agents",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<TokenOptions>();
      app->add_option("--id", o->id, "Agent id (e.g. edge-7) or SPIFFE ID")->required();
      app->add_option("--ttl", o->ttl_seconds, "Lifetime in seconds (60 to 604800)")
          ->capture_default_str();
      app->add_option("--out", o->out, "Write the token to this file (mode 0600)");
      app->add_option("--instance", o->instances,
                      "Connector instance to bind to the agent when it enrols (repeatable; "
                      "docs/security.md \"Instance bindings\")");
      return [o](Context& ctx) { return CreateToken(*o, ctx); };
    },
});

const bool kBan = RegisterCommand({
    .path = {"agent", "ban"},
    .description = "Cut an agent off: end its stream, refuse it, cancel its queued tasks",
    .group_description = "Agents",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<BanOptions>();
      app->add_option("ID", o->id, "Agent id or SPIFFE ID")->required();
      app->add_option("--reason", o->reason, "Why (kept in the agent record and the audit chain)")
          ->required();
      return [o](Context& ctx) { return Ban(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
