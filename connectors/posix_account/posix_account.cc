#include "connectors/posix_account/posix_account.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "common/actions/actions.h"
#include "common/crypto/crypto.h"
#include "common/status/macros.h"
#include "connectors/probes/subprocess.h"
#include "connectors/util/connector_util.h"
#include "nlohmann/json.hpp"

namespace wb::connectors {
namespace {

using util::CheckDeadline;

using posix::AccountFiles;
using posix::AccountView;
using posix::GroupView;
using posix::PasswordState;

constexpr absl::string_view kType = "posix_account";
constexpr absl::string_view kStateMagic = "posix_account/v1";
constexpr absl::string_view kDefaultShell = "/usr/sbin/nologin";
constexpr absl::Duration kToolTimeout = absl::Seconds(60);
// chage -E 1: 1970-01-02. shadow(5) warns that 0 is read by some programs as
// "no expiry"; 1 is in the past for everyone.
constexpr absl::string_view kExpireDay = "1";

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

std::string JsonString(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return (it != j.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

int64_t Today(const CallContext& ctx) {
  return absl::ToUnixSeconds(ctx.clock->Now()) / 86400 -
         (absl::ToUnixSeconds(ctx.clock->Now()) < 0 ? 1 : 0);
}

std::string DayToDate(int64_t day) {
  const absl::CivilDay d = absl::CivilDay(1970, 1, 1) + day;
  return absl::FormatCivilTime(d);
}

std::string DescribeExpiry(const AccountView& v) {
  const auto day = v.ExpireDay();
  if (!day.has_value()) {
    return v.expire_days.empty() ? "never" : probes::PrintableAscii(v.expire_days, 32);
  }
  return absl::StrCat(DayToDate(*day), " (day ", *day, ")");
}

bool Contains(const std::vector<std::string>& v, absl::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string TargetShell(const Action& a) {
  const std::string& s = a.params.posix_account().shell();
  return s.empty() ? std::string(kDefaultShell) : s;
}

// The account's records that a plan depends on, without the password hash.
std::string AccountDigest(const AccountView& v) {
  const std::string canon = absl::StrCat(
      v.exists ? v.passwd_line : "-", "\n", v.has_shadow ? "shadow" : "-", ":",
      posix::PasswordStateName(v.password), ":", v.last_change, ":", v.min_days, ":", v.max_days,
      ":", v.warn_days, ":", v.inactive_days, ":", v.expire_days, "\n", v.primary_group, "\n",
      absl::StrJoin(v.groups, ","), "\n", absl::StrJoin(v.gshadow_groups, ","));
  return crypto::HexEncode(crypto::Sha256(canon));
}

// What the action needs, measured against the account as read.
struct Evaluation {
  bool compliant = false;
  std::string now;  // the relevant state, human-readable
  std::vector<std::string> changes;
  absl::Status blocked;  // FAILED_PRECONDITION: cannot act
};

Evaluation Evaluate(const Action& a, const AccountView& v, const GroupView& g, int64_t today) {
  Evaluation e;
  const std::string& user = v.name;
  const std::string& op = a.operation;
  if (!v.exists) {
    if (op == "delete" && v.has_shadow) {
      e.blocked = absl::FailedPreconditionError(absl::StrCat(
          "user ", user, " has a shadow entry but no passwd entry; repair with pwck first"));
      return e;
    }
    e.compliant = true;
    e.now = absl::StrCat("account ", user, " does not exist");
    return e;
  }
  if (v.uid == 0) {
    e.blocked = absl::FailedPreconditionError(
        absl::StrCat("account ", user, " has uid 0; posix_account never changes it"));
    return e;
  }
  if (op == "lock" || op == "expire") {
    if (!v.has_shadow) {
      e.blocked = absl::FailedPreconditionError(
          absl::StrCat("account ", user, " has no shadow entry; cannot ", op, " it"));
      return e;
    }
  }
  if (op == "lock") {
    e.compliant = v.password == PasswordState::kLocked;
    e.now = absl::StrCat("password of ", user, ": ", posix::PasswordStateName(v.password));
    if (!e.compliant) {
      e.changes.push_back(absl::StrCat(
          "lock the password of ", user, " (usermod -L; was ", posix::PasswordStateName(v.password),
          "); a password lock does not stop SSH key logins when sshd uses PAM"));
    }
  } else if (op == "expire") {
    e.compliant = v.ExpiredOn(today);
    e.now = absl::StrCat("account expiry of ", user, ": ", DescribeExpiry(v));
    if (!e.compliant) {
      e.changes.push_back(absl::StrCat("set the account expiry of ", user,
                                       " to 1970-01-02 (chage -E ", kExpireDay, "; was ",
                                       DescribeExpiry(v), ")"));
    }
  } else if (op == "set_shell") {
    const std::string target = TargetShell(a);
    e.compliant = v.shell == target;
    e.now = absl::StrCat("shell of ", user, ": ", v.shell);
    if (!e.compliant) {
      e.changes.push_back(absl::StrCat("set the shell of ", user, " from ",
                                       v.shell.empty() ? "(empty: /bin/sh)" : v.shell, " to ",
                                       target));
    }
  } else if (op == "remove_group") {
    const std::string& group = a.params.posix_account().group();
    const bool listed = Contains(v.groups, group) || Contains(v.gshadow_groups, group);
    e.now = absl::StrCat(
        "supplementary groups of ", user, ": ",
        v.groups.empty() ? "(none)" : probes::PrintableAscii(absl::StrJoin(v.groups, ","), 1024));
    if (g.exists && g.gid == v.gid) {
      e.blocked = absl::FailedPreconditionError(
          absl::StrCat("group ", group, " is the primary group of ", user,
                       "; remove_group only removes supplementary memberships"));
      return e;
    }
    e.compliant = !listed;
    if (!e.compliant) {
      e.changes.push_back(
          absl::StrCat("remove ", user, " from supplementary group ", group, " (gpasswd -d)"));
    }
  } else if (op == "delete") {
    const bool keep = a.params.posix_account().keep_home();
    e.now = absl::StrCat("account ", user, " exists (uid ", v.uid, ", home ", v.home, ")");
    e.changes.push_back(
        absl::StrCat("delete account ", user, " (uid ", v.uid, ")",
                     keep ? ", keeping its home directory"
                          : absl::StrCat(" with its home directory ", v.home, " and mail spool")));
  }
  return e;
}

writeback::v1::Observation Observe(const CallContext& ctx, const std::string& root,
                                   const AccountView& v, int64_t today) {
  writeback::v1::Observation obs;
  obs.set_check("read_account_databases");
  obs.set_subject(
      absl::StrCat(v.name, " in ", root == "/" ? "" : root, "/etc/{passwd,shadow,group,gshadow}"));
  obs.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  auto& f = *obs.mutable_facts();
  f["exists"] = v.exists ? "true" : "false";
  f["shadow_entry"] = v.has_shadow ? "true" : "false";
  if (v.exists) {
    f["uid"] = absl::StrCat(v.uid);
    f["gid"] = absl::StrCat(v.gid);
    f["home"] = probes::PrintableAscii(v.home, 512);
    f["shell"] = probes::PrintableAscii(v.shell, 512);
    f["primary_group"] = probes::PrintableAscii(v.primary_group, 256);
  }
  if (v.has_shadow) {
    f["password"] = std::string(posix::PasswordStateName(v.password));
    f["expire"] = probes::PrintableAscii(DescribeExpiry(v), 64);
    f["expired"] = v.ExpiredOn(today) ? "true" : "false";
    f["last_change"] = probes::PrintableAscii(v.last_change, 64);
  }
  f["groups"] = probes::PrintableAscii(absl::StrJoin(v.groups, ","), 4096);
  f["gshadow_groups"] = probes::PrintableAscii(absl::StrJoin(v.gshadow_groups, ","), 4096);
  if (v.skipped_lines > 0) f["skipped_lines"] = absl::StrCat(v.skipped_lines);
  obs.set_detail(
      absl::StrCat(v.exists ? absl::StrCat("account ", v.name, " uid ", v.uid, " shell ",
                                           probes::PrintableAscii(v.shell, 200))
                            : absl::StrCat("account ", v.name, " does not exist"),
                   v.has_shadow ? absl::StrCat("; password ", posix::PasswordStateName(v.password),
                                               "; expiry ", DescribeExpiry(v))
                                : "",
                   "; groups [", probes::PrintableAscii(absl::StrJoin(v.groups, ","), 1024), "]"));
  return obs;
}

// The before-state for a later rollback (no secret in it).
nlohmann::json BeforeState(const AccountView& v) {
  nlohmann::json b;
  b["exists"] = v.exists;
  if (v.exists) {
    b["passwd_line"] = probes::PrintableAscii(v.passwd_line, 4096);
    b["shell"] = probes::PrintableAscii(v.shell, 512);
    b["home"] = probes::PrintableAscii(v.home, 512);
  }
  b["password"] = std::string(posix::PasswordStateName(v.password));
  b["expire_days"] = v.expire_days;
  b["groups"] = v.groups;
  b["gshadow_groups"] = v.gshadow_groups;
  return b;
}

bool PathExists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

bool IsExecutable(const std::string& p) { return ::access(p.c_str(), X_OK) == 0; }

// Whether removing `home` with the account could hit something that is not
// the account's own: "/", a top-level directory, or a directory another
// account's home equals or lies in (or that lies in another's).
absl::Status CheckHomeSafeToRemove(const AccountFiles& files, const AccountView& v) {
  const std::string& home = v.home;
  std::vector<absl::string_view> parts = absl::StrSplit(home, '/', absl::SkipEmpty());
  if (home.empty() || home[0] != '/' || parts.size() < 2) {
    return absl::FailedPreconditionError(absl::StrCat(
        "home directory '", probes::PrintableAscii(home, 200), "' of ", v.name,
        " is not a safe directory to remove (fewer than two path components); use keep_home"));
  }
  for (absl::string_view p : parts) {
    if (p == "." || p == "..") {
      return absl::FailedPreconditionError(
          absl::StrCat("home directory of ", v.name, " contains '.' or '..'; use keep_home"));
    }
  }
  for (const auto& [other_home, other] : posix::HomeDirectories(files)) {
    if (other == v.name || other_home.empty()) continue;
    const bool same = other_home == home;
    const bool inside = absl::StartsWith(other_home, home + "/");
    const bool outside = absl::StartsWith(home, other_home + "/") && other_home != "/";
    if (same || inside || outside) {
      return absl::FailedPreconditionError(
          absl::StrCat("home directory ", probes::PrintableAscii(home, 200), " of ", v.name,
                       " overlaps the home of account ", other, "; use keep_home"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> PosixAccountConnector::Create(
    const writeback::v1::ConnectorInstanceConfig& cfg) {
  const std::string where = absl::StrCat("connectors[", cfg.name(), "].posix_account");
  if (cfg.settings_case() != writeback::v1::ConnectorInstanceConfig::kPosixAccount) {
    return Invalid(where,
                   "missing: a connector of type posix_account needs posix_account settings");
  }
  const auto& s = cfg.posix_account();
  std::string root = s.root().empty() ? "/" : s.root();
  WB_RETURN_IF_ERROR(actions::ValidateText(where + ".root", root, 4096, false));
  if (root[0] != '/') return Invalid(where + ".root", "must be an absolute path");
  for (absl::string_view c : absl::StrSplit(root, '/', absl::SkipEmpty())) {
    if (c == "." || c == "..") return Invalid(where + ".root", "must not contain '.' or '..'");
  }
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  for (int i = 0; i < s.allowed_users_size(); ++i) {
    WB_RETURN_IF_ERROR(actions::ValidatePosixUserName(
        absl::StrCat(where, ".allowed_users[", i, "]"), s.allowed_users(i)));
  }
  Tools tools{"/usr/sbin/usermod", "/usr/bin/chage", "/usr/bin/gpasswd", "/usr/sbin/userdel"};
  if (!s.tools_dir().empty()) {
    WB_RETURN_IF_ERROR(actions::ValidateText(where + ".tools_dir", s.tools_dir(), 4096, false));
    if (s.tools_dir()[0] != '/') return Invalid(where + ".tools_dir", "must be an absolute path");
    const std::string d = s.tools_dir();
    tools = {d + "/usermod", d + "/chage", d + "/gpasswd", d + "/userdel"};
  }
  std::optional<probes::SshEndpoint> probe;
  if (s.has_probe()) {
    const std::string pf = where + ".probe.";
    WB_ASSIGN_OR_RETURN(probe, probes::EndpointFromConfig(s.probe(), pf));
    const std::string& t = s.probe().identity_file_template();
    if (t.empty()) return Invalid(pf + "identity_file_template", "required");
    WB_RETURN_IF_ERROR(actions::ValidateText(pf + "identity_file_template", t, 4096, false));
    if (t[0] != '/') return Invalid(pf + "identity_file_template", "must be an absolute path");
  }
  return std::unique_ptr<Connector>(new PosixAccountConnector(cfg.name(), s, std::move(root),
                                                              std::move(tools), std::move(probe)));
}

absl::Status PosixAccountConnector::ValidateAndAuthorize(const Action& action) const {
  WB_RETURN_IF_ERROR(actions::ValidateAction(kType, action.operation, action.params));
  WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, action.object, "target"));
  if (cfg_.allowed_users_size() > 0 &&
      !Contains({cfg_.allowed_users().begin(), cfg_.allowed_users().end()}, action.object)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "target: user '", action.object, "' is not in allowed_users of connector ", name_));
  }
  return absl::OkStatus();
}

std::string PosixAccountConnector::HostPath(const std::string& path_in_root) const {
  return root_ == "/" ? path_in_root : root_ + path_in_root;
}

std::vector<std::string> PosixAccountConnector::ToolArgv(const std::string& tool) const {
  std::vector<std::string> argv;
  if (tool == "usermod") argv = {tools_.usermod};
  if (tool == "userdel") argv = {tools_.userdel};
  if (tool == "chage") argv = {tools_.chage};
  if (tool == "gpasswd") argv = {tools_.gpasswd};
  if (root_ != "/") {
    if (tool == "usermod" || tool == "userdel") argv.insert(argv.end(), {"-P", root_});
    if (tool == "chage") argv.insert(argv.end(), {"-R", root_});
    if (tool == "gpasswd") argv.insert(argv.end(), {"-Q", root_});
  }
  return argv;
}

std::vector<std::string> PosixAccountConnector::ApplyArgv(const Action& a) const {
  const std::string& user = a.object;
  std::vector<std::string> argv;
  if (a.operation == "lock") {
    argv = ToolArgv("usermod");
    argv.insert(argv.end(), {"-L", "--", user});
  } else if (a.operation == "expire") {
    argv = ToolArgv("chage");
    argv.insert(argv.end(), {"-E", std::string(kExpireDay), "--", user});
  } else if (a.operation == "set_shell") {
    argv = ToolArgv("usermod");
    argv.insert(argv.end(), {"-s", TargetShell(a), "--", user});
  } else if (a.operation == "remove_group") {
    argv = ToolArgv("gpasswd");
    argv.insert(argv.end(), {"-d", user, "--", a.params.posix_account().group()});
  } else if (a.operation == "delete") {
    argv = ToolArgv("userdel");
    if (!a.params.posix_account().keep_home()) argv.push_back("-r");
    argv.insert(argv.end(), {"--", user});
  }
  return argv;
}

absl::StatusOr<writeback::v1::Plan> PosixAccountConnector::PlanChange(const CallContext& ctx,
                                                                      const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(ValidateAndAuthorize(action));
  WB_ASSIGN_OR_RETURN(const AccountFiles files, posix::ReadAccountFiles(root_));
  const AccountView v = posix::DescribeAccount(files, action.object);
  const GroupView g = posix::DescribeGroup(files, action.params.posix_account().group());
  const int64_t today = Today(ctx);
  Evaluation e = Evaluate(action, v, g, today);
  if (!e.blocked.ok()) return e.blocked;
  if (action.operation == "delete" && v.exists && !action.params.posix_account().keep_home() &&
      PathExists(HostPath(v.home))) {
    WB_RETURN_IF_ERROR(CheckHomeSafeToRemove(files, v));
  }

  writeback::v1::Plan plan;
  *plan.add_before() = Observe(ctx, root_, v, today);
  plan.set_no_change(e.compliant);
  for (auto& c : e.changes) plan.add_changes(std::move(c));
  plan.set_summary(e.compliant ? absl::StrCat("nothing to do: ", e.now)
                               : absl::StrCat(action.operation, " ", action.object, ": ", e.now));
  nlohmann::json state;
  state["magic"] = std::string(kStateMagic);
  state["root"] = root_;
  state["user"] = action.object;
  state["operation"] = action.operation;
  state["digest"] = AccountDigest(v);
  state["before"] = BeforeState(v);
  plan.set_state(state.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return plan;
}

absl::StatusOr<writeback::v1::ApplyResult> PosixAccountConnector::Apply(
    const CallContext& ctx, const Action& action, const writeback::v1::Plan& plan) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(ValidateAndAuthorize(action));
  const nlohmann::json state = nlohmann::json::parse(plan.state(), nullptr, false);
  if (!state.is_object() || JsonString(state, "magic") != kStateMagic) {
    return Invalid("plan.state", "not a plan made by a posix_account connector");
  }
  if (JsonString(state, "root") != root_ || JsonString(state, "user") != action.object ||
      JsonString(state, "operation") != action.operation) {
    return Invalid("plan.state", "plan is for another root, user or operation");
  }

  absl::MutexLock lock(&apply_mu_);
  WB_ASSIGN_OR_RETURN(const AccountFiles files, posix::ReadAccountFiles(root_));
  const AccountView v = posix::DescribeAccount(files, action.object);
  if (AccountDigest(v) != JsonString(state, "digest")) {
    return absl::FailedPreconditionError(
        absl::StrCat("account ", action.object, " changed since plan"));
  }
  const GroupView g = posix::DescribeGroup(files, action.params.posix_account().group());
  const int64_t today = Today(ctx);
  const Evaluation e = Evaluate(action, v, g, today);
  if (!e.blocked.ok()) return e.blocked;
  writeback::v1::ApplyResult result;
  if (e.compliant) return result;
  const bool remove_home = action.operation == "delete" &&
                           !action.params.posix_account().keep_home() &&
                           PathExists(HostPath(v.home));
  if (remove_home) WB_RETURN_IF_ERROR(CheckHomeSafeToRemove(files, v));

  const std::vector<std::string> argv = ApplyArgv(action);
  WB_RETURN_IF_ERROR(
      probes::RunToolOk(argv, probes::TimeLeft(ctx.deadline, ctx.clock->Now(), kToolTimeout))
          .status());

  // Exit code 0 is not proof: read the databases again.
  WB_ASSIGN_OR_RETURN(const AccountFiles after_files, posix::ReadAccountFiles(root_));
  const AccountView after = posix::DescribeAccount(after_files, action.object);
  const Evaluation check =
      Evaluate(action, after,
               posix::DescribeGroup(after_files, action.params.posix_account().group()), today);
  if (!check.compliant) {
    return absl::InternalError(absl::StrCat(argv[0], " exited 0 but ", check.now));
  }
  if (remove_home && PathExists(HostPath(v.home))) {
    return absl::InternalError(absl::StrCat("userdel exited 0 but the home directory ",
                                            probes::PrintableAscii(HostPath(v.home), 300),
                                            " still exists"));
  }
  for (const auto& c : e.changes) {
    result.add_changes(absl::StrCat("done: ", c));
  }
  return result;
}

absl::StatusOr<writeback::v1::Verification> PosixAccountConnector::Verify(const CallContext& ctx,
                                                                          const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(ValidateAndAuthorize(action));
  WB_ASSIGN_OR_RETURN(const AccountFiles files, posix::ReadAccountFiles(root_));
  const AccountView v = posix::DescribeAccount(files, action.object);
  const GroupView g = posix::DescribeGroup(files, action.params.posix_account().group());
  const int64_t today = Today(ctx);
  const Evaluation e = Evaluate(action, v, g, today);
  writeback::v1::Verification out;
  *out.add_after() = Observe(ctx, root_, v, today);
  if (!e.blocked.ok()) {
    out.set_outcome(writeback::v1::OUTCOME_FAILED);
    out.set_detail(std::string(e.blocked.message()));
    return out;
  }
  bool db_ok = e.compliant;
  std::string detail = absl::StrCat("read the account databases: ", e.now);
  if (db_ok && action.operation == "delete") {
    // A deleted account must also be gone from every member list.
    db_ok = !v.has_shadow && v.groups.empty() && v.gshadow_groups.empty();
    if (!db_ok) {
      detail = absl::StrCat("account ", action.object,
                            " has no passwd entry but is still listed in shadow or a group");
    } else {
      absl::StrAppend(&detail, "; no shadow entry and in no group",
                      action.params.posix_account().keep_home()
                          ? ""
                          : " (the home directory is checked by apply, where its path is known)");
    }
  }
  if (!db_ok) {
    out.set_outcome(writeback::v1::OUTCOME_FAILED);
    out.set_detail(detail);
    return out;
  }
  out.set_outcome(writeback::v1::OUTCOME_VERIFIED);
  if (action.operation == "lock") {
    absl::StrAppend(&detail,
                    " (a password lock alone does not stop SSH key logins when sshd uses PAM)");
  }
  if (action.operation == "set_shell") {
    absl::StrAppend(&detail, " (a no-login shell does not stop SSH port forwarding)");
  }

  const bool probe_applies = action.operation != "remove_group";
  if (probe_.has_value() && probe_applies) {
    const std::string identity =
        absl::StrReplaceAll(cfg_.probe().identity_file_template(), {{"{user}", action.object}});
    if (!PathExists(identity)) {
      absl::StrAppend(&detail, "; ssh probe skipped: no identity file for ", action.object);
    } else {
      const absl::Duration budget = probes::TimeLeft(
          ctx.deadline, ctx.clock->Now(), probe_->connect_timeout * 2 + absl::Seconds(10));
      auto probe = probes::ProbeLogin(*probe_, action.object, identity, budget);
      if (!probe.ok()) {
        out.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
        absl::StrAppend(&detail, "; the ssh probe could not run: ",
                        probes::PrintableAscii(probe.status().message(), 300));
      } else {
        *out.add_after() = probes::ToObservation(*probe, ctx.clock->NowUnixMs());
        absl::StrAppend(&detail, "; ", probe->summary);
        switch (probe->verdict) {
          case probes::SshVerdict::kRefused:
          case probes::SshVerdict::kSessionRefused:
            break;
          case probes::SshVerdict::kAccepted:
            out.set_outcome(writeback::v1::OUTCOME_FAILED);
            absl::StrAppend(&detail, action.operation == "lock"
                                         ? ": the password is locked but sshd still lets the "
                                           "key in (UsePAM yes ignores password locks); use "
                                           "expire to stop key logins"
                                         : ": the old access still works");
            break;
          case probes::SshVerdict::kUnreachable:
            out.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
            break;
        }
      }
    }
  }
  out.set_detail(detail);
  return out;
}

absl::Status PosixAccountConnector::Check(const CallContext& ctx) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(posix::ReadAccountFiles(root_).status());
  for (const std::string* t : {&tools_.usermod, &tools_.chage, &tools_.gpasswd, &tools_.userdel}) {
    if (!IsExecutable(*t)) {
      return absl::FailedPreconditionError(absl::StrCat(*t, " is missing or not executable"));
    }
  }
  return absl::OkStatus();
}

}  // namespace wb::connectors
