// Output of wbctl: tables for people, JSON and YAML for programs.
//
// - JSON is the protobuf JSON mapping with the proto field names
//   (snake_case), every primitive field printed, one document per call.
// - YAML is the same document in YAML block style; it parses with yaml-cpp
//   to the same values (strings that would read as numbers, booleans or null
//   are quoted).
// - Tables are aligned, times are RFC3339 UTC plus a relative age. Text
//   coming from the server is escaped visibly (common/text/display.h:
//   control, bidirectional and invisible characters become \u202e, \x1b,
//   ...) so a hostile string can neither drive the terminal nor show other
//   text than it holds. JSON and YAML carry the same characters as their own
//   escapes (\u202e): the values are unchanged.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "writeback/v1/admin_service.pb.h"

namespace wb::cli {

enum class OutputFormat { kTable, kJson, kYaml };

// "table" | "json" | "yaml".
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name);

// ---- Text helpers ----

// RFC3339 UTC with seconds, e.g. "2027-01-15T08:00:00Z"; "-" for 0.
std::string FormatTime(int64_t unix_ms);
// Relative to `now`: "45s ago", "5m ago", "3h ago", "2d ago", "in 5m";
// "-" for 0.
std::string FormatAge(int64_t unix_ms, absl::Time now);
// "2027-01-15T08:00:00Z (5m ago)"; "-" for 0.
std::string FormatTimeAndAge(int64_t unix_ms, absl::Time now);
// Enum names without their prefix: DECISION_STATE_VERIFIED -> "VERIFIED".
std::string DecisionStateName(writeback::v1::DecisionState s);
std::string TaskStateName(writeback::v1::TaskState s);
std::string OutcomeName(writeback::v1::Outcome o);
std::string RejectReasonName(writeback::v1::RejectReason r);
// Parses "verified", "VERIFIED" or "DECISION_STATE_VERIFIED".
absl::StatusOr<writeback::v1::DecisionState> ParseDecisionState(absl::string_view name);
// `s` for a person: control (C0, DEL, C1), bidirectional and invisible
// characters and bytes that are not UTF-8 escaped visibly
// (text::EscapeForDisplay).
std::string Printable(absl::string_view s);

// An aligned text table. Cells are made printable; columns are separated by
// two spaces; the last column is not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  void AddRow(std::vector<std::string> cells);
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// ---- Documents ----

// The JSON document for `msg` (see above), ending in a newline.
absl::StatusOr<std::string> MessageToJson(const google::protobuf::Message& msg);
// A JSON document re-emitted as YAML, ending in a newline.
absl::StatusOr<std::string> JsonToYaml(absl::string_view json);
// `msg` as JSON or YAML. kTable is an INVALID_ARGUMENT (callers render
// tables themselves).
absl::StatusOr<std::string> RenderMessage(const google::protobuf::Message& msg,
                                          OutputFormat format);

// ---- Tables of the admin API's answers ----

std::string SubmitResponseTable(const writeback::v1::SubmitDecisionResponse& r);
// The full view of one decision: statement summary, then per task the
// target, agent, state, outcome, reject reason, message and the evidence.
std::string DecisionViewTable(const writeback::v1::DecisionView& v, absl::Time now);
// Columns: ID STATE INSTANCE OPERATION TARGETS CREATED AGE.
std::string DecisionListTable(const writeback::v1::ListDecisionsResponse& r, absl::Time now);
// Columns: ID CONNECTED LAST-HEARTBEAT VERSION INSTANCES LABELS.
std::string AgentListTable(const writeback::v1::ListAgentsResponse& r, absl::Time now);

// Dispatch on `format`: the table above, or the message as JSON/YAML.
absl::StatusOr<std::string> FormatSubmitResponse(const writeback::v1::SubmitDecisionResponse& r,
                                                 OutputFormat format);
absl::StatusOr<std::string> FormatDecisionView(const writeback::v1::DecisionView& v,
                                               OutputFormat format, absl::Time now);
absl::StatusOr<std::string> FormatDecisionList(const writeback::v1::ListDecisionsResponse& r,
                                               OutputFormat format, absl::Time now);
absl::StatusOr<std::string> FormatAgentList(const writeback::v1::ListAgentsResponse& r,
                                            OutputFormat format, absl::Time now);

}  // namespace wb::cli
