// Sample admin API answers for wbctl's tests (test-only header).
#pragma once

#include "writeback/v1/admin_service.pb.h"

namespace wb::cli::testing {

// The FakeClock's default "now": 2027-01-15T08:00:00Z.
inline constexpr int64_t kNowMs = 1'800'000'000'000;
inline constexpr char kFp[] = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";

inline writeback::v1::DecisionView SampleDecisionView() {
  namespace v1 = writeback::v1;
  v1::DecisionView v;
  auto* st = v.mutable_statement();
  st->set_decision_id("d-0001");
  st->set_version(42);
  st->set_requester("spiffe://writeback.test/operator/alice");
  st->set_connector_instance("hosts-a");
  st->set_operation("remove_key");
  st->mutable_params()->mutable_ssh_authorized_keys()->set_fingerprint(kFp);
  st->add_targets()->set_object("deploy");
  st->add_targets()->set_object("backup");
  st->set_reason("yes");  // reads as a YAML boolean unless quoted
  st->set_reference("0042");
  st->set_created_at_unix_ms(kNowMs - 5 * 60 * 1000);
  st->set_expires_at_unix_ms(kNowMs + 55 * 60 * 1000);
  v.set_state(v1::DECISION_STATE_FAILED);
  v.set_state_detail("1 of 2 tasks failed");
  v.set_submitted_at_unix_ms(kNowMs - 5 * 60 * 1000);
  v.set_dispatched_at_unix_ms(kNowMs - 5 * 60 * 1000 + 20);
  v.set_finished_at_unix_ms(kNowMs - 60 * 1000);

  auto* t1 = v.add_tasks();
  t1->set_task_id("t-1");
  t1->set_target("deploy");
  t1->set_agent_id("spiffe://writeback.test/agent/a1");
  t1->set_state(v1::TASK_STATE_VERIFIED);
  t1->set_outcome(v1::OUTCOME_VERIFIED);
  t1->set_delivery_attempts(1);
  t1->set_finished_at_unix_ms(kNowMs - 2 * 60 * 1000);
  auto* plan = t1->mutable_plan();
  plan->set_summary("1 key matches");
  auto* before = plan->add_before();
  before->set_check("read_authorized_keys");
  before->set_subject("/home/deploy/.ssh/authorized_keys");
  before->set_detail("3 keys; 1 matches the fingerprint");
  (*before->mutable_facts())["keys"] = "3";
  (*before->mutable_facts())["matching"] = "1";
  plan->add_changes("remove key SHA256:uNiV... (line 2)");
  t1->mutable_applied()->add_changes("removed 1 key");
  auto* ver = t1->mutable_verification();
  ver->set_outcome(v1::OUTCOME_VERIFIED);
  ver->set_detail("key absent on re-read");
  auto* after = ver->add_after();
  after->set_check("read_authorized_keys");
  after->set_subject("/home/deploy/.ssh/authorized_keys");
  after->set_detail("2 keys: first line\nsecond: line # not a comment");
  (*after->mutable_facts())["matching"] = "0";
  (*after->mutable_facts())["note"] = "null";

  auto* t2 = v.add_tasks();
  t2->set_task_id("t-2");
  t2->set_target("backup");
  t2->set_agent_id("spiffe://writeback.test/agent/a2");
  t2->set_state(v1::TASK_STATE_REJECTED);
  t2->set_outcome(v1::OUTCOME_REJECTED);
  t2->set_reject_reason(v1::REJECT_REASON_NOT_ALLOWED);
  t2->set_message("operation not in allowlist \x1b[31mred");
  t2->set_delivery_attempts(2);
  return v;
}

inline writeback::v1::ListAgentsResponse SampleAgents() {
  writeback::v1::ListAgentsResponse r;
  auto* a = r.add_agents();
  a->set_agent_id("spiffe://writeback.test/agent/a1");
  a->set_connected(true);
  a->set_last_heartbeat_unix_ms(kNowMs - 5 * 60 * 1000);
  a->set_version("0.1.0");
  a->add_instances("hosts-a");
  a->add_instances("hosts-b");
  (*a->mutable_labels())["zone"] = "pci";
  (*a->mutable_labels())["site"] = "paris";
  auto* b = r.add_agents();
  b->set_agent_id("spiffe://writeback.test/agent/a2-long-name");
  b->set_connected(false);
  return r;
}

}  // namespace wb::cli::testing
