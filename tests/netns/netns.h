// Test support: network namespaces made and removed by a test (root only),
// with `ip netns`, veth pairs and nft rule sets. Every command runs with an
// argument vector (no shell). The destructor deletes every namespace it
// made (their veth ends and rules go with them).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace wb::netns {

// Why these tests cannot run here ("" if they can): not root, or a tool
// (ip, nft, ss) missing.
std::string WhyUnavailable();

class Lab {
 public:
  // Namespaces are named "<prefix>-<name>"; prefix includes the pid so
  // parallel runs do not collide.
  explicit Lab(std::string prefix);
  ~Lab();
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;

  // A namespace with its loopback up.
  absl::Status Add(const std::string& name);
  // A veth pair between two namespaces, with an IPv4 address (CIDR) on each
  // end, both up.
  absl::Status Link(const std::string& ns_a, const std::string& if_a, const std::string& cidr_a,
                    const std::string& ns_b, const std::string& if_b, const std::string& cidr_b);
  // A route in `ns`: `dest` via `gateway`.
  absl::Status Route(const std::string& ns, const std::string& dest, const std::string& gateway);
  // Loads an nft rule set (text) into `ns`.
  absl::Status Nft(const std::string& ns, const std::string& ruleset, const std::string& file);
  // Runs `argv` inside `ns` to completion; its output, or an error with it.
  absl::StatusOr<std::string> Run(const std::string& ns, std::vector<std::string> argv);
  // The argument vector that runs `argv` inside `ns` (for long-running children).
  std::vector<std::string> In(const std::string& ns, std::vector<std::string> argv) const;
  std::string Name(const std::string& ns) const { return prefix_ + "-" + ns; }

 private:
  std::string prefix_;
  std::vector<std::string> made_;
};

}  // namespace wb::netns
