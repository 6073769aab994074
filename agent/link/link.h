// The agent's only connection: one AgentService.Connect stream to the
// control plane, dialled out over mTLS (nothing listens on the agent host).
//
// Per connection: the agent sends Hello first and waits for Welcome; then it
// sends Heartbeats every Welcome.heartbeat_interval_seconds, TaskAcks and
// results (Send), and hands every task and ResultAck it receives to the
// Handler. The channel pins the control plane's SPIFFE ID
// (wb::tls::MakeChannelCredentials). When the stream ends for any reason,
// the link reconnects after a jittered exponential backoff (wb::Backoff),
// which resets after a successful Welcome.
//
// Threads: one connection thread (reads, and calls Handler::OnTask /
// OnResultAck / OnConnected on it), one writer thread and one heartbeat
// thread per connection. Send, connected, Stop may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "writeback/v1/agent_service.grpc.pb.h"
#include "writeback/v1/agent_service.pb.h"
#include "writeback/v1/config.pb.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace wb::agent {

class Link {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // The first message of every stream (called once per connection attempt).
    virtual writeback::v1::Hello MakeHello() = 0;
    // The signed proof of `hello` sent with it (common/relay): what
    // authenticates the agent when relays forward its stream. Default: none.
    virtual writeback::v1::SignedEnvelope ProveHello(const writeback::v1::Hello& hello) {
      return {};
    }
    // Called every heartbeat interval on the heartbeat thread (may run
    // connector health checks).
    virtual writeback::v1::Heartbeat MakeHeartbeat() = 0;
    // Welcome received; the returned messages (results waiting in the
    // outbox) are sent first. Called on the connection thread.
    virtual std::vector<writeback::v1::AgentMessage> OnConnected(
        const writeback::v1::Welcome& welcome) = 0;
    // A task arrived. May block (back-pressure): no further message is read
    // from the stream until it returns.
    virtual void OnTask(const writeback::v1::SignedEnvelope& task) = 0;
    virtual void OnResultAck(const writeback::v1::ResultAck& ack) = 0;
    // A trust policy pushed by the control plane (the agent verifies it).
    virtual void OnTrustPolicy(const writeback::v1::SignedEnvelope& policy) {}
    // A statement that tasks on this stream name by digest
    // (ControlMessage.statement), before the first of them.
    virtual void OnStatement(const std::string& statement) {}
    // The stream ended: `why` is the control plane's status when it ended it.
    virtual void OnDisconnected(const absl::Status& why) {}
  };

  struct Options {
    std::string address;          // host:port of the control plane
    std::string controlplane_id;  // pinned SPIFFE ID of the server
    writeback::v1::TlsConfig tls;
    absl::Duration reconnect_initial = absl::Milliseconds(500);
    absl::Duration reconnect_max = absl::Seconds(30);
    // Give up on a connection that sends no Welcome within this time.
    absl::Duration welcome_timeout = absl::Seconds(30);
  };

  // `handler` is not owned and must outlive the link.
  Link(Options opts, Handler* handler);
  ~Link();  // calls Stop()
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // Checks the TLS configuration and starts the connection thread; returns
  // at once.
  absl::Status Start();
  // Closes the stream and joins every thread. Idempotent.
  void Stop();

  // Queues `msg` for the current connection. Returns false (and drops it)
  // when no stream is established: results stay in the journal outbox and
  // are sent again by OnConnected.
  bool Send(writeback::v1::AgentMessage msg);

  // A stream is established (Welcome received).
  bool connected() const;
  // Connection attempts so far, and the last reason a stream ended: the
  // control plane's own status when it ended the stream (e.g.
  // PERMISSION_DENIED "agent ... is banned"), CANCELLED only after Stop.
  int attempts() const;
  absl::Status last_error() const;

  // A stream end that the control plane decided about this agent (a ban, a
  // changed key, an instance served by another agent), as opposed to an
  // outage: PERMISSION_DENIED, FAILED_PRECONDITION, UNAUTHENTICATED,
  // INVALID_ARGUMENT.
  static bool IsRefusal(absl::StatusCode code);

 private:
  struct Connection;
  void Loop();
  absl::Status RunOnce(bool* welcomed);
  void WriterLoop(Connection* c);
  void HeartbeatLoop(Connection* c);

  const Options opts_;
  Handler* const handler_;

  // Guards the fields below; cv_ signals stopping_. Lock order: mu_, then
  // Connection::mu.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool stopping_ = false;
  Connection* current_ = nullptr;
  int attempts_ = 0;
  absl::Status last_error_;
  std::thread thread_;
};

}  // namespace wb::agent
