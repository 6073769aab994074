// Output of the operators'-view commands (fleet status, agent show,
// decision watch / reverify / remediate, events tail): tables and lines for
// people; for programs, -o json / -o yaml give the API message as one
// document, and the streaming commands (watch, tail) print one compact JSON
// object per line (JSON Lines) or one YAML document per message ("---").
// Pure functions; thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/format.h"
#include "writeback/v1/admin_service.pb.h"

namespace wb::cli {

// AGENT_STATE_ONLINE -> "ONLINE".
std::string AgentStateName(writeback::v1::AgentState s);
// "online", "STALE", "AGENT_STATE_OFFLINE" -> the state; INVALID_ARGUMENT
// naming --state otherwise.
absl::StatusOr<writeback::v1::AgentState> ParseAgentState(absl::string_view name);
// The last path segment of a SPIFFE ID ("spiffe://d/agent/a1" -> "a1").
std::string ShortId(absl::string_view spiffe_id);

// Summary lines, then one row per agent in the server's order (worst first):
// AGENT STATE SITE SEGMENT VERSION LAST-SEEN QUEUED IN-FLIGHT APPLIED FAILED
// REFUSED LAST-VERIFIED UNHEALTHY CERT-EXPIRES.
std::string FleetStatusTable(const writeback::v1::FleetStatusResponse& r, absl::Time now);
// One agent: identity, state and why, times, labels, counts, instances with
// their health, open tasks.
std::string AgentShowText(const writeback::v1::GetAgentResponse& r, absl::Time now);
// One line per watch message: time, decision, state, progress, what changed.
std::string WatchLine(const writeback::v1::WatchDecisionResponse& m, absl::Time now);
// One line per event.
std::string EventLine(const writeback::v1::Event& e);
std::string ReverifyText(const writeback::v1::ReverifyDecisionResponse& r);

// One message of a stream: compact JSON + "\n", or "---\n" + YAML.
absl::StatusOr<std::string> StreamDocument(const google::protobuf::Message& msg,
                                           OutputFormat format);

// Dispatch on `format` (table/JSON/YAML), as cli/format.h does.
absl::StatusOr<std::string> FormatFleetStatus(const writeback::v1::FleetStatusResponse& r,
                                              OutputFormat format, absl::Time now);
absl::StatusOr<std::string> FormatAgentShow(const writeback::v1::GetAgentResponse& r,
                                            OutputFormat format, absl::Time now);

// "30m", "2h", "7d", "90s" (a duration before `now`) or an RFC3339 time ->
// Unix ms. INVALID_ARGUMENT naming --since.
absl::StatusOr<int64_t> ParseSince(absl::string_view value, absl::Time now);

}  // namespace wb::cli
