#include "bench/sim_agent.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/executor/executor.h"
#include "common/protocol/features.h"
#include "common/relay/relay.h"
#include "common/tls/tls.h"

namespace wb::bench {

using writeback::v1::AgentMessage;
using writeback::v1::ControlMessage;
using writeback::v1::SignedEnvelope;

// ---------------------------------------------------------------- WorkerPool

WorkerPool::WorkerPool(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::Post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> l(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void WorkerPool::Loop() {
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

// ------------------------------------------------------------------- History

// What the agent's journal answers to the checks, in memory.
class SimAgent::History : public agent::TaskHistory {
 public:
  absl::StatusOr<std::optional<agent::SeenTask>> FindTask(
      absl::string_view task_id) const override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return std::optional<agent::SeenTask>();
    return std::optional<agent::SeenTask>(it->second);
  }
  absl::StatusOr<uint64_t> AppliedVersion(absl::string_view instance,
                                          absl::string_view object) const override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = versions_.find(absl::StrCat(instance, "\n", object));
    return it == versions_.end() ? 0 : it->second;
  }
  void Done(const std::string& task_id, const std::string& digest, const SignedEnvelope& result,
            const std::string& instance, const std::string& object, uint64_t version) {
    std::lock_guard<std::mutex> l(mu_);
    agent::SeenTask& t = tasks_[task_id];
    t.state = agent::SeenTask::State::kDone;
    t.task_digest = digest;
    t.signed_result = result;
    if (version > 0) {
      uint64_t& v = versions_[absl::StrCat(instance, "\n", object)];
      v = std::max(v, version);
    }
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, agent::SeenTask, std::less<>> tasks_;
  std::map<std::string, uint64_t> versions_;
};

// -------------------------------------------------------------------- Stream

// One Connect call. Deletes itself in OnDone, after telling the agent.
// Writes go through a queue (one write in flight at a time); a read is
// always outstanding, so OnDone cannot run before OnReadDone(false) has
// marked the stream finished: no write starts after that.
class SimAgent::Stream : public grpc::ClientBidiReactor<AgentMessage, ControlMessage> {
 public:
  explicit Stream(SimAgent* agent) : agent_(agent) {}

  void Begin(writeback::v1::AgentService::Stub* stub, AgentMessage first) {
    stub->async()->Connect(&ctx_, this);
    StartRead(&in_);
    Enqueue(std::move(first));
    StartCall();
  }
  void Cancel() { ctx_.TryCancel(); }

  // False if the stream is finished (the message is dropped).
  bool Enqueue(AgentMessage msg) {
    std::lock_guard<std::mutex> l(mu_);
    if (finished_) return false;
    out_.push_back(std::move(msg));
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
    return true;
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> l(mu_);
    out_.pop_front();
    if (!ok) finished_ = true;
    if (finished_ || out_.empty()) {
      writing_ = false;
      return;
    }
    StartWrite(&out_.front());
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard<std::mutex> l(mu_);
      finished_ = true;
      return;
    }
    switch (in_.msg_case()) {
      case ControlMessage::kWelcome:
        agent_->OnStreamWelcome(this, in_.welcome());
        break;
      case ControlMessage::kStatement:  // before the tasks that name it
        agent_->OnStreamStatement(in_.statement());
        break;
      case ControlMessage::kTask:
        agent_->OnStreamTask(in_.task());
        break;
      case ControlMessage::kResultAck:
        agent_->OnStreamResultAck(in_.result_ack());
        break;
      default:
        break;  // trust policies: the bench runs in pinned mode
    }
    StartRead(&in_);
  }

  void OnDone(const grpc::Status& s) override {
    agent_->OnStreamDone(this, s);
    delete this;
  }

 private:
  SimAgent* const agent_;
  grpc::ClientContext ctx_;
  ControlMessage in_;
  std::mutex mu_;
  std::deque<AgentMessage> out_;
  bool writing_ = false;
  bool finished_ = false;
};

// ------------------------------------------------------------------ SimAgent

absl::StatusOr<std::unique_ptr<SimAgent>> SimAgent::Create(Identity id, const Shared* shared) {
  auto key = crypto::Ed25519PrivateKey::LoadFile(id.result_key_file);
  if (!key.ok()) return key.status();
  auto creds = tls::MakeChannelCredentials(id.tls, shared->controlplane_id);
  if (!creds.ok()) return creds.status();
  grpc::ChannelArguments args = tls::DefaultChannelArgs();
  // One connection per agent, as separate processes would have.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(shared->address, *creds, args);
  return std::unique_ptr<SimAgent>(
      new SimAgent(std::move(id), shared, std::move(*key), std::move(channel)));
}

SimAgent::SimAgent(Identity id, const Shared* shared, crypto::Ed25519PrivateKey key,
                   std::shared_ptr<grpc::Channel> channel)
    : id_(std::move(id)),
      shared_(shared),
      result_key_(std::move(key)),
      stub_(writeback::v1::AgentService::NewStub(std::move(channel))),
      history_(std::make_unique<History>()),
      backoff_(shared->reconnect_initial, shared->reconnect_max) {}

SimAgent::~SimAgent() { Stop(); }

void SimAgent::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    running_ = true;
    reconnect_at_ = absl::InfiniteFuture();
  }
  Connect();
}

void SimAgent::Stop() {
  std::unique_lock<std::mutex> l(mu_);
  running_ = false;
  reconnect_at_ = absl::InfiniteFuture();
  if (stream_ != nullptr) stream_->Cancel();
  done_cv_.wait(l, [&] { return stream_ == nullptr; });
}

bool SimAgent::connected() const {
  std::lock_guard<std::mutex> l(mu_);
  return stream_ != nullptr && welcomed_;
}

SimAgent::Counters SimAgent::counters() const {
  std::lock_guard<std::mutex> l(mu_);
  return counters_;
}

std::vector<writeback::v1::ConnectorInstanceInfo> SimAgent::Instances() const {
  writeback::v1::ConnectorInstanceInfo info;
  info.set_name(id_.instance);
  info.set_type("exec");
  info.add_operations("revoke");
  info.set_healthy(true);
  return {info};
}

writeback::v1::Hello SimAgent::MakeHello() const {
  writeback::v1::Hello h;
  h.set_agent_id(id_.spiffe_id);
  h.set_version("writeback-bench");
  h.add_features(std::string(protocol::kFeatureStatementDigest));
  for (auto& i : Instances()) *h.add_instances() = std::move(i);
  h.set_result_public_key(result_key_.public_key().raw());
  (*h.mutable_labels())["bench"] = "sim";
  h.set_agent_time_unix_ms(absl::ToUnixMillis(absl::Now()));
  return h;
}

void SimAgent::Connect() {
  AgentMessage first;
  *first.mutable_hello() = MakeHello();
  *first.mutable_connect_proof() = relay::MakeConnectProof(first.hello(), result_key_, absl::Now());
  Stream* s = nullptr;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!running_ || stream_ != nullptr) return;
    welcomed_ = false;
    s = stream_ = new Stream(this);
  }
  // Outside mu_: nothing here may wait for a callback that takes it. The
  // stream cannot end (and be deleted) before StartCall.
  s->Begin(stub_.get(), std::move(first));
}

void SimAgent::OnStreamWelcome(Stream* s, const writeback::v1::Welcome& w) {
  std::vector<SignedEnvelope> resend;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (s != stream_) return;
    welcomed_ = true;
    ++counters_.welcomes;
    backoff_.Reset();
    if (w.heartbeat_interval_seconds() > 0) {
      heartbeat_interval_ = absl::Seconds(w.heartbeat_interval_seconds());
    }
    next_heartbeat_ = absl::Now() + heartbeat_interval_;
    for (const auto& [id, r] : outbox_) resend.push_back(r);
  }
  // Results made while disconnected go first (the agent's outbox).
  for (auto& r : resend) {
    AgentMessage m;
    *m.mutable_result() = std::move(r);
    Send(std::move(m));
  }
  shared_->listener->OnWelcome(absl::Now());
}

void SimAgent::OnStreamStatement(const std::string& statement) {
  {
    std::lock_guard<std::mutex> l(mu_);
    counters_.task_bytes += statement.size();  // wire bytes of the decision
  }
  statements_.Put(statement);
}

void SimAgent::OnStreamTask(const SignedEnvelope& env) {
  {
    std::lock_guard<std::mutex> l(mu_);
    ++counters_.tasks_received;
    counters_.task_bytes += env.ByteSizeLong();
  }
  shared_->pool->Post([this, env] { HandleTask(env); });
}

void SimAgent::HandleTask(const SignedEnvelope& env) {
  agent::CheckContext ctx;
  ctx.agent_id = id_.spiffe_id;
  ctx.dispatch_keys = &shared_->dispatch_keys;
  ctx.instances.emplace(id_.instance, agent::InstancePolicy{"exec", {"revoke"}});
  ctx.max_skew = shared_->max_skew;
  ctx.now = absl::Now();
  ctx.statements = &statements_;
  agent::TaskCheck c = agent::CheckTask(env, ctx, history_.get());
  if (c.statement_missing) return;  // not taken: redelivered with its statement

  writeback::v1::Result r;
  r.set_task_id(c.task_id());
  r.set_agent_id(id_.spiffe_id);
  r.set_decision_id(c.statement.decision_id());
  r.set_decision_version(c.task.decision_version());
  r.set_task_digest(c.task_digest);
  r.set_verify_only(c.task.verify_only());
  SignedEnvelope signed_result;
  switch (c.verdict) {
    case agent::Verdict::kError:
      return;  // not acknowledged: the control plane sends it again
    case agent::Verdict::kDuplicate: {
      std::lock_guard<std::mutex> l(mu_);
      ++counters_.duplicates;
      if (!c.seen || c.seen->state != agent::SeenTask::State::kDone) return;
      signed_result = c.seen->signed_result;
      break;
    }
    case agent::Verdict::kReject: {
      r.set_outcome(writeback::v1::OUTCOME_REJECTED);
      r.set_reject_reason(c.reason);
      r.set_message(c.message);
      r.set_agent_time_unix_ms(absl::ToUnixMillis(absl::Now()));
      signed_result = agent::Executor::SignResult(r, result_key_);
      std::lock_guard<std::mutex> l(mu_);
      ++counters_.rejected;
      break;
    }
    case agent::Verdict::kAccept: {
      // The zero-cost connector: the effect is a set in memory; plan reads
      // it, apply changes it, verify observes it again.
      const std::string& object = c.task.target().object();
      bool already;
      bool observed;
      {
        std::lock_guard<std::mutex> l(mu_);
        already = effects_.count(object) > 0;
        if (!c.task.verify_only()) effects_.insert(object);
        observed = effects_.count(object) > 0;
        ++counters_.accepted;
      }
      r.mutable_plan()->set_no_change(already);
      r.mutable_plan()->set_summary(already ? "already revoked" : "revoke in memory");
      if (!already) r.mutable_applied()->add_changes("revoked in memory");
      auto* v = r.mutable_verification();
      v->set_outcome(observed ? writeback::v1::OUTCOME_VERIFIED : writeback::v1::OUTCOME_FAILED);
      v->set_detail(observed ? "in-memory effect observed" : "in-memory effect missing");
      auto* obs = v->add_after();
      obs->set_check("memory");
      obs->set_subject(object);
      obs->set_observed_at_unix_ms(absl::ToUnixMillis(absl::Now()));
      r.set_outcome(!observed ? writeback::v1::OUTCOME_FAILED
                    : already ? writeback::v1::OUTCOME_ALREADY_COMPLIANT
                              : writeback::v1::OUTCOME_VERIFIED);
      r.set_message(v->detail());
      r.set_agent_time_unix_ms(absl::ToUnixMillis(absl::Now()));
      signed_result = agent::Executor::SignResult(r, result_key_);
      break;
    }
  }
  const std::string task_id = c.task_id();
  if (c.authentic && !c.task_id_conflict && c.verdict != agent::Verdict::kDuplicate) {
    history_->Done(task_id, c.task_digest, signed_result, c.task.connector_instance(),
                   c.task.target().object(),
                   c.verdict == agent::Verdict::kAccept && !c.task.verify_only()
                       ? c.task.decision_version()
                       : 0);
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    outbox_[task_id] = signed_result;
    if (!c.statement.decision_id().empty()) open_tasks_[task_id] = c.statement.decision_id();
  }
  AgentMessage ack;
  ack.mutable_task_ack()->set_task_id(task_id);
  Send(std::move(ack));
  AgentMessage res;
  *res.mutable_result() = std::move(signed_result);
  Send(std::move(res));
}

void SimAgent::OnStreamResultAck(const writeback::v1::ResultAck& ack) {
  std::string decision_id;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!ack.accepted()) {
      ++counters_.results_refused;
      // A refusal that sending again cannot change: drop it, as the agent does.
      if (ack.refusal() != writeback::v1::RESULT_REFUSAL_UNSPECIFIED) outbox_.erase(ack.task_id());
      return;
    }
    outbox_.erase(ack.task_id());
    auto it = open_tasks_.find(ack.task_id());
    if (it == open_tasks_.end()) return;  // acknowledged again (a resend)
    decision_id = std::move(it->second);
    open_tasks_.erase(it);
    ++counters_.results_stored;
  }
  shared_->listener->OnResultStored(decision_id, absl::Now());
}

void SimAgent::OnStreamDone(Stream* s, const grpc::Status& status) {
  (void)status;
  std::lock_guard<std::mutex> l(mu_);
  if (s != stream_) return;
  stream_ = nullptr;
  welcomed_ = false;
  next_heartbeat_ = absl::InfiniteFuture();
  if (running_) reconnect_at_ = absl::Now() + backoff_.Next();
  done_cv_.notify_all();
}

bool SimAgent::Send(AgentMessage msg) {
  std::lock_guard<std::mutex> l(mu_);
  if (stream_ == nullptr || !welcomed_) return false;
  return stream_->Enqueue(std::move(msg));
}

void SimAgent::Tick(absl::Time now) {
  bool reconnect = false;
  bool heartbeat = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (running_ && stream_ == nullptr && now >= reconnect_at_) {
      reconnect_at_ = absl::InfiniteFuture();
      reconnect = true;
    }
    if (stream_ != nullptr && welcomed_ && now >= next_heartbeat_) {
      next_heartbeat_ = now + heartbeat_interval_;
      ++counters_.heartbeats;
      heartbeat = true;
    }
  }
  if (reconnect) Connect();
  if (heartbeat) {
    AgentMessage m;
    auto* hb = m.mutable_heartbeat();
    hb->set_agent_time_unix_ms(absl::ToUnixMillis(now));
    for (auto& i : Instances()) *hb->add_instances() = std::move(i);
    Send(std::move(m));
  }
}

}  // namespace wb::bench
