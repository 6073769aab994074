#include "common/actions/actions.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/actions/spec.h"
#include "common/text/display.h"

namespace wb::actions {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

bool IsBase64Char(char c) { return absl::ascii_isalnum(c) || c == '+' || c == '/'; }

// Every connector type's spec. One line per connector type.
const std::vector<const ConnectorSpec*>& Specs() {
  static const auto* specs = new std::vector<const ConnectorSpec*>{
      &SshAuthorizedKeysSpec(), &VaultSpec(),    &ExecSpec(),  &PosixAccountSpec(), &SudoersSpec(),
      &SecretFileSpec(),        &PostgresSpec(), &RedisSpec(), &LdapSpec(),
  };
  return *specs;
}

const ConnectorSpec* FindSpec(absl::string_view type) {
  for (const ConnectorSpec* s : Specs()) {
    if (s->type == type) return s;
  }
  return nullptr;
}

}  // namespace

const std::vector<std::string>& ConnectorTypes() {
  static const auto* types = [] {
    auto* v = new std::vector<std::string>;
    for (const ConnectorSpec* s : Specs()) v->push_back(s->type);
    return v;
  }();
  return *types;
}

const std::vector<std::string>& OperationsOf(absl::string_view connector_type) {
  static const std::vector<std::string> kNone;
  const ConnectorSpec* s = FindSpec(connector_type);
  return s == nullptr ? kNone : s->operations;
}

absl::string_view ParamsConnectorType(const writeback::v1::ActionParams& params) {
  const auto* oneof = params.GetDescriptor()->FindOneofByName("connector");
  const auto* f = params.GetReflection()->GetOneofFieldDescriptor(params, oneof);
  if (f == nullptr) return absl::string_view();
  return f->name();  // owned by the descriptor pool: lives forever
}

absl::Status ValidateAction(absl::string_view connector_type, absl::string_view operation,
                            const writeback::v1::ActionParams& params,
                            absl::string_view field_prefix) {
  const std::string pre(field_prefix);
  const ConnectorSpec* spec = FindSpec(connector_type);
  if (spec == nullptr) {
    return Invalid(pre + "connector_type",
                   absl::StrCat("unknown connector type '", connector_type, "'"));
  }
  const auto& ops = spec->operations;
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
  return spec->validate_params(operation, params,
                               absl::StrCat(pre, "params.", connector_type, "."));
}

absl::Status ValidateTargetObject(absl::string_view connector_type, absl::string_view object,
                                  absl::string_view field) {
  if (object.empty()) return Invalid(field, "must not be empty");
  const ConnectorSpec* spec = FindSpec(connector_type);
  if (spec == nullptr) {
    return Invalid("connector_type", absl::StrCat("unknown connector type '", connector_type, "'"));
  }
  return spec->validate_target(object, field);
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
  if (auto bad = text::FindUnsafe(text); bad.has_value()) {
    if (!bad->valid_utf8) {
      return Invalid(field, absl::StrCat("is not valid UTF-8 (", text::Describe(*bad), " at byte ",
                                         bad->offset, ")"));
    }
    return Invalid(field, absl::StrCat("contains ", text::Describe(*bad), " at byte ", bad->offset,
                                       ": control, bidirectional and invisible characters "
                                       "change what a reader sees and are not allowed here"));
  }
  return absl::OkStatus();
}

}  // namespace wb::actions
