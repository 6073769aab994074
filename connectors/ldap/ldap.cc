#include "connectors/ldap/ldap.h"

#include <ldap.h>
#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/actions/actions.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "connectors/ldap/escape.h"
#include "connectors/util/connector_util.h"

namespace wb::connectors {
namespace {

using util::CheckDeadline;

using ldapc::Entry;
using ldapc::Mod;
using writeback::v1::Observation;

constexpr absl::string_view kType = "ldap";
constexpr absl::string_view kStateMagic = "ldap/v1";

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status ValidateDn(absl::string_view field, const std::string& dn, bool allow_empty) {
  if (dn.empty()) return allow_empty ? absl::OkStatus() : Invalid(field, "must not be empty");
  LDAPDN parsed = nullptr;
  const int rc = ldap_str2dn(dn.c_str(), &parsed, LDAP_DN_FORMAT_LDAPV3);
  if (parsed != nullptr) ldap_dnfree(parsed);
  if (rc != LDAP_SUCCESS) return Invalid(field, "is not a valid DN (RFC 4514)");
  return absl::OkStatus();
}

bool IsMemberUid(absl::string_view attr) { return absl::EqualsIgnoreCase(attr, "memberUid"); }

std::string PasswordDigest(const std::vector<std::string>& values) {
  if (values.empty()) return "none";
  std::string all;
  for (const auto& v : values) absl::StrAppend(&all, v, "\n");
  return crypto::HexEncode(crypto::Sha256(all));
}

// A group that lists the account under one membership attribute.
struct GroupRef {
  std::string dn;     // as the server returned it
  std::string attr;   // member / uniqueMember / memberUid
  std::string value;  // the value that names the account
  size_t values = 0;  // how many values the attribute has
};

struct Observed {
  bool exists = false;
  std::string dn;
  std::vector<std::string> lock_values;
  std::vector<std::string> passwords;
  std::string policy_dn;  // pwdPolicySubentry
  std::string csn;        // entryCSN: changes with every modification
  std::vector<GroupRef> refs;
  std::vector<std::string> missing_groups;  // explicit groups that do not exist
  // Verify only: the DN resolved to this entry, whose naming value is not
  // exactly the object (a look-alike, see Observe).
  std::string lookalike_dn;
};

std::vector<std::string> MemberAttrs(const writeback::v1::LdapConfig& c) {
  if (c.group_member_attributes_size() == 0) return {"member", "uniqueMember"};
  return {c.group_member_attributes().begin(), c.group_member_attributes().end()};
}

bool UsesGroups(const Action& a) {
  return a.operation == "remove_from_groups" ||
         (a.operation == "delete_entry" && !a.params.ldap().keep_group_memberships());
}

std::string Digest(const Action& a, const Observed& o) {
  std::string all = absl::StrCat(o.exists, "\n", o.csn, "\n");
  const std::string& op = a.operation;
  if (op == "lock") absl::StrAppend(&all, absl::StrJoin(o.lock_values, "\n"));
  if (op == "replace_password" || op == "remove_password") {
    absl::StrAppend(&all, PasswordDigest(o.passwords));
  }
  if (UsesGroups(a)) {
    std::vector<std::string> refs;
    for (const auto& r : o.refs) {
      refs.push_back(absl::StrCat(absl::AsciiStrToLower(r.dn), "\t", r.attr, "\t", r.values));
    }
    std::sort(refs.begin(), refs.end());
    absl::StrAppend(&all, absl::StrJoin(refs, "\n"));
  }
  return crypto::HexEncode(crypto::Sha256(all));
}

Observation EntryObservation(const CallContext& ctx, const writeback::v1::LdapConfig& cfg,
                             const Observed& o) {
  Observation ob;
  ob.set_check("read_entry");
  ob.set_subject(util::PrintableUtf8(o.dn, 500));
  ob.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  auto& f = *ob.mutable_facts();
  f["exists"] = o.exists ? "true" : "false";
  if (o.exists) {
    f[cfg.lock_attribute()] = util::PrintableUtf8(absl::StrJoin(o.lock_values, " "));
    f["userPassword_values"] = absl::StrCat(o.passwords.size());
    f["userPassword_sha256"] = PasswordDigest(o.passwords);
    if (!o.policy_dn.empty()) f["pwdPolicySubentry"] = util::PrintableUtf8(o.policy_dn, 500);
    ob.set_detail(absl::StrCat(
        "entry present; ", cfg.lock_attribute(), ": ",
        o.lock_values.empty() ? "(none)" : util::PrintableUtf8(absl::StrJoin(o.lock_values, " ")),
        "; ", o.passwords.size(), " userPassword value(s)"));
  } else {
    ob.set_detail("no such entry (noSuchObject)");
  }
  return ob;
}

Observation GroupsObservation(const CallContext& ctx, const Observed& o) {
  Observation ob;
  ob.set_check("group_membership");
  ob.set_subject(util::PrintableUtf8(o.dn, 500));
  ob.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
  std::vector<std::string> d;
  for (const auto& r : o.refs)
    d.push_back(absl::StrCat(util::PrintableUtf8(r.dn, 300), " (", r.attr, ")"));
  (*ob.mutable_facts())["groups"] = absl::StrCat(o.refs.size());
  (*ob.mutable_facts())["listed_in"] = absl::StrJoin(d, "; ");
  if (!o.missing_groups.empty()) {
    (*ob.mutable_facts())["missing_groups"] = absl::StrJoin(o.missing_groups, "; ");
  }
  ob.set_detail(absl::StrCat(o.refs.size(), " group membership(s)", d.empty() ? "" : ": ",
                             absl::StrJoin(d, "; ")));
  return ob;
}

bool EndsAccess(absl::string_view op) {
  return op == "lock" || op == "replace_password" || op == "remove_password" ||
         op == "delete_entry";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> LdapConnector::Create(
    const writeback::v1::ConnectorInstanceConfig& cfg) {
  const std::string where = absl::StrCat("connectors[", cfg.name(), "].ldap");
  if (cfg.settings_case() != writeback::v1::ConnectorInstanceConfig::kLdap) {
    return Invalid(where, "missing: a connector of type ldap needs ldap settings");
  }
  writeback::v1::LdapConfig c = cfg.ldap();
  ldapc::TlsMode tls;
  LDAPURLDesc* url = nullptr;
  if (c.uri().empty() || ldap_url_parse(c.uri().c_str(), &url) != LDAP_URL_SUCCESS) {
    if (url != nullptr) ldap_free_urldesc(url);
    return Invalid(where + ".uri", "must be ldaps://host[:port] or ldap://host[:port]");
  }
  const std::string scheme = url->lud_scheme != nullptr ? url->lud_scheme : "";
  const std::string host = url->lud_host != nullptr ? url->lud_host : "";
  ldap_free_urldesc(url);
  if (scheme != "ldaps" && scheme != "ldap") {
    return Invalid(where + ".uri", "must be ldaps://host[:port] or ldap://host[:port]");
  }
  if (c.allow_plaintext_loopback()) {
    if (scheme != "ldap" || !(host == "127.0.0.1" || host == "::1" || host == "localhost")) {
      return Invalid(where + ".allow_plaintext_loopback",
                     "plain LDAP is allowed only to ldap://127.0.0.1, ::1 or localhost");
    }
    tls.plaintext = true;
  } else {
    tls.start_tls = scheme == "ldap";
  }
  if (!c.ca_file().empty() && c.ca_file()[0] != '/') {
    return Invalid(where + ".ca_file", "must be an absolute path");
  }
  tls.ca_file = c.ca_file();
  WB_RETURN_IF_ERROR(ValidateDn(where + ".bind_dn", c.bind_dn(), false));
  if (c.password_file().empty() || c.password_file()[0] != '/') {
    return Invalid(where + ".password_file", "must be an absolute path");
  }
  WB_RETURN_IF_ERROR(ValidateDn(where + ".user_base_dn", c.user_base_dn(), false));
  if (c.user_rdn_attribute().empty()) c.set_user_rdn_attribute("uid");
  if (c.group_rdn_attribute().empty()) c.set_group_rdn_attribute("cn");
  if (c.lock_attribute().empty()) c.set_lock_attribute("pwdAccountLockedTime");
  if (c.lock_value().empty()) c.set_lock_value("000001010000Z");
  for (const auto& [field, attr] : std::vector<std::pair<std::string, std::string>>{
           {"user_rdn_attribute", c.user_rdn_attribute()},
           {"group_rdn_attribute", c.group_rdn_attribute()},
           {"lock_attribute", c.lock_attribute()}}) {
    if (!ldapesc::IsAttributeName(attr)) {
      return Invalid(absl::StrCat(where, ".", field), "is not an attribute name");
    }
  }
  for (int i = 0; i < c.group_member_attributes_size(); ++i) {
    if (!ldapesc::IsAttributeName(c.group_member_attributes(i))) {
      return Invalid(absl::StrCat(where, ".group_member_attributes[", i, "]"),
                     "is not an attribute name");
    }
  }
  WB_RETURN_IF_ERROR(actions::ValidateText(where + ".lock_value", c.lock_value(), 256, false));
  WB_RETURN_IF_ERROR(ValidateDn(where + ".group_base_dn", c.group_base_dn(), true));
  WB_RETURN_IF_ERROR(ValidateDn(where + ".monitor_dn", c.monitor_dn(), true));
  WB_RETURN_IF_ERROR(ValidateDn(where + ".ppolicy_dn", c.ppolicy_dn(), true));
  WB_RETURN_IF_ERROR(
      ValidateDn(where + ".empty_group_placeholder_dn", c.empty_group_placeholder_dn(), true));
  if (c.timeout_seconds() == 0) c.set_timeout_seconds(10);
  for (int i = 0; i < c.protected_objects_size(); ++i) {
    WB_RETURN_IF_ERROR(actions::ValidateTargetObject(
        kType, c.protected_objects(i), absl::StrCat(where, ".protected_objects[", i, "]")));
  }
  for (int i = 0; i < c.probes_size(); ++i) {
    const std::string f = absl::StrCat(where, ".probes[", i, "]");
    WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, c.probes(i).account(), f + ".account"));
    if (c.probes(i).password_file().empty() || c.probes(i).password_file()[0] != '/') {
      return Invalid(f + ".password_file", "must be an absolute path");
    }
  }
  return std::unique_ptr<Connector>(new LdapConnector(cfg.name(), std::move(c), std::move(tls)));
}

std::string LdapConnector::DnOf(absl::string_view object) const {
  return ldapesc::MakeDn(cfg_.user_rdn_attribute(), object, cfg_.user_base_dn());
}

absl::Status LdapConnector::Authorize(const Action& action) const {
  WB_RETURN_IF_ERROR(actions::ValidateAction(kType, action.operation, action.params));
  WB_RETURN_IF_ERROR(actions::ValidateTargetObject(kType, action.object, "target"));
  const std::string who = util::PrintableUtf8(action.object);
  const auto& prot = cfg_.protected_objects();
  if (std::find(prot.begin(), prot.end(), action.object) != prot.end()) {
    return absl::PermissionDeniedError(absl::StrCat("target: ", who, " is protected"));
  }
  if (absl::EqualsIgnoreCase(DnOf(action.object), cfg_.bind_dn())) {
    return absl::PermissionDeniedError(
        absl::StrCat("target: ", who, " is the connector's own account"));
  }
  if (UsesGroups(action) && cfg_.group_base_dn().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(action.operation, " needs group_base_dn in the connector's config"));
  }
  return absl::OkStatus();
}

absl::Duration LdapConnector::Timeout(const CallContext& ctx) const {
  absl::Duration t = absl::Seconds(cfg_.timeout_seconds());
  if (ctx.deadline != absl::InfiniteFuture()) {
    t = std::max(absl::Seconds(1), std::min(t, ctx.deadline - ctx.clock->Now()));
  }
  return t;
}

absl::StatusOr<std::unique_ptr<ldapc::Session>> LdapConnector::Connect(
    const CallContext& ctx) const {
  WB_ASSIGN_OR_RETURN(std::string pw, util::ReadSecretLine(cfg_.password_file(), "password_file"));
  WB_ASSIGN_OR_RETURN(auto s, ldapc::Session::Open(cfg_.uri(), tls_, Timeout(ctx)));
  WB_RETURN_IF_ERROR(s->Bind(cfg_.bind_dn(), pw));
  return s;
}

namespace {

absl::Status LookAlikeError(const writeback::v1::LdapConfig& cfg, const Action& a,
                            const std::string& entry_dn) {
  return absl::FailedPreconditionError(absl::StrCat(
      "object: the directory resolves '", util::PrintableUtf8(a.object, 80), "' to ",
      util::PrintableUtf8(entry_dn, 300), ", whose ", cfg.user_rdn_attribute(),
      " is not exactly that value (LDAP matching ignores case and spacing); refusing to act "
      "on a look-alike"));
}

// Reads the account and the groups that list it (limited to the explicit
// groups when the action names some). A look-alike entry is an error, or,
// with `allow_lookalike` (Verify), read and marked in lookalike_dn.
absl::StatusOr<Observed> Observe(ldapc::Session& s, const writeback::v1::LdapConfig& cfg,
                                 const Action& a, const std::string& dn,
                                 bool allow_lookalike = false) {
  Observed o;
  o.dn = dn;
  WB_ASSIGN_OR_RETURN(
      auto entry, s.Read(dn, {cfg.lock_attribute(), "userPassword", "pwdPolicySubentry", "entryCSN",
                              cfg.user_rdn_attribute()}));
  if (entry.has_value()) {
    // The directory resolves a DN with the attribute's matching rule, which
    // ignores case, repeated spaces and compatibility forms ("SVC", "ｓｖｃ"
    // name the entry uid=svc). Act only on the entry whose naming value is
    // exactly the object: never on a look-alike.
    const auto& names = entry->Values(cfg.user_rdn_attribute());
    if (std::find(names.begin(), names.end(), a.object) == names.end()) {
      if (!allow_lookalike) return LookAlikeError(cfg, a, entry->dn);
      o.lookalike_dn = entry->dn;
    }
    o.exists = true;
    o.lock_values = entry->Values(cfg.lock_attribute());
    o.passwords = entry->Values("userPassword");
    const auto& p = entry->Values("pwdPolicySubentry");
    if (!p.empty()) o.policy_dn = p[0];
    const auto& csn = entry->Values("entryCSN");
    if (!csn.empty()) o.csn = csn[0];
  }
  if (!UsesGroups(a)) return o;
  const std::vector<std::string> attrs = MemberAttrs(cfg);
  std::vector<Entry> groups;
  if (a.operation == "remove_from_groups" && a.params.ldap().groups_size() > 0) {
    for (const auto& g : a.params.ldap().groups()) {
      const std::string gdn = ldapesc::MakeDn(cfg.group_rdn_attribute(), g, cfg.group_base_dn());
      WB_ASSIGN_OR_RETURN(auto ge, s.Read(gdn, attrs));
      if (ge.has_value()) {
        groups.push_back(std::move(*ge));
      } else {
        o.missing_groups.push_back(util::PrintableUtf8(gdn, 300));
      }
    }
  } else {
    std::string filter = "(|";
    for (const auto& attr : attrs) {
      absl::StrAppend(&filter, "(", attr, "=",
                      ldapesc::EscapeFilterValue(IsMemberUid(attr) ? a.object : dn), ")");
    }
    absl::StrAppend(&filter, ")");
    WB_ASSIGN_OR_RETURN(groups, s.Search(cfg.group_base_dn(), LDAP_SCOPE_SUBTREE, filter, attrs));
  }
  for (const auto& g : groups) {
    for (const auto& attr : attrs) {
      const std::string value = IsMemberUid(attr) ? a.object : dn;
      const auto& vals = g.Values(attr);
      if (vals.empty()) continue;
      // The server decides what matches (DN normalisation, case).
      WB_ASSIGN_OR_RETURN(bool listed, s.Compare(g.dn, attr, value));
      if (listed) o.refs.push_back(GroupRef{g.dn, attr, value, vals.size()});
    }
  }
  return o;
}

struct Needed {
  bool done = true;
  std::vector<std::string> changes;
};

absl::StatusOr<Needed> Evaluate(const writeback::v1::LdapConfig& cfg, const Action& a,
                                const Observed& o) {
  Needed n;
  const std::string& op = a.operation;
  const std::string dn = util::PrintableUtf8(o.dn, 300);
  if (UsesGroups(a)) {
    for (const auto& r : o.refs) {
      n.changes.push_back(
          absl::StrCat("delete ", r.attr, " ", dn, " from group ", util::PrintableUtf8(r.dn, 300)));
    }
  }
  if (op == "lock" && o.exists &&
      std::find(o.lock_values.begin(), o.lock_values.end(), cfg.lock_value()) ==
          o.lock_values.end()) {
    n.changes.push_back(
        absl::StrCat("set ", cfg.lock_attribute(), ": ", cfg.lock_value(), " on ", dn));
  }
  if (op == "replace_password") {
    if (!o.exists) return absl::FailedPreconditionError(absl::StrCat("no entry ", dn));
    const auto& p = a.params.ldap();
    if (o.passwords != std::vector<std::string>{p.new_password_hash()}) {
      if (PasswordDigest(o.passwords) != p.expected_password_sha256()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the userPassword of ", dn, " is not the expected one (sha256 ",
            PasswordDigest(o.passwords), ", expected ", p.expected_password_sha256(), ")"));
      }
      n.changes.push_back(absl::StrCat(
          "replace userPassword of ", dn, " (new value sha256 ",
          crypto::HexEncode(crypto::Sha256(p.new_password_hash())).substr(0, 16), "...)"));
    }
  }
  if (op == "remove_password" && o.exists && !o.passwords.empty()) {
    n.changes.push_back(
        absl::StrCat("delete userPassword of ", dn, " (", o.passwords.size(), " value(s))"));
  }
  if (op == "delete_entry" && o.exists) n.changes.push_back(absl::StrCat("delete entry ", dn));
  n.done = n.changes.empty();
  return n;
}

}  // namespace

absl::StatusOr<writeback::v1::Plan> LdapConnector::PlanChange(const CallContext& ctx,
                                                              const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(Authorize(action));
  WB_ASSIGN_OR_RETURN(auto s, Connect(ctx));
  const std::string dn = DnOf(action.object);
  WB_ASSIGN_OR_RETURN(const Observed o, Observe(*s, cfg_, action, dn));
  WB_ASSIGN_OR_RETURN(const Needed n, Evaluate(cfg_, action, o));
  writeback::v1::Plan plan;
  *plan.add_before() = EntryObservation(ctx, cfg_, o);
  if (UsesGroups(action)) *plan.add_before() = GroupsObservation(ctx, o);
  plan.set_state(util::EncodePlanState(kStateMagic, action, {Digest(action, o)}));
  plan.set_no_change(n.done);
  for (const auto& c : n.changes) plan.add_changes(c);
  plan.set_summary(n.done ? absl::StrCat(action.operation, " of ", util::PrintableUtf8(dn, 300),
                                         o.exists ? ": already in effect" : ": no such entry")
                          : absl::StrCat(action.operation, " of ", util::PrintableUtf8(dn, 300),
                                         ": ", n.changes.size(), " change(s)"));
  return plan;
}

absl::StatusOr<writeback::v1::ApplyResult> LdapConnector::Apply(const CallContext& ctx,
                                                                const Action& action,
                                                                const writeback::v1::Plan& plan) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(Authorize(action));
  WB_ASSIGN_OR_RETURN(const std::vector<std::string> state,
                      util::DecodePlanState(kStateMagic, kType, action, plan.state(), 1));
  WB_ASSIGN_OR_RETURN(auto s, Connect(ctx));
  const std::string dn = DnOf(action.object);
  const std::string pdn = util::PrintableUtf8(dn, 300);
  WB_ASSIGN_OR_RETURN(const Observed o, Observe(*s, cfg_, action, dn));
  if (Digest(action, o) != state[0]) {
    return absl::FailedPreconditionError(absl::StrCat(pdn, " changed since plan"));
  }
  WB_ASSIGN_OR_RETURN(const Needed n, Evaluate(cfg_, action, o));
  writeback::v1::ApplyResult result;
  if (n.done) return result;
  const std::string& op = action.operation;
  if (UsesGroups(action)) {
    for (const auto& r : o.refs) {
      absl::Status st = s->Modify(r.dn, {Mod{Mod::kDelete, r.attr, {r.value}}});
      if (!st.ok() && s->rc() == LDAP_OBJECT_CLASS_VIOLATION && r.values == 1) {
        if (cfg_.empty_group_placeholder_dn().empty()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "group ", util::PrintableUtf8(r.dn, 300), " would lose its last ", r.attr,
              " (its schema needs one); set empty_group_placeholder_dn or remove the group"));
        }
        // One modify: the schema is checked after both changes.
        st = s->Modify(r.dn, {Mod{Mod::kAdd, r.attr, {cfg_.empty_group_placeholder_dn()}},
                              Mod{Mod::kDelete, r.attr, {r.value}}});
        if (st.ok()) {
          result.add_changes(absl::StrCat(
              "added placeholder ", util::PrintableUtf8(cfg_.empty_group_placeholder_dn(), 300),
              " to ", util::PrintableUtf8(r.dn, 300)));
        }
      }
      if (!st.ok()) return st;
      result.add_changes(absl::StrCat("deleted ", r.attr, " ", pdn, " from group ",
                                      util::PrintableUtf8(r.dn, 300)));
    }
  }
  if (op == "lock" && o.exists) {
    WB_RETURN_IF_ERROR(
        s->Modify(dn, {Mod{Mod::kReplace, cfg_.lock_attribute(), {cfg_.lock_value()}}}));
    result.add_changes(
        absl::StrCat("set ", cfg_.lock_attribute(), ": ", cfg_.lock_value(), " on ", pdn));
  } else if (op == "replace_password") {
    WB_RETURN_IF_ERROR(s->Modify(
        dn, {Mod{Mod::kReplace, "userPassword", {action.params.ldap().new_password_hash()}}}));
    result.add_changes(absl::StrCat("replaced userPassword of ", pdn));
  } else if (op == "remove_password" && !o.passwords.empty()) {
    WB_RETURN_IF_ERROR(s->Modify(dn, {Mod{Mod::kDelete, "userPassword", {}}}));
    result.add_changes(absl::StrCat("deleted userPassword of ", pdn));
  } else if (op == "delete_entry" && o.exists) {
    absl::Status st = s->Delete(dn);
    if (!st.ok() && s->rc() == LDAP_NOT_ALLOWED_ON_NONLEAF) {
      return absl::FailedPreconditionError(
          absl::StrCat(pdn, " has entries below it; delete_entry removes leaf entries only"));
    }
    WB_RETURN_IF_ERROR(st);
    result.add_changes(absl::StrCat("deleted entry ", pdn));
  }
  return result;
}

absl::StatusOr<writeback::v1::Verification> LdapConnector::Verify(const CallContext& ctx,
                                                                  const Action& action) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  WB_RETURN_IF_ERROR(Authorize(action));
  WB_ASSIGN_OR_RETURN(auto s, Connect(ctx));
  const std::string dn = DnOf(action.object);
  const std::string pdn = util::PrintableUtf8(dn, 300);
  const std::string& op = action.operation;
  // A look-alike entry (the DN resolves to "SVC" for "svc") is read too:
  // whoever binds with the object's DN reaches it, so it can show drift.
  WB_ASSIGN_OR_RETURN(const Observed o, Observe(*s, cfg_, action, dn, /*allow_lookalike=*/true));
  const bool lookalike = !o.lookalike_dn.empty();
  writeback::v1::Verification v;
  *v.add_after() = EntryObservation(ctx, cfg_, o);
  if (UsesGroups(action)) *v.add_after() = GroupsObservation(ctx, o);
  std::vector<std::string> proved, failures, notes;
  bool enforcement_unknown = false;

  if (UsesGroups(action)) {
    if (o.refs.empty()) {
      proved.push_back("group search: no group under group_base_dn lists the account");
    } else {
      failures.push_back(absl::StrCat("group search: still listed in ", o.refs.size(),
                                      " group(s): ", v.after(1).facts().at("listed_in")));
    }
  }
  if (op == "lock") {
    if (!o.exists) {
      proved.push_back("read_entry: no such entry, nothing can bind as it");
    } else if (std::find(o.lock_values.begin(), o.lock_values.end(), cfg_.lock_value()) ==
               o.lock_values.end()) {
      failures.push_back(
          absl::StrCat("read_entry: ", cfg_.lock_attribute(), " is not ", cfg_.lock_value()));
    } else {
      proved.push_back(
          absl::StrCat("read_entry: ", cfg_.lock_attribute(), " = ", cfg_.lock_value()));
      enforcement_unknown = true;
      if (absl::EqualsIgnoreCase(cfg_.lock_attribute(), "pwdAccountLockedTime")) {
        const std::string policy = !o.policy_dn.empty() ? o.policy_dn : cfg_.ppolicy_dn();
        if (!policy.empty()) {
          Observation ob;
          ob.set_check("read_policy");
          ob.set_subject(util::PrintableUtf8(policy, 300));
          ob.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
          auto pe = s->Read(policy, {"pwdLockout"});
          if (!pe.ok() || !pe->has_value()) {
            ob.set_detail(pe.ok() ? "no such policy entry" : std::string(pe.status().message()));
          } else {
            const auto& lockout = (*pe)->Values("pwdLockout");
            const bool on = !lockout.empty() && absl::EqualsIgnoreCase(lockout[0], "TRUE");
            (*ob.mutable_facts())["pwdLockout"] = lockout.empty() ? "" : lockout[0];
            ob.set_detail(absl::StrCat("pwdLockout: ", lockout.empty() ? "(absent)" : lockout[0]));
            if (on) {
              enforcement_unknown = false;
              proved.push_back(
                  "read_policy: the account's password policy has pwdLockout TRUE, "
                  "so ppolicy refuses binds of a locked account");
            } else {
              failures.push_back(
                  "read_policy: the password policy does not enforce locks "
                  "(pwdLockout is not TRUE)");
            }
          }
          *v.add_after() = std::move(ob);
        }
      }
    }
  } else if (op == "replace_password") {
    if (!o.exists) {
      failures.push_back("read_entry: no such entry");
    } else if (o.passwords == std::vector<std::string>{action.params.ldap().new_password_hash()}) {
      proved.push_back("read_entry: userPassword is exactly the new value");
    } else {
      failures.push_back("read_entry: userPassword is not the new value");
    }
  } else if (op == "remove_password") {
    if (!o.exists) {
      proved.push_back("read_entry: no such entry, nothing can bind as it");
    } else if (o.passwords.empty()) {
      proved.push_back("read_entry: no userPassword, so no simple bind can succeed");
    } else {
      failures.push_back(
          absl::StrCat("read_entry: ", o.passwords.size(), " userPassword value(s) remain"));
    }
  } else if (op == "delete_entry") {
    if (o.exists) {
      failures.push_back("read_entry: the entry still exists");
    } else {
      proved.push_back("read_entry: noSuchObject, the entry is gone");
    }
  }

  if (EndsAccess(op)) {
    if (cfg_.monitor_dn().empty()) {
      notes.push_back("connections still bound as the account are not observed (no monitor_dn)");
    } else {
      auto conns =
          s->Search(cfg_.monitor_dn(), LDAP_SCOPE_ONELEVEL,
                    absl::StrCat("(monitorConnectionAuthzDN=", ldapesc::EscapeFilterValue(dn), ")"),
                    {"monitorConnectionNumber"});
      Observation ob;
      ob.set_check("monitor_connections");
      ob.set_subject(pdn);
      ob.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
      if (!conns.ok()) {
        ob.set_detail(
            absl::StrCat("cannot read ", cfg_.monitor_dn(), ": ", conns.status().message()));
        notes.push_back("connections still bound as the account could not be observed");
      } else {
        (*ob.mutable_facts())["bound_connections"] = absl::StrCat(conns->size());
        ob.set_detail(absl::StrCat(conns->size(), " connection(s) bound as the account"));
        if (conns->empty()) {
          proved.push_back("cn=Monitor: no connection is bound as the account");
        } else if (ctx.reverification) {
          // Judged right after the apply; later binds (with a new password)
          // are legitimate, so a re-verification only shows them.
          notes.push_back(absl::StrCat("cn=Monitor: ", conns->size(),
                                       " connection(s) bound as the account (not judged on "
                                       "re-verification)"));
        } else {
          failures.push_back(absl::StrCat(
              "cn=Monitor: ", conns->size(),
              " connection(s) still bound as the account; LDAP has no operation to end them "
              "(they last until they unbind or slapd's idletimeout closes them)"));
        }
      }
      *v.add_after() = std::move(ob);
    }
  }

  if (lookalike) {
    // The entry the DN reaches is not the account by its exact name: drift
    // when it undoes the effect (the server honours binds and group
    // membership under the object's DN), otherwise "cannot tell" — never
    // VERIFIED on a look-alike.
    if (failures.empty()) return LookAlikeError(cfg_, action, o.lookalike_dn);
    v.set_outcome(writeback::v1::OUTCOME_FAILED);
    v.set_detail(absl::StrCat(op, " of ", pdn, " not in effect: the directory resolves this DN to ",
                              util::PrintableUtf8(o.lookalike_dn, 300), ", whose ",
                              cfg_.user_rdn_attribute(),
                              " is not exactly the object (a look-alike) and which undoes it: ",
                              absl::StrJoin(failures, "; ")));
    return v;
  }

  if (EndsAccess(op) && failures.empty() && o.exists) {
    for (const auto& probe : cfg_.probes()) {
      if (probe.account() != action.object) continue;
      Observation ob;
      ob.set_check("bind_probe");
      ob.set_subject(pdn);
      auto pw = util::ReadSecretLine(probe.password_file(), "probes.password_file");
      if (!pw.ok()) {
        (*ob.mutable_facts())["attempted"] = "false";
        ob.set_detail(absl::StrCat("not attempted: ", pw.status().message()));
      } else {
        // Is the probe's password the entry's current one? (OpenLDAP
        // compares a cleartext assertion against the stored hash.) Only
        // then does a refused bind say something about the lock.
        auto matches = s->Compare(dn, "userPassword", *pw);
        (*ob.mutable_facts())["credential_matches_entry"] =
            !matches.ok() ? "unknown" : (*matches ? "true" : "false");
        auto ps = ldapc::Session::Open(cfg_.uri(), tls_, Timeout(ctx));
        if (!ps.ok()) {
          (*ob.mutable_facts())["attempted"] = "false";
          ob.set_detail(absl::StrCat("not attempted: ", ps.status().message()));
        } else {
          const absl::Status b = (*ps)->Bind(dn, *pw);
          (*ob.mutable_facts())["attempted"] = "true";
          (*ob.mutable_facts())["result_code"] = absl::StrCat((*ps)->rc());
          if (b.ok()) {
            ob.set_detail("the configured old credential still binds");
            failures.push_back("bind_probe: the old credential still binds");
          } else if ((*ps)->rc() == LDAP_INVALID_CREDENTIALS) {
            ob.set_detail(absl::StrCat("refused with invalidCredentials (49); ", b.message()));
            if (op == "lock" && matches.ok() && *matches) {
              enforcement_unknown = false;
              proved.push_back(
                  "bind_probe: the account's own current password is refused, so the lock is "
                  "enforced");
            } else {
              proved.push_back(
                  "bind_probe: the old credential is refused (49 alone would not say why; the "
                  "entry read above does)");
            }
          } else {
            ob.set_detail(absl::StrCat("inconclusive: ", b.message()));
          }
        }
      }
      ob.set_observed_at_unix_ms(ctx.clock->NowUnixMs());
      *v.add_after() = std::move(ob);
    }
  }

  const std::string tail = notes.empty() ? "" : absl::StrCat(" (", absl::StrJoin(notes, "; "), ")");
  if (!failures.empty()) {
    v.set_outcome(writeback::v1::OUTCOME_FAILED);
    v.set_detail(absl::StrCat(op, " of ", pdn, " not in effect: ", absl::StrJoin(failures, "; ")));
  } else if (enforcement_unknown) {
    v.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
    v.set_detail(absl::StrCat(op, " of ", pdn, ": ", absl::StrJoin(proved, "; "),
                              "; but nothing observed shows the server enforces the lock "
                              "(configure ppolicy_dn or a probe with the current password)",
                              tail));
  } else {
    v.set_outcome(writeback::v1::OUTCOME_VERIFIED);
    v.set_detail(absl::StrCat(op, " of ", pdn, " verified: ", absl::StrJoin(proved, "; "), tail));
  }
  return v;
}

absl::Status LdapConnector::Check(const CallContext& ctx) {
  WB_RETURN_IF_ERROR(CheckDeadline(ctx));
  return Connect(ctx).status();
}

}  // namespace wb::connectors
