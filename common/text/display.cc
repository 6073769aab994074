#include "common/text/display.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace wb::text {
namespace {

// Sorted, disjoint, inclusive. Unicode general categories Cc, Cf, Zl and
// Zp, plus the invisible fillers and variation selectors (U+FE0E and U+FE0F,
// text and emoji presentation, are allowed: they are everywhere in emoji).
constexpr std::pair<uint32_t, uint32_t> kUnsafe[] = {
    {0x0000, 0x001F},    // C0 controls
    {0x007F, 0x009F},    // DEL, C1 controls
    {0x00AD, 0x00AD},    // soft hyphen
    {0x034F, 0x034F},    // combining grapheme joiner
    {0x0600, 0x0605},    // Arabic number signs (prepended format)
    {0x061C, 0x061C},    // Arabic letter mark (bidi)
    {0x06DD, 0x06DD},    // Arabic end of ayah
    {0x070F, 0x070F},    // Syriac abbreviation mark
    {0x0890, 0x0891},    // Arabic pound / piastre mark above
    {0x08E2, 0x08E2},    // Arabic disputed end of ayah
    {0x115F, 0x1160},    // Hangul choseong / jungseong fillers
    {0x17B4, 0x17B5},    // Khmer inherent vowels (invisible)
    {0x180B, 0x180F},    // Mongolian variation selectors, vowel separator
    {0x200B, 0x200F},    // zero width space, (non-)joiner, LRM, RLM
    {0x2028, 0x202E},    // line/paragraph separators, LRE RLE PDF LRO RLO
    {0x2060, 0x206F},    // word joiner, invisible operators, LRI RLI FSI PDI, ...
    {0x3164, 0x3164},    // Hangul filler
    {0xD800, 0xDFFF},    // surrogates (never in UTF-8; listed for the page's script)
    {0xFE00, 0xFE0D},    // variation selectors 1-14
    {0xFEFF, 0xFEFF},    // zero width no-break space (BOM)
    {0xFFA0, 0xFFA0},    // halfwidth Hangul filler
    {0xFFF9, 0xFFFB},    // interlinear annotation
    {0x110BD, 0x110BD},  // Kaithi number sign
    {0x110CD, 0x110CD},  // Kaithi number sign above
    {0x13430, 0x1343F},  // Egyptian hieroglyph format controls
    {0x1BCA0, 0x1BCA3},  // shorthand format controls
    {0x1D173, 0x1D17A},  // musical symbol format controls
    {0xE0000, 0xE007F},  // tags (invisible "ASCII smuggling")
    {0xE0100, 0xE01EF},  // variation selectors 17-256
};

struct Name {
  uint32_t cp;
  const char* name;
};
constexpr Name kNames[] = {
    {0x061C, "Arabic letter mark, a bidirectional control"},
    {0x200B, "zero width space"},
    {0x200C, "zero width non-joiner"},
    {0x200D, "zero width joiner"},
    {0x200E, "left-to-right mark, a bidirectional control"},
    {0x200F, "right-to-left mark, a bidirectional control"},
    {0x2028, "line separator"},
    {0x2029, "paragraph separator"},
    {0x202A, "left-to-right embedding, a bidirectional control"},
    {0x202B, "right-to-left embedding, a bidirectional control"},
    {0x202C, "pop directional formatting, a bidirectional control"},
    {0x202D, "left-to-right override, a bidirectional control"},
    {0x202E, "right-to-left override, a bidirectional control"},
    {0x2060, "word joiner, invisible"},
    {0x2066, "left-to-right isolate, a bidirectional control"},
    {0x2067, "right-to-left isolate, a bidirectional control"},
    {0x2068, "first strong isolate, a bidirectional control"},
    {0x2069, "pop directional isolate, a bidirectional control"},
    {0xFEFF, "zero width no-break space"},
};

void AppendEscape(std::string* out, uint32_t cp, bool valid, EscapeStyle style) {
  if (style == EscapeStyle::kJson) {
    if (!valid) {
      out->append("\\ufffd");
    } else if (cp > 0xFFFF) {
      const uint32_t v = cp - 0x10000;
      absl::StrAppend(out,
                      absl::StrFormat("\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF)));
    } else {
      absl::StrAppend(out, absl::StrFormat("\\u%04x", cp));
    }
    return;
  }
  if (valid && cp == '\n') {
    out->append("\\n");
  } else if (valid && cp == '\t') {
    out->append("\\t");
  } else if (valid && cp == '\r') {
    out->append("\\r");
  } else if (!valid || cp < 0x20 || cp == 0x7F) {
    absl::StrAppend(out, absl::StrFormat("\\x%02x", cp));
  } else if (cp <= 0xFFFF) {
    absl::StrAppend(out, absl::StrFormat("\\u%04x", cp));
  } else {
    absl::StrAppend(out, absl::StrFormat("\\U%08x", cp));
  }
}

// Layout characters a style leaves as they are.
bool Kept(uint32_t cp, EscapeStyle style) {
  switch (style) {
    case EscapeStyle::kText:
      return false;
    case EscapeStyle::kTextKeepNewlines:
      return cp == '\n';
    case EscapeStyle::kJson:  // JSON whitespace; never raw inside a JSON string
      return cp == '\n' || cp == '\r' || cp == '\t';
  }
  return false;
}

}  // namespace

size_t DecodeUtf8(absl::string_view s, size_t i, uint32_t* cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t n = 0;
  uint32_t v = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    v = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    v = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    v = (v << 6) | (cc & 0x3F);
  }
  if ((n == 2 && v < 0x80) || (n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10FFFF ||
      (v >= 0xD800 && v <= 0xDFFF)) {
    return 0;
  }
  *cp = v;
  return n;
}

bool IsWhiteSpace(uint32_t cp) {
  return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F) || cp == 0x85 ||
         cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool IsUnsafeCodePoint(uint32_t cp) {
  // Binary search for the first range whose end is >= cp.
  const auto* it = std::lower_bound(std::begin(kUnsafe), std::end(kUnsafe), cp,
                                    [](const auto& r, uint32_t v) { return r.second < v; });
  return it != std::end(kUnsafe) && it->first <= cp;
}

const std::vector<std::pair<uint32_t, uint32_t>>& UnsafeRanges() {
  static const auto* ranges =
      new std::vector<std::pair<uint32_t, uint32_t>>(std::begin(kUnsafe), std::end(kUnsafe));
  return *ranges;
}

std::optional<Unsafe> FindUnsafe(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp = 0;
    const size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) return Unsafe{i, static_cast<unsigned char>(s[i]), false};
    if (IsUnsafeCodePoint(cp)) return Unsafe{i, cp, true};
    i += n;
  }
  return std::nullopt;
}

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp = 0;
    const size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string Describe(const Unsafe& u) {
  if (!u.valid_utf8) return absl::StrFormat("byte 0x%02x (not UTF-8)", u.cp);
  for (const Name& n : kNames) {
    if (n.cp == u.cp) return absl::StrFormat("U+%04X (%s)", u.cp, n.name);
  }
  const char* what = u.cp < 0x20 || (u.cp >= 0x7F && u.cp <= 0x9F)
                         ? "a control character"
                         : "an invisible formatting character";
  return absl::StrFormat("U+%04X (%s)", u.cp, what);
}

std::string EscapeForDisplay(absl::string_view s, EscapeStyle style) {
  if (!FindUnsafe(s).has_value()) return std::string(s);
  std::string out;
  out.reserve(s.size() + 16);
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp = 0;
    const size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) {
      AppendEscape(&out, static_cast<unsigned char>(s[i]), false, style);
      ++i;
      continue;
    }
    if (IsUnsafeCodePoint(cp) && !Kept(cp, style)) {
      AppendEscape(&out, cp, true, style);
    } else {
      out.append(s.data() + i, n);
    }
    i += n;
  }
  return out;
}

}  // namespace wb::text
