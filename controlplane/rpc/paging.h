// Page tokens of the admin API's lists (Google AIP-158 style: page_size,
// page_token, next_page_token; docs/operations.md "API paging").
//
// A token is the base64url of a writeback.v1.PageCursor: which list it
// continues, a digest of the filters it was made for, and the sort key of
// the last item handed out. It is opaque to clients and not secret: a
// forged one can only position a listing the caller may read anyway. A
// token that does not decode, belongs to another list or was made for other
// filters is INVALID_ARGUMENT naming page_token.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "writeback/v1/paging.pb.h"

namespace wb::controlplane::paging {

inline constexpr uint32_t kDefaultPageSize = 500;
inline constexpr uint32_t kMaxPageSize = 1000;

// The page size to serve: `requested`, `default_size` for 0, kMaxPageSize
// for anything larger (clamped, not refused).
uint32_t PageSize(uint32_t requested, uint32_t default_size = kDefaultPageSize);

// A digest of a list's filters (each part length-prefixed, so ("ab", "c")
// and ("a", "bc") differ).
std::string FilterDigest(std::initializer_list<absl::string_view> parts);

// A cursor for `list` and `filter_digest` (FilterDigest), to fill in.
writeback::v1::PageCursor NewCursor(absl::string_view list, absl::string_view filter_digest);
std::string Encode(const writeback::v1::PageCursor& cursor);

// The cursor `token` carries; nullopt for "" (the first page).
absl::StatusOr<std::optional<writeback::v1::PageCursor>> Decode(absl::string_view token,
                                                                absl::string_view list,
                                                                absl::string_view filter_digest);

}  // namespace wb::controlplane::paging
