#include "controlplane/api/agent_service.h"

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/logging/logging.h"
#include "common/relay/relay.h"
#include "controlplane/rpc/grpc_status.h"
#include "writeback/v1/trust.pb.h"

namespace wb::controlplane {

using writeback::v1::AgentMessage;
using writeback::v1::ControlMessage;

namespace {

class RejectedStream final : public grpc::ServerBidiReactor<AgentMessage, ControlMessage> {
 public:
  explicit RejectedStream(grpc::Status s) { Finish(std::move(s)); }
  void OnDone() override { delete this; }
};

// One agent stream. Lifetime: reference counted; gRPC holds one reference
// until OnDone, and every scheduled drain of the executor holds one. The
// session registry holds a raw pointer, removed by the executor (after
// OnDone) before the last reference can go.
//
// Rules that keep it safe:
//   - gRPC calls (StartRead/StartWrite/Finish) are never made with mu_ held:
//     a reaction may run inline inside them.
//   - After finish_ is set nothing new is started; Finish is called once,
//     when no write is outstanding and no read is being started.
class AgentStream final : public grpc::ServerBidiReactor<AgentMessage, ControlMessage>,
                          public AgentSession {
 public:
  AgentStream(Dispatcher* dispatcher, SessionRegistry* sessions, WorkerPool* pool,
              const Clock* clock, std::string peer_id, std::vector<std::string> relay_path)
      : dispatcher_(dispatcher),
        sessions_(sessions),
        pool_(pool),
        clock_(clock),
        peer_id_(std::move(peer_id)),
        relay_path_(std::move(relay_path)),
        max_in_flight_(dispatcher->options().max_in_flight),
        redeliver_after_ms_(int64_t{dispatcher->options().redelivery_timeout_seconds} * 1000),
        max_queued_writes_(max_in_flight_ + 16) {
    StartRead(&in_);
  }

  // ---- gRPC reactions: they only queue work. ----

  void OnReadDone(bool ok) override {
    if (!ok) {  // the agent closed its side, or the call is gone
      Post([this] { RequestFinish(grpc::Status::OK, "agent closed the stream"); });
      return;
    }
    auto msg = std::make_shared<AgentMessage>(std::move(in_));
    in_.Clear();
    Post([this, msg] {
      Handle(*msg);
      ContinueReading();
    });
  }

  void OnWriteDone(bool ok) override {
    const ControlMessage* next = nullptr;
    std::optional<grpc::Status> finish;
    bool resume_reading = false;
    {
      absl::MutexLock l(&mu_);
      writes_.pop_front();
      writing_ = false;
      if (!ok && !finish_) {
        finish_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed");
        finish_reason_ = "write to the agent failed";
      }
      if (finish_) {
        writes_.clear();
        finish = TakeFinishLocked();
      } else {
        if (!writes_.empty()) {
          writing_ = true;
          next = &writes_.front();
        }
        if (read_paused_ && writes_.size() <= max_queued_writes_ / 2) {
          read_paused_ = false;
          resume_reading = true;
          ++starting_reads_;
        }
      }
    }
    if (next != nullptr) StartWrite(next);
    if (resume_reading) {
      StartRead(&in_);
      AfterStartRead();
    }
    if (finish) Finish(*finish);
  }

  void OnCancel() override {
    Post([this] {
      RequestFinish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"), "call cancelled");
    });
  }

  void OnDone() override {
    Post([this] {
      if (registered_) sessions_->Unregister(agent_id_, this);
      registered_ = false;
      log::Info("agent stream closed", {{"agent_id", agent_id_.empty() ? peer_id_ : agent_id_},
                                        {"reason", finish_reason_for_log()}});
    });
    Unref();
  }

  // ---- AgentSession (called under the registry lock: only queue). ----

  void Wake() override {
    {
      absl::MutexLock l(&mu_);
      if (pump_pending_ || finish_) return;
      pump_pending_ = true;
    }
    Post([this] {
      {
        absl::MutexLock l(&mu_);
        pump_pending_ = false;
      }
      Pump();
    });
  }

  void End(const absl::Status& why) override {
    grpc::Status s = ToGrpcStatus(why);
    std::string reason(why.message());
    Post([this, s, reason] { RequestFinish(s, reason); });
  }

 private:
  ~AgentStream() override = default;

  void Unref() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

  // Serial executor: jobs run one at a time, in order, on the pool.
  void Post(std::function<void()> job) {
    bool schedule = false;
    {
      absl::MutexLock l(&mu_);
      jobs_.push_back(std::move(job));
      if (!draining_) {
        draining_ = true;
        refs_.fetch_add(1);
        schedule = true;
      }
    }
    if (schedule) pool_->Schedule([this] { Drain(); });
  }

  void Drain() {
    while (true) {
      std::function<void()> job;
      {
        absl::MutexLock l(&mu_);
        if (jobs_.empty()) {
          draining_ = false;
          break;
        }
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
    Unref();
  }

  bool finishing() {
    absl::MutexLock l(&mu_);
    return finish_.has_value();
  }

  std::string finish_reason_for_log() {
    absl::MutexLock l(&mu_);
    return finish_reason_;
  }

  // Finish may be called once, and only while no write is outstanding and
  // no read is being started (the call may be gone right after Finish).
  std::optional<grpc::Status> TakeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!finish_ || finish_called_ || writing_ || starting_reads_ > 0) return std::nullopt;
    finish_called_ = true;
    return *finish_;
  }

  void AfterStartRead() {
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock l(&mu_);
      --starting_reads_;
      finish = TakeFinishLocked();
    }
    if (finish) Finish(*finish);
  }

  // Ends the stream with `s` once the write in progress (if any) is done;
  // queued writes are dropped (tasks are sent again on the next stream).
  void RequestFinish(const grpc::Status& s, absl::string_view reason) {
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock l(&mu_);
      if (finish_) return;
      finish_ = s;
      finish_reason_ = std::string(reason);
      while (writes_.size() > (writing_ ? 1u : 0u)) writes_.pop_back();
      finish = TakeFinishLocked();
    }
    if (!s.ok()) {
      log::Info("agent stream ending",
                {{"agent_id", agent_id_.empty() ? peer_id_ : agent_id_},
                 {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code()))},
                 {"reason", reason}});
    }
    if (finish) Finish(*finish);
  }

  void QueueWrites(std::vector<ControlMessage> msgs) {
    if (msgs.empty()) return;
    const ControlMessage* start = nullptr;
    {
      absl::MutexLock l(&mu_);
      if (finish_) return;
      for (auto& m : msgs) writes_.push_back(std::move(m));
      if (!writing_) {
        writing_ = true;
        start = &writes_.front();  // deque references survive push_back
      }
    }
    if (start != nullptr) StartWrite(start);
  }

  void ContinueReading() {
    {
      absl::MutexLock l(&mu_);
      if (finish_) return;
      if (writes_.size() > max_queued_writes_) {
        read_paused_ = true;
        return;
      }
      ++starting_reads_;
    }
    StartRead(&in_);
    AfterStartRead();
  }

  // ---- Executor jobs. ----

  void Handle(const AgentMessage& m) {
    if (finishing()) return;
    if (!welcomed_) {
      HandleHello(m);
      return;
    }
    switch (m.msg_case()) {
      case AgentMessage::kHello:
        RequestFinish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                   "hello: already received on this stream"),
                      "second hello");
        return;
      case AgentMessage::kHeartbeat:
        if (auto s = dispatcher_->Heartbeat(agent_id_, m.heartbeat()); !s.ok()) {
          log::Warn("heartbeat not recorded", {{"agent_id", agent_id_}, {"error", s.message()}});
        }
        return;
      case AgentMessage::kTaskAck:
        if (auto s = dispatcher_->AckTask(agent_id_, m.task_ack().task_id()); !s.ok()) {
          log::Warn("task ack ignored", {{"agent_id", agent_id_},
                                         {"task_id", m.task_ack().task_id()},
                                         {"error", s.message()}});
        }
        return;
      case AgentMessage::kResult: {
        writeback::v1::ResultAck ack = dispatcher_->IntakeResult(agent_id_, m.result());
        if (ack.accepted()) {
          in_flight_.erase(ack.task_id());
          sent_at_.erase(ack.task_id());
        }
        ControlMessage out;
        *out.mutable_result_ack() = ack;
        std::vector<ControlMessage> msgs;
        msgs.push_back(std::move(out));
        QueueWrites(std::move(msgs));
        if (ack.accepted()) Pump();
        return;
      }
      case AgentMessage::MSG_NOT_SET:
        break;
    }
    log::Debug("unknown agent message ignored", {{"agent_id", agent_id_}});
  }

  void HandleHello(const AgentMessage& m) {
    if (!m.has_hello()) {
      RequestFinish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                 "the first message on the stream must be hello"),
                    "no hello");
      return;
    }
    StreamOrigin origin;
    origin.peer_id = peer_id_;
    origin.relay_path = relay_path_;
    origin.connect_proof = m.connect_proof();
    auto welcome = dispatcher_->Hello(origin, m.hello());
    if (!welcome.ok()) {
      log::Warn("hello refused", {{"agent_id", m.hello().agent_id()},
                                  {"peer", peer_id_},
                                  {"error", welcome.status().message()}});
      RequestFinish(ToGrpcStatus(welcome.status()), welcome.status().message());
      return;
    }
    welcomed_ = true;
    // Direct: the certificate's identity (Hello checked equal); relayed: the
    // identity its connect proof established.
    agent_id_ = m.hello().agent_id();
    if (finishing()) return;
    // If the call ends after this point, OnDone's job (queued behind this
    // one) unregisters.
    sessions_->Register(agent_id_, this, clock_->NowUnixMs(), relay_path_);
    registered_ = true;
    log::Info("agent stream open",
              {{"agent_id", agent_id_},
               {"via", relay_path_.empty() ? "direct" : relay::FormatRelayPath(relay_path_)}});
    if (welcome->has_trust_policy()) {
      writeback::v1::TrustPolicy sent;  // the control plane's own, verified copy
      if (sent.ParseFromString(welcome->trust_policy().payload())) {
        sent_policy_version_ = sent.version();
      }
    }
    ControlMessage out;
    *out.mutable_welcome() = *std::move(welcome);
    std::vector<ControlMessage> msgs;
    msgs.push_back(std::move(out));
    QueueWrites(std::move(msgs));
    Pump();
  }

  // Sends again, on this stream, tasks sent more than the delivery timeout
  // ago that still have no stored result (a lost message, an agent that
  // restarted its executor without reconnecting...).
  void RedeliverOverdue() {
    if (redeliver_after_ms_ <= 0 || sent_at_.empty()) return;
    const int64_t now = clock_->NowUnixMs();
    std::vector<std::string> overdue;
    for (const auto& [id, at] : sent_at_) {
      if (now - at >= redeliver_after_ms_) overdue.push_back(id);
    }
    if (overdue.empty()) return;
    auto tasks = dispatcher_->Redeliver(agent_id_, overdue);
    if (!tasks.ok()) {
      log::Error("cannot read overdue tasks",
                 {{"agent_id", agent_id_}, {"error", tasks.status().message()}});
      return;
    }
    absl::flat_hash_set<std::string> still_open;
    std::vector<ControlMessage> msgs;
    // A task the agent did not answer may have lacked its statement (the
    // agent takes no task whose statement did not arrive): sent again.
    for (const auto& t : *tasks) statements_sent_.erase(t.statement_digest());
    for (auto& t : *tasks) {
      if (!StatementFirst(t, &msgs)) continue;
      still_open.insert(t.task_id());
      sent_at_[t.task_id()] = now;
      ControlMessage out;
      *out.mutable_task() = std::move(*t.mutable_signed_task());
      msgs.push_back(std::move(out));
    }
    for (const std::string& id : overdue) {
      if (still_open.contains(id)) continue;
      in_flight_.erase(id);  // finished by other means
      sent_at_.erase(id);
    }
    QueueWrites(std::move(msgs));
  }

  // A task naming its statement by digest goes after the statement, sent
  // once per stream (the agent keeps the last StatementCache::
  // kDefaultMaxEntries it received; this stream remembers fewer, and
  // forgets all at once when full, so it never counts on one the agent
  // dropped). False: the statement cannot be read; the task stays queued.
  bool StatementFirst(const writeback::v1::TaskRecord& t, std::vector<ControlMessage>* msgs) {
    const std::string& digest = t.statement_digest();
    if (digest.empty() || statements_sent_.contains(digest)) return true;
    auto bytes = dispatcher_->StatementOf(t.decision_id(), digest);
    if (!bytes.ok()) {
      log::Error("cannot read the statement a task names", {{"task_id", t.task_id()},
                                                            {"decision_id", t.decision_id()},
                                                            {"error", bytes.status().message()}});
      return false;
    }
    if (statements_sent_.size() >= kStatementsRemembered) statements_sent_.clear();
    statements_sent_.insert(digest);
    ControlMessage out;
    out.set_statement(*std::move(bytes));
    msgs->push_back(std::move(out));
    return true;
  }

  // A policy published since this stream last sent one (Publish wakes
  // every stream): sent before any further task.
  void SendNewerPolicy() {
    auto p = dispatcher_->trust_policy();
    if (p == nullptr || p->version() <= sent_policy_version_) return;
    sent_policy_version_ = p->version();
    ControlMessage out;
    *out.mutable_trust_policy() = p->envelope;
    std::vector<ControlMessage> msgs;
    msgs.push_back(std::move(out));
    QueueWrites(std::move(msgs));
    log::Info("trust policy sent",
              {{"agent_id", agent_id_}, {"version", absl::StrCat(sent_policy_version_)}});
  }

  // Sends queued tasks while in-flight slots are free, then asks for a wake
  // at the next delivery timeout.
  void Pump() {
    if (!welcomed_ || finishing()) return;
    PumpTasks();
    AskForNextTimeout();
  }

  void PumpTasks() {
    SendNewerPolicy();
    RedeliverOverdue();
    if (in_flight_.size() >= max_in_flight_) {
      in_flight_ = dispatcher_->StillOpen(in_flight_);
      for (auto it = sent_at_.begin(); it != sent_at_.end();) {
        if (in_flight_.contains(it->first)) {
          ++it;
        } else {
          sent_at_.erase(it++);
        }
      }
    }
    if (in_flight_.size() >= max_in_flight_) return;
    auto tasks = dispatcher_->NextTasks(agent_id_, in_flight_, max_in_flight_ - in_flight_.size());
    if (!tasks.ok()) {
      log::Error("cannot read the agent's outbox",
                 {{"agent_id", agent_id_}, {"error", tasks.status().message()}});
      return;
    }
    std::vector<ControlMessage> msgs;
    msgs.reserve(tasks->size());
    const int64_t now = clock_->NowUnixMs();
    for (auto& t : *tasks) {
      if (!StatementFirst(t, &msgs)) continue;
      in_flight_.insert(t.task_id());
      sent_at_[t.task_id()] = now;
      log::Debug(
          "task sent",
          {{"task_id", t.task_id()}, {"decision_id", t.decision_id()}, {"agent_id", agent_id_}});
      ControlMessage out;
      *out.mutable_task() = std::move(*t.mutable_signed_task());
      msgs.push_back(std::move(out));
    }
    QueueWrites(std::move(msgs));
  }

  // Asks the registry for a wake at the earliest delivery timeout of the
  // tasks in flight (none when nothing is in flight): the periodic tick
  // wakes only streams with a timeout due.
  void AskForNextTimeout() {
    if (!registered_) return;
    int64_t due = 0;
    if (redeliver_after_ms_ > 0) {
      for (const auto& [id, at] : sent_at_) {
        if (due == 0 || at + redeliver_after_ms_ < due) due = at + redeliver_after_ms_;
      }
    }
    sessions_->WakeAt(agent_id_, this, due);
  }

  Dispatcher* const dispatcher_;
  SessionRegistry* const sessions_;
  WorkerPool* const pool_;
  const Clock* const clock_;
  const std::string peer_id_;
  const std::vector<std::string> relay_path_;
  const size_t max_in_flight_;
  const int64_t redeliver_after_ms_;
  uint64_t sent_policy_version_ = 0;  // on the stream's executor only
  static constexpr size_t kStatementsRemembered = 256;
  absl::flat_hash_set<std::string> statements_sent_;  // digests; on the stream's executor only
  const size_t max_queued_writes_;

  std::atomic<int> refs_{1};  // gRPC's, released in OnDone
  AgentMessage in_;           // read buffer; one read outstanding at a time

  absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool pump_pending_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<ControlMessage> writes_ ABSL_GUARDED_BY(mu_);  // front = being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_ ABSL_GUARDED_BY(mu_);
  std::string finish_reason_ ABSL_GUARDED_BY(mu_);
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  int starting_reads_ ABSL_GUARDED_BY(mu_) = 0;

  // Executor-only state.
  bool welcomed_ = false;
  bool registered_ = false;
  std::string agent_id_;
  absl::flat_hash_set<std::string> in_flight_;
  absl::flat_hash_map<std::string, int64_t> sent_at_;  // in_flight_ -> when sent (ms)
};

}  // namespace

AgentServiceImpl::AgentServiceImpl(const Authorizer* authz, Dispatcher* dispatcher,
                                   SessionRegistry* sessions, WorkerPool* pool, const Clock* clock)
    : authz_(authz), dispatcher_(dispatcher), sessions_(sessions), pool_(pool), clock_(clock) {}

grpc::ServerBidiReactor<AgentMessage, ControlMessage>* AgentServiceImpl::Connect(
    grpc::CallbackServerContext* ctx) {
  auto caller = authz_->Check(kConnectMethod, *ctx);
  if (!caller.ok()) {
    log::Warn("agent stream refused",
              {{"peer", tls::PeerSpiffeId(*ctx)}, {"error", caller.status().message()}});
    return new RejectedStream(ToGrpcStatus(caller.status()));
  }
  if (on_connect_ && ctx->auth_context() != nullptr) {
    on_connect_(caller->ToString(), *ctx->auth_context());
  }
  std::vector<std::string> relay_path;
  const auto& md = ctx->client_metadata();
  if (auto h = md.find(relay::kRelayPathHeader); h != md.end()) {
    auto path = relay::ParseRelayPath(absl::string_view(h->second.data(), h->second.size()),
                                      caller->trust_domain);
    if (!path.ok()) {
      log::Warn("agent stream refused",
                {{"peer", caller->ToString()}, {"error", path.status().message()}});
      return new RejectedStream(ToGrpcStatus(path.status()));
    }
    relay_path = *std::move(path);
  }
  return new AgentStream(dispatcher_, sessions_, pool_, clock_, caller->ToString(),
                         std::move(relay_path));
}

}  // namespace wb::controlplane
