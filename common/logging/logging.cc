#include "common/logging/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "common/text/display.h"

namespace wb::log {
namespace {

std::atomic<bool> g_json{false};

std::string Render(absl::string_view msg, Fields fields) {
  std::string out;
  if (g_json.load(std::memory_order_relaxed)) {
    absl::StrAppend(&out, "\"msg\":\"", JsonEscape(msg), "\"");
    for (const auto& [k, v] : fields) {
      absl::StrAppend(&out, ",\"", JsonEscape(k), "\":\"", JsonEscape(v), "\"");
    }
  } else {
    // Values are often untrusted (paths, messages from agents or the
    // control plane): escaped so one cannot forge a line, drive the terminal
    // or reorder what a reader sees (common/text/display.h).
    out = text::EscapeForDisplay(msg);
    for (const auto& [k, v] : fields) {
      absl::StrAppend(&out, " ", text::EscapeForDisplay(k), "=", text::EscapeForDisplay(v));
    }
  }
  return out;
}

}  // namespace

std::string JsonEscape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  // C1, bidirectional and invisible characters as \uXXXX, bytes that are not
  // UTF-8 as U+FFFD: the line stays valid JSON and shows what it holds.
  return text::EscapeForDisplay(out, text::EscapeStyle::kJson);
}

absl::Status Init(absl::string_view program, absl::string_view level, absl::string_view format) {
  bool json;
  if (format.empty() || format == "auto") {
    json = !isatty(STDERR_FILENO);
  } else if (format == "json") {
    json = true;
  } else if (format == "text") {
    json = false;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("log_format: unknown value '", format, "' (auto|json|text)"));
  }
  spdlog::level::level_enum lvl = spdlog::level::info;
  if (!level.empty()) {
    lvl = spdlog::level::from_str(std::string(level));
    if (lvl == spdlog::level::off && level != "off") {
      return absl::InvalidArgumentError(
          absl::StrCat("log_level: unknown value '", level, "' (trace|debug|info|warn|error|off)"));
    }
  }
  g_json = json;
  spdlog::drop(std::string(program));
  auto logger = spdlog::stderr_color_mt(std::string(program));
  spdlog::set_default_logger(logger);
  spdlog::set_level(lvl);
  if (json) {
    spdlog::set_pattern(absl::StrCat(R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","prog":")",
                                     JsonEscape(program), R"(",%v})"),
                        spdlog::pattern_time_type::utc);
  } else {
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %n: %v");
  }
  return absl::OkStatus();
}

std::string RenderForTest(absl::string_view msg, Fields fields) { return Render(msg, fields); }

void Debug(absl::string_view msg, Fields f) {
  if (spdlog::should_log(spdlog::level::debug)) spdlog::debug(Render(msg, f));
}
void Info(absl::string_view msg, Fields f) {
  if (spdlog::should_log(spdlog::level::info)) spdlog::info(Render(msg, f));
}
void Warn(absl::string_view msg, Fields f) { spdlog::warn(Render(msg, f)); }
void Error(absl::string_view msg, Fields f) { spdlog::error(Render(msg, f)); }

}  // namespace wb::log
