// wbctl audit export [--out FILE] [--from SEQ] [--limit N] [--data-dir DIR]
//
// Writes the audit chain as JSON Lines: one AuditEntryView per line (seq,
// time, kind, actor, ids, states, detail, hex digest / prev_hash / hash, and
// event_base64: the exact stored event bytes, so that another tool can
// recompute every hash and link). Entries are exported as stored, broken
// or not (an entry that does not decode has `error` set); `audit verify`
// judges them. With --out the file appears only once complete.
#include <cstdio>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "cli/commands/view_client.h"
#include "cli/commands/view_format.h"
#include "common/audit/offline.h"
#include "common/audit/view.h"

namespace wb::cli {
namespace {

namespace v1 = writeback::v1;

struct Options {
  std::string out;
  uint64_t from = 1;
  uint32_t limit = 0;
  std::string data_dir;
};

// Sends each entry to `emit` (false = stop with its error).
using Emit = std::function<absl::Status(const v1::AuditEntryView&)>;

absl::Status ExportOffline(const Options& o, const Emit& emit) {
  auto chain = audit::OfflineChain::Open(o.data_dir, "--data-dir");
  if (!chain.ok()) return chain.status();
  absl::Status failed;
  uint64_t sent = 0;
  absl::Status s = (*chain)->Scan(o.from, [&](uint64_t seq, absl::string_view value) {
    failed = emit(audit::EntryView(seq, value));
    ++sent;
    return failed.ok() && (o.limit == 0 || sent < o.limit);
  });
  return failed.ok() ? s : failed;
}

absl::Status ExportOnline(const Options& o, Context& ctx, const Emit& emit) {
  auto timeout = ctx.Timeout(absl::Minutes(10));
  if (!timeout.ok()) return timeout.status();
  auto c = DialView(ctx);
  if (!c.ok()) return c.status();
  grpc::ClientContext call;
  SetDeadline(&call, *timeout);
  v1::ExportAuditRequest req;
  req.set_from_seq(o.from);
  req.set_limit(o.limit);
  auto reader = c->stub->ExportAudit(&call, req);
  v1::AuditEntryView view;
  while (reader->Read(&view)) {
    if (absl::Status s = emit(view); !s.ok()) {
      call.TryCancel();
      reader->Finish();
      return s;
    }
  }
  return c->Check(reader->Finish());
}

int Run(const Options& o, Context& ctx) {
  if (o.from == 0) return ctx.Fail(absl::InvalidArgumentError("--from: must be 1 or more"));
  std::ofstream file;
  const std::string partial = o.out + ".partial";
  if (!o.out.empty()) {
    file.open(partial, std::ios::out | std::ios::trunc | std::ios::binary);
    if (!file) {
      return ctx.Fail(absl::InvalidArgumentError(
          absl::StrCat("--out: cannot write ", partial, " (check the directory)")));
    }
  }
  std::ostream& sink = o.out.empty() ? ctx.out() : file;
  uint64_t count = 0, first = 0, last = 0;
  Emit emit = [&](const v1::AuditEntryView& v) -> absl::Status {
    auto line = StreamDocument(v, OutputFormat::kJson);
    if (!line.ok()) return line.status();
    sink << *line;
    if (!sink) return absl::AbortedError("export: write failed");
    if (count++ == 0) first = v.seq();
    last = v.seq();
    return absl::OkStatus();
  };
  absl::Status s = o.data_dir.empty() ? ExportOnline(o, ctx, emit) : ExportOffline(o, emit);
  sink.flush();
  if (!o.out.empty()) {
    file.close();
    if (s.ok() && !file) s = absl::AbortedError(absl::StrCat("--out: writing ", partial));
    if (s.ok() && std::rename(partial.c_str(), o.out.c_str()) != 0) {
      s = absl::AbortedError(absl::StrCat("--out: cannot rename ", partial, " to ", o.out));
    }
    if (!s.ok()) std::remove(partial.c_str());
  }
  if (!s.ok()) return ctx.Fail(s);
  ctx.err() << "exported " << count << " audit entries";
  if (count > 0) ctx.err() << " (seq " << first << ".." << last << ")";
  if (!o.out.empty()) ctx.err() << " to " << Printable(o.out);
  ctx.err() << "\n";
  return kExitOk;
}

const bool kRegistered = RegisterCommand({
    .path = {"audit", "export"},
    .description = "Write the audit chain as JSON Lines, with each entry's exact bytes",
    .group_description = "The hash-linked audit chain",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<Options>();
      app->add_option("--out", o->out, "File to write (default: stdout)");
      app->add_option("--from", o->from, "First seq to export (default 1)");
      app->add_option("--limit", o->limit, "At most this many entries (0 = all)");
      app->add_option("--data-dir", o->data_dir,
                      "Read a STOPPED control plane's data directory directly (read-only)");
      return [o](Context& ctx) { return Run(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
