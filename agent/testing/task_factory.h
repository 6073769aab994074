// Test helper: builds real signed tasks the way the control plane does
// (statement bytes inside a Task, signed by a dispatch key). Header-only, for
// agent tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "writeback/v1/decision.pb.h"
#include "writeback/v1/envelope.pb.h"

namespace wb::agent::testing {

inline constexpr char kFingerprint[] = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

// Everything a task says; defaults make a valid ssh_authorized_keys
// remove_key task for `audience`, valid at `now`.
struct TaskSpec {
  std::string task_id = "task-1";
  std::string audience;
  std::string decision_id = "dec-1";
  uint64_t version = 1;
  std::string instance = "ssh-main";
  std::string operation = "remove_key";
  std::string object = "alice";
  std::string fingerprint = kFingerprint;
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  absl::Duration not_before_offset = absl::ZeroDuration();  // relative to now
  absl::Duration ttl = absl::Hours(1);
  bool verify_only = false;
  // The statement's agent_id: the audience unless set ("" = none).
  std::optional<std::string> statement_agent;
  // The statement's lifetime: ttl unless set.
  std::optional<absl::Duration> statement_ttl;
};

inline writeback::v1::DecisionStatement MakeStatement(const TaskSpec& s) {
  writeback::v1::DecisionStatement st;
  st.set_decision_id(s.decision_id);
  st.set_version(s.version);
  st.set_requester("spiffe://writeback.test/operator/olga");
  st.set_connector_instance(s.instance);
  st.set_operation(s.operation);
  st.mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(s.fingerprint);
  st.add_targets()->set_object(s.object);
  st.set_reason("test");
  st.set_reference("TICKET-1");
  st.set_created_at_unix_ms(absl::ToUnixMillis(s.now));
  st.set_expires_at_unix_ms(absl::ToUnixMillis(s.now + s.statement_ttl.value_or(s.ttl)));
  st.set_agent_id(s.statement_agent.value_or(s.audience));  // bound to the instance
  return st;
}

// A Task for `statement_bytes` (exact bytes, not re-serialized).
inline writeback::v1::Task MakeTaskFor(const TaskSpec& s, const std::string& statement_bytes,
                                       const std::string& dispatch_key_id) {
  writeback::v1::Task t;
  t.set_task_id(s.task_id);
  t.set_audience(s.audience);
  t.set_statement(statement_bytes);
  t.set_target_index(0);
  t.set_connector_instance(s.instance);
  t.set_operation(s.operation);
  t.mutable_target()->set_object(s.object);
  t.set_decision_version(s.version);
  t.set_issued_at_unix_ms(absl::ToUnixMillis(s.now));
  t.set_not_before_unix_ms(absl::ToUnixMillis(s.now + s.not_before_offset));
  t.set_expires_at_unix_ms(absl::ToUnixMillis(s.now + s.ttl));
  t.set_dispatch_key_id(dispatch_key_id);
  t.set_verify_only(s.verify_only);
  return t;
}

inline writeback::v1::SignedEnvelope SignTask(const writeback::v1::Task& task,
                                              const crypto::Ed25519PrivateKey& key) {
  return envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, task.SerializeAsString(), key);
}

inline writeback::v1::SignedEnvelope MakeSignedTask(const TaskSpec& s,
                                                    const crypto::Ed25519PrivateKey& key) {
  return SignTask(MakeTaskFor(s, MakeStatement(s).SerializeAsString(), key.key_id()), key);
}

// The same task naming its statement by digest (Task.statement_digest);
// the statement's bytes go to `*statement` (what the stream sends first).
inline writeback::v1::SignedEnvelope MakeSignedTaskByDigest(const TaskSpec& s,
                                                            const crypto::Ed25519PrivateKey& key,
                                                            std::string* statement) {
  *statement = MakeStatement(s).SerializeAsString();
  writeback::v1::Task t = MakeTaskFor(s, *statement, key.key_id());
  t.clear_statement();
  t.set_statement_digest(crypto::Sha256(*statement));
  return SignTask(t, key);
}

}  // namespace wb::agent::testing
