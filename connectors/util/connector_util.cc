#include "connectors/util/connector_util.h"

#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"

namespace wb::connectors::util {

absl::Status CheckDeadline(const CallContext& ctx) {
  if (ctx.clock->Now() > ctx.deadline) {
    return absl::DeadlineExceededError("deadline passed before the call started");
  }
  return absl::OkStatus();
}

std::string PrintableUtf8(absl::string_view s, size_t max) {
  std::string out;
  size_t i = 0;
  while (i < s.size() && out.size() < max) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = 0;  // continuation bytes a valid sequence starting with c has
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    if (c >= 0xe0 && c <= 0xef) n = 2;
    if (c >= 0xf0 && c <= 0xf4) n = 3;
    bool valid = n > 0;
    for (size_t k = 1; valid && k <= n; ++k) {
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) valid = false;
    }
    if (valid && n == 2) {  // no overlong forms, no surrogates
      const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)) valid = false;
    }
    if (valid && n == 3) {  // no overlong forms, nothing above U+10FFFF
      const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 >= 0x90)) valid = false;
    }
    if (valid) {
      out.append(s.data() + i, n + 1);
      i += n + 1;
    } else if (c < 0x20 || c >= 0x7f || c == '\\') {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
      ++i;
    } else {
      out.push_back(static_cast<char>(c));
      ++i;
    }
  }
  if (i < s.size()) absl::StrAppend(&out, "...(", s.size(), " bytes)");
  return out;
}

absl::StatusOr<std::string> ReadSecretLine(const std::string& path, absl::string_view field) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(field, ": cannot read ", path, ": ",
                                                      absl::ErrnoToStatus(errno, "").message()));
  }
  if ((st.st_mode & 0007) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": ", path, " is accessible to others (mode ",
                     absl::StrFormat("%04o", st.st_mode & 07777), "); make it 0600 or 0640"));
  }
  auto content = fs::ReadFile(path, 4096);
  if (!content.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": cannot read ", path, ": ", content.status().message()));
  }
  std::string s = std::move(*content);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
  if (s.empty()) return absl::FailedPreconditionError(absl::StrCat(field, ": ", path, " is empty"));
  if (s.find('\n') != std::string::npos || s.find('\0') != std::string::npos) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": ", path, " must hold exactly one line"));
  }
  return s;
}

std::string EncodePlanState(absl::string_view magic, const Action& action,
                            const std::vector<std::string>& fields) {
  return absl::StrCat(magic, "\n", action.operation, "\n",
                      crypto::HexEncode(crypto::Sha256(action.object)), "\n",
                      absl::StrJoin(fields, "\n"));
}

absl::StatusOr<std::vector<std::string>> DecodePlanState(absl::string_view magic,
                                                         absl::string_view connector,
                                                         const Action& action,
                                                         absl::string_view state, size_t fields) {
  std::vector<std::string> parts = absl::StrSplit(state, '\n');
  if (parts.size() != 3 + fields || parts[0] != magic) {
    return absl::InvalidArgumentError(
        absl::StrCat("plan.state: not a plan made by a ", connector, " connector"));
  }
  if (parts[1] != action.operation ||
      parts[2] != crypto::HexEncode(crypto::Sha256(action.object))) {
    return absl::InvalidArgumentError("plan.state: the plan is for another operation or object");
  }
  return std::vector<std::string>(parts.begin() + 3, parts.end());
}

}  // namespace wb::connectors::util
