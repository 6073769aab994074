// The dashboard in a real browser: headless Chromium loads the page served
// by a running control plane with two agents, one of which is stopped
// mid-test, and the rendered page must show one ONLINE and one STALE or
// OFFLINE agent and the decision VERIFIED. A screenshot is kept in the
// test's output directory (WB_TEST_OUTPUT_DIR).
#include <google/protobuf/util/json_util.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/browser/view_test_support.h"
#include "tests/e2e/harness.h"
#include "tests/integration/ssh_test_keys.h"
#include "writeback/v1/admin_service.pb.h"

namespace wb::e2e {
namespace {

using ::testing::HasSubstr;

constexpr char kChromium[] = "/usr/bin/chromium";

// data-state of the element with `attr`="`value`" in the dumped DOM.
std::string DataState(const std::string& dom, const std::string& attr, const std::string& value) {
  const std::regex re(absl::StrCat("<tr[^>]*", attr, "=\"", value, "\"[^>]*>"));
  std::smatch m;
  if (!std::regex_search(dom, m, re)) return "";
  std::smatch s;
  const std::string tag = m.str();
  if (!std::regex_search(tag, s, std::regex("data-state=\"([A-Z_]+)\""))) return "";
  return s[1].str();
}

TEST(DashboardBrowserTest, ShowsAgentStatesAndTheDecision) {
  if (access(kChromium, X_OK) != 0) {
    GTEST_SKIP() << kChromium << " is not installed (scripts/install-deps.sh installs it)";
  }
  KeysSandbox sandbox;
  const SshTestKey leaked = MakeSshKey("leaked@ci");
  sandbox.Write("deploy", absl::StrCat(leaked.line, "\n"));
  testing::TempDir tmp;
  const std::string port_file = tmp.Sub("web.port");

  Harness::Options o;
  o.agents["paris-1"] = {sandbox.Instance("paris-ssh")};
  o.agents["lyon-1"] = {sandbox.Instance("lyon-ssh")};
  o.tweak_agent = [](writeback::v1::AgentConfig& a) {
    const bool paris = a.agent_id().find("paris") != std::string::npos;
    (*a.mutable_labels())["site"] = paris ? "paris" : "lyon";
    (*a.mutable_labels())["segment"] = paris ? "pci" : "plant";
  };
  o.tweak_controlplane = [&](writeback::v1::ControlPlaneConfig& c) {
    c.set_web_listen_address("127.0.0.1:0");
    c.set_web_port_file(port_file);
  };
  auto h = Harness::Start(o);
  ASSERT_TRUE(h.ok()) << h.status();
  const int port = ReadPort(port_file);
  ASSERT_GT(port, 0);

  auto sub = (*h)->Submit(SshRemoveKeySpec("paris-ssh", {"deploy"}, leaked.fingerprint, "leak"));
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto done = (*h)->WaitTerminal(sub->decision_id());
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->state(), writeback::v1::DECISION_STATE_VERIFIED);

  // One agent goes away mid-test; the fleet model notices.
  (*h)->StopAgent("lyon-1");
  const std::string lyon = (*h)->agent_spiffe_id("lyon-1");
  const std::string paris = (*h)->agent_spiffe_id("paris-1");
  ASSERT_TRUE(wb::testing::WaitFor(
      [&] {
        HttpResult r = HttpGet(port, "/api/fleet");
        writeback::v1::FleetStatusResponse f;
        if (r.status != 200 || !google::protobuf::util::JsonStringToMessage(r.body, &f).ok()) {
          return false;
        }
        return f.summary().online() == 1 && f.summary().stale() + f.summary().offline() == 1;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(50)))
      << HttpGet(port, "/api/fleet").body;

  const std::string out_dir = WB_TEST_OUTPUT_DIR;
  mkdir(out_dir.c_str(), 0755);
  const std::string shot = out_dir + "/dashboard.png";
  unlink(shot.c_str());
  const std::string url = absl::StrCat("http://127.0.0.1:", port, "/");
  const std::vector<std::string> common = {
      kChromium,
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--hide-scrollbars",
      // Lets the page's fetches finish (virtual time waits for the network).
      "--virtual-time-budget=10000",
  };
  // Headless virtual time can stall under heavy load: a run that does not
  // finish in 90 s is killed (with its process group) and tried once more.
  ProgramResult dom;
  for (int attempt = 1; attempt <= 2 && dom.exit_code != 0; ++attempt) {
    std::vector<std::string> dump = common;
    dump.push_back("--user-data-dir=" + tmp.Sub(absl::StrCat("profile-dump-", attempt)));
    dump.push_back("--dump-dom");
    dump.push_back(url);
    dom = RunProgram(dump, tmp.path(), absl::Seconds(90));
  }
  ASSERT_EQ(dom.exit_code, 0) << dom.err;

  EXPECT_THAT(dom.out, HasSubstr("data-refreshes=")) << "the page never finished a refresh:\n"
                                                     << dom.out.substr(0, 4000);
  EXPECT_EQ(DataState(dom.out, "data-agent-id", paris), "ONLINE") << dom.out.substr(0, 4000);
  const std::string lyon_state = DataState(dom.out, "data-agent-id", lyon);
  EXPECT_TRUE(lyon_state == "STALE" || lyon_state == "OFFLINE")
      << "lyon-1 is '" << lyon_state << "'";
  EXPECT_EQ(DataState(dom.out, "data-decision-id", sub->decision_id()), "VERIFIED");
  // The grid and the time-to-verified chart rendered too.
  EXPECT_THAT(dom.out, HasSubstr("1 online"));
  EXPECT_THAT(dom.out, HasSubstr("<svg"));

  // The screenshot is the test's artifact; the assertions above are on the
  // DOM the live page built. It is taken of that same DOM, saved without its
  // scripts (the styles are inline), so it shows exactly what was checked.
  // (Headless Chromium's --screenshot on the live, self-refreshing page
  // waits on virtual time, which under load can stall indefinitely.)
  const std::string snapshot = tmp.Sub("dashboard-snapshot.html");
  const std::string static_dom =
      std::regex_replace(dom.out, std::regex("<script[^>]*>[\\s\\S]*?</script>"), "");
  ASSERT_TRUE(fs::WriteFileAtomic(snapshot, static_dom, {.mode = 0644}).ok());
  std::vector<std::string> snap = common;
  snap.erase(std::remove_if(
                 snap.begin(), snap.end(),
                 [](const std::string& a) { return absl::StartsWith(a, "--virtual-time-budget"); }),
             snap.end());
  snap.push_back("--user-data-dir=" + tmp.Sub("profile-shot"));
  snap.push_back("--window-size=1400,1800");
  snap.push_back("--screenshot=" + shot);
  snap.push_back("file://" + snapshot);
  ProgramResult png = RunProgram(snap, tmp.path(), absl::Seconds(60));
  ASSERT_EQ(png.exit_code, 0) << png.err;
  struct stat st {};
  ASSERT_EQ(stat(shot.c_str(), &st), 0) << "no screenshot at " << shot;
  EXPECT_GT(st.st_size, 10'000) << "screenshot too small to show the page";
  RecordProperty("screenshot", shot);
}

// Issue 15 (display safety): a file's path is whatever the file is called,
// so a decision's target can hold a right-to-left override, a zero-width
// space or a C1 control. Linked with #decision=ID, the page shows the
// decision's detail with them escaped exactly as wbctl prints them.
TEST(DashboardBrowserTest, UntrustedTextIsShownEscaped) {
  if (access(kChromium, X_OK) != 0) {
    GTEST_SKIP() << kChromium << " is not installed (scripts/install-deps.sh installs it)";
  }
  testing::TempDir tmp;
  const std::string root = tmp.Sub("srv");
  ASSERT_TRUE(fs::MakeDirs(root, 0755).ok());
  const std::string path = absl::StrCat(root, "/cod\u202Evne.exe\u200B\xC2\x9B.env");
  ASSERT_TRUE(fs::WriteFileAtomic(path, "API_TOKEN=x\n").ok());
  const std::string port_file = tmp.Sub("web.port");
  Harness::Options o;
  writeback::v1::ConnectorInstanceConfig files;
  files.set_name("files");
  files.set_type("secret_file");
  files.add_allowed_operations("remove_env_key");
  files.mutable_secret_file()->add_allowed_roots(root);
  o.agents["a1"] = {files};
  o.tweak_controlplane = [&](writeback::v1::ControlPlaneConfig& c) {
    c.set_web_listen_address("127.0.0.1:0");
    c.set_web_port_file(port_file);
  };
  auto h = Harness::Start(o);
  ASSERT_TRUE(h.ok()) << h.status();
  const int port = ReadPort(port_file);
  ASSERT_GT(port, 0);
  writeback::v1::DecisionSpec spec;
  spec.set_connector_instance("files");
  spec.set_operation("remove_env_key");
  spec.mutable_params()->mutable_secret_file()->set_key("API_TOKEN");
  spec.add_targets()->set_object(path);
  spec.set_reason("token leaked");
  auto sub = (*h)->Submit(spec);
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto done = (*h)->WaitTerminal(sub->decision_id());
  ASSERT_TRUE(done.ok()) << done.status();

  ProgramResult dom;
  for (int attempt = 1; attempt <= 2 && dom.exit_code != 0; ++attempt) {
    dom = RunProgram({kChromium, "--headless", "--no-sandbox", "--disable-gpu",
                      "--disable-background-networking", "--disable-component-update",
                      "--disable-sync", "--no-first-run", "--virtual-time-budget=10000",
                      "--user-data-dir=" + tmp.Sub(absl::StrCat("profile-", attempt)), "--dump-dom",
                      absl::StrCat("http://127.0.0.1:", port, "/#decision=", sub->decision_id())},
                     tmp.path(), absl::Seconds(90));
  }
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  // The detail's target cell, escaped; nothing raw anywhere in the page.
  EXPECT_THAT(dom.out, HasSubstr("/cod\\u202evne.exe\\u200b\\u009b.env</td>"))
      << dom.out.substr(0, 6000);
  for (const char* raw : {"\u202E", "\u200B", "\xC2\x9B"}) {
    EXPECT_EQ(dom.out.find(raw), std::string::npos) << "raw character in the page";
  }
}

}  // namespace
}  // namespace wb::e2e
