// Instance bindings (docs/security.md "Instance bindings"): which agent
// serves a connector instance is an operator's act — `wbctl instance bind`
// or the instances listed in a join token — never an agent's claim. Part of
// Dispatcher (dispatcher.h).
#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/actions/actions.h"
#include "common/audit/chain.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"
#include "common/tls/tls.h"
#include "common/trust/approvals.h"
#include "controlplane/approval/trust_gate.h"
#include "controlplane/dispatch/dispatcher.h"

namespace wb::controlplane {

using writeback::v1::AgentRecord;
using writeback::v1::InstanceBinding;

namespace {

// A rebind waits this long for its approvals.
constexpr int64_t kRebindTtlMs = 24 * 3600 * 1000;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

std::string ShortName(const std::string& agent_id) {
  auto id = tls::ParseSpiffeId(agent_id);
  return id.ok() ? id->name : agent_id;
}

// The agent an instance was last bound to ("" if never).
const std::string& LastAgent(const InstanceBinding& b) {
  return b.agent_id().empty() ? b.previous_agent_id() : b.agent_id();
}

}  // namespace

absl::Status Dispatcher::LoadBindings(std::vector<InstanceBinding> stored) {
  if (stored.empty() && !routes_.empty()) {
    // A store from before bindings existed: the instances its agents served
    // stay theirs, recorded as bindings (audited, once).
    const int64_t now_ms = clock_->NowUnixMs();
    for (const auto& [name, route] : routes_) {
      InstanceBinding b;
      b.set_instance(name);
      b.set_agent_id(route.agent_id);
      b.set_bound_by(opts_.controlplane_id);
      b.set_bound_at_unix_ms(now_ms);
      b.set_reason("migrated: served by this agent before instance bindings existed");
      writeback::v1::AuditEvent e = audit::NewEvent(writeback::v1::AUDIT_EVENT_KIND_INSTANCE_BOUND,
                                                    opts_.controlplane_id, now_ms);
      e.set_agent_id(route.agent_id);
      e.set_detail(absl::StrCat("instance ", name, " bound: ", b.reason()));
      WB_RETURN_IF_ERROR(store_->PutBinding(b, {e}));
      log::Warn("instance binding migrated from first-claim routing",
                {{"instance", name}, {"agent_id", route.agent_id}});
      stored.push_back(std::move(b));
    }
  }
  for (InstanceBinding& b : stored) {
    std::string name = b.instance();
    bindings_[name] = std::move(b);
  }
  // Routes only where the serving agent is the bound one.
  for (auto it = routes_.begin(); it != routes_.end();) {
    auto b = bindings_.find(it->first);
    if (b == bindings_.end() || b->second.agent_id() != it->second.agent_id) {
      routes_.erase(it++);
    } else {
      ++it;
    }
  }
  return absl::OkStatus();
}

void Dispatcher::SplitOffer(
    const std::string& agent_id,
    const google::protobuf::RepeatedPtrField<writeback::v1::ConnectorInstanceInfo>& offered,
    AgentRecord* rec) const {
  rec->clear_instances();
  rec->clear_refused_instances();
  for (const auto& inst : offered) {
    auto b = bindings_.find(inst.name());
    if (b != bindings_.end() && b->second.agent_id() == agent_id) {
      *rec->add_instances() = inst;
      continue;
    }
    auto* r = rec->add_refused_instances();
    *r->mutable_instance() = inst;
    if (b == bindings_.end() || b->second.agent_id().empty()) {
      r->set_reason(
          absl::StrCat("not bound to any agent (an operator binds it: wbctl instance bind ",
                       inst.name(), " --agent ", ShortName(agent_id), ")"));
    } else {
      r->set_reason(absl::StrCat("bound to agent ", b->second.agent_id()));
    }
  }
}

absl::Status Dispatcher::CommitBinding(InstanceBinding binding, audit::AuditEvents events) {
  WB_RETURN_IF_ERROR(store_->PutBinding(binding, events));
  const std::string name = binding.instance();
  bindings_[name] = binding;
  // Move the instance between the served and refused lists of the agents
  // that offered it, and route it where it is bound now.
  routes_.erase(name);
  for (auto& [id, a] : agents_) {
    AgentRecord rec = a.record;
    google::protobuf::RepeatedPtrField<writeback::v1::ConnectorInstanceInfo> offered;
    bool offers = false;
    for (const auto& inst : rec.instances()) {
      *offered.Add() = inst;
      offers |= inst.name() == name;
    }
    for (const auto& r : rec.refused_instances()) {
      *offered.Add() = r.instance();
      offers |= r.instance().name() == name;
    }
    if (!offers) continue;
    SplitOffer(id, offered, &rec);
    WB_RETURN_IF_ERROR(store_->PutAgent(rec));
    for (const auto& inst : rec.instances()) {
      if (inst.name() == name) routes_[name] = InstanceRoute{id, inst};
    }
    a.record = std::move(rec);
  }
  return absl::OkStatus();
}

writeback::v1::InstanceView Dispatcher::InstanceViewOf(const InstanceBinding& b) const {
  writeback::v1::InstanceView v;
  v.set_instance(b.instance());
  v.set_agent_id(b.agent_id());
  v.set_bound_by(b.bound_by());
  v.set_bound_at_unix_ms(b.bound_at_unix_ms());
  v.set_previous_agent_id(b.previous_agent_id());
  v.set_reason(b.reason());
  if (auto r = routes_.find(b.instance()); r != routes_.end()) {
    v.set_served(r->second.agent_id == b.agent_id());
    v.set_type(r->second.info.type());
  }
  for (const auto& [id, a] : agents_) {
    for (const auto& r : a.record.refused_instances()) {
      if (r.instance().name() != b.instance()) continue;
      v.add_refused_agents(id);
      if (v.type().empty()) v.set_type(r.instance().type());
    }
  }
  if (b.has_pending()) {
    v.set_pending_statement_bytes(b.pending().statement());
    *v.mutable_pending_statement() = b.pending().parsed();
    auto policy = trust_policy();
    trust::ApprovalCount count;
    if (policy != nullptr) {
      count = trust::CountRebindApprovals(*policy, b.pending().statement(), b.pending().parsed(),
                                          b.pending().approvals());
      v.set_approvals_required(count.required);
    }
    AddApprovalViews(policy.get(), count, b.pending().approvals(), v.mutable_pending_approvals());
  }
  return v;
}

absl::StatusOr<writeback::v1::BindInstanceResponse> Dispatcher::BindInstance(
    absl::string_view by, absl::string_view instance, absl::string_view agent_id,
    absl::string_view reason) {
  WB_RETURN_IF_ERROR(tls::ValidateName("instance", instance));
  auto id = tls::ParseSpiffeId(agent_id);
  if (!id.ok() || id->cls != tls::IdentityClass::kAgent) {
    return Invalid("agent_id", absl::StrCat("'", agent_id, "' is not an agent's SPIFFE ID"));
  }
  WB_RETURN_IF_ERROR(actions::ValidateText("reason", reason, kMaxReasonBytes, true));
  const int64_t now_ms = clock_->NowUnixMs();
  absl::MutexLock l(&dir_mu_);
  if (auto a = agents_.find(agent_id); a != agents_.end() && a->second.record.banned()) {
    return absl::FailedPreconditionError(absl::StrCat("agent ", agent_id, " is banned"));
  }
  InstanceBinding cur;
  if (auto b = bindings_.find(instance); b != bindings_.end()) cur = b->second;
  cur.set_instance(std::string(instance));
  writeback::v1::BindInstanceResponse resp;
  if (cur.agent_id() == agent_id) {
    *resp.mutable_instance() = InstanceViewOf(cur);
    return resp;  // already so
  }
  const std::string previous = LastAgent(cur);
  const bool rebind = !previous.empty() && previous != agent_id;
  if (rebind && opts_.trust != nullptr && opts_.trust->root_pinned()) {
    // Root mode: approvers sign the rebind; nothing changes until then.
    if (trust_policy() == nullptr) {
      return absl::FailedPreconditionError(
          "no trust policy has been published yet (wbctl trust publish): a rebind needs "
          "approvals");
    }
    writeback::v1::BindingStatement st;
    st.set_rebind_id(NewId("rb-"));
    st.set_instance(std::string(instance));
    st.set_agent_id(std::string(agent_id));
    st.set_previous_agent_id(previous);
    st.set_requester(std::string(by));
    st.set_reason(std::string(reason));
    st.set_created_at_unix_ms(now_ms);
    st.set_expires_at_unix_ms(now_ms + kRebindTtlMs);
    auto* p = cur.mutable_pending();
    p->Clear();
    p->set_statement(st.SerializeAsString());
    *p->mutable_parsed() = st;
    WB_RETURN_IF_ERROR(store_->PutBinding(cur, {}));
    bindings_[std::string(instance)] = cur;
    log::Warn("instance rebind waits for approvals", {{"instance", std::string(instance)},
                                                      {"agent_id", std::string(agent_id)},
                                                      {"previous_agent_id", previous},
                                                      {"requester", std::string(by)},
                                                      {"rebind_id", st.rebind_id()}});
    *resp.mutable_instance() = InstanceViewOf(cur);
    resp.set_pending_approval(true);
    return resp;
  }
  InstanceBinding b;
  b.set_instance(std::string(instance));
  b.set_agent_id(std::string(agent_id));
  b.set_bound_by(std::string(by));
  b.set_bound_at_unix_ms(now_ms);
  if (rebind) b.set_previous_agent_id(previous);
  b.set_reason(std::string(reason));
  writeback::v1::AuditEvent e =
      audit::NewEvent(writeback::v1::AUDIT_EVENT_KIND_INSTANCE_BOUND, by, now_ms);
  e.set_agent_id(std::string(agent_id));
  e.set_detail(absl::StrCat("instance ", instance, " bound",
                            rebind ? absl::StrCat(" (was ", previous, ")") : "",
                            reason.empty() ? "" : absl::StrCat(": ", reason)));
  WB_RETURN_IF_ERROR(CommitBinding(b, {e}));
  log::Info(rebind ? "instance rebound" : "instance bound", {{"instance", std::string(instance)},
                                                             {"agent_id", std::string(agent_id)},
                                                             {"previous_agent_id", previous},
                                                             {"by", std::string(by)}});
  *resp.mutable_instance() = InstanceViewOf(bindings_[std::string(instance)]);
  return resp;
}

absl::StatusOr<writeback::v1::BindInstanceResponse> Dispatcher::ApproveRebind(
    absl::string_view by, absl::string_view instance, const writeback::v1::Approval& approval) {
  WB_RETURN_IF_ERROR(tls::ValidateName("instance", instance));
  auto policy = trust_policy();
  if (opts_.trust == nullptr || !opts_.trust->root_pinned() || policy == nullptr) {
    return absl::FailedPreconditionError("no trust policy is in force: rebinds need no approvals");
  }
  const int64_t now_ms = clock_->NowUnixMs();
  absl::MutexLock l(&dir_mu_);
  auto it = bindings_.find(instance);
  if (it == bindings_.end() || !it->second.has_pending()) {
    return absl::FailedPreconditionError(
        absl::StrCat("instance ", instance, ": no rebind is waiting for approvals"));
  }
  InstanceBinding cur = it->second;
  const writeback::v1::BindingStatement& st = cur.pending().parsed();
  if (now_ms > st.expires_at_unix_ms()) {
    cur.clear_pending();
    WB_RETURN_IF_ERROR(store_->PutBinding(cur, {}));
    it->second = cur;
    return absl::FailedPreconditionError(
        absl::StrCat("instance ", instance, ": the rebind ", st.rebind_id(),
                     " expired waiting for approvals; ask for it again (wbctl instance bind)"));
  }
  google::protobuf::RepeatedPtrField<writeback::v1::Approval> all = cur.pending().approvals();
  *all.Add() = approval;
  trust::ApprovalCount count =
      trust::CountRebindApprovals(*policy, cur.pending().statement(), st, all);
  if (!count.problems.back().empty()) return Invalid("approval", count.problems.back());
  *cur.mutable_pending()->add_approvals() = approval;
  writeback::v1::BindInstanceResponse resp;
  if (!count.satisfied()) {
    WB_RETURN_IF_ERROR(store_->PutBinding(cur, {}));
    it->second = cur;
    log::Info("rebind approved", {{"instance", std::string(instance)},
                                  {"approvals", absl::StrCat(count.valid)},
                                  {"required", absl::StrCat(count.required)}});
    *resp.mutable_instance() = InstanceViewOf(cur);
    resp.set_pending_approval(true);
    return resp;
  }
  InstanceBinding b;
  b.set_instance(std::string(instance));
  b.set_agent_id(st.agent_id());
  b.set_bound_by(st.requester());
  b.set_bound_at_unix_ms(now_ms);
  b.set_previous_agent_id(st.previous_agent_id());
  b.set_reason(st.reason());
  *b.mutable_approvals() = cur.pending().approvals();
  b.set_statement(cur.pending().statement());
  writeback::v1::AuditEvent e =
      audit::NewEvent(writeback::v1::AUDIT_EVENT_KIND_INSTANCE_BOUND, by, now_ms);
  e.set_agent_id(st.agent_id());
  e.set_digest(trust::StatementDigest(cur.pending().statement()));
  e.set_detail(absl::StrCat("instance ", instance, " rebound (was ", st.previous_agent_id(),
                            ") by rebind ", st.rebind_id(), " of ", st.requester(), " with ",
                            count.valid, " approvals"));
  WB_RETURN_IF_ERROR(CommitBinding(b, {e}));
  log::Warn("instance rebound with approvals", {{"instance", std::string(instance)},
                                                {"agent_id", st.agent_id()},
                                                {"previous_agent_id", st.previous_agent_id()},
                                                {"approvals", absl::StrCat(count.valid)}});
  *resp.mutable_instance() = InstanceViewOf(bindings_[std::string(instance)]);
  return resp;
}

absl::StatusOr<writeback::v1::BindInstanceResponse> Dispatcher::UnbindInstance(
    absl::string_view by, absl::string_view instance, absl::string_view reason) {
  WB_RETURN_IF_ERROR(tls::ValidateName("instance", instance));
  WB_RETURN_IF_ERROR(actions::ValidateText("reason", reason, kMaxReasonBytes, true));
  const int64_t now_ms = clock_->NowUnixMs();
  absl::MutexLock l(&dir_mu_);
  auto it = bindings_.find(instance);
  if (it == bindings_.end() || it->second.agent_id().empty()) {
    return absl::NotFoundError(absl::StrCat("instance ", instance, " is not bound"));
  }
  InstanceBinding b;
  b.set_instance(std::string(instance));
  b.set_bound_by(std::string(by));
  b.set_bound_at_unix_ms(now_ms);
  b.set_previous_agent_id(it->second.agent_id());
  b.set_reason(std::string(reason));
  writeback::v1::AuditEvent e =
      audit::NewEvent(writeback::v1::AUDIT_EVENT_KIND_INSTANCE_UNBOUND, by, now_ms);
  e.set_agent_id(it->second.agent_id());
  e.set_detail(absl::StrCat("instance ", instance, " unbound",
                            reason.empty() ? "" : absl::StrCat(": ", reason)));
  WB_RETURN_IF_ERROR(CommitBinding(b, {e}));
  log::Info("instance unbound", {{"instance", std::string(instance)},
                                 {"previous_agent_id", b.previous_agent_id()},
                                 {"by", std::string(by)}});
  writeback::v1::BindInstanceResponse resp;
  *resp.mutable_instance() = InstanceViewOf(b);
  return resp;
}

absl::StatusOr<InstanceBinding> Dispatcher::BindingOf(absl::string_view instance) const {
  absl::MutexLock l(&dir_mu_);
  auto it = bindings_.find(instance);
  if (it == bindings_.end()) {
    return absl::NotFoundError(absl::StrCat("instance ", instance, " was never bound"));
  }
  return it->second;
}

absl::Status Dispatcher::CanBindAtOnce(absl::string_view instance,
                                       absl::string_view agent_id) const {
  absl::MutexLock l(&dir_mu_);
  auto it = bindings_.find(instance);
  if (it == bindings_.end() || it->second.agent_id() == agent_id) return absl::OkStatus();
  const std::string& last = LastAgent(it->second);
  if (last.empty() || last == agent_id) return absl::OkStatus();
  if (!it->second.agent_id().empty()) {
    return absl::FailedPreconditionError(absl::StrCat("instance ", instance, " is bound to agent ",
                                                      it->second.agent_id(),
                                                      ": rebind it first (wbctl instance bind)"));
  }
  if (opts_.trust != nullptr && opts_.trust->root_pinned()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "instance ", instance, " was bound to agent ", last,
        ": binding it to another agent is a rebind, which needs approvals (wbctl instance bind)"));
  }
  return absl::OkStatus();
}

std::vector<writeback::v1::InstanceView> Dispatcher::Instances() const {
  absl::MutexLock l(&dir_mu_);
  std::map<std::string, InstanceBinding> all;
  for (const auto& [name, b] : bindings_) all[name] = b;
  for (const auto& [id, a] : agents_) {
    for (const auto& r : a.record.refused_instances()) {
      all[r.instance().name()].set_instance(r.instance().name());
    }
  }
  std::vector<writeback::v1::InstanceView> out;
  out.reserve(all.size());
  for (const auto& [name, b] : all) out.push_back(InstanceViewOf(b));
  return out;
}

}  // namespace wb::controlplane
