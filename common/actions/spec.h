// How a connector type describes its actions to common/actions: its name,
// operations, and validators for parameters and target objects. One file per
// connector type (common/actions/<type>.cc) defines its spec; actions.cc lists
// them. Adding a connector type:
//   1. add its params message to the ActionParams oneof in
//      proto/writeback/v1/action.proto, with the oneof member NAMED EXACTLY as
//      the connector type (e.g. `PostgresParams postgres = 3;`);
//   2. add common/actions/<type>.cc defining `const ConnectorSpec& <Type>Spec()`,
//      declare it below and list it in Specs() in actions.cc.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "writeback/v1/action.pb.h"

namespace wb::actions {

struct ConnectorSpec {
  std::string type;
  std::vector<std::string> operations;
  // Validates the params of `operation` (already known to be one of
  // `operations`, and params already known to be of this type). `f` is the
  // field prefix for errors, e.g. "spec.params.ssh_authorized_keys.".
  std::function<absl::Status(absl::string_view operation, const writeback::v1::ActionParams& params,
                             const std::string& f)>
      validate_params;
  // Validates one target object; `field` names it in errors.
  std::function<absl::Status(absl::string_view object, absl::string_view field)> validate_target;
};

const ConnectorSpec& SshAuthorizedKeysSpec();
const ConnectorSpec& VaultSpec();
const ConnectorSpec& ExecSpec();
const ConnectorSpec& PosixAccountSpec();
const ConnectorSpec& SudoersSpec();
const ConnectorSpec& SecretFileSpec();
const ConnectorSpec& PostgresSpec();
const ConnectorSpec& RedisSpec();
const ConnectorSpec& LdapSpec();

}  // namespace wb::actions
