#include "tests/integration/fake_controlplane.h"

#include <atomic>
#include <optional>
#include <thread>

#include "common/tls/tls.h"

namespace wb::e2e {

FakeControlPlane::FakeControlPlane(const writeback::v1::TlsConfig& tls) {
  auto creds = tls::MakeServerCredentials(tls, /*require_client_cert=*/true);
  if (!creds.ok()) std::abort();
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:0", *creds, &port_);
  b.RegisterService(this);
  server_ = b.BuildAndStart();
  if (server_ == nullptr) std::abort();
}

FakeControlPlane::~FakeControlPlane() {
  {
    absl::MutexLock l(&mu_);
    shutting_down_ = true;
  }
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

void FakeControlPlane::Push(const writeback::v1::SignedEnvelope& task) {
  writeback::v1::ControlMessage m;
  *m.mutable_task() = task;
  absl::MutexLock l(&mu_);
  queue_.push_back(std::move(m));
}

std::vector<writeback::v1::SignedEnvelope> FakeControlPlane::results() const {
  absl::MutexLock l(&mu_);
  return results_;
}

std::vector<writeback::v1::Result> FakeControlPlane::parsed_results() const {
  std::vector<writeback::v1::Result> out;
  for (const auto& env : results()) {
    writeback::v1::Result r;
    r.ParseFromString(env.payload());
    out.push_back(r);
  }
  return out;
}

bool FakeControlPlane::WaitResults(size_t n, absl::Duration timeout) const {
  auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return results_.size() >= n; };
  absl::MutexLock l(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool FakeControlPlane::connected() const {
  absl::MutexLock l(&mu_);
  return streams_ > 0;
}

std::string FakeControlPlane::hello_agent_id() const {
  absl::MutexLock l(&mu_);
  return hello_agent_id_;
}

std::string FakeControlPlane::hello_result_key() const {
  absl::MutexLock l(&mu_);
  return hello_result_key_;
}

grpc::Status FakeControlPlane::Connect(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<writeback::v1::ControlMessage, writeback::v1::AgentMessage>* stream) {
  writeback::v1::AgentMessage in;
  if (!stream->Read(&in) || !in.has_hello()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "hello first");
  }
  {
    absl::MutexLock l(&mu_);
    hello_agent_id_ = in.hello().agent_id();
    hello_result_key_ = in.hello().result_public_key();
  }
  writeback::v1::ControlMessage welcome;
  welcome.mutable_welcome()->set_controlplane_id("fake");
  welcome.mutable_welcome()->set_heartbeat_interval_seconds(1);
  welcome.mutable_welcome()->set_max_in_flight(64);
  if (!stream->Write(welcome)) return grpc::Status::OK;
  {
    absl::MutexLock l(&mu_);
    ++streams_;
  }
  // Writer: pushes queued envelopes; the reader below runs on this thread.
  std::atomic<bool> done{false};
  std::thread writer([&] {
    while (!done.load()) {
      std::optional<writeback::v1::ControlMessage> next;
      {
        absl::MutexLock l(&mu_);
        auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
          return !queue_.empty() || shutting_down_;
        };
        mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(50));
        if (shutting_down_) break;
        if (!queue_.empty()) {
          next = queue_.front();
          queue_.pop_front();
        }
      }
      if (next && !stream->Write(*next)) {
        // This stream is gone: the message goes to the next one.
        absl::MutexLock l(&mu_);
        queue_.push_front(std::move(*next));
        break;
      }
    }
  });
  while (stream->Read(&in)) {
    if (in.has_result()) {
      writeback::v1::Result r;
      r.ParseFromString(in.result().payload());
      writeback::v1::ControlMessage ack;
      ack.mutable_result_ack()->set_task_id(r.task_id());
      ack.mutable_result_ack()->set_accepted(true);
      absl::MutexLock l(&mu_);
      results_.push_back(in.result());
      queue_.push_back(std::move(ack));  // written by the writer thread only
    }
  }
  done = true;
  writer.join();
  // A counter, not a flag: a restarted agent's new stream may open before
  // the server has finished the old one.
  absl::MutexLock l(&mu_);
  --streams_;
  return grpc::Status::OK;
}

}  // namespace wb::e2e
