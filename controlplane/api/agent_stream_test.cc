// The agent stream, driven by a fake agent: a test gRPC client with a real
// agent certificate and an Ed25519 result key.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include "common/testing/wait.h"
#include "controlplane/api/test_env.h"
#include "controlplane/dispatch/dispatcher.h"

namespace wb::controlplane {
namespace {

using test::FakeAgent;
using test::SetDeadline;
using test::SshSpec;
using test::TestEnv;
using ::testing::HasSubstr;
using writeback::v1::DecisionState;

class AgentStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = TestEnv::Start();
    ASSERT_NE(env_, nullptr);
    op_ = env_->Operator();
  }

  std::unique_ptr<FakeAgent> NewAgent(const std::string& name) {
    return std::make_unique<FakeAgent>(env_->Channel(env_->pki().agent(name).tls),
                                       env_->AgentId(name), env_->AgentResultKey(name));
  }

  std::string Submit(const writeback::v1::DecisionSpec& spec) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    writeback::v1::SubmitDecisionRequest req;
    *req.mutable_spec() = spec;
    writeback::v1::SubmitDecisionResponse resp;
    grpc::Status s = op_->SubmitDecision(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.decision_id();
  }

  writeback::v1::DecisionView Get(const std::string& id) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    writeback::v1::GetDecisionRequest req;
    req.set_decision_id(id);
    writeback::v1::DecisionView v;
    grpc::Status s = op_->GetDecision(&ctx, req, &v);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return v;
  }

  bool WaitForState(const std::string& id, DecisionState state) {
    return wb::testing::WaitFor([&] { return Get(id).state() == state; });
  }

  std::unique_ptr<TestEnv> env_;
  std::unique_ptr<writeback::v1::AdminService::Stub> op_;
};

TEST_F(AgentStreamTest, SignedTaskIsPushedAndAVerifiedResultFinishesTheDecision) {
  auto agent = NewAgent("a1");
  auto welcome = agent->Connect("hosts");
  ASSERT_TRUE(welcome.ok()) << welcome.status();
  EXPECT_EQ(welcome->controlplane_id(), env_->pki().controlplane_id());
  EXPECT_EQ(welcome->heartbeat_interval_seconds(), 10u);
  EXPECT_EQ(welcome->max_in_flight(), 64u);

  const std::string id = Submit(SshSpec({"alice"}));
  auto env = agent->ReadTask();
  ASSERT_TRUE(env.ok()) << env.status();
  ASSERT_TRUE(
      envelope::VerifyWithKey(*env, writeback::v1::PAYLOAD_TYPE_TASK, env_->DispatchPublicKey())
          .ok());
  writeback::v1::Task task;
  ASSERT_TRUE(task.ParseFromString(env->payload()));
  EXPECT_EQ(task.audience(), env_->AgentId("a1"));
  EXPECT_EQ(task.target().object(), "alice");
  writeback::v1::DecisionStatement st;
  ASSERT_TRUE(st.ParseFromString(task.statement()));
  EXPECT_EQ(st.decision_id(), id);

  ASSERT_TRUE(agent->Ack(task.task_id()));
  ASSERT_TRUE(wb::testing::WaitFor([&] {
    auto v = Get(id);
    return v.tasks_size() == 1 && v.tasks(0).state() == writeback::v1::TASK_STATE_DELIVERED &&
           v.tasks(0).delivery_attempts() == 1;
  }));

  ASSERT_TRUE(agent->SendResult(agent->MakeResult(*env, writeback::v1::OUTCOME_VERIFIED)));
  auto ack = agent->ReadResultAck();
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_TRUE(ack->accepted()) << ack->error();
  EXPECT_EQ(ack->task_id(), task.task_id());
  // Acked only after the result was stored: visible at once.
  auto v = Get(id);
  EXPECT_EQ(v.state(), writeback::v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(v.tasks(0).state(), writeback::v1::TASK_STATE_VERIFIED);
  EXPECT_EQ(v.tasks(0).outcome(), writeback::v1::OUTCOME_VERIFIED);
  EXPECT_EQ(v.tasks(0).verification().after(0).check(), "read_authorized_keys");

  // A duplicate is acked again and changes nothing.
  ASSERT_TRUE(agent->SendResult(agent->MakeResult(*env, writeback::v1::OUTCOME_FAILED)));
  ack = agent->ReadResultAck();
  ASSERT_TRUE(ack.ok());
  EXPECT_TRUE(ack->accepted());
  EXPECT_EQ(Get(id).tasks(0).outcome(), writeback::v1::OUTCOME_VERIFIED);
  EXPECT_TRUE(agent->Close().ok());
}

TEST_F(AgentStreamTest, ForgedOrMisboundResultsAreRefusedAndChangeNothing) {
  auto a1 = NewAgent("a1");
  auto a2 = NewAgent("a2");
  ASSERT_TRUE(a1->Connect("hosts").ok());
  ASSERT_TRUE(a2->Connect("db").ok());
  const std::string id = Submit(SshSpec({"alice"}));
  auto task = a1->ReadTask();
  ASSERT_TRUE(task.ok()) << task.status();

  // Signed with another key than the one a1 registered.
  FakeAgent impostor_signer(env_->Channel(env_->NoCert()), env_->AgentId("a1"),
                            crypto::Ed25519PrivateKey::Generate());
  ASSERT_TRUE(a1->SendResult(impostor_signer.MakeResult(*task, writeback::v1::OUTCOME_VERIFIED)));
  auto ack = a1->ReadResultAck();
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_FALSE(ack->accepted());
  EXPECT_THAT(ack->error(), HasSubstr("result key"));

  // For a task of another agent (a2 signs properly, but the task is a1's).
  ASSERT_TRUE(a2->SendResult(a2->MakeResult(*task, writeback::v1::OUTCOME_VERIFIED)));
  ack = a2->ReadResultAck();
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_FALSE(ack->accepted());
  EXPECT_THAT(ack->error(), HasSubstr("not addressed to this agent"));

  // With a digest of other bytes.
  writeback::v1::Task t;
  ASSERT_TRUE(t.ParseFromString(task->payload()));
  writeback::v1::Result r;
  r.set_task_id(t.task_id());
  r.set_agent_id(a1->agent_id());
  r.set_task_digest(crypto::Sha256(task->payload() + "x"));
  r.set_outcome(writeback::v1::OUTCOME_VERIFIED);
  ASSERT_TRUE(a1->SendResult(
      envelope::Sign(writeback::v1::PAYLOAD_TYPE_RESULT, r.SerializeAsString(), a1->key())));
  ack = a1->ReadResultAck();
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_FALSE(ack->accepted());
  EXPECT_THAT(ack->error(), HasSubstr("task_digest"));

  EXPECT_EQ(env_->cp().dispatcher().rejected_results(), 3u);
  auto v = Get(id);
  EXPECT_EQ(v.state(), writeback::v1::DECISION_STATE_DISPATCHED);
  EXPECT_EQ(v.tasks(0).state(), writeback::v1::TASK_STATE_QUEUED);
  EXPECT_EQ(v.tasks(0).outcome(), writeback::v1::OUTCOME_UNSPECIFIED);

  // The genuine result still goes through afterwards.
  ASSERT_TRUE(a1->SendResult(a1->MakeResult(*task, writeback::v1::OUTCOME_VERIFIED)));
  ack = a1->ReadResultAck();
  ASSERT_TRUE(ack.ok());
  EXPECT_TRUE(ack->accepted()) << ack->error();
}

TEST_F(AgentStreamTest, ReconnectingWithoutAResultGetsTheSameBytesAgain) {
  std::string first_bytes;
  {
    auto agent = NewAgent("a1");
    ASSERT_TRUE(agent->Connect("hosts").ok());
    Submit(SshSpec({"alice"}));
    auto task = agent->ReadTask();
    ASSERT_TRUE(task.ok()) << task.status();
    first_bytes = task->SerializeAsString();
    writeback::v1::Task t;
    ASSERT_TRUE(t.ParseFromString(task->payload()));
    ASSERT_TRUE(agent->Ack(t.task_id()));
    EXPECT_TRUE(agent->Close().ok());
  }
  auto agent = NewAgent("a1");
  ASSERT_TRUE(agent->Connect("hosts").ok());
  auto again = agent->ReadTask();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->SerializeAsString(), first_bytes);
}

TEST_F(AgentStreamTest, TasksArriveInDecisionOrderWithinTheInFlightLimit) {
  auto agent = NewAgent("a1");
  ASSERT_TRUE(agent->Connect("hosts").ok());
  const std::string first = Submit(SshSpec({"alice", "bob"}));
  const std::string second = Submit(SshSpec({"carol"}));
  std::vector<std::string> targets;
  for (int i = 0; i < 3; ++i) {
    auto env = agent->ReadTask();
    ASSERT_TRUE(env.ok()) << env.status();
    writeback::v1::Task t;
    ASSERT_TRUE(t.ParseFromString(env->payload()));
    targets.push_back(t.target().object());
  }
  EXPECT_THAT(targets, ::testing::ElementsAre("alice", "bob", "carol"));
}

TEST(AgentStreamLimitTest, AtMostMaxInFlightUnansweredTasks) {
  auto env = TestEnv::Start(SystemClock::Get(), {}, [](writeback::v1::ControlPlaneConfig& c) {
    c.set_max_in_flight_per_agent(2);
  });
  ASSERT_NE(env, nullptr);
  FakeAgent agent(env->Channel(env->pki().agent("a1").tls), env->AgentId("a1"),
                  env->AgentResultKey("a1"));
  auto w = agent.Connect("hosts");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->max_in_flight(), 2u);
  auto op = env->Operator();
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  writeback::v1::SubmitDecisionRequest req;
  *req.mutable_spec() = SshSpec({"alice", "bob", "carol"});
  writeback::v1::SubmitDecisionResponse resp;
  ASSERT_TRUE(op->SubmitDecision(&ctx, req, &resp).ok());

  auto t1 = agent.ReadTask();
  auto t2 = agent.ReadTask();
  ASSERT_TRUE(t1.ok() && t2.ok());
  ASSERT_TRUE(agent.SendResult(agent.MakeResult(*t1, writeback::v1::OUTCOME_VERIFIED)));
  // Messages are written in order: had a third task been sent before this
  // result freed a slot, it would come before the ack.
  auto ack = agent.ReadResultAck();
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_TRUE(ack->accepted());
  auto t3 = agent.ReadTask();
  ASSERT_TRUE(t3.ok()) << t3.status();
  writeback::v1::Task t;
  ASSERT_TRUE(t.ParseFromString(t3->payload()));
  EXPECT_EQ(t.target().object(), "carol");
}

TEST_F(AgentStreamTest, HelloMustComeFirstAndMatchTheCertificate) {
  {
    auto agent = NewAgent("a1");
    writeback::v1::AgentMessage hb;
    hb.mutable_heartbeat()->set_agent_time_unix_ms(1);
    ASSERT_TRUE(agent->Send(hb));
    auto m = agent->Read();
    EXPECT_EQ(m.status().code(), absl::StatusCode::kPermissionDenied) << m.status();
  }
  {
    auto agent = NewAgent("a1");
    auto h = agent->MakeHello();
    h.set_agent_id(env_->AgentId("a2"));
    ASSERT_TRUE(agent->SendHello(h));
    auto m = agent->Read();
    EXPECT_EQ(m.status().code(), absl::StatusCode::kPermissionDenied) << m.status();
    EXPECT_THAT(std::string(m.status().message()), HasSubstr("hello.agent_id"));
  }
  {
    auto agent = NewAgent("a1");
    ASSERT_TRUE(agent->Connect("hosts").ok());
    EXPECT_TRUE(agent->Close().ok());
  }
  {
    // Same identity, another result key: refused (trust on first use).
    FakeAgent agent(env_->Channel(env_->pki().agent("a1").tls), env_->AgentId("a1"),
                    crypto::Ed25519PrivateKey::Generate());
    auto w = agent.Connect("hosts");
    EXPECT_EQ(w.status().code(), absl::StatusCode::kPermissionDenied) << w.status();
    EXPECT_EQ(w.status().message(), "result key changed");
  }
  {
    // An instance bound to another agent: this offer is refused, the stream
    // is served (its other instances would be), and the fleet view says so.
    auto agent = NewAgent("a2");
    auto w = agent->Connect("hosts");
    ASSERT_TRUE(w.ok()) << w.status();
    auto rec = env_->cp().dispatcher().AgentRecordOf(env_->AgentId("a2"));
    ASSERT_TRUE(rec.ok());
    EXPECT_EQ(rec->instances_size(), 0);
    ASSERT_EQ(rec->refused_instances_size(), 1);
    EXPECT_THAT(rec->refused_instances(0).reason(), HasSubstr(env_->AgentId("a1")));
  }
}

TEST_F(AgentStreamTest, ANewStreamEndsTheOlderOne) {
  auto old_stream = NewAgent("a1");
  ASSERT_TRUE(old_stream->Connect("hosts").ok());
  auto new_stream = NewAgent("a1");
  ASSERT_TRUE(new_stream->Connect("hosts").ok());
  auto m = old_stream->Read();
  EXPECT_EQ(m.status().code(), absl::StatusCode::kAborted) << m.status();
  // The new stream is the live one: it receives the next task.
  Submit(SshSpec({"alice"}));
  EXPECT_TRUE(new_stream->ReadTask().ok());
}

TEST_F(AgentStreamTest, ShutdownEndsStreamsAndARestartKeepsEverything) {
  auto agent = NewAgent("a1");
  ASSERT_TRUE(agent->Connect("hosts").ok());
  const std::string id = Submit(SshSpec({"alice"}));
  auto task = agent->ReadTask();
  ASSERT_TRUE(task.ok());

  env_->StopServer();
  auto m = agent->Read();
  EXPECT_FALSE(m.ok());
  ASSERT_TRUE(env_->StartServer().ok());
  op_ = env_->Operator();

  auto again = NewAgent("a1");
  ASSERT_TRUE(again->Connect("hosts").ok());
  auto redelivered = again->ReadTask();
  ASSERT_TRUE(redelivered.ok()) << redelivered.status();
  EXPECT_EQ(redelivered->SerializeAsString(), task->SerializeAsString());
  ASSERT_TRUE(again->SendResult(again->MakeResult(*redelivered, writeback::v1::OUTCOME_VERIFIED)));
  auto ack = again->ReadResultAck();
  ASSERT_TRUE(ack.ok() && ack->accepted());
  EXPECT_EQ(Get(id).state(), writeback::v1::DECISION_STATE_VERIFIED);
}

TEST(AgentStreamExpiryTest, TheSweepExpiresTasksByTheInjectedClock) {
  FakeClock clock(absl::Now());
  ControlPlaneOptions opts;
  opts.expiry_sweep_interval = absl::Milliseconds(10);
  auto env = TestEnv::Start(&clock, opts);
  ASSERT_NE(env, nullptr);
  FakeAgent agent(env->Channel(env->pki().agent("a1").tls), env->AgentId("a1"),
                  env->AgentResultKey("a1"));
  ASSERT_TRUE(agent.Connect("hosts").ok());
  auto op = env->Operator();
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  writeback::v1::SubmitDecisionRequest req;
  *req.mutable_spec() = SshSpec({"alice"});
  req.mutable_spec()->set_ttl_seconds(60);
  writeback::v1::SubmitDecisionResponse resp;
  ASSERT_TRUE(op->SubmitDecision(&ctx, req, &resp).ok());
  ASSERT_TRUE(agent.ReadTask().ok());

  clock.Advance(absl::Seconds(61));
  EXPECT_TRUE(wb::testing::WaitFor([&] {
    grpc::ClientContext c;
    SetDeadline(&c);
    writeback::v1::GetDecisionRequest g;
    g.set_decision_id(resp.decision_id());
    writeback::v1::DecisionView v;
    return op->GetDecision(&c, g, &v).ok() && v.state() == writeback::v1::DECISION_STATE_EXPIRED &&
           v.tasks(0).state() == writeback::v1::TASK_STATE_EXPIRED;
  }));
}

TEST(AgentStreamDeliveryTest, ATaskWithoutResultIsSentAgainAfterTheDeliveryTimeout) {
  FakeClock clock(absl::Now());
  ControlPlaneOptions opts;
  opts.expiry_sweep_interval = absl::Milliseconds(20);  // the timeout check's tick
  opts.redelivery_timeout_seconds = 30;
  auto env = TestEnv::Start(&clock, opts);
  ASSERT_NE(env, nullptr);
  auto op = env->Operator();
  FakeAgent agent(env->Channel(env->pki().agent("a1").tls), env->AgentId("a1"),
                  env->AgentResultKey("a1"));
  ASSERT_TRUE(agent.Connect("hosts").ok());
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  writeback::v1::SubmitDecisionRequest req;
  *req.mutable_spec() = SshSpec({"alice"});
  writeback::v1::SubmitDecisionResponse resp;
  ASSERT_TRUE(op->SubmitDecision(&ctx, req, &resp).ok());
  auto first = agent.ReadTask();
  ASSERT_TRUE(first.ok()) << first.status();
  writeback::v1::Task t;
  ASSERT_TRUE(t.ParseFromString(first->payload()));
  ASSERT_TRUE(agent.Ack(t.task_id()));
  // No result within the timeout: the same bytes again, on the same stream.
  clock.Advance(absl::Seconds(31));
  auto again = agent.ReadTask();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->SerializeAsString(), first->SerializeAsString());
  EXPECT_EQ(env->cp().dispatcher().redeliveries(), 1u);
  ASSERT_TRUE(agent.SendResult(agent.MakeResult(*again, writeback::v1::OUTCOME_VERIFIED)));
  auto ack = agent.ReadResultAck();
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_TRUE(ack->accepted());
}

TEST_F(AgentStreamTest, CancelWithdrawsQueuedTasksFromTheOutbox) {
  {
    // The agent announces its instance once, then goes away: the tasks stay
    // queued in its outbox.
    auto agent = NewAgent("a1");
    ASSERT_TRUE(agent->Connect("hosts").ok());
    EXPECT_TRUE(agent->Close().ok());
  }
  const std::string id = Submit(SshSpec({"alice", "bob"}));
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  writeback::v1::CancelDecisionRequest req;
  req.set_decision_id(id);
  writeback::v1::CancelDecisionResponse resp;
  grpc::Status s = op_->CancelDecision(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.tasks_canceled(), 2u);
  EXPECT_EQ(resp.state(), writeback::v1::DECISION_STATE_CANCELED);
  auto v = Get(id);
  EXPECT_EQ(v.state(), writeback::v1::DECISION_STATE_CANCELED);
  for (const auto& t : v.tasks()) EXPECT_EQ(t.state(), writeback::v1::TASK_STATE_CANCELED);
  // Nothing is delivered: the next task the agent sees is a later decision's.
  const std::string later = Submit(SshSpec({"carol"}));
  auto agent = NewAgent("a1");
  ASSERT_TRUE(agent->Connect("hosts").ok());
  auto task = agent->ReadTask();
  ASSERT_TRUE(task.ok()) << task.status();
  writeback::v1::Task t;
  ASSERT_TRUE(t.ParseFromString(task->payload()));
  EXPECT_EQ(t.target().object(), "carol");
  // A second cancel of a finished decision is refused.
  grpc::ClientContext ctx2;
  SetDeadline(&ctx2);
  EXPECT_EQ(op_->CancelDecision(&ctx2, req, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace wb::controlplane
