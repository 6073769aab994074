// Agent identity lifecycle on the control plane: enrolment records, renewed
// certificates, bans (Dispatcher methods; see dispatcher.h).
#include "absl/strings/str_cat.h"
#include "common/audit/chain.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"
#include "controlplane/dispatch/dispatcher.h"

namespace wb::controlplane {

using writeback::v1::AgentRecord;
using writeback::v1::DecisionRecord;
using writeback::v1::TaskRecord;

absl::Status Dispatcher::RegisterEnrolled(absl::string_view agent_id,
                                          absl::string_view result_public_key,
                                          int64_t cert_not_after_ms) {
  WB_ASSIGN_OR_RETURN(crypto::Ed25519PublicKey key,
                      crypto::Ed25519PublicKey::FromRaw(result_public_key));
  const int64_t now_ms = clock_->NowUnixMs();
  absl::MutexLock l(&dir_mu_);
  auto known = agents_.find(agent_id);
  AgentRecord rec = known != agents_.end() ? known->second.record : AgentRecord();
  if (rec.banned()) {
    return absl::FailedPreconditionError(absl::StrCat("agent ", agent_id, " is banned"));
  }
  if (known == agents_.end()) {
    rec.set_agent_id(std::string(agent_id));
    rec.set_first_seen_unix_ms(now_ms);
  }
  rec.set_result_public_key(std::string(result_public_key));
  rec.set_result_key_id(key.key_id());
  rec.set_enrolled_at_unix_ms(now_ms);
  rec.set_cert_not_after_unix_ms(cert_not_after_ms);
  WB_RETURN_IF_ERROR(store_->PutAgent(rec));
  const int64_t seen = known != agents_.end() ? known->second.persisted_last_seen_ms : 0;
  agents_[std::string(agent_id)] = KnownAgent{std::move(rec), std::move(key), seen};
  return absl::OkStatus();
}

absl::Status Dispatcher::RecordCertificate(absl::string_view agent_id, int64_t cert_not_after_ms) {
  absl::MutexLock l(&dir_mu_);
  auto known = agents_.find(agent_id);
  if (known == agents_.end()) return absl::NotFoundError(absl::StrCat("agent ", agent_id));
  AgentRecord rec = known->second.record;
  rec.set_cert_not_after_unix_ms(cert_not_after_ms);
  WB_RETURN_IF_ERROR(store_->PutAgent(rec));
  known->second.record = std::move(rec);
  return absl::OkStatus();
}

absl::StatusOr<AgentRecord> Dispatcher::AgentRecordOf(absl::string_view agent_id) const {
  absl::MutexLock l(&dir_mu_);
  auto known = agents_.find(agent_id);
  if (known == agents_.end())
    return absl::NotFoundError(absl::StrCat("agent ", agent_id, " is unknown"));
  return known->second.record;
}

absl::StatusOr<BanOutcome> Dispatcher::Ban(absl::string_view by, absl::string_view agent_id,
                                           absl::string_view reason) {
  if (agent_id.empty()) return absl::InvalidArgumentError("agent_id: required");
  const int64_t now_ms = clock_->NowUnixMs();
  {
    absl::MutexLock l(&dir_mu_);
    auto known = agents_.find(agent_id);
    AgentRecord rec;
    if (known != agents_.end()) {
      rec = known->second.record;
    } else {
      rec.set_agent_id(std::string(agent_id));  // banned before it ever connected
    }
    if (!rec.banned()) {
      rec.set_banned(true);
      rec.set_banned_at_unix_ms(now_ms);
      rec.set_banned_by(std::string(by));
      rec.set_banned_reason(std::string(reason));
      WB_RETURN_IF_ERROR(store_->PutAgent(rec));
      writeback::v1::AuditEvent e =
          audit::NewEvent(writeback::v1::AUDIT_EVENT_KIND_AGENT_BANNED, by, now_ms);
      e.set_agent_id(std::string(agent_id));
      e.set_detail(std::string(reason));
      WB_RETURN_IF_ERROR(store_->AppendAudit({e}));
    }
    if (known != agents_.end()) {
      known->second.record = std::move(rec);
    } else {
      // Not routable and no result key: kept only so that it stays banned.
      crypto::Ed25519PublicKey none;
      agents_[std::string(agent_id)] = KnownAgent{std::move(rec), none, 0};
    }
  }
  BanOutcome out;
  // First cut the stream: nothing more is sent to it.
  out.stream_ended = sessions_->End(
      agent_id, absl::PermissionDeniedError(absl::StrCat("agent ", agent_id, " is banned")));
  // And every stream it was relaying (their agents reconnect another way).
  out.relayed_streams_ended = sessions_->EndRelayedThrough(
      agent_id, absl::UnavailableError(absl::StrCat("relay ", agent_id, " is banned")));
  // Tasks without a result: withdrawn (their decisions recomputed).
  absl::flat_hash_set<std::string> done;
  while (true) {
    WB_ASSIGN_OR_RETURN(
        std::vector<std::string> ids,
        store_->PeekOutbox(agent_id, 256, [&](absl::string_view id) { return done.contains(id); }));
    if (ids.empty()) break;
    for (const std::string& id : ids) {
      done.insert(id);
      WB_ASSIGN_OR_RETURN(TaskRecord peek, store_->GetTask(id));
      auto dl = LockWithCovered(peek.decision_id(), {id});
      WB_ASSIGN_OR_RETURN(TaskRecord t, store_->GetTask(id));
      WB_ASSIGN_OR_RETURN(DecisionRecord d, store_->GetDecision(t.decision_id()));
      if (!IsOpenTaskState(t.state())) continue;
      t.set_state(writeback::v1::TASK_STATE_CANCELED);
      t.set_finished_at_unix_ms(now_ms);
      const writeback::v1::DecisionState old_d = d.state();
      WB_ASSIGN_OR_RETURN(bool changed, Recompute(&d, {t}, now_ms));
      audit::AuditEvents events;
      audit::AddStateChanges(by, now_ms, d, old_d, {t}, {peek.state()}, &events);
      // Tasks it covered come back to the outbox (same agent: this loop
      // cancels them next).
      absl::flat_hash_set<std::string> wake;
      WB_ASSIGN_OR_RETURN(std::vector<DecisionUpdate> updates,
                          FollowCovering({t}, by, now_ms, &events, &wake));
      updates.insert(updates.begin(), DecisionUpdate{d, changed, {t}});
      WB_RETURN_IF_ERROR(store_->SaveProgressBatch(updates, events));
      ++out.tasks_canceled;
    }
  }
  WB_ASSIGN_OR_RETURN(auto tokens, store_->ListJoinTokens());
  for (auto& tok : tokens) {
    if (tok.agent_id() != agent_id || tok.used_at_unix_ms() != 0 || tok.revoked()) continue;
    tok.set_revoked(true);
    WB_RETURN_IF_ERROR(store_->PutJoinToken(tok));
    ++out.tokens_revoked;
  }
  log::Warn("agent banned", {{"agent_id", std::string(agent_id)},
                             {"by", std::string(by)},
                             {"reason", std::string(reason)},
                             {"tasks_canceled", absl::StrCat(out.tasks_canceled)},
                             {"stream_ended", out.stream_ended ? "true" : "false"},
                             {"relayed_streams_ended", absl::StrCat(out.relayed_streams_ended)}});
  return out;
}

}  // namespace wb::controlplane
