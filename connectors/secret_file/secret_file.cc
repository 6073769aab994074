#include "connectors/secret_file/secret_file.h"

#include <fcntl.h>
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
#include "common/status/macros.h"
#include "connectors/probes/subprocess.h"
#include "connectors/secret_file/formats.h"
#include "connectors/util/connector_util.h"
#include "nlohmann/json.hpp"

namespace wb::connectors {
namespace {

using util::CheckDeadline;

constexpr absl::string_view kType = "secret_file";
constexpr absl::string_view kStateMagic = "secret_file/v1";
constexpr size_t kDefaultMaxBytes = 1 << 20;
constexpr size_t kHardMaxBytes = 64 << 20;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

std::string JsonString(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return (it != j.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

std::string Show(absl::string_view s) { return probes::PrintableAscii(s, 1024); }

struct Observed {
  util::ParentDir parent;
  util::FileSnapshot file;
  std::string path;
};

// What the action finds in the file now.
struct Evaluation {
  bool present = false;  // the thing to remove is there
  std::string new_content;
  std::vector<std::string> removed;
  // remove_ini_key: the key still reaches the section from [DEFAULT].
  std::vector<std::string> inherited;
  int entries = 0;
  std::string format;
};

absl::StatusOr<Evaluation> Evaluate(const Action& a, const Observed& o) {
  Evaluation e;
  const auto& p = a.params.secret_file();
  const std::string& c = o.file.content;
  if (a.operation == "delete_file") {
    e.format = "file";
    e.present = o.file.exists;
    if (e.present) e.removed.push_back(absl::StrCat("the file (", c.size(), " bytes)"));
    return e;
  }
  if (!o.file.exists) return e;
  secret_file::Removal r;
  if (a.operation == "remove_env_key") {
    e.format = "env";
    r = secret_file::RemoveEnvKey(c, p.key());
  } else if (a.operation == "remove_ini_key") {
    e.format = "ini";
    r = secret_file::RemoveIniKey(c, p.section(), p.key());
  } else if (a.operation == "remove_ini_section") {
    e.format = "ini";
    r = secret_file::RemoveIniSection(c, p.section());
  } else {
    e.format = "json";
    WB_ASSIGN_OR_RETURN(
        r, secret_file::RemoveJsonPath(c, {p.json_path().begin(), p.json_path().end()}));
  }
  e.present = !r.removed.empty();
  e.new_content = std::move(r.new_content);
  e.removed = std::move(r.removed);
  e.inherited = std::move(r.inherited);
  e.entries = r.entries;
  return e;
}

std::string Target(const Action& a) {
  const auto& p = a.params.secret_file();
  if (a.operation == "remove_env_key") return absl::StrCat("key ", Show(p.key()));
  if (a.operation == "remove_ini_key") {
    return absl::StrCat("key ", Show(p.key()), " in section [", Show(p.section()), "]");
  }
  if (a.operation == "remove_ini_section") return absl::StrCat("section [", Show(p.section()), "]");
  if (a.operation == "remove_json_path") {
    std::string path;
    for (const auto& k : p.json_path()) absl::StrAppend(&path, "/", Show(k));
    return absl::StrCat("member ", path);
  }
  return "the file";
}

writeback::v1::Observation Observation(const CallContext& ctx, const Observed& o,
                                       const Evaluation& e, const Action& a) {
  writeback::v1::Observation obs;
  obs.set_check(a.operation == "delete_file" ? "stat_file" : "parse_file");
  obs.set_subject(Show(o.path));
  obs.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  auto& f = *obs.mutable_facts();
  f["file_present"] = o.file.exists ? "true" : "false";
  if (o.file.exists) {
    f["size"] = absl::StrCat(o.file.content.size());
    f["mode"] = absl::StrFormat("%04o", o.file.mode & 07777);  // octal, as ls and chmod show it
    f["owner_uid"] = absl::StrCat(o.file.uid);
    f["owner_gid"] = absl::StrCat(o.file.gid);
  }
  if (!e.format.empty()) f["format"] = e.format;
  f["entries"] = absl::StrCat(e.entries);
  f["matches"] = absl::StrCat(e.removed.size());
  if (!e.removed.empty()) f["found"] = absl::StrJoin(e.removed, "; ");
  if (!e.inherited.empty()) f["inherited"] = absl::StrJoin(e.inherited, "; ");
  obs.set_detail(!o.file.exists ? absl::StrCat(Show(o.path), " does not exist")
                 : e.present    ? absl::StrCat(Target(a), " present in ", Show(o.path), ": ",
                                               absl::StrJoin(e.removed, "; "))
                                : absl::StrCat("no ", Target(a), " in ", Show(o.path)));
  return obs;
}

// The file cannot be read safely (Verify's read failed): that is "cannot
// tell" (the read error), unless the readers of the path — programs that
// open it by name and follow symbolic links, with no ownership check — are
// provably handed the secret again:
//   - the file itself is a symlink to a regular file (at most max_bytes)
//     that holds what the action removes, or, for delete_file, any regular
//     file: FAILED;
//   - delete_file, and a regular file larger than max_bytes is there: the
//     file is back: FAILED.
// A symlinked directory below the root, a link to anything but a regular
// file, a dangling link and content that does not show the removed thing
// stay "cannot tell" (what was read through a link can be swapped: never
// VERIFIED). Returns nullopt whenever drift cannot be shown.
std::optional<writeback::v1::Verification> SecretStillRead(const CallContext& ctx,
                                                           const Observed& o, const Action& a,
                                                           size_t max_bytes) {
  const int dfd = o.parent.dir.get();
  const char* name = o.parent.file_name.c_str();
  struct stat lst, st;
  if (::fstatat(dfd, name, &lst, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
  // Stat before opening: never open a device or FIFO a link points at.
  if (::fstatat(dfd, name, &st, 0) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  const bool is_link = S_ISLNK(lst.st_mode);
  const bool too_large = static_cast<size_t>(st.st_size) > max_bytes;
  const bool delete_file = a.operation == "delete_file";
  if (!is_link && !(too_large && delete_file)) return std::nullopt;
  std::string target;
  if (is_link) {
    target.assign(4096, '\0');
    const ssize_t n = ::readlinkat(dfd, name, target.data(), target.size() - 1);
    target.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  Observed behind;
  behind.path = o.path;
  behind.file.exists = true;
  if (!delete_file) {
    if (too_large) return std::nullopt;
    util::UniqueFd fd(::openat(dfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    char buf[65536];
    while (behind.file.content.size() <= max_bytes) {
      const ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      behind.file.content.append(buf, static_cast<size_t>(n));
    }
    if (behind.file.content.size() > max_bytes) return std::nullopt;
  }
  behind.file.mode = st.st_mode & 07777;
  behind.file.uid = st.st_uid;
  behind.file.gid = st.st_gid;
  auto e = Evaluate(a, behind);
  if (!e.ok() || !(e->present || !e->inherited.empty())) return std::nullopt;

  const std::string what =
      is_link ? absl::StrCat(Show(o.path), " is a symbolic link to '", Show(target),
                             "', a regular file whoever reads the path is given")
              : absl::StrCat(Show(o.path), " is a regular file again (", st.st_size,
                             " bytes, over the ", max_bytes, "-byte limit of this connector)");
  writeback::v1::Verification v;
  writeback::v1::Observation obs = Observation(ctx, behind, *e, a);
  obs.set_check(absl::StrCat(obs.check(), is_link ? "_behind_symlink" : "_over_limit"));
  auto& f = *obs.mutable_facts();
  f["size"] = absl::StrCat(st.st_size);
  if (is_link) f["symlink_target"] = Show(target);
  *v.add_after() = std::move(obs);
  v.set_outcome(writeback::v1::OUTCOME_FAILED);
  if (delete_file) {
    v.set_detail(absl::StrCat(what, ": the file is back"));
  } else if (e->present) {
    v.set_detail(
        absl::StrCat(what, ": ", Target(a), " is there (", absl::StrJoin(e->removed, "; "), ")"));
  } else {
    v.set_detail(absl::StrCat(what, ": ", Target(a), " is seen there through [DEFAULT] (",
                              absl::StrJoin(e->inherited, "; "), ")"));
  }
  return v;
}

}  // namespace

SecretFileConnector::SecretFileConnector(std::string name, std::vector<std::string> roots,
                                         size_t max_bytes)
    : name_(std::move(name)),
      roots_(std::move(roots)),
      max_bytes_(max_bytes),
      digest_key_(crypto::RandomBytes(32)) {}

absl::StatusOr<std::unique_ptr<Connector>> SecretFileConnector::Create(
    const writeback::v1::ConnectorInstanceConfig& cfg) {
  const std::string where = absl::StrCat("connectors[", cfg.name(), "].secret_file");
  if (cfg.settings_case() != writeback::v1::ConnectorInstanceConfig::kSecretFile) {
    return Invalid(where, "missing: a connector of type secret_file needs secret_file settings");
  }
  const auto& s = cfg.secret_file();
  if (s.allowed_roots_size() == 0) {
    return Invalid(where + ".allowed_roots", "at least one directory is required");
  }
  std::vector<std::string> roots;
  for (int i = 0; i < s.allowed_roots_size(); ++i) {
    const std::string f = absl::StrCat(where, ".allowed_roots[", i, "]");
    std::string r = s.allowed_roots(i);
    WB_RETURN_IF_ERROR(actions::ValidateText(f, r, 4096, false));
    if (r[0] != '/') return Invalid(f, "must be an absolute path");
    for (absl::string_view c : absl::StrSplit(r, '/', absl::SkipEmpty())) {
      if (c == "." || c == "..") return Invalid(f, "must not contain '.' or '..'");
    }
    if (absl::StrContains(r, "//")) return Invalid(f, "must not contain '//'");
    while (r.size() > 1 && r.back() == '/') r.pop_back();
    if (r == "/") return Invalid(f, "must not be '/' (name the directories that hold secrets)");
    roots.push_back(std::move(r));
  }
  size_t max_bytes = s.max_file_bytes() == 0 ? kDefaultMaxBytes : s.max_file_bytes();
  if (max_bytes > kHardMaxBytes) {
    return Invalid(where + ".max_file_bytes", absl::StrCat("at most ", kHardMaxBytes));
  }
  return std::unique_ptr<Connector>(
      new SecretFileConnector(cfg.name(), std::move(roots), max_bytes));
}

std::string SecretFileConnector::KeyedDigest(absl::string_view content) const {
  return crypto::HexEncode(crypto::Sha256(absl::StrCat(digest_key_, content)));
}

absl::StatusOr<util::FileLocation> SecretFileConnector::Resolve(const Action& action) const {
  WB_RETURN_IF_ERROR(actions::ValidateAction(kType, action.operation, action.params));
  WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, action.object, "target"));
  const std::string* best = nullptr;
  for (const auto& r : roots_) {
    if (absl::StartsWith(action.object, r + "/") && action.object.size() > r.size() + 1 &&
        (best == nullptr || r.size() > best->size())) {
      best = &r;
    }
  }
  if (best == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat(
        "target: ", Show(action.object), " is not below an allowed root of connector ", name_));
  }
  util::FileLocation loc;
  loc.trusted_dir = *best;
  loc.components = absl::StrSplit(action.object.substr(best->size() + 1), '/');
  return loc;
}

absl::StatusOr<writeback::v1::Plan> SecretFileConnector::PlanChange(const CallContext& ctx,
                                                                    const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_ASSIGN_OR_RETURN(const util::FileLocation loc, Resolve(action));
  Observed o;
  o.path = loc.Display();
  WB_ASSIGN_OR_RETURN(o.parent, util::OpenParentNoFollow(loc));
  if (!o.parent.missing) {
    WB_ASSIGN_OR_RETURN(o.file, util::ReadRegularFileAt(o.parent.dir.get(), o.parent.file_name,
                                                        o.path, max_bytes_));
  }
  WB_ASSIGN_OR_RETURN(const Evaluation e, Evaluate(action, o));
  writeback::v1::Plan plan;
  *plan.add_before() = Observation(ctx, o, e, action);
  plan.set_no_change(!e.present);
  for (const auto& r : e.removed) {
    plan.add_changes(absl::StrCat("remove ", r, " from ", Show(o.path)));
  }
  plan.set_summary(e.present ? absl::StrCat("remove ", Target(action), " from ", Show(o.path))
                   : o.file.exists
                       ? absl::StrCat("nothing to do: no ", Target(action), " in ", Show(o.path))
                       : absl::StrCat("nothing to do: ", Show(o.path), " does not exist"));
  nlohmann::json state;
  state["magic"] = std::string(kStateMagic);
  state["path"] = o.path;
  state["operation"] = action.operation;
  state["digest"] = o.file.exists ? KeyedDigest(o.file.content) : "absent";
  state["removed"] = e.removed;  // names and line numbers only
  if (o.file.exists) {
    state["mode"] = o.file.mode;
    state["uid"] = o.file.uid;
    state["gid"] = o.file.gid;
  }
  plan.set_state(state.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return plan;
}

absl::StatusOr<writeback::v1::ApplyResult> SecretFileConnector::Apply(
    const CallContext& ctx, const Action& action, const writeback::v1::Plan& plan) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_ASSIGN_OR_RETURN(const util::FileLocation loc, Resolve(action));
  const nlohmann::json state = nlohmann::json::parse(plan.state(), nullptr, false);
  if (!state.is_object() || JsonString(state, "magic") != kStateMagic) {
    return Invalid("plan.state", "not a plan made by a secret_file connector");
  }
  absl::MutexLock lock(&apply_mu_);
  Observed o;
  o.path = loc.Display();
  if (JsonString(state, "path") != o.path || JsonString(state, "operation") != action.operation) {
    return Invalid("plan.state", "plan is for another file or operation");
  }
  WB_ASSIGN_OR_RETURN(o.parent, util::OpenParentNoFollow(loc));
  if (!o.parent.missing) {
    WB_ASSIGN_OR_RETURN(o.file, util::ReadRegularFileAt(o.parent.dir.get(), o.parent.file_name,
                                                        o.path, max_bytes_));
  }
  const std::string digest = o.file.exists ? KeyedDigest(o.file.content) : "absent";
  if (digest != JsonString(state, "digest")) {
    return absl::FailedPreconditionError(absl::StrCat(
        Show(o.path), ": file changed since plan (or the plan was made by another process)"));
  }
  WB_ASSIGN_OR_RETURN(const Evaluation e, Evaluate(action, o));
  writeback::v1::ApplyResult result;
  if (!e.present) return result;
  if (action.operation == "delete_file") {
    if (::unlinkat(o.parent.dir.get(), o.parent.file_name.c_str(), 0) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("unlink ", Show(o.path)));
    }
    if (::fsync(o.parent.dir.get()) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("fsync directory of ", Show(o.path)));
    }
  } else {
    WB_RETURN_IF_ERROR(util::ReplaceFileAt(o.parent.dir.get(), o.parent.file_name, e.new_content,
                                           o.file.mode, o.file.uid, o.file.gid, o.path));
  }
  for (const auto& r : e.removed) {
    result.add_changes(absl::StrCat("removed ", r, " from ", Show(o.path)));
  }
  return result;
}

absl::StatusOr<writeback::v1::Verification> SecretFileConnector::Verify(const CallContext& ctx,
                                                                        const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_ASSIGN_OR_RETURN(const util::FileLocation loc, Resolve(action));
  Observed o;
  o.path = loc.Display();
  // A symlinked directory below the root: an error ("cannot tell").
  WB_ASSIGN_OR_RETURN(o.parent, util::OpenParentNoFollow(loc));
  if (!o.parent.missing) {
    auto file = util::ReadRegularFileAt(o.parent.dir.get(), o.parent.file_name, o.path, max_bytes_);
    if (!file.ok()) {
      // A file it will not read (symlink, FIFO, too large, unreadable) is
      // "cannot tell" (the error: UNVERIFIED), unless the path provably
      // still hands out what was removed.
      if (auto drift = SecretStillRead(ctx, o, action, max_bytes_); drift.has_value()) {
        return *drift;
      }
      return file.status();
    }
    o.file = std::move(*file);
  }
  writeback::v1::Verification v;
  auto e = Evaluate(action, o);
  if (!e.ok()) {
    v.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
    v.set_detail(absl::StrCat("cannot parse ", Show(o.path), ": ", e.status().message()));
    return v;
  }
  *v.add_after() = Observation(ctx, o, *e, action);
  if (e->present) {
    v.set_outcome(writeback::v1::OUTCOME_FAILED);
    v.set_detail(absl::StrCat("read ", Show(o.path), " again: ", Target(action),
                              " is still there (", absl::StrJoin(e->removed, "; "), ")"));
  } else if (!e->inherited.empty()) {
    // configparser gives every section the keys of [DEFAULT]: whoever reads
    // this file still sees the key in the section.
    v.set_outcome(writeback::v1::OUTCOME_FAILED);
    v.set_detail(absl::StrCat("read ", Show(o.path), " again: ", Target(action),
                              " is still seen there through [DEFAULT] (",
                              absl::StrJoin(e->inherited, "; "),
                              "); remove it from section DEFAULT to remove it everywhere"));
  } else {
    v.set_outcome(writeback::v1::OUTCOME_VERIFIED);
    v.set_detail(o.file.exists ? absl::StrCat("read and parsed ", Show(o.path), " again: no ",
                                              Target(action), " (", e->entries, " entries remain)")
                               : absl::StrCat(Show(o.path), " does not exist"));
  }
  return v;
}

absl::Status SecretFileConnector::Check(const CallContext& ctx) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  for (const auto& r : roots_) {
    struct stat st;
    if (::stat(r.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat("allowed root ", r, " is not a directory"));
    }
  }
  return absl::OkStatus();
}

}  // namespace wb::connectors
