#include "controlplane/rpc/paging.h"

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"

namespace wb::controlplane::paging {

namespace {
// Far more than any cursor this control plane makes.
constexpr size_t kMaxTokenBytes = 2048;
}  // namespace

uint32_t PageSize(uint32_t requested, uint32_t default_size) {
  if (requested == 0) return default_size;
  return requested > kMaxPageSize ? kMaxPageSize : requested;
}

std::string FilterDigest(std::initializer_list<absl::string_view> parts) {
  std::string all;
  for (absl::string_view p : parts) absl::StrAppend(&all, p.size(), ":", p, ";");
  return crypto::Sha256(all);
}

writeback::v1::PageCursor NewCursor(absl::string_view list, absl::string_view filter_digest) {
  writeback::v1::PageCursor c;
  c.set_list(std::string(list));
  c.set_filter_digest(std::string(filter_digest));
  return c;
}

std::string Encode(const writeback::v1::PageCursor& cursor) {
  return absl::WebSafeBase64Escape(cursor.SerializeAsString());
}

absl::StatusOr<std::optional<writeback::v1::PageCursor>> Decode(absl::string_view token,
                                                                absl::string_view list,
                                                                absl::string_view filter_digest) {
  if (token.empty()) return std::nullopt;
  std::string bytes;
  writeback::v1::PageCursor c;
  if (token.size() > kMaxTokenBytes || !absl::WebSafeBase64Unescape(token, &bytes) ||
      !c.ParseFromString(bytes) || c.list().empty()) {
    return absl::InvalidArgumentError(
        "page_token: not a page token of this control plane (use next_page_token as it came)");
  }
  if (c.list() != list) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token: a token of another list, not of ", list));
  }
  if (c.filter_digest() != filter_digest) {
    return absl::InvalidArgumentError(
        "page_token: made for other filters; ask again with the filters of the first page, or "
        "without page_token");
  }
  return c;
}

}  // namespace wb::controlplane::paging
