#include "connectors/posix_account/account_db.h"

#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fs/fs.h"

namespace wb::connectors::posix {
namespace {

constexpr size_t kMaxDbBytes = 64 << 20;

// Splits a database into lines (without '\n'), skipping blank lines.
std::vector<absl::string_view> Lines(absl::string_view text) {
  std::vector<absl::string_view> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

bool IsCompatLine(absl::string_view line) { return line[0] == '+' || line[0] == '-'; }

std::vector<std::string> SplitMembers(absl::string_view field) {
  std::vector<std::string> out;
  for (absl::string_view m : absl::StrSplit(field, ',', absl::SkipEmpty())) out.emplace_back(m);
  return out;
}

void SortUnique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

PasswordState ClassifyPassword(absl::string_view pw) {
  if (pw.empty()) return PasswordState::kEmpty;
  if (pw[0] == '!') return PasswordState::kLocked;
  // crypt(5) hashes start with '$' (or are 13-character DES strings); '*',
  // "x" and other short markers cannot match any password.
  if (pw[0] == '$' || pw.size() == 13) return PasswordState::kHash;
  return PasswordState::kNoPassword;
}

}  // namespace

absl::string_view PasswordStateName(PasswordState s) {
  switch (s) {
    case PasswordState::kMissing:
      return "no_shadow_entry";
    case PasswordState::kEmpty:
      return "empty";
    case PasswordState::kLocked:
      return "locked";
    case PasswordState::kNoPassword:
      return "no_password";
    case PasswordState::kHash:
      return "password_set";
  }
  return "unknown";
}

std::optional<int64_t> AccountView::ExpireDay() const {
  int64_t day = 0;
  if (expire_days.empty() || !absl::SimpleAtoi(expire_days, &day)) return std::nullopt;
  if (day < 0) return std::nullopt;  // -1 means "never" to the shadow library
  return day;
}

bool AccountView::ExpiredOn(int64_t today) const {
  const auto day = ExpireDay();
  return day.has_value() && today >= *day;
}

absl::StatusOr<AccountFiles> ReadAccountFiles(const std::string& root) {
  const std::string etc = (root.empty() || root == "/") ? "/etc" : root + "/etc";
  AccountFiles f;
  auto read = [&](const std::string& name, std::string* out) -> absl::Status {
    auto c = fs::ReadFile(etc + "/" + name, kMaxDbBytes);
    if (!c.ok()) return c.status();
    *out = std::move(*c);
    return absl::OkStatus();
  };
  if (auto s = read("passwd", &f.passwd); !s.ok()) return s;
  if (auto s = read("shadow", &f.shadow); !s.ok()) return s;
  if (auto s = read("group", &f.group); !s.ok()) return s;
  auto gs = fs::ReadFile(etc + "/gshadow", kMaxDbBytes);
  if (gs.ok()) {
    f.gshadow = std::move(*gs);
    f.has_gshadow = true;
  } else if (!absl::IsNotFound(gs.status())) {
    return gs.status();
  }
  return f;
}

AccountView DescribeAccount(const AccountFiles& files, absl::string_view user) {
  AccountView v;
  v.name = std::string(user);
  for (absl::string_view line : Lines(files.passwd)) {
    if (IsCompatLine(line)) {
      ++v.skipped_lines;
      continue;
    }
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    if (f.size() != 7) {
      ++v.skipped_lines;
      continue;
    }
    if (f[0] != user) continue;
    if (v.exists) {
      ++v.skipped_lines;
      continue;
    }
    if (!absl::SimpleAtoi(f[2], &v.uid) || !absl::SimpleAtoi(f[3], &v.gid)) {
      ++v.skipped_lines;
      continue;
    }
    v.exists = true;
    v.gecos = std::string(f[4]);
    v.home = std::string(f[5]);
    v.shell = std::string(f[6]);
    v.passwd_line = std::string(line);
  }
  for (absl::string_view line : Lines(files.shadow)) {
    if (IsCompatLine(line)) continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    if (f.size() != 9 || f[0] != user || v.has_shadow) continue;
    v.has_shadow = true;
    v.password = ClassifyPassword(f[1]);
    v.last_change = std::string(f[2]);
    v.min_days = std::string(f[3]);
    v.max_days = std::string(f[4]);
    v.warn_days = std::string(f[5]);
    v.inactive_days = std::string(f[6]);
    v.expire_days = std::string(f[7]);
  }
  std::set<std::string> seen_groups;
  for (absl::string_view line : Lines(files.group)) {
    if (IsCompatLine(line)) continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    if (f.size() != 4) continue;
    const std::string name(f[0]);
    if (!seen_groups.insert(name).second) continue;
    uint32_t gid = 0;
    if (v.exists && v.primary_group.empty() && absl::SimpleAtoi(f[2], &gid) && gid == v.gid) {
      v.primary_group = name;
    }
    for (const auto& m : SplitMembers(f[3])) {
      if (m == user) v.groups.push_back(name);
    }
  }
  if (files.has_gshadow) {
    std::set<std::string> seen;
    for (absl::string_view line : Lines(files.gshadow)) {
      if (IsCompatLine(line)) continue;
      std::vector<absl::string_view> f = absl::StrSplit(line, ':');
      if (f.size() != 4) continue;
      const std::string name(f[0]);
      if (!seen.insert(name).second) continue;
      for (const auto& m : SplitMembers(f[3])) {
        if (m == user) v.gshadow_groups.push_back(name);
      }
    }
  }
  SortUnique(v.groups);
  SortUnique(v.gshadow_groups);
  return v;
}

GroupView DescribeGroup(const AccountFiles& files, absl::string_view group) {
  GroupView g;
  for (absl::string_view line : Lines(files.group)) {
    if (IsCompatLine(line)) continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    if (f.size() != 4 || f[0] != group) continue;
    if (!absl::SimpleAtoi(f[2], &g.gid)) continue;
    g.exists = true;
    g.members = SplitMembers(f[3]);
    break;
  }
  if (files.has_gshadow) {
    for (absl::string_view line : Lines(files.gshadow)) {
      if (IsCompatLine(line)) continue;
      std::vector<absl::string_view> f = absl::StrSplit(line, ':');
      if (f.size() != 4 || f[0] != group) continue;
      g.gshadow_members = SplitMembers(f[3]);
      break;
    }
  }
  return g;
}

std::vector<std::pair<std::string, std::string>> HomeDirectories(const AccountFiles& files) {
  std::vector<std::pair<std::string, std::string>> out;
  for (absl::string_view line : Lines(files.passwd)) {
    if (IsCompatLine(line)) continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    if (f.size() != 7) continue;
    out.emplace_back(std::string(f[5]), std::string(f[0]));
  }
  return out;
}

}  // namespace wb::connectors::posix
