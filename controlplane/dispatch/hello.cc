// Agent streams' first message: who the agent is, how it reached us
// (directly or through relays, docs/networks.md), and its registration.
#include "absl/strings/str_cat.h"
#include "common/actions/actions.h"
#include "common/audit/chain.h"
#include "common/logging/logging.h"
#include "common/relay/relay.h"
#include "common/status/macros.h"
#include "common/tls/tls.h"
#include "controlplane/dispatch/dispatcher.h"

namespace wb::controlplane {

using writeback::v1::AgentRecord;

namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

}  // namespace

absl::StatusOr<writeback::v1::Welcome> Dispatcher::Hello(absl::string_view peer_id,
                                                         const writeback::v1::Hello& hello) {
  StreamOrigin origin;
  origin.peer_id = std::string(peer_id);
  return Hello(origin, hello);
}

absl::StatusOr<writeback::v1::Welcome> Dispatcher::Hello(const StreamOrigin& origin,
                                                         const writeback::v1::Hello& hello) {
  if (origin.relay_path.empty()) {
    if (hello.agent_id() != origin.peer_id) {
      return absl::PermissionDeniedError(absl::StrCat("hello.agent_id: '", hello.agent_id(),
                                                      "' is not the certificate's identity '",
                                                      origin.peer_id, "'"));
    }
    return Register(origin.peer_id, hello, {});
  }
  const std::string agent_id = hello.agent_id();
  // Refusals are logged by the stream (agent, peer, error).
  WB_ASSIGN_OR_RETURN(writeback::v1::Hello signed_hello, CheckRelayed(origin, agent_id));
  return Register(agent_id, signed_hello, origin.relay_path);
}

absl::StatusOr<writeback::v1::Hello> Dispatcher::CheckRelayed(const StreamOrigin& origin,
                                                              const std::string& agent_id) {
  const auto& path = origin.relay_path;
  if (path.back() != origin.peer_id) {
    return absl::PermissionDeniedError(
        absl::StrCat(relay::kRelayPathHeader, ": the last relay '", path.back(),
                     "' is not the certificate's identity '", origin.peer_id, "'"));
  }
  auto id = tls::ParseSpiffeId(agent_id);
  if (!id.ok() || id->cls != tls::IdentityClass::kAgent) {
    return absl::PermissionDeniedError(
        absl::StrCat("hello.agent_id: '", agent_id, "' is not an agent's SPIFFE ID"));
  }
  for (const auto& hop : path) {
    if (hop == agent_id) {
      return absl::PermissionDeniedError(absl::StrCat(relay::kRelayPathHeader, ": the agent ",
                                                      agent_id, " appears as its own relay"));
    }
  }
  crypto::Ed25519PublicKey key;
  {
    absl::MutexLock l(&dir_mu_);
    for (const auto& hop : path) {
      auto r = agents_.find(hop);
      if (r == agents_.end()) {
        return absl::PermissionDeniedError(
            absl::StrCat("relay ", hop, " is not a known agent (it must connect itself first)"));
      }
      if (r->second.record.banned()) {
        return absl::PermissionDeniedError(absl::StrCat("relay ", hop, " is banned"));
      }
    }
    auto it = agents_.find(agent_id);
    if (it != agents_.end() && it->second.record.banned()) {
      return absl::PermissionDeniedError(absl::StrCat("agent ", agent_id, " is banned"));
    }
    if (it == agents_.end() || it->second.record.result_public_key().empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "agent ", agent_id,
          " has no registered result key: enrol it (wbctl agent token create) or connect it "
          "directly once before it connects through a relay"));
    }
    key = it->second.result_key;
  }
  const absl::Time now = clock_->Now();
  WB_ASSIGN_OR_RETURN(relay::VerifiedConnect v,
                      relay::VerifyConnectProof(origin.connect_proof, agent_id, key, now));
  {
    const int64_t now_ms = absl::ToUnixMillis(now);
    absl::MutexLock l(&nonce_mu_);
    // Forget expired nonces at most every 10 s: a reconnect storm of many
    // relayed agents must not scan the whole set on every Hello.
    if (now_ms - nonces_pruned_at_ms_ >= 10'000) {
      absl::erase_if(connect_nonces_, [&](const auto& e) { return e.second < now_ms; });
      nonces_pruned_at_ms_ = now_ms;
    }
    if (!connect_nonces_
             .emplace(v.nonce, now_ms + 2 * absl::ToInt64Milliseconds(relay::kConnectProofMaxSkew))
             .second) {
      return absl::PermissionDeniedError(
          "connect_proof.nonce: already used (a proof is accepted once; replayed by a relay?)");
    }
  }
  return std::move(v.hello);
}

absl::StatusOr<writeback::v1::Welcome> Dispatcher::Register(
    const std::string& agent_id, const writeback::v1::Hello& hello,
    const std::vector<std::string>& relay_path) {
  auto key = crypto::Ed25519PublicKey::FromRaw(hello.result_public_key());
  if (!key.ok()) {
    return Invalid("hello.result_public_key", absl::StrCat("not a raw 32-byte Ed25519 public key (",
                                                           key.status().message(), ")"));
  }
  WB_RETURN_IF_ERROR(actions::ValidateText("hello.version", hello.version(), 128, true));
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < hello.instances_size(); ++i) {
    const auto& inst = hello.instances(i);
    const std::string f = absl::StrCat("hello.instances[", i, "]");
    WB_RETURN_IF_ERROR(tls::ValidateName(f + ".name", inst.name()));
    if (!names.insert(inst.name()).second) {
      return Invalid(f + ".name", absl::StrCat("instance '", inst.name(), "' is listed twice"));
    }
    if (inst.type().empty()) return Invalid(f + ".type", "required");
  }
  if (hello.features_size() > 32) return Invalid("hello.features", "at most 32 features");
  for (int i = 0; i < hello.features_size(); ++i) {
    WB_RETURN_IF_ERROR(actions::ValidateText(absl::StrCat("hello.features[", i, "]"),
                                             hello.features(i), 64, false));
  }
  for (const auto& [k, v] : hello.labels()) {
    WB_RETURN_IF_ERROR(actions::ValidateText("hello.labels key", k, 128, false));
    WB_RETURN_IF_ERROR(actions::ValidateText(absl::StrCat("hello.labels[", k, "]"), v, 256, true));
  }

  const int64_t now_ms = clock_->NowUnixMs();
  absl::MutexLock l(&dir_mu_);
  auto known = agents_.find(agent_id);
  if (known != agents_.end() && known->second.record.banned()) {
    log::Warn("hello refused: agent is banned", {{"agent_id", agent_id}});
    return absl::PermissionDeniedError(absl::StrCat("agent ", agent_id, " is banned"));
  }
  // The result key registered at enrolment, or on first use for agents
  // issued a certificate out of band (wbctl pki init).
  if (known != agents_.end() && !known->second.record.result_public_key().empty() &&
      !crypto::ConstantTimeEquals(known->second.record.result_public_key(),
                                  hello.result_public_key())) {
    log::Warn("hello refused: result key changed", {{"agent_id", agent_id}});
    return absl::PermissionDeniedError("result key changed");
  }
  AgentRecord rec = known != agents_.end() ? known->second.record : AgentRecord();
  if (known == agents_.end() || rec.result_public_key().empty()) {
    rec.set_agent_id(agent_id);
    rec.set_result_public_key(hello.result_public_key());
    rec.set_result_key_id(key->key_id());
    if (rec.first_seen_unix_ms() == 0) rec.set_first_seen_unix_ms(now_ms);
  }
  rec.set_version(hello.version());
  *rec.mutable_features() = hello.features();
  // Served: the offered instances bound to this agent; the rest refused,
  // one by one (bindings.cc).
  SplitOffer(agent_id, hello.instances(), &rec);
  audit::AuditEvents refusals;
  for (const auto& r : rec.refused_instances()) {
    bool known_refusal = false;
    if (known != agents_.end()) {
      for (const auto& old : known->second.record.refused_instances()) {
        known_refusal |= old.instance().name() == r.instance().name() && old.reason() == r.reason();
      }
    }
    log::Warn("instance offered by an agent it is not bound to: refused",
              {{"agent_id", agent_id}, {"instance", r.instance().name()}, {"reason", r.reason()}});
    if (known_refusal) continue;  // audited when it was first refused
    writeback::v1::AuditEvent e = audit::NewEvent(
        writeback::v1::AUDIT_EVENT_KIND_INSTANCE_CLAIM_REFUSED, opts_.controlplane_id, now_ms);
    e.set_agent_id(agent_id);
    e.set_detail(absl::StrCat("instance ", r.instance().name(), ": ", r.reason()));
    refusals.push_back(std::move(e));
  }
  *rec.mutable_labels() = hello.labels();
  rec.set_last_seen_unix_ms(now_ms);
  rec.clear_relay_path();
  for (const auto& hop : relay_path) rec.add_relay_path(hop);
  WB_RETURN_IF_ERROR(store_->PutAgent(rec));
  if (absl::Status st = store_->AppendAudit(refusals); !st.ok()) {
    log::Error("audit: refused instance offers not recorded", {{"error", st.ToString()}});
  }

  if (known != agents_.end()) {
    for (const auto& old : known->second.record.instances()) {
      auto r = routes_.find(old.name());
      if (r != routes_.end() && r->second.agent_id == agent_id) routes_.erase(r);
    }
  }
  for (const auto& inst : rec.instances()) routes_[inst.name()] = InstanceRoute{agent_id, inst};
  agents_[agent_id] = KnownAgent{rec, *std::move(key), now_ms};
  log::Info(known == agents_.end() ? "agent registered" : "agent connected",
            {{"agent_id", agent_id},
             {"version", rec.version()},
             {"instances", absl::StrCat(rec.instances_size())},
             {"refused_instances", absl::StrCat(rec.refused_instances_size())},
             {"result_key_id", rec.result_key_id()},
             {"via", relay_path.empty() ? "direct" : relay::FormatRelayPath(relay_path)}});

  writeback::v1::Welcome w;
  w.set_controlplane_id(opts_.controlplane_id);
  w.set_server_time_unix_ms(now_ms);
  w.set_heartbeat_interval_seconds(opts_.heartbeat_interval_seconds);
  w.set_max_in_flight(opts_.max_in_flight);
  if (auto p = trust_policy(); p != nullptr) *w.mutable_trust_policy() = p->envelope;
  for (const auto& r : rec.refused_instances()) {
    auto* ri = w.add_refused_instances();
    ri->set_instance(r.instance().name());
    ri->set_reason(r.reason());
  }
  return w;
}

}  // namespace wb::controlplane
