#include "cli/commands/view_format.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/text/display.h"

namespace wb::cli {

namespace v1 = writeback::v1;

namespace {

std::string Dash(absl::string_view s) { return s.empty() ? "-" : Printable(s); }

std::string Label(const google::protobuf::Map<std::string, std::string>& labels, const char* k) {
  auto it = labels.find(k);
  return it == labels.end() ? "-" : Printable(it->second);
}

std::string EventKindName(v1::EventKind k) {
  std::string n = v1::EventKind_Name(k);
  constexpr absl::string_view kPrefix = "EVENT_KIND_";
  return absl::StartsWith(n, kPrefix) ? n.substr(kPrefix.size()) : n;
}

}  // namespace

std::string AgentStateName(v1::AgentState s) {
  std::string n = v1::AgentState_Name(s);
  constexpr absl::string_view kPrefix = "AGENT_STATE_";
  if (n.empty()) return absl::StrCat("AgentState(", static_cast<int>(s), ")");
  return absl::StartsWith(n, kPrefix) ? n.substr(kPrefix.size()) : n;
}

absl::StatusOr<v1::AgentState> ParseAgentState(absl::string_view name) {
  std::string up = absl::AsciiStrToUpper(name);
  if (!absl::StartsWith(up, "AGENT_STATE_")) up = absl::StrCat("AGENT_STATE_", up);
  v1::AgentState s;
  if (up != "AGENT_STATE_UNSPECIFIED" && v1::AgentState_Parse(up, &s)) return s;
  return absl::InvalidArgumentError(
      absl::StrCat("--state: unknown agent state '", name, "' (online, stale or offline)"));
}

std::string ShortId(absl::string_view id) {
  const size_t slash = id.rfind('/');
  return std::string(slash == absl::string_view::npos ? id : id.substr(slash + 1));
}

std::string PathText(const v1::AgentStatus& a) {
  if (a.relay_path().empty()) return "direct";
  std::vector<std::string> hops;
  for (const auto& h : a.relay_path()) hops.push_back(ShortId(h));
  std::string out = absl::StrCat("via ", Printable(absl::StrJoin(hops, ">")));
  if (!a.unreachable_via().empty()) {
    absl::StrAppend(&out, " (unreachable: ", Printable(ShortId(a.unreachable_via())), ")");
  }
  return out;
}

std::string FleetStatusTable(const v1::FleetStatusResponse& r, absl::Time now) {
  const auto& s = r.summary();
  std::string out = absl::StrCat(
      "Agents: ", s.agents(), " (", s.online(), " online, ", s.stale(), " stale, ", s.offline(),
      " offline); tasks: ", s.queue_depth(), " queued, ", s.in_flight(),
      " in flight; unhealthy instances: ", s.unhealthy_instances(),
      s.refused_instances() > 0 ? absl::StrCat("; refused instance offers: ", s.refused_instances())
                                : "",
      "\n");
  std::vector<std::string> counts;
  for (int i = v1::DecisionState_MIN + 1; i <= v1::DecisionState_MAX; ++i) {
    if (!v1::DecisionState_IsValid(i)) continue;
    const std::string name = DecisionStateName(static_cast<v1::DecisionState>(i));
    auto it = s.decisions_by_state().find(name);
    if (it != s.decisions_by_state().end() && it->second > 0) {
      counts.push_back(absl::StrCat(it->second, " ", name));
    }
  }
  absl::StrAppend(&out, "Decisions: ", counts.empty() ? "none" : absl::StrJoin(counts, ", "), "\n");
  if (!r.ttv_by_connector().empty()) {
    std::vector<std::string> parts;
    for (const auto& t : r.ttv_by_connector()) {
      parts.push_back(absl::StrCat(Dash(t.key()), " p50 ", t.p50_ms() / 1000.0, "s p90 ",
                                   t.p90_ms() / 1000.0, "s (", t.count(), ")"));
    }
    absl::StrAppend(&out, "Time to verified: ", absl::StrJoin(parts, "; "), "\n");
  }
  out += "\n";
  Table t({"AGENT", "STATE", "SITE", "SEGMENT", "PATH", "VERSION", "LAST-SEEN", "QUEUED",
           "IN-FLIGHT", "APPLIED", "FAILED", "REFUSED", "LAST-VERIFIED", "UNHEALTHY",
           "CERT-EXPIRES"});
  for (const auto& a : r.agents()) {
    t.AddRow({ShortId(a.agent_id()), AgentStateName(a.state()), Label(a.labels(), "site"),
              Label(a.labels(), "segment"), PathText(a), Dash(a.version()),
              FormatAge(a.last_seen_unix_ms(), now), absl::StrCat(a.queue_depth()),
              absl::StrCat(a.in_flight()), absl::StrCat(a.applied()), absl::StrCat(a.failed()),
              absl::StrCat(a.refused()), FormatAge(a.last_verified_at_unix_ms(), now),
              absl::StrCat(a.unhealthy_instances()), FormatAge(a.cert_not_after_unix_ms(), now)});
  }
  out += t.Render();
  // Offers of instances an agent is not bound to: refused, and worth a look
  // (a misconfiguration, a replaced host, or an agent claiming what is not
  // its own).
  std::vector<std::string> refused;
  for (const auto& a : r.agents()) {
    for (const auto& ri : a.refused_instances()) {
      refused.push_back(absl::StrCat("  ", Printable(ShortId(a.agent_id())), " offers ",
                                     Printable(ri.instance()), ": ", Printable(ri.reason())));
    }
  }
  if (!refused.empty()) {
    absl::StrAppend(&out, "\nRefused instance offers (", refused.size(), "):\n",
                    absl::StrJoin(refused, "\n"), "\n");
  }
  return out;
}

std::string AgentShowText(const v1::GetAgentResponse& r, absl::Time now) {
  const auto& a = r.agent();
  std::string out;
  auto line = [&](absl::string_view k, const std::string& v) {
    absl::StrAppend(&out, k, ":", std::string(k.size() < 17 ? 17 - k.size() : 1, ' '), v, "\n");
  };
  line("Agent", Printable(a.agent_id()));
  line("State", absl::StrCat(AgentStateName(a.state()), " (", Printable(a.state_reason()), ")"));
  line("Version", Dash(a.version()));
  std::vector<std::string> path;
  for (const auto& h : a.relay_path()) path.push_back(Printable(h));
  line("Path", path.empty()
                   ? "direct"
                   : absl::StrCat("agent > ", absl::StrJoin(path, " > "), " > control plane",
                                  a.unreachable_via().empty()
                                      ? ""
                                      : absl::StrCat(" (unreachable through ",
                                                     Printable(a.unreachable_via()), ")")));
  std::vector<std::string> labels;
  for (const auto& [k, v] : a.labels()) labels.push_back(absl::StrCat(k, "=", v));
  std::sort(labels.begin(), labels.end());
  line("Labels", labels.empty() ? "-" : Printable(absl::StrJoin(labels, ", ")));
  line("Connected since",
       a.connected() ? FormatTimeAndAge(a.connected_since_unix_ms(), now) : "not connected");
  line("Last seen", absl::StrCat(FormatTimeAndAge(a.last_seen_unix_ms(), now), ", ",
                                 a.missed_heartbeats(), " heartbeat(s) missed"));
  line("First seen", FormatTimeAndAge(a.first_seen_unix_ms(), now));
  line("Certificate", absl::StrCat("expires ", FormatTimeAndAge(a.cert_not_after_unix_ms(), now)));
  line("Tasks", absl::StrCat(a.queue_depth(), " queued, ", a.in_flight(),
                             " in flight (agent reports ", a.reported_in_flight(), ")"));
  line("Results", absl::StrCat(a.applied(), " applied (", a.verified(), " verified), ", a.failed(),
                               " failed, ", a.refused(), " refused"));
  line("Last verified", FormatTimeAndAge(a.last_verified_at_unix_ms(), now));
  out += "\nInstances:\n";
  Table inst({"NAME", "TYPE", "HEALTH", "DETAIL", "OPERATIONS"});
  for (const auto& i : a.instances()) {
    inst.AddRow({i.name(), i.type(), i.healthy() ? "healthy" : "UNHEALTHY", Dash(i.health_detail()),
                 absl::StrJoin(i.operations(), ",")});
  }
  out += inst.Render();
  if (a.refused_instances_size() > 0) {
    out += "\nRefused instances (offered, not bound to this agent):\n";
    Table refused({"NAME", "WHY"});
    for (const auto& ri : a.refused_instances()) refused.AddRow({ri.instance(), ri.reason()});
    out += refused.Render();
  }
  out += "\nOpen tasks:\n";
  if (r.open_tasks().empty()) return out + "none\n";
  Table tasks({"TASK", "TARGET", "STATE", "ATTEMPTS", "WHAT"});
  for (const auto& t : r.open_tasks()) {
    tasks.AddRow({t.task_id(), Dash(t.target()), TaskStateName(t.state()),
                  absl::StrCat(t.delivery_attempts()), Dash(t.message())});
  }
  return out + tasks.Render();
}

std::string WatchLine(const v1::WatchDecisionResponse& m, absl::Time now) {
  const auto& d = m.decision();
  std::string line =
      absl::StrCat(FormatTime(absl::ToUnixMillis(now)), "  ",
                   Printable(d.statement().decision_id()), "  ", DecisionStateName(d.state()));
  if (m.tasks_total() > 1) {
    absl::StrAppend(&line, "  tasks ", m.tasks_done(), "/", m.tasks_total(), " done");
  }
  if (m.has_event()) {
    const auto& e = m.event();
    absl::StrAppend(&line, "  [", EventKindName(e.kind()));
    if (!e.target().empty()) absl::StrAppend(&line, " ", Printable(e.target()));
    if (e.outcome() != v1::OUTCOME_UNSPECIFIED)
      absl::StrAppend(&line, " ", OutcomeName(e.outcome()));
    absl::StrAppend(&line, "]");
  }
  if (!d.state_detail().empty()) absl::StrAppend(&line, "  ", Printable(d.state_detail()));
  return line + "\n";
}

std::string EventLine(const v1::Event& e) {
  std::string line =
      absl::StrCat(FormatTime(e.at_unix_ms()), "  #", e.seq(), "  ", EventKindName(e.kind()));
  if (!e.decision_id().empty()) absl::StrAppend(&line, "  decision=", Printable(e.decision_id()));
  if (!e.task_id().empty()) absl::StrAppend(&line, "  task=", Printable(e.task_id()));
  if (!e.agent_id().empty()) absl::StrAppend(&line, "  agent=", Printable(ShortId(e.agent_id())));
  if (!e.target().empty()) absl::StrAppend(&line, "  target=", Printable(e.target()));
  if (e.decision_state() != v1::DECISION_STATE_UNSPECIFIED) {
    absl::StrAppend(&line, "  state=", DecisionStateName(e.decision_state()));
  } else if (e.task_state() != v1::TASK_STATE_UNSPECIFIED) {
    absl::StrAppend(&line, "  state=", TaskStateName(e.task_state()));
  } else if (e.agent_state() != v1::AGENT_STATE_UNSPECIFIED) {
    absl::StrAppend(&line, "  state=", AgentStateName(e.agent_state()));
  }
  if (e.outcome() != v1::OUTCOME_UNSPECIFIED)
    absl::StrAppend(&line, "  outcome=", OutcomeName(e.outcome()));
  if (e.reject_reason() != v1::REJECT_REASON_UNSPECIFIED) {
    absl::StrAppend(&line, "  reason=", RejectReasonName(e.reject_reason()));
  }
  if (!e.detail().empty()) absl::StrAppend(&line, "  ", Printable(e.detail()));
  return line + "\n";
}

std::string ReverifyText(const v1::ReverifyDecisionResponse& r) {
  if (!r.remediation_decision_id().empty()) {
    return absl::StrCat("Decision ", Printable(r.decision_id()), " (", DecisionStateName(r.state()),
                        ") re-issued as decision ", Printable(r.remediation_decision_id()), "\n");
  }
  return absl::StrCat("Decision ", Printable(r.decision_id()), " (", DecisionStateName(r.state()),
                      "): ", r.task_ids_size(),
                      " verify-only task(s) sent: ", Printable(absl::StrJoin(r.task_ids(), ", ")),
                      "\n");
}

absl::StatusOr<std::string> StreamDocument(const google::protobuf::Message& msg,
                                           OutputFormat format) {
  if (format == OutputFormat::kYaml) {
    auto doc = RenderMessage(msg, OutputFormat::kYaml);
    if (!doc.ok()) return doc.status();
    return absl::StrCat("---\n", *doc);
  }
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  opts.preserve_proto_field_names = true;
  std::string out;
  auto st = google::protobuf::util::MessageToJsonString(msg, &out, opts);
  if (!st.ok()) return absl::InternalError(absl::StrCat("JSON encoding: ", st.ToString()));
  return text::EscapeForDisplay(out, text::EscapeStyle::kJson) + "\n";
}

absl::StatusOr<std::string> FormatFleetStatus(const v1::FleetStatusResponse& r, OutputFormat format,
                                              absl::Time now) {
  if (format == OutputFormat::kTable) return FleetStatusTable(r, now);
  return RenderMessage(r, format);
}

absl::StatusOr<std::string> FormatAgentShow(const v1::GetAgentResponse& r, OutputFormat format,
                                            absl::Time now) {
  if (format == OutputFormat::kTable) return AgentShowText(r, now);
  return RenderMessage(r, format);
}

absl::StatusOr<int64_t> ParseSince(absl::string_view value, absl::Time now) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, std::string(value), &t, &err)) {
    return absl::ToUnixMillis(t);
  }
  if (value.size() >= 2) {
    int64_t n = 0;
    const char unit = value.back();
    if (absl::SimpleAtoi(value.substr(0, value.size() - 1), &n) && n >= 0) {
      absl::Duration d;
      switch (unit) {
        case 's':
          d = absl::Seconds(n);
          break;
        case 'm':
          d = absl::Minutes(n);
          break;
        case 'h':
          d = absl::Hours(n);
          break;
        case 'd':
          d = absl::Hours(24 * n);
          break;
        default:
          d = absl::InfiniteDuration();
      }
      if (d != absl::InfiniteDuration()) return absl::ToUnixMillis(now - d);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--since: '", value, "' is neither a duration (90s, 30m, 2h, 7d) nor an RFC3339 time"));
}

}  // namespace wb::cli
