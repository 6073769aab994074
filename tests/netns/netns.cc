#include "tests/netns/netns.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "connectors/testing/servers/process.h"

namespace wb::netns {

namespace {

constexpr char kIp[] = "/usr/sbin/ip";
constexpr char kNft[] = "/usr/sbin/nft";
constexpr char kSs[] = "/usr/bin/ss";

absl::StatusOr<std::string> Run(std::vector<std::string> argv) {
  connectors::testing::SpawnOptions o;
  o.argv = std::move(argv);
  return connectors::testing::RunToCompletion(o, absl::Seconds(30));
}

}  // namespace

std::string WhyUnavailable() {
  if (geteuid() != 0) return "needs root (network namespaces)";
  for (const char* tool : {kIp, kNft, kSs}) {
    if (access(tool, X_OK) != 0) return absl::StrCat(tool, " is not installed");
  }
  return "";
}

Lab::Lab(std::string prefix) : prefix_(std::move(prefix)) {}

Lab::~Lab() {
  for (const auto& ns : made_) (void)netns::Run({kIp, "netns", "del", ns});
}

absl::Status Lab::Add(const std::string& name) {
  const std::string ns = Name(name);
  (void)netns::Run({kIp, "netns", "del", ns});  // a leftover of a killed run
  if (auto r = netns::Run({kIp, "netns", "add", ns}); !r.ok()) return r.status();
  made_.push_back(ns);
  return netns::Run({kIp, "-n", ns, "link", "set", "lo", "up"}).status();
}

absl::Status Lab::Link(const std::string& ns_a, const std::string& if_a, const std::string& cidr_a,
                       const std::string& ns_b, const std::string& if_b,
                       const std::string& cidr_b) {
  const std::string a = Name(ns_a), b = Name(ns_b);
  for (auto argv : std::vector<std::vector<std::string>>{
           {kIp, "-n", a, "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", b},
           {kIp, "-n", a, "addr", "add", cidr_a, "dev", if_a},
           {kIp, "-n", b, "addr", "add", cidr_b, "dev", if_b},
           {kIp, "-n", a, "link", "set", if_a, "up"},
           {kIp, "-n", b, "link", "set", if_b, "up"}}) {
    if (auto r = netns::Run(argv); !r.ok()) return r.status();
  }
  return absl::OkStatus();
}

absl::Status Lab::Route(const std::string& ns, const std::string& dest,
                        const std::string& gateway) {
  return netns::Run({kIp, "-n", Name(ns), "route", "add", dest, "via", gateway}).status();
}

absl::Status Lab::Nft(const std::string& ns, const std::string& ruleset, const std::string& file) {
  if (absl::Status s = fs::WriteFileAtomic(file, ruleset); !s.ok()) return s;
  return netns::Run({kIp, "netns", "exec", Name(ns), kNft, "-f", file}).status();
}

absl::StatusOr<std::string> Lab::Run(const std::string& ns, std::vector<std::string> argv) {
  return netns::Run(In(ns, std::move(argv)));
}

std::vector<std::string> Lab::In(const std::string& ns, std::vector<std::string> argv) const {
  std::vector<std::string> out = {kIp, "netns", "exec", Name(ns)};
  for (auto& a : argv) out.push_back(std::move(a));
  return out;
}

}  // namespace wb::netns
