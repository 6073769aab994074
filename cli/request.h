// Building a SubmitDecisionRequest from wbctl's flags and/or a YAML file,
// and the checks wbctl can make before calling the server. Pure functions;
// thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "writeback/v1/admin_service.pb.h"

namespace wb::cli {

// `decision submit`'s inputs. Unset optionals were not given on the command
// line; a given flag overrides the file's value (a repeated flag replaces the
// file's whole list).
struct DecisionFlags {
  std::string file;  // -f: YAML mapped onto writeback.v1.DecisionSpec
  std::optional<std::string> instance;
  std::optional<std::string> operation;
  std::optional<std::vector<std::string>> targets;
  // ssh_authorized_keys parameters.
  std::optional<std::string> fingerprint;
  std::optional<std::string> comment;
  std::optional<std::vector<std::string>> keep_fingerprints;
  std::optional<std::string> reason;
  std::optional<std::string> reference;
  std::optional<std::string> ttl;  // "3600", "90m", "1h30m"
  std::string request_id;
};

// Parses a duration flag: a whole number of seconds ("90") or an absl
// duration ("90s", "5m", "1h30m"). Must be positive. Errors name `field`.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view field, absl::string_view text);

// Maps YAML text onto `spec` (cleared first); `source` names the input in
// errors. Unknown keys are INVALID_ARGUMENT naming the key.
absl::Status ParseSpecYaml(absl::string_view yaml, absl::string_view source,
                           writeback::v1::DecisionSpec* spec);

// Applies the flags over `spec` (which may come from a file).
absl::Status ApplyFlags(const DecisionFlags& flags, writeback::v1::DecisionSpec* spec);

// The checks that need no server: required fields, text without control
// characters, targets present and unique, and - when the parameters say
// which connector type is meant - the operation, the parameters (e.g. the
// SHA256 fingerprint grammar) and each target's grammar
// (wb::actions::ValidateAction / ValidateTargetObject). INVALID_ARGUMENT
// naming the field (e.g. "spec.params.ssh_authorized_keys.fingerprint").
absl::Status ValidateSpecLocally(const writeback::v1::DecisionSpec& spec);

// Reads flags.file (if any), applies the flags, validates locally.
absl::StatusOr<writeback::v1::SubmitDecisionRequest> BuildSubmitRequest(const DecisionFlags& flags);

}  // namespace wb::cli
