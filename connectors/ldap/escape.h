// RFC 4514 (DN attribute values) and RFC 4515 (filter assertion values)
// escaping for the ldap connector. Pure functions, thread-safe.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace wb::connectors::ldapesc {

// An attribute value escaped for a DN: backslash before , + " \ < > ; =,
// before a leading '#' or space and a trailing space; NUL and other control
// bytes as \XX. UTF-8 passes unchanged.
std::string EscapeDnValue(absl::string_view value);

// "<attr>=<escaped value>,<base>".
std::string MakeDn(absl::string_view attr, absl::string_view value, absl::string_view base);

// A value escaped for a filter: * ( ) \ and NUL as \2a \28 \29 \5c \00.
std::string EscapeFilterValue(absl::string_view value);

// An attribute description: a name ([A-Za-z][A-Za-z0-9-]*) or a numeric OID.
bool IsAttributeName(absl::string_view name);

}  // namespace wb::connectors::ldapesc
