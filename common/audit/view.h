// The audit chain as the admin API shows it (AuditEntryView,
// VerifyAuditResponse), for the control plane's RPCs and wbctl's offline
// forms alike. Pure functions; thread-safe.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"
#include "common/audit/verifier.h"
#include "writeback/v1/admin_service.pb.h"

namespace wb::audit {

// The stored entry `value` of `seq`, decoded. An entry or event that does
// not decode gives a view with `error` set and what could be read.
writeback::v1::AuditEntryView EntryView(uint64_t seq, absl::string_view value);

writeback::v1::VerifyAuditResponse ReportToProto(const VerifyReport& report);

}  // namespace wb::audit
