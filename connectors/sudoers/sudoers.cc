#include "connectors/sudoers/sudoers.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/actions/actions.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "connectors/probes/subprocess.h"
#include "connectors/sudoers/sudoers_file.h"
#include "connectors/util/connector_util.h"
#include "connectors/util/safe_file.h"
#include "nlohmann/json.hpp"

namespace wb::connectors {
namespace {

using util::CheckDeadline;

constexpr absl::string_view kType = "sudoers";
constexpr absl::string_view kStateMagic = "sudoers/v1";
constexpr absl::string_view kAbsent = "absent";
constexpr absl::Duration kToolTimeout = absl::Seconds(30);
constexpr size_t kMaxDropIn = 1 << 20;
constexpr size_t kMaxRollbackBytes = 256 << 10;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Duration ToolTime(const CallContext& ctx) {
  return probes::TimeLeft(ctx.deadline, ctx.clock->Now(), kToolTimeout);
}

std::string JsonString(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return (it != j.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

struct Observed {
  util::ParentDir parent;
  util::FileSnapshot file;
  std::string digest_hex;
  std::string path;
};

absl::StatusOr<Observed> Observe(const std::string& dir, const std::string& name) {
  Observed o;
  util::FileLocation loc{dir, {name}};
  o.path = loc.Display();
  WB_ASSIGN_OR_RETURN(o.parent, util::OpenParentNoFollow(loc));
  if (o.parent.missing) {
    return absl::FailedPreconditionError(absl::StrCat("sudoers directory ", dir, " is missing"));
  }
  WB_ASSIGN_OR_RETURN(o.file,
                      util::ReadRegularFileAt(o.parent.dir.get(), name, o.path, kMaxDropIn));
  o.digest_hex =
      o.file.exists ? crypto::HexEncode(crypto::Sha256(o.file.content)) : std::string(kAbsent);
  return o;
}

int CountRules(absl::string_view content) {
  int n = 0;
  for (const auto& l : sudoers::ParseSudoers(content)) {
    if (l.kind == sudoers::LineKind::kUserSpec) ++n;
  }
  return n;
}

writeback::v1::Observation ReadObservation(const CallContext& ctx, const Observed& o,
                                           const sudoers::UserEdit* edit) {
  writeback::v1::Observation obs;
  obs.set_check("parse_dropin");
  obs.set_subject(probes::PrintableAscii(o.path, 1024));
  obs.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  auto& f = *obs.mutable_facts();
  f["file_present"] = o.file.exists ? "true" : "false";
  f["sha256"] = o.digest_hex;
  if (o.file.exists) {
    f["mode"] = absl::StrFormat("%04o", o.file.mode & 07777);  // octal, as ls and chmod show it
    f["owner_uid"] = absl::StrCat(o.file.uid);
    f["rules"] = absl::StrCat(CountRules(o.file.content));
  }
  if (edit != nullptr) {
    f["direct_references"] = absl::StrCat(edit->direct_refs);
    f["indirect_references"] = absl::StrCat(edit->indirect.size());
    if (!edit->indirect.empty()) f["indirect"] = absl::StrJoin(edit->indirect, "\n");
  }
  obs.set_detail(o.file.exists ? absl::StrCat(o.path, ": ", CountRules(o.file.content), " rules")
                               : absl::StrCat(o.path, " does not exist"));
  return obs;
}

// Runs `visudo -c -q -f` on `content` written to a private scratch file.
absl::Status VisudoCheck(const CallContext& ctx, const std::string& visudo,
                         const std::string& content, absl::string_view what) {
  WB_ASSIGN_OR_RETURN(const probes::ScratchDir scratch, probes::ScratchDir::Make("", "wb-sudoers"));
  const std::string file = scratch.path() + "/check";
  WB_RETURN_IF_ERROR(fs::WriteFileAtomic(file, content, {.mode = 0440}));
  probes::SubprocessOptions opts;
  opts.timeout = ToolTime(ctx);
  WB_ASSIGN_OR_RETURN(const probes::SubprocessResult r,
                      probes::RunSubprocess({visudo, "-c", "-q", "-f", file}, opts));
  if (r.timed_out || r.exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " does not pass visudo -c (exit ", r.exit_code,
                     "): ", probes::PrintableAscii(absl::StrCat(r.out, r.err), 512)));
  }
  return absl::OkStatus();
}

// The user's groups as this host's NSS (and so sudo) sees them; names that
// could not be passed to a cvtsudoers filter (',' or '=') are skipped.
std::vector<std::string> UserGroups(const std::string& user) {
  std::vector<std::string> out;
  std::vector<char> buf(16384);
  passwd pw;
  passwd* found = nullptr;
  if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return out;
  }
  int n = 64;
  std::vector<gid_t> gids(static_cast<size_t>(n));
  if (::getgrouplist(user.c_str(), pw.pw_gid, gids.data(), &n) < 0) {
    gids.resize(static_cast<size_t>(n));
    if (::getgrouplist(user.c_str(), pw.pw_gid, gids.data(), &n) < 0) return out;
  }
  gids.resize(static_cast<size_t>(n));
  for (gid_t gid : gids) {
    group gr;
    group* g = nullptr;
    std::vector<char> gbuf(65536);
    if (::getgrgid_r(gid, &gr, gbuf.data(), gbuf.size(), &g) != 0 || g == nullptr) continue;
    const std::string name = g->gr_name;
    if (name.empty() || name.find_first_of(",= \t\n") != std::string::npos) continue;
    out.push_back(name);
  }
  return out;
}

// What sudo's own parser says the drop-in alone grants `user` (and the
// user's groups).
struct CvtResult {
  bool ran = false;
  std::vector<std::string> rules;  // user specifications still matching
  writeback::v1::Observation obs;
  std::string error;
};

CvtResult CvtsudoersForUser(const CallContext& ctx, const std::string& cvtsudoers,
                            const std::string& path, const std::string& content,
                            const std::string& user) {
  CvtResult c;
  c.obs.set_check("cvtsudoers_dropin");
  c.obs.set_subject(probes::PrintableAscii(path, 1024));
  c.obs.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  auto scratch = probes::ScratchDir::Make("", "wb-sudoers");
  if (!scratch.ok()) {
    c.error = std::string(scratch.status().message());
    return c;
  }
  const std::string file = scratch->path() + "/dropin";
  if (auto s = fs::WriteFileAtomic(file, content, {.mode = 0440}); !s.ok()) {
    c.error = std::string(s.message());
    return c;
  }
  probes::SubprocessOptions opts;
  opts.timeout = ToolTime(ctx);
  std::string filter = absl::StrCat("user=", user);
  const std::vector<std::string> groups = UserGroups(user);
  for (const auto& g : groups) absl::StrAppend(&filter, ",group=", g);
  auto r = probes::RunSubprocess({cvtsudoers, "-f", "sudoers", "-m", filter, "--", file}, opts);
  if (!r.ok()) {
    c.error = std::string(r.status().message());
    return c;
  }
  auto& f = *c.obs.mutable_facts();
  f["groups"] = probes::PrintableAscii(absl::StrJoin(groups, ","), 2048);
  f["exit_code"] = absl::StrCat(r->exit_code);
  f["output"] = probes::PrintableAscii(r->out, 2048);
  if (r->timed_out || r->exit_code != 0) {
    c.error =
        absl::StrCat("cvtsudoers exited ", r->exit_code, ": ", probes::PrintableAscii(r->err, 512));
    f["error"] = c.error;
    return c;
  }
  c.ran = true;
  for (const auto& l : sudoers::ParseSudoers(r->out)) {
    if (l.kind == sudoers::LineKind::kUserSpec) c.rules.push_back(sudoers::LineText(r->out, l));
  }
  f["matching_rules"] = absl::StrCat(c.rules.size());
  c.obs.set_detail(c.rules.empty()
                       ? absl::StrCat("sudo's parser finds no rule for ", user, " in the drop-in")
                       : absl::StrCat("sudo's parser still matches ", c.rules.size(), " rules for ",
                                      user, ": ", absl::StrJoin(c.rules, " | ")));
  return c;
}

// The drop-in cannot be read safely (a symbolic link, larger than
// kMaxDropIn, ...): that is "cannot tell" (Verify returns the read error),
// unless sudo provably still reads a file under this name that undoes the
// effect. sudo (1.9) reads every entry of its includedir whose stat(2) —
// following symlinks — is a regular file, and only if that file passes its
// ownership check with the default sudoers_uid/sudoers_gid (owned by uid 0,
// not world-writable, group-writable only with gid 0); it does not care
// about the size. If such a file is there:
//   - remove_file: the drop-in is back (as for a regular file, whatever it
//     holds): FAILED;
//   - remove_user_rules: FAILED if what it holds still names the user or
//     sudo's parser still matches the user in it; otherwise nullopt (the
//     content was read through a link that can be swapped: no VERIFIED).
// Returns nullopt whenever that cannot be shown.
std::optional<writeback::v1::Verification> SudoStillReads(const CallContext& ctx,
                                                          const std::string& dir,
                                                          const std::string& cvtsudoers,
                                                          const Action& action) {
  const util::FileLocation loc{dir, {action.object}};
  auto parent = util::OpenParentNoFollow(loc);
  if (!parent.ok() || parent->missing) return std::nullopt;
  const int dfd = parent->dir.get();
  const char* name = parent->file_name.c_str();
  struct stat lst, st;
  if (::fstatat(dfd, name, &lst, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
  // Stat before opening: never open a device or FIFO a link points at.
  if (::fstatat(dfd, name, &st, 0) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  const bool is_link = S_ISLNK(lst.st_mode);
  // A regular file Observe refused: only its size is known to be why.
  if (!is_link && static_cast<size_t>(st.st_size) <= kMaxDropIn) return std::nullopt;
  std::string target;
  if (is_link) {
    target.assign(4096, '\0');
    const ssize_t n = ::readlinkat(dfd, name, target.data(), target.size() - 1);
    target.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  std::string content;
  const bool user_rules = action.operation == "remove_user_rules";
  if (user_rules) {
    util::UniqueFd fd(::openat(dfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    char buf[65536];
    while (content.size() <= kMaxDropIn) {
      const ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      content.append(buf, static_cast<size_t>(n));
    }
    if (content.size() > kMaxDropIn) return std::nullopt;
  }
  const bool sudo_reads = st.st_uid == 0 && (st.st_mode & S_IWOTH) == 0 &&
                          ((st.st_mode & S_IWGRP) == 0 || st.st_gid == 0);
  if (!sudo_reads) return std::nullopt;

  const std::string path = loc.Display();
  const std::string what = absl::StrCat(
      path,
      is_link ? absl::StrCat(" is a symbolic link to '", probes::PrintableAscii(target, 512), "'")
              : absl::StrCat(" is larger than ", kMaxDropIn, " bytes"),
      ", a file sudo reads (regular, owner uid ", st.st_uid, ", gid ", st.st_gid, ", mode ",
      absl::StrFormat("%04o", st.st_mode & 07777), ")");
  writeback::v1::Verification v;
  writeback::v1::Observation obs;
  obs.set_check("stat_dropin_as_sudo");
  obs.set_subject(probes::PrintableAscii(path, 1024));
  obs.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  auto& f = *obs.mutable_facts();
  f["symlink"] = is_link ? "true" : "false";
  if (is_link) f["symlink_target"] = probes::PrintableAscii(target, 1024);
  f["size"] = absl::StrCat(st.st_size);
  f["owner_uid"] = absl::StrCat(st.st_uid);
  f["owner_gid"] = absl::StrCat(st.st_gid);
  f["mode"] = absl::StrFormat("%04o", st.st_mode & 07777);
  f["sudo_reads"] = "true";
  if (!user_rules) {
    obs.set_detail(what);
    *v.add_after() = std::move(obs);
    v.set_outcome(writeback::v1::OUTCOME_FAILED);
    v.set_detail(absl::StrCat(what, ": the drop-in is back (checks: stat_dropin_as_sudo)"));
    return v;
  }
  const std::string& user = action.params.sudoers().user();
  const sudoers::UserEdit edit = sudoers::RemoveUser(content, user);
  f["sha256"] = crypto::HexEncode(crypto::Sha256(content));
  f["direct_references"] = absl::StrCat(edit.direct_refs);
  obs.set_detail(what);
  *v.add_after() = std::move(obs);
  if (edit.direct_refs > 0) {
    v.set_outcome(writeback::v1::OUTCOME_FAILED);
    v.set_detail(absl::StrCat(what, ", and it still names ", user, " ", edit.direct_refs,
                              " times (checks: stat_dropin_as_sudo)"));
    return v;
  }
  CvtResult cvt = CvtsudoersForUser(ctx, cvtsudoers, path, content, user);
  if (!cvt.ran || cvt.rules.empty()) return std::nullopt;
  *v.add_after() = cvt.obs;
  v.set_outcome(writeback::v1::OUTCOME_FAILED);
  v.set_detail(absl::StrCat(what, ", and sudo still matches ", user,
                            " there through: ", absl::StrJoin(cvt.rules, " | "),
                            " (checks: stat_dropin_as_sudo, cvtsudoers_dropin)"));
  return v;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> SudoersConnector::Create(
    const writeback::v1::ConnectorInstanceConfig& cfg) {
  const std::string where = absl::StrCat("connectors[", cfg.name(), "].sudoers");
  if (cfg.settings_case() != writeback::v1::ConnectorInstanceConfig::kSudoers) {
    return Invalid(where, "missing: a connector of type sudoers needs sudoers settings");
  }
  const auto& s = cfg.sudoers();
  std::string dir = s.sudoers_dir().empty() ? "/etc/sudoers.d" : s.sudoers_dir();
  WB_RETURN_IF_ERROR(actions::ValidateText(where + ".sudoers_dir", dir, 4096, false));
  if (dir[0] != '/') return Invalid(where + ".sudoers_dir", "must be an absolute path");
  for (absl::string_view c : absl::StrSplit(dir, '/', absl::SkipEmpty())) {
    if (c == "." || c == "..")
      return Invalid(where + ".sudoers_dir", "must not contain '.' or '..'");
  }
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::string visudo = "/usr/sbin/visudo", cvt = "/usr/bin/cvtsudoers", sudo = "/usr/bin/sudo";
  if (!s.tools_dir().empty()) {
    WB_RETURN_IF_ERROR(actions::ValidateText(where + ".tools_dir", s.tools_dir(), 4096, false));
    if (s.tools_dir()[0] != '/') return Invalid(where + ".tools_dir", "must be an absolute path");
    visudo = s.tools_dir() + "/visudo";
    cvt = s.tools_dir() + "/cvtsudoers";
    sudo = s.tools_dir() + "/sudo";
  }
  return std::unique_ptr<Connector>(new SudoersConnector(
      cfg.name(), std::move(dir), std::move(visudo), std::move(cvt), std::move(sudo)));
}

bool SudoersConnector::SudoReadsDirectory() const {
  struct stat a, b;
  if (::stat(dir_.c_str(), &a) != 0 || ::stat("/etc/sudoers.d", &b) != 0) return false;
  if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) return false;
  auto main = fs::ReadFile("/etc/sudoers", 1 << 20);
  if (!main.ok()) return false;
  for (absl::string_view line : absl::StrSplit(*main, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line == "@includedir /etc/sudoers.d" || line == "#includedir /etc/sudoers.d") return true;
  }
  return false;
}

absl::StatusOr<writeback::v1::Plan> SudoersConnector::PlanChange(const CallContext& ctx,
                                                                 const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(actions::ValidateAction(kType, action.operation, action.params));
  WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, action.object, "target"));
  WB_ASSIGN_OR_RETURN(const Observed o, Observe(dir_, action.object));
  writeback::v1::Plan plan;
  nlohmann::json state;
  state["magic"] = std::string(kStateMagic);
  state["path"] = o.path;
  state["operation"] = action.operation;
  state["sha256"] = o.digest_hex;
  if (o.file.exists && o.file.content.size() <= kMaxRollbackBytes) {
    state["before_content_base64"] = crypto::Base64Encode(o.file.content);
    state["before_mode"] = o.file.mode;
    state["before_uid"] = o.file.uid;
    state["before_gid"] = o.file.gid;
  }
  if (action.operation == "remove_file") {
    *plan.add_before() = ReadObservation(ctx, o, nullptr);
    plan.set_no_change(!o.file.exists);
    if (o.file.exists) {
      plan.add_changes(
          absl::StrCat("delete drop-in ", o.path, " (", CountRules(o.file.content), " rules)"));
      for (const auto& l : sudoers::ParseSudoers(o.file.content)) {
        if (l.kind == sudoers::LineKind::kUserSpec || l.kind == sudoers::LineKind::kAlias) {
          state["removed_lines"].push_back(sudoers::LineText(o.file.content, l, 1024));
        }
      }
      plan.set_summary(absl::StrCat("delete ", o.path));
    } else {
      plan.set_summary(absl::StrCat(o.path, " does not exist: nothing to delete"));
    }
  } else {
    const std::string& user = action.params.sudoers().user();
    const sudoers::UserEdit edit = sudoers::RemoveUser(o.file.content, user);
    *plan.add_before() = ReadObservation(ctx, o, &edit);
    plan.set_no_change(edit.direct_refs == 0);
    for (const auto& c : edit.changes) {
      plan.add_changes(c);
      state["removed_lines"].push_back(c);
    }
    state["user"] = user;
    std::string summary =
        !o.file.exists ? absl::StrCat(o.path, " does not exist: no rules for ", user)
        : edit.direct_refs == 0
            ? absl::StrCat("no rule in ", o.path, " names ", user)
            : absl::StrCat("remove ", edit.direct_refs, " references to ", user, " from ", o.path);
    if (!edit.indirect.empty()) {
      absl::StrAppend(&summary, "; ", edit.indirect.size(),
                      " rules may still cover it indirectly and are not changed: ",
                      absl::StrJoin(edit.indirect, " | "));
    }
    plan.set_summary(summary);
  }
  plan.set_state(state.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return plan;
}

absl::StatusOr<writeback::v1::ApplyResult> SudoersConnector::Apply(
    const CallContext& ctx, const Action& action, const writeback::v1::Plan& plan) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(actions::ValidateAction(kType, action.operation, action.params));
  WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, action.object, "target"));
  const nlohmann::json state = nlohmann::json::parse(plan.state(), nullptr, false);
  if (!state.is_object() || JsonString(state, "magic") != kStateMagic) {
    return Invalid("plan.state", "not a plan made by a sudoers connector");
  }
  absl::MutexLock lock(&apply_mu_);
  WB_ASSIGN_OR_RETURN(const Observed o, Observe(dir_, action.object));
  if (JsonString(state, "path") != o.path || JsonString(state, "operation") != action.operation) {
    return Invalid("plan.state", "plan is for another drop-in or operation");
  }
  if (JsonString(state, "sha256") != o.digest_hex) {
    return absl::FailedPreconditionError(
        absl::StrCat(o.path, ": drop-in changed since plan (planned sha256 ",
                     JsonString(state, "sha256"), ", now ", o.digest_hex, ")"));
  }
  writeback::v1::ApplyResult result;
  if (!o.file.exists) return result;
  if (action.operation == "remove_file") {
    if (::unlinkat(o.parent.dir.get(), o.parent.file_name.c_str(), 0) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("unlink ", o.path));
    }
    if (::fsync(o.parent.dir.get()) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("fsync directory of ", o.path));
    }
    result.add_changes(absl::StrCat("deleted drop-in ", o.path));
    return result;
  }
  const std::string& user = action.params.sudoers().user();
  if (JsonString(state, "user") != user) {
    return Invalid("plan.state", "plan is for another user");
  }
  const sudoers::UserEdit edit = sudoers::RemoveUser(o.file.content, user);
  if (edit.direct_refs == 0) return result;
  WB_RETURN_IF_ERROR(VisudoCheck(ctx, visudo_, o.file.content, "the drop-in before the edit"));
  if (auto s = VisudoCheck(ctx, visudo_, edit.new_content, "the edited drop-in"); !s.ok()) {
    return absl::InternalError(absl::StrCat("refusing to write: ", s.message()));
  }
  WB_RETURN_IF_ERROR(util::ReplaceFileAt(o.parent.dir.get(), o.parent.file_name, edit.new_content,
                                         o.file.mode, o.file.uid, o.file.gid, o.path));
  WB_ASSIGN_OR_RETURN(const Observed after, Observe(dir_, action.object));
  if (!after.file.exists || after.file.content != edit.new_content) {
    return absl::InternalError(
        absl::StrCat(o.path, " does not hold the new content after the write"));
  }
  for (const auto& c : edit.changes) result.add_changes(absl::StrCat(o.path, " ", c));
  return result;
}

absl::StatusOr<writeback::v1::Verification> SudoersConnector::Verify(const CallContext& ctx,
                                                                     const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(actions::ValidateAction(kType, action.operation, action.params));
  WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, action.object, "target"));
  auto observed = Observe(dir_, action.object);
  if (!observed.ok()) {
    // A drop-in it will not read (symlink, FIFO, too large, unreadable) is
    // "cannot tell" (the error: UNVERIFIED), unless sudo provably still
    // reads a file under that name that undoes the effect.
    if (auto drift = SudoStillReads(ctx, dir_, cvtsudoers_, action); drift.has_value()) {
      return *drift;
    }
    return observed.status();
  }
  const Observed& o = *observed;
  writeback::v1::Verification v;
  if (action.operation == "remove_file") {
    *v.add_after() = ReadObservation(ctx, o, nullptr);
    v.set_outcome(o.file.exists ? writeback::v1::OUTCOME_FAILED : writeback::v1::OUTCOME_VERIFIED);
    v.set_detail(
        o.file.exists
            ? absl::StrCat(o.path, " still exists (", CountRules(o.file.content), " rules)")
            : absl::StrCat("read ", dir_, ": ", o.path, " does not exist (checks: parse_dropin)"));
    return v;
  }
  const std::string& user = action.params.sudoers().user();
  const sudoers::UserEdit edit = sudoers::RemoveUser(o.file.content, user);
  *v.add_after() = ReadObservation(ctx, o, &edit);
  std::vector<std::string> checks = {"parse_dropin"};
  std::string detail;
  if (!o.file.exists) {
    v.set_outcome(writeback::v1::OUTCOME_VERIFIED);
    detail = absl::StrCat(o.path, " does not exist: it grants ", user, " nothing");
  } else if (edit.direct_refs > 0) {
    v.set_outcome(writeback::v1::OUTCOME_FAILED);
    detail = absl::StrCat(o.path, " still names ", user, " ", edit.direct_refs, " times");
  } else {
    CvtResult cvt = CvtsudoersForUser(ctx, cvtsudoers_, o.path, o.file.content, user);
    *v.add_after() = cvt.obs;
    checks.push_back("cvtsudoers_dropin");
    if (!cvt.ran) {
      v.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
      detail = absl::StrCat(o.path, " no longer names ", user,
                            ", but sudo's parser could not confirm it: ", cvt.error);
    } else if (!cvt.rules.empty()) {
      v.set_outcome(writeback::v1::OUTCOME_FAILED);
      detail =
          absl::StrCat(o.path, " no longer names ", user,
                       ", but sudo still matches it through: ", absl::StrJoin(cvt.rules, " | "));
    } else {
      v.set_outcome(writeback::v1::OUTCOME_VERIFIED);
      detail = absl::StrCat(o.path, ": no rule names or matches ", user);
    }
  }
  if (SudoReadsDirectory() && v.outcome() != writeback::v1::OUTCOME_FAILED) {
    checks.push_back("sudo_list");
    writeback::v1::Observation obs;
    obs.set_check("sudo_list");
    obs.set_subject(user);
    obs.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
    probes::SubprocessOptions opts;
    opts.timeout = ToolTime(ctx);
    auto r = probes::RunSubprocess({sudo_, "-n", "-l", "-U", user}, opts);
    auto& f = *obs.mutable_facts();
    if (!r.ok()) {
      f["verdict"] = "error";
      obs.set_detail(probes::PrintableAscii(r.status().message(), 512));
    } else {
      const std::string text = absl::StrCat(r->out, r->err);
      f["exit_code"] = absl::StrCat(r->exit_code);
      f["output"] = probes::PrintableAscii(text, 2048);
      if (absl::StrContains(text, "is not allowed to run sudo")) {
        f["verdict"] = "no_rules";
        absl::StrAppend(&detail, "; sudo -l -U ", user, ": not allowed to run sudo at all");
      } else if (absl::StrContains(text, "may run the following commands")) {
        f["verdict"] = "other_rules";
        absl::StrAppend(&detail, "; sudo -l -U ", user,
                        " still lists rules, none from this drop-in (see sudo_list evidence)");
      } else if (absl::StrContains(text, "unknown user")) {
        f["verdict"] = "unknown_user";
        absl::StrAppend(&detail, "; sudo does not know user ", user);
      } else {
        f["verdict"] = "error";
      }
      obs.set_detail(probes::PrintableAscii(text, 512));
    }
    *v.add_after() = obs;
  } else if (!SudoReadsDirectory()) {
    absl::StrAppend(&detail, "; sudo -l not used: this host's sudo does not read ", dir_);
  }
  absl::StrAppend(&detail, " (checks: ", absl::StrJoin(checks, ", "), ")");
  v.set_detail(detail);
  return v;
}

absl::Status SudoersConnector::Check(const CallContext& ctx) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  struct stat st;
  if (::stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("sudoers directory ", dir_, " is missing"));
  }
  for (const std::string* t : {&visudo_, &cvtsudoers_}) {
    if (::access(t->c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(*t, " is missing or not executable"));
    }
  }
  return absl::OkStatus();
}

}  // namespace wb::connectors
