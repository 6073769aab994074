#!/bin/sh
# make-prod-csr.sh SPIFFE_ID [OUT_PREFIX]
#
# Production profile: makes a fresh ECDSA P-256 private key (mode 0600) and a
# certificate signing request for one Writeback identity, on the host that
# will use it. Only the CSR leaves the host; the offline CA signs it (see
# certs/README.md). Uses openssl only; no network.
#
#   SPIFFE_ID   spiffe://<trust-domain>/{agent|operator|controlplane}/<name>
#   OUT_PREFIX  writes OUT_PREFIX.key and OUT_PREFIX.csr (default: <name>)
#
# Refuses to overwrite an existing key.
set -eu

prog=make-prod-csr.sh
die() {
  printf '%s: %s\n' "$prog" "$*" >&2
  exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $prog SPIFFE_ID [OUT_PREFIX]"
id=$1

# Same grammar as common/tls: names of 1-63 of [a-z0-9._-], starting with a
# letter or digit; exactly three path parts.
label='[a-z0-9][a-z0-9._-]{0,62}'
printf '%s\n' "$id" | grep -Eqx "spiffe://${label}/(agent|operator|controlplane)/${label}" ||
  die "'$id' is not a Writeback SPIFFE ID (spiffe://<trust-domain>/{agent|operator|controlplane}/<name>; names: a-z 0-9 . _ -)"

name=${id##*/}
out=${2:-$name}
key=$out.key
csr=$out.csr
[ ! -e "$key" ] || die "$key exists; refusing to overwrite a private key"
[ ! -e "$csr" ] || die "$csr exists; remove it first"
command -v openssl >/dev/null 2>&1 || die "openssl not found"

# X.509 limits the common name to 64 characters; the identity is the URI SAN
# anyway, the CN is only a label.
cn=$id
[ ${#cn} -le 64 ] || cn=$name

umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
cat >"$tmp/req.cnf" <<CNF
[req]
prompt = no
distinguished_name = dn
req_extensions = ext
[dn]
CN = $cn
[ext]
subjectAltName = URI:$id
CNF

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key"
chmod 600 "$key"
openssl req -new -sha256 -key "$key" -config "$tmp/req.cnf" -out "$csr"
chmod 644 "$csr"

printf 'private key: %s (mode 0600; never leaves this host)\n' "$key"
printf 'request:     %s (for %s)\n' "$csr" "$id"
printf 'next: send %s to the CA operator (certs/README.md, "Signing a request")\n' "$csr"
