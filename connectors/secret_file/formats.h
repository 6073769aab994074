// Finding and removing one secret in a .env, JSON or INI file, for the
// secret_file connector. Removal keeps every other byte of a .env or INI
// file as it was; a JSON file is parsed and written again (member order
// kept, indentation re-detected, see RemoveJsonPath).
//
// Values are never returned: results carry key names and line numbers only,
// because the values are the secrets.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wb::connectors::secret_file {

struct Removal {
  std::string new_content;
  // One per removed entry, e.g. "AWS_SECRET_ACCESS_KEY at line 3" (no value).
  std::vector<std::string> removed;
  int entries = 0;  // entries of the kind looked at (keys, sections, members)
  // RemoveIniKey: definitions of the key in [DEFAULT], which configparser
  // gives every section: the key is still seen in the section while they
  // exist. Not removed (that would remove it from every section).
  std::vector<std::string> inherited;
};

// .env: lines "KEY=VALUE" or "export KEY=VALUE", '#' comments; a quoted
// value may span lines (until its closing quote). Removes every assignment
// of `key` (all its lines).
Removal RemoveEnvKey(absl::string_view content, absl::string_view key);

// INI, as Python's configparser reads it (docs/connectors/secret_file.md):
// "[section]" headers; "key = value" or "key: value", where the key ends at
// the first '=' or ':'; ';'/'#' comment lines; lines indented deeper than
// their key line continue its value (blank and comment lines in between do
// not end it). Keys match without regard to ASCII case; section names match
// trimmed. An empty `section` means the keys before the first header.
// Removes `key` (with its continuation lines) from every section named
// `section`, and lists in `inherited` the definitions in [DEFAULT] that
// configparser would still show in that section.
Removal RemoveIniKey(absl::string_view content, absl::string_view section, absl::string_view key);

// Removes every section named `section` (header to the line before the
// next header). `entries` counts sections.
Removal RemoveIniSection(absl::string_view content, absl::string_view section);

// JSON: removes the member at `path` (object member names from the root).
// FAILED_PRECONDITION if the file is not a JSON document (or nests deeper
// than 512 levels). Absent path: no removal, content unchanged. Otherwise
// the document is written again with the indentation detected from the
// file (or compact if it had no newline), member order kept, and the
// trailing newline kept; numbers and string escapes are written in
// nlohmann-json's canonical form.
absl::StatusOr<Removal> RemoveJsonPath(absl::string_view content,
                                       const std::vector<std::string>& path);

}  // namespace wb::connectors::secret_file
