#include "tests/fuzz/fuzz_support.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/actions/action_class.h"
#include "common/actions/actions.h"
#include "common/trust/policy.h"
#include "google/protobuf/stubs/logging.h"

namespace wb::fuzz {
namespace {

// Test-only Ed25519 keys (openssl genpkey -algorithm ed25519). Public on
// purpose: never use them anywhere else.
constexpr char kDispatchPem[] = R"(-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIGd4+lSORkC0+fZgzoP8DhvJAkGaAMScTejqKGI/nwht
-----END PRIVATE KEY-----
)";
constexpr char kApprover0Pem[] = R"(-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIF7cL6/OiP0pV8RwKqUB/+HSK1GP6urAcVc6jrlF28GD
-----END PRIVATE KEY-----
)";
constexpr char kApprover1Pem[] = R"(-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIGbzQHZIZdV3oAXOmo89GUwH77eaRIwHdZRGajrc/zq6
-----END PRIVATE KEY-----
)";
constexpr char kAgentPem[] = R"(-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIPp5yD4hRG+eyXD0aSUmrKKT2eYyGNusRcVgmu60cU0O
-----END PRIVATE KEY-----
)";

const crypto::Ed25519PrivateKey& LoadKey(const char* pem) {
  auto k = crypto::Ed25519PrivateKey::FromPem(pem);
  Require(k.ok(), "fixed test key does not load");
  return *new crypto::Ed25519PrivateKey(*std::move(k));
}

class FixedHistory : public agent::TaskHistory {
 public:
  absl::StatusOr<std::optional<agent::SeenTask>> FindTask(
      absl::string_view task_id) const override {
    if (task_id == "journal-error") return absl::UnavailableError("journal: test error");
    if (task_id != "seen-task") return std::optional<agent::SeenTask>();
    agent::SeenTask seen;
    seen.state = agent::SeenTask::State::kDone;
    seen.task_digest = crypto::Sha256(SeenTaskPayload());
    return std::optional<agent::SeenTask>(std::move(seen));
  }
  absl::StatusOr<uint64_t> AppliedVersion(absl::string_view instance,
                                          absl::string_view object) const override {
    if (object == "journal-error") return absl::UnavailableError("journal: test error");
    if (instance == InstanceOf("ssh_authorized_keys") && object == "alice") return 5;
    return 0;
  }
};

constexpr char kFp[] = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";
constexpr char kHexA[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
constexpr char kHexB[] = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
constexpr char kScram[] =
    "SCRAM-SHA-256$4096:c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
    "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

std::vector<Example> BuildExamples() {
  std::vector<Example> v;
  auto add = [&](const char* type, const char* op, const char* object) -> Example& {
    Example& e = v.emplace_back();
    e.type = type;
    e.operation = op;
    e.object = object;
    // The oneof member named like the type, present even when empty.
    const auto* f = e.params.GetDescriptor()->FindFieldByName(type);
    Require(f != nullptr, "ActionParams has no member for a connector type");
    e.params.GetReflection()->MutableMessage(&e.params, f);
    return e;
  };
  // ssh_authorized_keys
  add("ssh_authorized_keys", "remove_key", "alice")
      .params.mutable_ssh_authorized_keys()
      ->set_fingerprint(kFp);
  add("ssh_authorized_keys", "remove_by_comment", "deploy")
      .params.mutable_ssh_authorized_keys()
      ->set_comment("deploy@ci");
  add("ssh_authorized_keys", "exclusive_set", "alice")
      .params.mutable_ssh_authorized_keys()
      ->add_keep_fingerprints(kFp);
  add("ssh_authorized_keys", "exclusive_set", "svc-backup$");
  // vault
  {
    auto* p = add("vault", "kv_delete", "app/db").params.mutable_vault();
    p->set_mount("secret");
    p->add_versions(1);
    p->add_versions(2);
  }
  {
    auto* p = add("vault", "kv_destroy", "team a/app?x=1#frag").params.mutable_vault();
    p->set_mount("kv/v2");
    p->add_versions(3);
  }
  add("vault", "kv_delete_metadata", "app/db").params.mutable_vault()->set_mount("secret");
  {
    auto* p = add("vault", "kv_destroy_and_revoke_token", "app/token").params.mutable_vault();
    p->set_mount("secret");
    p->set_token_accessor("hmac-abc.def_1");
  }
  add("vault", "token_revoke_accessor", "hmac-abc.def_1");
  {
    auto* p = add("vault", "approle_destroy_secret_id", "3f2a9c1e-hmac").params.mutable_vault();
    p->set_mount("approle");
    p->set_role("ci-role@team.a");
  }
  add("vault", "lease_revoke", "database/creds/app/abc123");
  add("vault", "lease_revoke_prefix", "database/creds/app");
  add("vault", "policy_replace", "app-policy")
      .params.mutable_vault()
      ->set_policy("path \"secret/data/app/*\" {\n  capabilities = [\"deny\"]\n}\n");
  // exec
  for (const char* op : {"revoke", "disable", "remove", "restrict"}) {
    auto* p = add("exec", op, "svc-account-7 (Zürich)").params.mutable_exec();
    (*p->mutable_args())["reason"] = "rotation";
    (*p->mutable_args())["ticket_2"] = "T-1 ✓";
  }
  add("exec", "revoke", "x");
  // posix_account
  add("posix_account", "lock", "alice");
  add("posix_account", "expire", "alice");
  add("posix_account", "set_shell", "alice")
      .params.mutable_posix_account()
      ->set_shell("/usr/sbin/nologin");
  add("posix_account", "set_shell", "bob");
  add("posix_account", "remove_group", "alice").params.mutable_posix_account()->set_group("docker");
  add("posix_account", "delete", "_apt").params.mutable_posix_account()->set_keep_home(true);
  // sudoers
  add("sudoers", "remove_file", "90-deploy");
  add("sudoers", "remove_user_rules", "deploy_rules").params.mutable_sudoers()->set_user("deploy");
  // secret_file
  add("secret_file", "remove_env_key", "/etc/app/app.env")
      .params.mutable_secret_file()
      ->set_key("AWS_SECRET_ACCESS_KEY");
  {
    auto* p =
        add("secret_file", "remove_json_path", "/etc/app/config.json").params.mutable_secret_file();
    p->add_json_path("db");
    p->add_json_path("password");
  }
  {
    auto* p = add("secret_file", "remove_ini_key", "/etc/app/app.ini").params.mutable_secret_file();
    p->set_section("database");
    p->set_key("password");
  }
  add("secret_file", "remove_ini_key", "/etc/app/app.ini")
      .params.mutable_secret_file()
      ->set_key("token");
  add("secret_file", "remove_ini_section", "/etc/app/app.ini")
      .params.mutable_secret_file()
      ->set_section("credentials");
  add("secret_file", "delete_file", "/srv/app/ключ.pem");
  // postgres
  add("postgres", "disable_login", "app_user").params.mutable_postgres()->set_keep_sessions(true);
  add("postgres", "terminate_sessions", "app_user");
  {
    auto* p = add("postgres", "revoke_privileges", "App User").params.mutable_postgres();
    p->set_schema("public");
    p->add_privileges("SELECT");
    p->add_privileges("insert");
  }
  add("postgres", "reduce_to_read_only", "app_user").params.mutable_postgres()->set_schema("sales");
  {
    auto* p = add("postgres", "set_password", "app_user").params.mutable_postgres();
    p->set_new_password_scram(kScram);
    p->set_expected_password_sha256(kHexA);
  }
  {
    auto* p = add("postgres", "expire_password", "app_user").params.mutable_postgres();
    p->set_expected_valid_until("2030-01-01T00:00:00Z");
    p->set_expected_password_sha256("none");
  }
  add("postgres", "drop_role", "app_user")
      .params.mutable_postgres()
      ->set_reassign_owned_to("postgres");
  // redis
  add("redis", "disable_user", "app").params.mutable_redis()->set_keep_connections(true);
  add("redis", "kill_connections", "app");
  add("redis", "reset_passwords", "app");
  {
    auto* p = add("redis", "rotate_password", "app").params.mutable_redis();
    p->set_new_password_sha256(kHexA);
    p->add_expected_password_sha256s(kHexB);
  }
  {
    auto* p = add("redis", "remove_permissions", "app").params.mutable_redis();
    p->add_commands("flushall");
    p->add_commands("@dangerous");
    p->add_commands("config|set");
    p->add_key_patterns("~cache:*");
    p->add_key_patterns("%R~logs:*");
  }
  add("redis", "delete_user", "app");
  // ldap
  add("ldap", "lock", "alice");
  {
    auto* p = add("ldap", "remove_from_groups", "alice").params.mutable_ldap();
    p->add_groups("admins");
    p->add_groups("développeurs, (core)");
  }
  {
    auto* p = add("ldap", "replace_password", "alice").params.mutable_ldap();
    p->set_new_password_hash("{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=");
    p->set_expected_password_sha256("none");
  }
  add("ldap", "remove_password", "#alice ");
  add("ldap", "delete_entry", "alice").params.mutable_ldap()->set_keep_group_memberships(true);
  return v;
}

}  // namespace

absl::Time Now() { return absl::FromUnixMillis(kNowUnixMs); }

const crypto::Ed25519PrivateKey& DispatchKey() {
  static const crypto::Ed25519PrivateKey& k = LoadKey(kDispatchPem);
  return k;
}

const crypto::Ed25519PrivateKey& ApproverKey(int i) {
  static const crypto::Ed25519PrivateKey& k0 = LoadKey(kApprover0Pem);
  static const crypto::Ed25519PrivateKey& k1 = LoadKey(kApprover1Pem);
  return i == 0 ? k0 : k1;
}

const crypto::Ed25519PrivateKey& AgentResultKey() {
  static const crypto::Ed25519PrivateKey& k = LoadKey(kAgentPem);
  return k;
}

std::string InstanceOf(absl::string_view connector_type) {
  return std::string(connector_type) + "-1";
}

const crypto::Ed25519PrivateKey& PolicyRootKey() {
  static const auto* k = new crypto::Ed25519PrivateKey(crypto::Ed25519PrivateKey::Generate());
  return *k;
}

writeback::v1::TrustPolicy PolicyWithThreshold(uint32_t threshold, uint64_t version) {
  writeback::v1::TrustPolicy p;
  p.set_trust_domain("writeback.test");
  p.set_version(version);
  p.set_issued_at_unix_ms(kNowUnixMs - 60'000);
  auto* d = p.add_dispatch_keys();
  d->set_name("dispatch");
  d->set_public_key(DispatchKey().public_key().raw());
  for (int i = 0; i < 2; ++i) {
    auto* a = p.add_approvers();
    a->set_name(absl::StrCat("approver-", i));
    a->set_identity(absl::StrCat("spiffe://writeback.test/operator/approver-", i));
    a->set_public_key(ApproverKey(i).public_key().raw());
  }
  for (const std::string& cls : actions::ActionClasses()) {
    (*p.mutable_approval_thresholds())[cls] = threshold;
  }
  p.mutable_default_rate_budget()->set_max_tasks(1'000'000);
  p.mutable_default_rate_budget()->set_window_seconds(3600);
  return p;
}

const agent::CheckContext& Context(uint32_t threshold) {
  static const auto* contexts = [] {
    auto* dispatch = new envelope::Keyring;
    dispatch->Add(DispatchKey().public_key());
    auto* m = new std::map<uint32_t, agent::CheckContext>;
    for (uint32_t t : {0u, 1u, 2u}) {
      agent::CheckContext& c = (*m)[t];
      c.agent_id = kAgentId;
      c.dispatch_keys = dispatch;
      for (const std::string& type : actions::ConnectorTypes()) {
        agent::InstancePolicy& p = c.instances[InstanceOf(type)];
        p.connector_type = type;
        for (const std::string& op : actions::OperationsOf(type)) p.operations.insert(op);
      }
      c.max_skew = absl::Seconds(60);
      c.now = Now();
      if (t > 0) {
        // Root mode: keys, approvers and thresholds from a root-signed policy.
        auto v = trust::VerifyPolicy(*trust::SignPolicy(PolicyWithThreshold(t, 1), PolicyRootKey()),
                                     PolicyRootKey().public_key(), 1, Now());
        if (!v.ok()) std::abort();
        c.policy = std::make_shared<const trust::VerifiedPolicy>(*std::move(v));
        c.require_policy = true;
      }
    }
    return m;
  }();
  return contexts->at(threshold > 2 ? 2 : threshold);
}

const agent::TaskHistory& History() {
  static const FixedHistory* h = new FixedHistory;
  return *h;
}

const std::string& SeenTaskPayload() {
  static const std::string* p = [] {
    const Example& ex = ValidExamples().front();
    const std::string st = StatementFor(ex, 1).SerializeAsString();
    return new std::string(TaskFor(st, StatementFor(ex, 1), "seen-task").SerializeAsString());
  }();
  return *p;
}

const std::vector<Example>& ValidExamples() {
  static const auto* v = new std::vector<Example>(BuildExamples());
  return *v;
}

writeback::v1::DecisionStatement StatementFor(const Example& ex, uint64_t version) {
  writeback::v1::DecisionStatement st;
  st.set_decision_id("dec-1");
  st.set_version(version);
  st.set_requester(kRequester);
  st.set_connector_instance(InstanceOf(ex.type));
  st.set_operation(ex.operation);
  *st.mutable_params() = ex.params;
  st.add_targets()->set_object(ex.object);
  st.set_reason("fuzz seed");
  st.set_reference("TICKET-1");
  st.set_created_at_unix_ms(kNowUnixMs - 60'000);
  st.set_expires_at_unix_ms(kNowUnixMs + 3'600'000);
  st.set_agent_id(kAgentId);
  return st;
}

writeback::v1::Task TaskFor(const std::string& statement_bytes,
                            const writeback::v1::DecisionStatement& statement,
                            const std::string& task_id) {
  writeback::v1::Task t;
  t.set_task_id(task_id);
  t.set_audience(kAgentId);
  t.set_statement(statement_bytes);
  t.set_target_index(0);
  t.set_connector_instance(statement.connector_instance());
  t.set_operation(statement.operation());
  if (statement.targets_size() > 0) *t.mutable_target() = statement.targets(0);
  t.set_decision_version(statement.version());
  t.set_issued_at_unix_ms(kNowUnixMs - 1'000);
  t.set_not_before_unix_ms(kNowUnixMs - 1'000);
  t.set_expires_at_unix_ms(kNowUnixMs + 3'600'000);
  t.set_dispatch_key_id(DispatchKey().key_id());
  return t;
}

writeback::v1::Approval ApprovalFor(const std::string& statement_bytes, int i) {
  const std::string digest = crypto::Sha256(statement_bytes);
  writeback::v1::Approval a;
  a.set_approver_key_id(ApproverKey(i).key_id());
  a.set_statement_digest(digest);
  a.set_signature(ApproverKey(i).Sign(
      envelope::SigningInput(writeback::v1::PAYLOAD_TYPE_DECISION_APPROVAL, digest)));
  a.set_signed_at_unix_ms(kNowUnixMs - 30'000);
  return a;
}

std::optional<writeback::v1::SignedEnvelope> TaskEnvelopeFor(uint8_t flags,
                                                             const std::string& rest) {
  writeback::v1::SignedEnvelope env;
  switch (flags & 3) {
    case 0:
      if (!env.ParseFromString(rest)) return std::nullopt;
      return env;
    case 1:
      return envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, rest, DispatchKey());
    default: {
      writeback::v1::DecisionStatement st;
      if (!st.ParseFromString(rest)) st.Clear();
      writeback::v1::Task t = TaskFor(rest, st, "fuzz-task");
      if ((flags & 3) == 3) {
        *t.add_approvals() = ApprovalFor(rest, 0);
        *t.add_approvals() = ApprovalFor(rest, 1);
      }
      return envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, t.SerializeAsString(), DispatchKey());
    }
  }
}

uint8_t Reader::Byte() { return pos_ < size_ ? static_cast<uint8_t>(data_[pos_++]) : 0; }

std::string Reader::Str() {
  size_t n = static_cast<size_t>(Byte()) << 8;
  n |= Byte();
  if (n > size_ - pos_) n = size_ - pos_;
  std::string s(data_ + pos_, n);
  pos_ += n;
  return s;
}

std::string Reader::Rest() {
  std::string s(data_ + pos_, size_ - pos_);
  pos_ = size_;
  return s;
}

std::string Str(absl::string_view s) {
  const size_t n = s.size() > 0xffff ? 0xffff : s.size();
  std::string out;
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n & 0xff));
  out.append(s.data(), n);
  return out;
}

void Require(bool cond, absl::string_view what) {
  if (cond) return;
  std::fprintf(stderr, "fuzz property violated: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

void QuietProtobufLogs() {
  static const bool done = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)done;
}

}  // namespace wb::fuzz
