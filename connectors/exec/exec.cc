#include "connectors/exec/exec.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/actions/actions.h"
#include "common/status/macros.h"
#include "connectors/util/connector_util.h"
#include "nlohmann/json.hpp"

namespace wb::connectors {
namespace {

using util::CheckDeadline;

using json = nlohmann::json;

constexpr absl::string_view kType = "exec";
constexpr absl::string_view kContract = "writeback.exec/v1";
constexpr uint32_t kDefaultTimeoutMs = 30'000;
constexpr uint32_t kMaxTimeoutMs = 3'600'000;
constexpr uint32_t kDefaultMaxOutput = 1 << 20;
constexpr uint32_t kMaxMaxOutput = 64 << 20;
constexpr size_t kStderrEvidence = 4096;
constexpr size_t kMaxStateBytes = 64 * 1024;
constexpr size_t kMaxText = 4096;
constexpr size_t kMaxList = 1000;
constexpr absl::string_view kDefaultPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status ValidateAction(const Action& action) {
  WB_RETURN_IF_ERROR(actions::ValidateAction(kType, action.operation, action.params));
  return actions::ValidateTargetObject(kType, action.object, "target");
}

absl::Status ValidateAbsolutePath(absl::string_view field, absl::string_view path) {
  if (path.empty() || path[0] != '/') return Invalid(field, "must be an absolute path");
  WB_RETURN_IF_ERROR(actions::ValidateText(field, path, 4096, false));
  for (absl::string_view c : absl::StrSplit(path.substr(1), '/')) {
    if (c == "." || c == "..") return Invalid(field, "must not contain '.' or '..' components");
  }
  return absl::OkStatus();
}

bool IsEnvName(absl::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  if (!(absl::ascii_isupper(n[0]) || n[0] == '_')) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return absl::ascii_isupper(c) || absl::ascii_isdigit(c) || c == '_';
  });
}

// Text from the program's stderr, made safe for a proto string: invalid
// UTF-8 and control characters other than newline and tab become '?'.
std::string Printable(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (ok && n == 2) ok = c >= 0xc2;  // no overlong two-byte forms
    if (!ok) {
      out.push_back('?');
      ++i;
      continue;
    }
    if (n == 1 && ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)) {
      out.push_back('?');
    } else {
      out.append(s.data() + i, n);
    }
    i += n;
  }
  return out;
}

const char* EndName(exec::SubprocessResult::End e) {
  switch (e) {
    case exec::SubprocessResult::End::kExited:
      return "exited";
    case exec::SubprocessResult::End::kSignaled:
      return "signaled";
    case exec::SubprocessResult::End::kTimedOut:
      return "timed_out";
    case exec::SubprocessResult::End::kOutputTooLarge:
      return "output_too_large";
  }
  return "unknown";
}

// The connector's own evidence of how the program ran.
writeback::v1::Observation ProgramObservation(const CallContext& ctx,
                                              const exec::SubprocessSpec& spec,
                                              const exec::SubprocessResult& r,
                                              absl::string_view verb) {
  writeback::v1::Observation obs;
  obs.set_check("exec_program");
  obs.set_subject(spec.program);
  obs.set_detail(absl::StrCat(verb, ": ", exec::DescribeEnd(r, spec)));
  obs.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  auto& f = *obs.mutable_facts();
  f["verb"] = std::string(verb);
  f["end"] = EndName(r.end);
  if (r.end == exec::SubprocessResult::End::kExited) f["exit_code"] = absl::StrCat(r.exit_code);
  if (r.end == exec::SubprocessResult::End::kSignaled) f["signal"] = absl::StrCat(r.term_signal);
  if (!r.err.empty()) f["stderr"] = Printable(r.err);
  if (r.err_truncated) f["stderr_truncated"] = "true";
  return obs;
}

// Why a run is a failure, or OK if it exited 0.
absl::Status RunFailure(const exec::SubprocessSpec& spec, const exec::SubprocessResult& r,
                        absl::string_view verb) {
  if (r.end == exec::SubprocessResult::End::kExited && r.exit_code == 0) return absl::OkStatus();
  std::string msg =
      absl::StrCat("exec program ", spec.program, " (", verb, ") ", exec::DescribeEnd(r, spec));
  if (!r.err.empty()) {
    absl::StrAppend(&msg, "; stderr", r.err_truncated ? " (truncated)" : "", ": ",
                    Printable(r.err));
  }
  if (r.end == exec::SubprocessResult::End::kTimedOut) return absl::DeadlineExceededError(msg);
  return absl::AbortedError(msg);
}

absl::Status Malformed(const exec::SubprocessSpec& spec, absl::string_view verb,
                       absl::string_view why) {
  return absl::AbortedError(
      absl::StrCat("exec program ", spec.program, " (", verb, "): malformed response: ", why));
}

// Reads an optional string member (max bytes) of a response object.
absl::StatusOr<std::string> OptString(const json& obj, const char* key, size_t max) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string())
    return absl::InvalidArgumentError(absl::StrCat("'", key, "' must be a string"));
  std::string s = it->get<std::string>();
  if (s.size() > max) {
    return absl::InvalidArgumentError(absl::StrCat("'", key, "' longer than ", max, " bytes"));
  }
  return s;
}

absl::StatusOr<std::vector<std::string>> OptStringList(const json& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array() || it->size() > kMaxList) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", key, "' must be a list of at most ", kMaxList, " strings"));
  }
  for (const auto& e : *it) {
    if (!e.is_string() || e.get_ref<const std::string&>().size() > kMaxText) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", key, "' entries must be strings of at most ", kMaxText, " bytes"));
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

absl::StatusOr<std::optional<writeback::v1::Observation>> OptObservation(const CallContext& ctx,
                                                                         const json& obj,
                                                                         const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<writeback::v1::Observation>();
  if (!it->is_object())
    return absl::InvalidArgumentError(absl::StrCat("'", key, "' must be an object"));
  writeback::v1::Observation obs;
  WB_ASSIGN_OR_RETURN(std::string check, OptString(*it, "check", 256));
  WB_ASSIGN_OR_RETURN(std::string subject, OptString(*it, "subject", kMaxText));
  WB_ASSIGN_OR_RETURN(std::string detail, OptString(*it, "detail", kMaxText));
  obs.set_check(check.empty() ? "exec_report" : check);
  obs.set_subject(subject);
  obs.set_detail(detail);
  obs.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  auto facts = it->find("facts");
  if (facts != it->end() && !facts->is_null()) {
    if (!facts->is_object() || facts->size() > 100) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", key, ".facts' must be an object of at most 100 strings"));
    }
    for (const auto& [k, v] : facts->items()) {
      if (!v.is_string() || k.size() > 256 || v.get_ref<const std::string&>().size() > kMaxText) {
        return absl::InvalidArgumentError(absl::StrCat(
            "'", key, ".facts' values must be strings of at most ", kMaxText, " bytes"));
      }
      (*obs.mutable_facts())[k] = v.get<std::string>();
    }
  }
  return std::optional<writeback::v1::Observation>(std::move(obs));
}

// Parses stdout as one JSON object and maps an "error" response onto a status.
absl::StatusOr<json> ParseResponse(const exec::SubprocessSpec& spec, absl::string_view verb,
                                   const std::string& out) {
  json doc = json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Malformed(spec, verb, "stdout is not one JSON document");
  if (!doc.is_object()) return Malformed(spec, verb, "stdout is not a JSON object");
  auto err = doc.find("error");
  if (err != doc.end() && !err->is_null()) {
    if (!err->is_object()) return Malformed(spec, verb, "'error' must be an object");
    auto code = OptString(*err, "code", 64);
    auto message = OptString(*err, "message", kMaxText);
    if (!code.ok()) return Malformed(spec, verb, code.status().message());
    if (!message.ok()) return Malformed(spec, verb, message.status().message());
    const std::string what =
        absl::StrCat("exec program ", spec.program, " (", verb, "): ", *message);
    if (*code == "invalid_argument") return absl::InvalidArgumentError(what);
    if (*code == "failed_precondition") return absl::FailedPreconditionError(what);
    if (*code == "failed") return absl::AbortedError(what);
    return Malformed(spec, verb, absl::StrCat("unknown error code '", Printable(*code), "'"));
  }
  return doc;
}

json RequestFor(absl::string_view verb, const std::string& instance, const Action& a) {
  json args = json::object();
  for (const auto& [k, v] : a.params.exec().args()) args[k] = v;
  return json{{"contract", std::string(kContract)},
              {"verb", std::string(verb)},
              {"connector_instance", instance},
              {"operation", a.operation},
              {"object", a.object},
              {"params", json{{"args", std::move(args)}}},
              {"task_id", a.task_id},
              {"decision_version", a.decision_version}};
}

std::string Dump(const json& j) {
  // Never throws: bytes that are not UTF-8 (only possible in plan_state or
  // task_id) are replaced.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> ExecConnector::Create(
    const writeback::v1::ConnectorInstanceConfig& cfg) {
  const std::string where = absl::StrCat("connectors[", cfg.name(), "].exec");
  if (cfg.settings_case() != writeback::v1::ConnectorInstanceConfig::kExec) {
    return Invalid(where, "missing: a connector of type exec needs exec settings");
  }
  writeback::v1::ExecConfig c = cfg.exec();

  // program
  WB_RETURN_IF_ERROR(ValidateAbsolutePath(where + ".program", c.program()));
  struct stat st {};
  if (::stat(c.program().c_str(), &st) != 0) {
    return Invalid(where + ".program",
                   absl::StrCat("cannot stat ", c.program(), ": ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) return Invalid(where + ".program", "must be a regular file");
  if ((st.st_mode & 0111) == 0) return Invalid(where + ".program", "is not executable");
  if ((st.st_mode & S_IWOTH) != 0) {
    return Invalid(where + ".program",
                   "is world-writable: anyone could replace what the agent runs");
  }

  // limits
  if (c.timeout_ms() == 0) c.set_timeout_ms(kDefaultTimeoutMs);
  if (c.timeout_ms() > kMaxTimeoutMs) {
    return Invalid(where + ".timeout_ms", absl::StrCat("at most ", kMaxTimeoutMs));
  }
  if (c.max_output_bytes() == 0) c.set_max_output_bytes(kDefaultMaxOutput);
  if (c.max_output_bytes() > kMaxMaxOutput) {
    return Invalid(where + ".max_output_bytes", absl::StrCat("at most ", kMaxMaxOutput));
  }

  // working_dir
  if (c.working_dir().empty()) c.set_working_dir("/");
  WB_RETURN_IF_ERROR(ValidateAbsolutePath(where + ".working_dir", c.working_dir()));
  if (::stat(c.working_dir().c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Invalid(where + ".working_dir", absl::StrCat(c.working_dir(), " is not a directory"));
  }

  // idempotent_operations: exec operations, each at most once
  const std::vector<std::string>& ops = actions::OperationsOf(kType);
  std::set<std::string, std::less<>> declared;
  for (int i = 0; i < c.idempotent_operations_size(); ++i) {
    const std::string& op = c.idempotent_operations(i);
    const std::string field = absl::StrCat(where, ".idempotent_operations[", i, "]");
    if (std::find(ops.begin(), ops.end(), op) == ops.end()) {
      return Invalid(field, absl::StrCat("unknown exec operation '", Printable(op), "' (",
                                         absl::StrJoin(ops, ", "), ")"));
    }
    if (!declared.insert(op).second) {
      return Invalid(field, absl::StrCat("'", op, "' is listed twice"));
    }
  }

  // user and group
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::string user_name, home = "/";
  std::vector<char> buf(16384);
  if (!c.run_as_user().empty()) {
    WB_RETURN_IF_ERROR(actions::ValidatePosixUserName(where + ".run_as_user", c.run_as_user()));
    passwd pw{};
    passwd* found = nullptr;
    if (::getpwnam_r(c.run_as_user().c_str(), &pw, buf.data(), buf.size(), &found) != 0 ||
        found == nullptr) {
      return Invalid(where + ".run_as_user", absl::StrCat("no such user '", c.run_as_user(), "'"));
    }
    uid = pw.pw_uid;
    gid = pw.pw_gid;
    user_name = pw.pw_name;
    if (pw.pw_dir != nullptr && pw.pw_dir[0] == '/') home = pw.pw_dir;
  } else {
    passwd pw{};
    passwd* found = nullptr;
    if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
      user_name = pw.pw_name;
      if (pw.pw_dir != nullptr && pw.pw_dir[0] == '/') home = pw.pw_dir;
    }
  }
  if (!c.run_as_group().empty()) {
    WB_RETURN_IF_ERROR(actions::ValidatePosixUserName(where + ".run_as_group", c.run_as_group()));
    group gr{};
    group* found = nullptr;
    if (::getgrnam_r(c.run_as_group().c_str(), &gr, buf.data(), buf.size(), &found) != 0 ||
        found == nullptr) {
      return Invalid(where + ".run_as_group",
                     absl::StrCat("no such group '", c.run_as_group(), "'"));
    }
    gid = gr.gr_gid;
  }
  if (uid.has_value() || gid.has_value()) {
    if (!uid.has_value()) uid = ::geteuid();
    if (::geteuid() != 0) {
      if (*uid != ::geteuid() || *gid != ::getegid()) {
        return Invalid(where + ".run_as_user",
                       "switching user or group needs the agent to run as root");
      }
      uid.reset();  // already that user: nothing to switch
      gid.reset();
    }
  }

  // environment: a small fixed set, then the configured variables
  std::map<std::string, std::string> env = {
      {"PATH", std::string(kDefaultPath)}, {"LANG", "C.UTF-8"}, {"HOME", home}};
  if (!user_name.empty()) {
    env["USER"] = user_name;
    env["LOGNAME"] = user_name;
  }
  for (const auto& [k, v] : c.env()) {
    const std::string field = absl::StrCat(where, ".env.", k);
    if (!IsEnvName(k)) return Invalid(field, "name must match [A-Z_][A-Z0-9_]{0,63}");
    WB_RETURN_IF_ERROR(actions::ValidateText(field, v, 4096, true));
    env[k] = v;
  }
  std::vector<std::string> env_list;
  for (const auto& [k, v] : env) env_list.push_back(absl::StrCat(k, "=", v));

  return std::unique_ptr<Connector>(
      new ExecConnector(cfg.name(), std::move(c), std::move(env_list), uid, gid));
}

absl::StatusOr<exec::SubprocessResult> ExecConnector::Run(const CallContext& ctx,
                                                          absl::string_view verb,
                                                          const std::string& request,
                                                          exec::SubprocessSpec* spec) const {
  spec->program = cfg_.program();
  spec->argv = {cfg_.program(), std::string(verb)};
  spec->env = env_;
  spec->stdin_data = request;
  spec->working_dir = cfg_.working_dir();
  spec->uid = uid_;
  spec->gid = gid_;
  spec->max_stdout = cfg_.max_output_bytes();
  spec->max_stderr = kStderrEvidence;
  spec->timeout = absl::Milliseconds(cfg_.timeout_ms());
  const absl::Duration left = ctx.deadline - ctx.clock->Now();
  if (left < spec->timeout) spec->timeout = left;
  if (spec->timeout <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError("deadline passed before the program could start");
  }
  return exec::RunSubprocess(*spec);
}

absl::StatusOr<writeback::v1::Plan> ExecConnector::PlanChange(const CallContext& ctx,
                                                              const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(ValidateAction(action));
  exec::SubprocessSpec spec;
  WB_ASSIGN_OR_RETURN(const auto r,
                      Run(ctx, "plan", Dump(RequestFor("plan", name_, action)), &spec));
  WB_RETURN_IF_ERROR(RunFailure(spec, r, "plan"));
  WB_ASSIGN_OR_RETURN(const json doc, ParseResponse(spec, "plan", r.out));

  auto no_change = doc.find("no_change");
  if (no_change == doc.end() || !no_change->is_boolean()) {
    return Malformed(spec, "plan", "'no_change' (a boolean) is required");
  }
  auto summary = OptString(doc, "summary", kMaxText);
  auto changes = OptStringList(doc, "changes");
  auto state = OptString(doc, "state", kMaxStateBytes);
  auto before = OptObservation(ctx, doc, "before");
  for (const absl::Status& s :
       {summary.status(), changes.status(), state.status(), before.status()}) {
    if (!s.ok()) return Malformed(spec, "plan", s.message());
  }
  const bool nothing = no_change->get<bool>();
  if (!nothing && changes->empty()) {
    return Malformed(spec, "plan", "a plan that changes something must list its 'changes'");
  }
  if (nothing && !changes->empty()) {
    return Malformed(spec, "plan", "'no_change' is true but 'changes' is not empty");
  }

  writeback::v1::Plan plan;
  plan.set_no_change(nothing);
  plan.set_summary(*summary);
  for (auto& c : *changes) plan.add_changes(std::move(c));
  plan.set_state(*state);
  if (before->has_value()) *plan.add_before() = std::move(**before);
  *plan.add_before() = ProgramObservation(ctx, spec, r, "plan");
  return plan;
}

absl::StatusOr<writeback::v1::ApplyResult> ExecConnector::Apply(const CallContext& ctx,
                                                                const Action& action,
                                                                const writeback::v1::Plan& plan) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(ValidateAction(action));
  if (plan.no_change()) return writeback::v1::ApplyResult();
  absl::MutexLock lock(&apply_mu_);
  json req = RequestFor("apply", name_, action);
  req["plan_state"] = plan.state();
  exec::SubprocessSpec spec;
  WB_ASSIGN_OR_RETURN(const auto r, Run(ctx, "apply", Dump(req), &spec));
  WB_RETURN_IF_ERROR(RunFailure(spec, r, "apply"));
  WB_ASSIGN_OR_RETURN(const json doc, ParseResponse(spec, "apply", r.out));
  auto changes = OptStringList(doc, "changes");
  if (!changes.ok()) return Malformed(spec, "apply", changes.status().message());
  writeback::v1::ApplyResult result;
  for (auto& c : *changes) result.add_changes(std::move(c));
  return result;
}

absl::StatusOr<writeback::v1::Verification> ExecConnector::Verify(const CallContext& ctx,
                                                                  const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(ValidateAction(action));
  exec::SubprocessSpec spec;
  WB_ASSIGN_OR_RETURN(const auto r,
                      Run(ctx, "verify", Dump(RequestFor("verify", name_, action)), &spec));
  // Only the program's own "outcome": "failed" says the effect is gone. A
  // program that did not answer (exit, signal, timeout, oversized or
  // malformed output) or answered an error observed nothing: UNVERIFIED
  // ("cannot tell"), never FAILED, which re-verification reads as drift.
  writeback::v1::Verification v;
  auto cannot_tell = [&](absl::string_view why) {
    v.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
    v.set_detail(absl::StrCat("cannot tell: ", why));
    *v.add_after() = ProgramObservation(ctx, spec, r, "verify");
    return v;
  };
  const absl::Status failed = RunFailure(spec, r, "verify");
  if (!failed.ok()) return cannot_tell(failed.message());
  auto doc = ParseResponse(spec, "verify", r.out);
  if (!doc.ok()) {
    // The program said the action itself is wrong: a caller error, not an outcome.
    if (doc.status().code() == absl::StatusCode::kInvalidArgument) return doc.status();
    return cannot_tell(doc.status().message());
  }
  auto outcome = OptString(*doc, "outcome", 32);
  auto detail = OptString(*doc, "detail", kMaxText);
  auto after = OptObservation(ctx, *doc, "after");
  absl::Status bad = !outcome.ok()  ? outcome.status()
                     : !detail.ok() ? detail.status()
                                    : after.status();
  if (bad.ok()) {
    if (*outcome == "verified") {
      v.set_outcome(writeback::v1::OUTCOME_VERIFIED);
    } else if (*outcome == "unverified") {
      v.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
    } else if (*outcome == "failed") {
      v.set_outcome(writeback::v1::OUTCOME_FAILED);
    } else {
      bad = absl::InvalidArgumentError(
          "'outcome' must be \"verified\", \"unverified\" or \"failed\"");
    }
  }
  if (!bad.ok()) return cannot_tell(Malformed(spec, "verify", bad.message()).message());
  v.set_detail(*detail);
  if (after->has_value()) *v.add_after() = std::move(**after);
  *v.add_after() = ProgramObservation(ctx, spec, r, "verify");
  return v;
}

absl::Status ExecConnector::Check(const CallContext& ctx) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  json req = {
      {"contract", std::string(kContract)}, {"verb", "check"}, {"connector_instance", name_}};
  exec::SubprocessSpec spec;
  WB_ASSIGN_OR_RETURN(const auto r, Run(ctx, "check", Dump(req), &spec));
  WB_RETURN_IF_ERROR(RunFailure(spec, r, "check"));
  WB_ASSIGN_OR_RETURN(const json doc, ParseResponse(spec, "check", r.out));
  auto ok = doc.find("ok");
  if (ok == doc.end() || !ok->is_boolean()) {
    return Malformed(spec, "check", "'ok' (a boolean) is required");
  }
  if (!ok->get<bool>()) {
    auto detail = OptString(doc, "detail", kMaxText);
    return absl::UnavailableError(absl::StrCat("exec program ", spec.program,
                                               " reports not ok: ", detail.ok() ? *detail : ""));
  }
  return absl::OkStatus();
}

}  // namespace wb::connectors
