#include "cli/format.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/text/display.h"
#include "google/protobuf/util/json_util.h"

namespace wb::cli {
namespace {

namespace v1 = writeback::v1;

// Display width: UTF-8 code points (continuation bytes do not count).
size_t Width(absl::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::string StripPrefix(const std::string& name, absl::string_view prefix, absl::string_view type,
                        int value) {
  if (name.empty()) return absl::StrCat(type, "(", value, ")");
  return std::string(absl::StripPrefix(name, prefix));
}

std::string JoinTargets(const v1::DecisionStatement& st, size_t max_shown) {
  std::vector<std::string> objs;
  for (const auto& t : st.targets()) {
    if (objs.size() == max_shown) break;
    objs.push_back(t.object());
  }
  std::string s = absl::StrJoin(objs, ",");
  if (static_cast<size_t>(st.targets_size()) > objs.size()) {
    absl::StrAppend(&s, " +", st.targets_size() - objs.size());
  }
  return s;
}

template <typename MapT>
std::vector<std::pair<std::string, std::string>> Sorted(const MapT& m) {
  std::vector<std::pair<std::string, std::string>> v(m.begin(), m.end());
  std::sort(v.begin(), v.end());
  return v;
}

std::string Dash(absl::string_view s) { return s.empty() ? "-" : Printable(s); }

// "key:" padded to a fixed label column, then the value.
void Line(std::string* out, absl::string_view indent, absl::string_view label,
          absl::string_view value, size_t label_width = 12) {
  std::string l = absl::StrCat(label, ":");
  if (l.size() < label_width) l.append(label_width - l.size(), ' ');
  if (value.empty()) {
    absl::StrAppend(out, indent, absl::StripTrailingAsciiWhitespace(l), "\n");
  } else {
    absl::StrAppend(out, indent, l, " ", value, "\n");
  }
}

void Observations(std::string* out, absl::string_view indent,
                  const google::protobuf::RepeatedPtrField<v1::Observation>& obs) {
  for (const auto& o : obs) {
    absl::StrAppend(out, indent, "- ", Dash(o.check()), " ", Dash(o.subject()));
    if (o.observed_at_unix_ms() != 0) {
      absl::StrAppend(out, " (at ", FormatTime(o.observed_at_unix_ms()), ")");
    }
    absl::StrAppend(out, "\n");
    if (!o.detail().empty()) absl::StrAppend(out, indent, "  ", Printable(o.detail()), "\n");
    if (!o.facts().empty()) {
      std::vector<std::string> kv;
      for (const auto& [k, v] : Sorted(o.facts())) kv.push_back(absl::StrCat(k, "=", v));
      absl::StrAppend(out, indent, "  facts: ", Printable(absl::StrJoin(kv, ", ")), "\n");
    }
  }
}

void StringList(std::string* out, absl::string_view indent,
                const google::protobuf::RepeatedPtrField<std::string>& items) {
  for (const auto& s : items) absl::StrAppend(out, indent, "- ", Printable(s), "\n");
}

void TaskBlock(std::string* out, int index, const v1::TaskView& t) {
  absl::StrAppend(out, "\nTask ", index + 1, ": ", Dash(t.task_id()), "\n");
  const std::string in = "  ";
  Line(out, in, "Target", Dash(t.target()));
  Line(out, in, "Agent", Dash(t.agent_id()));
  Line(out, in, "State", TaskStateName(t.state()));
  Line(out, in, "Outcome", t.outcome() == v1::OUTCOME_UNSPECIFIED ? "-" : OutcomeName(t.outcome()));
  if (t.reject_reason() != v1::REJECT_REASON_UNSPECIFIED) {
    Line(out, in, "Rejected", RejectReasonName(t.reject_reason()));
  }
  if (!t.message().empty()) Line(out, in, "Message", Printable(t.message()));
  if (!t.covered_by_task_id().empty()) {
    Line(out, in, "Covered by",
         absl::StrCat("task ", Printable(t.covered_by_task_id()), " of decision ",
                      Printable(t.covered_by_decision_id()), " (", Printable(t.covered_because()),
                      ")"));
  }
  Line(out, in, "Attempts", absl::StrCat(t.delivery_attempts()));
  if (t.finished_at_unix_ms() != 0) Line(out, in, "Finished", FormatTime(t.finished_at_unix_ms()));
  if (t.has_plan()) {
    const auto& p = t.plan();
    std::string head = Dash(p.summary());
    if (p.no_change()) absl::StrAppend(&head, " (no change needed)");
    Line(out, in, "Plan", head);
    if (p.before_size() > 0) {
      absl::StrAppend(out, in, "  before:\n");
      Observations(out, "      ", p.before());
    }
    if (p.changes_size() > 0) {
      absl::StrAppend(out, in, "  changes:\n");
      StringList(out, "      ", p.changes());
    }
  }
  if (t.has_applied()) {
    Line(out, in, "Applied", t.applied().changes_size() == 0 ? "no changes" : "");
    StringList(out, "      ", t.applied().changes());
  }
  if (t.has_verification()) {
    const auto& v = t.verification();
    std::string head = OutcomeName(v.outcome());
    if (!v.detail().empty()) absl::StrAppend(&head, ": ", Printable(v.detail()));
    Line(out, in, "Verified", head);
    if (v.after_size() > 0) {
      absl::StrAppend(out, in, "  after:\n");
      Observations(out, "      ", v.after());
    }
  }
}

// YAML plain scalars that would not read back as the same string.
bool NeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  const char c0 = s.front();
  if (absl::ascii_isdigit(c0) || c0 == '+' || c0 == '-' || c0 == '.' || c0 == ' ' ||
      s.back() == ' ') {
    return true;
  }
  static const char* const kWords[] = {"true", "false", "yes", "no",   "on",
                                       "off",  "y",     "n",   "null", "~"};
  const std::string lower = absl::AsciiStrToLower(s);
  for (const char* w : kWords) {
    if (lower == w) return true;
  }
  // Control, bidirectional and invisible characters: double-quoted, where
  // JsonToYaml writes them as \uXXXX escapes (common/text/display.h).
  return text::FindUnsafe(s).has_value();
}

void EmitString(YAML::Emitter& e, const std::string& s) {
  if (NeedsQuotes(s)) e << YAML::DoubleQuoted;
  e << s;
}

void EmitYaml(YAML::Emitter& e, const nlohmann::ordered_json& j) {
  using T = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case T::object:
      if (j.empty()) {
        e << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      e << YAML::BeginMap;
      for (const auto& [k, v] : j.items()) {
        e << YAML::Key;
        EmitString(e, k);
        e << YAML::Value;
        EmitYaml(e, v);
      }
      e << YAML::EndMap;
      return;
    case T::array:
      if (j.empty()) {
        e << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      e << YAML::BeginSeq;
      for (const auto& v : j) EmitYaml(e, v);
      e << YAML::EndSeq;
      return;
    case T::string:
      EmitString(e, j.get<std::string>());
      return;
    case T::boolean:
      e << (j.get<bool>() ? "true" : "false");
      return;
    case T::number_integer:
      e << j.get<int64_t>();
      return;
    case T::number_unsigned:
      e << j.get<uint64_t>();
      return;
    case T::number_float:
      e << j.dump();
      return;
    case T::null:
    case T::binary:
    case T::discarded:
      e << YAML::Null;
      return;
  }
}

}  // namespace

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name) {
  if (name == "table") return OutputFormat::kTable;
  if (name == "json") return OutputFormat::kJson;
  if (name == "yaml") return OutputFormat::kYaml;
  return absl::InvalidArgumentError(
      absl::StrCat("--output: unknown format '", name, "' (table, json or yaml)"));
}

std::string FormatTime(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

std::string FormatAge(int64_t unix_ms, absl::Time now) {
  if (unix_ms == 0) return "-";
  absl::Duration d = now - absl::FromUnixMillis(unix_ms);
  const bool future = d < absl::ZeroDuration();
  if (future) d = -d;
  const int64_t s = absl::ToInt64Seconds(d);
  std::string n;
  if (s < 60) {
    n = absl::StrCat(s, "s");
  } else if (s < 3600) {
    n = absl::StrCat(s / 60, "m");
  } else if (s < 48 * 3600) {
    n = absl::StrCat(s / 3600, "h");
  } else {
    n = absl::StrCat(s / 86400, "d");
  }
  return future ? absl::StrCat("in ", n) : absl::StrCat(n, " ago");
}

std::string FormatTimeAndAge(int64_t unix_ms, absl::Time now) {
  if (unix_ms == 0) return "-";
  return absl::StrCat(FormatTime(unix_ms), " (", FormatAge(unix_ms, now), ")");
}

std::string DecisionStateName(v1::DecisionState s) {
  return StripPrefix(v1::DecisionState_Name(s), "DECISION_STATE_", "DecisionState", s);
}
std::string TaskStateName(v1::TaskState s) {
  return StripPrefix(v1::TaskState_Name(s), "TASK_STATE_", "TaskState", s);
}
std::string OutcomeName(v1::Outcome o) {
  return StripPrefix(v1::Outcome_Name(o), "OUTCOME_", "Outcome", o);
}
std::string RejectReasonName(v1::RejectReason r) {
  return StripPrefix(v1::RejectReason_Name(r), "REJECT_REASON_", "RejectReason", r);
}

absl::StatusOr<v1::DecisionState> ParseDecisionState(absl::string_view name) {
  std::string up = absl::AsciiStrToUpper(name);
  if (!absl::StartsWith(up, "DECISION_STATE_")) up = absl::StrCat("DECISION_STATE_", up);
  v1::DecisionState s;
  if (up != "DECISION_STATE_UNSPECIFIED" && v1::DecisionState_Parse(up, &s)) return s;
  std::vector<std::string> names;
  for (int i = v1::DecisionState_MIN + 1; i <= v1::DecisionState_MAX; ++i) {
    if (v1::DecisionState_IsValid(i)) {
      names.push_back(DecisionStateName(static_cast<v1::DecisionState>(i)));
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("--state: unknown state '", name,
                                                 "' (one of: ", absl::StrJoin(names, ", "), ")"));
}

std::string Printable(absl::string_view s) { return text::EscapeForDisplay(s); }

Table::Table(std::vector<std::string> headers) { rows_.push_back(std::move(headers)); }

void Table::AddRow(std::vector<std::string> cells) {
  for (auto& c : cells) c = Printable(c);
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::vector<size_t> widths;
  for (const auto& r : rows_) {
    if (widths.size() < r.size()) widths.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], Width(r[i]));
  }
  std::string out;
  for (const auto& r : rows_) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line.append(widths[i] - Width(r[i]) + 2, ' ');
    }
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
  return out;
}

absl::StatusOr<std::string> MessageToJson(const google::protobuf::Message& msg) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.always_print_primitive_fields = true;
  opts.preserve_proto_field_names = true;
  std::string out;
  auto st = google::protobuf::util::MessageToJsonString(msg, &out, opts);
  if (!st.ok()) return absl::InternalError(absl::StrCat("JSON encoding: ", st.ToString()));
  if (out.empty() || out.back() != '\n') out.push_back('\n');
  // Bidirectional and invisible characters as JSON escapes: the same values,
  // shown visibly.
  return text::EscapeForDisplay(out, text::EscapeStyle::kJson);
}

absl::StatusOr<std::string> JsonToYaml(absl::string_view json) {
  auto doc = nlohmann::ordered_json::parse(json.begin(), json.end(), nullptr, false);
  if (doc.is_discarded()) return absl::InternalError("YAML encoding: input is not valid JSON");
  YAML::Emitter e;
  e.SetIndent(2);
  EmitYaml(e, doc);
  if (!e.good()) return absl::InternalError(absl::StrCat("YAML encoding: ", e.GetLastError()));
  // Unsafe characters only occur in double-quoted scalars (NeedsQuotes),
  // where these escapes read back as the same characters.
  std::string out = text::EscapeForDisplay(e.c_str(), text::EscapeStyle::kTextKeepNewlines);
  out.push_back('\n');
  return out;
}

absl::StatusOr<std::string> RenderMessage(const google::protobuf::Message& msg,
                                          OutputFormat format) {
  if (format == OutputFormat::kTable) {
    return absl::InvalidArgumentError("RenderMessage: table output is rendered by the caller");
  }
  auto json = MessageToJson(msg);
  if (!json.ok() || format == OutputFormat::kJson) return json;
  return JsonToYaml(*json);
}

std::string SubmitResponseTable(const v1::SubmitDecisionResponse& r) {
  std::string out;
  Line(&out, "", "Decision", Dash(r.decision_id()));
  Line(&out, "", "Version", absl::StrCat(r.version()));
  Line(&out, "", "State", DecisionStateName(r.state()));
  return out;
}

std::string DecisionViewTable(const v1::DecisionView& v, absl::Time now) {
  const auto& st = v.statement();
  std::string out;
  Line(&out, "", "Decision", Dash(st.decision_id()));
  Line(&out, "", "Version", absl::StrCat(st.version()));
  std::string state = DecisionStateName(v.state());
  if (!v.state_detail().empty()) absl::StrAppend(&state, " (", Printable(v.state_detail()), ")");
  Line(&out, "", "State", state);
  if (v.unverifiable_at_unix_ms() != 0 && v.state() == v1::DECISION_STATE_UNVERIFIABLE) {
    Line(&out, "", "Cannot tell",
         absl::StrCat("since ", FormatTimeAndAge(v.unverifiable_at_unix_ms(), now),
                      ": re-verification cannot observe the effect"));
  }
  if (v.state() == v1::DECISION_STATE_RETIRED) {
    Line(&out, "", "Retired",
         absl::StrCat(FormatTimeAndAge(v.retired_at_unix_ms(), now), " by ",
                      Printable(v.retired_by()), " (was ", DecisionStateName(v.retired_from()),
                      "): ", Printable(v.retired_reason())));
  }
  if (!v.watched_through().empty()) {
    std::vector<std::string> w;
    for (const auto& [object, id] : Sorted(v.watched_through())) {
      w.push_back(absl::StrCat(Printable(object), " through ", Printable(id)));
    }
    Line(&out, "", "Watched", absl::StrJoin(w, ", "));
  }
  Line(&out, "", "Instance", Dash(st.connector_instance()));
  Line(&out, "", "Agent", Dash(st.agent_id()));
  Line(&out, "", "Operation", Dash(st.operation()));
  Line(&out, "", "Params", st.has_params() ? Dash(st.params().ShortDebugString()) : "-");
  std::vector<std::string> targets;
  for (const auto& t : st.targets()) targets.push_back(Printable(t.object()));
  Line(&out, "", "Targets", targets.empty() ? "-" : absl::StrJoin(targets, ", "));
  Line(&out, "", "Reason", Dash(st.reason()));
  Line(&out, "", "Reference", Dash(st.reference()));
  Line(&out, "", "Requester", Dash(st.requester()));
  Line(&out, "", "Created", FormatTimeAndAge(st.created_at_unix_ms(), now));
  Line(&out, "", "Expires", FormatTimeAndAge(st.expires_at_unix_ms(), now));
  Line(&out, "", "Submitted", FormatTimeAndAge(v.submitted_at_unix_ms(), now));
  Line(&out, "", "Dispatched", FormatTimeAndAge(v.dispatched_at_unix_ms(), now));
  Line(&out, "", "Finished", FormatTimeAndAge(v.finished_at_unix_ms(), now));
  absl::StrAppend(&out, "Tasks:       ", v.tasks_size(), "\n");
  for (int i = 0; i < v.tasks_size(); ++i) TaskBlock(&out, i, v.tasks(i));
  return out;
}

std::string DecisionListTable(const v1::ListDecisionsResponse& r, absl::Time now) {
  Table t({"ID", "STATE", "INSTANCE", "OPERATION", "TARGETS", "CREATED", "AGE"});
  for (const auto& d : r.decisions()) {
    const auto& st = d.statement();
    t.AddRow({st.decision_id(), DecisionStateName(d.state()), st.connector_instance(),
              st.operation(), JoinTargets(st, 3), FormatTime(st.created_at_unix_ms()),
              FormatAge(st.created_at_unix_ms(), now)});
  }
  return t.Render();
}

std::string AgentListTable(const v1::ListAgentsResponse& r, absl::Time now) {
  Table t({"ID", "CONNECTED", "LAST-HEARTBEAT", "VERSION", "INSTANCES", "LABELS"});
  for (const auto& a : r.agents()) {
    std::vector<std::string> labels;
    for (const auto& [k, v] : Sorted(a.labels())) labels.push_back(absl::StrCat(k, "=", v));
    t.AddRow({a.agent_id(), a.connected() ? "yes" : "no",
              FormatAge(a.last_heartbeat_unix_ms(), now), a.version().empty() ? "-" : a.version(),
              a.instances().empty() ? "-" : absl::StrJoin(a.instances(), ","),
              labels.empty() ? "-" : absl::StrJoin(labels, ",")});
  }
  return t.Render();
}

absl::StatusOr<std::string> FormatSubmitResponse(const v1::SubmitDecisionResponse& r,
                                                 OutputFormat format) {
  if (format == OutputFormat::kTable) return SubmitResponseTable(r);
  return RenderMessage(r, format);
}

absl::StatusOr<std::string> FormatDecisionView(const v1::DecisionView& v, OutputFormat format,
                                               absl::Time now) {
  if (format == OutputFormat::kTable) return DecisionViewTable(v, now);
  return RenderMessage(v, format);
}

absl::StatusOr<std::string> FormatDecisionList(const v1::ListDecisionsResponse& r,
                                               OutputFormat format, absl::Time now) {
  if (format == OutputFormat::kTable) return DecisionListTable(r, now);
  return RenderMessage(r, format);
}

absl::StatusOr<std::string> FormatAgentList(const v1::ListAgentsResponse& r, OutputFormat format,
                                            absl::Time now) {
  if (format == OutputFormat::kTable) return AgentListTable(r, now);
  return RenderMessage(r, format);
}

}  // namespace wb::cli
