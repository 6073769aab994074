#include "connectors/ldap/ldap_session.h"

#include <ldap.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace wb::connectors::ldapc {

namespace {

// Server text in an error: printable ASCII only (other bytes become '?').
std::string Ascii(absl::string_view s) {
  std::string out(s.substr(0, 500));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return out;
}

}  // namespace

const std::vector<std::string>& Entry::Values(absl::string_view attr) const {
  static const std::vector<std::string> kNone;
  auto it = attrs.find(absl::AsciiStrToLower(attr));
  return it == attrs.end() ? kNone : it->second;
}

absl::StatusOr<std::unique_ptr<Session>> Session::Open(const std::string& uri, const TlsMode& tls,
                                                       absl::Duration timeout) {
  LDAP* ld = nullptr;
  int rc = ldap_initialize(&ld, uri.c_str());
  if (rc != LDAP_SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat("ldap_initialize: ", ldap_err2string(rc)));
  }
  auto s = std::unique_ptr<Session>(new Session(ld));
  const int version = LDAP_VERSION3;
  ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
  ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  timeval tv = absl::ToTimeval(std::max(timeout, absl::Seconds(1)));
  ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
  ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
  if (!tls.plaintext) {
    const int demand = LDAP_OPT_X_TLS_DEMAND;
    ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
    if (!tls.ca_file.empty()) ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, tls.ca_file.c_str());
    const int zero = 0;
    // Apply this handle's TLS settings in its own context.
    ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
    if (tls.start_tls) {
      rc = ldap_start_tls_s(ld, nullptr, nullptr);
      if (rc != LDAP_SUCCESS) return s->Error("StartTLS", rc);
    }
  }
  return s;
}

Session::~Session() { ldap_unbind_ext_s(ld_, nullptr, nullptr); }

absl::Status Session::Error(absl::string_view what, int rc) {
  rc_ = rc;
  char* diag = nullptr;
  ldap_get_option(ld_, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
  std::string msg = absl::StrCat(what, ": ", ldap_err2string(rc), " (", rc, ")");
  if (diag != nullptr) {
    if (*diag != '\0') absl::StrAppend(&msg, ": ", Ascii(diag));
    ldap_memfree(diag);
  }
  switch (rc) {
    case LDAP_NO_SUCH_OBJECT:
      return absl::NotFoundError(msg);
    case LDAP_INVALID_CREDENTIALS:
    case LDAP_INSUFFICIENT_ACCESS:
    case LDAP_INAPPROPRIATE_AUTH:
    case LDAP_STRONG_AUTH_REQUIRED:
    case LDAP_CONFIDENTIALITY_REQUIRED:
      return absl::PermissionDeniedError(msg);
    case LDAP_SERVER_DOWN:
    case LDAP_CONNECT_ERROR:
      return absl::UnavailableError(msg);
    case LDAP_TIMEOUT:
    case LDAP_TIMELIMIT_EXCEEDED:
      return absl::DeadlineExceededError(msg);
    default:
      return absl::FailedPreconditionError(msg);
  }
}

absl::Status Session::Bind(const std::string& dn, const std::string& password) {
  berval cred{password.size(), const_cast<char*>(password.data())};
  const int rc =
      ldap_sasl_bind_s(ld_, dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
  rc_ = rc;
  if (rc != LDAP_SUCCESS) return Error("bind", rc);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Entry>> Session::Search(const std::string& base, int scope,
                                                   const std::string& filter,
                                                   const std::vector<std::string>& attrs) {
  std::vector<char*> a;
  for (const auto& x : attrs) a.push_back(const_cast<char*>(x.c_str()));
  a.push_back(nullptr);
  LDAPMessage* res = nullptr;
  const int rc = ldap_search_ext_s(ld_, base.c_str(), scope, filter.c_str(), a.data(), 0, nullptr,
                                   nullptr, nullptr, LDAP_NO_LIMIT, &res);
  rc_ = rc;
  std::vector<Entry> out;
  if (rc == LDAP_NO_SUCH_OBJECT) {
    ldap_msgfree(res);
    return out;
  }
  if (rc != LDAP_SUCCESS) {
    ldap_msgfree(res);
    return Error("search", rc);
  }
  for (LDAPMessage* e = ldap_first_entry(ld_, res); e != nullptr; e = ldap_next_entry(ld_, e)) {
    Entry entry;
    char* dn = ldap_get_dn(ld_, e);
    if (dn != nullptr) {
      entry.dn = dn;
      ldap_memfree(dn);
    }
    BerElement* ber = nullptr;
    for (char* name = ldap_first_attribute(ld_, e, &ber); name != nullptr;
         name = ldap_next_attribute(ld_, e, ber)) {
      berval** vals = ldap_get_values_len(ld_, e, name);
      auto& list = entry.attrs[absl::AsciiStrToLower(name)];
      for (int i = 0; vals != nullptr && vals[i] != nullptr; ++i) {
        list.emplace_back(vals[i]->bv_val, vals[i]->bv_len);
      }
      ldap_value_free_len(vals);
      ldap_memfree(name);
    }
    if (ber != nullptr) ber_free(ber, 0);
    out.push_back(std::move(entry));
  }
  ldap_msgfree(res);
  return out;
}

absl::StatusOr<std::optional<Entry>> Session::Read(const std::string& dn,
                                                   const std::vector<std::string>& attrs) {
  auto found = Search(dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs);
  if (!found.ok()) return found.status();
  if (found->empty()) return std::optional<Entry>();
  return std::optional<Entry>(std::move((*found)[0]));
}

absl::StatusOr<bool> Session::Compare(const std::string& dn, const std::string& attr,
                                      const std::string& value) {
  berval bv{value.size(), const_cast<char*>(value.data())};
  const int rc = ldap_compare_ext_s(ld_, dn.c_str(), attr.c_str(), &bv, nullptr, nullptr);
  rc_ = rc;
  if (rc == LDAP_COMPARE_TRUE) return true;
  // A value the attribute's syntax cannot hold cannot be one of its values.
  if (rc == LDAP_COMPARE_FALSE || rc == LDAP_NO_SUCH_ATTRIBUTE || rc == LDAP_UNDEFINED_TYPE ||
      rc == LDAP_INVALID_SYNTAX || rc == LDAP_INAPPROPRIATE_MATCHING) {
    return false;
  }
  return Error("compare", rc);
}

absl::Status Session::Modify(const std::string& dn, const std::vector<Mod>& mods) {
  std::vector<LDAPMod> lm(mods.size());
  std::vector<std::vector<berval>> bvs(mods.size());
  std::vector<std::vector<berval*>> ptrs(mods.size());
  std::vector<LDAPMod*> lmp;
  for (size_t i = 0; i < mods.size(); ++i) {
    for (const auto& v : mods[i].values)
      bvs[i].push_back(berval{v.size(), const_cast<char*>(v.data())});
    for (auto& b : bvs[i]) ptrs[i].push_back(&b);
    ptrs[i].push_back(nullptr);
    const int op = mods[i].op == Mod::kAdd      ? LDAP_MOD_ADD
                   : mods[i].op == Mod::kDelete ? LDAP_MOD_DELETE
                                                : LDAP_MOD_REPLACE;
    lm[i].mod_op = op | LDAP_MOD_BVALUES;
    lm[i].mod_type = const_cast<char*>(mods[i].attr.c_str());
    lm[i].mod_bvalues = mods[i].values.empty() ? nullptr : ptrs[i].data();
    lmp.push_back(&lm[i]);
  }
  lmp.push_back(nullptr);
  const int rc = ldap_modify_ext_s(ld_, dn.c_str(), lmp.data(), nullptr, nullptr);
  rc_ = rc;
  if (rc != LDAP_SUCCESS) return Error("modify", rc);
  return absl::OkStatus();
}

absl::Status Session::Delete(const std::string& dn) {
  const int rc = ldap_delete_ext_s(ld_, dn.c_str(), nullptr, nullptr);
  rc_ = rc;
  if (rc != LDAP_SUCCESS) return Error("delete", rc);
  return absl::OkStatus();
}

}  // namespace wb::connectors::ldapc
