#include "controlplane/dispatch/sessions.h"

namespace wb::controlplane {

void SessionRegistry::Register(const std::string& agent_id, AgentSession* s,
                               int64_t connected_since_unix_ms,
                               std::vector<std::string> relay_path) {
  absl::MutexLock l(&mu_);
  auto [it, inserted] = live_.try_emplace(agent_id, Entry{s, connected_since_unix_ms, {}});
  if (!inserted && it->second.session != s) {
    it->second.session->End(absl::AbortedError("superseded by a newer stream of the same agent"));
  }
  it->second = Entry{s, connected_since_unix_ms, std::move(relay_path)};
}

void SessionRegistry::Unregister(const std::string& agent_id, const AgentSession* s) {
  absl::MutexLock l(&mu_);
  auto it = live_.find(agent_id);
  if (it != live_.end() && it->second.session == s) live_.erase(it);
}

void SessionRegistry::Wake(absl::string_view agent_id) {
  absl::MutexLock l(&mu_);
  auto it = live_.find(agent_id);
  if (it != live_.end()) it->second.session->Wake();
}

void SessionRegistry::WakeAll() {
  absl::MutexLock l(&mu_);
  for (auto& [id, e] : live_) e.session->Wake();
}

std::optional<int64_t> SessionRegistry::ConnectedSince(absl::string_view agent_id) const {
  absl::MutexLock l(&mu_);
  auto it = live_.find(agent_id);
  if (it == live_.end()) return std::nullopt;
  return it->second.since_ms;
}

void SessionRegistry::EndAll(const absl::Status& why) {
  absl::MutexLock l(&mu_);
  for (auto& [id, e] : live_) e.session->End(why);
}

bool SessionRegistry::End(absl::string_view agent_id, const absl::Status& why) {
  absl::MutexLock l(&mu_);
  auto it = live_.find(agent_id);
  if (it == live_.end()) return false;
  it->second.session->End(why);
  return true;
}

size_t SessionRegistry::EndRelayedThrough(absl::string_view relay_id, const absl::Status& why) {
  absl::MutexLock l(&mu_);
  size_t n = 0;
  for (auto& [id, e] : live_) {
    for (const auto& hop : e.relay_path) {
      if (hop == relay_id) {
        e.session->End(why);
        ++n;
        break;
      }
    }
  }
  return n;
}

size_t SessionRegistry::size() const {
  absl::MutexLock l(&mu_);
  return live_.size();
}

}  // namespace wb::controlplane
