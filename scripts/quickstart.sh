#!/usr/bin/env bash
# Runs Writeback end to end on this machine:
#   installs missing Debian packages, builds, makes a development PKI and an
#   offline trust root with one approver and a signed trust policy, starts a
#   control plane (embedded RocksDB), enrols an agent with a join token (it
#   serves a sandboxed authorized_keys file), submits a decision that revokes
#   one key, approves it with the approver's key, and prints the verified
#   result and the fleet (wbctl fleet status, dashboard address).
#
#   scripts/quickstart.sh          run, show, stop everything it started
#   scripts/quickstart.sh --keep   leave the control plane and agent running
# Env: WB_QUICKSTART_DIR (default: ./.quickstart; wiped at start).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
keep=0
for a in "$@"; do
  case "$a" in
    --keep) keep=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "quickstart: unknown argument '$a' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Installing missing packages"
bash "$root/scripts/install-deps.sh"
say "Building"
bash "$root/scripts/build.sh" writeback-controlplane writeback-agent wbctl
build="${WB_BUILD_DIR:-$root/build}"
CP="$build/controlplane/writeback-controlplane"
AGENT="$build/agent/writeback-agent"
WBCTL="$build/cli/wbctl"

qs="${WB_QUICKSTART_DIR:-$root/.quickstart}"
if [ -f "$qs/pids" ]; then
  while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$qs/pids"
fi
rm -rf "$qs"
mkdir -p "$qs"
chmod 700 "$qs"

say "Making a development PKI in $qs/pki"
"$WBCTL" pki init "$qs/pki" --trust-domain writeback.test --controlplane cp --operator admin

say "Making the offline trust root, an approver's key and a signed trust policy"
# In production the root key lives offline and each approver keeps their own key.
"$WBCTL" trust keygen "$qs/alice"
"$WBCTL" trust init "$qs/trust" --trust-domain writeback.test \
  --dispatch-public-key "$qs/pki/controlplane/dispatch.pub" --approver "alice=$qs/alice.pub"
"$WBCTL" trust sign --spec "$qs/trust/policy.yaml" --root-key "$qs/trust/root.key" \
  --out "$qs/policy-v1.signed"
"$WBCTL" trust show "$qs/policy-v1.signed" --root "$qs/trust/root.pub"

say "Making a sandboxed authorized_keys for user 'deploy'"
home="$qs/sandbox/home/deploy/.ssh"
mkdir -p "$home"
ssh-keygen -q -t ed25519 -N "" -C "ci-deploy-2019 (leaked)" -f "$qs/leaked_key"
ssh-keygen -q -t ed25519 -N "" -C "ops@bastion" -f "$qs/kept_key"
{
  echo "# managed by hand until today"
  cat "$qs/kept_key.pub"
  echo "no-port-forwarding,command=\"/usr/bin/backup\" $(cut -d' ' -f1,2 "$qs/leaked_key.pub") ci-deploy-2019 (leaked)"
} > "$home/authorized_keys"
chmod 600 "$home/authorized_keys"
leaked_fp=$(ssh-keygen -lf "$qs/leaked_key.pub" | awk '{print $2}')
echo "authorized_keys now holds:"
ssh-keygen -lf "$home/authorized_keys" | sed 's/^/  /'
echo "the leaked key to revoke: $leaked_fp"

cat > "$qs/controlplane.yaml" <<YAML
listen_address: 127.0.0.1:0
trust_domain: writeback.test
port_file: $qs/controlplane.port
data_dir: $qs/controlplane-data
dispatch_key_file: $qs/pki/controlplane/dispatch.key
tls:
  ca_file: $qs/pki/ca.crt
  cert_file: $qs/pki/controlplane/cp.crt
  key_file: $qs/pki/controlplane/cp.key
# Decisions wait for the approvals the root-signed policy asks for; agents
# check them again (docs/security.md).
trust_root_public_key_file: $qs/trust/root.pub
trust_policy_file: $qs/policy-v1.signed
# Agents enrol with single-use join tokens; certificates last 24 h.
enrollment:
  ca_key_file: $qs/pki/ca.key
# Read-only dashboard, /metrics, /healthz on loopback (docs/operations.md).
web_listen_address: 127.0.0.1:0
web_port_file: $qs/web.port
YAML

say "Starting the control plane"
"$CP" --config "$qs/controlplane.yaml" > "$qs/controlplane.log" 2>&1 &
echo $! >> "$qs/pids"
for _ in $(seq 1 200); do [ -s "$qs/controlplane.port" ] && break; sleep 0.05; done
[ -s "$qs/controlplane.port" ] || { echo "control plane did not start:"; cat "$qs/controlplane.log"; exit 1; }
port=$(cat "$qs/controlplane.port")
echo "listening on 127.0.0.1:$port (log: $qs/controlplane.log)"

cat > "$qs/agent.yaml" <<YAML
agent_id: spiffe://writeback.test/agent/demo-agent
controlplane_address: 127.0.0.1:$port
controlplane_id: spiffe://writeback.test/controlplane/cp
data_dir: $qs/agent-data
result_key_file: $qs/agent/result.key
trust_root_public_key_file: $qs/trust/root.pub
labels: {site: quickstart, segment: laptop}
tls:
  ca_file: $qs/pki/ca.crt
  cert_file: $qs/agent/tls.crt
  key_file: $qs/agent/tls.key
connectors:
  - name: demo-ssh
    type: ssh_authorized_keys
    allowed_operations: [remove_key, remove_by_comment, exclusive_set]
    ssh_authorized_keys:
      path_template: $qs/sandbox/home/{user}/.ssh/authorized_keys
      allowed_users: [deploy]
YAML
cat > "$qs/wbctl.yaml" <<YAML
controlplane_address: 127.0.0.1:$port
controlplane_id: spiffe://writeback.test/controlplane/cp
tls:
  ca_file: $qs/pki/ca.crt
  cert_file: $qs/pki/operators/admin/tls.crt
  key_file: $qs/pki/operators/admin/tls.key
YAML

export WBCTL_CONFIG="$qs/wbctl.yaml"
say "Enrolling the agent: a single-use join token; its keys are made on its host"
mkdir -p "$qs/agent" && chmod 700 "$qs/agent"
"$WBCTL" agent token create --id demo-agent --instance demo-ssh --ttl 600 \
  --out "$qs/agent/join-token"
"$AGENT" enroll --config "$qs/agent.yaml" --token-file "$qs/agent/join-token"
rm -f "$qs/agent/join-token"
"$AGENT" status --config "$qs/agent.yaml"

say "Starting the agent (it dials out; nothing listens on its side)"
"$AGENT" run --config "$qs/agent.yaml" > "$qs/agent.log" 2>&1 &
echo $! >> "$qs/pids"
for _ in $(seq 1 200); do
  if "$WBCTL" agent list -o json 2>/dev/null | grep -q '"connected": *true'; then break; fi
  sleep 0.1
done
"$WBCTL" agent list

say "Submitting a decision: revoke the leaked key of 'deploy' (as operator admin)"
id=$("$WBCTL" decision submit --instance demo-ssh --operation remove_key --target deploy \
  --fingerprint "$leaked_fp" --reason "key leaked in CI logs" --reference SEC-1234 -o json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["decision_id"])')
"$WBCTL" decision get "$id" | head -5

say "Approving it with alice's key (the control plane stores approvals; it cannot make them)"
"$WBCTL" decision approve "$id" --key "$qs/alice.key"
for _ in $(seq 1 300); do
  "$WBCTL" decision get "$id" -o json | grep -q '"DECISION_STATE_\(VERIFIED\|FAILED\|EXPIRED\)"' && break
  sleep 0.1
done
"$WBCTL" decision get "$id"
"$WBCTL" decision get "$id" -o json | grep -q '"DECISION_STATE_VERIFIED"' ||
  { echo "FAIL: the decision was not verified" >&2; exit 1; }

say "The sandboxed authorized_keys now"
cat "$home/authorized_keys" | sed 's/^/  /'
if ssh-keygen -lf "$home/authorized_keys" | grep -q "$leaked_fp"; then
  echo "FAIL: the leaked key is still there" >&2; exit 1
fi
echo "the leaked key is gone; the other key, its comment line and options are untouched"

say "The fleet"
"$WBCTL" fleet status
web_port=$(cat "$qs/web.port" 2>/dev/null || true)
if [ -n "$web_port" ]; then
  echo
  echo "dashboard: http://127.0.0.1:$web_port/  (metrics: /metrics, health: /healthz)"
fi

if [ "$keep" -eq 1 ]; then
  cat <<MSG

Writeback is still running. Explore it with:
  export WBCTL_CONFIG=$qs/wbctl.yaml
  $WBCTL fleet status
  $WBCTL agent list
  $WBCTL decision list
  $WBCTL decision get <ID>            # the id printed above
  $WBCTL decision watch <ID>
  $WBCTL events tail
  $WBCTL audit verify                 # the hash-linked audit chain
  $WBCTL trust status
Dashboard: http://127.0.0.1:${web_port:-?}/
  $WBCTL decision submit --instance demo-ssh --operation exclusive_set --target deploy \\
      --keep-fingerprint "$(ssh-keygen -lf "$qs/kept_key.pub" | awk '{print $2}')" --reason "only the ops key" --wait
Logs: $qs/controlplane.log  $qs/agent.log
Stop: kill \$(cat $qs/pids)
MSG
else
  say "Stopping"
  while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$qs/pids"
  while read -r pid; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  done < "$qs/pids"
  rm -f "$qs/pids"
  echo "stopped; files kept in $qs"
fi
