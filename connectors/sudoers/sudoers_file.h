// A small, conservative reader/editor of sudoers drop-in files: enough of
// the sudoers(5) grammar to find the rules that name one user and remove
// them byte-exactly, leaving every other byte of the file as it was.
//
// What it understands: logical lines (a backslash before the newline joins
// lines), comments, @include/#include directives, Defaults lines,
// *_Alias definitions (User_Alias members are parsed), and user
// specifications "USER_LIST HOST_LIST = ...", whose user list is items
// separated by commas (optionally negated with '!', optionally quoted, with
// backslash escapes).
//
// What RemoveUser does for user U:
//   - a rule whose user list names U (not negated): U is removed from the
//     list; if no positive item is left the whole rule (all its physical
//     lines) is removed;
//   - a User_Alias whose members name U: U is removed; if no positive
//     member is left the member list becomes "!ALL" (matches nobody), so
//     rules that use the alias stay valid and grant nothing;
//   - "!U" (a denial) is never removed: removing it would widen access;
//   - Defaults:U lines are settings, not grants, and are kept;
//   - references that may still cover U indirectly (%group, +netgroup,
//     #uid, ALL, aliases defined elsewhere) are reported, not changed.
// Whether the result still grants U anything is for sudo's own parser to
// say (cvtsudoers / sudo -l), which the connector asks.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace wb::connectors::sudoers {

enum class LineKind { kBlank, kComment, kInclude, kDefaults, kAlias, kUserSpec, kOther };

struct Item {
  size_t begin = 0, end = 0;  // byte span in the file (including '!' and quotes)
  std::string name;           // unquoted, unescaped, without '!'
  bool negated = false;
};

struct AliasDef {
  std::string name;
  std::vector<Item> members;
};

struct LogicalLine {
  size_t begin = 0, end = 0;  // byte span in the file, including the final newline
  int line_number = 1;        // of its first physical line
  LineKind kind = LineKind::kBlank;
  std::string keyword;            // kAlias: "User_Alias", ...; kDefaults: "Defaults..."
  std::vector<AliasDef> aliases;  // kAlias with keyword User_Alias
  std::vector<Item> users;        // kUserSpec
};

std::vector<LogicalLine> ParseSudoers(absl::string_view content);

struct UserEdit {
  std::string new_content;
  // Human-readable, one per change ("line 3: removed rule: ...").
  std::vector<std::string> changes;
  // References that may still grant the user something ("line 7: %admins ...").
  std::vector<std::string> indirect;
  // Positive, direct references to the user (in rules and User_Alias lists).
  int direct_refs = 0;
};

UserEdit RemoveUser(absl::string_view content, absl::string_view user);

// The logical line's text, printable ASCII, continuation newlines folded.
std::string LineText(absl::string_view content, const LogicalLine& line, size_t max_len = 300);

}  // namespace wb::connectors::sudoers
