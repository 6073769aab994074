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
  ClearDueLocked(agent_id, it->second);
  it->second = Entry{s, connected_since_unix_ms, std::move(relay_path)};
}

void SessionRegistry::Unregister(const std::string& agent_id, const AgentSession* s) {
  absl::MutexLock l(&mu_);
  auto it = live_.find(agent_id);
  if (it != live_.end() && it->second.session == s) {
    ClearDueLocked(agent_id, it->second);
    live_.erase(it);
  }
}

void SessionRegistry::ClearDueLocked(const std::string& agent_id, Entry& e) {
  if (e.due_ms != 0) due_.erase({e.due_ms, agent_id});
  e.due_ms = 0;
}

void SessionRegistry::WakeAt(const std::string& agent_id, const AgentSession* s, int64_t due_ms) {
  absl::MutexLock l(&mu_);
  auto it = live_.find(agent_id);
  if (it == live_.end() || it->second.session != s || it->second.due_ms == due_ms) return;
  ClearDueLocked(agent_id, it->second);
  if (due_ms == 0) return;
  it->second.due_ms = due_ms;
  due_.emplace(due_ms, agent_id);
}

size_t SessionRegistry::WakeDue(int64_t now_ms) {
  absl::MutexLock l(&mu_);
  size_t n = 0;
  while (!due_.empty() && due_.begin()->first <= now_ms) {
    auto it = live_.find(due_.begin()->second);
    due_.erase(due_.begin());
    if (it == live_.end()) continue;
    it->second.due_ms = 0;
    it->second.session->Wake();
    ++n;
  }
  return n;
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
