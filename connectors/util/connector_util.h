// Small helpers every connector that talks to a remote target shares:
// the call deadline check, making target-supplied text safe for evidence,
// errors and logs, and reading the one-line credential files connectors are
// configured with.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "connectors/connector.h"

namespace wb::connectors::util {

// DEADLINE_EXCEEDED if ctx's deadline has passed (checked before each call
// to the target).
absl::Status CheckDeadline(const CallContext& ctx);

// Text from the target made safe for evidence, errors and logs: valid UTF-8
// passes; control bytes, DEL, backslashes and bytes that are not valid UTF-8
// become \xNN; a value longer than `max` output bytes is cut and its full
// length appended ("...(N bytes)").
std::string PrintableUtf8(absl::string_view s, size_t max = 160);

// The single line of a credential file (a password or token; the final
// newline dropped). FAILED_PRECONDITION naming `field` if the file cannot be
// read, is accessible to others (mode & 0007), is empty or holds more than
// one line. The content never appears in a message.
absl::StatusOr<std::string> ReadSecretLine(const std::string& path, absl::string_view field);

// A plan's state for connectors that bind a plan to its operation and
// object and to what plan observed: "<magic>\n<operation>\n<hex SHA-256 of
// the object>\n<field>...". The fields must not contain '\n'.
std::string EncodePlanState(absl::string_view magic, const Action& action,
                            const std::vector<std::string>& fields);
// The fields of a state made by EncodePlanState with `magic` for this very
// action; INVALID_ARGUMENT naming plan.state otherwise ("not a plan made by
// a <connector> connector", "the plan is for another operation or object").
absl::StatusOr<std::vector<std::string>> DecodePlanState(absl::string_view magic,
                                                         absl::string_view connector,
                                                         const Action& action,
                                                         absl::string_view state, size_t fields);

}  // namespace wb::connectors::util
