#include "connectors/sudoers/sudoers_file.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace wb::connectors::sudoers {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// Skips blanks and line continuations (backslash-newline) before `end`.
size_t SkipWs(absl::string_view s, size_t pos, size_t end) {
  while (pos < end) {
    if (IsBlank(s[pos])) {
      ++pos;
    } else if (s[pos] == '\\' && pos + 1 < end && s[pos + 1] == '\n') {
      pos += 2;
    } else if (s[pos] == '\\' && pos + 2 < end && s[pos + 1] == '\r' && s[pos + 2] == '\n') {
      pos += 3;
    } else {
      break;
    }
  }
  return pos;
}

bool IsStop(char c, bool alias_list) {
  return IsBlank(c) || c == ',' || c == '\n' || c == '=' || (alias_list && c == ':');
}

// One list item at `pos`; false if there is none.
bool ParseItem(absl::string_view s, size_t& pos, size_t end, bool alias_list, Item& item) {
  item = Item();
  item.begin = pos;
  while (pos < end && s[pos] == '!') {
    item.negated = !item.negated;
    pos = SkipWs(s, pos + 1, end);
  }
  if (pos < end && s[pos] == '"') {
    ++pos;
    while (pos < end && s[pos] != '"' && s[pos] != '\n') {
      if (s[pos] == '\\' && pos + 1 < end && s[pos + 1] != '\n') {
        item.name.push_back(s[pos + 1]);
        pos += 2;
      } else {
        item.name.push_back(s[pos++]);
      }
    }
    if (pos >= end || s[pos] != '"') return false;
    ++pos;
  } else {
    while (pos < end && !IsStop(s[pos], alias_list)) {
      if (s[pos] == '\\') {
        if (pos + 1 >= end || s[pos + 1] == '\n' || s[pos + 1] == '\r') break;
        item.name.push_back(s[pos + 1]);
        pos += 2;
      } else {
        item.name.push_back(s[pos++]);
      }
    }
  }
  item.end = pos;
  return !item.name.empty();
}

// A comma-separated list at `pos`; `pos` ends after the last item.
bool ParseList(absl::string_view s, size_t& pos, size_t end, bool alias_list,
               std::vector<Item>& items) {
  while (true) {
    Item item;
    if (!ParseItem(s, pos, end, alias_list, item)) return false;
    items.push_back(std::move(item));
    const size_t after = SkipWs(s, pos, end);
    if (after < end && s[after] == ',') {
      pos = SkipWs(s, after + 1, end);
      continue;
    }
    return true;
  }
}

absl::string_view Token(absl::string_view s, size_t pos, size_t end) {
  size_t e = pos;
  while (e < end && !IsBlank(s[e]) && s[e] != '\n') ++e;
  return s.substr(pos, e - pos);
}

bool IsAliasName(absl::string_view n) {
  if (n.empty() || !absl::ascii_isupper(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n) {
    if (!(absl::ascii_isupper(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return true;
}

bool IsUidItem(absl::string_view n) {
  if (n.size() < 2 || n[0] != '#') return false;
  for (char c : n.substr(1)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

void Classify(absl::string_view s, LogicalLine& line) {
  const size_t end = (line.end > line.begin && s[line.end - 1] == '\n') ? line.end - 1 : line.end;
  size_t pos = SkipWs(s, line.begin, end);
  if (pos >= end) {
    line.kind = LineKind::kBlank;
    return;
  }
  const absl::string_view tok = Token(s, pos, end);
  if (tok == "@include" || tok == "@includedir" || tok == "#include" || tok == "#includedir") {
    line.kind = LineKind::kInclude;
    line.keyword = std::string(tok);
    return;
  }
  if (s[pos] == '#') {
    // "#1000 ALL = ..." is a rule for uid 1000; anything else is a comment.
    size_t d = pos + 1;
    while (d < end && absl::ascii_isdigit(static_cast<unsigned char>(s[d]))) ++d;
    if (d == pos + 1 || (d < end && !IsStop(s[d], false))) {
      line.kind = LineKind::kComment;
      return;
    }
  }
  if (absl::StartsWith(tok, "Defaults")) {
    line.kind = LineKind::kDefaults;
    line.keyword = std::string(tok);
    return;
  }
  if (tok == "User_Alias" || tok == "Runas_Alias" || tok == "Host_Alias" || tok == "Cmnd_Alias" ||
      tok == "Cmd_Alias") {
    line.kind = LineKind::kAlias;
    line.keyword = std::string(tok);
    if (tok != "User_Alias") return;
    size_t p = pos + tok.size();
    while (true) {
      p = SkipWs(s, p, end);
      size_t n = p;
      while (n < end && (absl::ascii_isalnum(static_cast<unsigned char>(s[n])) || s[n] == '_')) ++n;
      AliasDef def;
      def.name = std::string(s.substr(p, n - p));
      p = SkipWs(s, n, end);
      if (def.name.empty() || p >= end || s[p] != '=') {
        line.kind = LineKind::kOther;  // not something we can edit safely
        line.aliases.clear();
        return;
      }
      p = SkipWs(s, p + 1, end);
      if (!ParseList(s, p, end, /*alias_list=*/true, def.members)) {
        line.kind = LineKind::kOther;
        line.aliases.clear();
        return;
      }
      line.aliases.push_back(std::move(def));
      p = SkipWs(s, p, end);
      if (p < end && s[p] == ':') {
        ++p;
        continue;
      }
      return;
    }
  }
  size_t p = pos;
  std::vector<Item> users;
  if (!ParseList(s, p, end, /*alias_list=*/false, users) ||
      s.substr(p, end - p).find('=') == absl::string_view::npos) {
    line.kind = LineKind::kOther;
    return;
  }
  line.kind = LineKind::kUserSpec;
  line.users = std::move(users);
}

struct Edit {
  size_t begin, end;
  std::string replacement;
};

std::string JoinItems(absl::string_view s, const std::vector<const Item*>& items) {
  std::vector<absl::string_view> raw;
  for (const Item* i : items) raw.push_back(s.substr(i->begin, i->end - i->begin));
  return absl::StrJoin(raw, ", ");
}

}  // namespace

std::vector<LogicalLine> ParseSudoers(absl::string_view s) {
  std::vector<LogicalLine> out;
  size_t pos = 0;
  int number = 1;
  while (pos < s.size()) {
    LogicalLine line;
    line.begin = pos;
    line.line_number = number;
    size_t i = pos;
    while (true) {
      const size_t nl = s.find('\n', i);
      if (nl == absl::string_view::npos) {
        line.end = s.size();
        break;
      }
      ++number;
      size_t before = nl;
      if (before > i && s[before - 1] == '\r') --before;
      if (before > i && s[before - 1] == '\\') {
        i = nl + 1;
        continue;
      }
      line.end = nl + 1;
      break;
    }
    Classify(s, line);
    pos = line.end;
    out.push_back(std::move(line));
  }
  return out;
}

std::string LineText(absl::string_view content, const LogicalLine& line, size_t max_len) {
  std::string out;
  const absl::string_view t = content.substr(line.begin, line.end - line.begin);
  for (size_t i = 0; i < t.size() && out.size() < max_len; ++i) {
    const auto c = static_cast<unsigned char>(t[i]);
    if (c == '\\' && i + 1 < t.size() && t[i + 1] == '\n') {
      out.push_back(' ');
      ++i;
    } else if (c == '\n' || c == '\r') {
      continue;
    } else {
      out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
    }
  }
  return std::string(absl::StripAsciiWhitespace(out));
}

UserEdit RemoveUser(absl::string_view s, absl::string_view user) {
  UserEdit result;
  const std::vector<LogicalLine> lines = ParseSudoers(s);
  std::set<std::string> local_aliases;
  for (const auto& l : lines) {
    for (const auto& a : l.aliases) local_aliases.insert(a.name);
  }
  std::vector<Edit> edits;
  for (const auto& l : lines) {
    const std::string where = absl::StrCat("line ", l.line_number, ": ");
    if (l.kind == LineKind::kUserSpec) {
      std::vector<const Item*> keep;
      int hits = 0;
      bool positive_left = false;
      std::vector<std::string> indirect_names;
      for (const auto& item : l.users) {
        if (!item.negated && item.name == user) {
          ++hits;
          continue;
        }
        keep.push_back(&item);
        if (!item.negated) {
          positive_left = true;
          const std::string& n = item.name;
          if (n == "ALL" || n[0] == '%' || n[0] == '+' || IsUidItem(n) ||
              (IsAliasName(n) && local_aliases.count(n) == 0)) {
            indirect_names.push_back(n);
          }
        }
      }
      if (hits == 0) {
        if (!indirect_names.empty()) {
          result.indirect.push_back(absl::StrCat(where, "via ", absl::StrJoin(indirect_names, ","),
                                                 ": ", LineText(s, l)));
        }
        continue;
      }
      result.direct_refs += hits;
      if (!positive_left) {
        edits.push_back({l.begin, l.end, ""});
        result.changes.push_back(absl::StrCat(where, "removed rule: ", LineText(s, l)));
      } else {
        edits.push_back({l.users.front().begin, l.users.back().end, JoinItems(s, keep)});
        result.changes.push_back(
            absl::StrCat(where, "removed ", user, " from the users of rule: ", LineText(s, l)));
      }
    } else if (l.kind == LineKind::kAlias) {
      for (const auto& def : l.aliases) {
        std::vector<const Item*> keep;
        int hits = 0;
        bool positive_left = false;
        for (const auto& item : def.members) {
          if (!item.negated && item.name == user) {
            ++hits;
            continue;
          }
          keep.push_back(&item);
          if (!item.negated) positive_left = true;
        }
        if (hits == 0) continue;
        result.direct_refs += hits;
        edits.push_back({def.members.front().begin, def.members.back().end,
                         positive_left ? JoinItems(s, keep) : std::string("!ALL")});
        result.changes.push_back(absl::StrCat(where, "removed ", user, " from User_Alias ",
                                              def.name,
                                              positive_left ? "" : " (now matches nobody: !ALL)"));
      }
    }
  }
  std::sort(edits.begin(), edits.end(),
            [](const Edit& a, const Edit& b) { return a.begin > b.begin; });
  result.new_content = std::string(s);
  for (const auto& e : edits) {
    result.new_content.replace(e.begin, e.end - e.begin, e.replacement);
  }
  return result;
}

}  // namespace wb::connectors::sudoers
