// Fuzz target: validation of every connector type's parameters and target
// objects (common/actions), and the connectors' own pure functions over
// strings that come from tasks or from the target's files:
//   vault          path/namespace/policy/accessor grammars, URL encoding
//   ldap           DN and filter escaping, attribute names
//   secret_file    .env / INI / JSON removal with the task's key/section/path
//   sudoers        parsing and RemoveUser with the task's user
//   ssh_authorized_keys  authorized_keys parsing, key-blob inspection
//   posix_account  passwd/shadow/group/gshadow parsing
//   all            PrintableUtf8, plan state encode/decode
//
// Input (tests/fuzz/fuzz_support.h Reader): byte type index (one past the
// last = an unknown type), byte operation index (one past the last = an
// unknown operation), byte flags, Str object, Str content (a target file),
// rest = ActionParams bytes. Properties (round trips, "nothing removed
// means nothing changed") abort when violated.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/actions/actions.h"
#include "common/actions/vault_names.h"
#include "connectors/ldap/escape.h"
#include "connectors/posix_account/account_db.h"
#include "connectors/secret_file/formats.h"
#include "connectors/ssh_authorized_keys/authorized_keys.h"
#include "connectors/sudoers/sudoers_file.h"
#include "connectors/util/connector_util.h"
#include "connectors/vault/vault_path.h"
#include "tests/fuzz/fuzz_support.h"

namespace wb::fuzz {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Undoes a backslash escaping ("\XX" hex or "\c"); false if malformed or if
// a byte in `must_escape` appears unescaped.
bool Unescape(absl::string_view s, absl::string_view must_escape, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      if (must_escape.find(s[i]) != absl::string_view::npos) return false;
      out->push_back(s[i]);
      continue;
    }
    if (i + 1 >= s.size()) return false;
    if (i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out->push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out->push_back(s[++i]);
    }
  }
  return true;
}

void FuzzVault(const std::string& object) {
  (void)connectors::vault::ValidateNamespace("namespace", object);
  (void)actions::vault::ValidatePolicyName("policy", object);
  (void)actions::vault::ValidateAccessor("accessor", object);
  (void)actions::vault::ValidateRoleName("role", object);
  const std::string comp = connectors::vault::EncodeComponent(object);
  for (char c : comp) {
    Require(absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '%',
            "vault: an encoded component carries a reserved character");
  }
  if (!actions::vault::ValidatePath("path", object).ok()) return;
  const std::string path = connectors::vault::EncodePath(object);
  std::vector<absl::string_view> in = absl::StrSplit(object, '/');
  std::vector<absl::string_view> out = absl::StrSplit(path, '/');
  Require(in.size() == out.size(), "vault: encoding changed the number of path components");
  for (size_t i = 0; i < in.size(); ++i) {
    Require(out[i] == connectors::vault::EncodeComponent(in[i]),
            "vault: a path component is not encoded on its own");
    Require(out[i] != "." && out[i] != "..", "vault: an encoded component is a dot segment");
  }
}

void FuzzLdap(const std::string& object, const writeback::v1::ActionParams& params) {
  std::vector<std::string> values = {object};
  for (const auto& g : params.ldap().groups()) values.push_back(g);
  for (const std::string& v : values) {
    std::string back;
    const std::string dn = connectors::ldapesc::EscapeDnValue(v);
    Require(Unescape(dn, ",+\"<>;=", &back) && back == v, "ldap: DN value escaping is not exact");
    if (!dn.empty()) {
      Require(dn.front() != '#' && dn.front() != ' ', "ldap: DN value starts with '#' or space");
      Require(dn.back() != ' ' || (dn.size() >= 2 && dn[dn.size() - 2] == '\\'),
              "ldap: DN value ends with an unescaped space");
    }
    const std::string f = connectors::ldapesc::EscapeFilterValue(v);
    Require(Unescape(f, std::string("*()\0", 4), &back) && back == v,
            "ldap: filter value escaping is not exact");
    (void)connectors::ldapesc::MakeDn("uid", v, "ou=people,dc=example,dc=org");
    (void)connectors::ldapesc::IsAttributeName(v);
  }
}

void FuzzSecretFile(absl::string_view op, const std::string& content,
                    const writeback::v1::SecretFileParams& p) {
  namespace sf = connectors::secret_file;
  sf::Removal r;
  if (op == "remove_env_key") {
    r = sf::RemoveEnvKey(content, p.key());
  } else if (op == "remove_ini_key") {
    r = sf::RemoveIniKey(content, p.section(), p.key());
  } else if (op == "remove_ini_section") {
    r = sf::RemoveIniSection(content, p.section());
  } else if (op == "remove_json_path") {
    std::vector<std::string> path(p.json_path().begin(), p.json_path().end());
    (void)sf::RemoveJsonPath(content, path);
    return;
  } else {
    return;
  }
  Require(r.new_content.size() <= content.size(), "secret_file: removal made the file longer");
  if (r.removed.empty()) Require(r.new_content == content, "secret_file: nothing removed, changed");
}

void FuzzSudoers(absl::string_view op, const std::string& object, const std::string& content,
                 const writeback::v1::SudoersParams& p) {
  namespace su = connectors::sudoers;
  for (const su::LogicalLine& l : su::ParseSudoers(content)) {
    Require(l.begin <= l.end && l.end <= content.size(), "sudoers: line span out of the file");
    (void)su::LineText(content, l);
  }
  if (op != "remove_user_rules") return;
  const su::UserEdit e = su::RemoveUser(content, p.user());
  if (e.changes.empty()) Require(e.new_content == content, "sudoers: no change, file changed");
  (void)object;
}

void FuzzAuthorizedKeys(const std::string& object, const std::string& content) {
  namespace ak = connectors::sshak;
  std::string joined;
  for (const ak::Line& l : ak::ParseAuthorizedKeys(content))
    joined.append(l.raw.data(), l.raw.size());
  Require(joined == content, "authorized_keys: lines do not add up to the file");
  (void)ak::InspectKeyBlob(content);
  (void)ak::InspectKeyBlob(object);
  (void)ak::Printable(content);
}

void FuzzAccounts(const std::string& object, const std::string& content,
                  const writeback::v1::PosixAccountParams& p) {
  namespace pa = connectors::posix;
  std::vector<std::string> parts = absl::StrSplit(content, absl::MaxSplits("\n---\n", 3));
  parts.resize(4);
  pa::AccountFiles files{parts[0], parts[1], parts[2], parts[3], !parts[3].empty()};
  const pa::AccountView a = pa::DescribeAccount(files, object);
  (void)a.ExpireDay();
  (void)a.ExpiredOn(20'000);
  (void)pa::DescribeGroup(files, p.group().empty() ? object : p.group());
  (void)pa::HomeDirectories(files);
}

void FuzzPlanState(absl::string_view type, const connectors::Action& action,
                   const std::string& content, int nfields) {
  namespace util = connectors::util;
  const std::string magic = absl::StrCat("wb-fuzz-", type, "-v1");
  (void)util::DecodePlanState(magic, type, action, content, static_cast<size_t>(nfields));
  std::vector<std::string> fields = absl::StrSplit(content, '\n');
  fields.resize(static_cast<size_t>(nfields));
  if (action.operation.find('\n') != std::string::npos) return;
  auto back = util::DecodePlanState(magic, type, action,
                                    util::EncodePlanState(magic, action, fields), fields.size());
  Require(back.ok() && *back == fields, "plan state does not round-trip");
  connectors::Action other = action;
  other.object.push_back('x');
  Require(!util::DecodePlanState(magic, type, other, util::EncodePlanState(magic, action, fields),
                                 fields.size())
               .ok(),
          "plan state accepted for another object");
}

void Run(const uint8_t* data, size_t size) {
  QuietProtobufLogs();
  Reader in(data, size);
  const std::vector<std::string>& types = actions::ConnectorTypes();
  const size_t ti = in.Byte() % (types.size() + 1);
  const std::string type = ti < types.size() ? types[ti] : "no_such_type";
  const std::vector<std::string>& ops = actions::OperationsOf(type);
  const size_t oi = in.Byte() % (ops.size() + 1);
  const std::string op = oi < ops.size() ? ops[oi] : "no_such_operation";
  const uint8_t flags = in.Byte();
  const std::string object = in.Str();
  const std::string content = in.Str();
  writeback::v1::ActionParams params;
  if (!params.ParseFromString(in.Rest())) params.Clear();

  const absl::Status action_ok = actions::ValidateAction(type, op, params, "spec.");
  const absl::Status target_ok = actions::ValidateTargetObject(type, object, "spec.targets[0]");
  for (const absl::Status& s : {action_ok, target_ok}) {
    Require(s.ok() || (s.code() == absl::StatusCode::kInvalidArgument && !s.message().empty()),
            "a refusal is not INVALID_ARGUMENT with a message");
  }
  if (action_ok.ok()) {
    Require(ti < types.size() && oi < ops.size(), "accepted an unknown type or operation");
    Require(actions::ParamsConnectorType(params) == type, "accepted params of another type");
  }
  if (target_ok.ok()) Require(!object.empty(), "accepted an empty target object");
  (void)actions::ValidateSshFingerprint("fp", object);
  (void)actions::ValidatePosixUserName("user", object);
  (void)actions::ValidateText("text", object, 1024, flags & 1);

  const std::string printable = connectors::util::PrintableUtf8(object, 1 + flags % 64);
  Require(printable.find('\n') == std::string::npos, "PrintableUtf8 let a newline through");
  (void)connectors::util::PrintableUtf8(content);

  connectors::Action action;
  action.operation = op;
  action.params = params;
  action.object = object;
  FuzzPlanState(type, action, content, 1 + (flags >> 1) % 3);

  if (type == "vault") FuzzVault(object);
  if (type == "ldap") FuzzLdap(object, params);
  if (type == "ssh_authorized_keys") FuzzAuthorizedKeys(object, content);
  if (type == "posix_account") FuzzAccounts(object, content, params.posix_account());
  if (type == "sudoers") FuzzSudoers(op, object, content, params.sudoers());
  // The file editors run with parameters the connector has validated.
  if (type == "secret_file" && action_ok.ok()) FuzzSecretFile(op, content, params.secret_file());
}

}  // namespace
}  // namespace wb::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wb::fuzz::Run(data, size);
  return 0;
}
