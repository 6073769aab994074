#include "agent/link/link.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/backoff/backoff.h"
#include "common/logging/logging.h"
#include "common/tls/tls.h"

namespace wb::agent {

using writeback::v1::AgentMessage;
using writeback::v1::ControlMessage;

namespace {

constexpr absl::Duration kDefaultHeartbeat = absl::Seconds(10);

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace

bool Link::IsRefusal(absl::StatusCode code) {
  return code == absl::StatusCode::kPermissionDenied ||
         code == absl::StatusCode::kFailedPrecondition ||
         code == absl::StatusCode::kUnauthenticated || code == absl::StatusCode::kInvalidArgument;
}

// One stream. Lives on the connection thread's stack; other threads reach it
// through Link::current_ (under Link::mu_) or get a pointer they must stop
// using before RunOnce returns (writer and heartbeat threads are joined).
struct Link::Connection {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<AgentMessage, ControlMessage>> stream;
  // Guards the fields below; cv signals any change of them.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<AgentMessage> outq;
  bool established = false;
  bool closing = false;
  absl::Duration heartbeat = kDefaultHeartbeat;
};

Link::Link(Options opts, Handler* handler) : opts_(std::move(opts)), handler_(handler) {}

Link::~Link() { Stop(); }

absl::Status Link::Start() {
  if (opts_.address.empty()) {
    return absl::InvalidArgumentError("controlplane_address: required");
  }
  // Fails early on unreadable TLS files or a missing pinned identity.
  auto creds = tls::MakeChannelCredentials(opts_.tls, opts_.controlplane_id);
  if (!creds.ok()) return creds.status();
  std::lock_guard<std::mutex> l(mu_);
  if (started_) return absl::FailedPreconditionError("link: already started");
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void Link::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    if (current_ != nullptr) current_->ctx.TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Link::Send(AgentMessage msg) {
  std::lock_guard<std::mutex> l(mu_);
  if (current_ == nullptr) return false;
  {
    std::lock_guard<std::mutex> cl(current_->mu);
    if (!current_->established || current_->closing) return false;
    current_->outq.push_back(std::move(msg));
  }
  current_->cv.notify_all();
  return true;
}

bool Link::connected() const {
  std::lock_guard<std::mutex> l(mu_);
  if (current_ == nullptr) return false;
  std::lock_guard<std::mutex> cl(current_->mu);
  return current_->established && !current_->closing;
}

int Link::attempts() const {
  std::lock_guard<std::mutex> l(mu_);
  return attempts_;
}

absl::Status Link::last_error() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_error_;
}

void Link::Loop() {
  Backoff backoff(opts_.reconnect_initial, opts_.reconnect_max);
  while (true) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) return;
      ++attempts_;
    }
    bool welcomed = false;
    absl::Status s = RunOnce(&welcomed);
    if (welcomed) backoff.Reset();
    const absl::Duration delay = backoff.Next();
    {
      std::lock_guard<std::mutex> l(mu_);
      last_error_ = s;
      if (stopping_) return;
    }
    if (IsRefusal(s.code())) {
      log::Error("the control plane refused this agent's stream; retrying",
                 {{"address", opts_.address},
                  {"code", absl::StatusCodeToString(s.code())},
                  {"message", s.message()},
                  {"retry_in", absl::FormatDuration(delay)}});
    } else {
      log::Warn("control plane stream ended; reconnecting",
                {{"address", opts_.address},
                 {"code", absl::StatusCodeToString(s.code())},
                 {"message", s.message()},
                 {"retry_in", absl::FormatDuration(delay)}});
    }
    std::unique_lock<std::mutex> l(mu_);
    if (cv_.wait_for(l, absl::ToChronoMilliseconds(delay), [this] { return stopping_; })) return;
  }
}

absl::Status Link::RunOnce(bool* welcomed) {
  auto creds = tls::MakeChannelCredentials(opts_.tls, opts_.controlplane_id);
  if (!creds.ok()) return creds.status();
  grpc::ChannelArguments args = tls::DefaultChannelArgs();
  // A fresh connection per attempt: our backoff decides when to retry, not a
  // subchannel shared with earlier attempts.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(opts_.address, *creds, args);
  auto stub = writeback::v1::AgentService::NewStub(channel);

  Connection c;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return absl::CancelledError("link stopping");
    current_ = &c;
  }
  c.stream = stub->Connect(&c.ctx);

  std::thread heartbeat([this, &c] { HeartbeatLoop(&c); });
  std::thread writer;
  absl::Status result;

  AgentMessage hello;
  *hello.mutable_hello() = handler_->MakeHello();
  if (auto proof = handler_->ProveHello(hello.hello()); !proof.payload().empty()) {
    *hello.mutable_connect_proof() = std::move(proof);
  }
  ControlMessage msg;
  if (!c.stream->Write(hello)) {
    result = absl::UnavailableError("could not send Hello");
  } else if (!c.stream->Read(&msg)) {
    result = absl::UnavailableError("stream closed before Welcome");
  } else if (!msg.has_welcome()) {
    result = absl::FailedPreconditionError("first control message is not a Welcome");
    c.ctx.TryCancel();  // the call is still open: end it
  } else {
    const writeback::v1::Welcome welcome = msg.welcome();
    std::vector<AgentMessage> first = handler_->OnConnected(welcome);
    {
      std::lock_guard<std::mutex> cl(c.mu);
      for (auto& m : first) c.outq.push_back(std::move(m));
      if (welcome.heartbeat_interval_seconds() > 0) {
        c.heartbeat = absl::Seconds(welcome.heartbeat_interval_seconds());
      }
      c.established = true;
    }
    c.cv.notify_all();
    *welcomed = true;
    log::Info("connected to the control plane",
              {{"address", opts_.address}, {"controlplane_id", welcome.controlplane_id()}});
    writer = std::thread([this, &c] { WriterLoop(&c); });
    while (c.stream->Read(&msg)) {
      switch (msg.msg_case()) {
        case ControlMessage::kTask:
          handler_->OnTask(msg.task());
          break;
        case ControlMessage::kResultAck:
          handler_->OnResultAck(msg.result_ack());
          break;
        case ControlMessage::kTrustPolicy:
          handler_->OnTrustPolicy(msg.trust_policy());
          break;
        case ControlMessage::kStatement:
          handler_->OnStatement(msg.statement());
          break;
        default:
          log::Warn("unexpected control message ignored",
                    {{"case", absl::StrCat(static_cast<int>(msg.msg_case()))}});
          break;
      }
    }
  }

  // Here the call is over: reads return false only once the control plane
  // (or the transport) ended it, and then writes fail too. It is not
  // cancelled on our side, or Finish would report our CANCELLED instead of
  // the control plane's status (a ban, an instance served by another agent,
  // a changed key...). Stop() and the Welcome timeout cancel on their own.
  {
    std::lock_guard<std::mutex> cl(c.mu);
    c.closing = true;
    c.established = false;
  }
  c.cv.notify_all();
  heartbeat.join();
  if (writer.joinable()) writer.join();
  grpc::Status status = c.stream->Finish();
  {
    std::lock_guard<std::mutex> l(mu_);
    current_ = nullptr;
  }
  if (!status.ok()) {
    result = FromGrpc(status);  // the control plane's code and message, as sent
  } else if (result.ok()) {
    result = absl::UnavailableError("stream ended by the control plane");
  }
  handler_->OnDisconnected(result);
  return result;
}

void Link::WriterLoop(Connection* c) {
  while (true) {
    AgentMessage msg;
    {
      std::unique_lock<std::mutex> cl(c->mu);
      c->cv.wait(cl, [c] { return c->closing || !c->outq.empty(); });
      if (c->closing) return;
      msg = std::move(c->outq.front());
      c->outq.pop_front();
    }
    if (!c->stream->Write(msg)) {
      // The call is over: the reader sees it end and reads its status (not
      // cancelled here, which would hide that status). Unsent messages are
      // recovered by redelivery (tasks) and the outbox (results).
      return;
    }
  }
}

void Link::HeartbeatLoop(Connection* c) {
  {
    std::unique_lock<std::mutex> cl(c->mu);
    if (!c->cv.wait_for(cl, absl::ToChronoMilliseconds(opts_.welcome_timeout),
                        [c] { return c->closing || c->established; })) {
      log::Warn("no Welcome from the control plane in time; closing the stream",
                {{"address", opts_.address}});
      c->ctx.TryCancel();
      return;
    }
    if (c->closing) return;
  }
  while (true) {
    absl::Duration interval;
    {
      std::unique_lock<std::mutex> cl(c->mu);
      interval = c->heartbeat;
      if (c->cv.wait_for(cl, absl::ToChronoMilliseconds(interval), [c] { return c->closing; })) {
        return;
      }
    }
    AgentMessage hb;
    *hb.mutable_heartbeat() = handler_->MakeHeartbeat();
    {
      std::lock_guard<std::mutex> cl(c->mu);
      if (c->closing) return;
      c->outq.push_back(std::move(hb));
    }
    c->cv.notify_all();
  }
}

}  // namespace wb::agent
