#include "cli/request.h"

#include <cstdint>
#include <limits>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/actions/actions.h"
#include "common/config/config.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"

namespace wb::cli {
namespace {

namespace v1 = writeback::v1;

// Generous bounds: the server has the final word on lengths; these only
// keep obviously broken input from leaving the machine.
constexpr size_t kMaxName = 256;
constexpr size_t kMaxText = 4096;

absl::Status Required(absl::string_view field, absl::string_view value, absl::string_view flag) {
  if (value.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": required (", flag, ")"));
  }
  return actions::ValidateText(field, value, kMaxName, false);
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view field, absl::string_view text) {
  const absl::string_view t = absl::StripAsciiWhitespace(text);
  absl::Duration d;
  int64_t secs = 0;
  if (absl::SimpleAtoi(t, &secs)) {
    d = absl::Seconds(secs);
  } else if (!absl::ParseDuration(t, &d) || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": '", text, "' is not a duration (seconds, or e.g. \"90s\", \"5m\", \"1h30m\")"));
  }
  if (d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be positive"));
  }
  return d;
}

absl::Status ParseSpecYaml(absl::string_view yaml, absl::string_view source,
                           v1::DecisionSpec* spec) {
  return config::ParseYaml(yaml, source, spec);
}

absl::Status ApplyFlags(const DecisionFlags& flags, v1::DecisionSpec* spec) {
  if (flags.instance) spec->set_connector_instance(*flags.instance);
  if (flags.operation) spec->set_operation(*flags.operation);
  if (flags.targets) {
    spec->clear_targets();
    for (const auto& t : *flags.targets) spec->add_targets()->set_object(t);
  }
  if (flags.fingerprint || flags.comment || flags.keep_fingerprints) {
    auto* ssh = spec->mutable_params()->mutable_ssh_authorized_keys();
    if (flags.fingerprint) ssh->set_fingerprint(*flags.fingerprint);
    if (flags.comment) ssh->set_comment(*flags.comment);
    if (flags.keep_fingerprints) {
      ssh->clear_keep_fingerprints();
      for (const auto& fp : *flags.keep_fingerprints) ssh->add_keep_fingerprints(fp);
    }
  }
  if (flags.reason) spec->set_reason(*flags.reason);
  if (flags.reference) spec->set_reference(*flags.reference);
  if (flags.ttl) {
    WB_ASSIGN_OR_RETURN(absl::Duration d, ParseDurationFlag("--ttl", *flags.ttl));
    const int64_t secs = absl::ToInt64Seconds(d);
    if (secs < 1 || secs > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(absl::StrCat("--ttl: must be between 1s and ",
                                                     std::numeric_limits<uint32_t>::max(), "s"));
    }
    spec->set_ttl_seconds(static_cast<uint32_t>(secs));
  }
  return absl::OkStatus();
}

absl::Status ValidateSpecLocally(const v1::DecisionSpec& spec) {
  WB_RETURN_IF_ERROR(Required("spec.connector_instance", spec.connector_instance(), "--instance"));
  WB_RETURN_IF_ERROR(Required("spec.operation", spec.operation(), "--operation"));
  if (spec.targets_size() == 0) {
    return absl::InvalidArgumentError("spec.targets: at least one target is required (--target)");
  }
  const absl::string_view type = actions::ParamsConnectorType(spec.params());
  std::set<std::string> seen;
  for (int i = 0; i < spec.targets_size(); ++i) {
    const std::string field = absl::StrCat("spec.targets[", i, "].object");
    const std::string& obj = spec.targets(i).object();
    WB_RETURN_IF_ERROR(actions::ValidateText(field, obj, kMaxName, false));
    if (!type.empty()) WB_RETURN_IF_ERROR(actions::ValidateTargetObject(type, obj, field));
    if (!seen.insert(obj).second) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": '", obj, "' is listed twice"));
    }
  }
  if (!type.empty()) {
    WB_RETURN_IF_ERROR(actions::ValidateAction(type, spec.operation(), spec.params(), "spec."));
  }
  WB_RETURN_IF_ERROR(actions::ValidateText("spec.reason", spec.reason(), kMaxText, false));
  WB_RETURN_IF_ERROR(actions::ValidateText("spec.reference", spec.reference(), kMaxText, true));
  return absl::OkStatus();
}

absl::StatusOr<v1::SubmitDecisionRequest> BuildSubmitRequest(const DecisionFlags& flags) {
  v1::SubmitDecisionRequest req;
  if (!flags.file.empty()) {
    auto text = fs::ReadFile(flags.file, 1 << 20);
    // A missing or unreadable input file is a usage error, not NOT_FOUND.
    if (!text.ok())
      return absl::InvalidArgumentError(absl::StrCat("-f: ", text.status().message()));
    WB_RETURN_IF_ERROR(ParseSpecYaml(*text, flags.file, req.mutable_spec()));
  }
  WB_RETURN_IF_ERROR(ApplyFlags(flags, req.mutable_spec()));
  WB_RETURN_IF_ERROR(ValidateSpecLocally(req.spec()));
  if (!flags.request_id.empty()) {
    WB_RETURN_IF_ERROR(actions::ValidateText("--request-id", flags.request_id, kMaxName, false));
    req.set_request_id(flags.request_id);
  }
  return req;
}

}  // namespace wb::cli
