// A scripted control plane for tests that must put exact bytes in front of a
// real agent: it speaks AgentService.Connect with the real control-plane
// certificate, pushes the SignedEnvelopes the test gives it (tampered,
// replayed, misdirected…), and collects the agent's signed results.
//
// It is NOT a fake of a real system: it plays our own control plane's side of
// our own protocol, so that the agent's refusals can be tested with bytes the
// real control plane would never produce. Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "writeback/v1/agent_service.grpc.pb.h"
#include "writeback/v1/config.pb.h"
#include "writeback/v1/decision.pb.h"

namespace wb::e2e {

class FakeControlPlane final : public writeback::v1::AgentService::Service {
 public:
  // Listens on 127.0.0.1:0 with `tls` (the control plane's identity).
  explicit FakeControlPlane(const writeback::v1::TlsConfig& tls);
  ~FakeControlPlane() override;
  int port() const { return port_; }

  // Queues a task envelope for the next (or current) stream.
  void Push(const writeback::v1::SignedEnvelope& task);
  // Results received so far (envelopes as sent, and parsed payloads).
  std::vector<writeback::v1::SignedEnvelope> results() const;
  std::vector<writeback::v1::Result> parsed_results() const;
  // Waits until at least n results arrived; false on timeout.
  bool WaitResults(size_t n, absl::Duration timeout = absl::Seconds(30)) const;
  bool connected() const;
  std::string hello_agent_id() const;
  std::string hello_result_key() const;

  grpc::Status Connect(grpc::ServerContext* ctx,
                       grpc::ServerReaderWriter<writeback::v1::ControlMessage,
                                                writeback::v1::AgentMessage>* stream) override;

 private:
  mutable absl::Mutex mu_;
  std::deque<writeback::v1::ControlMessage> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<writeback::v1::SignedEnvelope> results_ ABSL_GUARDED_BY(mu_);
  int streams_ ABSL_GUARDED_BY(mu_) = 0;  // open agent streams
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::string hello_agent_id_ ABSL_GUARDED_BY(mu_);
  std::string hello_result_key_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace wb::e2e
