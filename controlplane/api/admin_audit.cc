// AdminService: the audit chain's methods (VerifyAudit, ExportAudit); see
// admin_service.h. Kept apart from admin_service.cc so that the chain's RPCs
// and the decision RPCs change independently.
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/audit/verifier.h"
#include "common/audit/view.h"
#include "common/logging/logging.h"
#include "controlplane/api/admin_service.h"
#include "controlplane/rpc/grpc_status.h"

namespace wb::controlplane {

grpc::Status AdminServiceImpl::VerifyAudit(grpc::ServerContext* ctx,
                                           const writeback::v1::VerifyAuditRequest* req,
                                           writeback::v1::VerifyAuditResponse* resp) {
  auto caller = authz_->Check(kVerifyAuditMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  std::optional<audit::ChainHead> anchor;
  if (!req->expect_head().empty()) {
    auto a = audit::ParseAnchor(req->expect_head(), "expect_head");
    if (!a.ok()) return ToGrpcStatus(a.status());
    anchor = *std::move(a);
  }
  audit::VerifyReport report = audit::VerifyChain(
      [this](uint64_t from, const audit::EntryFn& fn) { return store_->ScanAudit(from, fn); },
      std::move(anchor));
  if (!report.ok) {
    log::Warn("audit chain broken", {{"requester", caller->ToString()},
                                     {"entries", absl::StrCat(report.entries_checked)},
                                     {"reason", report.broken_reason}});
  }
  *resp = audit::ReportToProto(report);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ExportAudit(
    grpc::ServerContext* ctx, const writeback::v1::ExportAuditRequest* req,
    grpc::ServerWriter<writeback::v1::AuditEntryView>* writer) {
  auto caller = authz_->Check(kExportAuditMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  const uint64_t from = req->from_seq() == 0 ? 1 : req->from_seq();
  uint64_t sent = 0;
  bool writer_failed = false;
  absl::Status s = store_->ScanAudit(from, [&](uint64_t seq, absl::string_view value) {
    if (ctx->IsCancelled() || !writer->Write(audit::EntryView(seq, value))) {
      writer_failed = true;
      return false;
    }
    ++sent;
    return req->limit() == 0 || sent < req->limit();
  });
  if (!s.ok()) return ToGrpcStatus(s);
  if (writer_failed) return grpc::Status(grpc::StatusCode::CANCELLED, "export: the client left");
  return grpc::Status::OK;
}

}  // namespace wb::controlplane
