// Protocol features an agent announces in its Hello (Hello.features) and
// the control plane uses only with agents that announced them, so that an
// agent one version behind keeps working (docs/architecture.md).
#pragma once

#include <algorithm>

#include "absl/strings/string_view.h"

namespace wb::protocol {

// Tasks may name their statement by digest (Task.statement_digest); the
// statement arrives once per stream as ControlMessage.statement, and once
// per bundle in TaskBundle.statements.
inline constexpr absl::string_view kFeatureStatementDigest = "statement_digest";

template <typename Features>
bool HasFeature(const Features& features, absl::string_view feature) {
  return std::any_of(features.begin(), features.end(),
                     [&](const auto& f) { return absl::string_view(f) == feature; });
}

}  // namespace wb::protocol
