// Test environment of the ldap connector tests: one real slapd per test
// process (cn=config made by the test, mdb, ppolicy with a default policy
// that enforces locks, the monitor backend), an admin client (the rootdn),
// and the connector's own DN with exactly the access docs/connectors/ldap.md
// documents.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "common/testing/temp_dir.h"
#include "connectors/testing/servers/slapd_server.h"
#include "gtest/gtest.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors::ldaptest {

using testing::LdapClient;
using testing::SlapdServer;

inline constexpr const char* kSuffix = "dc=example,dc=test";
inline constexpr const char* kConnectorDn = "cn=writeback,ou=services,dc=example,dc=test";
inline constexpr const char* kConnectorPassword = "wb-ldap-connector-secret";
inline constexpr const char* kPlaceholder = "cn=nobody,ou=services,dc=example,dc=test";

// A DN with every byte of the value hex-escaped (RFC 4514 \XX): an escaping
// independent of the connector's.
inline std::string HexDn(const std::string& attr, const std::string& value,
                         const std::string& base) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = attr + "=";
  for (unsigned char c : value) {
    out.push_back('\\');
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out + "," + base;
}

class LdapEnv : public ::testing::Environment {
 public:
  static LdapEnv* Get() {
    static LdapEnv* env = static_cast<LdapEnv*>(::testing::AddGlobalTestEnvironment(new LdapEnv));
    return env;
  }

  void SetUp() override {
    tmp_ = std::make_unique<wb::testing::TempDir>();
    const std::string w = kConnectorDn;
    const std::string people = absl::StrCat("ou=people,", kSuffix);
    const std::string groups = absl::StrCat("ou=groups,", kSuffix);
    SlapdServer::Options o;
    o.access = {
        // The connector: write on the accounts' password and lock, delete
        // accounts, write on group membership; read what it verifies.
        absl::StrCat("to dn.subtree=\"", people, "\" attrs=userPassword by dn.exact=\"", w,
                     "\" write by self write by anonymous auth by * none"),
        absl::StrCat("to dn.subtree=\"", people, "\" attrs=pwdAccountLockedTime by dn.exact=\"", w,
                     "\" write by * none"),
        absl::StrCat("to dn.base=\"", people, "\" attrs=children by dn.exact=\"", w,
                     "\" write by * none"),
        absl::StrCat("to dn.children=\"", people, "\" attrs=entry by dn.exact=\"", w,
                     "\" write by anonymous auth by * none"),
        absl::StrCat("to dn.subtree=\"", people, "\" by dn.exact=\"", w, "\" read by * none"),
        absl::StrCat("to dn.subtree=\"", groups,
                     "\" attrs=member,uniqueMember,memberUid by dn.exact=\"", w,
                     "\" write by * none"),
        absl::StrCat("to dn.subtree=\"", groups, "\" by dn.exact=\"", w, "\" read by * none"),
        absl::StrCat("to dn.subtree=\"ou=policies,", kSuffix, "\" by dn.exact=\"", w,
                     "\" read by * none"),
        "to attrs=entry,userPassword by anonymous auth by * none",
        "to * by * none",
    };
    o.monitor_readers = {w};
    o.extra_ldif =
        absl::StrCat("dn: ou=services,", kSuffix,
                     "\nobjectClass: organizationalUnit\nou: services\n\n", "dn: ", w,
                     "\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject"
                     "\ncn: writeback\nuserPassword: ",
                     kConnectorPassword, "\n\n", "dn: ", kPlaceholder,
                     "\nobjectClass: organizationalRole\ncn: nobody\n\n");
    auto s = SlapdServer::Start(tmp_->Sub("ldap"), o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    auto a = LdapClient::Connect(server_->uri(), server_->admin_dn(), server_->admin_password());
    ASSERT_TRUE(a.ok()) << a.status();
    admin_ = std::move(*a);
    connector_password_file_ = WriteSecret("connector", kConnectorPassword);
  }
  void TearDown() override {
    admin_.reset();
    server_.reset();
    tmp_.reset();
  }

  bool ok() const { return admin_ != nullptr; }
  SlapdServer& server() { return *server_; }
  LdapClient& admin() { return *admin_; }
  const std::string& dir() const { return tmp_->path(); }

  std::string WriteSecret(const std::string& name, const std::string& secret) {
    const std::string path = tmp_->Sub(absl::StrCat("secret-", ++files_));
    EXPECT_TRUE(fs::WriteFileAtomic(path, secret + "\n").ok()) << name;
    return path;
  }
  std::string Unique() { return absl::StrCat(++unique_); }

  writeback::v1::ConnectorInstanceConfig Config(const std::string& name = "dir") {
    writeback::v1::ConnectorInstanceConfig c;
    c.set_name(name);
    c.set_type("ldap");
    auto* l = c.mutable_ldap();
    l->set_uri(server_->uri());
    l->set_allow_plaintext_loopback(true);
    l->set_bind_dn(kConnectorDn);
    l->set_password_file(connector_password_file_);
    l->set_user_base_dn(absl::StrCat("ou=people,", kSuffix));
    l->set_group_base_dn(absl::StrCat("ou=groups,", kSuffix));
    l->add_group_member_attributes("member");
    l->add_group_member_attributes("uniqueMember");
    l->add_group_member_attributes("memberUid");
    l->set_ppolicy_dn(absl::StrCat("cn=default,ou=policies,", kSuffix));
    l->set_monitor_dn("cn=Connections,cn=Monitor");
    l->set_empty_group_placeholder_dn(kPlaceholder);
    l->set_timeout_seconds(10);
    return c;
  }

 private:
  std::unique_ptr<wb::testing::TempDir> tmp_;
  std::unique_ptr<SlapdServer> server_;
  std::unique_ptr<LdapClient> admin_;
  std::string connector_password_file_;
  std::atomic<int> files_{0};
  std::atomic<int> unique_{0};
};

}  // namespace wb::connectors::ldaptest
