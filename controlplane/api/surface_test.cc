// The control plane's RPC surface, method by method (issue 8, "Surface"): every
// method of every service the server registers — Writeback's from the
// compiled descriptors, plus gRPC's health and reflection services — is called
// without a client certificate, with an agent certificate and with an
// operator certificate. A refusal must be UNAUTHENTICATED (no certificate) or
// PERMISSION_DENIED (wrong identity class); anything else counts as
// reachable. The reachable sets must be exactly the declared ones, so a new
// method that is not in the authorization table, or an open one, fails here.
// The matrix is printed.
//
// Open without a certificate: exactly enrolment (Enroll, Rejoin) and gRPC
// health. gRPC reflection is not served unless the config asks for it
// (grpc_reflection), so it must answer UNIMPLEMENTED to everyone here.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controlplane/api/test_env.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"

namespace wb::controlplane {
namespace {

using test::TestEnv;

const std::vector<std::string>& WritebackServices() {
  static const std::vector<std::string> kServices = {
      "writeback.v1.AdminService", "writeback.v1.AgentService", "writeback.v1.EnrollmentService"};
  return kServices;
}

// Reachable without a certificate: gRPC health and enrolment.
const std::set<std::string>& PublicMethods() {
  static const std::set<std::string> kPublic = {
      "/grpc.health.v1.Health/Check",
      "/grpc.health.v1.Health/Watch",
      "/writeback.v1.EnrollmentService/Enroll",
      "/writeback.v1.EnrollmentService/Rejoin",
  };
  return kPublic;
}

constexpr char kReflection[] = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

std::vector<std::string> AllMethods() {
  // gRPC's own services (not generated from our protos) first; Writeback's
  // (enrolment included) from the compiled descriptors.
  std::vector<std::string> out = {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
                                  kReflection};
  for (const std::string& name : WritebackServices()) {
    const auto* svc = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    EXPECT_NE(svc, nullptr) << name;
    if (svc == nullptr) continue;
    for (int i = 0; i < svc->method_count(); ++i) {
      out.push_back(absl::StrCat("/", svc->full_name(), "/", svc->method(i)->name()));
    }
  }
  return out;
}

// One call with one request message and a short deadline, whatever the
// method's streaming shape: a refusal arrives as the call's status before any
// message, which is all this test looks at. The request is empty, except for
// the agent stream, which gets a well-formed Hello for agent a1 (an empty one
// would be refused for its content, not for the caller's class).
grpc::Status CallOnce(const std::shared_ptr<grpc::Channel>& ch, const std::string& method,
                      const std::string& request) {
  grpc::GenericStub stub(ch);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  grpc::Slice empty(request);
  grpc::ByteBuffer req(&empty, 1);
  grpc::ByteBuffer resp;
  grpc::Status st;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &req, &resp, [&](grpc::Status s) {
    std::lock_guard<std::mutex> l(mu);
    st = std::move(s);
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return done; });
  return st;
}

bool Refused(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
         s.error_code() == grpc::StatusCode::PERMISSION_DENIED;
}

TEST(SurfaceTest, EveryMethodIsReachableOnlyByItsDeclaredIdentityClass) {
  auto env = TestEnv::Start();
  ASSERT_NE(env, nullptr);
  writeback::v1::AgentMessage hello;
  hello.mutable_hello()->set_agent_id(env->AgentId("a1"));
  hello.mutable_hello()->set_version("test");
  hello.mutable_hello()->set_result_public_key(env->AgentResultKey("a1").public_key().raw());
  const std::string hello_bytes = hello.SerializeAsString();
  const std::vector<std::string> methods = AllMethods();
  ASSERT_GT(methods.size(), PublicMethods().size() + 10);
  for (const std::string& p : PublicMethods()) {
    ASSERT_NE(std::find(methods.begin(), methods.end(), p), methods.end()) << p;
  }

  struct Caller {
    std::string name;
    writeback::v1::TlsConfig tls;
    grpc::StatusCode refusal;
    std::set<std::string> expected;  // reachable methods
  };
  std::set<std::string> admin, agent;
  for (const std::string& m : methods) {
    if (m.rfind("/writeback.v1.AdminService/", 0) == 0) admin.insert(m);
    if (m.rfind("/writeback.v1.AgentService/", 0) == 0) agent.insert(m);
  }
  agent.insert("/writeback.v1.EnrollmentService/Renew");
  auto with_public = [](std::set<std::string> s) {
    s.insert(PublicMethods().begin(), PublicMethods().end());
    return s;
  };
  std::vector<Caller> callers = {
      {"no certificate", env->NoCert(), grpc::StatusCode::UNAUTHENTICATED, PublicMethods()},
      {"agent", env->pki().agent("a1").tls, grpc::StatusCode::PERMISSION_DENIED,
       with_public(agent)},
      {"operator", env->pki().operator_identity("alice").tls, grpc::StatusCode::PERMISSION_DENIED,
       with_public(admin)},
  };

  std::printf("%-72s %-16s %-16s %-16s\n", "method", "no certificate", "agent", "operator");
  std::map<std::string, std::vector<std::string>> rows;
  for (const Caller& c : callers) {
    auto ch = env->Channel(c.tls);
    std::set<std::string> reachable;
    for (const std::string& m : methods) {
      const grpc::Status s =
          CallOnce(ch, m, m == "/writeback.v1.AgentService/Connect" ? hello_bytes : "");
      if (m == kReflection) {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED)
            << c.name << ": reflection is served without grpc_reflection";
        rows[m].push_back("not served");
        continue;
      }
      if (Refused(s)) {
        EXPECT_EQ(s.error_code(), c.refusal) << c.name << " " << m << ": " << s.error_message();
        rows[m].push_back(s.error_code() == grpc::StatusCode::UNAUTHENTICATED ? "unauthenticated"
                                                                              : "denied");
      } else {
        reachable.insert(m);
        rows[m].push_back("reachable");
      }
    }
    EXPECT_EQ(reachable, c.expected) << c.name;
  }
  for (const auto& [m, cells] : rows) {
    std::printf("%-72s %-16s %-16s %-16s\n", m.c_str(), cells[0].c_str(), cells[1].c_str(),
                cells[2].c_str());
  }
  std::printf("surface: %zu methods x %zu identity classes\n", methods.size(), callers.size());
}

}  // namespace
}  // namespace wb::controlplane

namespace wb::controlplane {
namespace {

TEST(SurfaceTest, ReflectionIsServedOnlyWhenTheConfigAsksForIt) {
  auto env = test::TestEnv::Start(SystemClock::Get(), {}, [](writeback::v1::ControlPlaneConfig& c) {
    c.set_grpc_reflection(true);
  });
  ASSERT_NE(env, nullptr);
  const grpc::Status s = CallOnce(env->Channel(env->NoCert()), kReflection, "");
  EXPECT_NE(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << s.error_message();
}

}  // namespace
}  // namespace wb::controlplane
