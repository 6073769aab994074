// wbctl pki init DIR: a development / small-site PKI (common/pki/pki.h).
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "cli/command.h"
#include "cli/exit_codes.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/pki/pki.h"

namespace wb::cli {
namespace {

using Json = nlohmann::ordered_json;

struct Options {
  std::string dir;
  std::string trust_domain = "writeback.test";
  std::string controlplane = "cp";
  std::vector<std::string> agents;
  std::vector<std::string> operators;
};

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// An existing CA names its trust domain in its common name; refuse to mix
// identities of two trust domains under one CA by accident.
absl::Status CheckTrustDomain(const std::string& dir, const std::string& trust_domain) {
  const std::string ca = dir + "/ca.crt";
  if (!Exists(ca)) return absl::OkStatus();
  auto pem = fs::ReadFile(ca, 1 << 20);
  if (!pem.ok()) return pem.status();
  auto info = crypto::ParseCert(*pem);
  if (!info.ok())
    return absl::InvalidArgumentError(absl::StrCat(ca, ": ", info.status().message()));
  absl::string_view cn = info->subject_cn;
  if (absl::ConsumePrefix(&cn, "Writeback CA ") && cn != trust_domain) {
    return absl::InvalidArgumentError(absl::StrCat("--trust-domain: ", dir,
                                                   " holds a PKI for trust domain '", cn,
                                                   "', not '", trust_domain, "'"));
  }
  return absl::OkStatus();
}

const char* CreatedOrKept(bool created) { return created ? "created" : "kept   "; }

std::string JsonToText(const Json& doc) {
  std::string out;
  const auto& ca = doc["ca"];
  absl::StrAppend(&out, "PKI directory: ", doc["dir"].get<std::string>(), "\n",
                  "Trust domain:  ", doc["trust_domain"].get<std::string>(), "\n\n");
  auto files = [&out](const Json& item,
                      std::initializer_list<std::pair<const char*, const char*>> f) {
    for (const auto& [key, label] : f) {
      absl::StrAppend(&out, "           ", label, " ", item[key].get<std::string>(), "\n");
    }
  };
  absl::StrAppend(&out, CreatedOrKept(ca["created"].get<bool>()), "  CA\n");
  files(ca, {{"cert_file", "cert      "}, {"key_file", "key       "}});
  const auto& cp = doc["controlplane"];
  absl::StrAppend(&out, CreatedOrKept(cp["created"].get<bool>()), "  control plane ",
                  cp["name"].get<std::string>(), "  ", cp["spiffe_id"].get<std::string>(), "\n");
  files(cp, {{"cert_file", "cert      "}, {"key_file", "key       "}});
  const auto& dk = doc["dispatch_key"];
  absl::StrAppend(&out, CreatedOrKept(dk["created"].get<bool>()), "  dispatch key (Ed25519)\n");
  files(dk, {{"key_file", "key       "}, {"public_key_file", "public key"}});
  for (const auto& a : doc["agents"]) {
    absl::StrAppend(&out, CreatedOrKept(a["created"].get<bool>()), "  agent ",
                    a["id"].get<std::string>(), "  ", a["spiffe_id"].get<std::string>(), "\n");
    files(a, {{"cert_file", "cert      "},
              {"key_file", "key       "},
              {"result_key_file", "result key"},
              {"result_public_key_file", "result pub"}});
  }
  for (const auto& o : doc["operators"]) {
    absl::StrAppend(&out, CreatedOrKept(o["created"].get<bool>()), "  operator ",
                    o["name"].get<std::string>(), "  ", o["spiffe_id"].get<std::string>(), "\n");
    files(o, {{"cert_file", "cert      "}, {"key_file", "key       "}});
  }
  absl::StrAppend(&out,
                  "\nPrivate keys (*.key) are mode 0600. ca.key signs every identity: keep it "
                  "off shared hosts.\n");
  return out;
}

int Run(const Options& o, Context& ctx) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  std::error_code ec;
  std::string dir = std::filesystem::absolute(o.dir, ec).lexically_normal().string();
  if (ec) return ctx.Fail(absl::InvalidArgumentError(absl::StrCat("DIR: ", ec.message())));
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (auto s = CheckTrustDomain(dir, o.trust_domain); !s.ok()) return ctx.Fail(s);

  pki::PkiSpec spec;
  spec.trust_domain = o.trust_domain;
  spec.controlplane_name = o.controlplane;
  spec.agents = o.agents;
  spec.operators = o.operators;

  // What exists before, to report what this run created.
  const bool ca_existed = Exists(dir + "/ca.key");
  auto before = pki::Pki::Open(dir, o.trust_domain, o.controlplane);
  auto existed = [&](const std::string& path) { return before.ok() && Exists(path); };
  std::vector<bool> agent_existed, operator_existed;
  bool cp_existed = false, dispatch_existed = false;
  if (before.ok()) {
    cp_existed = existed(before->controlplane().tls.cert_file());
    dispatch_existed = existed(before->dispatch_key_file());
    for (const auto& a : o.agents) {
      agent_existed.push_back(existed(before->agent(a).tls.cert_file()) &&
                              existed(before->agent_result_key_file(a)));
    }
    for (const auto& n : o.operators) {
      operator_existed.push_back(existed(before->operator_identity(n).tls.cert_file()));
    }
  } else {
    agent_existed.assign(o.agents.size(), false);
    operator_existed.assign(o.operators.size(), false);
  }

  auto p = pki::Pki::Init(dir, spec, ctx.Now());
  if (!p.ok()) {
    const absl::Status& s = p.status();
    // Bad names are usage errors; anything else (I/O) is a failure.
    return ctx.Fail(s.code() == absl::StatusCode::kInvalidArgument
                        ? s
                        : absl::Status(absl::StatusCode::kUnknown, s.message()));
  }

  Json doc;
  doc["dir"] = dir;
  doc["trust_domain"] = o.trust_domain;
  doc["ca"] = {
      {"created", !ca_existed}, {"cert_file", p->ca_file()}, {"key_file", dir + "/ca.key"}};
  const auto cp = p->controlplane();
  doc["controlplane"] = {{"created", !cp_existed},
                         {"name", o.controlplane},
                         {"spiffe_id", cp.spiffe_id},
                         {"cert_file", cp.tls.cert_file()},
                         {"key_file", cp.tls.key_file()}};
  doc["dispatch_key"] = {{"created", !dispatch_existed},
                         {"key_file", p->dispatch_key_file()},
                         {"public_key_file", p->dispatch_pub_file()}};
  doc["agents"] = Json::array();
  for (size_t i = 0; i < o.agents.size(); ++i) {
    const auto a = p->agent(o.agents[i]);
    const std::string rk = p->agent_result_key_file(o.agents[i]);
    doc["agents"].push_back({{"created", !agent_existed[i]},
                             {"id", o.agents[i]},
                             {"spiffe_id", a.spiffe_id},
                             {"cert_file", a.tls.cert_file()},
                             {"key_file", a.tls.key_file()},
                             {"result_key_file", rk},
                             {"result_public_key_file",
                              std::filesystem::path(rk).replace_filename("result.pub").string()}});
  }
  doc["operators"] = Json::array();
  for (size_t i = 0; i < o.operators.size(); ++i) {
    const auto op = p->operator_identity(o.operators[i]);
    doc["operators"].push_back({{"created", !operator_existed[i]},
                                {"name", o.operators[i]},
                                {"spiffe_id", op.spiffe_id},
                                {"cert_file", op.tls.cert_file()},
                                {"key_file", op.tls.key_file()}});
  }
  switch (*format) {
    case OutputFormat::kTable:
      return ctx.Emit(JsonToText(doc));
    case OutputFormat::kJson:
      return ctx.Emit(doc.dump(2) + "\n");
    case OutputFormat::kYaml:
      return ctx.Emit(JsonToYaml(doc.dump()));
  }
  return kExitFailed;
}

const bool kRegistered = RegisterCommand({
    .path = {"pki", "init"},
    .description = "Create (or complete) a development PKI: CA, control plane, agents, operators",
    .group_description = "Certificates and keys (development and small-site profile)",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<Options>();
      app->add_option("DIR", o->dir, "Directory of the PKI (created with mode 0700)")->required();
      app->add_option("--trust-domain", o->trust_domain, "SPIFFE trust domain")
          ->capture_default_str();
      app->add_option("--controlplane", o->controlplane, "Name of the control plane identity")
          ->capture_default_str();
      OnePerFlag(app->add_option("--agent", o->agents, "Agent id to issue (repeatable)"));
      OnePerFlag(
          app->add_option("--operator", o->operators, "Operator name to issue (repeatable)"));
      return [o](Context& ctx) { return Run(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
