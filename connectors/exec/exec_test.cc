#include "connectors/exec/exec.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/config/config.h"
#include "common/fs/fs.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "connectors/registry.h"
#include "connectors/testing/contract_suite.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

#ifndef WB_SOURCE_DIR
#error "WB_SOURCE_DIR must name the source tree"
#endif

namespace wb::connectors {
namespace {

using ::wb::connectors::testing::ConnectorContractTest;
using ::wb::connectors::testing::ContractCase;
using ::wb::connectors::testing::ContractCaseName;
using ::wb::connectors::testing::ContractFixture;
using ::wb::connectors::testing::StalePlanPolicy;
using json = nlohmann::json;

const std::string kExample = std::string(WB_SOURCE_DIR) + "/deploy/exec-example/line_file.py";

std::string ReadOrEmpty(const std::string& path) {
  auto s = fs::ReadFile(path);
  return s.ok() ? *s : std::string();
}

// Writes an executable test program (operator code stand-in) into `dir`.
std::string WriteProgram(const std::string& dir, const std::string& name, const std::string& body) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << "#!/bin/sh\n" << body;
  ::chmod(path.c_str(), 0755);
  return path;
}

writeback::v1::ConnectorInstanceConfig ExecConfig(const std::string& program) {
  writeback::v1::ConnectorInstanceConfig cfg;
  cfg.set_name("ext");
  cfg.set_type("exec");
  cfg.add_allowed_operations("remove");
  cfg.mutable_exec()->set_program(program);
  return cfg;
}

std::unique_ptr<Connector> MustCreate(const writeback::v1::ConnectorInstanceConfig& cfg) {
  auto c = ExecConnector::Create(cfg);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

Action RemoveAction(const std::string& object) {
  Action a;
  a.operation = "remove";
  a.object = object;
  a.task_id = "task-1";
  a.decision_version = 7;
  a.params.mutable_exec();
  return a;
}

// True when `pid` no longer runs (gone, or a zombie nobody reaped yet).
bool ProcessGone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  const std::string stat = ReadOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

// ---------------------------------------------------------------------------
// The shared contract suite, run with the example program of deploy/.

class LineFileFixture : public ContractFixture {
 public:
  explicit LineFileFixture(std::string operation, std::map<std::string, std::string> args = {})
      : operation_(std::move(operation)), args_(std::move(args)) {}

  absl::StatusOr<std::unique_ptr<Connector>> MakeConnector() override {
    auto cfg = ExecConfig(kExample);
    cfg.add_allowed_operations("disable");
    (*cfg.mutable_exec()->mutable_env())["WB_LINE_FILE"] = file_;
    return ExecConnector::Create(cfg);
  }
  absl::Status Arrange() override {
    return fs::WriteFileAtomic(file_, "alpha\nsvc-old\nbeta\n", {.mode = 0644});
  }
  Action EffectiveAction() override {
    Action a = RemoveAction("svc-old");
    a.operation = operation_;
    for (const auto& [k, v] : args_) (*a.params.mutable_exec()->mutable_args())[k] = v;
    return a;
  }
  std::vector<std::pair<std::string, Action>> MalformedActions() override {
    std::vector<std::pair<std::string, Action>> out;
    auto with = [&](const std::string& name, auto mutate) {
      Action a = EffectiveAction();
      mutate(a);
      out.emplace_back(name, std::move(a));
    };
    with("unknown_operation", [](Action& a) { a.operation = "drop_table"; });
    with("missing_params", [](Action& a) { a.params.Clear(); });
    with("params_of_another_type",
         [](Action& a) { a.params.mutable_ssh_authorized_keys()->set_comment("x"); });
    with("bad_arg_key",
         [](Action& a) { (*a.params.mutable_exec()->mutable_args())["Bad-Key"] = "x"; });
    with("arg_value_with_newline",
         [](Action& a) { (*a.params.mutable_exec()->mutable_args())["reason"] = "a\nb"; });
    with("empty_object", [](Action& a) { a.object.clear(); });
    with("object_with_control_character", [](Action& a) { a.object = "svc\x01old"; });
    with("object_not_utf8", [](Action& a) { a.object = "svc\xff"; });
    // Well-formed for Writeback, refused by the program itself.
    with("argument_the_program_does_not_know",
         [](Action& a) { (*a.params.mutable_exec()->mutable_args())["colour"] = "red"; });
    return out;
  }
  absl::StatusOr<std::string> Snapshot() override { return ReadOrEmpty(file_); }
  absl::Status ChangeTargetBehindPlan() override {
    return fs::WriteFileAtomic(file_, ReadOrEmpty(file_) + "gamma\n", {.mode = 0644});
  }
  StalePlanPolicy stale_plan_policy() const override {
    // The program binds its plan to the file's SHA-256 and refuses a stale one.
    return StalePlanPolicy::kFailedPrecondition;
  }

 private:
  wb::testing::TempDir dir_;
  const std::string file_ = dir_.Sub("allowed_clients");
  std::string operation_;
  std::map<std::string, std::string> args_;
};

INSTANTIATE_TEST_SUITE_P(
    ExecExample, ConnectorContractTest,
    ::testing::Values(
        ContractCase{"remove", [] { return std::make_unique<LineFileFixture>("remove"); }},
        ContractCase{"disable_with_reason",
                     [] {
                       return std::make_unique<LineFileFixture>(
                           "disable",
                           std::map<std::string, std::string>{
                               {"reason", "INC-42: leaked; $(rm -rf /) `id` 'q' \"dq\""}});
                     }}),
    ContractCaseName);

// ---------------------------------------------------------------------------

class ExecConnectorTest : public ::testing::Test {
 protected:
  wb::testing::TempDir dir_;
  CallContext ctx_;
};

TEST_F(ExecConnectorTest, ExampleProgramRewritesTheFileAsPlanned) {
  const std::string file = dir_.Sub("list");
  ASSERT_TRUE(fs::WriteFileAtomic(file, "a\nsvc-old\nb\nsvc-old\n").ok());
  auto cfg = ExecConfig(kExample);
  (*cfg.mutable_exec()->mutable_env())["WB_LINE_FILE"] = file;
  auto c = MustCreate(cfg);
  ASSERT_NE(c, nullptr);
  auto plan = c->PlanChange(ctx_, RemoveAction("svc-old"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->changes_size(), 2);
  ASSERT_EQ(plan->before_size(), 2);
  EXPECT_EQ(plan->before(0).check(), "read_line_file");
  EXPECT_EQ(plan->before(0).facts().at("matching_lines"), "2");
  EXPECT_EQ(plan->before(1).check(), "exec_program");
  EXPECT_EQ(plan->before(1).facts().at("exit_code"), "0");
  auto applied = c->Apply(ctx_, RemoveAction("svc-old"), *plan);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(ReadOrEmpty(file), "a\nb\n");
}

TEST_F(ExecConnectorTest, ParametersWithShellMetacharactersReachTheProgramLiterally) {
  const std::string out = dir_.Sub("out");
  ASSERT_EQ(::mkdir(out.c_str(), 0700), 0);
  const std::string program = WriteProgram(dir_.path(), "record.sh",
                                           "printf '%s\\n' \"$#\" \"$@\" > \"$WB_OUT/argv\"\n"
                                           "cat > \"$WB_OUT/stdin\"\n"
                                           "env > \"$WB_OUT/env\"\n"
                                           "echo '{\"no_change\": true, \"summary\": \"ok\"}'\n");
  auto cfg = ExecConfig(program);
  (*cfg.mutable_exec()->mutable_env())["WB_OUT"] = out;
  auto c = MustCreate(cfg);
  ASSERT_NE(c, nullptr);
  ::setenv("WB_TEST_AGENT_SECRET", "must-not-leak", 1);

  const std::string pwned = dir_.Sub("pwned");
  const std::map<std::string, std::string> args = {
      {"subst", absl::StrCat("$(touch ", pwned, ")")},
      {"backticks", absl::StrCat("`touch ", pwned, "`")},
      {"chain", absl::StrCat("x; touch ", pwned, " && echo | cat > ", pwned, " || true &")},
      {"quotes", "'single' \"double\" \\back\\slash"},
      {"glob", "* ? [a-z] ~ {a,b}"},
      {"unicode", "caf\xc3\xa9 \xe2\x9c\x93"},
      {"empty", ""},
  };
  Action a = RemoveAction(absl::StrCat("svc; touch ", pwned, " #"));
  for (const auto& [k, v] : args) (*a.params.mutable_exec()->mutable_args())[k] = v;
  auto plan = c->PlanChange(ctx_, a);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->no_change());

  EXPECT_EQ(ReadOrEmpty(out + "/argv"), "1\nplan\n") << "argv must be exactly [program, verb]";
  const json req = json::parse(ReadOrEmpty(out + "/stdin"), nullptr, false);
  ASSERT_FALSE(req.is_discarded());
  EXPECT_EQ(req["contract"], "writeback.exec/v1");
  EXPECT_EQ(req["verb"], "plan");
  EXPECT_EQ(req["operation"], "remove");
  EXPECT_EQ(req["object"], a.object);
  EXPECT_EQ(req["task_id"], "task-1");
  EXPECT_EQ(req["decision_version"], 7);
  EXPECT_EQ(req["connector_instance"], "ext");
  ASSERT_TRUE(req["params"]["args"].is_object());
  EXPECT_EQ(req["params"]["args"].size(), args.size());
  for (const auto& [k, v] : args) EXPECT_EQ(req["params"]["args"][k], v) << k;
  EXPECT_FALSE(std::filesystem::exists(pwned)) << "something was interpreted by a shell";

  const std::string env = ReadOrEmpty(out + "/env");
  EXPECT_FALSE(absl::StrContains(env, "WB_TEST_AGENT_SECRET")) << env;
  EXPECT_TRUE(absl::StrContains(env, "PATH=/usr/local/sbin:")) << env;
  ::unsetenv("WB_TEST_AGENT_SECRET");
}

TEST_F(ExecConnectorTest, TimeoutKillsTheWholeProcessGroup) {
  const std::string out = dir_.Sub("out");
  ASSERT_EQ(::mkdir(out.c_str(), 0700), 0);
  // The program starts a helper that would write a file later, records both
  // pids, then hangs.
  const std::string program = WriteProgram(dir_.path(), "hang.sh",
                                           "( sleep 3; echo late > \"$WB_OUT/late\" ) &\n"
                                           "echo \"$$ $!\" > \"$WB_OUT/pids.tmp\"\n"
                                           "mv \"$WB_OUT/pids.tmp\" \"$WB_OUT/pids\"\n"
                                           "exec sleep 600\n");
  auto cfg = ExecConfig(program);
  cfg.mutable_exec()->set_timeout_ms(2000);
  (*cfg.mutable_exec()->mutable_env())["WB_OUT"] = out;
  auto c = MustCreate(cfg);
  ASSERT_NE(c, nullptr);

  auto plan = c->PlanChange(ctx_, RemoveAction("x"));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kDeadlineExceeded) << plan.status();
  EXPECT_TRUE(absl::StrContains(plan.status().message(), "timed out")) << plan.status();

  std::vector<std::string> parts =
      absl::StrSplit(ReadOrEmpty(out + "/pids"), absl::ByAnyChar(" \n"), absl::SkipEmpty());
  ASSERT_EQ(parts.size(), 2u) << "the program did not record its pids before the timeout";
  pid_t main_pid = 0, helper_pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(parts[0], &main_pid));
  ASSERT_TRUE(absl::SimpleAtoi(parts[1], &helper_pid));
  EXPECT_TRUE(wb::testing::WaitFor([&] {
    return ProcessGone(main_pid) && ProcessGone(helper_pid);
  })) << "a process of the group survived the timeout";
  // The helper would have written 3 s after it started; give it well past that.
  EXPECT_FALSE(wb::testing::WaitFor([&] { return std::filesystem::exists(out + "/late"); },
                                    std::chrono::seconds(4)))
      << "a process of the group kept running after the kill";

  // Verify observed nothing: "cannot tell" (UNVERIFIED), with the evidence.
  auto v = c->Verify(ctx_, RemoveAction("x"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_UNVERIFIED);
  ASSERT_GT(v->after_size(), 0);
  EXPECT_EQ(v->after(v->after_size() - 1).facts().at("end"), "timed_out");
}

TEST_F(ExecConnectorTest, ProgramDiesWithTheAgentThatStartedIt) {
  // An agent killed during an apply must not leave the program running: after
  // the restart, the interrupted apply is re-run (agent/executor), and an old
  // program still at work would race it.
  const std::string out = dir_.Sub("out");
  ASSERT_EQ(::mkdir(out.c_str(), 0700), 0);
  const std::string program = WriteProgram(dir_.path(), "slow.sh",
                                           "echo $$ > \"$WB_OUT/pid.tmp\"\n"
                                           "mv \"$WB_OUT/pid.tmp\" \"$WB_OUT/pid\"\n"
                                           "exec sleep 600\n");
  auto cfg = ExecConfig(program);
  (*cfg.mutable_exec()->mutable_env())["WB_OUT"] = out;
  auto c = MustCreate(cfg);
  ASSERT_NE(c, nullptr);

  const pid_t agent = ::fork();
  ASSERT_GE(agent, 0);
  if (agent == 0) {
    // The "agent": a call that does not end before it is killed.
    (void)c->PlanChange(ctx_, RemoveAction("x"));
    ::_exit(0);
  }
  pid_t program_pid = 0;
  ASSERT_TRUE(wb::testing::WaitFor([&] {
    return absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadOrEmpty(out + "/pid")), &program_pid) &&
           program_pid > 0;
  })) << "the program did not start";
  ASSERT_EQ(::kill(agent, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(agent, &status, 0), agent);
  EXPECT_TRUE(wb::testing::WaitFor([&] { return ProcessGone(program_pid); }))
      << "the program outlived the agent that started it";
  if (!ProcessGone(program_pid)) ::kill(program_pid, SIGKILL);
}

TEST_F(ExecConnectorTest, OutputOverTheCapIsRefused) {
  const std::string program = WriteProgram(dir_.path(), "chatty.sh", "exec yes\n");
  auto cfg = ExecConfig(program);
  cfg.mutable_exec()->set_max_output_bytes(1024);
  auto c = MustCreate(cfg);
  ASSERT_NE(c, nullptr);
  auto plan = c->PlanChange(ctx_, RemoveAction("x"));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kAborted) << plan.status();
  EXPECT_TRUE(absl::StrContains(plan.status().message(), "more than 1024 bytes")) << plan.status();

  auto v = c->Verify(ctx_, RemoveAction("x"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_UNVERIFIED);
  EXPECT_EQ(v->after(0).facts().at("end"), "output_too_large");

  // A well-formed response just over the cap is refused the same way.
  const std::string big = WriteProgram(
      dir_.path(), "big.sh",
      "printf '{\"no_change\": true, \"summary\": \"'; head -c 1100 /dev/zero | tr '\\0' a; "
      "printf '\"}'\n");
  cfg.mutable_exec()->set_program(big);
  c = MustCreate(cfg);
  ASSERT_NE(c, nullptr);
  plan = c->PlanChange(ctx_, RemoveAction("x"));
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kAborted) << plan.status();
}

TEST_F(ExecConnectorTest, NonZeroExitIsAFailureWithTruncatedStderrAsEvidence) {
  const std::string program = WriteProgram(
      dir_.path(), "fail.sh",
      "printf 'BEGIN:' >&2; head -c 10000 /dev/zero | tr '\\0' E >&2; printf ':END' >&2; exit 3\n");
  auto c = MustCreate(ExecConfig(program));
  ASSERT_NE(c, nullptr);

  auto v = c->Verify(ctx_, RemoveAction("x"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_UNVERIFIED);
  ASSERT_EQ(v->after_size(), 1);
  const auto& facts = v->after(0).facts();
  EXPECT_EQ(facts.at("exit_code"), "3");
  EXPECT_EQ(facts.at("stderr").size(), 4096u);
  EXPECT_TRUE(absl::StartsWith(facts.at("stderr"), "BEGIN:EEE"));
  EXPECT_FALSE(absl::StrContains(facts.at("stderr"), ":END"));
  EXPECT_EQ(facts.at("stderr_truncated"), "true");
  EXPECT_TRUE(absl::StrContains(v->detail(), "exited with status 3")) << v->detail();

  auto plan = c->PlanChange(ctx_, RemoveAction("x"));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(absl::StrContains(plan.status().message(), "exited with status 3"));
  EXPECT_TRUE(absl::StrContains(plan.status().message(), "stderr (truncated): BEGIN:EEE"));
  EXPECT_LT(plan.status().message().size(), 5000u);

  writeback::v1::Plan p;
  p.add_changes("x");
  auto applied = c->Apply(ctx_, RemoveAction("x"), p);
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kAborted) << applied.status();
  EXPECT_EQ(c->Check(ctx_).code(), absl::StatusCode::kAborted);
}

TEST_F(ExecConnectorTest, MalformedResponsesAreFailures) {
  struct Case {
    std::string name, body;
  };
  for (const Case& k : std::vector<Case>{
           {"not_json", "echo 'hello'"},
           {"not_an_object", "echo '[1]'"},
           {"no_change_missing", "echo '{\"summary\": \"x\"}'"},
           {"changes_missing", "echo '{\"no_change\": false}'"},
           {"bad_error_code", "echo '{\"error\": {\"code\": \"teapot\"}}'"},
           {"changes_not_strings", "echo '{\"no_change\": false, \"changes\": [1]}'"},
       }) {
    SCOPED_TRACE(k.name);
    auto c = MustCreate(ExecConfig(WriteProgram(dir_.path(), k.name + ".sh", k.body + "\n")));
    ASSERT_NE(c, nullptr);
    auto plan = c->PlanChange(ctx_, RemoveAction("x"));
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kAborted) << plan.status();
  }
  auto c = MustCreate(ExecConfig(
      WriteProgram(dir_.path(), "verify_bad.sh", "echo '{\"outcome\": \"probably\"}'\n")));
  auto v = c->Verify(ctx_, RemoveAction("x"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_UNVERIFIED);
  EXPECT_TRUE(absl::StrContains(v->detail(), "malformed response")) << v->detail();
}

// Re-verification turns a FAILED verification into DRIFTED ("the effect is
// undone") and an UNVERIFIED one into UNVERIFIABLE ("cannot tell"). Only the
// program's own "failed" is an observation that the effect is gone.
TEST_F(ExecConnectorTest, OnlyTheProgramsFailedOutcomeIsDriftEverythingElseIsCannotTell) {
  struct Case {
    std::string name, body;
    writeback::v1::Outcome want;
  };
  for (const Case& k : std::vector<Case>{
           {"says_failed", "echo '{\"outcome\": \"failed\", \"detail\": \"line is back\"}'",
            writeback::v1::OUTCOME_FAILED},
           {"says_verified", "echo '{\"outcome\": \"verified\"}'", writeback::v1::OUTCOME_VERIFIED},
           {"says_unverified", "echo '{\"outcome\": \"unverified\"}'",
            writeback::v1::OUTCOME_UNVERIFIED},
           {"error_failed",
            "echo '{\"error\": {\"code\": \"failed\", \"message\": \"target unreachable\"}}'",
            writeback::v1::OUTCOME_UNVERIFIED},
           {"error_failed_precondition",
            "echo '{\"error\": {\"code\": \"failed_precondition\", \"message\": \"x\"}}'",
            writeback::v1::OUTCOME_UNVERIFIED},
           {"crash", "echo 'Traceback: PermissionError' >&2; exit 1",
            writeback::v1::OUTCOME_UNVERIFIED},
           {"killed", "kill -9 $$", writeback::v1::OUTCOME_UNVERIFIED},
           {"no_outcome", "echo '{}'", writeback::v1::OUTCOME_UNVERIFIED},
       }) {
    SCOPED_TRACE(k.name);
    auto c = MustCreate(ExecConfig(WriteProgram(dir_.path(), k.name + ".sh", k.body + "\n")));
    ASSERT_NE(c, nullptr);
    auto v = c->Verify(ctx_, RemoveAction("x"));
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->outcome(), k.want) << v->detail();
    EXPECT_EQ(v->after(v->after_size() - 1).check(), "exec_program");
  }
  // invalid_argument stays a caller error, not an outcome.
  auto c = MustCreate(ExecConfig(
      WriteProgram(dir_.path(), "invalid.sh",
                   "echo '{\"error\": {\"code\": \"invalid_argument\", \"message\": \"no\"}}'\n")));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->Verify(ctx_, RemoveAction("x")).status().code(), absl::StatusCode::kInvalidArgument);
}

// The example program, re-verifying a file it cannot read (here: the path
// is a directory, so Python raises and exits 1): cannot tell, not drift.
// The same file with the line back is drift.
TEST_F(ExecConnectorTest, ExampleProgramThatCannotReadItsFileCannotTell) {
  const std::string file = dir_.Sub("list");
  auto cfg = ExecConfig(kExample);
  (*cfg.mutable_exec()->mutable_env())["WB_LINE_FILE"] = file;
  auto c = MustCreate(cfg);
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(::mkdir(file.c_str(), 0700), 0);
  auto v = c->Verify(ctx_, RemoveAction("svc-old"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_UNVERIFIED) << v->detail();
  EXPECT_TRUE(absl::StrContains(v->detail(), "IsADirectoryError")) << v->detail();
  ASSERT_EQ(::rmdir(file.c_str()), 0);
  ASSERT_TRUE(fs::WriteFileAtomic(file, "a\nsvc-old\n").ok());
  v = c->Verify(ctx_, RemoveAction("svc-old"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_FAILED) << v->detail();
  ASSERT_TRUE(fs::WriteFileAtomic(file, "a\n").ok());
  v = c->Verify(ctx_, RemoveAction("svc-old"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->outcome(), writeback::v1::OUTCOME_VERIFIED) << v->detail();
}

TEST_F(ExecConnectorTest, ProgramErrorCodesMapOntoStatusCodes) {
  auto c = MustCreate(ExecConfig(WriteProgram(
      dir_.path(), "stale.sh",
      "echo '{\"error\": {\"code\": \"failed_precondition\", \"message\": \"moved\"}}'\n")));
  ASSERT_NE(c, nullptr);
  writeback::v1::Plan p;
  p.add_changes("x");
  auto applied = c->Apply(ctx_, RemoveAction("x"), p);
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition) << applied.status();
  EXPECT_TRUE(absl::StrContains(applied.status().message(), "moved"));
}

TEST_F(ExecConnectorTest, CheckReportsTheProgramsAnswer) {
  auto cfg = ExecConfig(kExample);
  (*cfg.mutable_exec()->mutable_env())["WB_LINE_FILE"] = dir_.Sub("list");
  auto c = MustCreate(cfg);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->Check(ctx_).ok());
  (*cfg.mutable_exec()->mutable_env())["WB_LINE_FILE"] = dir_.Sub("missing/list");
  c = MustCreate(cfg);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->Check(ctx_).code(), absl::StatusCode::kUnavailable);
}

TEST_F(ExecConnectorTest, RunsAsTheConfiguredUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "switching user needs root";
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  const std::string program = WriteProgram(
      dir_.path(), "whoami.sh",
      "echo \"{\\\"no_change\\\": true, \\\"summary\\\": \\\"$(id -u):$(id -g):$(id -G)\\\"}\"\n");
  auto cfg = ExecConfig(program);
  cfg.mutable_exec()->set_run_as_user("nobody");
  cfg.mutable_exec()->set_run_as_group("nogroup");
  auto c = MustCreate(cfg);
  ASSERT_NE(c, nullptr);
  auto plan = c->PlanChange(ctx_, RemoveAction("x"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->summary(), "65534:65534:65534");
}

TEST_F(ExecConnectorTest, ConfigIsValidated) {
  const std::string good = WriteProgram(dir_.path(), "ok.sh", "exit 0\n");
  const std::string plain = dir_.Sub("plain");
  std::ofstream(plain) << "x";
  ::chmod(plain.c_str(), 0644);
  const std::string open = WriteProgram(dir_.path(), "open.sh", "exit 0\n");
  ::chmod(open.c_str(), 0777);

  struct Case {
    std::string name;
    std::function<void(writeback::v1::ConnectorInstanceConfig&)> mutate;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"no_settings", [](auto& c) { c.clear_exec(); }, "connectors[ext].exec"},
      {"relative", [](auto& c) { c.mutable_exec()->set_program("bin/tool"); }, ".exec.program"},
      {"dotdot", [&](auto& c) { c.mutable_exec()->set_program(dir_.path() + "/../x"); },
       ".exec.program"},
      {"missing", [&](auto& c) { c.mutable_exec()->set_program(dir_.Sub("nope")); },
       ".exec.program"},
      {"directory", [&](auto& c) { c.mutable_exec()->set_program(dir_.path()); }, ".exec.program"},
      {"not_executable", [&](auto& c) { c.mutable_exec()->set_program(plain); }, ".exec.program"},
      {"world_writable", [&](auto& c) { c.mutable_exec()->set_program(open); }, ".exec.program"},
      {"unknown_user", [](auto& c) { c.mutable_exec()->set_run_as_user("wb-no-such-user"); },
       ".exec.run_as_user"},
      {"unknown_group", [](auto& c) { c.mutable_exec()->set_run_as_group("wb-no-such-group"); },
       ".exec.run_as_group"},
      {"bad_env_name", [](auto& c) { (*c.mutable_exec()->mutable_env())["lower"] = "x"; },
       ".exec.env.lower"},
      {"env_value_newline", [](auto& c) { (*c.mutable_exec()->mutable_env())["A"] = "x\ny"; },
       ".exec.env.A"},
      {"timeout_too_long", [](auto& c) { c.mutable_exec()->set_timeout_ms(7'200'000); },
       ".exec.timeout_ms"},
      {"working_dir_relative", [](auto& c) { c.mutable_exec()->set_working_dir("tmp"); },
       ".exec.working_dir"},
      {"idempotent_unknown_operation",
       [](auto& c) { c.mutable_exec()->add_idempotent_operations("remove_key"); },
       ".exec.idempotent_operations[0]: unknown exec operation 'remove_key'"},
      {"idempotent_twice",
       [](auto& c) {
         c.mutable_exec()->add_idempotent_operations("remove");
         c.mutable_exec()->add_idempotent_operations("remove");
       },
       ".exec.idempotent_operations[1]: 'remove' is listed twice"},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.name);
    auto cfg = ExecConfig(good);
    k.mutate(cfg);
    auto c = ExecConnector::Create(cfg);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(c.status().message(), k.field)) << c.status();
  }
  EXPECT_TRUE(ExecConnector::Create(ExecConfig(good)).ok());
}

TEST_F(ExecConnectorTest, ExampleConfigLoadsAndBuildsThroughTheRegistry) {
  writeback::v1::ConnectorInstanceConfig cfg;
  const std::string yaml = std::string(WB_SOURCE_DIR) + "/deploy/exec-example/connector.yaml";
  const absl::Status loaded = config::LoadYamlFile(yaml, &cfg);
  ASSERT_TRUE(loaded.ok()) << loaded;
  EXPECT_EQ(cfg.type(), "exec");
  EXPECT_EQ(cfg.exec().env().at("WB_LINE_FILE"), "/etc/legacy-service/allowed_clients");
  // The example program is idempotent (a second run finds no matching line)
  // and says so.
  EXPECT_THAT(cfg.exec().idempotent_operations(),
              ::testing::UnorderedElementsAre("remove", "disable"));

  // Installed where this machine has it, the example builds through the registry.
  cfg.mutable_exec()->set_program(kExample);
  if (::geteuid() != 0) {
    cfg.mutable_exec()->clear_run_as_user();
    cfg.mutable_exec()->clear_run_as_group();
  }
  Registry registry;
  RegisterBuiltinConnectors(registry);
  auto c = registry.Create(cfg);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->type(), "exec");
}

}  // namespace
}  // namespace wb::connectors
