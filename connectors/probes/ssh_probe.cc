#include "connectors/probes/ssh_probe.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/actions/actions.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"
#include "connectors/probes/subprocess.h"

namespace wb::connectors::probes {
namespace {

constexpr absl::string_view kMarker = "wb-probe-ok";
constexpr size_t kMaxTranscript = 4096;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

bool IsKeyTypeChar(char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '@' || c == '.' || c == '_';
}
bool IsBase64Char(char c) { return absl::ascii_isalnum(c) || c == '+' || c == '/' || c == '='; }

// "TYPE BASE64" out of a public key line (a trailing comment is dropped).
absl::StatusOr<std::string> KeyTypeAndBlob(absl::string_view line, absl::string_view field) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::StripAsciiWhitespace(line), absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (parts.size() < 2) return Invalid(field, "not a public key line (TYPE BASE64 [COMMENT])");
  for (char c : parts[0]) {
    if (!IsKeyTypeChar(c)) return Invalid(field, "key type has an unexpected character");
  }
  if (parts[0].empty() || parts[0].size() > 64) return Invalid(field, "bad key type");
  if (parts[1].size() < 16 || parts[1].size() > 16384) return Invalid(field, "bad key data");
  for (char c : parts[1]) {
    if (!IsBase64Char(c)) return Invalid(field, "key data is not base64");
  }
  return absl::StrCat(parts[0], " ", parts[1]);
}

// Printable ASCII only (others become '?'), so evidence is valid UTF-8 and
// cannot carry terminal escapes.
std::string Printable(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  return out;
}

bool KeepDebugLine(absl::string_view line) {
  static constexpr absl::string_view kKeep[] = {
      "Connecting to",
      "Connection established",
      "Server host key",
      "Authentications that can continue",
      "Offering public key",
      "Server accepts key",
      "Authenticated to",
      "Exit status",
      "Remote:",
      "Authentication succeeded",
  };
  for (absl::string_view k : kKeep) {
    if (absl::StrContains(line, k)) return true;
  }
  return false;
}

std::string Transcript(absl::string_view out, absl::string_view err) {
  std::string t;
  auto add = [&](absl::string_view prefix, absl::string_view line) {
    line = absl::StripTrailingAsciiWhitespace(line);
    if (line.empty() || t.size() >= kMaxTranscript) return;
    absl::StrAppend(&t, prefix, Printable(line.substr(0, 300)), "\n");
  };
  for (absl::string_view line : absl::StrSplit(err, '\n')) {
    if (absl::StartsWith(line, "debug")) {
      if (KeepDebugLine(line)) add("", line);
    } else {
      add("", line);
    }
  }
  for (absl::string_view line : absl::StrSplit(out, '\n')) add("stdout: ", line);
  if (t.size() > kMaxTranscript) t.resize(kMaxTranscript);
  return t;
}

std::string FingerprintOffered(absl::string_view err) {
  for (absl::string_view line : absl::StrSplit(err, '\n')) {
    if (!absl::StrContains(line, "Offering public key")) continue;
    for (absl::string_view tok : absl::StrSplit(line, ' ')) {
      if (absl::StartsWith(tok, "SHA256:")) return Printable(tok);
    }
  }
  return "";
}

std::string KnownHostsName(const SshEndpoint& e) {
  if (e.port == 22 && e.host.find(':') == std::string::npos) return e.host;
  return absl::StrCat("[", e.host, "]:", e.port);
}

enum class Mode { kLogin, kOffer };

absl::StatusOr<SshProbeOutcome> Run(const SshEndpoint& e, absl::string_view user, Mode mode,
                                    const ScratchDir& scratch, const std::string& identity,
                                    absl::Duration timeout) {
  WB_ASSIGN_OR_RETURN(const std::string host_key, KeyTypeAndBlob(e.host_public_key, "host key"));
  const std::string known_hosts = scratch.path() + "/known_hosts";
  WB_RETURN_IF_ERROR(fs::WriteFileAtomic(
      known_hosts, absl::StrCat(KnownHostsName(e), " ", host_key, "\n"), {.mode = 0600}));
  const int64_t connect_s = std::max<int64_t>(1, absl::ToInt64Seconds(e.connect_timeout));
  std::vector<std::string> argv = {
      e.ssh_path,
      "-F",
      "/dev/null",
      "-v",
      "-o",
      "BatchMode=yes",
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "IdentityAgent=none",
      "-o",
      "PreferredAuthentications=publickey",
      "-o",
      "PubkeyAuthentication=yes",
      "-o",
      "PasswordAuthentication=no",
      "-o",
      "KbdInteractiveAuthentication=no",
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      "UserKnownHostsFile=" + known_hosts,
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "CheckHostIP=no",
      "-o",
      "UpdateHostKeys=no",
      "-o",
      absl::StrCat("ConnectTimeout=", connect_s),
      "-o",
      "ConnectionAttempts=1",
      "-o",
      "ClearAllForwardings=yes",
      "-o",
      "ForwardAgent=no",
      "-o",
      "ForwardX11=no",
      "-o",
      "ControlMaster=no",
      "-o",
      "ControlPath=none",
      "-o",
      "RequestTTY=no",
      "-o",
      "PermitLocalCommand=no",
      "-i",
      identity,
      "-p",
      absl::StrCat(e.port),
      "-l",
      std::string(user),
      "--",
      e.host,
      absl::StrCat("echo ", kMarker),
  };
  SubprocessOptions opts;
  opts.timeout = timeout;
  opts.env = {"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + scratch.path()};
  opts.max_output_bytes = 256 << 10;
  WB_ASSIGN_OR_RETURN(const SubprocessResult r, RunSubprocess(argv, opts));

  SshProbeOutcome o;
  o.kind = mode == Mode::kLogin ? "ssh_login_probe" : "ssh_key_offer_probe";
  o.subject = absl::StrCat(user, "@", KnownHostsName(e));
  o.exit_code = r.exit_code;
  o.transcript = Transcript(r.out, r.err);
  o.key_fingerprint = FingerprintOffered(r.err);
  bool marker = false;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    if (absl::StripTrailingAsciiWhitespace(line) == kMarker) marker = true;
  }
  const bool authenticated = absl::StrContains(r.err, "Authenticated to ");
  const bool server_accepts = absl::StrContains(r.err, "Server accepts key:");
  const bool reached_auth = absl::StrContains(r.err, "Authentications that can continue") ||
                            absl::StrContains(r.err, "Permission denied") || server_accepts;
  const bool host_key_bad = absl::StrContains(r.err, "Host key verification failed") ||
                            absl::StrContains(r.err, "REMOTE HOST IDENTIFICATION HAS CHANGED");
  const std::string who = absl::StrCat("as ", user, " on ", KnownHostsName(e));
  if (r.timed_out) {
    o.verdict = SshVerdict::kUnreachable;
    o.summary = absl::StrCat("ssh probe ", who, " timed out after ", absl::FormatDuration(timeout));
  } else if (host_key_bad) {
    o.verdict = SshVerdict::kUnreachable;
    o.summary = absl::StrCat("ssh probe ", who, ": the server's host key is not the pinned one");
  } else if (mode == Mode::kLogin && marker) {
    o.verdict = SshVerdict::kAccepted;
    o.summary = absl::StrCat("ssh login ", who, " was ACCEPTED and ran a command");
  } else if (mode == Mode::kLogin && authenticated) {
    o.verdict = SshVerdict::kSessionRefused;
    o.summary = absl::StrCat("ssh login ", who, " authenticated but no command ran (exit ",
                             r.exit_code, "): the session was refused, e.g. by a no-login shell");
  } else if (mode == Mode::kOffer && server_accepts) {
    o.verdict = SshVerdict::kAccepted;
    o.summary = absl::StrCat("sshd would ACCEPT the key ", who);
  } else if (reached_auth) {
    o.verdict = SshVerdict::kRefused;
    o.summary = mode == Mode::kLogin
                    ? absl::StrCat("ssh login ", who, " was REFUSED (exit ", r.exit_code, ")")
                    : absl::StrCat("sshd REFUSES the key ", who);
  } else {
    o.verdict = SshVerdict::kUnreachable;
    o.summary =
        absl::StrCat("ssh probe ", who, " did not reach authentication (exit ", r.exit_code, ")");
  }
  return o;
}

}  // namespace

absl::string_view SshVerdictName(SshVerdict v) {
  switch (v) {
    case SshVerdict::kAccepted:
      return "accepted";
    case SshVerdict::kRefused:
      return "refused";
    case SshVerdict::kSessionRefused:
      return "session_refused";
    case SshVerdict::kUnreachable:
      return "unreachable";
  }
  return "unknown";
}

writeback::v1::Observation ToObservation(const SshProbeOutcome& o, int64_t observed_at_unix_ms) {
  writeback::v1::Observation obs;
  obs.set_check(o.kind);
  obs.set_subject(o.subject);
  obs.set_detail(o.summary);
  obs.set_observed_at_unix_ms(observed_at_unix_ms);
  auto& f = *obs.mutable_facts();
  f["verdict"] = std::string(SshVerdictName(o.verdict));
  f["exit_code"] = absl::StrCat(o.exit_code);
  if (!o.key_fingerprint.empty()) f["key_fingerprint"] = o.key_fingerprint;
  f["transcript"] = o.transcript;
  return obs;
}

absl::Status ValidateEndpoint(const SshEndpoint& e, absl::string_view field) {
  const std::string f(field);
  if (e.host.empty() || e.host.size() > 253)
    return Invalid(f + "host", "must be 1 to 253 characters");
  if (e.host[0] == '-') return Invalid(f + "host", "must not start with '-'");
  for (char c : e.host) {
    if (!(absl::ascii_isalnum(c) || c == '.' || c == '-' || c == ':')) {
      return Invalid(f + "host", "may contain only letters, digits, '.', '-' and ':'");
    }
  }
  if (e.port == 0) return Invalid(f + "port", "required (1 to 65535)");
  WB_RETURN_IF_ERROR(KeyTypeAndBlob(e.host_public_key, f + "host_public_key_file").status());
  if (e.ssh_path.empty() || e.ssh_path[0] != '/') {
    return Invalid(f + "ssh_path", "must be an absolute path");
  }
  if (e.connect_timeout <= absl::ZeroDuration()) {
    return Invalid(f + "connect_timeout_seconds", "must be positive");
  }
  return absl::OkStatus();
}

absl::StatusOr<SshEndpoint> EndpointFromConfig(const writeback::v1::SshLoginProbeConfig& cfg,
                                               absl::string_view field) {
  const std::string f(field);
  SshEndpoint e;
  if (!cfg.host().empty()) e.host = cfg.host();
  if (cfg.port() > 65535) return Invalid(f + "port", "must be 1 to 65535");
  e.port = static_cast<uint16_t>(cfg.port());
  if (cfg.host_public_key_file().empty()) return Invalid(f + "host_public_key_file", "required");
  auto key = fs::ReadFile(cfg.host_public_key_file(), 64 << 10);
  if (!key.ok()) {
    return Invalid(
        f + "host_public_key_file",
        absl::StrCat("cannot read ", cfg.host_public_key_file(), ": ", key.status().message()));
  }
  e.host_public_key = *key;
  if (cfg.connect_timeout_seconds() > 0) {
    e.connect_timeout = absl::Seconds(std::min<uint32_t>(cfg.connect_timeout_seconds(), 300));
  }
  if (!cfg.ssh_path().empty()) e.ssh_path = cfg.ssh_path();
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && t[0] == '/') e.scratch_parent = t;
  WB_RETURN_IF_ERROR(ValidateEndpoint(e, f));
  return e;
}

absl::StatusOr<SshProbeOutcome> ProbeLogin(const SshEndpoint& endpoint, absl::string_view user,
                                           const std::string& identity_file,
                                           absl::Duration timeout) {
  WB_RETURN_IF_ERROR(ValidateEndpoint(endpoint, "probe."));
  WB_RETURN_IF_ERROR(actions::ValidatePosixUserName("probe user", user));
  WB_ASSIGN_OR_RETURN(const std::string key, fs::ReadFile(identity_file, 64 << 10));
  WB_ASSIGN_OR_RETURN(const ScratchDir scratch,
                      ScratchDir::Make(endpoint.scratch_parent, "wb-sshprobe"));
  const std::string id = scratch.path() + "/id";
  WB_RETURN_IF_ERROR(fs::WriteFileAtomic(id, key, {.mode = 0600}));
  return Run(endpoint, user, Mode::kLogin, scratch, id, timeout);
}

absl::StatusOr<SshProbeOutcome> ProbeKeyOffer(const SshEndpoint& endpoint, absl::string_view user,
                                              absl::string_view public_key_line,
                                              absl::Duration timeout) {
  WB_RETURN_IF_ERROR(ValidateEndpoint(endpoint, "probe."));
  WB_RETURN_IF_ERROR(actions::ValidatePosixUserName("probe user", user));
  WB_ASSIGN_OR_RETURN(const std::string pub, KeyTypeAndBlob(public_key_line, "public key"));
  WB_ASSIGN_OR_RETURN(const ScratchDir scratch,
                      ScratchDir::Make(endpoint.scratch_parent, "wb-sshprobe"));
  const std::string id = scratch.path() + "/offer.pub";
  WB_RETURN_IF_ERROR(fs::WriteFileAtomic(id, absl::StrCat(pub, "\n"), {.mode = 0600}));
  return Run(endpoint, user, Mode::kOffer, scratch, id, timeout);
}

}  // namespace wb::connectors::probes
