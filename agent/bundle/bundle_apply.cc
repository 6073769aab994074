#include "agent/bundle/bundle_apply.h"

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/executor/executor.h"
#include "agent/journal/journal.h"
#include "agent/trust/agent_trust.h"
#include "common/bundle/bundle.h"
#include "common/fs/fs.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"
#include "common/tls/tls.h"
#include "common/trust/policy.h"

namespace wb::agent {

namespace {

using writeback::v1::SignedEnvelope;

constexpr uint32_t kDefaultSkewSeconds = 60;

absl::Status FieldError(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status InField(absl::string_view field, const absl::Status& s) {
  if (s.ok() || absl::StartsWith(s.message(), field)) return s;
  return absl::Status(s.code(), absl::StrCat(field, ": ", s.message()));
}

// Collects the executor's results by task id; Wait blocks (condition
// variable, deadline) until every wanted id has one.
class Collector final : public Executor::Sink {
 public:
  explicit Collector(std::set<std::string> wanted) : wanted_(std::move(wanted)) {}
  void OnTaskAck(const std::string&) override {}
  void OnResult(const std::string& task_id, const SignedEnvelope& result) override {
    std::lock_guard<std::mutex> l(mu_);
    if (wanted_.count(task_id) == 0) return;
    results_[task_id] = result;
    cv_.notify_all();
  }
  // False if the deadline passed first.
  bool Wait(absl::Time deadline) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_until(l, absl::ToChronoTime(deadline),
                          [&] { return results_.size() == wanted_.size(); });
  }
  std::map<std::string, SignedEnvelope> Take() {
    std::lock_guard<std::mutex> l(mu_);
    return results_;
  }
  std::vector<std::string> Missing() {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<std::string> out;
    for (const auto& id : wanted_) {
      if (results_.count(id) == 0) out.push_back(id);
    }
    return out;
  }

 private:
  const std::set<std::string> wanted_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, SignedEnvelope> results_;
};

std::string AnchorFile(const writeback::v1::AgentConfig& cfg) {
  std::string anchor = cfg.state_anchor_file();
  if (anchor.empty()) {
    std::string d = cfg.data_dir();
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    return d + ".anchor";
  }
  return anchor == "-" ? "" : anchor;
}

}  // namespace

absl::StatusOr<BundleApplyReport> ApplyBundle(const writeback::v1::AgentConfig& cfg,
                                              const connectors::Registry& registry,
                                              const BundleApplyOptions& opts, const Clock* clock) {
  // ---- Configuration: what bundle apply needs (no network settings). ----
  if (cfg.agent_id().empty()) return FieldError("agent_id", "required");
  {
    auto id = tls::ParseSpiffeId(cfg.agent_id());
    if (!id.ok()) return InField("agent_id", id.status());
    if (id->cls != tls::IdentityClass::kAgent) {
      return FieldError("agent_id", "not an agent identity (spiffe://<domain>/agent/<name>)");
    }
  }
  if (cfg.result_key_file().empty()) return FieldError("result_key_file", "required");
  auto result_key = crypto::Ed25519PrivateKey::LoadFile(cfg.result_key_file());
  if (!result_key.ok()) return InField("result_key_file", result_key.status());
  if (cfg.data_dir().empty()) return FieldError("data_dir", "required (journal directory)");
  if (opts.out_path.empty()) return FieldError("--out", "required");
  envelope::Keyring pinned;
  for (int i = 0; i < cfg.dispatch_public_key_files_size(); ++i) {
    auto k = crypto::Ed25519PublicKey::LoadFile(cfg.dispatch_public_key_files(i));
    if (!k.ok()) return InField(absl::StrCat("dispatch_public_key_files[", i, "]"), k.status());
    pinned.Add(*k);
  }
  if (cfg.trust_root_public_key_file().empty() && pinned.empty()) {
    return FieldError("dispatch_public_key_files",
                      "at least one dispatch public key is required (or pin a trust root)");
  }
  std::vector<std::unique_ptr<connectors::Connector>> built;
  Executor::Options eo;
  for (int i = 0; i < cfg.connectors_size(); ++i) {
    const auto& c = cfg.connectors(i);
    auto conn = registry.Create(c);
    if (!conn.ok()) return InField(absl::StrCat("connectors[", i, "]"), conn.status());
    if (!eo.instances.emplace(c.name(), Executor::InstanceFromConfig(c, conn->get())).second) {
      return FieldError(absl::StrCat("connectors[", i, "].name"),
                        absl::StrCat("duplicate instance name '", c.name(), "'"));
    }
    built.push_back(*std::move(conn));
  }

  // ---- The file, before anything is opened. ----
  WB_ASSIGN_OR_RETURN(writeback::v1::TaskBundle bundle,
                      bundle::ReadTaskBundleFile(opts.bundle_path));

  // ---- The journal: the daemon must not hold it. ----
  WB_RETURN_IF_ERROR(InField("data_dir", fs::MakeDirs(cfg.data_dir(), 0700)));
  auto journal = Journal::Open(cfg.data_dir() + "/journal", AnchorFile(cfg));
  if (!journal.ok()) {
    if (absl::StrContains(journal.status().message(), "lock")) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data_dir: the journal in ", cfg.data_dir(),
          " is in use by another process (is `writeback-agent run` running? stop it first: a "
          "bundle is applied with the agent's own journal)"));
    }
    return InField("data_dir", journal.status());
  }
  std::unique_ptr<AgentTrust> trust;
  if (cfg.trust_root_public_key_file().empty()) {
    trust = std::make_unique<AgentTrust>(pinned);
  } else {
    auto root = crypto::Ed25519PublicKey::LoadFile(cfg.trust_root_public_key_file());
    if (!root.ok()) return InField("trust_root_public_key_file", root.status());
    std::optional<SignedEnvelope> bootstrap;
    if (!cfg.trust_policy_file().empty()) {
      auto env = trust::ReadSignedPolicyFile(cfg.trust_policy_file());
      if (!env.ok()) return InField("trust_policy_file", env.status());
      bootstrap = *std::move(env);
    }
    WB_ASSIGN_OR_RETURN(auto id, tls::ParseSpiffeId(cfg.agent_id()));
    auto t =
        AgentTrust::WithRoot(*std::move(root), id.trust_domain, journal->get(), clock, bootstrap);
    if (!t.ok()) return InField("trust_root_public_key_file", t.status());
    trust = *std::move(t);
  }
  const envelope::Keyring* keys = &trust->pinned_keys();
  std::shared_ptr<const trust::VerifiedPolicy> policy;
  if (trust->root_pinned()) {
    policy = trust->policy();
    if (policy == nullptr) {
      return absl::FailedPreconditionError(
          "this agent holds no trust policy yet: copy a signed policy to the site and set "
          "trust_policy_file (every task would be refused)");
    }
    keys = &policy->dispatch_keys;
  }

  // ---- The bundle as a whole. ----
  const absl::Duration skew = absl::Seconds(
      cfg.max_clock_skew_seconds() == 0 ? kDefaultSkewSeconds : cfg.max_clock_skew_seconds());
  const absl::Time now = clock->Now();
  auto manifest = bundle::CheckTaskBundle(bundle, *keys, cfg.agent_id(), now, skew,
                                          /*allow_expired=*/true);
  if (!manifest.ok()) {
    return absl::Status(manifest.status().code(),
                        absl::StrCat(opts.bundle_path, ": ", manifest.status().message()));
  }
  BundleApplyReport report;
  report.bundle_id = manifest->bundle_id();
  report.expires_at_unix_ms = manifest->expires_at_unix_ms();
  std::set<std::string> wanted;
  size_t known = 0;
  for (const auto& e : manifest->entries()) {
    wanted.insert(e.task_id());
    WB_ASSIGN_OR_RETURN(auto seen, (*journal)->FindTask(e.task_id()));
    if (seen.has_value()) ++known;
  }
  if (now > absl::FromUnixMillis(manifest->expires_at_unix_ms()) + skew) {
    if (known == 0) {
      // The pure check again, for its message.
      return absl::Status(
          absl::StatusCode::kFailedPrecondition,
          absl::StrCat(opts.bundle_path, ": ",
                       bundle::CheckTaskBundle(bundle, *keys, cfg.agent_id(), now, skew)
                           .status()
                           .message()));
    }
    report.expired = true;
    log::Warn(
        "bundle expired: finishing an interrupted run (stored results are kept, the "
        "rest is refused as expired)",
        {{"bundle_id", report.bundle_id}});
  }

  // ---- Every task through the online executor. ----
  std::set<std::string> done_before;
  for (const auto& e : manifest->entries()) {
    WB_ASSIGN_OR_RETURN(auto seen, (*journal)->FindTask(e.task_id()));
    if (seen.has_value() && seen->state == SeenTask::State::kDone) done_before.insert(e.task_id());
  }
  Collector collector(wanted);
  eo.agent_id = cfg.agent_id();
  eo.dispatch_keys = pinned;
  eo.trust = trust.get();
  eo.result_key = *result_key;
  eo.max_skew = skew;
  {
    Executor executor(std::move(eo), journal->get(), clock, &collector);
    WB_RETURN_IF_ERROR(executor.Start());
    StatementSet statements;  // what the tasks name by digest (checked per task)
    for (const std::string& s : bundle.statements()) statements.Add(s);
    for (const SignedEnvelope& t : bundle.tasks()) executor.Submit(t, &statements);
    if (!collector.Wait(absl::Now() + opts.wait)) {
      executor.Stop();
      const auto missing = collector.Missing();
      return absl::DeadlineExceededError(absl::StrCat(
          "bundle ", report.bundle_id, ": ", missing.size(), " of ", wanted.size(),
          " tasks did not finish within ", absl::FormatDuration(opts.wait),
          " (first: ", missing.empty() ? "" : missing[0],
          "); what finished is journaled: run the same command again to finish the rest"));
    }
    executor.Stop();
  }

  // ---- The signed result bundle, in manifest order. ----
  std::map<std::string, SignedEnvelope> results = collector.Take();
  std::vector<SignedEnvelope> ordered;
  for (int i = 0; i < manifest->entries_size(); ++i) {
    const std::string& id = manifest->entries(i).task_id();
    const SignedEnvelope& env = results[id];
    ordered.push_back(env);
    BundleTaskReport r;
    r.task_id = id;
    writeback::v1::Task task;
    if (task.ParseFromString(bundle.tasks(i).payload())) {
      r.connector_instance = task.connector_instance();
      r.operation = task.operation();
      r.target = task.target().object();
    }
    r.result.ParseFromString(env.payload());
    r.from_journal = done_before.count(id) > 0;
    report.tasks.push_back(std::move(r));
  }
  writeback::v1::ResultBundleFile file =
      bundle::MakeResultBundle(cfg.agent_id(), bundle.manifest(), *manifest, std::move(ordered),
                               clock->NowUnixMs(), *result_key);
  WB_RETURN_IF_ERROR(
      InField("--out", fs::WriteFileAtomic(opts.out_path, file.SerializeAsString())));
  log::Info("result bundle written", {{"bundle_id", report.bundle_id},
                                      {"tasks", absl::StrCat(report.tasks.size())},
                                      {"from_journal", absl::StrCat(done_before.size())},
                                      {"out", opts.out_path}});
  return report;
}

}  // namespace wb::agent
