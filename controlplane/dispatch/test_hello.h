// Test helper: the Hello of an agent offering one ssh_authorized_keys
// instance, as dispatcher-level tests hand it to Dispatcher::Hello.
#pragma once

#include <string>
#include <vector>

#include "common/crypto/crypto.h"
#include "writeback/v1/agent_service.pb.h"

namespace wb::controlplane {

inline writeback::v1::Hello MakeTestHello(
    const std::string& agent, const crypto::Ed25519PrivateKey& key,
    const std::string& instance = "hosts",
    const std::vector<std::string>& operations = {"remove_key", "remove_by_comment"},
    const std::vector<std::string>& features = {}) {
  writeback::v1::Hello h;
  h.set_agent_id(agent);
  h.set_version("0.1.0");
  h.set_result_public_key(key.public_key().raw());
  auto* inst = h.add_instances();
  inst->set_name(instance);
  inst->set_type("ssh_authorized_keys");
  for (const std::string& op : operations) inst->add_operations(op);
  for (const std::string& f : features) h.add_features(f);
  (*h.mutable_labels())["site"] = "lab";
  return h;
}

}  // namespace wb::controlplane
