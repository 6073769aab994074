// AgentService.Connect: the agents' bidirectional stream, on gRPC's callback
// API so that thousands of idle agents cost no threads.
//
// Protocol (proto/writeback/v1/agent_service.proto):
//   agent -> Hello (first; agent_id must be the certificate's SPIFFE ID)
//   cp    -> Welcome, then the agent's queued signed tasks in decision order,
//            at most max_in_flight without a stored result at a time
//   agent -> TaskAck (task journaled: DELIVERED), Heartbeat, signed Result
//   cp    -> ResultAck once the result is durably stored (or refused)
// On reconnect every task without a stored result is sent again, with the
// same signed bytes. A new stream of the same agent ends the older one
// (ABORTED). The server ends streams with UNAVAILABLE when shutting down.
//
// Each stream runs its logic on a serial executor over the shared worker
// pool: gRPC reactions only queue events, so store writes never block gRPC's
// threads, and one stream's messages are handled one at a time, in order.
// While the stream's outgoing queue is long (a slow reader), it stops
// reading until the queue drains.
#pragma once

#include <functional>

#include "common/clock/clock.h"
#include "controlplane/dispatch/dispatcher.h"
#include "controlplane/dispatch/sessions.h"
#include "controlplane/dispatch/worker_pool.h"
#include "controlplane/rpc/authz.h"
#include "writeback/v1/agent_service.grpc.pb.h"

namespace wb::controlplane {

class AgentServiceImpl final : public writeback::v1::AgentService::CallbackService {
 public:
  // The pointers must outlive every stream (the server is shut down and the
  // pool drained before they go).
  AgentServiceImpl(const Authorizer* authz, Dispatcher* dispatcher, SessionRegistry* sessions,
                   WorkerPool* pool, const Clock* clock);

  grpc::ServerBidiReactor<writeback::v1::AgentMessage, writeback::v1::ControlMessage>* Connect(
      grpc::CallbackServerContext* ctx) override;

  // Called with each authorized agent stream's identity and TLS peer (the
  // fleet model reads the certificate's expiry). Set once, before serving.
  using ConnectObserver =
      std::function<void(const std::string& agent_id, const grpc::AuthContext& peer)>;
  void SetConnectObserver(ConnectObserver fn) { on_connect_ = std::move(fn); }

 private:
  ConnectObserver on_connect_;
  const Authorizer* const authz_;
  Dispatcher* const dispatcher_;
  SessionRegistry* const sessions_;
  WorkerPool* const pool_;
  const Clock* const clock_;
};

}  // namespace wb::controlplane
