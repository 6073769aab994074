#include "common/actions/actions.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace wb::actions {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

bool IsBase64Char(char c) { return absl::ascii_isalnum(c) || c == '+' || c == '/'; }

struct TypeInfo {
  std::string type;
  std::vector<std::string> operations;
};

const std::vector<TypeInfo>& Catalogue() {
  static const auto* c = new std::vector<TypeInfo>{
      {"ssh_authorized_keys", {"remove_key", "remove_by_comment", "exclusive_set"}},
  };
  return *c;
}

absl::Status ValidateSsh(absl::string_view operation,
                         const writeback::v1::SshAuthorizedKeysParams& p, const std::string& f) {
  if (operation == "remove_key") {
    if (auto s = ValidateSshFingerprint(f + "fingerprint", p.fingerprint()); !s.ok()) return s;
    if (!p.comment().empty()) return Invalid(f + "comment", "not used by remove_key");
    if (p.keep_fingerprints_size() > 0) {
      return Invalid(f + "keep_fingerprints", "not used by remove_key");
    }
    return absl::OkStatus();
  }
  if (operation == "remove_by_comment") {
    if (auto s = ValidateText(f + "comment", p.comment(), 1024, false); !s.ok()) return s;
    if (!p.fingerprint().empty())
      return Invalid(f + "fingerprint", "not used by remove_by_comment");
    if (p.keep_fingerprints_size() > 0) {
      return Invalid(f + "keep_fingerprints", "not used by remove_by_comment");
    }
    return absl::OkStatus();
  }
  if (operation == "exclusive_set") {
    if (!p.fingerprint().empty()) return Invalid(f + "fingerprint", "not used by exclusive_set");
    if (!p.comment().empty()) return Invalid(f + "comment", "not used by exclusive_set");
    if (p.keep_fingerprints_size() > 1000) {
      return Invalid(f + "keep_fingerprints", "at most 1000 entries");
    }
    for (int i = 0; i < p.keep_fingerprints_size(); ++i) {
      if (auto s = ValidateSshFingerprint(absl::StrCat(f, "keep_fingerprints[", i, "]"),
                                          p.keep_fingerprints(i));
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }
  return Invalid("operation",
                 absl::StrCat("unknown operation '", operation, "' for ssh_authorized_keys"));
}

}  // namespace

const std::vector<std::string>& ConnectorTypes() {
  static const auto* types = [] {
    auto* v = new std::vector<std::string>;
    for (const auto& t : Catalogue()) v->push_back(t.type);
    return v;
  }();
  return *types;
}

const std::vector<std::string>& OperationsOf(absl::string_view connector_type) {
  static const std::vector<std::string> kNone;
  for (const auto& t : Catalogue()) {
    if (t.type == connector_type) return t.operations;
  }
  return kNone;
}

absl::string_view ParamsConnectorType(const writeback::v1::ActionParams& params) {
  switch (params.connector_case()) {
    case writeback::v1::ActionParams::kSshAuthorizedKeys:
      return "ssh_authorized_keys";
    case writeback::v1::ActionParams::CONNECTOR_NOT_SET:
      break;
  }
  return "";
}

absl::Status ValidateAction(absl::string_view connector_type, absl::string_view operation,
                            const writeback::v1::ActionParams& params,
                            absl::string_view field_prefix) {
  const std::string pre(field_prefix);
  const auto& ops = OperationsOf(connector_type);
  if (ops.empty()) {
    return Invalid(pre + "connector_type",
                   absl::StrCat("unknown connector type '", connector_type, "'"));
  }
  if (std::find(ops.begin(), ops.end(), operation) == ops.end()) {
    return Invalid(pre + "operation",
                   absl::StrCat("'", operation, "' is not an operation of ", connector_type,
                                " (one of: ", absl::StrJoin(ops, ", "), ")"));
  }
  const absl::string_view ptype = ParamsConnectorType(params);
  if (ptype != connector_type) {
    return Invalid(pre + "params", ptype.empty()
                                       ? absl::StrCat("missing; expected params.", connector_type)
                                       : absl::StrCat("params.", ptype, " given for a ",
                                                      connector_type, " instance"));
  }
  const std::string f = absl::StrCat(pre, "params.", connector_type, ".");
  if (connector_type == "ssh_authorized_keys") {
    return ValidateSsh(operation, params.ssh_authorized_keys(), f);
  }
  return Invalid(pre + "connector_type", "no validator");
}

absl::Status ValidateTargetObject(absl::string_view connector_type, absl::string_view object,
                                  absl::string_view field) {
  if (object.empty()) return Invalid(field, "must not be empty");
  if (connector_type == "ssh_authorized_keys") return ValidatePosixUserName(field, object);
  return Invalid("connector_type", absl::StrCat("unknown connector type '", connector_type, "'"));
}

absl::Status ValidateSshFingerprint(absl::string_view field, absl::string_view fp) {
  constexpr absl::string_view kPrefix = "SHA256:";
  if (!absl::StartsWith(fp, kPrefix)) {
    return Invalid(field, "must start with 'SHA256:' (as printed by ssh-keygen -lf)");
  }
  absl::string_view b = fp.substr(kPrefix.size());
  if (b.size() != 43) {
    return Invalid(field, "must be 'SHA256:' followed by 43 base64 characters");
  }
  for (char c : b) {
    if (!IsBase64Char(c)) return Invalid(field, "contains a character that is not base64");
  }
  return absl::OkStatus();
}

absl::Status ValidatePosixUserName(absl::string_view field, absl::string_view name) {
  if (name.empty() || name.size() > 32)
    return Invalid(field, "user name must be 1 to 32 characters");
  absl::string_view body = name;
  if (body.back() == '$') body.remove_suffix(1);
  if (body.empty()) return Invalid(field, "user name must not be only '$'");
  if (!(absl::ascii_islower(body[0]) || body[0] == '_')) {
    return Invalid(field, "user name must start with a lowercase letter or '_'");
  }
  for (char c : body) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '-')) {
      return Invalid(field, "user name may contain only a-z, 0-9, '_' and '-'");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateText(absl::string_view field, absl::string_view text, size_t max_len,
                          bool allow_empty) {
  if (text.empty()) return allow_empty ? absl::OkStatus() : Invalid(field, "must not be empty");
  if (text.size() > max_len) return Invalid(field, absl::StrCat("longer than ", max_len, " bytes"));
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) return Invalid(field, "contains a control character");
  }
  return absl::OkStatus();
}

}  // namespace wb::actions
