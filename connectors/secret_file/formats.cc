#include "connectors/secret_file/formats.h"

#include <exception>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/text/display.h"
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

// Lines as Python reads a text file (universal newlines): "\n", "\r\n" and
// a lone "\r" each end a line. For INI files, which configparser reads so.
std::vector<Line> UniversalLines(absl::string_view s) {
  std::vector<Line> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find_first_of("\r\n", pos);
    if (nl == absl::string_view::npos) {
      out.push_back({pos, s.size(), s.substr(pos)});
      break;
    }
    size_t end = nl + 1;
    if (s[nl] == '\r' && end < s.size() && s[end] == '\n') ++end;
    out.push_back({pos, end, s.substr(pos, nl - pos)});
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

// INI as Python's configparser reads it (RawConfigParser defaults, which is
// what the AWS CLI and SDKs use for ~/.aws/credentials):
//   - a line whose first non-blank character is ';' or '#' is a comment, a
//     blank line is nothing; neither ends the value above it;
//   - a line indented deeper than the key line above it (in the same
//     section) continues that key's value, whatever it contains;
//   - otherwise "[name]" (up to the last ']' of the line) starts a section,
//     and a line with '=' or ':' is a key: the key is the text before the
//     FIRST '=' or ':', trimmed ("db:password = x" is the key "db");
//   - keys are compared without regard to case (configparser lowercases
//     them); the keys of a section named DEFAULT are seen in every section.
// Deliberate differences, each of which only makes removal wider: section
// names are compared trimmed ("[ ci ]" counts as "ci"), and keys before the
// first header (which configparser refuses) form the section "".
struct IniLine {
  enum Kind { kOther, kBlankOrComment, kHeader, kKey, kContinuation } kind = kOther;
  std::string name;     // header: section name; key: key name as written
  std::string section;  // key: its section
  size_t last = 0;      // key: its last line (continuations included)
};

constexpr absl::string_view kIniDefaultSection = "DEFAULT";

// Length of the white space character (Python's str.isspace, which
// configparser's strip() and its indentation use) at the start of `s`, or 0.
size_t SpaceAt(absl::string_view s) {
  uint32_t cp = 0;
  const size_t n = s.empty() ? 0 : text::DecodeUtf8(s, 0, &cp);
  return n > 0 && text::IsWhiteSpace(cp) ? n : 0;
}

// Length of the white space at the end of `s` (as SpaceAt).
size_t SpaceBefore(absl::string_view s) {
  for (size_t n = 1; n <= 3 && n <= s.size(); ++n) {
    if (SpaceAt(s.substr(s.size() - n)) == n) return n;
  }
  return 0;
}

absl::string_view StripSpace(absl::string_view s) {
  for (size_t n = SpaceAt(s); n > 0; n = SpaceAt(s)) s.remove_prefix(n);
  for (size_t n = SpaceBefore(s); n > 0; n = SpaceBefore(s)) s.remove_suffix(n);
  return s;
}

// Code points of white space before the first other character.
size_t IniIndent(absl::string_view text) {
  size_t n = 0;
  for (size_t k = SpaceAt(text); k > 0; k = SpaceAt(text)) {
    text.remove_prefix(k);
    ++n;
  }
  return n;
}

std::vector<IniLine> ScanIni(const std::vector<Line>& lines) {
  std::vector<IniLine> out(lines.size());
  std::string section;  // "" before the first header
  // The key line values continue; npos: none. (Not std::optional: gcc 12
  // at -O2 reports it maybe-uninitialized, which -Werror turns into an error.)
  size_t key = std::string::npos;
  size_t key_indent = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    IniLine& l = out[i];
    const absl::string_view text = lines[i].text;
    const size_t indent = IniIndent(text);
    const absl::string_view t = StripSpace(text);
    if (t.empty() || t[0] == ';' || t[0] == '#') {
      l.kind = IniLine::kBlankOrComment;
      continue;
    }
    if (key != std::string::npos && indent > key_indent) {
      l.kind = IniLine::kContinuation;
      out[key].last = i;
      continue;
    }
    key_indent = indent;
    if (t[0] == '[') {
      const size_t close = t.rfind(']');
      if (close != absl::string_view::npos && close > 1) {
        l.kind = IniLine::kHeader;
        l.name = std::string(StripSpace(t.substr(1, close - 1)));
        section = l.name;
        key = std::string::npos;
        continue;
      }
    }
    const size_t eq = t.find_first_of("=:");
    if (eq == absl::string_view::npos) continue;  // not INI (configparser: an error)
    l.kind = IniLine::kKey;
    l.name = std::string(StripSpace(t.substr(0, eq)));
    l.section = section;
    l.last = i;
    key = i;
  }
  return out;
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
  const std::vector<Line> lines = UniversalLines(s);
  const std::vector<IniLine> ini = ScanIni(lines);
  std::vector<bool> drop(lines.size(), false);
  const bool inherits = !section.empty() && section != kIniDefaultSection;
  for (size_t i = 0; i < ini.size(); ++i) {
    const IniLine& l = ini[i];
    if (l.kind != IniLine::kKey) continue;
    const bool same_key = absl::EqualsIgnoreCase(l.name, key);
    if (l.section == section) {
      ++r.entries;
      if (!same_key) continue;
      for (size_t j = i; j <= l.last; ++j) drop[j] = true;
      r.removed.push_back(absl::StrCat(Printable(l.name), " in [", Printable(section), "] at line ",
                                       i + 1, l.last > i ? absl::StrCat("-", l.last + 1) : ""));
    } else if (inherits && same_key && l.section == kIniDefaultSection) {
      r.inherited.push_back(
          absl::StrCat(Printable(l.name), " in [", kIniDefaultSection, "] at line ", i + 1));
    }
  }
  r.new_content = Without(s, lines, drop);
  return r;
}

Removal RemoveIniSection(absl::string_view s, absl::string_view section) {
  Removal r;
  const std::vector<Line> lines = UniversalLines(s);
  const std::vector<IniLine> ini = ScanIni(lines);
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
  for (size_t i = 0; i < ini.size(); ++i) {
    if (ini[i].kind != IniLine::kHeader) continue;
    ++r.entries;
    close(i);
    if (ini[i].name == section) {
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
