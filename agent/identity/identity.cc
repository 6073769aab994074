#include "agent/identity/identity.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <random>

#include "absl/strings/str_cat.h"
#include "common/crypto/csr.h"
#include "common/crypto/join_token.h"
#include "common/envelope/envelope.h"
#include "common/fs/fs.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"
#include "common/tls/tls.h"
#include "writeback/v1/enrollment.grpc.pb.h"

namespace wb::agent {
namespace {

constexpr absl::Duration kCallTimeout = absl::Seconds(20);

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

// A stub to the control plane; with `with_identity` false no client
// certificate is presented (enrolment, re-joining).
absl::StatusOr<std::unique_ptr<writeback::v1::EnrollmentService::Stub>> Stub(
    const writeback::v1::AgentConfig& cfg, bool with_identity) {
  writeback::v1::TlsConfig tls;
  tls.set_ca_file(cfg.tls().ca_file());
  if (with_identity) tls = cfg.tls();
  WB_ASSIGN_OR_RETURN(auto creds, tls::MakeChannelCredentials(tls, cfg.controlplane_id()));
  auto channel =
      grpc::CreateCustomChannel(cfg.controlplane_address(), creds, tls::DefaultChannelArgs());
  return writeback::v1::EnrollmentService::NewStub(channel);
}

absl::Status CheckIssued(const writeback::v1::AgentConfig& cfg,
                         const writeback::v1::EnrollResponse& resp) {
  if (resp.agent_id() != cfg.agent_id()) {
    return absl::PermissionDeniedError(absl::StrCat("the control plane issued identity '",
                                                    resp.agent_id(), "', but agent_id is '",
                                                    cfg.agent_id(), "'"));
  }
  WB_ASSIGN_OR_RETURN(crypto::CertInfo info, crypto::ParseCert(resp.certificate_pem()));
  if (info.uris.size() != 1 || info.uris[0] != cfg.agent_id()) {
    return absl::PermissionDeniedError("the issued certificate does not carry agent_id");
  }
  // The certificate must chain to the CA this agent already trusts.
  WB_ASSIGN_OR_RETURN(std::string ca, fs::ReadFile(cfg.tls().ca_file(), 1 << 20));
  return crypto::VerifyCertChain(resp.certificate_pem(), ca, absl::Now());
}

absl::Status WriteKeyPair(const writeback::v1::AgentConfig& cfg, const std::string* key_pem,
                          const std::string& cert_pem) {
  if (key_pem != nullptr) WB_RETURN_IF_ERROR(fs::WriteFileAtomic(cfg.tls().key_file(), *key_pem));
  fs::WriteOptions pub;
  pub.mode = 0644;
  return fs::WriteFileAtomic(cfg.tls().cert_file(), cert_pem, pub);
}

}  // namespace

absl::Status Enroll(const writeback::v1::AgentConfig& cfg, const std::string& token, bool force) {
  if (token.empty()) return absl::InvalidArgumentError("token: required");
  if (cfg.tls().cert_file().empty() || cfg.tls().key_file().empty()) {
    return absl::InvalidArgumentError("tls.cert_file, tls.key_file: required (where to write)");
  }
  if (cfg.result_key_file().empty()) return absl::InvalidArgumentError("result_key_file: required");
  if (Exists(cfg.tls().cert_file()) && !force) {
    return absl::AlreadyExistsError(absl::StrCat("tls.cert_file: ", cfg.tls().cert_file(),
                                                 " exists (this agent is enrolled; --force)"));
  }
  crypto::Ed25519PrivateKey result_key = crypto::Ed25519PrivateKey::Generate();
  if (Exists(cfg.result_key_file())) {
    WB_ASSIGN_OR_RETURN(result_key, crypto::Ed25519PrivateKey::LoadFile(cfg.result_key_file()));
  } else {
    WB_RETURN_IF_ERROR(result_key.SaveFile(cfg.result_key_file()));
  }
  const std::string tls_key = crypto::GenerateP256KeyPem();
  WB_ASSIGN_OR_RETURN(std::string csr, crypto::MakeCsr(tls_key, cfg.agent_id()));
  WB_ASSIGN_OR_RETURN(auto stub, Stub(cfg, /*with_identity=*/false));
  writeback::v1::EnrollRequest req;
  req.set_csr_pem(csr);
  req.set_result_public_key(result_key.public_key().raw());
  // The token stays here: only its digest and a signature binding it to
  // this CSR and result key travel (a relay may forward the request).
  WB_ASSIGN_OR_RETURN(crypto::Ed25519PrivateKey token_key, crypto::JoinTokenKey(token));
  req.set_token_digest(crypto::Sha256(token));
  req.set_token_signature(
      token_key.Sign(crypto::EnrollmentBinding(req.csr_pem(), req.result_public_key())));
  writeback::v1::EnrollResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
  if (grpc::Status s = stub->Enroll(&ctx, req, &resp); !s.ok()) return FromGrpc(s, "enrol");
  WB_RETURN_IF_ERROR(CheckIssued(cfg, resp));
  WB_RETURN_IF_ERROR(WriteKeyPair(cfg, &tls_key, resp.certificate_pem()));
  log::Info("enrolled", {{"agent_id", resp.agent_id()},
                         {"not_after_unix_ms", absl::StrCat(resp.not_after_unix_ms())},
                         {"result_key_id", result_key.key_id()}});
  return absl::OkStatus();
}

absl::StatusOr<CertWindow> ReadCertWindow(const writeback::v1::AgentConfig& cfg) {
  WB_ASSIGN_OR_RETURN(std::string pem, fs::ReadFile(cfg.tls().cert_file(), 1 << 20));
  WB_ASSIGN_OR_RETURN(crypto::CertInfo info, crypto::ParseCert(pem));
  return CertWindow{info.not_before, info.not_after};
}

absl::Time RenewalTime(const CertWindow& w, double jitter, double unit) {
  const absl::Duration life = w.not_after - w.not_before;
  const double shift = (2.0 * unit - 1.0) * jitter;  // in [-jitter, +jitter)
  return w.not_before + life / 2 + life * shift;
}

Renewer::Renewer(writeback::v1::AgentConfig cfg, crypto::Ed25519PrivateKey result_key,
                 const Clock* clock, Options opts)
    : cfg_(std::move(cfg)), result_key_(std::move(result_key)), clock_(clock), opts_(opts) {}

Renewer::~Renewer() { Stop(); }

void Renewer::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Renewer::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

bool Renewer::identity_valid() const {
  auto w = ReadCertWindow(cfg_);
  const absl::Time now = clock_->Now();
  return w.ok() && w->not_before <= now && now < w->not_after;
}

absl::Status Renewer::RenewNow() {
  WB_ASSIGN_OR_RETURN(std::string key, fs::ReadFile(cfg_.tls().key_file(), 1 << 20));
  WB_ASSIGN_OR_RETURN(std::string csr, crypto::MakeCsr(key, cfg_.agent_id()));
  WB_ASSIGN_OR_RETURN(auto stub, Stub(cfg_, /*with_identity=*/true));
  writeback::v1::RenewRequest req;
  req.set_csr_pem(csr);
  writeback::v1::EnrollResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
  if (grpc::Status s = stub->Renew(&ctx, req, &resp); !s.ok()) return FromGrpc(s, "renew");
  WB_RETURN_IF_ERROR(CheckIssued(cfg_, resp));
  WB_RETURN_IF_ERROR(WriteKeyPair(cfg_, nullptr, resp.certificate_pem()));
  ++renewals_;
  log::Info("certificate renewed", {{"agent_id", cfg_.agent_id()},
                                    {"not_after_unix_ms", absl::StrCat(resp.not_after_unix_ms())}});
  return absl::OkStatus();
}

absl::Status Renewer::RejoinNow() {
  // Keep the TLS key if there is one; make one if it was lost.
  std::string key;
  bool new_key = false;
  if (auto k = fs::ReadFile(cfg_.tls().key_file(), 1 << 20); k.ok()) {
    key = *std::move(k);
  } else {
    key = crypto::GenerateP256KeyPem();
    new_key = true;
  }
  WB_ASSIGN_OR_RETURN(std::string csr, crypto::MakeCsr(key, cfg_.agent_id()));
  writeback::v1::RejoinStatement st;
  st.set_agent_id(cfg_.agent_id());
  st.set_csr_digest(crypto::Sha256(csr));
  st.set_signed_at_unix_ms(clock_->NowUnixMs());
  writeback::v1::RejoinRequest req;
  req.set_agent_id(cfg_.agent_id());
  req.set_csr_pem(csr);
  req.set_signed_at_unix_ms(st.signed_at_unix_ms());
  req.set_statement(st.SerializeAsString());
  req.set_signature(result_key_.Sign(
      envelope::SigningInput(writeback::v1::PAYLOAD_TYPE_REJOIN, req.statement())));
  WB_ASSIGN_OR_RETURN(auto stub, Stub(cfg_, /*with_identity=*/false));
  writeback::v1::EnrollResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
  if (grpc::Status s = stub->Rejoin(&ctx, req, &resp); !s.ok()) return FromGrpc(s, "re-join");
  WB_RETURN_IF_ERROR(CheckIssued(cfg_, resp));
  WB_RETURN_IF_ERROR(WriteKeyPair(cfg_, new_key ? &key : nullptr, resp.certificate_pem()));
  ++rejoins_;
  log::Info("re-joined: new certificate",
            {{"agent_id", cfg_.agent_id()},
             {"not_after_unix_ms", absl::StrCat(resp.not_after_unix_ms())}});
  return absl::OkStatus();
}

void Renewer::Loop() {
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  absl::Duration retry = opts_.retry_initial;
  // Certificates are backdated (clock skew): after getting one, the next
  // renewal is at least half of its remaining life away.
  absl::Time min_due = absl::InfinitePast();
  while (!stop_.HasBeenNotified()) {
    absl::Duration wait;
    auto w = ReadCertWindow(cfg_);
    const absl::Time now = clock_->Now();
    absl::Status s;
    if (!w.ok() || now >= w->not_after) {
      log::Warn("identity not valid (NOT READY): re-joining",
                {{"agent_id", cfg_.agent_id()},
                 {"why", w.ok() ? "certificate expired" : std::string(w.status().message())}});
      s = RejoinNow();
    } else {
      const absl::Time due = std::max(RenewalTime(*w, opts_.jitter, unit(rng)), min_due);
      if (now >= due) {
        s = RenewNow();
        if (absl::IsUnimplemented(s)) {
          // Relays do not forward renewals (the control plane would see the
          // relay's certificate): prove the result key instead.
          log::Info("renewal not available on this path: re-joining",
                    {{"agent_id", cfg_.agent_id()}, {"why", s.message()}});
          s = RejoinNow();
        }
      } else {
        wait = due - now;
      }
    }
    if (!s.ok()) {
      log::Warn("identity renewal failed", {{"agent_id", cfg_.agent_id()},
                                            {"error", s.ToString()},
                                            {"retry_in", absl::FormatDuration(retry)}});
      wait = retry;
      retry = std::min(retry * 2, opts_.retry_max);
    } else if (wait == absl::ZeroDuration()) {
      retry = opts_.retry_initial;
      if (auto fresh = ReadCertWindow(cfg_); fresh.ok()) {
        const absl::Time t = clock_->Now();
        min_due = t + (fresh->not_after - t) / 2;
      }
      continue;  // look at the new certificate
    }
    stop_.WaitForNotificationWithTimeout(wait);
  }
}

}  // namespace wb::agent
