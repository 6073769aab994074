// wbctl audit verify [--expect-head SEQ:HEX] [--data-dir DIR]
//
// Checks the control plane's audit chain (docs/operations.md "Audit chain")
// and names the first broken link; exit code 1 when it is broken. With
// --data-dir it reads a stopped control plane's RocksDB directly (read-only),
// through the same verifier (common/audit), for forensics when the control
// plane is down.
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "cli/commands/view_client.h"
#include "cli/commands/view_format.h"
#include "common/audit/offline.h"
#include "common/audit/verifier.h"
#include "common/audit/view.h"

namespace wb::cli {
namespace {

namespace v1 = writeback::v1;

struct Options {
  std::string expect_head;
  std::string data_dir;
};

absl::StatusOr<v1::VerifyAuditResponse> VerifyOffline(const Options& o) {
  std::optional<audit::ChainHead> anchor;
  if (!o.expect_head.empty()) {
    auto a = audit::ParseAnchor(o.expect_head, "--expect-head");
    if (!a.ok()) return a.status();
    anchor = *std::move(a);
  }
  auto chain = audit::OfflineChain::Open(o.data_dir, "--data-dir");
  if (!chain.ok()) return chain.status();
  return audit::ReportToProto(audit::VerifyChain(
      [&](uint64_t from, const audit::EntryFn& fn) { return (*chain)->Scan(from, fn); },
      std::move(anchor)));
}

absl::StatusOr<v1::VerifyAuditResponse> VerifyOnline(const Options& o, Context& ctx) {
  auto timeout = ctx.Timeout(absl::Seconds(60));
  if (!timeout.ok()) return timeout.status();
  auto c = DialView(ctx);
  if (!c.ok()) return c.status();
  grpc::ClientContext call;
  SetDeadline(&call, *timeout);
  v1::VerifyAuditRequest req;
  req.set_expect_head(o.expect_head);
  v1::VerifyAuditResponse resp;
  if (grpc::Status s = c->stub->VerifyAudit(&call, req, &resp); !s.ok()) return c->Check(s);
  return resp;
}

std::string Text(const v1::VerifyAuditResponse& r, absl::string_view source) {
  std::string head =
      r.head_seq() == 0
          ? std::string("(empty chain)")
          : absl::StrCat(r.head_seq(), ":",
                         r.head_hash_hex().empty() ? "(unreadable entry)" : r.head_hash_hex());
  std::string out;
  if (r.ok()) {
    absl::StrAppend(&out, "audit chain OK (", source, "): ", r.entries_checked(),
                    " entries checked", r.anchor_checked() ? ", anchor holds" : "", "\n");
  } else {
    absl::StrAppend(&out, "audit chain BROKEN (", source, "): ", Printable(r.broken_reason()), "\n",
                    "entries read: ", r.entries_checked(), "\n");
  }
  absl::StrAppend(&out, "head: ", head, "\n");
  if (r.ok() && r.head_seq() > 0) {
    absl::StrAppend(&out, "record the head outside this host; later: wbctl audit verify ",
                    "--expect-head ", head, "\n");
  }
  return out;
}

int Run(const Options& o, Context& ctx) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  if (!o.expect_head.empty()) {
    // Checked here too, so a typo is a usage error before any connection.
    if (auto a = audit::ParseAnchor(o.expect_head, "--expect-head"); !a.ok()) {
      return ctx.Fail(a.status());
    }
  }
  const bool offline = !o.data_dir.empty();
  auto r = offline ? VerifyOffline(o) : VerifyOnline(o, ctx);
  if (!r.ok()) return ctx.Fail(r.status());
  int code = *format == OutputFormat::kTable
                 ? ctx.Emit(Text(*r, offline ? absl::StrCat("data dir ", o.data_dir)
                                             : std::string("control plane")))
                 : ctx.Emit(RenderMessage(*r, *format));
  if (code != kExitOk) return code;
  return r->ok() ? kExitOk : kExitFailed;
}

const bool kRegistered = RegisterCommand({
    .path = {"audit", "verify"},
    .description = "Check the audit chain and name its first broken link (exit 1 if broken)",
    .group_description = "The hash-linked audit chain",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<Options>();
      app->add_option("--expect-head", o->expect_head,
                      "Anchor SEQ:HEX printed by an earlier verify: entry SEQ must still have "
                      "that hash (detects a cut tail)");
      app->add_option("--data-dir", o->data_dir,
                      "Read a STOPPED control plane's data directory directly (read-only) "
                      "instead of calling it");
      return [o](Context& ctx) { return Run(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
