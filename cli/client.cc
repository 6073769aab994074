#include "cli/client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"
#include "common/config/config.h"
#include "common/status/macros.h"
#include "common/tls/tls.h"

namespace wb::cli {
namespace {

namespace v1 = writeback::v1;

std::string RelativeTo(const std::string& base_dir, const std::string& path) {
  if (path.empty() || base_dir.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

absl::Status Need(absl::string_view field, const std::string& value, absl::string_view how) {
  if (!value.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, ": required (", how, ")"));
}

void SetDeadline(grpc::ClientContext* ctx, absl::Duration timeout) {
  ctx->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
}

}  // namespace

absl::StatusOr<v1::WbctlConfig> ResolveConfig(const ConnectionFlags& flags,
                                              const std::string& env_config) {
  v1::WbctlConfig cfg;
  const std::string path = !flags.config_file.empty() ? flags.config_file : env_config;
  if (!path.empty()) {
    absl::Status s = config::LoadYamlFile(path, &cfg);
    if (!s.ok()) {
      // A missing file is a usage error here, not a NOT_FOUND object.
      return absl::InvalidArgumentError(
          absl::StrCat(flags.config_file.empty() ? "WBCTL_CONFIG: " : "--config: ", s.message()));
    }
    const std::string dir = std::filesystem::path(path).parent_path().string();
    auto* tls = cfg.mutable_tls();
    tls->set_ca_file(RelativeTo(dir, tls->ca_file()));
    tls->set_cert_file(RelativeTo(dir, tls->cert_file()));
    tls->set_key_file(RelativeTo(dir, tls->key_file()));
  }
  if (!flags.address.empty()) cfg.set_controlplane_address(flags.address);
  if (!flags.controlplane_id.empty()) cfg.set_controlplane_id(flags.controlplane_id);
  if (!flags.ca_file.empty()) cfg.mutable_tls()->set_ca_file(flags.ca_file);
  if (!flags.cert_file.empty()) cfg.mutable_tls()->set_cert_file(flags.cert_file);
  if (!flags.key_file.empty()) cfg.mutable_tls()->set_key_file(flags.key_file);

  WB_RETURN_IF_ERROR(
      Need("controlplane_address", cfg.controlplane_address(), "--address or the config file"));
  WB_RETURN_IF_ERROR(
      Need("controlplane_id", cfg.controlplane_id(), "--controlplane-id or the config file"));
  if (!cfg.controlplane_id().empty()) {
    auto id = tls::ParseSpiffeId(cfg.controlplane_id());
    if (!id.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("controlplane_id: ", id.status().message()));
    }
    if (id->cls != tls::IdentityClass::kControlPlane) {
      return absl::InvalidArgumentError(
          "controlplane_id: must be a control plane identity "
          "(spiffe://<domain>/controlplane/<name>)");
    }
  }
  WB_RETURN_IF_ERROR(Need("tls.ca_file", cfg.tls().ca_file(), "--ca or the config file"));
  WB_RETURN_IF_ERROR(Need("tls.cert_file", cfg.tls().cert_file(),
                          "--cert or the config file: the operator's certificate"));
  WB_RETURN_IF_ERROR(Need("tls.key_file", cfg.tls().key_file(),
                          "--key or the config file: the operator's private key"));
  return cfg;
}

AdminClient::AdminClient(std::string address, std::shared_ptr<grpc::Channel> channel)
    : address_(std::move(address)),
      channel_(std::move(channel)),
      stub_(v1::AdminService::NewStub(channel_)) {}

absl::StatusOr<std::unique_ptr<AdminClient>> AdminClient::Dial(const v1::WbctlConfig& cfg) {
  auto creds = tls::MakeChannelCredentials(cfg.tls(), cfg.controlplane_id());
  if (!creds.ok()) {
    // Unreadable files and similar are the operator's input, not the network.
    return absl::InvalidArgumentError(creds.status().message());
  }
  auto channel =
      grpc::CreateCustomChannel(cfg.controlplane_address(), *creds, tls::DefaultChannelArgs());
  return std::unique_ptr<AdminClient>(new AdminClient(cfg.controlplane_address(), channel));
}

absl::StatusOr<v1::SubmitDecisionResponse> AdminClient::SubmitDecision(
    const v1::SubmitDecisionRequest& req, absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  v1::SubmitDecisionResponse resp;
  WB_RETURN_IF_ERROR(FromGrpcStatus(stub_->SubmitDecision(&ctx, req, &resp), address_));
  return resp;
}

absl::StatusOr<v1::DecisionView> AdminClient::GetDecision(const std::string& decision_id,
                                                          absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  v1::GetDecisionRequest req;
  req.set_decision_id(decision_id);
  v1::DecisionView resp;
  WB_RETURN_IF_ERROR(FromGrpcStatus(stub_->GetDecision(&ctx, req, &resp), address_));
  return resp;
}

absl::StatusOr<v1::ListDecisionsResponse> AdminClient::ListDecisions(
    const v1::ListDecisionsRequest& req, absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  v1::ListDecisionsResponse resp;
  WB_RETURN_IF_ERROR(FromGrpcStatus(stub_->ListDecisions(&ctx, req, &resp), address_));
  return resp;
}

absl::StatusOr<v1::ListAgentsResponse> AdminClient::ListAgents(absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  v1::ListAgentsResponse resp;
  WB_RETURN_IF_ERROR(
      FromGrpcStatus(stub_->ListAgents(&ctx, v1::ListAgentsRequest(), &resp), address_));
  return resp;
}

absl::StatusOr<v1::CancelDecisionResponse> AdminClient::CancelDecision(
    const std::string& decision_id, absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  v1::CancelDecisionRequest req;
  req.set_decision_id(decision_id);
  v1::CancelDecisionResponse resp;
  WB_RETURN_IF_ERROR(FromGrpcStatus(stub_->CancelDecision(&ctx, req, &resp), address_));
  return resp;
}

}  // namespace wb::cli
