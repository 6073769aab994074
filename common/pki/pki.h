// Development / small-site PKI: one CA and the identities of a Writeback
// deployment, written to a directory. Used by `wbctl pki init` and by tests.
//
// Layout under `dir` (every private key 0600, directories 0700):
//   ca.crt  ca.key
//   controlplane/<name>.crt  <name>.key  dispatch.key  dispatch.pub
//   agents/<id>/tls.crt  tls.key  result.key  result.pub
//   operators/<name>/tls.crt  tls.key
// Certificates carry a single URI SAN with the SPIFFE ID. The control
// plane's certificate also names "localhost" and 127.0.0.1 for tools that
// check host names.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "writeback/v1/config.pb.h"

namespace wb::pki {

struct PkiSpec {
  std::string trust_domain = "writeback.test";
  std::string controlplane_name = "cp";
  std::vector<std::string> agents;
  std::vector<std::string> operators;
  absl::Duration ca_lifetime = absl::Hours(24 * 365 * 5);
  absl::Duration leaf_lifetime = absl::Hours(24 * 90);
};

// Paths of one identity's files.
struct Identity {
  std::string spiffe_id;
  writeback::v1::TlsConfig tls;  // ca_file, cert_file, key_file
};

class Pki {
 public:
  // Creates the CA (if `dir`/ca.key does not exist yet), the control plane's
  // certificate and dispatch key, and every listed agent and operator. Existing
  // identities are kept, so running it twice adds only what is missing.
  static absl::StatusOr<Pki> Init(const std::string& dir, const PkiSpec& spec, absl::Time now);
  // Opens an existing PKI directory.
  static absl::StatusOr<Pki> Open(const std::string& dir, const std::string& trust_domain,
                                  const std::string& controlplane_name = "cp");

  absl::StatusOr<Identity> AddAgent(const std::string& id, absl::Time now);
  absl::StatusOr<Identity> AddOperator(const std::string& name, absl::Time now);
  // Issues a certificate for an arbitrary SPIFFE ID (tests: wrong classes,
  // other trust domains).
  absl::StatusOr<Identity> AddRaw(const std::string& subdir, const std::string& spiffe_id,
                                  absl::Duration lifetime, absl::Time now);

  const std::string& dir() const { return dir_; }
  const std::string& trust_domain() const { return trust_domain_; }
  std::string ca_file() const { return dir_ + "/ca.crt"; }
  Identity controlplane() const;
  std::string controlplane_id() const;
  std::string dispatch_key_file() const { return dir_ + "/controlplane/dispatch.key"; }
  std::string dispatch_pub_file() const { return dir_ + "/controlplane/dispatch.pub"; }
  Identity agent(const std::string& id) const;
  std::string agent_result_key_file(const std::string& id) const;
  Identity operator_identity(const std::string& name) const;

 private:
  absl::StatusOr<Identity> Issue(const std::string& subdir, const std::string& file_stem,
                                 const std::string& spiffe_id, bool is_server,
                                 absl::Duration lifetime, absl::Time now);
  std::string dir_;
  std::string trust_domain_;
  std::string controlplane_name_;
  absl::Duration leaf_lifetime_ = absl::Hours(24 * 90);
};

}  // namespace wb::pki
