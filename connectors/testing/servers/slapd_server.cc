#include "connectors/testing/servers/slapd_server.h"

#include <ldap.h>
#include <signal.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"

namespace wb::connectors::testing {
namespace {

absl::Status LdapError(absl::string_view what, int rc) {
  return absl::InternalError(absl::StrCat(what, ": ", ldap_err2string(rc), " (", rc, ")"));
}

std::string ConfigLdif(const std::string& dir, const SlapdServer::Options& o,
                       const std::string& admin_password) {
  std::string l = absl::StrCat(
      "dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcPidFile: ", dir, "/slapd.pid\n",
      "olcLogLevel: none\n\n",
      "dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n"
      "olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\nolcModuleLoad: ppolicy\n",
      o.monitor_readers.empty() ? "" : "olcModuleLoad: back_monitor\n", "\n",
      "dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n"
      "include: file:///etc/ldap/schema/core.ldif\n\n"
      "include: file:///etc/ldap/schema/cosine.ldif\n\n"
      "include: file:///etc/ldap/schema/nis.ldif\n\n"
      "include: file:///etc/ldap/schema/inetorgperson.ldif\n\n",
      "dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\n"
      "objectClass: olcFrontendConfig\nolcDatabase: {-1}frontend\n"
      "olcAccess: {0}to dn.base=\"\" by * read\n"
      "olcAccess: {1}to dn.base=\"cn=Subschema\" by * read\n\n",
      "dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\n"
      "olcDatabase: {0}config\nolcAccess: {0}to * by * none\n\n",
      "dn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\n"
      "objectClass: olcMdbConfig\nolcDatabase: {1}mdb\nolcSuffix: ",
      o.suffix, "\nolcRootDN: cn=admin,", o.suffix, "\nolcRootPW: ", admin_password,
      "\nolcDbDirectory: ", dir, "/data\nolcDbMaxSize: 67108864\nolcDbNoSync: TRUE\n");
  for (size_t i = 0; i < o.access.size(); ++i) {
    absl::StrAppend(&l, "olcAccess: {", i, "}", o.access[i], "\n");
  }
  absl::StrAppend(&l,
                  "\ndn: olcOverlay={0}ppolicy,olcDatabase={1}mdb,cn=config\n"
                  "objectClass: olcOverlayConfig\nobjectClass: olcPPolicyConfig\n"
                  "olcOverlay: {0}ppolicy\nolcPPolicyDefault: cn=default,ou=policies,",
                  o.suffix, "\n\n");
  if (!o.monitor_readers.empty()) {
    absl::StrAppend(&l,
                    "dn: olcDatabase={2}monitor,cn=config\nobjectClass: olcDatabaseConfig\n"
                    "olcDatabase: {2}monitor\nolcAccess: {0}to *");
    for (const auto& r : o.monitor_readers) absl::StrAppend(&l, " by dn.exact=\"", r, "\" read");
    absl::StrAppend(&l, " by * none\n\n");
  }
  return l;
}

std::string DataLdif(const SlapdServer::Options& o) {
  const std::string& s = o.suffix;
  const std::string first_rdn_value = s.substr(s.find('=') + 1, s.find(',') - s.find('=') - 1);
  return absl::StrCat(
      "dn: ", s, "\nobjectClass: dcObject\nobjectClass: organization\ndc: ", first_rdn_value,
      "\no: ", first_rdn_value, "\n\n", "dn: ou=policies,", s,
      "\nobjectClass: organizationalUnit\nou: policies\n\n", "dn: cn=default,ou=policies,", s,
      "\nobjectClass: device\nobjectClass: pwdPolicy\ncn: default\n"
      "pwdAttribute: userPassword\npwdLockout: TRUE\n\n",
      "dn: ou=people,", s, "\nobjectClass: organizationalUnit\nou: people\n\n", "dn: ou=groups,", s,
      "\nobjectClass: organizationalUnit\nou: groups\n\n", o.extra_ldif);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SlapdServer>> SlapdServer::Start(const std::string& dir,
                                                                const Options& opts) {
  WB_RETURN_IF_ERROR(fs::MakeDirs(dir + "/conf", 0700));
  WB_RETURN_IF_ERROR(fs::MakeDirs(dir + "/data", 0700));
  auto server = std::unique_ptr<SlapdServer>(new SlapdServer());
  server->suffix_ = opts.suffix;
  server->password_ = crypto::HexEncode(crypto::RandomBytes(12));
  server->log_path_ = dir + "/slapd.log";
  WB_RETURN_IF_ERROR(
      fs::WriteFileAtomic(dir + "/config.ldif", ConfigLdif(dir, opts, server->password_)));
  WB_RETURN_IF_ERROR(fs::WriteFileAtomic(dir + "/data.ldif", DataLdif(opts)));
  SpawnOptions add;
  add.argv = {opts.slapadd, "-F", dir + "/conf", "-n", "0", "-l", dir + "/config.ldif"};
  WB_RETURN_IF_ERROR(RunToCompletion(add).status());
  add.argv = {opts.slapadd, "-F", dir + "/conf", "-n", "1", "-l", dir + "/data.ldif"};
  WB_RETURN_IF_ERROR(RunToCompletion(add).status());

  absl::Status last = absl::UnknownError("not started");
  for (int attempt = 0; attempt < 5; ++attempt) {
    WB_ASSIGN_OR_RETURN(const int port, PickFreePort());
    SpawnOptions run;
    // -d 0 keeps slapd in the foreground (no fork), logging nothing extra.
    run.argv = {opts.binary,
                "-d",
                "0",
                "-F",
                dir + "/conf",
                "-h",
                absl::StrCat("ldap://127.0.0.1:", port, "/")};
    run.log_file = server->log_path_;
    run.working_dir = dir;
    WB_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(run));
    auto holder = std::make_unique<ChildProcess>(std::move(child));
    const std::string uri = absl::StrCat("ldap://127.0.0.1:", port);
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    bool ready = false;
    while (absl::Now() < deadline && holder->Running()) {
      auto c = LdapClient::Connect(uri, server->admin_dn(), server->password_);
      if (c.ok()) {
        ready = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (ready) {
      server->child_ = std::move(holder);
      server->port_ = port;
      return server;
    }
    holder->Stop(SIGKILL, absl::Seconds(5));
    last = absl::InternalError(
        absl::StrCat("slapd did not start on port ", port, ": ", server->ReadLog()));
  }
  return last;
}

SlapdServer::~SlapdServer() {
  if (child_ != nullptr) child_->Stop(SIGINT, absl::Seconds(10));
}

std::string SlapdServer::uri() const { return absl::StrCat("ldap://127.0.0.1:", port_); }

absl::StatusOr<std::unique_ptr<LdapClient>> LdapClient::Connect(const std::string& uri,
                                                                const std::string& dn,
                                                                const std::string& password) {
  LDAP* ld = nullptr;
  int rc = ldap_initialize(&ld, uri.c_str());
  if (rc != LDAP_SUCCESS) return LdapError("ldap_initialize", rc);
  const int version = LDAP_VERSION3;
  ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
  timeval tv{10, 0};
  ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
  ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
  ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  berval cred;
  cred.bv_val = const_cast<char*>(password.data());
  cred.bv_len = password.size();
  rc = ldap_sasl_bind_s(ld, dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
  if (rc != LDAP_SUCCESS) {
    ldap_unbind_ext_s(ld, nullptr, nullptr);
    return absl::PermissionDeniedError(absl::StrCat("bind: ", ldap_err2string(rc), " (", rc, ")"));
  }
  return std::unique_ptr<LdapClient>(new LdapClient(ld));
}

LdapClient::~LdapClient() { ldap_unbind_ext_s(ld_, nullptr, nullptr); }

absl::Status LdapClient::Add(
    const std::string& dn,
    const std::vector<std::pair<std::string, std::vector<std::string>>>& attrs) {
  std::vector<LDAPMod> mods(attrs.size());
  std::vector<std::vector<berval>> bvs(attrs.size());
  std::vector<std::vector<berval*>> ptrs(attrs.size());
  std::vector<LDAPMod*> modp;
  for (size_t i = 0; i < attrs.size(); ++i) {
    for (const auto& v : attrs[i].second) {
      bvs[i].push_back(berval{v.size(), const_cast<char*>(v.data())});
    }
    for (auto& b : bvs[i]) ptrs[i].push_back(&b);
    ptrs[i].push_back(nullptr);
    mods[i].mod_op = LDAP_MOD_ADD | LDAP_MOD_BVALUES;
    mods[i].mod_type = const_cast<char*>(attrs[i].first.c_str());
    mods[i].mod_bvalues = ptrs[i].data();
    modp.push_back(&mods[i]);
  }
  modp.push_back(nullptr);
  const int rc = ldap_add_ext_s(ld_, dn.c_str(), modp.data(), nullptr, nullptr);
  if (rc != LDAP_SUCCESS) return LdapError(absl::StrCat("add ", dn.substr(0, 200)), rc);
  return absl::OkStatus();
}

absl::Status LdapClient::Modify(const std::string& dn, const std::string& op,
                                const std::string& attr, const std::vector<std::string>& values) {
  std::vector<berval> bvs;
  for (const auto& v : values) bvs.push_back(berval{v.size(), const_cast<char*>(v.data())});
  std::vector<berval*> ptrs;
  for (auto& b : bvs) ptrs.push_back(&b);
  ptrs.push_back(nullptr);
  LDAPMod mod;
  mod.mod_op = (op == "add"      ? LDAP_MOD_ADD
                : op == "delete" ? LDAP_MOD_DELETE
                                 : LDAP_MOD_REPLACE) |
               LDAP_MOD_BVALUES;
  mod.mod_type = const_cast<char*>(attr.c_str());
  mod.mod_bvalues = values.empty() ? nullptr : ptrs.data();
  LDAPMod* mods[] = {&mod, nullptr};
  const int rc = ldap_modify_ext_s(ld_, dn.c_str(), mods, nullptr, nullptr);
  if (rc != LDAP_SUCCESS) return LdapError(absl::StrCat("modify ", dn.substr(0, 200)), rc);
  return absl::OkStatus();
}

absl::Status LdapClient::Delete(const std::string& dn) {
  const int rc = ldap_delete_ext_s(ld_, dn.c_str(), nullptr, nullptr);
  if (rc != LDAP_SUCCESS) return LdapError(absl::StrCat("delete ", dn.substr(0, 200)), rc);
  return absl::OkStatus();
}

namespace {

absl::StatusOr<std::map<std::string, LdapClient::Attrs>> DoSearch(LDAP* ld, const std::string& base,
                                                                  int scope,
                                                                  const std::string& filter) {
  char star[] = "*";
  char plus[] = "+";
  char* attrs[] = {star, plus, nullptr};
  LDAPMessage* res = nullptr;
  const int rc = ldap_search_ext_s(ld, base.c_str(), scope, filter.c_str(), attrs, 0, nullptr,
                                   nullptr, nullptr, 0, &res);
  if (rc == LDAP_NO_SUCH_OBJECT) {
    ldap_msgfree(res);
    return absl::NotFoundError(absl::StrCat("no entry ", base.substr(0, 200)));
  }
  if (rc != LDAP_SUCCESS) {
    ldap_msgfree(res);
    return LdapError(absl::StrCat("search ", base.substr(0, 200)), rc);
  }
  std::map<std::string, LdapClient::Attrs> out;
  for (LDAPMessage* e = ldap_first_entry(ld, res); e != nullptr; e = ldap_next_entry(ld, e)) {
    char* dn = ldap_get_dn(ld, e);
    LdapClient::Attrs& a = out[dn != nullptr ? dn : ""];
    ldap_memfree(dn);
    BerElement* ber = nullptr;
    for (char* name = ldap_first_attribute(ld, e, &ber); name != nullptr;
         name = ldap_next_attribute(ld, e, ber)) {
      berval** vals = ldap_get_values_len(ld, e, name);
      auto& list = a[name];
      for (int i = 0; vals != nullptr && vals[i] != nullptr; ++i) {
        list.emplace_back(vals[i]->bv_val, vals[i]->bv_len);
      }
      ldap_value_free_len(vals);
      ldap_memfree(name);
    }
    ber_free(ber, 0);
  }
  ldap_msgfree(res);
  return out;
}

}  // namespace

absl::StatusOr<LdapClient::Attrs> LdapClient::Read(const std::string& dn) {
  WB_ASSIGN_OR_RETURN(auto found, DoSearch(ld_, dn, LDAP_SCOPE_BASE, "(objectClass=*)"));
  if (found.empty()) return absl::NotFoundError(absl::StrCat("no entry ", dn.substr(0, 200)));
  return found.begin()->second;
}

absl::StatusOr<std::map<std::string, LdapClient::Attrs>> LdapClient::Search(
    const std::string& base, const std::string& filter) {
  return DoSearch(ld_, base, LDAP_SCOPE_SUBTREE, filter);
}

bool LdapClient::Alive() {
  // A read of the bound account's own view: a broken connection fails.
  auto r = DoSearch(ld_, "", LDAP_SCOPE_BASE, "(objectClass=*)");
  return r.ok();
}

}  // namespace wb::connectors::testing
