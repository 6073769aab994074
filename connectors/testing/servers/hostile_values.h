// Test support: hostile identifiers for the injection tests of the postgres,
// redis and ldap connectors. At least 200 distinct values: quotes, semicolons,
// comment markers, NUL, newlines, SQL / RESP / LDAP filter and DN special
// characters, format directives, 64 KiB strings, invalid UTF-8 and Unicode
// look-alikes. Some are valid names on a given target (and must be acted on
// exactly), others are refused by its grammar (and must change nothing).
#pragma once

#include <set>
#include <string>
#include <vector>

namespace wb::connectors::testing {

inline std::vector<std::string> HostileValues() {
  using namespace std::string_literals;
  const std::vector<std::string> payloads = {
      "'",
      "\"",
      "''",
      "\"\"",
      "`",
      "a'b",
      "a\"b",
      "a`b",
      "'; DROP TABLE public.canary; --",
      "\"; DROP TABLE public.canary; --",
      "x'); DROP TABLE public.canary; --",
      "x\"; CREATE ROLE pwned SUPERUSER; --",
      "'; CREATE ROLE pwned SUPERUSER; --",
      "\" OR \"1\"=\"1",
      "' OR '1'='1",
      "; SELECT pg_sleep(10); --",
      ";",
      ";;",
      "a;b",
      "--",
      "-- comment",
      "/*",
      "*/",
      "/* x */",
      "#",
      "# comment",
      "$$",
      "$tag$ x $tag$",
      "$1",
      "\\",
      "\\\\",
      "\\'",
      "\\\"",
      "E'\\x27'",
      "U&\"\\0041\"",
      "%s",
      "%I",
      "%L",
      "%n%n%n",
      "{}",
      "${jndi:ldap://x/a}",
      "a\nb",
      "a\rb",
      "\r\n",
      "a\tb",
      "\n",
      "line1\nACL SETUSER pwned on >x +@all",
      "\r\nFLUSHALL\r\n",
      "*3\r\n$3\r\nSET\r\n",
      "a b",
      " leading",
      "trailing ",
      " ",
      "*",
      "(",
      ")",
      "(uid=*)",
      "*)(uid=*))(|(uid=*",
      ")(objectClass=*)",
      "\\2a",
      "\\00",
      "a,b",
      "a+b",
      "a=b",
      "a<b",
      "a>b",
      "cn=x,dc=example,dc=test",
      "uid=admin,ou=people",
      "#hash",
      "a\\,b",
      ",",
      "+",
      "=",
      "<",
      ">",
      "a\"b\\c",
      "dc=test",
      "ou=groups,dc=example,dc=test",
      "~*",
      "%R~*",
      "&*",
      "+@all",
      "-@all",
      "on",
      "off",
      "nopass",
      ">secret",
      "resetpass",
      "allkeys",
      "default",
      "AUTH default x",
      "KEYS *",
      "FLUSHALL",
      "CONFIG SET dir /tmp",
      "pg_catalog",
      "public",
      "postgres",
      "PUBLIC",
      "CURRENT_USER",
      "SESSION_USER",
      "pg_signal_backend",
      "ｓｖｃ",
      "svс",
      "ѕvc",
      "svc\u200b",
      "\u202esvc",
      "“quoted”",
      "‘quoted’",
      "＂",
      "＇",
      "ʼ",
      "＜script＞",
      "e\u0301",
      "é",
      "日本語",
      "🙂",
      "ß",
      "İ",
      "\u00a0",
      "\ufeffbom",
      "<script>alert(1)</script>",
      "../../etc/passwd",
      "..",
      ".",
      "/",
      "a/b",
      "C:\\x",
      "NULL",
      "null",
      "nil",
      "true",
      "0",
      "-1",
      "1e9",
      "%00",
      "%27",
      "&#39;",
      "&quot;",
  };
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](std::string v) {
    if (seen.insert(v).second) out.push_back(std::move(v));
  };
  for (const auto& p : payloads) add(p);
  // The same behind a harmless prefix (the first 70): a target's grammar may
  // accept a value only when it does not start with a special character.
  for (size_t i = 0; i < payloads.size() && i < 70; ++i) add("svc" + payloads[i]);
  // Bytes no grammar accepts.
  add("a\0b"s);
  add("\0"s);
  add("svc\0'; DROP TABLE public.canary; --"s);
  add("\xff");
  add("\xc0\xa2");      // overlong '"'
  add("\xed\xa0\x80");  // a surrogate
  add("a\x7f");
  add("a\x01b");
  // Lengths around the limits (63: PostgreSQL, 512: Redis, 1024: LDAP), and 64 KiB.
  for (size_t n : {62u, 63u, 64u, 200u, 511u, 512u, 513u, 1023u, 1024u, 1025u, 65536u}) {
    add(std::string(n, 'q'));
    add(std::string(n - 1, 'q') + "'");
  }
  add(std::string(65536, '\''));
  add(std::string(65536, ';'));
  return out;
}

}  // namespace wb::connectors::testing
