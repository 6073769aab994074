#include "cli/request.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/test_views.h"
#include "common/fs/fs.h"
#include "common/testing/temp_dir.h"

namespace wb::cli {
namespace {

using ::testing::HasSubstr;
using testing::kFp;

constexpr char kFp2[] = "SHA256:AAAAztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";

DecisionFlags RemoveKeyFlags() {
  DecisionFlags f;
  f.instance = "hosts-a";
  f.operation = "remove_key";
  f.targets = std::vector<std::string>{"deploy", "backup"};
  f.fingerprint = kFp;
  f.reason = "key leaked in CI logs";
  f.reference = "SEC-123";
  return f;
}

void ExpectInvalid(const absl::Status& s, absl::string_view field) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(std::string(field))) << s;
}

TEST(RequestTest, BuildsFromFlags) {
  DecisionFlags f = RemoveKeyFlags();
  f.ttl = "2h";
  f.request_id = "req-1";
  auto req = BuildSubmitRequest(f);
  ASSERT_TRUE(req.ok()) << req.status();
  const auto& s = req->spec();
  EXPECT_EQ(s.connector_instance(), "hosts-a");
  EXPECT_EQ(s.operation(), "remove_key");
  ASSERT_EQ(s.targets_size(), 2);
  EXPECT_EQ(s.targets(0).object(), "deploy");
  EXPECT_EQ(s.targets(1).object(), "backup");
  EXPECT_EQ(s.params().ssh_authorized_keys().fingerprint(), kFp);
  EXPECT_EQ(s.reason(), "key leaked in CI logs");
  EXPECT_EQ(s.reference(), "SEC-123");
  EXPECT_EQ(s.ttl_seconds(), 7200u);
  EXPECT_EQ(req->request_id(), "req-1");
}

TEST(RequestTest, ExclusiveSetAndRemoveByCommentFromFlags) {
  DecisionFlags f = RemoveKeyFlags();
  f.fingerprint.reset();
  f.operation = "exclusive_set";
  f.keep_fingerprints = std::vector<std::string>{kFp, kFp2};
  auto req = BuildSubmitRequest(f);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->spec().params().ssh_authorized_keys().keep_fingerprints_size(), 2);

  DecisionFlags c = RemoveKeyFlags();
  c.fingerprint.reset();
  c.operation = "remove_by_comment";
  c.comment = "ci@build";
  req = BuildSubmitRequest(c);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->spec().params().ssh_authorized_keys().comment(), "ci@build");
}

TEST(RequestTest, BuildsFromYamlFileWithFlagsOverriding) {
  wb::testing::TempDir tmp;
  const std::string path = tmp.Sub("decision.yaml");
  ASSERT_TRUE(fs::WriteFileAtomic(path, absl::StrCat(R"(
connector_instance: hosts-a
operation: remove_key
params:
  ssh_authorized_keys:
    fingerprint: )",
                                                     kFp, R"(
targets:
  - object: deploy
  - object: backup
reason: from the file
reference: SEC-1
ttl_seconds: 600
)"))
                  .ok());
  DecisionFlags f;
  f.file = path;
  auto req = BuildSubmitRequest(f);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->spec().targets_size(), 2);
  EXPECT_EQ(req->spec().reason(), "from the file");
  EXPECT_EQ(req->spec().ttl_seconds(), 600u);

  f.reason = "from a flag";
  f.targets = std::vector<std::string>{"ops"};  // replaces the file's list
  f.fingerprint = kFp2;
  req = BuildSubmitRequest(f);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->spec().reason(), "from a flag");
  ASSERT_EQ(req->spec().targets_size(), 1);
  EXPECT_EQ(req->spec().targets(0).object(), "ops");
  EXPECT_EQ(req->spec().params().ssh_authorized_keys().fingerprint(), kFp2);
  EXPECT_EQ(req->spec().reference(), "SEC-1");  // kept from the file
  EXPECT_EQ(req->spec().connector_instance(), "hosts-a");
}

TEST(RequestTest, UnknownYamlKeyIsNamed) {
  writeback::v1::DecisionSpec spec;
  auto s = ParseSpecYaml("operation: remove_key\nreasn: typo\n", "d.yaml", &spec);
  ExpectInvalid(s, "reasn");
  EXPECT_THAT(std::string(s.message()), HasSubstr("unknown key"));
  s = ParseSpecYaml("params:\n  ssh_authorized_keys:\n    fingerprnt: x\n", "d.yaml", &spec);
  ExpectInvalid(s, "params.ssh_authorized_keys.fingerprnt");
  EXPECT_THAT(std::string(s.message()), HasSubstr("d.yaml"));
}

TEST(RequestTest, BadFingerprintIsNamed) {
  DecisionFlags f = RemoveKeyFlags();
  f.fingerprint = "MD5:aa:bb";
  ExpectInvalid(BuildSubmitRequest(f).status(), "spec.params.ssh_authorized_keys.fingerprint");

  f = RemoveKeyFlags();
  f.fingerprint.reset();
  f.operation = "exclusive_set";
  f.keep_fingerprints = std::vector<std::string>{kFp, "SHA256:short"};
  ExpectInvalid(BuildSubmitRequest(f).status(),
                "spec.params.ssh_authorized_keys.keep_fingerprints[1]");
}

TEST(RequestTest, LocalChecksNameTheField) {
  DecisionFlags f = RemoveKeyFlags();
  f.instance.reset();
  ExpectInvalid(BuildSubmitRequest(f).status(), "spec.connector_instance");

  f = RemoveKeyFlags();
  f.operation.reset();
  ExpectInvalid(BuildSubmitRequest(f).status(), "spec.operation");

  f = RemoveKeyFlags();
  f.operation = "delete_everything";
  ExpectInvalid(BuildSubmitRequest(f).status(), "spec.operation");

  f = RemoveKeyFlags();
  f.targets.reset();
  ExpectInvalid(BuildSubmitRequest(f).status(), "spec.targets");

  f = RemoveKeyFlags();
  f.targets = std::vector<std::string>{"deploy", ""};
  ExpectInvalid(BuildSubmitRequest(f).status(), "spec.targets[1].object");

  f = RemoveKeyFlags();
  f.targets = std::vector<std::string>{"deploy", "deploy"};
  ExpectInvalid(BuildSubmitRequest(f).status(), "spec.targets[1].object");

  f = RemoveKeyFlags();
  f.targets = std::vector<std::string>{"Root;rm"};  // not a POSIX user name
  ExpectInvalid(BuildSubmitRequest(f).status(), "spec.targets[0].object");

  f = RemoveKeyFlags();
  f.reason.reset();
  ExpectInvalid(BuildSubmitRequest(f).status(), "spec.reason");

  f = RemoveKeyFlags();
  f.reason = "line one\nline two";
  ExpectInvalid(BuildSubmitRequest(f).status(), "spec.reason");

  f = RemoveKeyFlags();
  f.comment = "not for remove_key";
  ExpectInvalid(BuildSubmitRequest(f).status(), "spec.params.ssh_authorized_keys.comment");

  f = RemoveKeyFlags();
  f.ttl = "0";
  ExpectInvalid(BuildSubmitRequest(f).status(), "--ttl");

  f = RemoveKeyFlags();
  f.file = "/nonexistent/decision.yaml";
  ExpectInvalid(BuildSubmitRequest(f).status(), "-f");
}

TEST(RequestTest, DurationFlags) {
  EXPECT_EQ(*ParseDurationFlag("--ttl", "90"), absl::Seconds(90));
  EXPECT_EQ(*ParseDurationFlag("--ttl", "90m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDurationFlag("--ttl", "1h30m"), absl::Minutes(90));
  ExpectInvalid(ParseDurationFlag("--timeout", "soon").status(), "--timeout");
  ExpectInvalid(ParseDurationFlag("--timeout", "-5s").status(), "--timeout");
  ExpectInvalid(ParseDurationFlag("--timeout", "inf").status(), "--timeout");
}

}  // namespace
}  // namespace wb::cli
