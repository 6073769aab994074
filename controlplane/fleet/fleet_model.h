// The fleet as operators see it: per agent its state (ONLINE / STALE /
// OFFLINE), labels, version, connection times, connector instances with
// their last health check, queue depth, tasks in flight, result counts, last
// verified remediation and certificate expiry; a summary with counts by
// state and a per-site/segment grid; time-to-verified percentiles.
//
// State rule (heartbeat interval H, missed = whole intervals since the last
// message from the agent):
//   stream open   and missed <  stale_after     -> ONLINE
//   stream open   and missed <  offline_after   -> STALE
//   no stream     and missed <  stale_after     -> STALE (just dropped; reconnecting)
//   otherwise                                   -> OFFLINE
//
// Reads the dispatcher's in-memory agent directory (last seen is updated by
// every heartbeat), the live session registry and the tracker; keeps the
// certificate expiry of each agent's last connection itself.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock/clock.h"
#include "controlplane/dispatch/dispatcher.h"
#include "controlplane/dispatch/sessions.h"
#include "controlplane/fleet/events.h"
#include "controlplane/fleet/tracker.h"
#include "writeback/v1/admin_service.pb.h"

namespace grpc {
class AuthContext;
}

namespace wb::controlplane {

struct FleetOptions {
  uint32_t heartbeat_interval_seconds = 10;
  uint32_t stale_after_missed_heartbeats = 3;
  uint32_t offline_after_missed_heartbeats = 10;
};

// The state rule above. `missed` (if not null) receives the number of whole
// heartbeat intervals since `last_seen_unix_ms`, `reason` a sentence for
// people.
writeback::v1::AgentState ComputeAgentState(bool connected, int64_t last_seen_unix_ms,
                                            int64_t now_unix_ms, const FleetOptions& opts,
                                            uint32_t* missed, std::string* reason);

// Short name of an agent state: "ONLINE", "STALE", "OFFLINE".
std::string AgentStateName(writeback::v1::AgentState s);

// notAfter of the peer's certificate (x509_pem_cert), or 0.
int64_t PeerCertNotAfterUnixMs(const grpc::AuthContext& auth);

class FleetModel {
 public:
  // Nothing is owned; everything must outlive the model.
  FleetModel(const Clock* clock, FleetOptions opts, const Dispatcher* dispatcher,
             const SessionRegistry* sessions, const Tracker* tracker);

  const FleetOptions& options() const { return opts_; }

  // Records the expiry of the certificate an agent connected with.
  void SetCertExpiry(absl::string_view agent_id, int64_t not_after_unix_ms);

  // The whole fleet (summary of everything; agents and grid filtered by
  // `filter`), agents sorted worst first.
  writeback::v1::FleetStatusResponse Status(const writeback::v1::FleetStatusRequest& filter) const;

  // Status(req) with its agents cut to one page: req.page_size (0 = 500,
  // clamped to 1000) after req.page_token, next_page_token set when more
  // follow (controlplane/rpc/paging.h). The order is live (an agent whose
  // state or last heartbeat changes moves), so a walk over pages can list
  // an agent twice or miss one that got worse meanwhile; the summary is
  // always of the whole fleet. INVALID_ARGUMENT naming page_token.
  absl::StatusOr<writeback::v1::FleetStatusResponse> StatusPage(
      const writeback::v1::FleetStatusRequest& req) const;

  // One agent, by SPIFFE ID or by name (last path segment). NOT_FOUND
  // naming it; INVALID_ARGUMENT if empty.
  absl::StatusOr<writeback::v1::AgentStatus> Agent(absl::string_view id_or_name) const;

  // Computes every agent's state, publishes an AGENT_STATE event on `bus`
  // for each one that changed since the previous call (the first call only
  // records), and returns the fleet.
  writeback::v1::FleetStatusResponse Tick(EventBus* bus);

 private:
  writeback::v1::AgentStatus MakeStatus(const writeback::v1::AgentRecord& rec,
                                        int64_t now_ms) const;
  // Every agent's status, each not-ONLINE agent behind relays marked with
  // the relay (nearest the control plane) through which it is unreachable.
  std::vector<writeback::v1::AgentStatus> AllStatuses(int64_t now_ms) const;

  const Clock* const clock_;
  const FleetOptions opts_;
  const Dispatcher* const dispatcher_;
  const SessionRegistry* const sessions_;
  const Tracker* const tracker_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> cert_not_after_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, writeback::v1::AgentState> last_states_ ABSL_GUARDED_BY(mu_);
  bool ticked_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace wb::controlplane
