#include "agent/link/link.h"

#include <gtest/gtest.h>

#include <mutex>

#include "agent/testing/fake_controlplane.h"
#include "common/pki/pki.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"

namespace wb::agent {
namespace {

using testing::FakeControlPlane;
using wb::testing::WaitFor;
using writeback::v1::AgentMessage;

// Records what the link hands over; answers Hello/heartbeats with fixed
// content and returns `first` from OnConnected.
class FakeHandler : public Link::Handler {
 public:
  writeback::v1::Hello MakeHello() override {
    writeback::v1::Hello h;
    h.set_agent_id("spiffe://writeback.test/agent/a1");
    h.set_version("test");
    return h;
  }
  writeback::v1::Heartbeat MakeHeartbeat() override {
    writeback::v1::Heartbeat hb;
    hb.set_tasks_in_flight(3);
    return hb;
  }
  std::vector<AgentMessage> OnConnected(const writeback::v1::Welcome& w) override {
    std::lock_guard<std::mutex> l(mu);
    welcomes.push_back(w);
    return first;
  }
  void OnTask(const writeback::v1::SignedEnvelope& t) override {
    std::lock_guard<std::mutex> l(mu);
    tasks.push_back(t);
  }
  void OnResultAck(const writeback::v1::ResultAck& a) override {
    std::lock_guard<std::mutex> l(mu);
    acks.push_back(a.task_id());
  }
  void OnDisconnected(const absl::Status& why) override {
    std::lock_guard<std::mutex> l(mu);
    ++disconnects;
    ends.push_back(why);
  }
  size_t task_count() {
    std::lock_guard<std::mutex> l(mu);
    return tasks.size();
  }
  size_t welcome_count() {
    std::lock_guard<std::mutex> l(mu);
    return welcomes.size();
  }

  std::mutex mu;
  std::vector<AgentMessage> first;
  std::vector<writeback::v1::Welcome> welcomes;
  std::vector<writeback::v1::SignedEnvelope> tasks;
  std::vector<std::string> acks;
  int disconnects = 0;
  std::vector<absl::Status> ends;
};

AgentMessage ResultMessage(const std::string& task_id) {
  writeback::v1::Result r;
  r.set_task_id(task_id);
  AgentMessage m;
  m.mutable_result()->set_payload(r.SerializeAsString());
  m.mutable_result()->set_payload_type(writeback::v1::PAYLOAD_TYPE_RESULT);
  return m;
}

class LinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki::PkiSpec spec;
    spec.agents = {"a1"};
    auto p = pki::Pki::Init(dir_.Sub("pki"), spec, absl::Now());
    ASSERT_TRUE(p.ok()) << p.status();
    pki_ = std::make_unique<pki::Pki>(std::move(*p));
  }

  Link::Options LinkOptions(int port) {
    Link::Options o;
    o.address = absl::StrCat("127.0.0.1:", port);
    o.controlplane_id = pki_->controlplane_id();
    o.tls = pki_->agent("a1").tls;
    o.reconnect_initial = absl::Milliseconds(20);
    o.reconnect_max = absl::Milliseconds(200);
    return o;
  }

  wb::testing::TempDir dir_;
  std::unique_ptr<pki::Pki> pki_;
  FakeHandler handler_;
};

TEST_F(LinkTest, HelloWelcomeTasksAcksHeartbeats) {
  FakeControlPlane cp;
  ASSERT_TRUE(cp.Start(pki_->controlplane().tls).ok());
  Link link(LinkOptions(cp.port()), &handler_);
  ASSERT_TRUE(link.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return link.connected(); }));

  // Hello came first, from the agent's certificate identity.
  ASSERT_EQ(cp.hellos().size(), 1u);
  EXPECT_EQ(cp.hellos()[0].agent_id(), "spiffe://writeback.test/agent/a1");
  EXPECT_EQ(cp.peers()[0], "spiffe://writeback.test/agent/a1");
  ASSERT_EQ(handler_.welcome_count(), 1u);
  EXPECT_EQ(handler_.welcomes[0].max_in_flight(), 16u);

  writeback::v1::SignedEnvelope task;
  task.set_payload("task-bytes");
  cp.SendTask(task);
  ASSERT_TRUE(WaitFor([&] { return handler_.task_count() == 1; }));
  EXPECT_EQ(handler_.tasks[0].payload(), "task-bytes");

  AgentMessage ack;
  ack.mutable_task_ack()->set_task_id("t1");
  ASSERT_TRUE(link.Send(ack));
  ASSERT_TRUE(link.Send(ResultMessage("t1")));
  ASSERT_TRUE(WaitFor([&] { return cp.acks().size() == 1 && cp.results().size() == 1; }));
  EXPECT_EQ(cp.acks()[0], "t1");
  // The fake control plane acknowledges results.
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> l(handler_.mu);
    return handler_.acks.size() == 1;
  }));
  // Heartbeats every Welcome.heartbeat_interval_seconds (1 s here).
  ASSERT_TRUE(WaitFor([&] { return !cp.heartbeats().empty(); }));
  EXPECT_EQ(cp.heartbeats()[0].tasks_in_flight(), 3u);
  link.Stop();
  EXPECT_FALSE(link.connected());
}

TEST_F(LinkTest, ReconnectsAfterServerRestartAndSendsOutboxFirst) {
  auto cp = std::make_unique<FakeControlPlane>();
  ASSERT_TRUE(cp->Start(pki_->controlplane().tls).ok());
  const int port = cp->port();
  Link link(LinkOptions(port), &handler_);
  ASSERT_TRUE(link.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return link.connected(); }));

  cp->Stop();
  ASSERT_TRUE(WaitFor([&] { return !link.connected(); }));
  EXPECT_FALSE(link.Send(ResultMessage("dropped")));  // not connected: refused
  {
    std::lock_guard<std::mutex> l(handler_.mu);
    handler_.first = {ResultMessage("pending-1")};
  }
  cp = std::make_unique<FakeControlPlane>();
  ASSERT_TRUE(cp->Start(pki_->controlplane().tls, port).ok());
  ASSERT_TRUE(WaitFor([&] { return link.connected(); }));
  ASSERT_TRUE(WaitFor([&] { return cp->results().size() == 1; }));
  writeback::v1::Result r;
  ASSERT_TRUE(r.ParseFromString(cp->results()[0].payload()));
  EXPECT_EQ(r.task_id(), "pending-1");
  EXPECT_EQ(handler_.welcome_count(), 2u);
  EXPECT_GE(link.attempts(), 2);
}

TEST_F(LinkTest, RefusesAControlPlaneWithAnotherIdentity) {
  FakeControlPlane cp;
  ASSERT_TRUE(cp.Start(pki_->controlplane().tls).ok());
  Link::Options o = LinkOptions(cp.port());
  o.controlplane_id = "spiffe://writeback.test/controlplane/other";
  Link link(o, &handler_);
  ASSERT_TRUE(link.Start().ok());
  // Several attempts, each refused during the handshake.
  ASSERT_TRUE(WaitFor([&] { return link.attempts() >= 3; }));
  EXPECT_FALSE(link.connected());
  EXPECT_FALSE(link.last_error().ok());
  EXPECT_TRUE(cp.hellos().empty());
  EXPECT_EQ(handler_.welcome_count(), 0u);
}

// The control plane's own status reaches the agent (issue 15: the stream
// used to be cancelled before its status was read, so a ban showed as
// CANCELLED).
TEST_F(LinkTest, TheControlPlanesRefusalIsWhatTheAgentSees) {
  FakeControlPlane::Options fo;
  fo.refuse_hello = grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                 "agent spiffe://writeback.test/agent/a1 is banned");
  FakeControlPlane cp(fo);
  ASSERT_TRUE(cp.Start(pki_->controlplane().tls).ok());
  Link link(LinkOptions(cp.port()), &handler_);
  ASSERT_TRUE(link.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return link.attempts() >= 2 && !link.last_error().ok(); }));
  EXPECT_EQ(link.last_error().code(), absl::StatusCode::kPermissionDenied) << link.last_error();
  EXPECT_EQ(link.last_error().message(), "agent spiffe://writeback.test/agent/a1 is banned");
  EXPECT_TRUE(Link::IsRefusal(link.last_error().code()));
  {
    std::lock_guard<std::mutex> l(handler_.mu);
    ASSERT_FALSE(handler_.ends.empty());
    EXPECT_EQ(handler_.ends[0].code(), absl::StatusCode::kPermissionDenied);
  }
  {
    // Every attempt ended with the control plane's status, none CANCELLED.
    std::lock_guard<std::mutex> l(handler_.mu);
    for (const auto& e : handler_.ends) EXPECT_EQ(e.code(), absl::StatusCode::kPermissionDenied);
  }
  link.Stop();
  EXPECT_FALSE(Link::IsRefusal(absl::StatusCode::kUnavailable));
}

TEST_F(LinkTest, StopWhileWaitingToReconnect) {
  Link::Options o = LinkOptions(1);  // nothing listens on port 1
  o.reconnect_initial = absl::Hours(1);
  o.reconnect_max = absl::Hours(1);
  Link link(o, &handler_);
  ASSERT_TRUE(link.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return !link.last_error().ok(); }));
  link.Stop();  // returns without waiting for the backoff
  EXPECT_EQ(link.attempts(), 1);
}

TEST_F(LinkTest, StartChecksTheTlsConfig) {
  Link::Options o = LinkOptions(1);
  o.tls.set_ca_file(dir_.Sub("missing.crt"));
  Link link(o, &handler_);
  absl::Status s = link.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("tls.ca_file"), std::string::npos) << s;
}

}  // namespace
}  // namespace wb::agent
