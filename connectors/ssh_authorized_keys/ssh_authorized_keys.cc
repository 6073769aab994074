#include "connectors/ssh_authorized_keys/ssh_authorized_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/actions/actions.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "connectors/probes/subprocess.h"
#include "connectors/ssh_authorized_keys/authorized_keys.h"
#include "connectors/util/connector_util.h"

namespace wb::connectors {
namespace {

using util::CheckDeadline;

constexpr absl::string_view kType = "ssh_authorized_keys";
constexpr absl::string_view kUserPlaceholder = "{user}";
constexpr absl::string_view kStateMagic = "sshak/v1";
constexpr absl::string_view kAbsent = "absent";

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status ValidateOperation(const Action& action) {
  return actions::ValidateAction(kType, action.operation, action.params);
}

// What the file looks like now. `lines` point into *content, which lives on
// the heap so that moving an Observed keeps them valid.
struct Observed {
  util::ParentDir parent;
  util::FileSnapshot file;  // file.content moved into `content`
  std::unique_ptr<const std::string> content;
  std::string digest_hex;  // of the bytes read, or "absent"
  std::vector<sshak::Line> lines;
};

absl::StatusOr<Observed> Observe(const util::FileLocation& loc) {
  Observed o;
  WB_ASSIGN_OR_RETURN(o.parent, util::OpenParentNoFollow(loc));
  if (!o.parent.missing) {
    WB_ASSIGN_OR_RETURN(
        o.file, util::ReadRegularFileAt(o.parent.dir.get(), o.parent.file_name, loc.Display()));
  }
  o.content = std::make_unique<const std::string>(std::move(o.file.content));
  o.digest_hex =
      o.file.exists ? crypto::HexEncode(crypto::Sha256(*o.content)) : std::string(kAbsent);
  if (o.file.exists) o.lines = sshak::ParseAuthorizedKeys(*o.content);
  return o;
}

// Which key lines the action targets.
class Matcher {
 public:
  explicit Matcher(const Action& action) : op_(action.operation) {
    const auto& p = action.params.ssh_authorized_keys();
    fingerprint_ = p.fingerprint();
    comment_ = p.comment();
    keep_.insert(p.keep_fingerprints().begin(), p.keep_fingerprints().end());
  }
  bool Matches(const sshak::Line& line) const {
    if (line.kind != sshak::LineKind::kKey) return false;
    if (op_ == "remove_key") return line.fingerprint == fingerprint_;
    if (op_ == "remove_by_comment") return line.comment == comment_;
    if (op_ == "exclusive_set") return keep_.count(line.fingerprint) == 0;
    return false;
  }
  std::string Describe() const {
    if (op_ == "remove_key") return absl::StrCat("key ", fingerprint_);
    if (op_ == "remove_by_comment") {
      return absl::StrCat("keys with comment '", sshak::Printable(comment_), "'");
    }
    return absl::StrCat("keys not among the ", keep_.size(), " listed fingerprints");
  }

 private:
  std::string op_;
  std::string fingerprint_;
  std::string comment_;
  std::set<std::string> keep_;
};

std::string DescribeKey(const sshak::Line& line) {
  return absl::StrCat(line.fingerprint, " (", sshak::Printable(line.key_type, 60), ", comment '",
                      sshak::Printable(line.comment), "'", line.has_options ? ", with options" : "",
                      ") at line ", line.number);
}

struct Evaluation {
  std::vector<const sshak::Line*> matched;
  size_t keys = 0;
  size_t unparseable = 0;
  std::string new_content;
};

Evaluation Evaluate(const Observed& o, const Matcher& m) {
  Evaluation e;
  for (const auto& line : o.lines) {
    if (line.kind == sshak::LineKind::kKey) ++e.keys;
    if (line.kind == sshak::LineKind::kUnparseable) ++e.unparseable;
    if (m.Matches(line)) {
      e.matched.push_back(&line);
    } else {
      e.new_content.append(line.raw.data(), line.raw.size());
    }
  }
  return e;
}

writeback::v1::Observation MakeObservation(const CallContext& ctx, const std::string& path,
                                           const Observed& o, const Evaluation& e) {
  writeback::v1::Observation obs;
  obs.set_check("read_authorized_keys");
  obs.set_subject(path);
  obs.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  auto& f = *obs.mutable_facts();
  f["file_present"] = o.file.exists ? "true" : "false";
  f["sha256"] = o.digest_hex;
  f["keys_total"] = absl::StrCat(e.keys);
  f["matched"] = absl::StrCat(e.matched.size());
  f["keys_remaining"] = absl::StrCat(e.keys - e.matched.size());
  f["unparseable_lines"] = absl::StrCat(e.unparseable);
  if (o.file.exists) {
    f["owner_uid"] = absl::StrCat(o.file.uid);
    f["mode"] = absl::StrFormat("%04o", o.file.mode & 07777);  // octal, as ls and chmod show it
  }
  return obs;
}

std::string EncodeState(const std::string& path, const std::string& digest_hex) {
  return absl::StrCat(kStateMagic, "\n", path, "\n", digest_hex);
}

// "TYPE BASE64" of a key line (options and comment dropped), checked
// against the line's fingerprint; "" if it cannot be found.
std::string PublicKeyOf(const sshak::Line& line) {
  std::vector<std::string> tokens;
  std::string cur;
  bool quoted = false;
  for (char c : line.raw) {
    if (c == '"') quoted = !quoted;
    if (!quoted && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
      if (!cur.empty()) tokens.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) tokens.push_back(std::move(cur));
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    if (tokens[i] != line.key_type) continue;
    auto blob = crypto::Base64Decode(tokens[i + 1]);
    if (!blob.ok()) continue;
    auto info = sshak::InspectKeyBlob(*blob);
    if (info.ok() && info->fingerprint == line.fingerprint) {
      return absl::StrCat(tokens[i], " ", tokens[i + 1]);
    }
  }
  return "";
}

std::string ProbeKeyFile(const std::string& dir, absl::string_view user,
                         const std::string& fingerprint) {
  return absl::StrCat(dir, "/", user, "/",
                      crypto::HexEncode(crypto::Sha256(fingerprint)).substr(0, 32), ".pub");
}

// Offers every kept key of the user that `m` matches to the probe's sshd;
// adds an observation per key and adjusts the outcome (see the header).
void ProbeRemovedKeys(const CallContext& ctx, const probes::SshEndpoint& probe,
                      const std::string& key_dir, const Action& action, const Matcher& m,
                      writeback::v1::Verification& v) {
  constexpr size_t kMaxProbes = 16;
  const std::string dir = absl::StrCat(key_dir, "/", action.object);
  std::vector<std::string> kept;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".pub") continue;
    auto content = fs::ReadFile(entry.path().string(), 64 << 10);
    if (content.ok()) kept.push_back(std::move(*content));
  }
  std::sort(kept.begin(), kept.end());
  size_t probed = 0, accepted = 0, unreachable = 0;
  std::string detail;
  for (const std::string& content : kept) {
    for (const auto& line : sshak::ParseAuthorizedKeys(content)) {
      if (!m.Matches(line) || probed >= kMaxProbes) continue;
      ++probed;
      const absl::Duration budget = probes::TimeLeft(ctx.deadline, ctx.clock->Now(),
                                                     probe.connect_timeout * 2 + absl::Seconds(10));
      auto r = probes::ProbeKeyOffer(probe, action.object, line.raw, budget);
      if (!r.ok()) {
        ++unreachable;
        absl::StrAppend(&detail, "; probe of ", line.fingerprint,
                        " could not run: ", sshak::Printable(r.status().message()));
        continue;
      }
      *v.add_after() = probes::ToObservation(*r, ctx.clock->NowUnixMs());
      absl::StrAppend(&detail, "; ", line.fingerprint, ": ", r->summary);
      if (r->verdict == probes::SshVerdict::kAccepted) ++accepted;
      if (r->verdict == probes::SshVerdict::kUnreachable) ++unreachable;
    }
  }
  if (probed == 0) {
    v.set_detail(absl::StrCat(v.detail(), "; ssh probe skipped: no removed key on record"));
    return;
  }
  if (accepted > 0) {
    v.set_outcome(writeback::v1::OUTCOME_FAILED);
    absl::StrAppend(&detail, "; sshd still accepts ", accepted,
                    " of the removed keys (another AuthorizedKeysFile or AuthorizedKeysCommand?)");
  } else if (unreachable > 0) {
    v.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
  }
  v.set_detail(absl::StrCat(v.detail(), detail));
}

// authorized_keys is a symbolic link: the connector never edits through
// one, nor vouches for what it reads through one (the link can be swapped
// between this read and sshd's). But sshd follows it when the file it
// reaches passes StrictModes (a regular file owned by root or by the owner
// of the directory holding the link, not writable by group or others): if
// that file still holds a matching key, the effect is undone — FAILED
// (drift), not "cannot tell". Returns nullopt when that cannot be shown.
std::optional<writeback::v1::Verification> MatchBehindLink(const CallContext& ctx,
                                                           const util::FileLocation& loc,
                                                           const Matcher& m) {
  auto parent = util::OpenParentNoFollow(loc);
  if (!parent.ok() || parent->missing) return std::nullopt;
  struct stat lst;
  if (::fstatat(parent->dir.get(), parent->file_name.c_str(), &lst, AT_SYMLINK_NOFOLLOW) != 0 ||
      !S_ISLNK(lst.st_mode)) {
    return std::nullopt;
  }
  struct stat dst;
  if (::fstat(parent->dir.get(), &dst) != 0) return std::nullopt;
  util::UniqueFd fd(
      ::openat(parent->dir.get(), parent->file_name.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  const bool strict_ok =
      (st.st_uid == 0 || st.st_uid == dst.st_uid) && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
  if (!strict_ok) return std::nullopt;
  constexpr size_t kMax = 16 << 20;
  std::string content;
  char buf[65536];
  while (content.size() <= kMax) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    content.append(buf, static_cast<size_t>(n));
  }
  if (content.size() > kMax) return std::nullopt;
  size_t matched = 0;
  std::string listed;
  for (const auto& line : sshak::ParseAuthorizedKeys(content)) {
    if (!m.Matches(line)) continue;
    if (++matched <= 5) absl::StrAppend(&listed, " ", DescribeKey(line), ";");
  }
  if (matched == 0) return std::nullopt;
  std::string target(4096, '\0');
  const ssize_t tn =
      ::readlinkat(parent->dir.get(), parent->file_name.c_str(), target.data(), target.size() - 1);
  target.resize(tn > 0 ? static_cast<size_t>(tn) : 0);
  writeback::v1::Verification v;
  v.set_outcome(writeback::v1::OUTCOME_FAILED);
  const std::string path = loc.Display();
  v.set_detail(absl::StrCat(path, " is a symbolic link to '", sshak::Printable(target),
                            "', which sshd follows (a regular file owned by uid ", st.st_uid,
                            ", mode ", absl::StrFormat("%04o", st.st_mode & 07777), "): ", matched,
                            " matching keys present there:", listed));
  writeback::v1::Observation obs;
  obs.set_check("read_authorized_keys_behind_symlink");
  obs.set_subject(path);
  obs.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  auto& f = *obs.mutable_facts();
  f["symlink_target"] = sshak::Printable(target);
  f["sha256"] = crypto::HexEncode(crypto::Sha256(content));
  f["matched"] = absl::StrCat(matched);
  f["owner_uid"] = absl::StrCat(st.st_uid);
  f["mode"] = absl::StrFormat("%04o", st.st_mode & 07777);
  *v.add_after() = std::move(obs);
  return v;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> SshAuthorizedKeysConnector::Create(
    const writeback::v1::ConnectorInstanceConfig& cfg) {
  const std::string where = absl::StrCat("connectors[", cfg.name(), "]");
  if (cfg.settings_case() != writeback::v1::ConnectorInstanceConfig::kSshAuthorizedKeys) {
    return Invalid(where + ".ssh_authorized_keys",
                   "missing: a connector of type ssh_authorized_keys needs ssh_authorized_keys "
                   "settings");
  }
  const auto& s = cfg.ssh_authorized_keys();
  const std::string field = where + ".ssh_authorized_keys.path_template";
  const std::string& t = s.path_template();
  if (t.empty()) return Invalid(field, "must not be empty");
  if (auto st = actions::ValidateText(field, t, 4096, false); !st.ok()) return st;
  if (t[0] != '/') return Invalid(field, "must be an absolute path");
  const absl::string_view tv = t;
  const size_t first = tv.find(kUserPlaceholder);
  if (first == absl::string_view::npos) return Invalid(field, "must contain \"{user}\"");
  if (tv.find(kUserPlaceholder, first + 1) != absl::string_view::npos) {
    return Invalid(field, "must contain \"{user}\" exactly once");
  }
  std::vector<std::string> parts = absl::StrSplit(t.substr(1), '/');
  size_t user_index = parts.size();
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    if (p.empty())
      return Invalid(field, "must not contain an empty component ('//' or a final '/')");
    if (p == ".." || p == ".") return Invalid(field, "must not contain '.' or '..' components");
    if (absl::StrContains(p, kUserPlaceholder)) user_index = i;
  }
  std::string trusted = "/";
  for (size_t i = 0; i < user_index; ++i) {
    trusted = absl::StrCat(trusted == "/" ? "" : trusted, "/", parts[i]);
  }
  for (int i = 0; i < s.allowed_users_size(); ++i) {
    WB_RETURN_IF_ERROR(actions::ValidatePosixUserName(
        absl::StrCat(where, ".ssh_authorized_keys.allowed_users[", i, "]"), s.allowed_users(i)));
  }
  std::vector<std::string> components(parts.begin() + static_cast<ptrdiff_t>(user_index),
                                      parts.end());
  std::optional<probes::SshEndpoint> probe;
  if (s.has_probe()) {
    const std::string pf = where + ".ssh_authorized_keys.probe.";
    WB_ASSIGN_OR_RETURN(probe, probes::EndpointFromConfig(s.probe(), pf));
    const std::string kf = where + ".ssh_authorized_keys.probe_key_dir";
    if (s.probe_key_dir().empty()) return Invalid(kf, "required with probe");
    WB_RETURN_IF_ERROR(actions::ValidateText(kf, s.probe_key_dir(), 4096, false));
    if (s.probe_key_dir()[0] != '/') return Invalid(kf, "must be an absolute path");
  } else if (!s.probe_key_dir().empty()) {
    return Invalid(where + ".ssh_authorized_keys.probe_key_dir", "only used with probe");
  }
  return std::unique_ptr<Connector>(new SshAuthorizedKeysConnector(
      cfg.name(), s, std::move(trusted), std::move(components), std::move(probe)));
}

util::FileLocation SshAuthorizedKeysConnector::LocationFor(absl::string_view user) const {
  util::FileLocation loc;
  loc.trusted_dir = trusted_dir_;
  for (const auto& c : components_) {
    loc.components.push_back(absl::StrReplaceAll(c, {{kUserPlaceholder, user}}));
  }
  return loc;
}

absl::StatusOr<util::FileLocation> SshAuthorizedKeysConnector::ResolveTarget(
    const Action& action) const {
  WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, action.object, "target"));
  if (cfg_.allowed_users_size() > 0 &&
      std::find(cfg_.allowed_users().begin(), cfg_.allowed_users().end(), action.object) ==
          cfg_.allowed_users().end()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "target: user '", action.object, "' is not in allowed_users of connector ", name_));
  }
  return LocationFor(action.object);
}

absl::StatusOr<writeback::v1::Plan> SshAuthorizedKeysConnector::PlanChange(const CallContext& ctx,
                                                                           const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(ValidateOperation(action));
  WB_ASSIGN_OR_RETURN(const util::FileLocation loc, ResolveTarget(action));
  const std::string path = loc.Display();
  WB_ASSIGN_OR_RETURN(const Observed o, Observe(loc));
  const Matcher m(action);
  const Evaluation e = Evaluate(o, m);

  writeback::v1::Plan plan;
  *plan.add_before() = MakeObservation(ctx, path, o, e);
  plan.set_state(EncodeState(path, o.digest_hex));
  plan.set_no_change(e.matched.empty());
  for (const auto* line : e.matched) {
    plan.add_changes(absl::StrCat("remove ", DescribeKey(*line)));
  }
  if (!o.file.exists) {
    plan.set_summary(absl::StrCat(path, " does not exist: no keys to remove"));
  } else if (e.matched.empty()) {
    plan.set_summary(absl::StrCat("no ", m.Describe(), " in ", path, " (", e.keys, " keys)"));
  } else {
    plan.set_summary(absl::StrCat("remove ", e.matched.size(), " of ", e.keys, " keys from ", path,
                                  " (", m.Describe(), ")"));
  }
  return plan;
}

absl::StatusOr<writeback::v1::ApplyResult> SshAuthorizedKeysConnector::Apply(
    const CallContext& ctx, const Action& action, const writeback::v1::Plan& plan) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(ValidateOperation(action));
  WB_ASSIGN_OR_RETURN(const util::FileLocation loc, ResolveTarget(action));
  const std::string path = loc.Display();
  std::vector<absl::string_view> state = absl::StrSplit(plan.state(), '\n');
  if (state.size() != 3 || state[0] != kStateMagic) {
    return Invalid("plan.state", "not a plan made by an ssh_authorized_keys connector");
  }
  if (state[1] != path) {
    return Invalid("plan.state",
                   absl::StrCat("plan is for ", sshak::Printable(state[1]), ", not for ", path));
  }

  absl::MutexLock lock(&apply_mu_);
  WB_ASSIGN_OR_RETURN(const Observed o, Observe(loc));
  if (o.digest_hex != state[2]) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": file changed since plan (planned sha256 ", state[2], ", now ", o.digest_hex, ")"));
  }
  const Evaluation e = Evaluate(o, Matcher(action));
  writeback::v1::ApplyResult result;
  if (e.matched.empty()) return result;
  if (probe_.has_value()) {
    // Keep the public keys about to be removed, so Verify can offer them.
    const std::string dir = absl::StrCat(cfg_.probe_key_dir(), "/", action.object);
    WB_RETURN_IF_ERROR(fs::MakeDirs(dir, 0700));
    for (const auto* line : e.matched) {
      const std::string pub = PublicKeyOf(*line);
      if (pub.empty()) continue;
      WB_RETURN_IF_ERROR(fs::WriteFileAtomic(
          ProbeKeyFile(cfg_.probe_key_dir(), action.object, line->fingerprint),
          absl::StrCat(pub, " ", sshak::Printable(line->comment), "\n"), {.mode = 0600}));
    }
  }
  WB_RETURN_IF_ERROR(util::ReplaceFileAt(o.parent.dir.get(), o.parent.file_name, e.new_content,
                                         o.file.mode, o.file.uid, o.file.gid, path));
  for (const auto* line : e.matched) {
    result.add_changes(absl::StrCat("removed ", DescribeKey(*line), " from ", path));
  }
  return result;
}

absl::StatusOr<writeback::v1::Verification> SshAuthorizedKeysConnector::Verify(
    const CallContext& ctx, const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(ValidateOperation(action));
  WB_ASSIGN_OR_RETURN(const util::FileLocation loc, ResolveTarget(action));
  const std::string path = loc.Display();
  const Matcher m(action);
  auto observed = Observe(loc);
  if (!observed.ok()) {
    // A file it will not read (symlink, FIFO, too large, unreadable) is
    // "cannot tell" (the error: UNVERIFIED), unless sshd provably still
    // honours a matching key through a symlink.
    if (auto drift = MatchBehindLink(ctx, loc, m); drift.has_value()) return *drift;
    return observed.status();
  }
  const Observed& o = *observed;
  const Evaluation e = Evaluate(o, m);
  writeback::v1::Verification v;
  *v.add_after() = MakeObservation(ctx, path, o, e);
  if (e.matched.empty()) {
    v.set_outcome(writeback::v1::OUTCOME_VERIFIED);
    v.set_detail(
        absl::StrCat("read ", path, ": no ", m.Describe(), " present; ", e.keys, " keys remain"));
    if (probe_.has_value()) ProbeRemovedKeys(ctx, *probe_, cfg_.probe_key_dir(), action, m, v);
  } else {
    v.set_outcome(writeback::v1::OUTCOME_FAILED);
    std::string detail =
        absl::StrCat("read ", path, ": ", e.matched.size(), " matching keys still present:");
    constexpr size_t kMaxListed = 20;  // the observation has the full count
    for (size_t i = 0; i < e.matched.size() && i < kMaxListed; ++i) {
      absl::StrAppend(&detail, " ", DescribeKey(*e.matched[i]), ";");
    }
    if (e.matched.size() > kMaxListed) {
      absl::StrAppend(&detail, " and ", e.matched.size() - kMaxListed, " more");
    }
    v.set_detail(detail);
  }
  return v;
}

absl::Status SshAuthorizedKeysConnector::Check(const CallContext& ctx) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  struct stat st;
  if (::stat(trusted_dir_.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("directory ", trusted_dir_, " of path_template ", cfg_.path_template(), ": ",
                     absl::ErrnoToStatus(errno, "stat").message()));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(trusted_dir_, " (prefix of path_template) is not a directory"));
  }
  return absl::OkStatus();
}

}  // namespace wb::connectors
