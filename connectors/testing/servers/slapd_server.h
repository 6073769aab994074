// Test support: a throwaway OpenLDAP slapd on 127.0.0.1 in a test's temporary
// directory: a cn=config directory made with slapadd from a generated LDIF
// (mdb backend, ppolicy overlay with a default policy that enforces locks,
// optionally the monitor backend), and a small libldap client. For tests only.
//
//   auto s = SlapdServer::Start(tmp.Sub("ldap"));
//   auto admin = LdapClient::Connect((*s)->uri(), (*s)->admin_dn(), (*s)->admin_password());
//   (*admin)->Add("uid=svc,ou=people,dc=example,dc=test", {{"objectClass", {"inetOrgPerson"}},
//   ...});
//
// Directory layout (suffix dc=example,dc=test): ou=people, ou=groups,
// ou=policies with cn=default (pwdAttribute userPassword, pwdLockout TRUE).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "connectors/testing/servers/process.h"

typedef struct ldap LDAP;

namespace wb::connectors::testing {

class SlapdServer {
 public:
  struct Options {
    std::string binary = "/usr/sbin/slapd";
    std::string slapadd = "/usr/sbin/slapadd";
    std::string suffix = "dc=example,dc=test";
    // olcAccess rules of the data database, in order (without "{n}"). The
    // default lets the admin (rootdn) do anything and others nothing but
    // authenticate.
    std::vector<std::string> access = {
        "to attrs=userPassword by anonymous auth by * none",
        "to * by * none",
    };
    // Load the monitor backend (cn=Monitor) readable by these DNs.
    std::vector<std::string> monitor_readers;
    // Extra LDIF added with slapadd before the start.
    std::string extra_ldif;
  };
  static absl::StatusOr<std::unique_ptr<SlapdServer>> Start(const std::string& dir,
                                                            const Options& opts);
  static absl::StatusOr<std::unique_ptr<SlapdServer>> Start(const std::string& dir) {
    return Start(dir, Options());
  }
  ~SlapdServer();  // SIGINT, then SIGKILL after 10 s

  int port() const { return port_; }
  std::string uri() const;  // "ldap://127.0.0.1:<port>"
  const std::string& suffix() const { return suffix_; }
  std::string admin_dn() const { return "cn=admin," + suffix_; }
  const std::string& admin_password() const { return password_; }
  std::string ReadLog() const { return ReadFileOrEmpty(log_path_); }

 private:
  SlapdServer() = default;
  std::unique_ptr<ChildProcess> child_;
  int port_ = 0;
  std::string suffix_;
  std::string password_;
  std::string log_path_;
};

// One blocking libldap connection (LDAPv3, simple bind, plain ldap:// on
// loopback). Not thread-safe.
class LdapClient {
 public:
  using Attrs = std::map<std::string, std::vector<std::string>>;

  // Connects and binds; the error carries the LDAP result code and message.
  static absl::StatusOr<std::unique_ptr<LdapClient>> Connect(const std::string& uri,
                                                             const std::string& dn,
                                                             const std::string& password);
  ~LdapClient();

  absl::Status Add(const std::string& dn,
                   const std::vector<std::pair<std::string, std::vector<std::string>>>& attrs);
  // op: "add", "delete" or "replace".
  absl::Status Modify(const std::string& dn, const std::string& op, const std::string& attr,
                      const std::vector<std::string>& values);
  absl::Status Delete(const std::string& dn);
  // Base-scope read of `dn` ("*" and "+" attributes); NOT_FOUND if absent.
  absl::StatusOr<Attrs> Read(const std::string& dn);
  // Subtree search; DN → attributes.
  absl::StatusOr<std::map<std::string, Attrs>> Search(const std::string& base,
                                                      const std::string& filter);
  // True if the connection still answers a rootDSE read.
  bool Alive();
  LDAP* raw() { return ld_; }

 private:
  explicit LdapClient(LDAP* ld) : ld_(ld) {}
  LDAP* ld_;
};

}  // namespace wb::connectors::testing
