// Test helper: an in-process AgentService server (a fake control plane)
// speaking the real protocol over real mTLS. It records what agents send,
// answers Hello with Welcome, can push signed tasks and acknowledges results
// (automatically or on demand). One agent stream at a time is enough for
// agent tests. Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/tls/tls.h"
#include "writeback/v1/agent_service.grpc.pb.h"
#include "writeback/v1/decision.pb.h"

namespace wb::agent::testing {

class FakeControlPlane final : public writeback::v1::AgentService::Service {
 public:
  struct Options {
    std::string controlplane_id = "spiffe://writeback.test/controlplane/cp";
    uint32_t heartbeat_seconds = 1;
    uint32_t max_in_flight = 16;
    bool auto_ack = true;  // answer every result with ResultAck{accepted}
    // With auto_ack: answer every result with this refusal instead
    // (accepted = false), e.g. RESULT_REFUSAL_UNKNOWN_TASK.
    writeback::v1::ResultRefusal refuse_results = writeback::v1::RESULT_REFUSAL_UNSPECIFIED;
    // Not OK: every stream ends with this status right after its Hello, as
    // the control plane refuses a banned agent or a changed key.
    grpc::Status refuse_hello = grpc::Status::OK;
  };

  explicit FakeControlPlane(Options opts) : opts_(std::move(opts)) {}
  FakeControlPlane() : FakeControlPlane(Options()) {}
  ~FakeControlPlane() override { Stop(); }

  // Listens on 127.0.0.1:`port` (0 = pick one) with the control plane's
  // certificate, requiring client certificates.
  absl::Status Start(const writeback::v1::TlsConfig& tls, int port = 0) {
    auto creds = wb::tls::MakeServerCredentials(tls, /*require_client_cert=*/true);
    if (!creds.ok()) return creds.status();
    grpc::ServerBuilder b;
    b.AddListeningPort(absl::StrCat("127.0.0.1:", port), *creds, &port_);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
    if (server_ == nullptr || port_ == 0) return absl::UnavailableError("fake control plane: bind");
    return absl::OkStatus();
  }

  // Cancels the open stream (as a crash would) and stops listening.
  void Stop() {
    if (server_ == nullptr) return;
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
    server_.reset();
  }

  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  // Sends `task` on the current stream, or on the next one if none is open.
  void SendTask(const writeback::v1::SignedEnvelope& task) {
    writeback::v1::ControlMessage m;
    *m.mutable_task() = task;
    std::lock_guard<std::mutex> l(mu_);
    outq_.push_back(std::move(m));
    cv_.notify_all();
  }
  void AckResult(const std::string& task_id, bool accepted = true) {
    writeback::v1::ControlMessage m;
    m.mutable_result_ack()->set_task_id(task_id);
    m.mutable_result_ack()->set_accepted(accepted);
    std::lock_guard<std::mutex> l(mu_);
    outq_.push_back(std::move(m));
    cv_.notify_all();
  }

  std::vector<writeback::v1::Hello> hellos() const {
    std::lock_guard<std::mutex> l(mu_);
    return hellos_;
  }
  std::vector<std::string> peers() const {
    std::lock_guard<std::mutex> l(mu_);
    return peers_;
  }
  std::vector<writeback::v1::SignedEnvelope> results() const {
    std::lock_guard<std::mutex> l(mu_);
    return results_;
  }
  std::vector<std::string> acks() const {
    std::lock_guard<std::mutex> l(mu_);
    return acks_;
  }
  std::vector<writeback::v1::Heartbeat> heartbeats() const {
    std::lock_guard<std::mutex> l(mu_);
    return heartbeats_;
  }
  bool stream_open() const {
    std::lock_guard<std::mutex> l(mu_);
    return streams_ > 0;
  }

  grpc::Status Connect(grpc::ServerContext* ctx,
                       grpc::ServerReaderWriter<writeback::v1::ControlMessage,
                                                writeback::v1::AgentMessage>* stream) override {
    writeback::v1::AgentMessage first;
    if (!stream->Read(&first) || !first.has_hello()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "expected Hello first");
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      hellos_.push_back(first.hello());
      peers_.push_back(wb::tls::PeerSpiffeId(*ctx));
      if (!opts_.refuse_hello.ok()) return opts_.refuse_hello;
      ++streams_;
    }
    writeback::v1::ControlMessage welcome;
    welcome.mutable_welcome()->set_controlplane_id(opts_.controlplane_id);
    welcome.mutable_welcome()->set_heartbeat_interval_seconds(opts_.heartbeat_seconds);
    welcome.mutable_welcome()->set_max_in_flight(opts_.max_in_flight);
    bool done = !stream->Write(welcome);

    std::thread reader([&] {
      writeback::v1::AgentMessage m;
      while (stream->Read(&m)) {
        std::lock_guard<std::mutex> l(mu_);
        switch (m.msg_case()) {
          case writeback::v1::AgentMessage::kResult: {
            results_.push_back(m.result());
            if (opts_.auto_ack) {
              writeback::v1::Result r;
              r.ParseFromString(m.result().payload());
              writeback::v1::ControlMessage ack;
              ack.mutable_result_ack()->set_task_id(r.task_id());
              const bool refuse = opts_.refuse_results != writeback::v1::RESULT_REFUSAL_UNSPECIFIED;
              ack.mutable_result_ack()->set_accepted(!refuse);
              if (refuse) {
                ack.mutable_result_ack()->set_refusal(opts_.refuse_results);
                ack.mutable_result_ack()->set_error("result.task_id: unknown task");
              }
              outq_.push_back(std::move(ack));
              cv_.notify_all();
            }
            break;
          }
          case writeback::v1::AgentMessage::kTaskAck:
            acks_.push_back(m.task_ack().task_id());
            break;
          case writeback::v1::AgentMessage::kHeartbeat:
            heartbeats_.push_back(m.heartbeat());
            break;
          default:
            break;
        }
      }
      std::lock_guard<std::mutex> l(mu_);
      reader_done_ = true;
      cv_.notify_all();
    });

    while (!done) {
      writeback::v1::ControlMessage out;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [this] { return reader_done_ || !outq_.empty(); });
        if (reader_done_) break;
        out = std::move(outq_.front());
        outq_.pop_front();
      }
      done = !stream->Write(out);
    }
    ctx->TryCancel();
    reader.join();
    std::lock_guard<std::mutex> l(mu_);
    reader_done_ = false;
    --streams_;
    return grpc::Status::OK;
  }

 private:
  const Options opts_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  mutable std::mutex mu_;  // guards the fields below; cv_ signals outq_/reader_done_
  std::condition_variable cv_;
  std::deque<writeback::v1::ControlMessage> outq_;
  std::vector<writeback::v1::Hello> hellos_;
  std::vector<std::string> peers_;
  std::vector<writeback::v1::SignedEnvelope> results_;
  std::vector<std::string> acks_;
  std::vector<writeback::v1::Heartbeat> heartbeats_;
  int streams_ = 0;
  bool reader_done_ = false;
};

}  // namespace wb::agent::testing
