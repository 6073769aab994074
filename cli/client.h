// wbctl's connection to the control plane: which server and identity to use
// (config file, environment, flags), and a thin AdminService client whose
// every call has a deadline and returns absl::Status.
#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "writeback/v1/admin_service.grpc.pb.h"
#include "writeback/v1/config.pb.h"

namespace wb::cli {

// Global connection flags. Empty strings were not given.
struct ConnectionFlags {
  std::string config_file;  // --config
  std::string address;      // --address
  std::string controlplane_id;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// The effective WbctlConfig: the YAML file named by --config (else
// `env_config`, the value of $WBCTL_CONFIG, if non-empty) with the flags laid
// over it. Relative paths in the file are relative to the file's directory.
// Requires controlplane_address, controlplane_id, tls.ca_file, tls.cert_file
// and tls.key_file; errors are INVALID_ARGUMENT naming the field and the
// flag that sets it.
absl::StatusOr<writeback::v1::WbctlConfig> ResolveConfig(const ConnectionFlags& flags,
                                                         const std::string& env_config);

// An AdminService client over mTLS. Calls are thread-safe (gRPC stubs are).
// Errors: the server's status code with its message (see FromGrpcStatus).
class AdminClient {
 public:
  // Builds the channel (wb::tls::MakeChannelCredentials pinning
  // controlplane_id, wb::tls::DefaultChannelArgs). Does not connect yet.
  static absl::StatusOr<std::unique_ptr<AdminClient>> Dial(const writeback::v1::WbctlConfig& cfg);

  absl::StatusOr<writeback::v1::SubmitDecisionResponse> SubmitDecision(
      const writeback::v1::SubmitDecisionRequest& req, absl::Duration timeout);
  absl::StatusOr<writeback::v1::DecisionView> GetDecision(const std::string& decision_id,
                                                          absl::Duration timeout);
  absl::StatusOr<writeback::v1::ListDecisionsResponse> ListDecisions(
      const writeback::v1::ListDecisionsRequest& req, absl::Duration timeout);
  absl::StatusOr<writeback::v1::ListAgentsResponse> ListAgents(absl::Duration timeout);
  absl::StatusOr<writeback::v1::CancelDecisionResponse> CancelDecision(
      const std::string& decision_id, absl::Duration timeout);

  const std::string& address() const { return address_; }
  // The channel, for commands that call methods not wrapped here (the
  // operators'-view commands in cli/commands/, streaming calls included).
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  AdminClient(std::string address, std::shared_ptr<grpc::Channel> channel);
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<writeback::v1::AdminService::Stub> stub_;
};

}  // namespace wb::cli
