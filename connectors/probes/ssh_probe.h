// A negative (or positive) SSH login probe: the real OpenSSH client tries to
// get into a real sshd and reports what happened, with the client's own
// words as evidence. Used by connectors to prove that revoked access fails
// from the outside, not only by re-reading what they wrote.
//
// Two kinds of probe:
//   ProbeLogin     logs in with a private key and runs a harmless command
//                  (`echo wb-probe-ok`): accepted, refused, or authenticated
//                  but no session (e.g. a no-login shell).
//   ProbeKeyOffer  needs only a PUBLIC key: it offers the key without a
//                  signature (the SSH "publickey query"), and the server says
//                  whether it would accept it (SSH_MSG_USERAUTH_PK_OK).
//                  It answers "is this key still authorized for this user";
//                  it does not run the account checks (expiry, PAM) that a
//                  real login would.
//
// The client runs through execve with an argument vector (no shell), with
// -F /dev/null, BatchMode, IdentitiesOnly, no agent, publickey only,
// StrictHostKeyChecking=yes against a known_hosts file the probe writes
// itself from the pinned host key, ConnectTimeout, no forwarding, and
// `-l USER -- HOST` so no value can be taken for an option.
//
// Thread-safety: free functions; each call uses its own scratch directory.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "writeback/v1/action.pb.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors::probes {

struct SshEndpoint {
  std::string host = "127.0.0.1";  // IP literal or DNS name
  uint16_t port = 22;
  // The server's host public key, "TYPE BASE64 [COMMENT]" (as in
  // ssh_host_ed25519_key.pub). Pinned: any other host key fails the probe.
  std::string host_public_key;
  absl::Duration connect_timeout = absl::Seconds(5);
  std::string ssh_path = "/usr/bin/ssh";
  // Where the probe makes its private scratch directory (known_hosts, key
  // copies); removed before the call returns.
  std::string scratch_parent = "/tmp";
};

enum class SshVerdict {
  kAccepted,        // logged in and the command ran / the server accepts the key
  kRefused,         // the server refused to authenticate the user with the key
  kSessionRefused,  // authenticated, but the command did not run (no-login shell)
  kUnreachable,     // no answer we can trust: connect failure, timeout, host key mismatch
};

absl::string_view SshVerdictName(SshVerdict v);  // "accepted", "refused", ...

struct SshProbeOutcome {
  SshVerdict verdict = SshVerdict::kUnreachable;
  int exit_code = -1;
  std::string kind;     // "ssh_login_probe" or "ssh_key_offer_probe"
  std::string subject;  // "user@host:port"
  std::string summary;  // one human-readable line
  // The client's relevant output lines (printable ASCII, at most ~4 KiB):
  // errors and the debug lines about authentication. No secret is ever in it.
  std::string transcript;
  std::string key_fingerprint;  // of the key used, as the client printed it
};

// The outcome as evidence (check = outcome.kind, facts: verdict, exit_code,
// port, key_fingerprint, transcript).
writeback::v1::Observation ToObservation(const SshProbeOutcome& o, int64_t observed_at_unix_ms);

// Validates endpoint fields; errors name `field` + the member, e.g.
// "connectors[x].posix_account.probe.port: required".
absl::Status ValidateEndpoint(const SshEndpoint& e, absl::string_view field);

// Builds an endpoint from config (reads host_public_key_file). `field`
// prefixes error messages.
absl::StatusOr<SshEndpoint> EndpointFromConfig(const writeback::v1::SshLoginProbeConfig& cfg,
                                               absl::string_view field);

// Logs in as `user` with the private key in `identity_file` (readable by the
// agent; the probe copies it into its scratch directory with mode 0600 so
// the client accepts it). `timeout` bounds the whole probe.
absl::StatusOr<SshProbeOutcome> ProbeLogin(const SshEndpoint& endpoint, absl::string_view user,
                                           const std::string& identity_file,
                                           absl::Duration timeout);

// Offers `public_key_line` ("TYPE BASE64 [COMMENT]", or an authorized_keys
// line without options) for `user` without proving possession.
absl::StatusOr<SshProbeOutcome> ProbeKeyOffer(const SshEndpoint& endpoint, absl::string_view user,
                                              absl::string_view public_key_line,
                                              absl::Duration timeout);

}  // namespace wb::connectors::probes
