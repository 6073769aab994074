// wbctl trust ...: the trust root and the trust policy (docs/security.md).
//   trust init DIR       a new offline root key pair and a policy template
//   trust keygen PREFIX  an approver's (or any) Ed25519 key pair
//   trust sign           a policy YAML (TrustPolicySpec) signed by the root
//   trust show FILE      what a signed policy says (verified with --root)
//   trust publish FILE   hand a signed policy to the control plane
//   trust status         the policy the control plane distributes
// The root's private key is meant to live offline: init, keygen, sign and
// show never contact the control plane.
#include <sys/stat.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/command.h"
#include "cli/exit_codes.h"
#include "common/actions/action_class.h"
#include "common/config/config.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/trust/policy.h"
#include "google/protobuf/util/json_util.h"
#include "writeback/v1/admin_service.grpc.pb.h"
#include "writeback/v1/config.pb.h"

namespace wb::cli {
namespace {

using writeback::v1::SignedEnvelope;
using writeback::v1::TrustPolicy;

fs::WriteOptions Mode(mode_t mode) {
  fs::WriteOptions o;
  o.mode = mode;
  return o;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::Status SaveKeyPair(const crypto::Ed25519PrivateKey& key, const std::string& prefix) {
  if (Exists(prefix + ".key")) {
    return absl::AlreadyExistsError(
        absl::StrCat(prefix, ".key exists: refusing to overwrite a key"));
  }
  if (absl::Status s = key.SaveFile(prefix + ".key"); !s.ok()) return s;
  return fs::WriteFileAtomic(prefix + ".pub", key.public_key().ToPem(), Mode(0644));
}

std::string PolicyJson(const TrustPolicy& p) {
  std::string json;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(p, &json, o);
  return json;
}

std::string PolicyText(const TrustPolicy& p, const std::string& verified) {
  std::string out = absl::StrCat("trust policy v", p.version(), " for ", p.trust_domain(), "\n");
  if (!verified.empty()) absl::StrAppend(&out, "signature:   ", verified, "\n");
  if (!p.comment().empty()) absl::StrAppend(&out, "comment:     ", p.comment(), "\n");
  for (const auto& k : p.dispatch_keys()) {
    absl::StrAppend(&out, "dispatch key ", k.name(), "  ", crypto::KeyIdOf(k.public_key()), "\n");
  }
  for (const auto& a : p.approvers()) {
    absl::StrAppend(&out, "approver     ", a.name(), "  ", a.identity(), "  ",
                    crypto::KeyIdOf(a.public_key()), "\n");
  }
  std::vector<std::string> th;
  for (const std::string& cls : actions::ActionClasses()) {
    auto it = p.approval_thresholds().find(cls);
    th.push_back(absl::StrCat(cls, " ", it == p.approval_thresholds().end() ? 0 : it->second));
  }
  absl::StrAppend(&out, "approvals    ", absl::StrJoin(th, ", "), "\n");
  absl::StrAppend(&out, "rate budget  ", p.default_rate_budget().max_tasks(), " tasks per ",
                  p.default_rate_budget().window_seconds(), " s per agent\n");
  for (const auto& [agent, b] : p.agent_rate_budgets()) {
    absl::StrAppend(&out, "             ", agent, ": ", b.max_tasks(), " per ", b.window_seconds(),
                    " s\n");
  }
  absl::StrAppend(&out, "statements   ",
                  p.require_statement_agent() ? "must name the serving agent"
                                              : "may leave the serving agent unnamed",
                  "\n");
  return out;
}

int Show(Context& ctx, const TrustPolicy& p, const std::string& verified) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  switch (*format) {
    case OutputFormat::kTable:
      return ctx.Emit(PolicyText(p, verified));
    case OutputFormat::kJson:
      return ctx.Emit(PolicyJson(p));
    case OutputFormat::kYaml:
      return ctx.Emit(JsonToYaml(PolicyJson(p)));
  }
  return kExitFailed;
}

// ---- init ----

struct InitOptions {
  std::string dir;
  std::string trust_domain = "writeback.test";
  std::vector<std::string> dispatch_keys;  // public key files
  std::vector<std::string> approvers;      // NAME=PUBLIC_KEY_FILE
};

int Init(const InitOptions& o, Context& ctx) {
  if (absl::Status s = fs::MakeDirs(o.dir, 0700); !s.ok()) return ctx.Fail(s);
  const std::string prefix = o.dir + "/root";
  if (absl::Status s = SaveKeyPair(crypto::Ed25519PrivateKey::Generate(), prefix); !s.ok()) {
    return ctx.Fail(s);
  }
  std::string yaml = absl::StrCat(
      "# Trust policy: sign with\n#   wbctl trust sign --spec ", o.dir, "/policy.yaml --root-key ",
      prefix, ".key --out policy.signed\n# then keep ", prefix,
      ".key offline. Raise `version` for every change.\n", "trust_domain: ", o.trust_domain,
      "\nversion: 1\ncomment: first policy\ndispatch_keys:\n");
  for (size_t i = 0; i < o.dispatch_keys.size(); ++i) {
    absl::StrAppend(&yaml, "  - name: dispatch-", i + 1,
                    "\n    public_key_file: ", o.dispatch_keys[i], "\n");
  }
  if (o.dispatch_keys.empty()) {
    absl::StrAppend(&yaml, "  - name: dispatch-1\n    public_key_file: /path/to/dispatch.pub\n");
  }
  absl::StrAppend(&yaml, "approvers:\n");
  for (const std::string& a : o.approvers) {
    std::vector<std::string> parts = absl::StrSplit(a, absl::MaxSplits('=', 1));
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      return ctx.Fail(absl::InvalidArgumentError(
          absl::StrCat("--approver: '", a, "' is not NAME=PUBLIC_KEY_FILE")));
    }
    absl::StrAppend(&yaml, "  - name: ", parts[0], "\n    identity: spiffe://", o.trust_domain,
                    "/operator/", parts[0], "\n    public_key_file: ", parts[1], "\n");
  }
  const size_t n = o.approvers.size();
  auto cap = [&](size_t want) { return std::min(want, n); };
  absl::StrAppend(&yaml, "approval_thresholds:\n  disable: ", cap(1), "\n  revoke: ", cap(1),
                  "\n  rotate: ", cap(1), "\n  delete: ", cap(2), "\n  grant: ", cap(2),
                  "\ndefault_rate_budget:\n  max_tasks: 100\n  window_seconds: 3600\n",
                  "# Agents refuse statements that do not name the agent bound to the "
                  "instance\n# (docs/security.md \"Instance bindings\").\n"
                  "require_statement_agent: true\n");
  if (absl::Status s = fs::WriteFileAtomic(o.dir + "/policy.yaml", yaml, Mode(0644)); !s.ok()) {
    return ctx.Fail(s);
  }
  return ctx.Emit(absl::StrCat("trust root: ", prefix, ".key (keep it offline), ", prefix,
                               ".pub (pin it on agents and the control plane)\n",
                               "policy template: ", o.dir, "/policy.yaml\n"));
}

// ---- keygen ----

int Keygen(const std::string& prefix, Context& ctx) {
  const auto key = crypto::Ed25519PrivateKey::Generate();
  if (absl::Status s = SaveKeyPair(key, prefix); !s.ok()) return ctx.Fail(s);
  return ctx.Emit(
      absl::StrCat(prefix, ".key (private, 0600), ", prefix, ".pub; key id ", key.key_id(), "\n"));
}

// ---- sign ----

struct SignOptions {
  std::string spec;
  std::string root_key;
  std::string out;
};

absl::StatusOr<std::string> RawKey(const std::string& field, const std::string& path) {
  auto k = crypto::Ed25519PublicKey::LoadFile(path);
  if (!k.ok()) return absl::InvalidArgumentError(absl::StrCat(field, ": ", k.status().message()));
  return k->raw();
}

absl::StatusOr<TrustPolicy> FromSpec(const writeback::v1::TrustPolicySpec& spec, absl::Time now) {
  TrustPolicy p;
  p.set_trust_domain(spec.trust_domain());
  p.set_version(spec.version());
  p.set_comment(spec.comment());
  p.set_issued_at_unix_ms(absl::ToUnixMillis(now));
  for (int i = 0; i < spec.dispatch_keys_size(); ++i) {
    auto* k = p.add_dispatch_keys();
    k->set_name(spec.dispatch_keys(i).name());
    auto raw = RawKey(absl::StrCat("dispatch_keys[", i, "].public_key_file"),
                      spec.dispatch_keys(i).public_key_file());
    if (!raw.ok()) return raw.status();
    k->set_public_key(*raw);
  }
  for (int i = 0; i < spec.approvers_size(); ++i) {
    auto* a = p.add_approvers();
    a->set_name(spec.approvers(i).name());
    a->set_identity(spec.approvers(i).identity());
    auto raw = RawKey(absl::StrCat("approvers[", i, "].public_key_file"),
                      spec.approvers(i).public_key_file());
    if (!raw.ok()) return raw.status();
    a->set_public_key(*raw);
  }
  *p.mutable_approval_thresholds() = spec.approval_thresholds();
  if (spec.has_default_rate_budget()) {
    p.mutable_default_rate_budget()->set_max_tasks(spec.default_rate_budget().max_tasks());
    p.mutable_default_rate_budget()->set_window_seconds(
        spec.default_rate_budget().window_seconds());
  }
  for (const auto& [agent, b] : spec.agent_rate_budgets()) {
    auto& out = (*p.mutable_agent_rate_budgets())[agent];
    out.set_max_tasks(b.max_tasks());
    out.set_window_seconds(b.window_seconds());
  }
  p.set_require_statement_agent(spec.require_statement_agent());
  return p;
}

int Sign(const SignOptions& o, Context& ctx) {
  writeback::v1::TrustPolicySpec spec;
  if (absl::Status s = config::LoadYamlFile(o.spec, &spec); !s.ok()) return ctx.Fail(s);
  auto root = crypto::Ed25519PrivateKey::LoadFile(o.root_key);
  if (!root.ok()) {
    return ctx.Fail(
        absl::InvalidArgumentError(absl::StrCat("--root-key: ", root.status().message())));
  }
  auto policy = FromSpec(spec, ctx.Now());
  if (!policy.ok()) return ctx.Fail(policy.status());
  auto env = trust::SignPolicy(*policy, *root);
  if (!env.ok()) return ctx.Fail(env.status());
  if (absl::Status s = fs::WriteFileAtomic(o.out, env->SerializeAsString(), Mode(0644)); !s.ok()) {
    return ctx.Fail(s);
  }
  return ctx.Emit(absl::StrCat("signed trust policy v", policy->version(), " (root key ",
                               root->key_id(), ") -> ", o.out, "\n"));
}

// ---- show ----

struct ShowOptions {
  std::string file;
  std::string root;  // public key to verify with
};

int ShowFile(const ShowOptions& o, Context& ctx) {
  auto env = trust::ReadSignedPolicyFile(o.file);
  if (!env.ok()) return ctx.Fail(env.status());
  std::string verified;
  TrustPolicy p;
  if (!o.root.empty()) {
    auto root = crypto::Ed25519PublicKey::LoadFile(o.root);
    if (!root.ok()) {
      return ctx.Fail(
          absl::InvalidArgumentError(absl::StrCat("--root: ", root.status().message())));
    }
    auto v = trust::VerifyPolicy(*env, *root, 1, ctx.Now());
    if (!v.ok()) return ctx.Fail(v.status());
    p = v->policy;
    verified = absl::StrCat("verified against root ", root->key_id());
  } else {
    if (!p.ParseFromString(env->payload())) {
      return ctx.Fail(absl::InvalidArgumentError("payload is not a TrustPolicy"));
    }
    verified = absl::StrCat("NOT verified (signed by key ", env->key_id(), "; pass --root)");
  }
  return Show(ctx, p, verified);
}

// ---- publish / status ----

int Publish(const std::string& file, Context& ctx) {
  auto env = trust::ReadSignedPolicyFile(file);
  if (!env.ok()) return ctx.Fail(env.status());
  writeback::v1::PublishTrustPolicyRequest req;
  *req.mutable_policy() = *env;
  auto r = CallAdmin(ctx, absl::Seconds(10), &writeback::v1::AdminService::Stub::PublishTrustPolicy,
                     req);
  if (!r.ok()) return ctx.Fail(r.status());
  return ctx.Emit(absl::StrCat("trust policy v", r->version(), " published; sent to ",
                               r->agents_notified(), " connected agent(s)\n"));
}

int Status(Context& ctx) {
  auto r = CallAdmin(ctx, absl::Seconds(10), &writeback::v1::AdminService::Stub::GetTrustPolicy,
                     writeback::v1::GetTrustPolicyRequest());
  if (!r.ok()) return ctx.Fail(r.status());
  if (!r->has_policy()) {
    return ctx.Emit("no trust policy published (approvals are not required)\n");
  }
  return Show(ctx, r->parsed(),
              absl::StrCat("held by the control plane (signed by key ", r->policy().key_id(), ")"));
}

const char kGroup[] = "Trust root, trust policy and approver keys";

const bool kInit = RegisterCommand({
    .path = {"trust", "init"},
    .description = "Create an offline trust root key pair and a policy template",
    .group_description = kGroup,
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<InitOptions>();
      app->add_option("DIR", o->dir, "Directory (created 0700; keep it offline)")->required();
      app->add_option("--trust-domain", o->trust_domain, "SPIFFE trust domain")
          ->capture_default_str();
      OnePerFlag(app->add_option("--dispatch-public-key", o->dispatch_keys,
                                 "The control plane's dispatch public key (repeatable)"));
      OnePerFlag(app->add_option("--approver", o->approvers,
                                 "NAME=PUBLIC_KEY_FILE of an approver (repeatable)"));
      return [o](Context& ctx) { return Init(*o, ctx); };
    },
});

const bool kKeygen = RegisterCommand({
    .path = {"trust", "keygen"},
    .description = "Create an Ed25519 key pair (PREFIX.key, PREFIX.pub) for an approver",
    .group_description = kGroup,
    .setup = [](CLI::App* app) -> Action {
      auto prefix = std::make_shared<std::string>();
      app->add_option("PREFIX", *prefix, "Path prefix of the two files")->required();
      return [prefix](Context& ctx) { return Keygen(*prefix, ctx); };
    },
});

const bool kSign = RegisterCommand({
    .path = {"trust", "sign"},
    .description = "Sign a trust policy (YAML) with the offline root key",
    .group_description = kGroup,
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<SignOptions>();
      app->add_option("--spec", o->spec, "Policy YAML (see wbctl trust init)")->required();
      app->add_option("--root-key", o->root_key, "The trust root's private key")->required();
      app->add_option("--out", o->out, "Signed policy file to write")->required();
      return [o](Context& ctx) { return Sign(*o, ctx); };
    },
});

const bool kShow = RegisterCommand({
    .path = {"trust", "show"},
    .description = "Show a signed trust policy file (verified with --root)",
    .group_description = kGroup,
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<ShowOptions>();
      app->add_option("FILE", o->file, "Signed policy file")->required();
      app->add_option("--root", o->root, "Trust root public key to verify against");
      return [o](Context& ctx) { return ShowFile(*o, ctx); };
    },
});

const bool kPublish = RegisterCommand({
    .path = {"trust", "publish"},
    .description = "Give a signed trust policy to the control plane, which sends it to agents",
    .group_description = kGroup,
    .setup = [](CLI::App* app) -> Action {
      auto file = std::make_shared<std::string>();
      app->add_option("FILE", *file, "Signed policy file")->required();
      return [file](Context& ctx) { return Publish(*file, ctx); };
    },
});

const bool kStatus = RegisterCommand({
    .path = {"trust", "status"},
    .description = "Show the trust policy the control plane distributes",
    .group_description = kGroup,
    .setup = [](CLI::App* app) -> Action { return [](Context& ctx) { return Status(ctx); }; },
});

}  // namespace
}  // namespace wb::cli
