#include "controlplane/rpc/authz.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "writeback/v1/admin_service.pb.h"
#include "writeback/v1/agent_service.pb.h"

namespace wb::controlplane {
namespace {

using ::testing::HasSubstr;

const Authorizer kAuthz = Authorizer::Default("writeback.test");
constexpr char kOperator[] = "spiffe://writeback.test/operator/alice";
constexpr char kAgent[] = "spiffe://writeback.test/agent/a1";

TEST(AuthorizerTest, OperatorsAdministerAgentsConnect) {
  auto id = kAuthz.CheckPeer(kSubmitDecisionMethod, kOperator);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->name, "alice");
  EXPECT_EQ(id->cls, tls::IdentityClass::kOperator);
  EXPECT_TRUE(kAuthz.CheckPeer(kConnectMethod, kAgent).ok());

  EXPECT_EQ(kAuthz.CheckPeer(kSubmitDecisionMethod, kAgent).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(kAuthz.CheckPeer(kListAgentsMethod, kAgent).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(kAuthz.CheckPeer(kConnectMethod, kOperator).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(
      kAuthz.CheckPeer(kConnectMethod, "spiffe://writeback.test/controlplane/cp").status().code(),
      absl::StatusCode::kPermissionDenied);
}

TEST(AuthorizerTest, BundlesAreForOperatorsOnly) {
  for (const char* m : {kExportBundleMethod, kImportBundleMethod}) {
    EXPECT_TRUE(kAuthz.CheckPeer(m, kOperator).ok()) << m;
    // An agent cannot export its own tasks nor import its own results.
    EXPECT_EQ(kAuthz.CheckPeer(m, kAgent).status().code(), absl::StatusCode::kPermissionDenied)
        << m;
    EXPECT_EQ(kAuthz.CheckPeer(m, "").status().code(), absl::StatusCode::kUnauthenticated) << m;
  }
}

TEST(AuthorizerTest, NoCertificateIsUnauthenticated) {
  auto s = kAuthz.CheckPeer(kGetDecisionMethod, "").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(kAuthz.CheckPeer(kConnectMethod, "").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(kAuthz.CheckPeer(kConnectMethod, "spiffe://writeback.test/robot/x").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(AuthorizerTest, OtherTrustDomainsAreRefused) {
  auto s = kAuthz.CheckPeer(kSubmitDecisionMethod, "spiffe://evil.test/operator/alice").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("trust domain"));
}

TEST(AuthorizerTest, UnknownMethodsAreDeniedByDefault) {
  auto s = kAuthz.CheckPeer("/writeback.v1.AdminService/DeleteEverything", kOperator).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("DeleteEverything"));
}

TEST(AuthorizerTest, HealthIsPublic) {
  auto id = kAuthz.CheckPeer(kHealthCheckMethod, "");
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(id->name.empty());
}

TEST(AuthorizerTest, TableCoversEveryServiceMethod) {
  const auto* admin =
      writeback::v1::SubmitDecisionRequest::descriptor()->file()->FindServiceByName("AdminService");
  const auto* agent =
      writeback::v1::AgentMessage::descriptor()->file()->FindServiceByName("AgentService");
  ASSERT_NE(admin, nullptr);
  ASSERT_NE(agent, nullptr);
  EXPECT_TRUE(kAuthz.CheckCovers(*admin).ok());
  EXPECT_TRUE(kAuthz.CheckCovers(*agent).ok());

  Authorizer partial("writeback.test", {{kSubmitDecisionMethod, {false, {}}}});
  auto s = partial.CheckCovers(*admin);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("/writeback.v1.AdminService/GetDecision"));
}

}  // namespace
}  // namespace wb::controlplane
