#include "controlplane/enroll/enrollment_service.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/audit/chain.h"
#include "common/crypto/crypto.h"
#include "common/crypto/csr.h"
#include "common/crypto/join_token.h"
#include "common/envelope/envelope.h"
#include "common/fs/fs.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"
#include "common/tls/tls.h"
#include "controlplane/rpc/grpc_status.h"

namespace wb::controlplane {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Enroller>> Enroller::Create(
    const writeback::v1::EnrollmentConfig& cfg, const std::string& ca_file,
    std::string trust_domain, Store* store, Dispatcher* dispatcher, const Clock* clock) {
  std::unique_ptr<Enroller> e(new Enroller());
  WB_ASSIGN_OR_RETURN(e->ca_pem_, fs::ReadFile(ca_file, 1 << 20));
  auto key = fs::ReadFile(cfg.ca_key_file(), 1 << 20);
  if (!key.ok()) return Invalid("enrollment.ca_key_file", key.status().message());
  e->ca_key_pem_ = *std::move(key);
  auto ca = crypto::ParseCert(e->ca_pem_);
  if (!ca.ok()) return Invalid("tls.ca_file", ca.status().message());
  auto pub = crypto::PublicKeyPemOf(e->ca_key_pem_);
  if (!pub.ok() || *pub != ca->public_key_pem) {
    return Invalid("enrollment.ca_key_file", "is not the key of the CA in tls.ca_file");
  }
  const uint32_t lifetime =
      cfg.cert_lifetime_seconds() == 0 ? kDefaultCertLifetimeSeconds : cfg.cert_lifetime_seconds();
  if (lifetime < 300 || lifetime > 30 * 86400) {
    return Invalid("enrollment.cert_lifetime_seconds", "between 300 and 2592000");
  }
  e->lifetime_ = absl::Seconds(lifetime);
  e->per_minute_ = cfg.max_requests_per_minute() == 0 ? 60 : cfg.max_requests_per_minute();
  e->trust_domain_ = std::move(trust_domain);
  e->store_ = store;
  e->dispatcher_ = dispatcher;
  e->clock_ = clock;
  return e;
}

absl::Status Enroller::TakeRate() {
  const int64_t now = clock_->NowUnixMs();
  absl::MutexLock l(&rate_mu_);
  while (!recent_.empty() && recent_.front() <= now - 60'000) recent_.pop_front();
  if (recent_.size() >= per_minute_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "enrolment: more than ", per_minute_, " requests in the last minute; try again later"));
  }
  recent_.push_back(now);
  return absl::OkStatus();
}

absl::StatusOr<writeback::v1::CreateJoinTokenResponse> Enroller::CreateToken(
    absl::string_view by, absl::string_view agent, uint32_t ttl_seconds,
    const std::vector<std::string>& instances) {
  std::string agent_id;
  if (absl::StartsWith(agent, "spiffe://")) {
    auto id = tls::ParseSpiffeId(agent);
    if (!id.ok() || id->cls != tls::IdentityClass::kAgent || id->trust_domain != trust_domain_) {
      return Invalid("agent_id", absl::StrCat("'", agent,
                                              "' is not an agent identity of trust "
                                              "domain ",
                                              trust_domain_));
    }
    agent_id = std::string(agent);
  } else {
    WB_RETURN_IF_ERROR(tls::ValidateName("agent_id", agent));
    agent_id = tls::MakeSpiffeId(trust_domain_, tls::IdentityClass::kAgent, agent);
  }
  if (ttl_seconds == 0) ttl_seconds = 3600;
  if (ttl_seconds < 60 || ttl_seconds > kMaxJoinTokenTtlSeconds) {
    return Invalid("ttl_seconds", absl::StrCat("between 60 and ", kMaxJoinTokenTtlSeconds));
  }
  if (auto a = dispatcher_->AgentRecordOf(agent_id); a.ok() && a->banned()) {
    return absl::FailedPreconditionError(absl::StrCat("agent ", agent_id, " is banned"));
  }
  if (instances.size() > 64) return Invalid("instances", "at most 64");
  for (size_t i = 0; i < instances.size(); ++i) {
    WB_RETURN_IF_ERROR(tls::ValidateName(absl::StrCat("instances[", i, "]"), instances[i]));
    if (absl::Status s = dispatcher_->CanBindAtOnce(instances[i], agent_id); !s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("instances[", i, "]: ", s.message()));
    }
  }
  const std::string token = absl::StrCat("wbj_", crypto::HexEncode(crypto::RandomBytes(32)));
  const int64_t now = clock_->NowUnixMs();
  WB_ASSIGN_OR_RETURN(crypto::Ed25519PrivateKey token_key, crypto::JoinTokenKey(token));
  writeback::v1::JoinTokenRecord rec;
  rec.set_token_digest(crypto::Sha256(token));
  rec.set_proof_public_key(token_key.public_key().raw());
  rec.set_agent_id(agent_id);
  rec.set_created_by(std::string(by));
  rec.set_created_at_unix_ms(now);
  rec.set_expires_at_unix_ms(now + int64_t{ttl_seconds} * 1000);
  for (const std::string& inst : instances) rec.add_instances(inst);
  WB_RETURN_IF_ERROR(store_->PutJoinToken(rec));
  log::Info("join token created", {{"agent_id", agent_id},
                                   {"by", std::string(by)},
                                   {"expires_at_unix_ms", absl::StrCat(rec.expires_at_unix_ms())}});
  writeback::v1::CreateJoinTokenResponse resp;
  resp.set_token(token);
  resp.set_agent_id(agent_id);
  resp.set_expires_at_unix_ms(rec.expires_at_unix_ms());
  *resp.mutable_instances() = rec.instances();
  return resp;
}

absl::Status Enroller::Record(writeback::v1::AuditEventKind kind, const std::string& agent_id,
                              const std::string& detail,
                              const writeback::v1::EnrollResponse& issued) {
  writeback::v1::AuditEvent e = audit::NewEvent(kind, agent_id, clock_->NowUnixMs());
  e.set_agent_id(agent_id);
  e.set_detail(detail);
  e.set_digest(crypto::Sha256(issued.certificate_pem()));
  return store_->AppendAudit({e});
}

absl::StatusOr<writeback::v1::EnrollResponse> Enroller::Issue(const std::string& agent_id,
                                                              absl::string_view csr_pem) {
  auto pub = crypto::VerifyCsr(csr_pem);
  if (!pub.ok()) return Invalid("csr_pem", pub.status().message());
  const absl::Time now = clock_->Now();
  crypto::CertSpec spec;
  spec.common_name = agent_id.substr(agent_id.rfind('/') + 1);
  spec.spiffe_id = agent_id;
  spec.lifetime = lifetime_;
  WB_ASSIGN_OR_RETURN(std::string cert, crypto::IssueCert(ca_pem_, ca_key_pem_, *pub, spec, now));
  WB_ASSIGN_OR_RETURN(crypto::CertInfo info, crypto::ParseCert(cert));
  writeback::v1::EnrollResponse resp;
  resp.set_agent_id(agent_id);
  resp.set_certificate_pem(cert);
  resp.set_ca_pem(ca_pem_);
  resp.set_not_after_unix_ms(absl::ToUnixMillis(info.not_after));
  return resp;
}

absl::StatusOr<writeback::v1::EnrollResponse> Enroller::Enroll(
    const writeback::v1::EnrollRequest& req) {
  WB_RETURN_IF_ERROR(TakeRate());
  if (req.token_digest().size() != 32) {
    return Invalid("token_digest", "must be the 32-byte SHA-256 of the join token");
  }
  if (req.token_signature().empty() || req.token_signature().size() > 128) {
    return Invalid("token_signature", "missing or too long");
  }
  if (auto k = crypto::Ed25519PublicKey::FromRaw(req.result_public_key()); !k.ok()) {
    return Invalid("result_public_key", "not a raw 32-byte Ed25519 public key");
  }
  if (auto pub = crypto::VerifyCsr(req.csr_pem()); !pub.ok()) {
    return Invalid("csr_pem", pub.status().message());
  }
  writeback::v1::JoinTokenRecord rec;
  {
    absl::MutexLock l(&token_mu_);
    auto found = store_->GetJoinToken(req.token_digest());
    // One answer for every unusable token, so that a caller cannot tell an
    // unknown token from a spent, expired or revoked one.
    const absl::Status unusable =
        absl::PermissionDeniedError("token: unknown, expired, revoked or already used");
    if (!found.ok()) {
      if (found.status().code() == absl::StatusCode::kNotFound) return unusable;
      return found.status();
    }
    rec = *std::move(found);
    if (rec.used_at_unix_ms() != 0 || rec.revoked() ||
        clock_->NowUnixMs() > rec.expires_at_unix_ms()) {
      log::Warn("enrolment refused: token not usable", {{"agent_id", rec.agent_id()}});
      return unusable;
    }
    // Possession of the token, bound to this CSR and result key: a relay
    // that saw the request cannot reuse it for its own keys. Checked before
    // the token is spent, so a forged request does not burn it.
    auto proof_key = crypto::Ed25519PublicKey::FromRaw(rec.proof_public_key());
    if (!proof_key.ok() ||
        !proof_key->Verify(crypto::EnrollmentBinding(req.csr_pem(), req.result_public_key()),
                           req.token_signature())) {
      log::Warn("enrolment refused: token signature does not match this request",
                {{"agent_id", rec.agent_id()}});
      return unusable;
    }
    rec.set_used_at_unix_ms(clock_->NowUnixMs());
    WB_RETURN_IF_ERROR(store_->PutJoinToken(rec));
  }
  WB_ASSIGN_OR_RETURN(writeback::v1::EnrollResponse resp, Issue(rec.agent_id(), req.csr_pem()));
  WB_RETURN_IF_ERROR(dispatcher_->RegisterEnrolled(rec.agent_id(), req.result_public_key(),
                                                   resp.not_after_unix_ms()));
  WB_RETURN_IF_ERROR(Record(writeback::v1::AUDIT_EVENT_KIND_AGENT_ENROLLED, rec.agent_id(),
                            absl::StrCat("token by ", rec.created_by(), "; result key ",
                                         crypto::KeyIdOf(req.result_public_key())),
                            resp));
  // The instances the token names are bound to it: the operator who made
  // the token chose them.
  for (const std::string& inst : rec.instances()) {
    auto b = dispatcher_->BindInstance(rec.created_by(), inst, rec.agent_id(),
                                       "listed in the join token it enrolled with");
    if (!b.ok() || b->pending_approval()) {
      log::Warn("join token's instance not bound",
                {{"agent_id", rec.agent_id()},
                 {"instance", inst},
                 {"error", b.ok() ? "a rebind needs approvals" : b.status().ToString()}});
    }
  }
  log::Info("agent enrolled", {{"agent_id", rec.agent_id()},
                               {"not_after_unix_ms", absl::StrCat(resp.not_after_unix_ms())},
                               {"result_key_id", crypto::KeyIdOf(req.result_public_key())}});
  return resp;
}

absl::StatusOr<writeback::v1::EnrollResponse> Enroller::Renew(
    absl::string_view agent_id, const writeback::v1::RenewRequest& req) {
  auto rec = dispatcher_->AgentRecordOf(agent_id);
  if (!rec.ok())
    return absl::PermissionDeniedError(absl::StrCat("agent ", agent_id, " is unknown"));
  if (rec->banned())
    return absl::PermissionDeniedError(absl::StrCat("agent ", agent_id, " is banned"));
  WB_ASSIGN_OR_RETURN(writeback::v1::EnrollResponse resp,
                      Issue(std::string(agent_id), req.csr_pem()));
  WB_RETURN_IF_ERROR(dispatcher_->RecordCertificate(agent_id, resp.not_after_unix_ms()));
  WB_RETURN_IF_ERROR(Record(writeback::v1::AUDIT_EVENT_KIND_AGENT_RENEWED, std::string(agent_id),
                            "renewed", resp));
  log::Info("agent certificate renewed",
            {{"agent_id", std::string(agent_id)},
             {"not_after_unix_ms", absl::StrCat(resp.not_after_unix_ms())}});
  return resp;
}

absl::StatusOr<writeback::v1::EnrollResponse> Enroller::Rejoin(
    const writeback::v1::RejoinRequest& req) {
  WB_RETURN_IF_ERROR(TakeRate());
  const absl::Status refused =
      absl::PermissionDeniedError("rejoin: not a known, non-banned agent proving its result key");
  auto rec = dispatcher_->AgentRecordOf(req.agent_id());
  if (!rec.ok() || rec->banned() || rec->result_public_key().empty()) {
    log::Warn("rejoin refused", {{"agent_id", req.agent_id()},
                                 {"why", !rec.ok()       ? "unknown"
                                         : rec->banned() ? "banned"
                                                         : "no key"}});
    return refused;
  }
  auto key = crypto::Ed25519PublicKey::FromRaw(rec->result_public_key());
  if (!key.ok()) return refused;
  if (!key->Verify(envelope::SigningInput(writeback::v1::PAYLOAD_TYPE_REJOIN, req.statement()),
                   req.signature())) {
    log::Warn("rejoin refused: signature", {{"agent_id", req.agent_id()}});
    return refused;
  }
  writeback::v1::RejoinStatement st;
  if (!st.ParseFromString(req.statement()) || envelope::HasUnknownFields(st)) {
    return Invalid("statement", "not a RejoinStatement");
  }
  if (st.agent_id() != req.agent_id())
    return Invalid("statement.agent_id", "differs from agent_id");
  if (!crypto::ConstantTimeEquals(st.csr_digest(), crypto::Sha256(req.csr_pem()))) {
    return Invalid("statement.csr_digest", "is not the digest of csr_pem");
  }
  const absl::Time signed_at = absl::FromUnixMillis(st.signed_at_unix_ms());
  if (absl::AbsDuration(clock_->Now() - signed_at) > kRejoinMaxSkew) {
    return Invalid("statement.signed_at_unix_ms",
                   absl::StrCat("more than ", absl::FormatDuration(kRejoinMaxSkew),
                                " from the control plane's clock"));
  }
  WB_ASSIGN_OR_RETURN(writeback::v1::EnrollResponse resp, Issue(req.agent_id(), req.csr_pem()));
  WB_RETURN_IF_ERROR(dispatcher_->RecordCertificate(req.agent_id(), resp.not_after_unix_ms()));
  WB_RETURN_IF_ERROR(Record(writeback::v1::AUDIT_EVENT_KIND_AGENT_RENEWED, req.agent_id(),
                            "re-joined by result-key proof", resp));
  log::Info("agent re-joined", {{"agent_id", req.agent_id()},
                                {"not_after_unix_ms", absl::StrCat(resp.not_after_unix_ms())}});
  return resp;
}

// ---- gRPC ----

namespace {
grpc::Status NotConfigured() {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "enrolment is not configured on this control plane (enrollment.ca_key_file)");
}
}  // namespace

grpc::Status EnrollmentServiceImpl::Enroll(grpc::ServerContext* ctx,
                                           const writeback::v1::EnrollRequest* req,
                                           writeback::v1::EnrollResponse* resp) {
  auto caller = authz_->Check(kEnrollMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (enroller_ == nullptr) return NotConfigured();
  auto r = enroller_->Enroll(*req);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status EnrollmentServiceImpl::Rejoin(grpc::ServerContext* ctx,
                                           const writeback::v1::RejoinRequest* req,
                                           writeback::v1::EnrollResponse* resp) {
  auto caller = authz_->Check(kRejoinMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (enroller_ == nullptr) return NotConfigured();
  auto r = enroller_->Rejoin(*req);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status EnrollmentServiceImpl::Renew(grpc::ServerContext* ctx,
                                          const writeback::v1::RenewRequest* req,
                                          writeback::v1::EnrollResponse* resp) {
  auto caller = authz_->Check(kRenewMethod, *ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (enroller_ == nullptr) return NotConfigured();
  auto r = enroller_->Renew(caller->ToString(), *req);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

}  // namespace wb::controlplane
