#include "connectors/ssh_authorized_keys/authorized_keys.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "connectors/ssh_authorized_keys/test_keys.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wb::connectors::sshak {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::KeyFactory;
using testing::SshKeygenFingerprints;
using testing::TestKey;

// SSH wire-format string.
std::string S(absl::string_view x) {
  const auto n = static_cast<uint32_t>(x.size());
  std::string out = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                     static_cast<char>(n >> 8), static_cast<char>(n)};
  return absl::StrCat(out, x);
}

// The wire-format strings of a decoded blob.
std::vector<std::string> Fields(const std::string& b64) {
  auto blob = crypto::Base64Decode(b64);
  EXPECT_TRUE(blob.ok());
  std::vector<std::string> out;
  absl::string_view rest = *blob;
  while (rest.size() >= 4) {
    const auto* p = reinterpret_cast<const unsigned char*>(rest.data());
    const size_t n = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
    out.emplace_back(rest.substr(4, n));
    rest.remove_prefix(4 + n);
  }
  return out;
}

TestKey MustKey(const std::string& type, const std::string& comment, int bits = 0) {
  auto k = KeyFactory::Get().Make(type, comment, bits);
  EXPECT_TRUE(k.ok()) << k.status();
  return k.ok() ? *k : TestKey{};
}

// ssh-keygen's fingerprints for `content` written to a file.
std::vector<std::string> KeygenFingerprintsOf(const std::string& content) {
  const std::string path = KeyFactory::Get().NewPath();
  EXPECT_TRUE(fs::WriteFileAtomic(path, content).ok());
  auto fps = SshKeygenFingerprints(path);
  EXPECT_TRUE(fps.ok()) << fps.status();
  return fps.ok() ? *fps : std::vector<std::string>{};
}

std::vector<std::string> OurFingerprints(const std::string& content) {
  std::vector<std::string> out;
  for (const auto& line : ParseAuthorizedKeys(content)) {
    if (line.kind == LineKind::kKey) out.push_back(line.fingerprint);
  }
  return out;
}

std::string Join(const std::vector<Line>& lines) {
  std::string out;
  for (const auto& l : lines) out.append(l.raw.data(), l.raw.size());
  return out;
}

TEST(AuthorizedKeysTest, FingerprintsMatchSshKeygenForEveryKeyType) {
  std::vector<TestKey> keys = {
      MustKey("ed25519", "ed"),      MustKey("rsa", "rsa", 1024),   MustKey("ecdsa", "p256", 256),
      MustKey("ecdsa", "p384", 384), MustKey("ecdsa", "p521", 521), MustKey("dsa", "dsa"),
  };
  auto ed_cert = KeyFactory::Get().Certify(keys[0]);
  ASSERT_TRUE(ed_cert.ok()) << ed_cert.status();
  auto rsa_cert = KeyFactory::Get().Certify(keys[1], "rsa");
  ASSERT_TRUE(rsa_cert.ok()) << rsa_cert.status();
  auto ec_cert = KeyFactory::Get().Certify(keys[3]);
  ASSERT_TRUE(ec_cert.ok()) << ec_cert.status();
  keys.push_back(*ed_cert);
  keys.push_back(*rsa_cert);
  keys.push_back(*ec_cert);
  // A certificate's fingerprint is that of the certified key.
  EXPECT_EQ(ed_cert->fingerprint, keys[0].fingerprint);
  EXPECT_EQ(ed_cert->type, "ssh-ed25519-cert-v01@openssh.com");

  for (const auto& k : keys) {
    SCOPED_TRACE(k.type);
    auto blob = crypto::Base64Decode(k.blob_b64);
    ASSERT_TRUE(blob.ok());
    auto info = InspectKeyBlob(*blob);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->fingerprint, k.fingerprint);
    EXPECT_EQ(info->type, k.type);
    const auto lines = ParseAuthorizedKeys(k.Line() + "\n");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].kind, LineKind::kKey) << lines[0].reason;
    EXPECT_EQ(lines[0].fingerprint, k.fingerprint);
    EXPECT_EQ(lines[0].comment, k.comment);
    EXPECT_FALSE(lines[0].has_options);
  }
}

// Lines crafted to hit what sshd accepts beyond the usual: signature
// algorithm names as line type, short type names inside the blob, RSA
// integers with redundant leading zeros, security-key types. ssh-keygen is
// the oracle.
TEST(AuthorizedKeysTest, UnusualButAcceptedEncodingsMatchSshKeygen) {
  const TestKey ed = MustKey("ed25519", "ed");
  const TestKey rsa = MustKey("rsa", "rsa", 1024);
  const TestKey p256 = MustKey("ecdsa", "p256", 256);
  const auto ef = Fields(ed.blob_b64);
  const auto rf = Fields(rsa.blob_b64);
  const auto pf = Fields(p256.blob_b64);
  ASSERT_EQ(ef.size(), 2u);
  ASSERT_EQ(rf.size(), 3u);
  ASSERT_EQ(pf.size(), 3u);
  auto b64 = [](const std::string& s) { return crypto::Base64Encode(s); };
  const std::vector<std::string> lines = {
      absl::StrCat("rsa-sha2-512 ", rsa.blob_b64, " sigalg"),
      absl::StrCat("rsa-sha2-256 ", rsa.blob_b64),
      absl::StrCat("ssh-rsa ",
                   b64(S("ssh-rsa") + S("\0" + rf[1]) + S(std::string(3, '\0') + rf[2])),
                   " padded-mpints"),
      absl::StrCat("ssh-rsa ", b64(S("rsa-sha2-256") + S(rf[1]) + S(rf[2])), " sigalg-in-blob"),
      absl::StrCat("ssh-ed25519 ", b64(S("ED25519") + S(ef[1])), " short-name"),
      absl::StrCat("ssh-ed25519 ", b64(S("eD25519") + S(ef[1])), " short-name-mixed-case"),
      absl::StrCat("sk-ssh-ed25519@openssh.com ",
                   b64(S("sk-ssh-ed25519@openssh.com") + S(ef[1]) + S("ssh:")), " sk"),
      absl::StrCat("sk-ecdsa-sha2-nistp256@openssh.com ",
                   b64(S("sk-ecdsa-sha2-nistp256@openssh.com") + S(pf[1]) + S(pf[2]) + S("ssh:")),
                   " sk-ecdsa"),
      absl::StrCat(
          "webauthn-sk-ecdsa-sha2-nistp256@openssh.com ",
          b64(S("webauthn-sk-ecdsa-sha2-nistp256@openssh.com") + S(pf[1]) + S(pf[2]) + S("ssh:")),
          " webauthn"),
  };
  for (const auto& line : lines) {
    SCOPED_TRACE(line);
    const auto expected = KeygenFingerprintsOf(line + "\n");
    ASSERT_EQ(expected.size(), 1u) << "ssh-keygen did not accept the line";
    EXPECT_THAT(OurFingerprints(line + "\n"), ElementsAre(expected[0]));
  }
  // Padded integers and a short name fingerprint like the canonical key.
  EXPECT_THAT(OurFingerprints(lines[2]), ElementsAre(rsa.fingerprint));
  EXPECT_THAT(OurFingerprints(lines[4]), ElementsAre(ed.fingerprint));
}

TEST(AuthorizedKeysTest, WholeFileAgreesWithSshKeygen) {
  const TestKey ed = MustKey("ed25519", "alice@laptop");
  const TestKey ed2 = MustKey("ed25519", "deploy");
  const TestKey rsa = MustKey("rsa", "rsa key", 1024);
  const TestKey p384 = MustKey("ecdsa", "", 384);
  const std::string content = absl::StrCat(
      "# managed by hand\n", "\n", "   \t\n", "this is not a key\n", ed.Line(), "\n",
      "from=\"10.0.0.0/8,192.168.1.1\",command=\"echo \\\"hi, there\\\"\" ", ed2.Line(), "\n",
      "  no-pty,permitopen=\"host:22\"\t", rsa.Line(), " with  inner  spaces\r\n",
      "ssh-ed25519 AAAA truncated\n", "environment=\"A=b c\" ", p384.Line(), "\n",
      "command=\"unterminated ", ed.Line(), "\n", "ssh-rsa ", ed.blob_b64, " type-mismatch\n",
      "cert-authority ", ed2.Line());  // no final newline
  const auto ours = OurFingerprints(content);
  EXPECT_EQ(ours, KeygenFingerprintsOf(content));
  EXPECT_THAT(ours, ElementsAre(ed.fingerprint, ed2.fingerprint, rsa.fingerprint, p384.fingerprint,
                                ed2.fingerprint));
}

TEST(AuthorizedKeysTest, ClassifiesLinesAndKeepsBytes) {
  const TestKey ed = MustKey("ed25519", "alice@laptop");
  const std::string content =
      absl::StrCat("# comment\n", "\n", "\r\n", "  # indented comment\n", "garbage\n",
                   "command=\"echo \\\"a, b\\\"\",no-pty ", ed.Line(), "\r\n", ed.type, " ",
                   ed.blob_b64, "   two  words \t \n", ed.type, " ", ed.blob_b64);
  const auto lines = ParseAuthorizedKeys(content);
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_EQ(Join(lines), content);
  EXPECT_EQ(lines[0].kind, LineKind::kComment);
  EXPECT_EQ(lines[1].kind, LineKind::kBlank);
  EXPECT_EQ(lines[2].kind, LineKind::kBlank);
  EXPECT_EQ(lines[3].kind, LineKind::kComment);
  EXPECT_EQ(lines[4].kind, LineKind::kUnparseable);
  EXPECT_FALSE(lines[4].reason.empty());
  EXPECT_EQ(lines[5].kind, LineKind::kKey);
  EXPECT_TRUE(lines[5].has_options);
  EXPECT_EQ(lines[5].comment, "alice@laptop");  // CR is not part of the comment
  EXPECT_EQ(lines[5].raw.back(), '\n');
  EXPECT_EQ(lines[6].kind, LineKind::kKey);
  EXPECT_EQ(lines[6].comment, "two  words");
  EXPECT_EQ(lines[7].kind, LineKind::kKey);
  EXPECT_EQ(lines[7].comment, "");
  EXPECT_EQ(lines[7].raw, absl::StrCat(ed.type, " ", ed.blob_b64));
  for (size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(lines[i].number, i + 1);
}

TEST(AuthorizedKeysTest, OptionsWithQuotedSpacesCommasAndEscapedQuotes) {
  const TestKey ed = MustKey("ed25519", "c");
  for (const std::string& opts : {std::string("command=\"/bin/echo \\\"x y\\\", z\""),
                                  std::string("from=\"a,b\",no-port-forwarding,command=\"ls -l\""),
                                  std::string("environment=\"K=v w\",permitopen=\"h:1\",restrict"),
                                  std::string("command=\"a\\\\\" b\"")}) {
    SCOPED_TRACE(opts);
    const auto lines = ParseAuthorizedKeys(absl::StrCat(opts, " ", ed.Line(), "\n"));
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].kind, LineKind::kKey) << lines[0].reason;
    EXPECT_EQ(lines[0].fingerprint, ed.fingerprint);
    EXPECT_TRUE(lines[0].has_options);
  }
}

TEST(AuthorizedKeysTest, UnparseableLinesSayWhy) {
  const TestKey ed = MustKey("ed25519", "c");
  const TestKey rsa = MustKey("rsa", "r", 1024);
  auto blob = crypto::Base64Decode(ed.blob_b64);
  ASSERT_TRUE(blob.ok());
  const std::string trailing = crypto::Base64Encode(*blob + S("x"));
  const std::string truncated = crypto::Base64Encode(blob->substr(0, blob->size() - 3));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ssh-foo " + ed.blob_b64, "unknown key type"},
      {"ssh-ed25519", "no key type"},
      {"ssh-ed25519 ", "missing key data"},
      {"ssh-ed25519 AAAA$$$$", "base64"},
      {"ssh-ed25519 " + ed.blob_b64.substr(1), "base64"},
      {"ssh-rsa " + ed.blob_b64, "does not match"},
      {"ecdsa-sha2-nistp384 " + MustKey("ecdsa", "p256", 256).blob_b64, "curve"},
      {"ssh-ed25519 " + truncated, "malformed"},
      {"ssh-ed25519 " + trailing, "trailing"},
      {"ssh-ed25519-cert-v01@openssh.com " + ed.blob_b64, "does not match"},
      {"command=\"never closed " + ed.Line(), "unterminated quote"},
      // \\" is a backslash, then an escaped quote: the quote never closes.
      {"command=\"a\\\\\" " + ed.Line(), "unterminated quote"},
      {"ssh-rsa " + rsa.blob_b64.substr(0, rsa.blob_b64.size() - 8), "malformed"},
  };
  for (const auto& [text, why] : cases) {
    SCOPED_TRACE(text);
    const auto lines = ParseAuthorizedKeys(text + "\n");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].kind, LineKind::kUnparseable);
    EXPECT_THAT(lines[0].reason, HasSubstr(why));
    EXPECT_TRUE(KeygenFingerprintsOf("# x\n" + text + "\n" + ed.Line() + "\n") ==
                std::vector<std::string>{ed.fingerprint})
        << "ssh-keygen accepts a line we call unparseable";
  }
}

TEST(AuthorizedKeysTest, NulEndsTheInterpretedPartOfALine) {
  const TestKey ed = MustKey("ed25519", "c");
  const std::string content = ed.Line() + std::string("\0garbage", 8) + "\n";
  const auto lines = ParseAuthorizedKeys(content);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].kind, LineKind::kKey);
  EXPECT_EQ(lines[0].fingerprint, ed.fingerprint);
  EXPECT_EQ(lines[0].comment, "c");
  EXPECT_EQ(lines[0].raw, content);
}

TEST(AuthorizedKeysTest, EmptyAndNewlineOnlyContent) {
  EXPECT_TRUE(ParseAuthorizedKeys("").empty());
  const auto lines = ParseAuthorizedKeys("\n\n");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].kind, LineKind::kBlank);
  EXPECT_EQ(Join(lines), "\n\n");
}

TEST(AuthorizedKeysTest, PrintableEscapesAndCuts) {
  EXPECT_EQ(Printable("bob@host"), "bob@host");
  EXPECT_EQ(Printable("a\nb\\c\xff"), "a\\x0ab\\x5cc\\xff");
  EXPECT_EQ(Printable(std::string(300, 'x'), 10), std::string(10, 'x') + "...");
}

TEST(AuthorizedKeysTest, Sha256FingerprintFormat) {
  const std::string fp = Sha256Fingerprint("abc");
  EXPECT_EQ(fp.size(), 7u + 43u);
  EXPECT_EQ(fp.substr(0, 7), "SHA256:");
  EXPECT_EQ(fp.find('='), std::string::npos);
}

}  // namespace
}  // namespace wb::connectors::sshak
