#include "connectors/redis/redis.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/actions/actions.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "connectors/util/connector_util.h"

namespace wb::connectors {
namespace {

using util::CheckDeadline;

using resp::Value;
using writeback::v1::Observation;

constexpr absl::string_view kType = "redis";
constexpr absl::string_view kStateMagic = "redis/v1";

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

bool IsLoopback(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host == "localhost";
}

// ---- ACL GETUSER ----

struct Selector {
  std::string commands;
  std::vector<std::string> keys;
};

struct UserState {
  bool exists = false;
  std::vector<std::string> flags;
  std::vector<std::string> passwords;  // SHA-256 hex, sorted
  std::string commands;
  std::vector<std::string> keys;  // root key patterns as listed ("~a", "%R~b")
  std::string channels;
  std::vector<Selector> selectors;

  bool Has(absl::string_view flag) const {
    return std::find(flags.begin(), flags.end(), flag) != flags.end();
  }
  std::string Digest() const {
    if (!exists) return "absent";
    std::string all = absl::StrCat(absl::StrJoin(flags, " "), "\n", absl::StrJoin(passwords, " "),
                                   "\n", commands, "\n", absl::StrJoin(keys, " "), "\n", channels);
    for (const auto& s : selectors) {
      absl::StrAppend(&all, "\n(", s.commands, "|", absl::StrJoin(s.keys, " "), ")");
    }
    return crypto::HexEncode(crypto::Sha256(all));
  }
};

std::vector<std::string> SplitPatterns(const Value& v) {
  std::vector<std::string> out;
  if (v.type == Value::kArray) {
    for (const auto& e : v.elements) out.push_back(e.str);
  } else {
    for (absl::string_view p : absl::StrSplit(v.str, ' ', absl::SkipEmpty())) {
      out.emplace_back(p);
    }
  }
  return out;
}

std::map<std::string, const Value*> Pairs(const Value& v) {
  std::map<std::string, const Value*> m;
  for (size_t i = 0; i + 1 < v.elements.size(); i += 2) m[v.elements[i].str] = &v.elements[i + 1];
  return m;
}

absl::StatusOr<UserState> ReadUser(resp::Session& s, const std::string& user) {
  WB_ASSIGN_OR_RETURN(Value v, s.Must({"ACL", "GETUSER", user}, "ACL GETUSER"));
  UserState u;
  if (v.type != Value::kArray) return u;
  u.exists = true;
  auto m = Pairs(v);
  if (auto it = m.find("flags"); it != m.end()) {
    for (const auto& f : it->second->elements) u.flags.push_back(f.str);
  }
  if (auto it = m.find("passwords"); it != m.end()) {
    for (const auto& p : it->second->elements) u.passwords.push_back(p.str);
    std::sort(u.passwords.begin(), u.passwords.end());
  }
  if (auto it = m.find("commands"); it != m.end()) u.commands = it->second->str;
  if (auto it = m.find("keys"); it != m.end()) u.keys = SplitPatterns(*it->second);
  if (auto it = m.find("channels"); it != m.end()) {
    u.channels = absl::StrJoin(SplitPatterns(*it->second), " ");
  }
  if (auto it = m.find("selectors"); it != m.end()) {
    for (const auto& sel : it->second->elements) {
      auto sm = Pairs(sel);
      Selector x;
      if (auto c = sm.find("commands"); c != sm.end()) x.commands = c->second->str;
      if (auto k = sm.find("keys"); k != sm.end()) x.keys = SplitPatterns(*k->second);
      u.selectors.push_back(std::move(x));
    }
  }
  return u;
}

// Ids of the connections authenticated as `user`, from CLIENT LIST.
absl::StatusOr<std::vector<std::string>> ReadConnections(resp::Session& s,
                                                         const std::string& user) {
  WB_ASSIGN_OR_RETURN(Value v, s.Must({"CLIENT", "LIST"}, "CLIENT LIST"));
  std::vector<std::string> ids;
  for (absl::string_view line : absl::StrSplit(v.str, '\n', absl::SkipEmpty())) {
    std::string id;
    bool match = false;
    // Fields are space-separated key=value; user names hold no spaces.
    for (absl::string_view field : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      const size_t eq = field.find('=');
      if (eq == absl::string_view::npos) continue;
      const absl::string_view k = field.substr(0, eq);
      absl::string_view val = field.substr(eq + 1);
      if (!val.empty() && val.back() == '\r') val.remove_suffix(1);
      if (k == "id") id = std::string(val);
      if (k == "user" && val == user) match = true;
    }
    if (match) ids.push_back(id);
  }
  return ids;
}

// ---- Commands: which of the requested ones the user can still run ----

struct CommandInfo {
  long long arity = 0;
  std::vector<std::string> subcommands;
};

absl::StatusOr<CommandInfo> GetCommandInfo(resp::Session& s, const std::string& name) {
  WB_ASSIGN_OR_RETURN(Value v, s.Must({"COMMAND", "INFO", name}, "COMMAND INFO"));
  if (v.type != Value::kArray || v.elements.empty() || v.elements[0].type != Value::kArray ||
      v.elements[0].elements.size() < 2) {
    return absl::FailedPreconditionError(
        absl::StrCat("the server knows no command '", util::PrintableUtf8(name), "'"));
  }
  const Value& info = v.elements[0];
  CommandInfo ci;
  ci.arity = info.elements[1].integer;
  if (info.elements.size() > 9 && info.elements[9].type == Value::kArray) {
    for (const auto& sub : info.elements[9].elements) {
      if (sub.type == Value::kArray && !sub.elements.empty()) {
        ci.subcommands.push_back(sub.elements[0].str);
      }
    }
  }
  return ci;
}

// Concrete commands ("get", "config|set") a requested entry stands for.
absl::StatusOr<std::vector<std::string>> Expand(resp::Session& s, const std::string& entry) {
  std::vector<std::string> out;
  if (absl::StartsWith(entry, "@")) {
    WB_ASSIGN_OR_RETURN(Value v, s.Must({"ACL", "CAT", entry.substr(1)}, "ACL CAT"));
    for (const auto& e : v.elements) out.push_back(e.str);
    std::sort(out.begin(), out.end());
    return out;
  }
  WB_ASSIGN_OR_RETURN(CommandInfo ci, GetCommandInfo(s, entry));
  if (entry.find('|') == std::string::npos && !ci.subcommands.empty()) return ci.subcommands;
  out.push_back(entry);
  return out;
}

// ACL DRYRUN with placeholder arguments: true if the user may run `command`
// (a denial for a key or channel still means the command itself passed).
absl::StatusOr<bool> MayRun(resp::Session& s, const std::string& user, const std::string& command) {
  WB_ASSIGN_OR_RETURN(CommandInfo ci, GetCommandInfo(s, command));
  std::vector<std::string> argv = {"ACL", "DRYRUN", user};
  size_t words = 0;
  for (absl::string_view w : absl::StrSplit(command, '|')) {
    argv.emplace_back(w);
    ++words;
  }
  const size_t argc = static_cast<size_t>(ci.arity < 0 ? -ci.arity : ci.arity);
  while (argc > words) {
    argv.push_back("wb-dryrun");
    ++words;
  }
  WB_ASSIGN_OR_RETURN(Value v, s.Command(argv));
  if (v.is_error()) {
    return absl::FailedPreconditionError(
        absl::StrCat("ACL DRYRUN ", util::PrintableUtf8(command), ": ", v.str));
  }
  if (v.is_ok()) return true;
  return !absl::StrContains(v.str, "no permissions to run the");
}

absl::StatusOr<std::vector<std::string>> StillAllowed(resp::Session& s, const std::string& user,
                                                      const std::vector<std::string>& entries) {
  std::set<std::string> allowed;
  for (const auto& e : entries) {
    WB_ASSIGN_OR_RETURN(auto cmds, Expand(s, e));
    for (const auto& c : cmds) {
      WB_ASSIGN_OR_RETURN(bool may, MayRun(s, user, c));
      if (may) allowed.insert(c);
    }
  }
  return std::vector<std::string>(allowed.begin(), allowed.end());
}

// Key patterns as ACL GETUSER prints them.
std::string NormalizePattern(const std::string& p) {
  if (p == "allkeys") return "~*";
  if (absl::StartsWith(p, "%RW~")) return "~" + p.substr(4);
  return p;
}

bool IsCatchAll(const std::string& p) { return p == "~*" || p == "%R~*" || p == "%W~*"; }

// ---- Evidence ----

Observation UserObservation(const CallContext& ctx, const std::string& user, const UserState& u) {
  Observation o;
  o.set_check("acl_getuser");
  o.set_subject(util::PrintableUtf8(user));
  o.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  auto& f = *o.mutable_facts();
  f["exists"] = u.exists ? "true" : "false";
  if (u.exists) {
    f["flags"] = absl::StrJoin(u.flags, " ");
    f["passwords"] = absl::StrCat(u.passwords.size());
    f["password_set_sha256"] = crypto::HexEncode(crypto::Sha256(absl::StrJoin(u.passwords, "\n")));
    f["commands"] = util::PrintableUtf8(u.commands, 2000);
    f["keys"] = util::PrintableUtf8(absl::StrJoin(u.keys, " "), 2000);
    f["selectors"] = absl::StrCat(u.selectors.size());
    o.set_detail(absl::StrCat(
        "user ", util::PrintableUtf8(user), ": flags [", absl::StrJoin(u.flags, " "), "], ",
        u.passwords.size(), " password(s), commands '", util::PrintableUtf8(u.commands, 300),
        "', keys '", util::PrintableUtf8(absl::StrJoin(u.keys, " "), 300), "'"));
  } else {
    o.set_detail(absl::StrCat("ACL GETUSER: no user ", util::PrintableUtf8(user)));
  }
  return o;
}

Observation ConnectionsObservation(const CallContext& ctx, const std::string& user,
                                   const std::vector<std::string>& ids) {
  Observation o;
  o.set_check("client_list");
  o.set_subject(util::PrintableUtf8(user));
  o.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  (*o.mutable_facts())["connections"] = absl::StrCat(ids.size());
  (*o.mutable_facts())["ids"] = absl::StrJoin(ids, ",");
  o.set_detail(absl::StrCat(ids.size(), " connection(s) authenticated as the user",
                            ids.empty() ? "" : absl::StrCat(": ids ", absl::StrJoin(ids, ","))));
  return o;
}

bool KillsConnections(const Action& a) {
  if (a.operation == "kill_connections" || a.operation == "delete_user") return true;
  return (a.operation == "disable_user" || a.operation == "reset_passwords" ||
          a.operation == "rotate_password") &&
         !a.params.redis().keep_connections();
}

bool ProbeApplies(absl::string_view op) {
  return op == "disable_user" || op == "reset_passwords" || op == "rotate_password" ||
         op == "delete_user";
}

std::vector<std::string> Sorted(const google::protobuf::RepeatedPtrField<std::string>& r) {
  std::vector<std::string> v(r.begin(), r.end());
  std::sort(v.begin(), v.end());
  return v;
}

// Whether the user-level effect is in place (connections aside), and if
// not, the ACL SETUSER rules (or other commands) that make it.
struct Needed {
  bool done = false;
  std::vector<std::string> rules;         // for ACL SETUSER <user> ...
  std::vector<std::string> describe;      // human-readable
  std::vector<std::string> remaining;     // remove_permissions: commands still allowed
  std::vector<std::string> keys_present;  // remove_permissions: patterns still there
};

absl::StatusOr<Needed> Evaluate(resp::Session& s, const Action& a, const UserState& u) {
  Needed n;
  const auto& p = a.params.redis();
  const std::string& op = a.operation;
  const std::string who = util::PrintableUtf8(a.object);
  if (op == "kill_connections") {
    n.done = true;
    return n;
  }
  if (!u.exists) {
    if (op == "rotate_password") {
      return absl::FailedPreconditionError(absl::StrCat("no user ", who));
    }
    n.done = true;
    return n;
  }
  if (op == "disable_user") {
    n.done = u.Has("off");
    if (!n.done) {
      n.rules = {"off"};
      n.describe.push_back(absl::StrCat("ACL SETUSER ", who, " off"));
    }
  } else if (op == "reset_passwords") {
    n.done = u.passwords.empty() && !u.Has("nopass");
    if (!n.done) {
      n.rules = {"resetpass"};
      n.describe.push_back(absl::StrCat("ACL SETUSER ", who, " resetpass (", u.passwords.size(),
                                        " password(s)", u.Has("nopass") ? ", nopass" : "", ")"));
    }
  } else if (op == "rotate_password") {
    n.done = u.passwords == std::vector<std::string>{p.new_password_sha256()} && !u.Has("nopass");
    if (!n.done) {
      if (u.passwords != Sorted(p.expected_password_sha256s())) {
        return absl::FailedPreconditionError(
            absl::StrCat("the passwords of user ", who, " are not the expected ones (",
                         u.passwords.size(), " password(s) now, set sha256 ",
                         crypto::HexEncode(crypto::Sha256(absl::StrJoin(u.passwords, "\n"))), ")"));
      }
      n.rules = {"resetpass", "#" + p.new_password_sha256()};
      n.describe.push_back(absl::StrCat("ACL SETUSER ", who, " resetpass #",
                                        p.new_password_sha256().substr(0, 12), "..."));
    }
  } else if (op == "remove_permissions") {
    std::vector<std::string> entries(p.commands().begin(), p.commands().end());
    WB_ASSIGN_OR_RETURN(n.remaining, StillAllowed(s, a.object, entries));
    std::set<std::string> remove;
    for (const auto& k : p.key_patterns()) remove.insert(NormalizePattern(k));
    std::vector<std::string> keep;
    for (const auto& k : u.keys) {
      if (remove.count(k)) {
        n.keys_present.push_back(k);
      } else {
        keep.push_back(k);
      }
    }
    if (!n.remaining.empty()) {
      for (const auto& c : p.commands()) n.rules.push_back("-" + c);
      n.describe.push_back(absl::StrCat("ACL SETUSER ", who, " -",
                                        absl::StrJoin(p.commands(), " -"), " (", n.remaining.size(),
                                        " command(s) still allowed)"));
    }
    if (!n.keys_present.empty()) {
      n.rules.push_back("resetkeys");
      for (auto& k : keep) n.rules.push_back(k);
      n.describe.push_back(absl::StrCat(
          "remove key pattern(s) ", util::PrintableUtf8(absl::StrJoin(n.keys_present, " "), 500),
          " of user ", who));
    }
    n.done = n.rules.empty();
  } else if (op == "delete_user") {
    n.done = false;
    n.describe.push_back(absl::StrCat("ACL DELUSER ", who));
    if (!u.Has("off")) {
      n.rules = {"off"};
      n.describe.insert(n.describe.begin(), absl::StrCat("ACL SETUSER ", who, " off"));
    }
  }
  return n;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> RedisConnector::Create(
    const writeback::v1::ConnectorInstanceConfig& cfg) {
  const std::string where = absl::StrCat("connectors[", cfg.name(), "].redis");
  if (cfg.settings_case() != writeback::v1::ConnectorInstanceConfig::kRedis) {
    return Invalid(where, "missing: a connector of type redis needs redis settings");
  }
  writeback::v1::RedisConfig c = cfg.redis();
  const std::string& addr = c.address();
  const size_t colon = addr.rfind(':');
  int port = 0;
  if (addr.empty() || colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(addr.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return Invalid(where + ".address", "must be host:port, e.g. 127.0.0.1:6379");
  }
  std::string host = addr.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  WB_RETURN_IF_ERROR(actions::ValidateText(where + ".address", host, 255, false));
  if (!IsLoopback(host) && !c.allow_plaintext_remote()) {
    return Invalid(where + ".address",
                   "hiredis 0.14 has no TLS: a non-loopback address needs "
                   "allow_plaintext_remote (e.g. through a local TLS tunnel)");
  }
  if (c.user().empty()) return Invalid(where + ".user", "must not be empty");
  WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, c.user(), where + ".user"));
  if (c.password_file().empty() || c.password_file()[0] != '/') {
    return Invalid(where + ".password_file", "must be an absolute path");
  }
  if (c.acl_save().empty()) c.set_acl_save("auto");
  if (c.acl_save() != "auto" && c.acl_save() != "always" && c.acl_save() != "never") {
    return Invalid(where + ".acl_save", "must be auto, always or never");
  }
  if (c.timeout_seconds() == 0) c.set_timeout_seconds(10);
  for (int i = 0; i < c.allowed_users_size(); ++i) {
    WB_RETURN_IF_ERROR(actions::ValidateTargetObject(
        kType, c.allowed_users(i), absl::StrCat(where, ".allowed_users[", i, "]")));
  }
  for (int i = 0; i < c.protected_users_size(); ++i) {
    WB_RETURN_IF_ERROR(actions::ValidateTargetObject(
        kType, c.protected_users(i), absl::StrCat(where, ".protected_users[", i, "]")));
  }
  for (int i = 0; i < c.probes_size(); ++i) {
    const std::string f = absl::StrCat(where, ".probes[", i, "]");
    WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, c.probes(i).account(), f + ".account"));
    if (c.probes(i).password_file().empty() || c.probes(i).password_file()[0] != '/') {
      return Invalid(f + ".password_file", "must be an absolute path");
    }
  }
  return std::unique_ptr<Connector>(
      new RedisConnector(cfg.name(), std::move(c), std::move(host), port));
}

absl::Status RedisConnector::Authorize(const Action& action) const {
  WB_RETURN_IF_ERROR(actions::ValidateAction(kType, action.operation, action.params));
  WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, action.object, "target"));
  const std::string who = util::PrintableUtf8(action.object);
  if (action.object == cfg_.user()) {
    return absl::PermissionDeniedError(
        absl::StrCat("target: user ", who, " is the connector's own user"));
  }
  const auto& prot = cfg_.protected_users();
  if (std::find(prot.begin(), prot.end(), action.object) != prot.end()) {
    return absl::PermissionDeniedError(absl::StrCat("target: user ", who, " is protected"));
  }
  const auto& allowed = cfg_.allowed_users();
  if (!allowed.empty() &&
      std::find(allowed.begin(), allowed.end(), action.object) == allowed.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("target: user ", who, " is not in allowed_users of connector ", name_));
  }
  return absl::OkStatus();
}

absl::Duration RedisConnector::Timeout(const CallContext& ctx) const {
  absl::Duration t = absl::Seconds(cfg_.timeout_seconds());
  if (ctx.deadline != absl::InfiniteFuture()) {
    t = std::max(absl::Seconds(1), std::min(t, ctx.deadline - ctx.clock->Now()));
  }
  return t;
}

absl::StatusOr<std::unique_ptr<resp::Session>> RedisConnector::Connect(
    const CallContext& ctx) const {
  WB_ASSIGN_OR_RETURN(std::string pw, util::ReadSecretLine(cfg_.password_file(), "password_file"));
  WB_ASSIGN_OR_RETURN(auto s, resp::Session::Open(host_, port_, Timeout(ctx)));
  WB_ASSIGN_OR_RETURN(Value v, s->Command({"AUTH", cfg_.user(), pw}));
  if (!v.is_ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("AUTH as ", util::PrintableUtf8(cfg_.user()), ": ", v.str));
  }
  return s;
}

absl::StatusOr<writeback::v1::Plan> RedisConnector::PlanChange(const CallContext& ctx,
                                                               const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(Authorize(action));
  WB_ASSIGN_OR_RETURN(auto s, Connect(ctx));
  const std::string& user = action.object;
  const std::string who = util::PrintableUtf8(user);
  WB_ASSIGN_OR_RETURN(const UserState u, ReadUser(*s, user));
  WB_ASSIGN_OR_RETURN(const auto conns, ReadConnections(*s, user));
  WB_ASSIGN_OR_RETURN(const Needed n, Evaluate(*s, action, u));

  writeback::v1::Plan plan;
  *plan.add_before() = UserObservation(ctx, user, u);
  *plan.add_before() = ConnectionsObservation(ctx, user, conns);
  plan.set_state(util::EncodePlanState(
      kStateMagic, action, {action.operation == "kill_connections" ? "-" : u.Digest()}));
  std::vector<std::string> changes;
  if (!n.done) changes = n.describe;
  if (KillsConnections(action) && !conns.empty()) {
    std::string kill = absl::StrCat("CLIENT KILL USER ", who, " (", conns.size(),
                                    " connection(s): ids ", absl::StrJoin(conns, ","), ")");
    // delete_user: kill before the final ACL DELUSER.
    changes.insert(
        action.operation == "delete_user" && !changes.empty() ? changes.end() - 1 : changes.end(),
        std::move(kill));
  }
  plan.set_no_change(changes.empty());
  for (auto& c : changes) plan.add_changes(std::move(c));
  plan.set_summary(
      !u.exists && action.operation != "kill_connections" ? absl::StrCat("no user ", who)
      : plan.no_change() ? absl::StrCat(action.operation, " of user ", who, ": already in effect")
                         : absl::StrCat(action.operation, " of user ", who, ": ",
                                        plan.changes_size(), " change(s)"));
  return plan;
}

absl::StatusOr<writeback::v1::ApplyResult> RedisConnector::Apply(const CallContext& ctx,
                                                                 const Action& action,
                                                                 const writeback::v1::Plan& plan) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(Authorize(action));
  WB_ASSIGN_OR_RETURN(const std::vector<std::string> state,
                      util::DecodePlanState(kStateMagic, kType, action, plan.state(), 1));
  WB_ASSIGN_OR_RETURN(auto s, Connect(ctx));
  const std::string& user = action.object;
  const std::string who = util::PrintableUtf8(user);
  WB_ASSIGN_OR_RETURN(const UserState u, ReadUser(*s, user));
  if (action.operation != "kill_connections" && u.Digest() != state[0]) {
    return absl::FailedPreconditionError(
        absl::StrCat("user ", who, " changed since plan (ACL GETUSER differs)"));
  }
  WB_ASSIGN_OR_RETURN(const Needed n, Evaluate(*s, action, u));
  writeback::v1::ApplyResult result;
  bool acl_changed = false;
  if (!n.done && !n.rules.empty()) {
    std::vector<std::string> argv = {"ACL", "SETUSER", user};
    argv.insert(argv.end(), n.rules.begin(), n.rules.end());
    WB_ASSIGN_OR_RETURN(Value v, s->Must(argv, "ACL SETUSER"));
    acl_changed = true;
    for (const auto& d : n.describe) {
      if (!absl::StartsWith(d, "ACL DELUSER")) result.add_changes(d);
    }
  }
  if (u.exists && KillsConnections(action)) {
    WB_ASSIGN_OR_RETURN(Value v, s->Must({"CLIENT", "KILL", "USER", user}, "CLIENT KILL USER"));
    if (v.integer > 0) {
      result.add_changes(
          absl::StrCat("CLIENT KILL USER ", who, ": ", v.integer, " connection(s) closed"));
    }
  }
  if (action.operation == "delete_user" && u.exists) {
    WB_ASSIGN_OR_RETURN(Value v, s->Must({"ACL", "DELUSER", user}, "ACL DELUSER"));
    acl_changed = true;
    result.add_changes(absl::StrCat("ACL DELUSER ", who));
  }
  if (acl_changed) {
    bool save = cfg_.acl_save() == "always";
    if (cfg_.acl_save() == "auto") {
      WB_ASSIGN_OR_RETURN(Value v, s->Must({"CONFIG", "GET", "aclfile"}, "CONFIG GET aclfile"));
      save = v.elements.size() == 2 && !v.elements[1].str.empty();
    }
    if (save) {
      auto saved = s->Must({"ACL", "SAVE"}, "ACL SAVE");
      if (!saved.ok()) {
        return absl::Status(
            saved.status().code(),
            absl::StrCat("the change is live but not persisted: ", saved.status().message()));
      }
      result.add_changes("ACL SAVE (persisted to the server's ACL file)");
    }
  }
  return result;
}

absl::StatusOr<writeback::v1::Verification> RedisConnector::Verify(const CallContext& ctx,
                                                                   const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(Authorize(action));
  WB_ASSIGN_OR_RETURN(auto s, Connect(ctx));
  const std::string& user = action.object;
  const std::string who = util::PrintableUtf8(user);
  const std::string& op = action.operation;
  const auto& p = action.params.redis();
  WB_ASSIGN_OR_RETURN(const UserState u, ReadUser(*s, user));
  WB_ASSIGN_OR_RETURN(const auto conns, ReadConnections(*s, user));

  writeback::v1::Verification v;
  *v.add_after() = UserObservation(ctx, user, u);
  *v.add_after() = ConnectionsObservation(ctx, user, conns);
  std::vector<std::string> proved, failures;

  if (op == "kill_connections") {
    // Judged by the connections below.
  } else if (!u.exists) {
    if (op == "rotate_password") {
      failures.push_back(absl::StrCat("ACL GETUSER: no user ", who));
    } else {
      proved.push_back(absl::StrCat("ACL GETUSER: no user ", who,
                                    ", so nobody can "
                                    "authenticate as it"));
    }
  } else if (op == "disable_user") {
    if (u.Has("off")) {
      proved.push_back("ACL GETUSER: flags include 'off' (no new authentication)");
    } else {
      failures.push_back("ACL GETUSER: the user is still 'on'");
    }
  } else if (op == "reset_passwords") {
    if (u.passwords.empty() && !u.Has("nopass")) {
      proved.push_back("ACL GETUSER: no password and not nopass (no password can authenticate)");
    } else {
      failures.push_back(absl::StrCat("ACL GETUSER: ", u.passwords.size(), " password(s)",
                                      u.Has("nopass") ? ", nopass" : ""));
    }
  } else if (op == "rotate_password") {
    if (u.passwords == std::vector<std::string>{p.new_password_sha256()} && !u.Has("nopass")) {
      proved.push_back("ACL GETUSER: the only password is the new one (hash matches)");
    } else {
      failures.push_back(absl::StrCat("ACL GETUSER: the passwords are not exactly the new one (",
                                      u.passwords.size(), " password(s)",
                                      u.Has("nopass") ? ", nopass" : "", ")"));
    }
  } else if (op == "remove_permissions") {
    std::vector<std::string> entries(p.commands().begin(), p.commands().end());
    WB_ASSIGN_OR_RETURN(auto still, StillAllowed(*s, user, entries));
    Observation o;
    o.set_check("acl_dryrun");
    o.set_subject(who);
    o.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
    (*o.mutable_facts())["still_allowed"] = absl::StrJoin(still, " ");
    o.set_detail(absl::StrCat("ACL DRYRUN of every command the entries stand for: ", still.size(),
                              " still allowed"));
    *v.add_after() = std::move(o);
    if (!entries.empty()) {
      if (still.empty()) {
        proved.push_back("ACL DRYRUN: every removed command is refused");
      } else {
        failures.push_back(absl::StrCat("ACL DRYRUN: still allowed: ", absl::StrJoin(still, " ")));
      }
    }
    std::set<std::string> removed;
    for (const auto& k : p.key_patterns()) removed.insert(NormalizePattern(k));
    std::vector<std::string> present, broader;
    auto scan = [&](const std::vector<std::string>& keys) {
      for (const auto& k : keys) {
        if (removed.count(k)) present.push_back(k);
        if (!removed.empty() && IsCatchAll(k) && !removed.count(k)) broader.push_back(k);
      }
    };
    scan(u.keys);
    for (const auto& sel : u.selectors) scan(sel.keys);
    if (!removed.empty()) {
      if (!present.empty()) {
        failures.push_back(absl::StrCat("ACL GETUSER: key pattern(s) still present: ",
                                        util::PrintableUtf8(absl::StrJoin(present, " "), 500)));
      } else if (!broader.empty()) {
        failures.push_back(absl::StrCat("ACL GETUSER: a catch-all pattern still grants every key: ",
                                        absl::StrJoin(broader, " ")));
      } else {
        proved.push_back("ACL GETUSER: none of the removed key patterns (nor a catch-all) remains");
      }
    }
  } else if (op == "delete_user") {
    failures.push_back(absl::StrCat("ACL GETUSER: user ", who, " still exists"));
  }

  // Connections the apply killed are judged right after it; on
  // re-verification connections opened since (with the new password, or
  // before the user was disabled again) are only shown, not judged.
  if (op == "kill_connections" && ctx.reverification) {
    v.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
    v.set_detail(absl::StrCat(
        "kill_connections of user ", who,
        " has no lasting effect to re-verify (it ended the connections open when it ran)"));
    return v;
  }
  if (KillsConnections(action) && !ctx.reverification) {
    if (conns.empty()) {
      proved.push_back("CLIENT LIST: no connection authenticated as the user is left");
    } else {
      failures.push_back(absl::StrCat("CLIENT LIST: ", conns.size(),
                                      " connection(s) still authenticated as the user"));
    }
  }

  if (ProbeApplies(op) && failures.empty()) {
    for (const auto& probe : cfg_.probes()) {
      if (probe.account() != user) continue;
      Observation o;
      o.set_check("auth_probe");
      o.set_subject(who);
      auto pw = util::ReadSecretLine(probe.password_file(), "probes.password_file");
      if (!pw.ok()) {
        (*o.mutable_facts())["attempted"] = "false";
        o.set_detail(absl::StrCat("not attempted: ", pw.status().message()));
      } else {
        auto ps = resp::Session::Open(host_, port_, Timeout(ctx));
        if (!ps.ok()) {
          (*o.mutable_facts())["attempted"] = "false";
          o.set_detail(absl::StrCat("not attempted: ", ps.status().message()));
        } else {
          auto r = (*ps)->Command({"AUTH", user, *pw});
          (*o.mutable_facts())["attempted"] = "true";
          if (!r.ok()) {
            o.set_detail(absl::StrCat("inconclusive: ", r.status().message()));
          } else if (r->is_ok()) {
            (*o.mutable_facts())["accepted"] = "true";
            o.set_detail("the configured old credential still authenticates");
            failures.push_back("auth_probe: the old credential still authenticates");
          } else {
            (*o.mutable_facts())["accepted"] = "false";
            o.set_detail(absl::StrCat("refused: ", util::PrintableUtf8(r->str, 200)));
            proved.push_back(
                "auth_probe: AUTH with the old credential is refused (WRONGPASS alone would not "
                "say why; ACL GETUSER above does)");
          }
        }
      }
      o.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
      *v.add_after() = std::move(o);
    }
  }

  if (!failures.empty()) {
    v.set_outcome(writeback::v1::OUTCOME_FAILED);
    v.set_detail(
        absl::StrCat(op, " of user ", who, " not in effect: ", absl::StrJoin(failures, "; ")));
  } else {
    v.set_outcome(writeback::v1::OUTCOME_VERIFIED);
    v.set_detail(absl::StrCat(op, " of user ", who, " verified: ", absl::StrJoin(proved, "; ")));
  }
  return v;
}

absl::Status RedisConnector::Check(const CallContext& ctx) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_ASSIGN_OR_RETURN(auto s, Connect(ctx));
  WB_ASSIGN_OR_RETURN(Value v, s->Must({"PING"}, "PING"));
  return absl::OkStatus();
}

}  // namespace wb::connectors
