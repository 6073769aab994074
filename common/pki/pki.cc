#include "common/pki/pki.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "common/tls/tls.h"

namespace wb::pki {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::Status WritePem(const std::string& path, absl::string_view pem, mode_t mode) {
  return fs::WriteFileAtomic(path, pem, {.mode = mode});
}

}  // namespace

absl::StatusOr<Pki> Pki::Init(const std::string& dir, const PkiSpec& spec, absl::Time now) {
  WB_RETURN_IF_ERROR(tls::ValidateName("trust_domain", spec.trust_domain));
  WB_RETURN_IF_ERROR(tls::ValidateName("controlplane name", spec.controlplane_name));
  WB_RETURN_IF_ERROR(fs::MakeDirs(dir, 0700));
  Pki p;
  p.dir_ = dir;
  p.trust_domain_ = spec.trust_domain;
  p.controlplane_name_ = spec.controlplane_name;
  p.leaf_lifetime_ = spec.leaf_lifetime;
  if (!Exists(dir + "/ca.key")) {
    std::string key = crypto::GenerateP256KeyPem();
    crypto::CertSpec cs;
    cs.common_name = absl::StrCat("Writeback CA ", spec.trust_domain);
    cs.lifetime = spec.ca_lifetime;
    WB_ASSIGN_OR_RETURN(std::string cert, crypto::MakeSelfSignedCa(key, cs, now));
    WB_RETURN_IF_ERROR(WritePem(dir + "/ca.key", key, 0600));
    WB_RETURN_IF_ERROR(WritePem(dir + "/ca.crt", cert, 0644));
  }
  if (!Exists(p.controlplane().tls.cert_file())) {
    WB_RETURN_IF_ERROR(p.Issue("controlplane", spec.controlplane_name, p.controlplane_id(), true,
                               spec.leaf_lifetime, now)
                           .status());
  }
  if (!Exists(p.dispatch_key_file())) {
    auto k = crypto::Ed25519PrivateKey::Generate();
    WB_RETURN_IF_ERROR(k.SaveFile(p.dispatch_key_file()));
    WB_RETURN_IF_ERROR(WritePem(p.dispatch_pub_file(), k.public_key().ToPem(), 0644));
  }
  for (const auto& a : spec.agents) WB_RETURN_IF_ERROR(p.AddAgent(a, now).status());
  for (const auto& o : spec.operators) WB_RETURN_IF_ERROR(p.AddOperator(o, now).status());
  return p;
}

absl::StatusOr<Pki> Pki::Open(const std::string& dir, const std::string& trust_domain,
                              const std::string& controlplane_name) {
  if (!Exists(dir + "/ca.key") || !Exists(dir + "/ca.crt")) {
    return absl::NotFoundError(absl::StrCat(dir, ": no PKI here (ca.crt/ca.key missing)"));
  }
  Pki p;
  p.dir_ = dir;
  p.trust_domain_ = trust_domain;
  p.controlplane_name_ = controlplane_name;
  return p;
}

absl::StatusOr<Identity> Pki::AddAgent(const std::string& id, absl::Time now) {
  WB_RETURN_IF_ERROR(tls::ValidateName("agent id", id));
  const std::string sub = absl::StrCat("agents/", id);
  Identity ident = agent(id);
  if (!Exists(ident.tls.cert_file())) {
    WB_ASSIGN_OR_RETURN(ident, Issue(sub, "tls", ident.spiffe_id, false, leaf_lifetime_, now));
  }
  const std::string rk = agent_result_key_file(id);
  if (!Exists(rk)) {
    auto k = crypto::Ed25519PrivateKey::Generate();
    WB_RETURN_IF_ERROR(k.SaveFile(rk));
    WB_RETURN_IF_ERROR(
        WritePem(absl::StrCat(dir_, "/", sub, "/result.pub"), k.public_key().ToPem(), 0644));
  }
  return ident;
}

absl::StatusOr<Identity> Pki::AddOperator(const std::string& name, absl::Time now) {
  WB_RETURN_IF_ERROR(tls::ValidateName("operator name", name));
  Identity ident = operator_identity(name);
  if (Exists(ident.tls.cert_file())) return ident;
  return Issue(absl::StrCat("operators/", name), "tls", ident.spiffe_id, false, leaf_lifetime_,
               now);
}

absl::StatusOr<Identity> Pki::AddRaw(const std::string& subdir, const std::string& spiffe_id,
                                     absl::Duration lifetime, absl::Time now) {
  return Issue(subdir, "tls", spiffe_id, false, lifetime, now);
}

absl::StatusOr<Identity> Pki::Issue(const std::string& subdir, const std::string& stem,
                                    const std::string& spiffe_id, bool is_server,
                                    absl::Duration lifetime, absl::Time now) {
  const std::string d = absl::StrCat(dir_, "/", subdir);
  WB_RETURN_IF_ERROR(fs::MakeDirs(d, 0700));
  WB_ASSIGN_OR_RETURN(std::string ca_cert, fs::ReadFile(ca_file()));
  WB_ASSIGN_OR_RETURN(std::string ca_key, fs::ReadFile(dir_ + "/ca.key"));
  std::string key = crypto::GenerateP256KeyPem();
  WB_ASSIGN_OR_RETURN(std::string pub, crypto::PublicKeyPemOf(key));
  crypto::CertSpec cs;
  cs.common_name = spiffe_id;
  cs.spiffe_id = spiffe_id;
  cs.lifetime = lifetime;
  if (is_server) {
    cs.dns_names = {"localhost"};
    cs.ip_addresses = {"127.0.0.1"};
  }
  WB_ASSIGN_OR_RETURN(std::string cert, crypto::IssueCert(ca_cert, ca_key, pub, cs, now));
  Identity ident;
  ident.spiffe_id = spiffe_id;
  ident.tls.set_ca_file(ca_file());
  ident.tls.set_cert_file(absl::StrCat(d, "/", stem, ".crt"));
  ident.tls.set_key_file(absl::StrCat(d, "/", stem, ".key"));
  WB_RETURN_IF_ERROR(WritePem(ident.tls.key_file(), key, 0600));
  WB_RETURN_IF_ERROR(WritePem(ident.tls.cert_file(), cert, 0644));
  return ident;
}

Identity Pki::controlplane() const {
  Identity i;
  i.spiffe_id = controlplane_id();
  i.tls.set_ca_file(ca_file());
  i.tls.set_cert_file(absl::StrCat(dir_, "/controlplane/", controlplane_name_, ".crt"));
  i.tls.set_key_file(absl::StrCat(dir_, "/controlplane/", controlplane_name_, ".key"));
  return i;
}

std::string Pki::controlplane_id() const {
  return tls::MakeSpiffeId(trust_domain_, tls::IdentityClass::kControlPlane, controlplane_name_);
}

Identity Pki::agent(const std::string& id) const {
  Identity i;
  i.spiffe_id = tls::MakeSpiffeId(trust_domain_, tls::IdentityClass::kAgent, id);
  i.tls.set_ca_file(ca_file());
  i.tls.set_cert_file(absl::StrCat(dir_, "/agents/", id, "/tls.crt"));
  i.tls.set_key_file(absl::StrCat(dir_, "/agents/", id, "/tls.key"));
  return i;
}

std::string Pki::agent_result_key_file(const std::string& id) const {
  return absl::StrCat(dir_, "/agents/", id, "/result.key");
}

Identity Pki::operator_identity(const std::string& name) const {
  Identity i;
  i.spiffe_id = tls::MakeSpiffeId(trust_domain_, tls::IdentityClass::kOperator, name);
  i.tls.set_ca_file(ca_file());
  i.tls.set_cert_file(absl::StrCat(dir_, "/operators/", name, "/tls.crt"));
  i.tls.set_key_file(absl::StrCat(dir_, "/operators/", name, "/tls.key"));
  return i;
}

}  // namespace wb::pki
