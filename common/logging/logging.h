// Structured logs through spdlog: one JSON object a line when stderr is not a
// terminal (or format "json"), readable text on a terminal (or "text").
//
//   wb::log::Info("task applied", {{"task_id", id}, {"outcome", "VERIFIED"}});
//
// Never pass secret material (keys, passwords, tokens) as a message or field.
// Messages, keys and values are escaped for display (common/text/display.h):
// in text, a newline, ESC or U+202E shows as \n, \x1b, \u202e; in JSON as
// JSON escapes, and bytes that are not UTF-8 as U+FFFD.
// Thread-safe after Init.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace wb::log {

using Fields = std::initializer_list<std::pair<absl::string_view, absl::string_view>>;

// level: trace|debug|info|warn|error ("" = info). format: auto|json|text.
absl::Status Init(absl::string_view program, absl::string_view level, absl::string_view format);

void Debug(absl::string_view msg, Fields fields = {});
void Info(absl::string_view msg, Fields fields = {});
void Warn(absl::string_view msg, Fields fields = {});
void Error(absl::string_view msg, Fields fields = {});

// JSON string escaping (exposed for tests).
std::string JsonEscape(absl::string_view s);
// A log line's text after the prefix, as Info/Warn/... write it in the
// current format (exposed for tests).
std::string RenderForTest(absl::string_view msg, Fields fields);

}  // namespace wb::log
