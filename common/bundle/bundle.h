// Air-gapped bundle files (proto/writeback/v1/bundle.proto, docs/networks.md
// "Air-gapped sites"): reading them with clear errors, building them, and the
// bundle-level checks both sides run. The tasks and results inside are
// checked by the same code as online (agent/checks, the control plane's
// result intake); these functions only check what the files add:
//   - a task bundle's manifest is signed by a trusted dispatch key
//     (PAYLOAD_TYPE_BUNDLE_MANIFEST), names this agent, has not expired, and
//     the file's tasks are exactly its entries (same count, order and
//     SHA-256 of each signed payload), so a removed, altered or foreign task
//     is detected before anything runs;
//   - a result bundle is signed by the result key of the agent it names
//     (PAYLOAD_TYPE_RESULT_BUNDLE), carries the task bundle's manifest
//     (signed by the control plane's dispatch key: proof the bundle was
//     exported, and to that agent) and at most one result per entry.
// Every error names the file part and the reason. Pure functions;
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "writeback/v1/bundle.pb.h"
#include "writeback/v1/envelope.pb.h"

namespace wb::bundle {

inline constexpr char kTaskBundleMagic[] = "writeback-task-bundle";
inline constexpr char kResultBundleMagic[] = "writeback-result-bundle";
inline constexpr uint32_t kFormatVersion = 1;
// A bundle holds at most this many tasks and this many bytes (the admin
// API's message limit is 4 MiB).
inline constexpr int kMaxTasks = 1000;
inline constexpr size_t kMaxFileBytes = 3 << 20;

// SHA-256 of an envelope's payload (a task digest, a manifest digest).
std::string PayloadDigest(const writeback::v1::SignedEnvelope& env);

// Parse a file's bytes. `name` (a path) is used in errors, e.g.
//   "r.bundle: is a result bundle, not a task bundle (import it with wbctl
//    bundle import)", "x: not a Writeback bundle file".
absl::StatusOr<writeback::v1::TaskBundle> ParseTaskBundle(absl::string_view bytes,
                                                          absl::string_view name);
absl::StatusOr<writeback::v1::ResultBundleFile> ParseResultBundleFile(absl::string_view bytes,
                                                                      absl::string_view name);
// Read and parse a file (at most kMaxFileBytes + some slack).
absl::StatusOr<writeback::v1::TaskBundle> ReadTaskBundleFile(const std::string& path);
absl::StatusOr<writeback::v1::ResultBundleFile> ReadResultBundleFile(const std::string& path);

// Verifies a manifest envelope with `dispatch_keys` before parsing, parses
// it (unknown fields refused) and checks its shape (ids present, entries
// with unique task ids and 32-byte digests, at most kMaxTasks, expiry after
// creation). Errors: UNAUTHENTICATED (signature, unknown key),
// INVALID_ARGUMENT (everything else), messages starting "bundle manifest".
absl::StatusOr<writeback::v1::BundleManifest> VerifyManifest(
    const writeback::v1::SignedEnvelope& env, const envelope::Keyring& dispatch_keys);

// The agent's check of a whole task bundle (before running any task):
// VerifyManifest, manifest.agent_id == `agent_id`, the tasks are exactly the
// entries, and (unless `allow_expired`) now <= expires_at + skew
// (FAILED_PRECONDITION "bundle <id> expired at ..."). Returns the manifest.
absl::StatusOr<writeback::v1::BundleManifest> CheckTaskBundle(
    const writeback::v1::TaskBundle& bundle, const envelope::Keyring& dispatch_keys,
    absl::string_view agent_id, absl::Time now, absl::Duration skew, bool allow_expired = false);

// Builds a task bundle file from a signed manifest and its tasks (in
// manifest order).
// `statements`: the statements the tasks name by digest, each once.
writeback::v1::TaskBundle MakeTaskBundle(const writeback::v1::SignedEnvelope& manifest,
                                         std::vector<writeback::v1::SignedEnvelope> tasks,
                                         std::vector<std::string> statements = {});

// Builds and signs a result bundle file: `results` in manifest order (one
// per entry, or fewer), signed with the agent's result key.
writeback::v1::ResultBundleFile MakeResultBundle(
    absl::string_view agent_id, const writeback::v1::SignedEnvelope& manifest,
    const writeback::v1::BundleManifest& parsed_manifest,
    std::vector<writeback::v1::SignedEnvelope> results, int64_t now_unix_ms,
    const crypto::Ed25519PrivateKey& result_key);

struct VerifiedResultBundle {
  writeback::v1::ResultBundle bundle;      // parsed from the signed bytes
  writeback::v1::BundleManifest manifest;  // verified with the dispatch keys
  std::string digest;                      // SHA-256 of the signed payload
};

// The control plane's bundle-level check of a result bundle file, given the
// result key registered for the agent the file names and the control
// plane's own dispatch keys: the outer signature (before parsing), unknown
// fields, ResultBundle.agent_id == file.agent_id, the manifest verified
// (else "unknown bundle"), its digest and bundle id match, the bundle was
// exported to this agent, and at most one result per manifest entry.
// Results themselves are NOT verified here (the caller runs its online
// result intake on each). Errors name the reason, e.g.
//   "result bundle: bundle b-1 was exported to agent spiffe://…/agent/a,
//    not to spiffe://…/agent/b".
absl::StatusOr<VerifiedResultBundle> VerifyResultBundle(const writeback::v1::ResultBundleFile& file,
                                                        const crypto::Ed25519PublicKey& agent_key,
                                                        const envelope::Keyring& dispatch_keys);

}  // namespace wb::bundle
