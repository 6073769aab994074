#include "cli/format.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_split.h"
#include "cli/test_views.h"

namespace wb::cli {
namespace {

namespace v1 = writeback::v1;
using ::testing::HasSubstr;
using testing::kNowMs;
using ::testing::Not;

const absl::Time kNow = absl::FromUnixMillis(kNowMs);

std::vector<std::string> Lines(const std::string& s) {
  return absl::StrSplit(s, '\n', absl::SkipEmpty());
}

TEST(FormatTest, TimesAreRfc3339UtcWithAge) {
  EXPECT_EQ(FormatTime(kNowMs), "2027-01-15T08:00:00Z");
  EXPECT_EQ(FormatTime(0), "-");
  EXPECT_EQ(FormatAge(kNowMs - 30'000, kNow), "30s ago");
  EXPECT_EQ(FormatAge(kNowMs - 5 * 60'000, kNow), "5m ago");
  EXPECT_EQ(FormatAge(kNowMs - 3 * 3'600'000, kNow), "3h ago");
  EXPECT_EQ(FormatAge(kNowMs - 3 * 86'400'000LL, kNow), "3d ago");
  EXPECT_EQ(FormatAge(kNowMs + 2 * 3'600'000, kNow), "in 2h");
  EXPECT_EQ(FormatAge(0, kNow), "-");
  EXPECT_EQ(FormatTimeAndAge(kNowMs - 60'000, kNow), "2027-01-15T07:59:00Z (1m ago)");
}

TEST(FormatTest, EnumNamesLoseTheirPrefix) {
  EXPECT_EQ(DecisionStateName(v1::DECISION_STATE_PENDING_APPROVAL), "PENDING_APPROVAL");
  EXPECT_EQ(TaskStateName(v1::TASK_STATE_SUPERSEDED), "SUPERSEDED");
  EXPECT_EQ(OutcomeName(v1::OUTCOME_ALREADY_COMPLIANT), "ALREADY_COMPLIANT");
  EXPECT_EQ(RejectReasonName(v1::REJECT_REASON_ROLLBACK), "ROLLBACK");
  // A state added by a newer server still prints.
  EXPECT_EQ(DecisionStateName(static_cast<v1::DecisionState>(77)), "DecisionState(77)");
}

TEST(FormatTest, ParsesDecisionStatesInAnySpelling) {
  EXPECT_EQ(*ParseDecisionState("verified"), v1::DECISION_STATE_VERIFIED);
  EXPECT_EQ(*ParseDecisionState("PENDING_APPROVAL"), v1::DECISION_STATE_PENDING_APPROVAL);
  EXPECT_EQ(*ParseDecisionState("DECISION_STATE_FAILED"), v1::DECISION_STATE_FAILED);
  auto bad = ParseDecisionState("done");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("--state"));
  EXPECT_THAT(bad.status().message(), HasSubstr("VERIFIED"));
  EXPECT_FALSE(ParseDecisionState("unspecified").ok());
}

TEST(FormatTest, OutputFormatNames) {
  EXPECT_EQ(*ParseOutputFormat("table"), OutputFormat::kTable);
  EXPECT_EQ(*ParseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(*ParseOutputFormat("yaml"), OutputFormat::kYaml);
  EXPECT_FALSE(ParseOutputFormat("xml").ok());
}

TEST(FormatTest, PrintableEscapesControlCharacters) {
  EXPECT_EQ(Printable("plain text é"), "plain text é");
  EXPECT_EQ(Printable("a\x1b[31mb"), "a\\x1b[31mb");
  EXPECT_EQ(Printable("line\nnext"), "line\\nnext");
  EXPECT_EQ(Printable("c1\xc2\x9b"), "c1\\u009b");
}

// Issue 15: what reorders or hides text is shown visibly, in tables, JSON
// and YAML alike (JSON and YAML keep the values: their own escapes).
TEST(FormatTest, BidiAndInvisibleCharactersAreShownVisibly) {
  EXPECT_EQ(Printable("invoice\u202Etxt.exe"), "invoice\\u202etxt.exe");
  EXPECT_EQ(Printable("ro\u200Bot"), "ro\\u200bot");
  EXPECT_EQ(Printable("bad\xff"), "bad\\xff");
  writeback::v1::DecisionView v;
  v.mutable_statement()->set_reason("pay \u202Eexe.txt");
  v.mutable_statement()->add_targets()->set_object("/srv/a\u200Bb");
  const std::string table = DecisionViewTable(v, kNow);
  EXPECT_THAT(table, HasSubstr("pay \\u202eexe.txt"));
  EXPECT_THAT(table, HasSubstr("/srv/a\\u200bb"));
  EXPECT_THAT(table, Not(HasSubstr("\u202E")));
  auto json = RenderMessage(v, OutputFormat::kJson);
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, HasSubstr("pay \\u202eexe.txt"));
  EXPECT_THAT(*json, Not(HasSubstr("\u202E")));
  writeback::v1::DecisionView back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*json, &back).ok());
  EXPECT_EQ(back.statement().reason(), "pay \u202Eexe.txt");
  auto yaml = RenderMessage(v, OutputFormat::kYaml);
  ASSERT_TRUE(yaml.ok());
  EXPECT_THAT(*yaml, Not(HasSubstr("\u202E")));
  EXPECT_THAT(*yaml, Not(HasSubstr("\u200B")));
  YAML::Node doc = YAML::Load(*yaml);
  EXPECT_EQ(doc["statement"]["reason"].as<std::string>(), "pay \u202Eexe.txt");
  EXPECT_EQ(doc["statement"]["targets"][0]["object"].as<std::string>(), "/srv/a\u200Bb");
}

TEST(FormatTest, TableColumnsAlign) {
  Table t({"ID", "NAME", "NOTE"});
  t.AddRow({"1", "short", "x"});
  t.AddRow({"1234", "é-accented", "y"});
  const auto lines = Lines(t.Render());
  ASSERT_EQ(lines.size(), 3u);
  // The NAME and NOTE columns start at the same display column on every line.
  EXPECT_EQ(lines[0].find("NAME"), lines[1].find("short"));
  EXPECT_EQ(lines[0].find("NAME"), lines[2].find("é-accented"));
  EXPECT_EQ(lines[0].find("NOTE"), lines[1].find("x"));
  // "é" is two bytes but one column wide.
  EXPECT_EQ(lines[0].find("NOTE") + 1, lines[2].find("y"));
}

TEST(FormatTest, DecisionViewTableShowsStatementTasksAndEvidence) {
  const std::string out = DecisionViewTable(testing::SampleDecisionView(), kNow);
  for (const char* want :
       {"d-0001", "42", "FAILED (1 of 2 tasks failed)", "hosts-a", "remove_key", "deploy, backup",
        "spiffe://writeback.test/operator/alice", "0042", "2027-01-15T07:55:00Z (5m ago)",
        "2027-01-15T08:55:00Z (in 55m)",
        // task 1: plan, applied, verification with observations and facts
        "spiffe://writeback.test/agent/a1", "read_authorized_keys",
        "/home/deploy/.ssh/authorized_keys", "3 keys; 1 matches the fingerprint",
        "facts: keys=3, matching=1", "remove key SHA256:uNiV... (line 2)", "removed 1 key",
        "VERIFIED: key absent on re-read", "facts: matching=0, note=null",
        // task 2: rejected
        "REJECTED", "NOT_ALLOWED", "operation not in allowlist"}) {
    EXPECT_THAT(out, HasSubstr(want)) << want;
  }
  // Server text cannot drive the terminal.
  EXPECT_THAT(out, Not(HasSubstr("\x1b")));
  EXPECT_THAT(out, HasSubstr("\\x1b[31mred"));
  EXPECT_THAT(out, HasSubstr("2 keys: first line\\nsecond"));
}

TEST(FormatTest, DecisionListTable) {
  v1::ListDecisionsResponse r;
  *r.add_decisions() = testing::SampleDecisionView();
  auto* d2 = r.add_decisions();
  d2->mutable_statement()->set_decision_id("d-0002");
  d2->mutable_statement()->set_connector_instance("hosts-b");
  d2->mutable_statement()->set_operation("exclusive_set");
  for (const char* u : {"u1", "u2", "u3", "u4", "u5"}) {
    d2->mutable_statement()->add_targets()->set_object(u);
  }
  d2->set_state(v1::DECISION_STATE_DISPATCHED);
  const auto lines = Lines(DecisionListTable(r, kNow));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], HasSubstr("ID"));
  EXPECT_THAT(lines[0], HasSubstr("CREATED"));
  EXPECT_THAT(lines[1], HasSubstr("d-0001"));
  EXPECT_THAT(lines[1], HasSubstr("FAILED"));
  EXPECT_THAT(lines[1], HasSubstr("deploy,backup"));
  EXPECT_THAT(lines[1], HasSubstr("2027-01-15T07:55:00Z"));
  EXPECT_THAT(lines[1], HasSubstr("5m ago"));
  EXPECT_THAT(lines[2], HasSubstr("u1,u2,u3 +2"));
  EXPECT_EQ(lines[0].find("STATE"), lines[2].find("DISPATCHED"));
}

TEST(FormatTest, AgentListTable) {
  const auto lines = Lines(AgentListTable(testing::SampleAgents(), kNow));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], HasSubstr("LAST-HEARTBEAT"));
  EXPECT_THAT(lines[1], HasSubstr("spiffe://writeback.test/agent/a1"));
  EXPECT_THAT(lines[1], HasSubstr("yes"));
  EXPECT_THAT(lines[1], HasSubstr("5m ago"));
  EXPECT_THAT(lines[1], HasSubstr("hosts-a,hosts-b"));
  EXPECT_THAT(lines[1], HasSubstr("site=paris,zone=pci"));  // sorted
  EXPECT_THAT(lines[2], HasSubstr("no"));
  EXPECT_EQ(lines[0].find("CONNECTED"), lines[1].find("yes"));
  EXPECT_EQ(lines[0].find("CONNECTED"), lines[2].find("no"));
}

TEST(FormatTest, JsonParsesBackToTheSameMessage) {
  const v1::DecisionView view = testing::SampleDecisionView();
  auto json = FormatDecisionView(view, OutputFormat::kJson, kNow);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"connector_instance\""));  // proto field names
  v1::DecisionView back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*json, &back).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(view, back));
  // One document.
  auto doc = nlohmann::json::parse(*json, nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["tasks"][1]["reject_reason"], "REJECT_REASON_NOT_ALLOWED");

  auto agents = FormatAgentList(testing::SampleAgents(), OutputFormat::kJson, kNow);
  ASSERT_TRUE(agents.ok());
  v1::ListAgentsResponse agents_back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*agents, &agents_back).ok());
  EXPECT_TRUE(
      google::protobuf::util::MessageDifferencer::Equals(testing::SampleAgents(), agents_back));
  // Primitive fields are printed even when false.
  EXPECT_THAT(*agents, HasSubstr("\"connected\": false"));
}

// Every value of the JSON document reads back from the YAML unchanged.
void ExpectSame(const nlohmann::json& j, const YAML::Node& y, const std::string& path) {
  SCOPED_TRACE(path);
  switch (j.type()) {
    case nlohmann::json::value_t::object:
      ASSERT_TRUE(y.IsMap());
      EXPECT_EQ(y.size(), j.size());
      for (const auto& [k, v] : j.items()) {
        ASSERT_TRUE(y[k].IsDefined()) << k;
        ExpectSame(v, y[k], path + "." + k);
      }
      break;
    case nlohmann::json::value_t::array:
      ASSERT_TRUE(y.IsSequence());
      ASSERT_EQ(y.size(), j.size());
      for (size_t i = 0; i < j.size(); ++i) ExpectSame(j[i], y[i], path + "[]");
      break;
    case nlohmann::json::value_t::string: {
      ASSERT_TRUE(y.IsScalar());
      EXPECT_EQ(y.as<std::string>(), j.get<std::string>());
      // A plain scalar must not read as another type.
      if (y.Tag() == "?") {
        bool b;
        EXPECT_FALSE(YAML::convert<bool>::decode(y, b)) << y.Scalar();
        double d;
        EXPECT_FALSE(YAML::convert<double>::decode(y, d)) << y.Scalar();
      }
      break;
    }
    case nlohmann::json::value_t::boolean:
      EXPECT_EQ(y.as<bool>(), j.get<bool>());
      break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      EXPECT_EQ(y.as<int64_t>(), j.get<int64_t>());
      break;
    default:
      ADD_FAILURE() << "unexpected JSON type";
  }
}

TEST(FormatTest, YamlParsesWithYamlCppToTheSameValues) {
  const v1::DecisionView view = testing::SampleDecisionView();
  auto json = FormatDecisionView(view, OutputFormat::kJson, kNow);
  auto yaml = FormatDecisionView(view, OutputFormat::kYaml, kNow);
  ASSERT_TRUE(json.ok());
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  YAML::Node y;
  ASSERT_NO_THROW(y = YAML::Load(*yaml)) << *yaml;
  ExpectSame(nlohmann::json::parse(*json), y, "");
  EXPECT_EQ(y["statement"]["reason"].as<std::string>(), "yes");
  EXPECT_EQ(y["tasks"][0]["verification"]["after"][0]["detail"].as<std::string>(),
            "2 keys: first line\nsecond: line # not a comment");

  auto agents = FormatAgentList(testing::SampleAgents(), OutputFormat::kYaml, kNow);
  ASSERT_TRUE(agents.ok());
  YAML::Node ya = YAML::Load(*agents);
  EXPECT_TRUE(ya["agents"][0]["connected"].as<bool>());
  EXPECT_FALSE(ya["agents"][1]["connected"].as<bool>());
  EXPECT_EQ(ya["agents"][0]["labels"]["zone"].as<std::string>(), "pci");
  ExpectSame(
      nlohmann::json::parse(*FormatAgentList(testing::SampleAgents(), OutputFormat::kJson, kNow)),
      ya, "");
}

TEST(FormatTest, EmptyListsRender) {
  v1::ListDecisionsResponse empty;
  auto yaml = FormatDecisionList(empty, OutputFormat::kYaml, kNow);
  ASSERT_TRUE(yaml.ok());
  YAML::Node y = YAML::Load(*yaml);
  EXPECT_TRUE(y["decisions"].IsSequence());
  EXPECT_EQ(y["decisions"].size(), 0u);
  EXPECT_EQ(Lines(DecisionListTable(empty, kNow)).size(), 1u);  // the header
}

TEST(FormatTest, SubmitResponse) {
  v1::SubmitDecisionResponse r;
  r.set_decision_id("d-9");
  r.set_version(7);
  r.set_state(v1::DECISION_STATE_DISPATCHED);
  const std::string t = *FormatSubmitResponse(r, OutputFormat::kTable);
  EXPECT_THAT(t, HasSubstr("d-9"));
  EXPECT_THAT(t, HasSubstr("7"));
  EXPECT_THAT(t, HasSubstr("DISPATCHED"));
  YAML::Node y = YAML::Load(*FormatSubmitResponse(r, OutputFormat::kYaml));
  EXPECT_EQ(y["decision_id"].as<std::string>(), "d-9");
  EXPECT_EQ(y["state"].as<std::string>(), "DECISION_STATE_DISPATCHED");
}

}  // namespace
}  // namespace wb::cli
