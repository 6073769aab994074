#include "connectors/secret_file/formats.h"

#include <exception>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace wb::connectors::secret_file {
namespace {

constexpr int kMaxJsonDepth = 512;

struct Line {
  size_t begin = 0, end = 0;  // including the newline
  absl::string_view text;     // without "\n" / "\r\n"
};

std::vector<Line> Lines(absl::string_view s) {
  std::vector<Line> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    const size_t end = nl == absl::string_view::npos ? s.size() : nl + 1;
    absl::string_view text = s.substr(pos, (nl == absl::string_view::npos ? s.size() : nl) - pos);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    out.push_back({pos, end, text});
    pos = end;
  }
  return out;
}

// The content without lines[i] for every i with drop[i].
std::string Without(absl::string_view s, const std::vector<Line>& lines,
                    const std::vector<bool>& drop) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!drop[i]) absl::StrAppend(&out, s.substr(lines[i].begin, lines[i].end - lines[i].begin));
  }
  return out;
}

bool IsBlankChar(char c) { return c == ' ' || c == '\t'; }

absl::string_view LStrip(absl::string_view s) {
  while (!s.empty() && IsBlankChar(s.front())) s.remove_prefix(1);
  return s;
}

// For a quoted value starting at v[0] (a quote), the index just after the
// closing quote in v, or npos.
size_t ClosingQuote(absl::string_view v, size_t from, char quote) {
  for (size_t i = from; i < v.size(); ++i) {
    if (quote == '"' && v[i] == '\\') {
      ++i;
      continue;
    }
    if (v[i] == quote) return i + 1;
  }
  return absl::string_view::npos;
}

bool IsEnvKeyChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

std::string Printable(absl::string_view s, size_t max_len = 200) {
  std::string out;
  for (char c : s.substr(0, max_len)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  return out;
}

struct IniLine {
  enum Kind { kOther, kHeader, kKey } kind = kOther;
  std::string name;  // header: section name; key: key name
};

IniLine ClassifyIni(absl::string_view text) {
  IniLine l;
  const absl::string_view t = LStrip(text);
  if (t.empty() || t[0] == ';' || t[0] == '#') return l;
  if (t[0] == '[') {
    const size_t close = t.find(']');
    if (close != absl::string_view::npos) {
      l.kind = IniLine::kHeader;
      l.name = std::string(absl::StripAsciiWhitespace(t.substr(1, close - 1)));
    }
    return l;
  }
  if (t.size() != text.size()) return l;  // indented: a continuation, not a key
  const size_t eq = t.find_first_of("=:");
  if (eq == absl::string_view::npos) return l;
  l.kind = IniLine::kKey;
  l.name = std::string(absl::StripAsciiWhitespace(t.substr(0, eq)));
  return l;
}

bool IsContinuation(absl::string_view text) {
  return !text.empty() && IsBlankChar(text[0]) && !LStrip(text).empty();
}

int JsonDepth(absl::string_view s) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max_depth;
}

}  // namespace

Removal RemoveEnvKey(absl::string_view s, absl::string_view key) {
  Removal r;
  const std::vector<Line> lines = Lines(s);
  std::vector<bool> drop(lines.size(), false);
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view t = LStrip(lines[i].text);
    if (t.empty() || t[0] == '#') continue;
    if (absl::StartsWith(t, "export") && t.size() > 6 && IsBlankChar(t[6])) t = LStrip(t.substr(6));
    size_t k = 0;
    while (k < t.size() && IsEnvKeyChar(t[k])) ++k;
    if (k == 0) continue;
    const absl::string_view name = t.substr(0, k);
    absl::string_view rest = LStrip(t.substr(k));
    if (rest.empty() || rest[0] != '=') continue;
    absl::string_view value = LStrip(rest.substr(1));
    size_t last = i;
    if (!value.empty() && (value[0] == '"' || value[0] == '\'')) {
      const char q = value[0];
      if (ClosingQuote(value, 1, q) == absl::string_view::npos) {
        // A quoted value that continues on the following lines.
        for (size_t j = i + 1; j < lines.size(); ++j) {
          if (ClosingQuote(lines[j].text, 0, q) != absl::string_view::npos) {
            last = j;
            break;
          }
          if (j + 1 == lines.size()) last = j;
        }
      }
    }
    ++r.entries;
    if (name == key) {
      for (size_t j = i; j <= last; ++j) drop[j] = true;
      r.removed.push_back(absl::StrCat(Printable(name), " at line ", i + 1,
                                       last > i ? absl::StrCat("-", last + 1) : ""));
    }
    i = last;
  }
  r.new_content = Without(s, lines, drop);
  return r;
}

Removal RemoveIniKey(absl::string_view s, absl::string_view section, absl::string_view key) {
  Removal r;
  const std::vector<Line> lines = Lines(s);
  std::vector<bool> drop(lines.size(), false);
  std::string current;  // "" before the first header
  for (size_t i = 0; i < lines.size(); ++i) {
    const IniLine l = ClassifyIni(lines[i].text);
    if (l.kind == IniLine::kHeader) {
      current = l.name;
      continue;
    }
    if (l.kind != IniLine::kKey || current != section) continue;
    ++r.entries;
    size_t last = i;
    while (last + 1 < lines.size() && IsContinuation(lines[last + 1].text)) ++last;
    if (l.name == key) {
      for (size_t j = i; j <= last; ++j) drop[j] = true;
      r.removed.push_back(absl::StrCat(Printable(key), " in [", Printable(section), "] at line ",
                                       i + 1, last > i ? absl::StrCat("-", last + 1) : ""));
    }
    i = last;
  }
  r.new_content = Without(s, lines, drop);
  return r;
}

Removal RemoveIniSection(absl::string_view s, absl::string_view section) {
  Removal r;
  const std::vector<Line> lines = Lines(s);
  std::vector<bool> drop(lines.size(), false);
  bool in_target = false;
  size_t start = 0;
  auto close = [&](size_t end_line) {
    if (!in_target) return;
    for (size_t j = start; j < end_line; ++j) drop[j] = true;
    r.removed.push_back(
        absl::StrCat("[", Printable(section), "] at lines ", start + 1, "-", end_line));
    in_target = false;
  };
  for (size_t i = 0; i < lines.size(); ++i) {
    const IniLine l = ClassifyIni(lines[i].text);
    if (l.kind != IniLine::kHeader) continue;
    ++r.entries;
    close(i);
    if (l.name == section) {
      in_target = true;
      start = i;
    }
  }
  close(lines.size());
  r.new_content = Without(s, lines, drop);
  return r;
}

absl::StatusOr<Removal> RemoveJsonPath(absl::string_view s, const std::vector<std::string>& path) {
  if (JsonDepth(s) > kMaxJsonDepth) {
    return absl::FailedPreconditionError(
        absl::StrCat("JSON nests deeper than ", kMaxJsonDepth, " levels"));
  }
  try {
    nlohmann::ordered_json doc = nlohmann::ordered_json::parse(s, nullptr, false);
    if (doc.is_discarded()) return absl::FailedPreconditionError("not a valid JSON document");
    Removal r;
    r.new_content = std::string(s);
    if (path.empty()) return r;
    nlohmann::ordered_json* cur = &doc;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      if (!cur->is_object()) return r;
      auto it = cur->find(path[i]);
      if (it == cur->end()) return r;
      cur = &*it;
    }
    if (!cur->is_object()) return r;
    r.entries = static_cast<int>(cur->size());
    if (cur->erase(path.back()) == 0) return r;
    std::string where;
    for (const auto& p : path) absl::StrAppend(&where, "/", Printable(p, 100));
    r.removed.push_back(absl::StrCat("member ", where));
    // Indentation of the first indented line, if the file has newlines.
    int indent = -1;
    char indent_char = ' ';
    const size_t nl = s.find('\n');
    if (nl != absl::string_view::npos && nl + 1 < s.size()) {
      indent = 0;
      size_t p = nl + 1;
      if (s[p] == '\t') indent_char = '\t';
      while (p < s.size() && s[p] == indent_char) {
        ++indent;
        ++p;
      }
    }
    r.new_content =
        doc.dump(indent, indent_char, false, nlohmann::ordered_json::error_handler_t::replace);
    if (!s.empty() && s.back() == '\n') r.new_content.push_back('\n');
    return r;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("JSON: ", e.what()));
  }
}

}  // namespace wb::connectors::secret_file
