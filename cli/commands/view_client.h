// The AdminService stub for the operators'-view commands, on the Context's
// channel, and the error conversion they share. Header-only.
#pragma once

#include <grpcpp/client_context.h>

#include <chrono>
#include <memory>

#include "absl/status/statusor.h"
#include "cli/command.h"
#include "cli/exit_codes.h"
#include "writeback/v1/admin_service.grpc.pb.h"

namespace wb::cli {

struct ViewClient {
  std::unique_ptr<writeback::v1::AdminService::Stub> stub;
  std::string address;

  absl::Status Check(const grpc::Status& s) const { return FromGrpcStatus(s, address); }
};

inline absl::StatusOr<ViewClient> DialView(Context& ctx) {
  auto client = ctx.Client();
  if (!client.ok()) return client.status();
  return ViewClient{writeback::v1::AdminService::NewStub((*client)->channel()),
                    (*client)->address()};
}

inline void SetDeadline(grpc::ClientContext* c, absl::Duration timeout) {
  c->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
}

}  // namespace wb::cli
