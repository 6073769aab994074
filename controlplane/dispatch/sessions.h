// The live agent streams, at most one per agent. The dispatcher wakes an
// agent's stream when tasks were queued for it; a new stream of the same
// agent ends the older one.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace wb::controlplane {

// One live stream. Its methods are called with the registry's lock held:
// they must return quickly, never block, and never call back into the
// registry (they hand the work to the stream's own executor).
class AgentSession {
 public:
  virtual ~AgentSession() = default;
  // Tasks may have been queued for this agent.
  virtual void Wake() = 0;
  // End the stream with `why` (superseded, shutting down).
  virtual void End(const absl::Status& why) = 0;
};

// Thread-safe. Holds sessions by raw pointer: a session must Unregister
// itself before it is destroyed.
class SessionRegistry {
 public:
  // Makes `s` the live session of `agent_id`. A previous session of the same
  // agent is ended with ABORTED and forgotten.
  // `relay_path`: the relays the stream came through (empty: direct).
  void Register(const std::string& agent_id, AgentSession* s, int64_t connected_since_unix_ms,
                std::vector<std::string> relay_path = {});
  // Forgets `s` if it is still the live session of `agent_id`.
  void Unregister(const std::string& agent_id, const AgentSession* s);
  // Wakes the live session of `agent_id`, if any.
  void Wake(absl::string_view agent_id);
  // Wakes every live session (a new trust policy to send).
  void WakeAll();
  // Asks for a wake of `s` (the live session of `agent_id`) at `due_ms`
  // (its next delivery timeout); 0 cancels. Replaces an earlier request.
  void WakeAt(const std::string& agent_id, const AgentSession* s, int64_t due_ms);
  // Wakes the sessions whose requested time is <= now_ms (the periodic
  // tick), forgetting those requests. Returns how many it woke. Costs the
  // number of sessions due, not the number connected.
  size_t WakeDue(int64_t now_ms);
  // When the live session of `agent_id` connected, or nullopt if none.
  std::optional<int64_t> ConnectedSince(absl::string_view agent_id) const;
  // Ends the live session of `agent_id` (a ban); false if it has none.
  bool End(absl::string_view agent_id, const absl::Status& why);
  // Ends the live sessions forwarded through relay `relay_id` (a ban of
  // the relay). Returns how many.
  size_t EndRelayedThrough(absl::string_view relay_id, const absl::Status& why);
  // Ends every live session (they unregister themselves as they finish).
  void EndAll(const absl::Status& why);
  size_t size() const;

 private:
  struct Entry {
    AgentSession* session;
    int64_t since_ms;
    std::vector<std::string> relay_path;
    int64_t due_ms = 0;  // requested wake (WakeAt), 0 = none
  };
  void ClearDueLocked(const std::string& agent_id, Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> live_ ABSL_GUARDED_BY(mu_);
  // Requested wakes, earliest first.
  std::set<std::pair<int64_t, std::string>> due_ ABSL_GUARDED_BY(mu_);
};

}  // namespace wb::controlplane
