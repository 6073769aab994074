// Connector type "sudoers": sudo grants in drop-in files of a sudoers.d
// directory. Operations: remove_file (delete the drop-in) and
// remove_user_rules (remove the rules that name one user from the drop-in;
// connectors/sudoers/sudoers_file.h says exactly what is edited).
// See docs/connectors/sudoers.md.
//
// Target object: the drop-in's file name (common/actions/sudoers.cc:
// [A-Za-z0-9_-]{1,255}; sudo ignores names with '.' or ending in '~', so
// such files grant nothing and are refused as targets). The file is opened
// relative to the configured directory with O_NOFOLLOW
// (connectors/util/safe_file.h): a symlinked drop-in is refused.
//
// Apply (remove_user_rules) writes the new content to a private scratch
// file, checks it with `visudo -c -q -f` (execve, no shell) and only then
// replaces the drop-in atomically, keeping owner and mode. If the drop-in
// does not pass visudo before the edit, nothing is done (FAILED_PRECONDITION).
//
// Verify reads the directory again. For remove_user_rules it then asks
// sudo's own parser about the drop-in alone (`cvtsudoers -f sudoers -m
// user=USER,group=G... FILE`, with the user's groups as this host's NSS
// resolves them, as sudo would): any rule it still matches for the user
// (directly, via a group, an alias or ALL) is a FAILED verification naming
// the rule. When
// this host's sudo reads the configured directory (it is the same
// directory as /etc/sudoers.d, and /etc/sudoers includes it), Verify also
// runs `sudo -n -l -U USER` and records what sudo says; the evidence names
// every check used ("parse_dropin", "cvtsudoers_dropin", "sudo_list").
// A drop-in Verify will not read (a symlink, over 1 MiB) is an error
// ("cannot tell"), except where sudo provably still reads a file under that
// name that undoes the effect (a symlink to a file passing sudo's ownership
// check, a file over the size limit): that is FAILED ("stat_dropin_as_sudo";
// docs/connectors/sudoers.md, "Re-verification: drift or cannot tell").
//
// Plan.state binds the plan to the drop-in's SHA-256 (FAILED_PRECONDITION if
// it changed) and keeps the old content (base64) for a later rollback.
//
// Thread-safety: all methods may be called concurrently; Apply calls are
// serialised per instance.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "connectors/connector.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors {

class SudoersConnector final : public Connector {
 public:
  // Validates cfg (errors name the field, e.g.
  // "connectors[sudo].sudoers.sudoers_dir: must be an absolute path").
  static absl::StatusOr<std::unique_ptr<Connector>> Create(
      const writeback::v1::ConnectorInstanceConfig& cfg);

  absl::string_view type() const override { return "sudoers"; }
  const std::string& instance_name() const override { return name_; }
  absl::StatusOr<writeback::v1::Plan> PlanChange(const CallContext& ctx,
                                                 const Action& action) override;
  absl::StatusOr<writeback::v1::ApplyResult> Apply(const CallContext& ctx, const Action& action,
                                                   const writeback::v1::Plan& plan) override;
  absl::StatusOr<writeback::v1::Verification> Verify(const CallContext& ctx,
                                                     const Action& action) override;
  // OK iff the directory exists and visudo and cvtsudoers are executable.
  absl::Status Check(const CallContext& ctx) override;

  // Whether this host's sudo reads the configured directory (see above).
  bool SudoReadsDirectory() const;

 private:
  SudoersConnector(std::string name, std::string dir, std::string visudo, std::string cvtsudoers,
                   std::string sudo)
      : name_(std::move(name)),
        dir_(std::move(dir)),
        visudo_(std::move(visudo)),
        cvtsudoers_(std::move(cvtsudoers)),
        sudo_(std::move(sudo)) {}

  const std::string name_;
  const std::string dir_;
  const std::string visudo_, cvtsudoers_, sudo_;
  absl::Mutex apply_mu_;
};

}  // namespace wb::connectors
