// Display safety: text that reaches a person (wbctl, the dashboard, logs)
// must show what it is. Some characters change or hide what is displayed
// without being visible themselves:
//   - control characters: C0 (U+0000..U+001F), DEL, C1 (U+0080..U+009F),
//     which drive terminals (ESC [ ..., CSI);
//   - bidirectional controls (U+202A..U+202E, U+2066..U+2069, U+200E/F,
//     U+061C), which reorder what follows: "txt.exe" can be shown as
//     "exe.txt";
//   - zero-width and other invisible format characters (U+200B..U+200D,
//     U+2060.., U+FEFF, soft hyphen, tags U+E0000.., variation selectors
//     other than U+FE0E/U+FE0F, Hangul fillers, ...), which make two
//     different strings look the same or carry hidden text;
//   - line and paragraph separators (U+2028, U+2029).
// This file is the one list of them and the one way to escape them:
//   - where such characters have no business (identifiers, a decision's
//     reason and reference, labels) they are refused: FindUnsafe, and
//     actions::ValidateText which uses it;
//   - wherever untrusted text is shown it goes through EscapeForDisplay,
//     which writes each of them visibly ("\u202e") and leaves everything else,
//     including ordinary non-ASCII text, as it is.
// A backslash is not escaped: the literal text "\u202e" and an escaped
// U+202E look the same, and both are harmless to read.
//
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace wb::text {

// True for the characters described above.
bool IsUnsafeCodePoint(uint32_t cp);

// The same set as sorted, disjoint, inclusive ranges (the dashboard's script
// is given this table, so the page escapes exactly what wbctl escapes).
const std::vector<std::pair<uint32_t, uint32_t>>& UnsafeRanges();

// The first thing in `s` that must not be displayed as it is.
struct Unsafe {
  size_t offset = 0;       // byte offset in s
  uint32_t cp = 0;         // the code point, or the byte if !valid_utf8
  bool valid_utf8 = true;  // false: a byte that is not part of valid UTF-8
};
std::optional<Unsafe> FindUnsafe(absl::string_view s);
// True if `s` is well-formed UTF-8 (no overlong forms, no surrogates, at
// most U+10FFFF). Says nothing about unsafe characters.
bool IsValidUtf8(absl::string_view s);
// Decodes the UTF-8 sequence at s[i]: sets *cp and returns its length, or
// returns 0 if the bytes at s[i] are not well-formed UTF-8 (i < s.size()).
size_t DecodeUtf8(absl::string_view s, size_t i, uint32_t* cp);
// White space as Unicode (and Python's str.isspace, hence configparser's
// strip) sees it: ASCII \t \n \v \f \r, U+001C..U+001F, space, U+0085,
// U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
bool IsWhiteSpace(uint32_t cp);
// For error messages: "U+202E (right-to-left override)", "U+0007 (a control
// character)", "byte 0xff (not UTF-8)".
std::string Describe(const Unsafe& u);

enum class EscapeStyle {
  // For a terminal, a table cell or a log line: \t \n \r, \xNN for other C0
  // controls, DEL and bytes that are not UTF-8, \uXXXX, \UXXXXXXXX beyond
  // the BMP. The same escapes a YAML double-quoted scalar reads back.
  kText,
  // As kText, but newlines stay (whole documents whose lines are ours).
  kTextKeepNewlines,
  // JSON: \uXXXX (surrogate pairs beyond the BMP); a byte that is not UTF-8
  // becomes U+FFFD; tab, newline and carriage return stay (JSON whitespace;
  // a JSON string never holds them raw). Applied to a whole JSON document it
  // only touches its strings, which still mean the same values.
  kJson,
};

// `s` with every unsafe character (and every byte that is not UTF-8)
// escaped; unchanged if it has none. The result is valid UTF-8 and contains
// no unsafe character, so escaping it again changes nothing.
std::string EscapeForDisplay(absl::string_view s, EscapeStyle style = EscapeStyle::kText);

}  // namespace wb::text
