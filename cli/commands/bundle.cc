// wbctl bundle export / bundle import: air-gapped sites (docs/networks.md
// "Air-gapped sites"). Export writes an agent's queued tasks, re-signed for
// the trip, into one task bundle file; import sends a result bundle file
// back, to be checked in full and recorded as if it came over the network.
#include "common/bundle/bundle.h"

#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "writeback/v1/admin_service.grpc.pb.h"

namespace wb::cli {
namespace {

// "7d", "36h", "90m", "3600s" (absl durations, plus days).
absl::StatusOr<uint32_t> ParseTrip(const std::string& text) {
  if (text.empty()) return 0;
  absl::Duration d;
  absl::string_view t = text;
  int64_t days = 0;
  if (absl::ConsumeSuffix(&t, "d") && absl::SimpleAtoi(t, &days) && days > 0) {
    d = absl::Hours(24 * days);
  } else if (!absl::ParseDuration(text, &d)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--trip: '", text, "' is not a duration (e.g. 7d, 36h, 90m)"));
  }
  const int64_t s = absl::ToInt64Seconds(d);
  if (s <= 0 || s > int64_t{UINT32_MAX}) {
    return absl::InvalidArgumentError(absl::StrCat("--trip: '", text, "' is out of range"));
  }
  return static_cast<uint32_t>(s);
}

std::string ShortId(const std::string& spiffe) {
  const size_t slash = spiffe.rfind('/');
  return slash == std::string::npos ? spiffe : spiffe.substr(slash + 1);
}

struct ExportOptions {
  std::string agent;
  std::string out;
  std::string trip;
};

int Export(const ExportOptions& o, Context& ctx) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  auto trip = ParseTrip(o.trip);
  if (!trip.ok()) return ctx.Fail(trip.status());
  writeback::v1::ExportBundleRequest req;
  req.set_agent_id(o.agent);
  req.set_trip_seconds(*trip);
  auto r = CallAdmin(ctx, absl::Seconds(60), &writeback::v1::AdminService::Stub::ExportBundle, req);
  if (!r.ok()) return ctx.Fail(r.status());
  writeback::v1::ExportBundleResponse resp = *std::move(r);
  const std::string out = !o.out.empty() ? o.out
                                         : absl::StrCat("tasks-", ShortId(resp.agent_id()), "-",
                                                        resp.bundle_id(), ".bundle");
  // The tasks now travel offline: the file must exist before we say so.
  if (absl::Status s = fs::WriteFileAtomic(out, resp.bundle_file()); !s.ok()) {
    return ctx.Fail(absl::Status(
        s.code(), absl::StrCat(s.message(), " (bundle ", resp.bundle_id(),
                               " was exported but not written: its tasks come back for a new "
                               "export when it expires at ",
                               FormatTime(resp.expires_at_unix_ms()), ")")));
  }
  resp.clear_bundle_file();
  if (*format != OutputFormat::kTable) return ctx.Emit(RenderMessage(resp, *format));
  std::string text =
      absl::StrCat("bundle ", resp.bundle_id(), " for ", resp.agent_id(), ": ", resp.tasks_size(),
                   " task(s), valid until ", FormatTime(resp.expires_at_unix_ms()), "\nwritten to ",
                   out, " (manifest sha256 ", crypto::HexEncode(resp.manifest_digest()), ")\n\n");
  Table t({"TASK", "DECISION", "INSTANCE", "OPERATION", "TARGET", "EXPIRES", "NOTE"});
  for (const auto& v : resp.tasks()) {
    std::string note = v.detail();
    if (!v.reissue_of_task_id().empty()) {
      note = absl::StrCat("re-issues ", v.reissue_of_task_id(), note.empty() ? "" : "; ", note);
    }
    t.AddRow({v.task_id(), v.decision_id(), v.connector_instance(), v.operation(), v.target(),
              FormatTime(v.expires_at_unix_ms()), note});
  }
  absl::StrAppend(&text, t.Render());
  if (resp.skipped_size() > 0) {
    absl::StrAppend(&text, "\nnot exported:\n");
    Table s({"TASK", "DECISION", "TARGET", "WHY"});
    for (const auto& v : resp.skipped()) {
      s.AddRow({v.task_id(), v.decision_id(), v.target(), v.detail()});
    }
    absl::StrAppend(&text, s.Render());
  }
  absl::StrAppend(&text, "\non the agent's host: writeback-agent bundle apply ", out,
                  " --out results.bundle\n");
  return ctx.Emit(text);
}

struct ImportOptions {
  std::string file;
};

int Import(const ImportOptions& o, Context& ctx) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  // Read and recognise it here: a wrong file gets a clear error at once.
  auto bytes = fs::ReadFile(o.file, bundle::kMaxFileBytes + (1 << 20));
  if (!bytes.ok()) return ctx.Fail(bytes.status());
  if (auto f = bundle::ParseResultBundleFile(*bytes, o.file); !f.ok()) return ctx.Fail(f.status());
  writeback::v1::ImportBundleRequest req;
  req.set_result_bundle_file(*std::move(bytes));
  auto r = CallAdmin(ctx, absl::Seconds(60), &writeback::v1::AdminService::Stub::ImportBundle, req);
  if (!r.ok()) return ctx.Fail(r.status());
  const writeback::v1::ImportBundleResponse& resp = *r;
  if (*format != OutputFormat::kTable) return ctx.Emit(RenderMessage(resp, *format));
  std::string text =
      absl::StrCat("result bundle for bundle ", resp.bundle_id(), " from ", resp.agent_id(), ": ",
                   resp.recorded(), " recorded, ", resp.already_recorded(), " already recorded, ",
                   resp.not_recorded(), " not recorded\n\n");
  Table t({"TASK", "DECISION", "OUTCOME", "TASK STATE", "DECISION STATE", "STATUS", "MESSAGE"});
  for (const auto& v : resp.results()) {
    std::string outcome = OutcomeName(v.outcome());
    if (v.reject_reason() != writeback::v1::REJECT_REASON_UNSPECIFIED) {
      absl::StrAppend(&outcome, " (", RejectReasonName(v.reject_reason()), ")");
    }
    t.AddRow({v.task_id(), v.decision_id(), outcome, TaskStateName(v.task_state()),
              DecisionStateName(v.decision_state()), v.status(), v.message()});
  }
  absl::StrAppend(&text, t.Render());
  return ctx.Emit(text);
}

const bool kExport = RegisterCommand({
    .path = {"bundle", "export"},
    .description = "Write an agent's queued tasks into a signed task bundle (air-gapped sites)",
    .group_description = "Air-gapped bundles (docs/networks.md)",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<ExportOptions>();
      app->add_option("--agent", o->agent, "Agent id (e.g. plant-3) or SPIFFE ID")->required();
      app->add_option("--out", o->out, "Bundle file (default tasks-<agent>-<bundle id>.bundle)");
      app->add_option("--trip", o->trip,
                      "How long the tasks stay valid, e.g. 3d or 36h (default: the control "
                      "plane's bundle.default_trip_seconds; never beyond a decision's expiry)");
      return [o](Context& ctx) { return Export(*o, ctx); };
    },
});

const bool kImport = RegisterCommand({
    .path = {"bundle", "import"},
    .description = "Check and record a result bundle written by writeback-agent bundle apply",
    .group_description = "Air-gapped bundles (docs/networks.md)",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<ImportOptions>();
      app->add_option("FILE", o->file, "Result bundle file")->required();
      return [o](Context& ctx) { return Import(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
