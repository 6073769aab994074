// A strict parser of the Prometheus text exposition format (0.0.4), for
// tests: every line must be a comment (# HELP / # TYPE ...) or a sample
// `name{label="value",...} number`, every sample's family must have been
// declared by a # TYPE line, and label values must be properly escaped.
// Header-only; pure.
#pragma once

#include <cstdlib>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace wb::controlplane::exposition {

// Series ("name{a=\"1\",b=\"2\"}" exactly as written) -> value.
using Samples = std::map<std::string, double>;

inline bool IsNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

inline absl::StatusOr<Samples> Parse(absl::string_view text) {
  Samples out;
  std::map<std::string, std::string> types;  // family -> type
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": ", why, ": ", line));
    };
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(' ', 3));
      if (parts.size() >= 4 && parts[1] == "TYPE") {
        static const char* kTypes[] = {"counter", "gauge", "histogram", "summary", "untyped"};
        bool known = false;
        for (const char* t : kTypes) known = known || parts[3] == t;
        if (!known) return bad("unknown metric type");
        types[parts[2]] = parts[3];
      }
      continue;
    }
    size_t i = 0;
    if (!IsNameChar(line[0], true)) return bad("sample does not start with a metric name");
    while (i < line.size() && IsNameChar(line[i], i == 0)) ++i;
    const std::string name(line.substr(0, i));
    std::string series = name;
    if (i < line.size() && line[i] == '{') {
      const size_t start = i;
      ++i;
      while (i < line.size() && line[i] != '}') {
        const size_t label_start = i;
        while (i < line.size() && IsNameChar(line[i], i == label_start)) ++i;
        if (i == label_start || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
          return bad("malformed label");
        }
        i += 2;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') {
            if (i + 1 >= line.size() ||
                (line[i + 1] != '\\' && line[i + 1] != '"' && line[i + 1] != 'n')) {
              return bad("bad escape in label value");
            }
            ++i;
          }
          ++i;
        }
        if (i >= line.size()) return bad("unterminated label value");
        ++i;  // closing quote
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) return bad("unterminated label set");
      ++i;  // '}'
      series = std::string(line.substr(0, i));
      (void)start;
    }
    if (i >= line.size() || line[i] != ' ') return bad("no space before the value");
    absl::string_view rest = line.substr(i + 1);
    const size_t sp = rest.find(' ');  // optional timestamp
    const std::string value(rest.substr(0, sp));
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size()) {
      if (value != "+Inf" && value != "-Inf" && value != "NaN") return bad("value is not a number");
    }
    // The family: the name, or without a histogram/summary suffix.
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (!types.contains(family) && name.size() > s.size() &&
          name.compare(name.size() - s.size(), s.size(), s) == 0) {
        family = name.substr(0, name.size() - s.size());
      }
    }
    if (!types.contains(family)) return bad("sample of an undeclared family");
    if (out.contains(series)) return bad("duplicate series");
    out[series] = v;
  }
  return out;
}

// Sum of every series of `name` whose label set contains `label_match`
// (e.g. "outcome=\"verified\""; "" = all).
inline double Sum(const Samples& s, absl::string_view name, absl::string_view label_match = "") {
  double total = 0;
  for (const auto& [series, v] : s) {
    absl::string_view n = series;
    const size_t brace = n.find('{');
    if (n.substr(0, brace) != name) continue;
    if (!label_match.empty() && n.find(label_match) == absl::string_view::npos) continue;
    total += v;
  }
  return total;
}

}  // namespace wb::controlplane::exposition
