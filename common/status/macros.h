// Status helpers: Abseil 20220623 has no public RETURN_IF_ERROR.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define WB_CONCAT_INNER_(a, b) a##b
#define WB_CONCAT_(a, b) WB_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define WB_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status wb_status_ = (expr);      \
    if (!wb_status_.ok()) return wb_status_; \
  } while (0)

// `lhs = value of rexpr` or return its error. lhs may declare a variable:
//   WB_ASSIGN_OR_RETURN(auto key, LoadKey(path));
#define WB_ASSIGN_OR_RETURN(lhs, rexpr) \
  WB_ASSIGN_OR_RETURN_IMPL_(WB_CONCAT_(wb_statusor_, __LINE__), lhs, rexpr)
#define WB_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                              \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()
