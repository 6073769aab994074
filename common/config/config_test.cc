#include "common/config/config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "writeback/v1/admin_service.pb.h"
#include "writeback/v1/config.pb.h"

namespace wb::config {
namespace {

using ::testing::HasSubstr;

TEST(Config, MapsNestedFieldsListsMapsAndOneofs) {
  writeback::v1::AgentConfig cfg;
  auto s = ParseYaml(R"(
agent_id: spiffe://writeback.test/agent/a1
max_clock_skew_seconds: 30
labels: {site: fra1, segment: pci}
tls: {ca_file: /ca.crt, cert_file: /a.crt, key_file: /a.key}
dispatch_public_key_files: [/d1.pub, /d2.pub]
connectors:
  - name: web-keys
    type: ssh_authorized_keys
    allowed_operations: [remove_key]
    ssh_authorized_keys:
      path_template: /home/{user}/.ssh/authorized_keys
)",
                     "agent.yaml", &cfg);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(cfg.max_clock_skew_seconds(), 30u);
  EXPECT_EQ(cfg.labels().at("segment"), "pci");
  EXPECT_EQ(cfg.dispatch_public_key_files_size(), 2);
  ASSERT_EQ(cfg.connectors_size(), 1);
  EXPECT_EQ(cfg.connectors(0).ssh_authorized_keys().path_template(),
            "/home/{user}/.ssh/authorized_keys");
}

TEST(Config, UnknownKeyNamesThePath) {
  writeback::v1::AgentConfig cfg;
  auto s = ParseYaml("connectors:\n  - name: x\n    allowed_operation: [a]\n", "a.yaml", &cfg);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("a.yaml: connectors[0].allowed_operation: unknown key"));
}

TEST(Config, TypeErrorsNameTheField) {
  writeback::v1::AgentConfig cfg;
  auto s = ParseYaml("max_clock_skew_seconds: soon\n", "a.yaml", &cfg);
  EXPECT_THAT(s.message(), HasSubstr("max_clock_skew_seconds: expected a whole number"));
  s = ParseYaml("max_clock_skew_seconds: -1\n", "a.yaml", &cfg);
  EXPECT_FALSE(s.ok());
  s = ParseYaml("dispatch_public_key_files: /one\n", "a.yaml", &cfg);
  EXPECT_THAT(s.message(), HasSubstr("dispatch_public_key_files: expected a list"));
  s = ParseYaml("tls: [1]\n", "a.yaml", &cfg);
  EXPECT_THAT(s.message(), HasSubstr("tls: expected a mapping"));
  s = ParseYaml("agent_id: [\n", "a.yaml", &cfg);
  EXPECT_THAT(s.message(), HasSubstr("invalid YAML"));
}

TEST(Config, EnumsByName) {
  writeback::v1::ListDecisionsRequest req;
  ASSERT_TRUE(ParseYaml("state: DECISION_STATE_VERIFIED\n", "r", &req).ok());
  EXPECT_EQ(req.state(), writeback::v1::DECISION_STATE_VERIFIED);
  auto s = ParseYaml("state: GREEN\n", "r", &req);
  EXPECT_THAT(s.message(), HasSubstr("state: unknown value 'GREEN'"));
}

TEST(Config, EmptyDocumentIsEmptyMessage) {
  writeback::v1::WbctlConfig cfg;
  EXPECT_TRUE(ParseYaml("", "w", &cfg).ok());
  EXPECT_FALSE(ParseYaml("- a\n- b\n", "w", &cfg).ok());
}

}  // namespace
}  // namespace wb::config
