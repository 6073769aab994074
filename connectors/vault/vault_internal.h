// Internal to the vault connector: declarations shared by the pieces of its
// implementation (vault.cc, vault_common.cc, vault_kv.cc,
// vault_credentials.cc, vault_policy.cc). Not an interface: nothing outside
// connectors/vault/vault*.cc includes this header; users of the connector
// include connectors/vault/vault.h.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "connectors/connector.h"
#include "connectors/vault/vault_client.h"
#include "nlohmann/json.hpp"
#include "writeback/v1/action.pb.h"

namespace wb::connectors::vault_ops {

using json = nlohmann::json;
using vault::VaultClient;
using vault::VaultResponse;
using writeback::v1::Observation;

absl::Status Invalid(absl::string_view field, absl::string_view why);

// The validated, resolved action.
struct Target {
  std::string op;
  std::string object;  // secret path, accessor, lease id/prefix or policy name
  std::string mount;   // KV mount or AppRole auth mount
  std::vector<uint64_t> versions;
  std::string role;
  std::string policy;
  std::string token_accessor;  // token_revoke_accessor: = object

  bool kv() const { return absl::StartsWith(op, "kv_"); }
};

// An unexpected HTTP answer as a status: 403 → PERMISSION_DENIED, 5xx and
// the rest → UNAVAILABLE / FAILED_PRECONDITION.
absl::Status HttpError(absl::string_view what, const VaultResponse& r);

Observation Obs(const CallContext& ctx, absl::string_view check, absl::string_view subject);

// body["data"] when it is an object, else the body itself (a few endpoints
// answer at the top level).
const json& DataOrBody(const VaultResponse& r);

std::string StringField(const json& j, const char* key);

// ----------------------------------------------------------------------------
// Capabilities: which absences may be believed.

class Capabilities {
 public:
  // Queries every (path, capability) pair at once and records the answer.
  static absl::StatusOr<Capabilities> Query(
      VaultClient& c, const CallContext& ctx,
      const std::vector<std::pair<std::string, std::string>>& needs);
  bool Has(const std::string& path, const std::string& cap) const {
    return granted_.count({path, cap}) > 0;
  }
  const Observation& observation() const { return obs_; }

 private:
  std::set<std::pair<std::string, std::string>> granted_;
  Observation obs_;
};

// Refuses to call an absence "no change" when the token could not have seen
// the thing anyway.
absl::Status RequireCap(VaultClient& c, const CallContext& ctx, const std::string& path,
                        const std::string& cap, absl::string_view conclusion);

// Accumulates what Verify saw.
class Findings {
 public:
  void Add(Observation o) { obs_.push_back(std::move(o)); }
  void Confirmed(std::string note) {
    ++confirmed_;
    notes_.push_back(std::move(note));
  }
  void NotDone(std::string note) {
    ++not_done_;
    notes_.push_back(std::move(note));
  }
  void CannotTell(std::string note) {
    ++cannot_tell_;
    notes_.push_back(std::move(note));
  }
  void Merge(Findings other) {
    for (auto& o : other.obs_) obs_.push_back(std::move(o));
    for (auto& n : other.notes_) notes_.push_back(std::move(n));
    confirmed_ += other.confirmed_;
    not_done_ += other.not_done_;
    cannot_tell_ += other.cannot_tell_;
  }
  writeback::v1::Verification Conclude() {
    writeback::v1::Verification v;
    if (not_done_ > 0) {
      v.set_outcome(writeback::v1::OUTCOME_FAILED);
    } else if (cannot_tell_ > 0 || confirmed_ == 0) {
      v.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
    } else {
      v.set_outcome(writeback::v1::OUTCOME_VERIFIED);
    }
    v.set_detail(absl::StrJoin(notes_, "; "));
    for (auto& o : obs_) *v.add_after() = std::move(o);
    return v;
  }

 private:
  std::vector<Observation> obs_;
  std::vector<std::string> notes_;
  int confirmed_ = 0, not_done_ = 0, cannot_tell_ = 0;
};

// What a lookup (token accessor, secret-id accessor, lease, policy) found.
enum class Presence { kPresent, kAbsent, kDenied, kOther };

struct Looked {
  Presence presence = Presence::kOther;
  VaultResponse r;
};

// ----------------------------------------------------------------------------
// The operations. Each Plan* returns its part of plan.state (JSON) and adds
// to plan; each Apply* returns the changes made; each Verify* what it saw.

// KV v2 (vault_kv.cc): kv_delete, kv_destroy and the KV half of
// kv_destroy_and_revoke_token.
absl::StatusOr<json> PlanKvVersions(VaultClient& c, const CallContext& ctx, const Target& t,
                                    writeback::v1::Plan* plan);
absl::StatusOr<std::vector<std::string>> ApplyKvVersions(VaultClient& c, const CallContext& ctx,
                                                         const Target& t, const json& st);
absl::StatusOr<Findings> VerifyKvVersions(VaultClient& c, const CallContext& ctx, const Target& t);
// KV v2: kv_delete_metadata.
absl::StatusOr<json> PlanKvMetadata(VaultClient& c, const CallContext& ctx, const Target& t,
                                    writeback::v1::Plan* plan);
absl::StatusOr<std::vector<std::string>> ApplyKvMetadata(VaultClient& c, const CallContext& ctx,
                                                         const Target& t, const json& st);
absl::StatusOr<Findings> VerifyKvMetadata(VaultClient& c, const CallContext& ctx, const Target& t);

// Tokens (vault_credentials.cc): token_revoke_accessor and the token half of
// kv_destroy_and_revoke_token.
absl::StatusOr<json> PlanToken(VaultClient& c, const CallContext& ctx, const std::string& accessor,
                               writeback::v1::Plan* plan);
absl::StatusOr<std::vector<std::string>> ApplyToken(VaultClient& c, const CallContext& ctx,
                                                    const std::string& accessor);
absl::StatusOr<Findings> VerifyToken(VaultClient& c, const CallContext& ctx,
                                     const std::string& accessor);

// AppRole secret-ids (vault_credentials.cc): approle_destroy_secret_id.
absl::StatusOr<json> PlanSecretId(VaultClient& c, const CallContext& ctx, const Target& t,
                                  writeback::v1::Plan* plan);
absl::StatusOr<std::vector<std::string>> ApplySecretId(VaultClient& c, const CallContext& ctx,
                                                       const Target& t);
absl::StatusOr<Findings> VerifySecretId(VaultClient& c, const CallContext& ctx, const Target& t);

// Leases (vault_credentials.cc): lease_revoke, lease_revoke_prefix.
absl::StatusOr<json> PlanLease(VaultClient& c, const CallContext& ctx, const Target& t,
                               writeback::v1::Plan* plan);
absl::StatusOr<std::vector<std::string>> ApplyLease(VaultClient& c, const CallContext& ctx,
                                                    const Target& t);
absl::StatusOr<Findings> VerifyLease(VaultClient& c, const CallContext& ctx, const Target& t);

// Policies (vault_policy.cc): policy_replace.
absl::StatusOr<json> PlanPolicy(VaultClient& c, const CallContext& ctx, const Target& t,
                                writeback::v1::Plan* plan);
absl::StatusOr<std::vector<std::string>> ApplyPolicy(VaultClient& c, const CallContext& ctx,
                                                     const Target& t, const json& st);
absl::StatusOr<Findings> VerifyPolicy(VaultClient& c, const CallContext& ctx, const Target& t);

}  // namespace wb::connectors::vault_ops
