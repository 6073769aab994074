// Connector type "secret_file": credentials sitting in files. Operations:
// remove_env_key (.env), remove_json_path (JSON), remove_ini_key and
// remove_ini_section (INI, e.g. ~/.aws/credentials profiles), delete_file.
// See connectors/secret_file/formats.h and docs/connectors/secret_file.md.
//
// Target object: the absolute, normalised path of the file
// (common/actions/secret_file.cc). It must lie below one of the configured
// allowed_roots (PERMISSION_DENIED otherwise). Everything below the root is
// opened relative to directory descriptors with O_NOFOLLOW
// (connectors/util/safe_file.h), so a symlink anywhere below the root —
// a directory or the file itself — is refused, never followed, and no
// ".." can appear. Files larger than max_file_bytes are refused.
//
// Apply rewrites the file atomically (temp file in the same directory,
// fsync, rename) with the old owner, group and mode; delete_file unlinks it.
// Verify reads and parses the file again and checks the key, member or
// section is gone (or the file is). A file it will not read is an error
// ("cannot tell"), except where whoever reads the path is provably handed
// what was removed again: the file is a symlink to a regular file holding
// it (for delete_file: any regular file), or, for delete_file, a regular
// file over max_file_bytes is there — FAILED (docs/connectors/
// secret_file.md, "Re-verification: drift or cannot tell").
//
// Secrets never leave the file: plans, results, evidence and errors carry key
// names, line numbers, sizes and modes, never a value. Plan.state binds the
// plan to a digest of the file keyed with a random per-instance key (so it
// is no oracle for guessing a value); a plan therefore only applies in the
// process that made it — elsewhere Apply refuses with FAILED_PRECONDITION
// and the caller plans again. There is no rollback of secret values by
// design: they are never stored.
//
// Thread-safety: all methods may be called concurrently; Apply calls are
// serialised per instance.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "connectors/connector.h"
#include "connectors/util/safe_file.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors {

class SecretFileConnector final : public Connector {
 public:
  // Validates cfg (errors name the field, e.g.
  // "connectors[secrets].secret_file.allowed_roots[0]: must be an absolute path").
  static absl::StatusOr<std::unique_ptr<Connector>> Create(
      const writeback::v1::ConnectorInstanceConfig& cfg);

  absl::string_view type() const override { return "secret_file"; }
  const std::string& instance_name() const override { return name_; }
  absl::StatusOr<writeback::v1::Plan> PlanChange(const CallContext& ctx,
                                                 const Action& action) override;
  absl::StatusOr<writeback::v1::ApplyResult> Apply(const CallContext& ctx, const Action& action,
                                                   const writeback::v1::Plan& plan) override;
  absl::StatusOr<writeback::v1::Verification> Verify(const CallContext& ctx,
                                                     const Action& action) override;
  // OK iff every allowed root exists and is a directory.
  absl::Status Check(const CallContext& ctx) override;

 private:
  SecretFileConnector(std::string name, std::vector<std::string> roots, size_t max_bytes);

  absl::StatusOr<util::FileLocation> Resolve(const Action& action) const;
  std::string KeyedDigest(absl::string_view content) const;

  const std::string name_;
  const std::vector<std::string> roots_;  // normalised, no trailing '/'
  const size_t max_bytes_;
  const std::string digest_key_;  // random, per instance
  absl::Mutex apply_mu_;
};

}  // namespace wb::connectors
