#include "cli/exit_codes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wb::cli {
namespace {

using ::testing::HasSubstr;

TEST(ExitCodesTest, GrpcCodesMapToDocumentedExitCodes) {
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::OK), 0);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::INVALID_ARGUMENT), 2);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::OUT_OF_RANGE), 2);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::UNAVAILABLE), 3);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::UNAUTHENTICATED), 3);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::PERMISSION_DENIED), 3);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::DEADLINE_EXCEEDED), 3);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::NOT_FOUND), 4);
  for (auto c : {grpc::StatusCode::INTERNAL, grpc::StatusCode::UNKNOWN,
                 grpc::StatusCode::FAILED_PRECONDITION, grpc::StatusCode::ALREADY_EXISTS,
                 grpc::StatusCode::RESOURCE_EXHAUSTED, grpc::StatusCode::ABORTED,
                 grpc::StatusCode::UNIMPLEMENTED, grpc::StatusCode::CANCELLED,
                 grpc::StatusCode::DATA_LOSS}) {
    EXPECT_EQ(ExitCodeFor(c), 1) << c;
  }
}

TEST(ExitCodesTest, AbslCodesShareTheMapping) {
  EXPECT_EQ(ExitCodeFor(absl::StatusCode::kInvalidArgument), kExitUsage);
  EXPECT_EQ(ExitCodeFor(absl::StatusCode::kNotFound), kExitNotFound);
  EXPECT_EQ(ExitCodeFor(absl::StatusCode::kUnavailable), kExitUnreachable);
  EXPECT_EQ(ExitCodeFor(absl::StatusCode::kInternal), kExitFailed);
}

TEST(ExitCodesTest, FromGrpcStatusKeepsCodeAndMessage) {
  absl::Status s = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "spec.targets[0].object: no agent"),
      "cp:7443");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "spec.targets[0].object: no agent");

  s = FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"), "cp:7443");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr("cp:7443"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("connection refused"));

  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK, "x").ok());
}

}  // namespace
}  // namespace wb::cli
