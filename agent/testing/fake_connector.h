// Test helper: an in-memory connector of type "ssh_authorized_keys" that
// records every call. Each target object is either compliant (the key is
// gone) or not; Apply makes it compliant, Verify observes it. State lives in
// a shared FakeTarget so tests can inspect and steer it while the agent owns
// the connector. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "connectors/connector.h"
#include "connectors/registry.h"

namespace wb::agent::testing {

struct FakeTarget {
  mutable std::mutex mu;
  std::map<std::string, bool> compliant;  // object → key already removed
  int plans = 0, applies = 0, verifies = 0, checks = 0;
  absl::Status plan_error, apply_error, verify_error, check_error;
  // Verify reports UNVERIFIED instead of observing.
  bool verify_unobservable = false;

  int applies_count() const {
    std::lock_guard<std::mutex> l(mu);
    return applies;
  }
  int calls() const {
    std::lock_guard<std::mutex> l(mu);
    return plans + applies + verifies;
  }
  int verifies_count() const {
    std::lock_guard<std::mutex> l(mu);
    return verifies;
  }
  bool is_compliant(const std::string& object) const {
    std::lock_guard<std::mutex> l(mu);
    auto it = compliant.find(object);
    return it != compliant.end() && it->second;
  }
  void set_compliant(const std::string& object, bool v) {
    std::lock_guard<std::mutex> l(mu);
    compliant[object] = v;
  }
};

class FakeConnector final : public connectors::Connector {
 public:
  FakeConnector(std::string name, std::shared_ptr<FakeTarget> target)
      : name_(std::move(name)), t_(std::move(target)) {}

  absl::string_view type() const override { return "ssh_authorized_keys"; }
  const std::string& instance_name() const override { return name_; }

  absl::StatusOr<writeback::v1::Plan> PlanChange(const connectors::CallContext&,
                                                 const connectors::Action& a) override {
    std::lock_guard<std::mutex> l(t_->mu);
    ++t_->plans;
    if (!t_->plan_error.ok()) return t_->plan_error;
    writeback::v1::Plan p;
    const bool done = t_->compliant[a.object];
    p.set_no_change(done);
    p.set_summary(done ? "key absent" : "remove key");
    auto* o = p.add_before();
    o->set_check("fake_read");
    o->set_subject(a.object);
    o->set_detail(done ? "key absent" : "key present");
    if (!done) p.add_changes(absl::StrCat("remove key from ", a.object));
    return p;
  }
  absl::StatusOr<writeback::v1::ApplyResult> Apply(const connectors::CallContext&,
                                                   const connectors::Action& a,
                                                   const writeback::v1::Plan&) override {
    std::lock_guard<std::mutex> l(t_->mu);
    ++t_->applies;
    if (!t_->apply_error.ok()) return t_->apply_error;
    t_->compliant[a.object] = true;
    writeback::v1::ApplyResult r;
    r.add_changes(absl::StrCat("removed key from ", a.object));
    return r;
  }
  absl::StatusOr<writeback::v1::Verification> Verify(const connectors::CallContext&,
                                                     const connectors::Action& a) override {
    std::lock_guard<std::mutex> l(t_->mu);
    ++t_->verifies;
    if (!t_->verify_error.ok()) return t_->verify_error;
    writeback::v1::Verification v;
    if (t_->verify_unobservable) {
      v.set_outcome(writeback::v1::OUTCOME_UNVERIFIED);
      v.set_detail("cannot observe");
      return v;
    }
    const bool done = t_->compliant[a.object];
    v.set_outcome(done ? writeback::v1::OUTCOME_VERIFIED : writeback::v1::OUTCOME_FAILED);
    v.set_detail(done ? "key absent" : "key still present");
    auto* o = v.add_after();
    o->set_check("fake_read");
    o->set_subject(a.object);
    o->set_detail(v.detail());
    return v;
  }
  absl::Status Check(const connectors::CallContext&) override {
    std::lock_guard<std::mutex> l(t_->mu);
    ++t_->checks;
    return t_->check_error;
  }

 private:
  std::string name_;
  std::shared_ptr<FakeTarget> t_;
};

// Registers the fake as type "ssh_authorized_keys" in `registry`; every
// instance created shares `target`.
inline void RegisterFakeConnector(connectors::Registry& registry,
                                  std::shared_ptr<FakeTarget> target) {
  (void)registry.Register("ssh_authorized_keys",
                          [target](const writeback::v1::ConnectorInstanceConfig& cfg)
                              -> absl::StatusOr<std::unique_ptr<connectors::Connector>> {
                            return std::make_unique<FakeConnector>(cfg.name(), target);
                          });
}

}  // namespace wb::agent::testing
