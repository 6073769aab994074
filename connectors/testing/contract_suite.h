// The connector contract suite: the behaviour every Connector promises
// (connectors/connector.h), checked against a real target by GoogleTest.
//
// How a new connector plugs in (see connectors/ssh_authorized_keys/
// ssh_authorized_keys_test.cc for a complete example):
//
//   1. In the connector's test, write a ContractFixture adapter. One fresh
//      adapter object is made per test; it owns its target (temp dir, test
//      server, ...) and cleans it up in its destructor.
//        MakeConnector()      the connector under test, configured for the
//                             adapter's target;
//        Arrange()            puts the target into a state where
//                             EffectiveAction() has an effect;
//        EffectiveAction()    an Action that changes the arranged target;
//        MalformedActions()   named Actions that must be refused with
//                             INVALID_ARGUMENT (bad operation, bad params,
//                             bad target object);
//        Snapshot()           the target's observable state as bytes: equal
//                             snapshots mean "nothing changed";
//        ChangeTargetBehindPlan()  changes the target after a plan was made,
//                             leaving EffectiveAction() still effective;
//        stale_plan_policy()  what Apply does with such a stale plan (decide
//                             per connector and say why in the adapter).
//   2. Instantiate the suite once per case, in exactly one .cc of the test
//      binary (the TEST_Ps below are defined in this header):
//        INSTANTIATE_TEST_SUITE_P(
//            MyConnector, ConnectorContractTest,
//            ::testing::Values(ContractCase{"remove_x", [] { return
//                std::make_unique<MyFixture>(...); }}),
//            ContractCaseName);
//   3. Link the test with wb_connector_contract (wb_test(... LIBS
//      wb_connector_contract)).
//
// What it checks, per case:
//   - type() is a connector type of the actions catalogue;
//   - Check() is OK on the healthy fixture;
//   - PlanChange only reads (snapshot unchanged), reports !no_change, a
//     before-state and the intended changes;
//   - Verify before Apply does not claim VERIFIED;
//   - Apply then Verify gives VERIFIED with an observation, and the target
//     changed;
//   - a second PlanChange is no_change, and applying it changes nothing;
//     re-applying the first plan changes nothing either (OK or
//     FAILED_PRECONDITION);
//   - every malformed Action is refused with INVALID_ARGUMENT by PlanChange,
//     Verify and Apply (Apply given a valid plan), and nothing changes;
//   - Apply with a plan made before the target changed: FAILED_PRECONDITION
//     and nothing changed (then a fresh plan works), or, for connectors
//     declaring kStillCorrect, a result that leaves the target verified.
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/actions/actions.h"
#include "common/clock/clock.h"
#include "connectors/connector.h"
#include "gtest/gtest.h"

namespace wb::connectors::testing {

enum class StalePlanPolicy {
  // Apply refuses a plan made before the target changed, and changes nothing.
  kFailedPrecondition,
  // Apply acts on the target as it is now; the target ends up correct.
  kStillCorrect,
};

// The adapter a connector's test supplies. Not thread-safe; one per test.
class ContractFixture {
 public:
  virtual ~ContractFixture() = default;
  virtual absl::StatusOr<std::unique_ptr<Connector>> MakeConnector() = 0;
  virtual absl::Status Arrange() = 0;
  virtual Action EffectiveAction() = 0;
  virtual std::vector<std::pair<std::string, Action>> MalformedActions() = 0;
  virtual absl::StatusOr<std::string> Snapshot() = 0;
  virtual absl::Status ChangeTargetBehindPlan() = 0;
  virtual StalePlanPolicy stale_plan_policy() const = 0;
};

struct ContractCase {
  std::string name;  // test name suffix: letters, digits, '_'
  std::function<std::unique_ptr<ContractFixture>()> make;
};

inline void PrintTo(const ContractCase& c, std::ostream* os) { *os << c.name; }

// Name generator for INSTANTIATE_TEST_SUITE_P.
inline std::string ContractCaseName(const ::testing::TestParamInfo<ContractCase>& info) {
  return info.param.name;
}

class ConnectorContractTest : public ::testing::TestWithParam<ContractCase> {
 protected:
  void SetUp() override {
    fixture_ = GetParam().make();
    ASSERT_NE(fixture_, nullptr);
    auto c = fixture_->MakeConnector();
    ASSERT_TRUE(c.ok()) << c.status();
    connector_ = std::move(*c);
    ASSERT_NE(connector_, nullptr);
    const absl::Status arranged = fixture_->Arrange();
    ASSERT_TRUE(arranged.ok()) << arranged;
    ctx_.clock = &clock_;
  }

  std::string Snap() {
    auto s = fixture_->Snapshot();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : std::string("<snapshot failed>");
  }

  // PlanChange of the effective action, which must succeed.
  writeback::v1::Plan MustPlan() {
    auto plan = connector_->PlanChange(ctx_, fixture_->EffectiveAction());
    EXPECT_TRUE(plan.ok()) << plan.status();
    return plan.ok() ? *plan : writeback::v1::Plan();
  }

  std::unique_ptr<ContractFixture> fixture_;
  std::unique_ptr<Connector> connector_;
  FakeClock clock_;
  CallContext ctx_;
};

TEST_P(ConnectorContractTest, TypeIsInTheActionsCatalogue) {
  const auto& types = actions::ConnectorTypes();
  EXPECT_NE(std::find(types.begin(), types.end(), std::string(connector_->type())), types.end())
      << connector_->type();
  EXPECT_FALSE(actions::OperationsOf(connector_->type()).empty());
}

TEST_P(ConnectorContractTest, CheckIsOkOnAHealthyTarget) {
  const absl::Status s = connector_->Check(ctx_);
  EXPECT_TRUE(s.ok()) << s;
}

TEST_P(ConnectorContractTest, PlanChangeOnlyReadsAndFindsWork) {
  const std::string before = Snap();
  auto plan = connector_->PlanChange(ctx_, fixture_->EffectiveAction());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->no_change()) << plan->summary();
  EXPECT_GT(plan->before_size(), 0) << "PlanChange must capture the before-state";
  EXPECT_GT(plan->changes_size(), 0) << "PlanChange must list the intended changes";
  EXPECT_EQ(Snap(), before) << "PlanChange changed the target";
  // Planning twice gives the same answer.
  auto again = connector_->PlanChange(ctx_, fixture_->EffectiveAction());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->no_change(), plan->no_change());
  EXPECT_EQ(again->state(), plan->state());
  EXPECT_EQ(Snap(), before);
}

TEST_P(ConnectorContractTest, VerifyBeforeApplyIsNotVerified) {
  const std::string before = Snap();
  auto v = connector_->Verify(ctx_, fixture_->EffectiveAction());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_NE(v->outcome(), writeback::v1::OUTCOME_VERIFIED) << v->detail();
  EXPECT_EQ(Snap(), before) << "Verify changed the target";
}

TEST_P(ConnectorContractTest, ApplyThenVerifyIsVerified) {
  const std::string before = Snap();
  const auto plan = MustPlan();
  auto applied = connector_->Apply(ctx_, fixture_->EffectiveAction(), plan);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_GT(applied->changes_size(), 0) << "Apply must report what it changed";
  EXPECT_NE(Snap(), before) << "Apply did not change the target";
  auto v = connector_->Verify(ctx_, fixture_->EffectiveAction());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_VERIFIED) << v->detail();
  EXPECT_GT(v->after_size(), 0) << "Verify must return its observation";
}

TEST_P(ConnectorContractTest, SecondRunChangesNothing) {
  const auto plan = MustPlan();
  auto applied = connector_->Apply(ctx_, fixture_->EffectiveAction(), plan);
  ASSERT_TRUE(applied.ok()) << applied.status();
  const std::string after_first = Snap();

  auto second = connector_->PlanChange(ctx_, fixture_->EffectiveAction());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->no_change()) << second->summary();
  EXPECT_EQ(second->changes_size(), 0);
  auto applied2 = connector_->Apply(ctx_, fixture_->EffectiveAction(), *second);
  ASSERT_TRUE(applied2.ok()) << applied2.status();
  EXPECT_EQ(applied2->changes_size(), 0);
  EXPECT_EQ(Snap(), after_first) << "second Apply changed the target";

  // Redelivery of the first plan: refused or a no-op, never a change.
  auto again = connector_->Apply(ctx_, fixture_->EffectiveAction(), plan);
  if (again.ok()) {
    EXPECT_EQ(again->changes_size(), 0);
  } else {
    EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition) << again.status();
  }
  EXPECT_EQ(Snap(), after_first) << "re-applying the first plan changed the target";

  auto v = connector_->Verify(ctx_, fixture_->EffectiveAction());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_VERIFIED) << v->detail();
}

TEST_P(ConnectorContractTest, MalformedActionsAreRefusedAndChangeNothing) {
  const auto malformed = fixture_->MalformedActions();
  ASSERT_FALSE(malformed.empty()) << "the adapter must supply malformed actions";
  const std::string before = Snap();
  const auto valid_plan = MustPlan();
  for (const auto& [name, action] : malformed) {
    SCOPED_TRACE(name);
    auto plan = connector_->PlanChange(ctx_, action);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument) << plan.status();
    auto v = connector_->Verify(ctx_, action);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << v.status();
    auto applied = connector_->Apply(ctx_, action, valid_plan);
    EXPECT_EQ(applied.status().code(), absl::StatusCode::kInvalidArgument) << applied.status();
    EXPECT_EQ(Snap(), before) << "a malformed action changed the target";
  }
}

TEST_P(ConnectorContractTest, StalePlan) {
  const auto plan = MustPlan();
  const absl::Status changed = fixture_->ChangeTargetBehindPlan();
  ASSERT_TRUE(changed.ok()) << changed;
  const std::string moved = Snap();
  auto applied = connector_->Apply(ctx_, fixture_->EffectiveAction(), plan);
  switch (fixture_->stale_plan_policy()) {
    case StalePlanPolicy::kFailedPrecondition: {
      EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition) << applied.status();
      EXPECT_EQ(Snap(), moved) << "Apply acted on a stale plan";
      // A fresh plan sees the new state and works.
      const auto fresh = MustPlan();
      EXPECT_FALSE(fresh.no_change());
      auto again = connector_->Apply(ctx_, fixture_->EffectiveAction(), fresh);
      ASSERT_TRUE(again.ok()) << again.status();
      break;
    }
    case StalePlanPolicy::kStillCorrect:
      ASSERT_TRUE(applied.ok()) << applied.status();
      break;
  }
  auto v = connector_->Verify(ctx_, fixture_->EffectiveAction());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_VERIFIED) << v->detail();
}

}  // namespace wb::connectors::testing
