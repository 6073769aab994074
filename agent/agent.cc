#include "agent/agent.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/relay/relay.h"
#include "common/actions/actions.h"
#include "common/fs/fs.h"
#include "common/logging/logging.h"
#include "common/protocol/features.h"
#include "common/relay/relay.h"
#include "common/status/macros.h"
#include "common/tls/tls.h"
#include "common/trust/policy.h"
#include "google/protobuf/util/json_util.h"

#ifndef WB_VERSION
#define WB_VERSION "0.0.0-dev"
#endif

namespace wb::agent {

const char* AgentVersion() { return WB_VERSION; }

namespace {

using writeback::v1::AgentConfig;
using writeback::v1::AgentMessage;

constexpr uint32_t kDefaultSkewSeconds = 60;
constexpr uint32_t kMaxSkewSeconds = 3600;
constexpr uint32_t kDefaultReconnectInitialMs = 500;
constexpr uint32_t kDefaultReconnectMaxMs = 30000;
constexpr absl::Duration kHealthCheckTimeout = absl::Seconds(5);

absl::Status FieldError(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// Prefixes `s` with `field` unless its message already names it.
absl::Status InField(absl::string_view field, const absl::Status& s) {
  if (s.ok()) return s;
  if (absl::StartsWith(s.message(), field)) return s;
  return absl::Status(s.code(), absl::StrCat(field, ": ", s.message()));
}

absl::Status CheckReadable(absl::string_view field, const std::string& path) {
  if (path.empty()) return FieldError(field, "required");
  auto r = fs::ReadFile(path, 1 << 20);
  if (!r.ok()) return InField(field, r.status());
  return absl::OkStatus();
}

absl::Status CheckIdentity(absl::string_view field, const std::string& id,
                           tls::IdentityClass want) {
  if (id.empty()) return FieldError(field, "required");
  auto parsed = tls::ParseSpiffeId(id);
  if (!parsed.ok()) return InField(field, parsed.status());
  if (parsed->cls != want) {
    return FieldError(field, absl::StrCat("'", id, "' is a ", tls::IdentityClassName(parsed->cls),
                                          " identity; expected spiffe://<domain>/",
                                          tls::IdentityClassName(want), "/<name>"));
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

absl::Status ValidateConnectors(const AgentConfig& cfg, const connectors::Registry& registry,
                                std::vector<std::unique_ptr<connectors::Connector>>* built) {
  std::map<std::string, int> names;
  for (int i = 0; i < cfg.connectors_size(); ++i) {
    const auto& c = cfg.connectors(i);
    const std::string f = absl::StrCat("connectors[", i, "]");
    WB_RETURN_IF_ERROR(tls::ValidateName(f + ".name", c.name()));
    if (auto [it, fresh] = names.emplace(c.name(), i); !fresh) {
      return FieldError(f + ".name", absl::StrCat("duplicate instance name '", c.name(),
                                                  "' (also connectors[", it->second, "])"));
    }
    if (c.type().empty()) return FieldError(f + ".type", "required");
    if (!registry.Has(c.type())) {
      return FieldError(f + ".type", absl::StrCat("unknown connector type '", c.type(), "'"));
    }
    const auto& ops = actions::OperationsOf(c.type());
    std::set<std::string> seen;
    for (int k = 0; k < c.allowed_operations_size(); ++k) {
      const std::string& op = c.allowed_operations(k);
      const std::string fk = absl::StrCat(f, ".allowed_operations[", k, "]");
      if (std::find(ops.begin(), ops.end(), op) == ops.end()) {
        return FieldError(fk, absl::StrCat("'", op, "' is not an operation of ", c.type()));
      }
      if (!seen.insert(op).second) return FieldError(fk, absl::StrCat("duplicate '", op, "'"));
    }
    auto conn = registry.Create(c);
    if (!conn.ok()) {
      // Factories name the instance ("connectors[web].…"); name the index.
      const std::string by_name = absl::StrCat("connectors[", c.name(), "]");
      absl::string_view msg = conn.status().message();
      if (absl::StartsWith(msg, by_name)) {
        return absl::Status(conn.status().code(), absl::StrCat(f, msg.substr(by_name.size())));
      }
      return InField(f, conn.status());
    }
    if (*conn == nullptr) return FieldError(f, "connector factory returned nothing");
    built->push_back(std::move(*conn));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Agent::CheckConfig(const AgentConfig& cfg, const connectors::Registry& registry) {
  WB_RETURN_IF_ERROR(CheckIdentity("agent_id", cfg.agent_id(), tls::IdentityClass::kAgent));
  if (cfg.controlplane_address().empty()) {
    return FieldError("controlplane_address", "required (host:port of the control plane)");
  }
  // The control plane, or the relay this agent connects through
  // (docs/networks.md): an agent identity.
  if (auto up = tls::ParseSpiffeId(cfg.controlplane_id());
      !up.ok() || up->cls != tls::IdentityClass::kAgent) {
    WB_RETURN_IF_ERROR(
        CheckIdentity("controlplane_id", cfg.controlplane_id(), tls::IdentityClass::kControlPlane));
  }
  if (cfg.controlplane_id() == cfg.agent_id()) {
    return FieldError("controlplane_id", "is this agent itself");
  }
  if (cfg.has_relay()) {
    if (absl::Status s = ValidateRelayListenAddress(cfg.relay().listen_address()); !s.ok()) {
      return s;
    }
  }
  WB_RETURN_IF_ERROR(CheckReadable("tls.ca_file", cfg.tls().ca_file()));
  WB_RETURN_IF_ERROR(CheckReadable("tls.cert_file", cfg.tls().cert_file()));
  WB_RETURN_IF_ERROR(CheckReadable("tls.key_file", cfg.tls().key_file()));
  {
    auto pem = fs::ReadFile(cfg.tls().cert_file(), 1 << 20);
    if (!pem.ok()) return InField("tls.cert_file", pem.status());
    auto info = crypto::ParseCert(*pem);
    if (!info.ok()) return InField("tls.cert_file", info.status());
    if (info->uris.size() != 1 || info->uris[0] != cfg.agent_id()) {
      return FieldError(
          "tls.cert_file",
          absl::StrCat("certificate identity '", info->uris.empty() ? "" : info->uris[0],
                       "' does not match agent_id '", cfg.agent_id(), "'"));
    }
  }
  if (cfg.result_key_file().empty()) return FieldError("result_key_file", "required");
  if (auto k = crypto::Ed25519PrivateKey::LoadFile(cfg.result_key_file()); !k.ok()) {
    return InField("result_key_file", k.status());
  }
  if (!cfg.trust_root_public_key_file().empty()) {
    auto root = crypto::Ed25519PublicKey::LoadFile(cfg.trust_root_public_key_file());
    if (!root.ok()) return InField("trust_root_public_key_file", root.status());
    if (cfg.dispatch_public_key_files_size() > 0) {
      return FieldError("dispatch_public_key_files",
                        "must be empty when trust_root_public_key_file is set (dispatch keys "
                        "come from the signed trust policy)");
    }
    if (!cfg.trust_policy_file().empty()) {
      auto env = trust::ReadSignedPolicyFile(cfg.trust_policy_file());
      if (!env.ok()) return InField("trust_policy_file", env.status());
      auto v = trust::VerifyPolicy(*env, *root, 1, absl::Now());
      if (!v.ok()) return InField("trust_policy_file", v.status());
    }
  } else {
    if (!cfg.trust_policy_file().empty()) {
      return FieldError("trust_policy_file", "requires trust_root_public_key_file");
    }
    if (cfg.dispatch_public_key_files_size() == 0) {
      return FieldError("dispatch_public_key_files",
                        "at least one dispatch public key is required (or pin a trust root "
                        "with trust_root_public_key_file)");
    }
  }
  for (int i = 0; i < cfg.dispatch_public_key_files_size(); ++i) {
    const std::string f = absl::StrCat("dispatch_public_key_files[", i, "]");
    if (cfg.dispatch_public_key_files(i).empty()) return FieldError(f, "empty path");
    if (auto k = crypto::Ed25519PublicKey::LoadFile(cfg.dispatch_public_key_files(i)); !k.ok()) {
      return InField(f, k.status());
    }
  }
  if (cfg.data_dir().empty()) return FieldError("data_dir", "required (journal directory)");
  {
    struct stat st;
    if (::stat(cfg.data_dir().c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
      return FieldError("data_dir", absl::StrCat("'", cfg.data_dir(), "' is not a directory"));
    }
  }
  if (cfg.max_clock_skew_seconds() > kMaxSkewSeconds) {
    return FieldError("max_clock_skew_seconds", absl::StrCat("at most ", kMaxSkewSeconds));
  }
  const uint32_t initial =
      cfg.reconnect_initial_ms() == 0 ? kDefaultReconnectInitialMs : cfg.reconnect_initial_ms();
  const uint32_t max = cfg.reconnect_max_ms() == 0 ? std::max(kDefaultReconnectMaxMs, initial)
                                                   : cfg.reconnect_max_ms();
  if (max < initial) {
    return FieldError("reconnect_max_ms",
                      absl::StrCat(max, " is below reconnect_initial_ms (", initial, ")"));
  }
  for (const auto& [k, v] : cfg.labels()) {
    WB_RETURN_IF_ERROR(tls::ValidateName(absl::StrCat("labels[", k, "]"), k));
    WB_RETURN_IF_ERROR(actions::ValidateText(absl::StrCat("labels[", k, "]"), v, 256, true));
  }
  static const std::set<std::string> kLevels = {"", "trace", "debug", "info", "warn", "error"};
  if (kLevels.count(cfg.log_level()) == 0) {
    return FieldError("log_level", absl::StrCat("unknown value '", cfg.log_level(),
                                                "' (trace|debug|info|warn|error)"));
  }
  static const std::set<std::string> kFormats = {"", "auto", "json", "text"};
  if (kFormats.count(cfg.log_format()) == 0) {
    return FieldError("log_format",
                      absl::StrCat("unknown value '", cfg.log_format(), "' (auto|json|text)"));
  }
  std::vector<std::unique_ptr<connectors::Connector>> built;
  return ValidateConnectors(cfg, registry, &built);
}

Agent::Agent(const Clock* clock) : clock_(clock) {}

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(const AgentConfig& cfg,
                                                     const connectors::Registry& registry,
                                                     const Clock* clock) {
  WB_RETURN_IF_ERROR(CheckConfig(cfg, registry));
  std::unique_ptr<Agent> a(new Agent(clock));
  a->agent_id_ = cfg.agent_id();
  WB_ASSIGN_OR_RETURN(a->result_key_, crypto::Ed25519PrivateKey::LoadFile(cfg.result_key_file()));
  Executor::Options eo;
  envelope::Keyring pinned;
  for (const auto& path : cfg.dispatch_public_key_files()) {
    WB_ASSIGN_OR_RETURN(auto key, crypto::Ed25519PublicKey::LoadFile(path));
    pinned.Add(key);
  }
  for (const auto& [k, v] : cfg.labels()) a->labels_[k] = v;

  std::vector<std::unique_ptr<connectors::Connector>> built;
  WB_RETURN_IF_ERROR(ValidateConnectors(cfg, registry, &built));
  for (int i = 0; i < cfg.connectors_size(); ++i) {
    const auto& c = cfg.connectors(i);
    InstanceEntry e;
    e.connector = std::move(built[static_cast<size_t>(i)]);
    e.type = c.type();
    e.operations.assign(c.allowed_operations().begin(), c.allowed_operations().end());
    eo.instances.emplace(c.name(), Executor::InstanceFromConfig(c, e.connector.get()));
    a->instances_.push_back(std::move(e));
  }

  WB_RETURN_IF_ERROR(fs::MakeDirs(cfg.data_dir(), 0700));
  std::string anchor = cfg.state_anchor_file();
  if (anchor.empty()) {
    std::string d = cfg.data_dir();
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    anchor = d + ".anchor";
  } else if (anchor == "-") {
    anchor.clear();
  }
  auto journal = Journal::Open(cfg.data_dir() + "/journal", anchor);
  if (!journal.ok()) return InField("data_dir", journal.status());
  a->journal_ = std::move(*journal);
  if (a->journal_->ReplayFloorMs() > 0) {
    log::Warn(
        "the state directory was restored from an older copy: tasks issued up to the "
        "state anchor are refused as replays",
        {{"replay_floor_unix_ms", absl::StrCat(a->journal_->ReplayFloorMs())}});
  }
  if (cfg.trust_root_public_key_file().empty()) {
    a->trust_ = std::make_unique<AgentTrust>(std::move(pinned));
    log::Warn("no trust root pinned: tasks need no approvals (development only)",
              {{"agent_id", cfg.agent_id()}});
  } else {
    WB_ASSIGN_OR_RETURN(auto root,
                        crypto::Ed25519PublicKey::LoadFile(cfg.trust_root_public_key_file()));
    std::optional<writeback::v1::SignedEnvelope> bootstrap;
    if (!cfg.trust_policy_file().empty()) {
      WB_ASSIGN_OR_RETURN(bootstrap, trust::ReadSignedPolicyFile(cfg.trust_policy_file()));
    }
    WB_ASSIGN_OR_RETURN(auto id, tls::ParseSpiffeId(cfg.agent_id()));
    auto t =
        AgentTrust::WithRoot(std::move(root), id.trust_domain, a->journal_.get(), clock, bootstrap);
    if (!t.ok()) return InField("trust_root_public_key_file", t.status());
    a->trust_ = std::move(*t);
  }
  eo.trust = a->trust_.get();

  eo.agent_id = cfg.agent_id();
  eo.result_key = a->result_key_;
  eo.max_skew = absl::Seconds(cfg.max_clock_skew_seconds() == 0 ? kDefaultSkewSeconds
                                                                : cfg.max_clock_skew_seconds());
  Executor::Sink* sink = a.get();
  a->executor_ = std::make_unique<Executor>(std::move(eo), a->journal_.get(), clock, sink);

  Link::Options lo;
  lo.address = cfg.controlplane_address();
  lo.controlplane_id = cfg.controlplane_id();
  lo.tls = cfg.tls();
  const uint32_t initial =
      cfg.reconnect_initial_ms() == 0 ? kDefaultReconnectInitialMs : cfg.reconnect_initial_ms();
  const uint32_t max = cfg.reconnect_max_ms() == 0 ? std::max(kDefaultReconnectMaxMs, initial)
                                                   : cfg.reconnect_max_ms();
  lo.reconnect_initial = absl::Milliseconds(initial);
  lo.reconnect_max = absl::Milliseconds(max);
  Link::Handler* handler = a.get();
  a->link_ = std::make_unique<Link>(std::move(lo), handler);
  a->renewer_ = std::make_unique<Renewer>(cfg, a->result_key_, clock, Renewer::Options{});
  a->status_file_ = StatusFilePath(cfg);
  return a;
}

std::string Agent::StatusFilePath(const AgentConfig& cfg) {
  std::string d = cfg.data_dir();
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d + "/status.json";
}

absl::StatusOr<writeback::agent::v1::AgentStatusFile> Agent::ReadStatusFile(
    const AgentConfig& cfg) {
  const std::string path = StatusFilePath(cfg);
  WB_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(path, 1 << 20));
  writeback::agent::v1::AgentStatusFile st;
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;  // written by another version of the agent
  if (auto s = google::protobuf::util::JsonStringToMessage(text, &st, o); !s.ok()) {
    return absl::DataLossError(absl::StrCat(path, ": not a status file (", s.ToString(), ")"));
  }
  return st;
}

void Agent::WriteStatus(std::optional<bool> connected) {
  if (status_file_.empty()) return;
  std::lock_guard<std::mutex> l(status_mu_);
  writeback::agent::v1::AgentStatusFile st;
  st.set_agent_id(agent_id_);
  st.set_pid(::getpid());
  st.set_updated_at_unix_ms(clock_->NowUnixMs());
  st.set_connected(connected.has_value() ? *connected : link_->connected());
  if (st.connected()) st.set_connected_since_unix_ms(connected_since_ms_);
  if (stream_ended_ms_ != 0) {
    st.set_stream_ended_at_unix_ms(stream_ended_ms_);
    st.set_stream_end_code(absl::StatusCodeToString(stream_end_.code()));
    st.set_stream_end_message(std::string(stream_end_.message()));
    st.set_refused(Link::IsRefusal(stream_end_.code()));
  }
  if (auto out = journal_->Outbox(); out.ok()) st.set_outbox_results(out->size());
  st.set_results_refused_total(results_refused_.load());
  st.set_results_dropped_unknown_task_total(results_dropped_unknown_.load());
  st.set_results_not_kept_total(executor_->refusals_not_kept());
  for (const auto& r : refused_instances_) st.add_refused_instances(r);
  std::string json;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  o.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(st, &json, o);
  if (absl::Status s = fs::WriteFileAtomic(status_file_, json, {.mode = 0600, .fsync_dir = false});
      !s.ok()) {
    log::Warn("status file not written", {{"path", status_file_}, {"error", s.ToString()}});
  }
}

Agent::~Agent() { Stop(); }

absl::Status Agent::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (started_) return absl::FailedPreconditionError("agent: already started");
    if (stopped_) return absl::FailedPreconditionError("agent: stopped");
    started_ = true;
  }
  WB_RETURN_IF_ERROR(executor_->Start());
  renewer_->Start();
  WB_RETURN_IF_ERROR(link_->Start());
  log::Info("agent started", {{"agent_id", agent_id_},
                              {"version", AgentVersion()},
                              {"result_key_id", result_key_.key_id()}});
  return absl::OkStatus();
}

void Agent::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  // Executor first: it releases a link thread blocked in Submit.
  if (executor_ != nullptr) executor_->Stop();
  if (link_ != nullptr) link_->Stop();
  if (renewer_ != nullptr) renewer_->Stop();
  if (link_ != nullptr && executor_ != nullptr) WriteStatus();
  log::Info("agent stopped", {{"agent_id", agent_id_}});
}

bool Agent::connected() const { return link_->connected(); }

bool Agent::identity_valid() const { return renewer_->identity_valid(); }

int Agent::certificate_renewals() const { return renewer_->renewals() + renewer_->rejoins(); }

absl::StatusOr<size_t> Agent::unacknowledged_results() const {
  WB_ASSIGN_OR_RETURN(auto out, journal_->Outbox());
  return out.size();
}

std::vector<writeback::v1::ConnectorInstanceInfo> Agent::InstanceInfos(bool with_health) {
  std::vector<writeback::v1::ConnectorInstanceInfo> out;
  for (auto& e : instances_) {
    writeback::v1::ConnectorInstanceInfo info;
    info.set_name(e.connector->instance_name());
    info.set_type(e.type);
    for (const auto& op : e.operations) info.add_operations(op);
    if (with_health) {
      connectors::CallContext ctx;
      ctx.deadline = clock_->Now() + kHealthCheckTimeout;
      ctx.clock = clock_;
      absl::Status s = e.connector->Check(ctx);
      info.set_healthy(s.ok());
      info.set_health_detail(s.ok() ? "ok" : s.ToString());
    }
    out.push_back(std::move(info));
  }
  return out;
}

writeback::v1::Hello Agent::MakeHello() {
  writeback::v1::Hello h;
  h.set_agent_id(agent_id_);
  h.set_version(AgentVersion());
  h.add_features(std::string(protocol::kFeatureStatementDigest));
  for (auto& info : InstanceInfos(/*with_health=*/true)) *h.add_instances() = std::move(info);
  h.set_result_public_key(result_key_.public_key().raw());
  for (const auto& [k, v] : labels_) (*h.mutable_labels())[k] = v;
  h.set_agent_time_unix_ms(clock_->NowUnixMs());
  return h;
}

writeback::v1::SignedEnvelope Agent::ProveHello(const writeback::v1::Hello& hello) {
  return relay::MakeConnectProof(hello, result_key_, clock_->Now());
}

writeback::v1::Heartbeat Agent::MakeHeartbeat() {
  writeback::v1::Heartbeat hb;
  hb.set_agent_time_unix_ms(clock_->NowUnixMs());
  for (auto& info : InstanceInfos(/*with_health=*/true)) *hb.add_instances() = std::move(info);
  hb.set_tasks_in_flight(executor_->in_flight());
  WriteStatus();
  return hb;
}

std::vector<AgentMessage> Agent::OnConnected(const writeback::v1::Welcome& welcome) {
  executor_->SetMaxInFlight(welcome.max_in_flight());
  if (welcome.has_trust_policy()) OnTrustPolicy(welcome.trust_policy());
  if (!trust_->ready()) {
    log::Warn("no trust policy yet: every task is refused until the control plane sends one",
              {{"agent_id", agent_id_}});
  }
  std::vector<AgentMessage> out;
  auto outbox = journal_->Outbox();
  if (!outbox.ok()) {
    log::Error("cannot read the journal outbox", {{"error", outbox.status().ToString()}});
    return out;
  }
  for (auto& e : *outbox) {
    AgentMessage m;
    *m.mutable_result() = std::move(*e.mutable_signed_result());
    out.push_back(std::move(m));
  }
  if (!out.empty()) {
    log::Info("re-sending unacknowledged results", {{"count", absl::StrCat(out.size())}});
  }
  std::vector<std::string> refused;
  for (const auto& r : welcome.refused_instances()) {
    // An operator binds instances to agents; until then the control plane
    // routes nothing of this one here.
    log::Warn("the control plane does not route this instance to this agent",
              {{"instance", r.instance()}, {"reason", r.reason()}});
    refused.push_back(absl::StrCat(r.instance(), ": ", r.reason()));
  }
  {
    std::lock_guard<std::mutex> l(status_mu_);
    connected_since_ms_ = clock_->NowUnixMs();
    refused_instances_ = std::move(refused);
  }
  // Called before the link marks the stream established: say so already.
  WriteStatus(/*connected=*/true);
  return out;
}

void Agent::OnTask(const writeback::v1::SignedEnvelope& task) { executor_->Submit(task); }

void Agent::OnStatement(const std::string& statement) { executor_->OfferStatement(statement); }

void Agent::OnTrustPolicy(const writeback::v1::SignedEnvelope& policy) {
  if (!trust_->root_pinned()) {
    log::Debug("trust policy ignored: no trust root pinned", {});
    return;
  }
  auto taken = trust_->Offer(policy);
  if (!taken.ok()) {
    log::Warn("trust policy refused", {{"error", taken.status().ToString()}});
  }
}

std::string Agent::trust_state() const { return trust_->Describe(); }

bool Agent::trust_ready() const { return trust_->ready(); }

void Agent::OnResultAck(const writeback::v1::ResultAck& ack) {
  if (ack.accepted()) {
    if (absl::Status s = journal_->RemoveOutbox(ack.task_id()); !s.ok()) {
      log::Error("journal write failed", {{"task_id", ack.task_id()}, {"error", s.ToString()}});
    }
    return;
  }
  results_refused_.fetch_add(1);
  if (ack.refusal() == writeback::v1::RESULT_REFUSAL_UNKNOWN_TASK) {
    // Nothing there to record it against (e.g. a task id injected on the
    // way): sending it on every connection would only grow the outbox. The
    // journal keeps any real task's record; a redelivery returns it.
    results_dropped_unknown_.fetch_add(1);
    log::Warn("control plane does not know the task: result dropped from the outbox",
              {{"task_id", ack.task_id()}, {"error", ack.error()}});
    if (absl::Status s = journal_->RemoveOutbox(ack.task_id()); !s.ok()) {
      log::Error("journal write failed", {{"task_id", ack.task_id()}, {"error", s.ToString()}});
    }
  } else {
    // Kept in the outbox: sent again on the next connection.
    log::Warn("control plane refused a result",
              {{"task_id", ack.task_id()},
               {"refusal", writeback::v1::ResultRefusal_Name(ack.refusal())},
               {"error", ack.error()}});
  }
  WriteStatus();
}

absl::Status Agent::last_stream_end() const {
  std::lock_guard<std::mutex> l(status_mu_);
  return stream_end_;
}

void Agent::OnDisconnected(const absl::Status& why) {
  bool stopping = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping = stopped_;
  }
  // Our own Stop cancels the stream: keep what the control plane said last.
  if (stopping && why.code() == absl::StatusCode::kCancelled) return;
  {
    std::lock_guard<std::mutex> l(status_mu_);
    stream_ended_ms_ = clock_->NowUnixMs();
    stream_end_ = why;
  }
  log::Debug("stream closed", {{"error", why.ToString()}});
  WriteStatus();
}

void Agent::OnTaskAck(const std::string& task_id) {
  AgentMessage m;
  m.mutable_task_ack()->set_task_id(task_id);
  link_->Send(std::move(m));
}

void Agent::OnResult(const std::string& task_id, const writeback::v1::SignedEnvelope& result) {
  AgentMessage m;
  *m.mutable_result() = result;
  if (!link_->Send(std::move(m))) {
    log::Debug("not connected: result kept in the outbox", {{"task_id", task_id}});
  }
}

}  // namespace wb::agent
