#include "common/bundle/bundle.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "writeback/v1/decision.pb.h"

namespace wb::bundle {

using writeback::v1::BundleManifest;
using writeback::v1::ResultBundle;
using writeback::v1::ResultBundleFile;
using writeback::v1::SignedEnvelope;
using writeback::v1::TaskBundle;

namespace {

absl::Status Invalid(absl::string_view what) { return absl::InvalidArgumentError(what); }

std::string TimeText(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

// Which kind of bundle file `bytes` claim to be (the magic is field 1 of
// both formats); "" if neither parses.
std::string MagicOf(absl::string_view bytes) {
  const std::string b(bytes);
  if (TaskBundle t; t.ParseFromString(b)) return t.magic();
  if (ResultBundleFile r; r.ParseFromString(b)) return r.magic();
  return "";
}

absl::Status WrongKind(absl::string_view name, absl::string_view magic, bool want_task) {
  if (want_task && magic == kResultBundleMagic) {
    return Invalid(absl::StrCat(name,
                                ": is a result bundle, not a task bundle (take it back to the "
                                "control plane: wbctl bundle import)"));
  }
  if (!want_task && magic == kTaskBundleMagic) {
    return Invalid(absl::StrCat(name,
                                ": is a task bundle, not a result bundle (apply it on the agent: "
                                "writeback-agent bundle apply)"));
  }
  return Invalid(absl::StrCat(name, ": not a Writeback ", want_task ? "task" : "result",
                              " bundle file (no '",
                              want_task ? kTaskBundleMagic : kResultBundleMagic, "' header)"));
}

absl::Status CheckVersion(absl::string_view name, uint32_t v) {
  if (v != kFormatVersion) {
    return Invalid(absl::StrCat(name, ": bundle format version ", v,
                                " is not supported (this build reads version ", kFormatVersion,
                                ")"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string PayloadDigest(const SignedEnvelope& env) { return crypto::Sha256(env.payload()); }

absl::StatusOr<TaskBundle> ParseTaskBundle(absl::string_view bytes, absl::string_view name) {
  TaskBundle b;
  const std::string magic = MagicOf(bytes);
  if (magic != kTaskBundleMagic || !b.ParseFromString(std::string(bytes))) {
    return WrongKind(name, magic, /*want_task=*/true);
  }
  WB_RETURN_IF_ERROR(CheckVersion(name, b.format_version()));
  if (envelope::HasUnknownFields(b)) {
    return Invalid(absl::StrCat(name, ": unknown fields in the task bundle"));
  }
  if (b.statements_size() > b.tasks_size()) {
    return Invalid(absl::StrCat(name, ": statements: ", b.statements_size(), " statements for ",
                                b.tasks_size(), " tasks"));
  }
  return b;
}

absl::StatusOr<ResultBundleFile> ParseResultBundleFile(absl::string_view bytes,
                                                       absl::string_view name) {
  ResultBundleFile f;
  const std::string magic = MagicOf(bytes);
  if (magic != kResultBundleMagic || !f.ParseFromString(std::string(bytes))) {
    return WrongKind(name, magic, /*want_task=*/false);
  }
  WB_RETURN_IF_ERROR(CheckVersion(name, f.format_version()));
  if (envelope::HasUnknownFields(f)) {
    return Invalid(absl::StrCat(name, ": unknown fields in the result bundle"));
  }
  if (f.agent_id().empty()) return Invalid(absl::StrCat(name, ": agent_id: required"));
  return f;
}

absl::StatusOr<TaskBundle> ReadTaskBundleFile(const std::string& path) {
  WB_ASSIGN_OR_RETURN(std::string bytes, fs::ReadFile(path, kMaxFileBytes + (1 << 20)));
  return ParseTaskBundle(bytes, path);
}

absl::StatusOr<ResultBundleFile> ReadResultBundleFile(const std::string& path) {
  WB_ASSIGN_OR_RETURN(std::string bytes, fs::ReadFile(path, kMaxFileBytes + (1 << 20)));
  return ParseResultBundleFile(bytes, path);
}

absl::StatusOr<BundleManifest> VerifyManifest(const SignedEnvelope& env,
                                              const envelope::Keyring& dispatch_keys) {
  if (absl::Status s =
          envelope::Verify(env, writeback::v1::PAYLOAD_TYPE_BUNDLE_MANIFEST, dispatch_keys);
      !s.ok()) {
    if (s.code() == absl::StatusCode::kInvalidArgument) {
      return Invalid(absl::StrCat("bundle manifest: ", s.message()));
    }
    return absl::UnauthenticatedError(
        absl::StrCat("bundle manifest: not signed by a trusted dispatch key (", s.message(), ")"));
  }
  BundleManifest m;
  if (!m.ParseFromString(env.payload())) return Invalid("bundle manifest: payload does not parse");
  if (envelope::HasUnknownFields(m)) return Invalid("bundle manifest: unknown fields present");
  if (m.bundle_id().empty()) return Invalid("bundle manifest: bundle_id: required");
  if (m.agent_id().empty()) return Invalid("bundle manifest: agent_id: required");
  if (m.entries_size() == 0) return Invalid("bundle manifest: entries: at least one is required");
  if (m.entries_size() > kMaxTasks) {
    return Invalid(absl::StrCat("bundle manifest: entries: at most ", kMaxTasks));
  }
  if (m.expires_at_unix_ms() <= m.created_at_unix_ms()) {
    return Invalid("bundle manifest: expires_at_unix_ms: not after created_at_unix_ms");
  }
  std::set<std::string> ids;
  for (int i = 0; i < m.entries_size(); ++i) {
    const auto& e = m.entries(i);
    if (e.task_id().empty()) {
      return Invalid(absl::StrCat("bundle manifest: entries[", i, "].task_id: required"));
    }
    if (!ids.insert(e.task_id()).second) {
      return Invalid(absl::StrCat("bundle manifest: entries[", i, "].task_id: '", e.task_id(),
                                  "' is listed twice"));
    }
    if (e.task_digest().size() != 32) {
      return Invalid(absl::StrCat("bundle manifest: entries[", i, "].task_digest: not 32 bytes"));
    }
  }
  return m;
}

absl::StatusOr<BundleManifest> CheckTaskBundle(const TaskBundle& bundle,
                                               const envelope::Keyring& dispatch_keys,
                                               absl::string_view agent_id, absl::Time now,
                                               absl::Duration skew, bool allow_expired) {
  WB_ASSIGN_OR_RETURN(BundleManifest m, VerifyManifest(bundle.manifest(), dispatch_keys));
  const std::string id = absl::StrCat("bundle ", m.bundle_id());
  if (m.agent_id() != agent_id) {
    return absl::PermissionDeniedError(absl::StrCat(id, " was exported for agent ", m.agent_id(),
                                                    ", not for this agent (", agent_id, ")"));
  }
  if (bundle.tasks_size() != m.entries_size()) {
    return Invalid(absl::StrCat(
        id, ": the manifest lists ", m.entries_size(), " tasks but the file holds ",
        bundle.tasks_size(),
        bundle.tasks_size() < m.entries_size() ? " (a task was removed)" : " (a task was added)",
        "; nothing was applied"));
  }
  std::set<std::string> carried;  // digests of the statements the file holds
  // (SHA-256 of the exact bytes, as trust::StatementDigest)
  for (const std::string& s : bundle.statements()) carried.insert(crypto::Sha256(s));
  for (int i = 0; i < m.entries_size(); ++i) {
    const auto& e = m.entries(i);
    if (!crypto::ConstantTimeEquals(PayloadDigest(bundle.tasks(i)), e.task_digest())) {
      return Invalid(absl::StrCat(id, ": task ", i + 1, " of ", m.entries_size(), " (", e.task_id(),
                                  ") is not the one the manifest lists (altered, or from "
                                  "another bundle); nothing was applied"));
    }
    // The task is the one the manifest lists (signed); the statement it
    // names by digest must be in the file as that digest says.
    writeback::v1::Task task;
    if (task.ParseFromString(bundle.tasks(i).payload()) && !task.statement_digest().empty() &&
        !carried.contains(task.statement_digest())) {
      return Invalid(absl::StrCat(id, ": task ", i + 1, " of ", m.entries_size(), " (", e.task_id(),
                                  ") names a statement the file does not carry (removed or "
                                  "altered); nothing was applied"));
    }
  }
  if (!allow_expired && now > absl::FromUnixMillis(m.expires_at_unix_ms()) + skew) {
    return absl::FailedPreconditionError(
        absl::StrCat(id, " expired at ", TimeText(m.expires_at_unix_ms()),
                     " (before it could be applied); nothing was applied: ask the control "
                     "plane's operator to export the agent's tasks again"));
  }
  return m;
}

TaskBundle MakeTaskBundle(const SignedEnvelope& manifest, std::vector<SignedEnvelope> tasks,
                          std::vector<std::string> statements) {
  TaskBundle b;
  b.set_magic(kTaskBundleMagic);
  b.set_format_version(kFormatVersion);
  *b.mutable_manifest() = manifest;
  for (auto& t : tasks) *b.add_tasks() = std::move(t);
  for (auto& s : statements) *b.add_statements() = std::move(s);
  return b;
}

ResultBundleFile MakeResultBundle(absl::string_view agent_id, const SignedEnvelope& manifest,
                                  const BundleManifest& parsed_manifest,
                                  std::vector<SignedEnvelope> results, int64_t now_unix_ms,
                                  const crypto::Ed25519PrivateKey& result_key) {
  ResultBundle rb;
  rb.set_agent_id(std::string(agent_id));
  rb.set_bundle_id(parsed_manifest.bundle_id());
  rb.set_manifest_digest(PayloadDigest(manifest));
  *rb.mutable_manifest() = manifest;
  for (auto& r : results) *rb.add_results() = std::move(r);
  rb.set_created_at_unix_ms(now_unix_ms);
  ResultBundleFile f;
  f.set_magic(kResultBundleMagic);
  f.set_format_version(kFormatVersion);
  f.set_agent_id(std::string(agent_id));
  // Serialized once; these bytes are signed and travel.
  *f.mutable_bundle() =
      envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT_BUNDLE, rb.SerializeAsString(), result_key);
  return f;
}

absl::StatusOr<VerifiedResultBundle> VerifyResultBundle(const ResultBundleFile& file,
                                                        const crypto::Ed25519PublicKey& agent_key,
                                                        const envelope::Keyring& dispatch_keys) {
  if (absl::Status s = envelope::VerifyWithKey(
          file.bundle(), writeback::v1::PAYLOAD_TYPE_RESULT_BUNDLE, agent_key);
      !s.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "result bundle: not signed by the result key registered for agent ", file.agent_id(), " (",
        s.message(), "): tampered with, or made by another agent"));
  }
  VerifiedResultBundle v;
  v.digest = PayloadDigest(file.bundle());
  if (!v.bundle.ParseFromString(file.bundle().payload())) {
    return Invalid("result bundle: payload is not a ResultBundle");
  }
  if (envelope::HasUnknownFields(v.bundle)) return Invalid("result bundle: unknown fields present");
  const ResultBundle& rb = v.bundle;
  if (rb.agent_id() != file.agent_id()) {
    return Invalid(absl::StrCat("result bundle: agent_id: signed for '", rb.agent_id(),
                                "' but the file names '", file.agent_id(), "'"));
  }
  if (!crypto::ConstantTimeEquals(rb.manifest_digest(), PayloadDigest(rb.manifest()))) {
    return Invalid("result bundle: manifest_digest: does not match the manifest it carries");
  }
  auto m = VerifyManifest(rb.manifest(), dispatch_keys);
  if (!m.ok()) {
    return absl::Status(m.status().code(),
                        absl::StrCat("result bundle: unknown bundle ", rb.bundle_id(),
                                     ": its manifest was not made by this control plane (",
                                     m.status().message(), ")"));
  }
  v.manifest = *std::move(m);
  if (v.manifest.bundle_id() != rb.bundle_id()) {
    return Invalid(absl::StrCat("result bundle: bundle_id: '", rb.bundle_id(),
                                "' but the manifest is of bundle '", v.manifest.bundle_id(), "'"));
  }
  if (v.manifest.agent_id() != rb.agent_id()) {
    return absl::PermissionDeniedError(
        absl::StrCat("result bundle: bundle ", rb.bundle_id(), " was exported to agent ",
                     v.manifest.agent_id(), ", not to ", rb.agent_id()));
  }
  if (rb.results_size() == 0) return Invalid("result bundle: results: none");
  if (rb.results_size() > v.manifest.entries_size()) {
    return Invalid(absl::StrCat("result bundle: results: ", rb.results_size(), " for ",
                                v.manifest.entries_size(), " tasks"));
  }
  return v;
}

}  // namespace wb::bundle
