// Small file helpers with honest errors. No shell, no temp names in shared
// directories: the temp file sits next to the target and is renamed over it.
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wb::fs {

// Reads a whole file (refuses files larger than max_bytes).
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = 64 << 20);

struct WriteOptions {
  mode_t mode = 0600;
  // If >= 0, chown the new file to this owner/group before the rename.
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  bool fsync_dir = true;
};

// Writes `content` to a temp file in the same directory, fsyncs it, sets
// mode/owner, renames it over `path`, then fsyncs the directory. Readers see
// the old or the new content, never a mix.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view content,
                             const WriteOptions& opts = {});

// mkdir -p with the given mode for created directories.
absl::Status MakeDirs(const std::string& path, mode_t mode = 0700);

}  // namespace wb::fs
