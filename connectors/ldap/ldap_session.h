// A thin wrapper over one libldap connection (LDAPv3, simple bind), for the
// ldap connector. TLS: ldaps://, or ldap:// with StartTLS, certificate
// verification required (LDAP_OPT_X_TLS_DEMAND) against the configured CA;
// plain ldap:// only when the caller says so. Errors carry the LDAP result
// code and the server's diagnostic, never a password. Not thread-safe; one
// Session per call.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

typedef struct ldap LDAP;

namespace wb::connectors::ldapc {

struct TlsMode {
  bool start_tls = false;  // for ldap:// URIs
  bool plaintext = false;  // ldap:// without TLS (loopback tests only)
  std::string ca_file;     // "" = the system default
};

struct Entry {
  std::string dn;
  // Attribute names lowercased → values in server order.
  std::map<std::string, std::vector<std::string>> attrs;
  const std::vector<std::string>& Values(absl::string_view attr) const;
};

struct Mod {
  enum Op { kAdd, kDelete, kReplace };
  Op op;
  std::string attr;
  std::vector<std::string> values;  // empty with kDelete: the whole attribute
};

class Session {
 public:
  static absl::StatusOr<std::unique_ptr<Session>> Open(const std::string& uri, const TlsMode& tls,
                                                       absl::Duration timeout);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Simple bind. PERMISSION_DENIED for invalidCredentials (49); rc() tells
  // the LDAP result code of the last operation.
  absl::Status Bind(const std::string& dn, const std::string& password);
  // Base-scope read; nullopt when the entry does not exist (noSuchObject).
  absl::StatusOr<std::optional<Entry>> Read(const std::string& dn,
                                            const std::vector<std::string>& attrs);
  // scope: LDAP_SCOPE_BASE / ONELEVEL / SUBTREE. noSuchObject for the base
  // gives an empty result.
  absl::StatusOr<std::vector<Entry>> Search(const std::string& base, int scope,
                                            const std::string& filter,
                                            const std::vector<std::string>& attrs);
  absl::StatusOr<bool> Compare(const std::string& dn, const std::string& attr,
                               const std::string& value);
  absl::Status Modify(const std::string& dn, const std::vector<Mod>& mods);
  absl::Status Delete(const std::string& dn);
  int rc() const { return rc_; }

 private:
  explicit Session(LDAP* ld) : ld_(ld) {}
  absl::Status Error(absl::string_view what, int rc);
  LDAP* ld_;
  int rc_ = 0;
};

}  // namespace wb::connectors::ldapc
