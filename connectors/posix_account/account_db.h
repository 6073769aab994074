// Reads the local account databases (passwd, shadow, group, gshadow) under a
// root directory and describes one account, without trusting any tool: this
// is the independent observation posix_account's Verify relies on.
//
// Parsing follows the files' own rules (colon-separated fields, one entry a
// line; NSS "files" returns the FIRST entry of a name, so later duplicates
// are ignored and counted). Lines starting with '+' or '-' (NIS compat) and
// malformed lines are skipped and counted.
//
// The password hash in shadow is a secret: it is never copied into an
// AccountView; only its class (locked / no password / hash) is kept.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wb::connectors::posix {

enum class PasswordState {
  kMissing,     // no shadow entry
  kEmpty,       // empty field: login without password (!)
  kLocked,      // starts with '!'
  kNoPassword,  // "*" or another value that is not a crypt hash: no password login
  kHash,        // a usable password hash
};
absl::string_view PasswordStateName(PasswordState s);

struct AccountView {
  bool exists = false;  // a passwd entry exists
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string gecos;
  std::string home;
  std::string shell;
  // The passwd line exactly as read (it holds no secret: the hash is in shadow).
  std::string passwd_line;

  bool has_shadow = false;
  PasswordState password = PasswordState::kMissing;
  // Shadow aging fields other than the password, as written ("" = unset).
  std::string last_change, min_days, max_days, warn_days, inactive_days, expire_days;

  std::string primary_group;  // name of the group with gid, "" if none
  // Supplementary groups listing the user in group (sorted, unique).
  std::vector<std::string> groups;
  // Groups listing the user as a member in gshadow (sorted, unique).
  std::vector<std::string> gshadow_groups;

  int skipped_lines = 0;  // malformed / NIS / duplicate lines seen

  // Expiry day (days since 1970-01-01) if set and numeric.
  std::optional<int64_t> ExpireDay() const;
  // True iff the account is expired on day `today` (shadow(5), as pam_unix
  // and sshd decide it: an expiry day is set and today >= it).
  bool ExpiredOn(int64_t today) const;
};

struct GroupView {
  bool exists = false;
  uint32_t gid = 0;
  std::vector<std::string> members;          // from group
  std::vector<std::string> gshadow_members;  // from gshadow (empty if no gshadow)
};

// The texts of the four databases. gshadow may be absent ("" and
// has_gshadow=false).
struct AccountFiles {
  std::string passwd, shadow, group, gshadow;
  bool has_gshadow = false;
};

// Reads <root>/etc/{passwd,shadow,group,gshadow}. passwd, shadow and group
// must exist; gshadow may be missing.
absl::StatusOr<AccountFiles> ReadAccountFiles(const std::string& root);

AccountView DescribeAccount(const AccountFiles& files, absl::string_view user);
GroupView DescribeGroup(const AccountFiles& files, absl::string_view group);

// Every home directory in passwd, with the owning account (for the shared
// home check of delete).
std::vector<std::pair<std::string, std::string>> HomeDirectories(const AccountFiles& files);

}  // namespace wb::connectors::posix
