#!/usr/bin/env bash
# Smoke test of the OCI archives build.sh wrote: loads them into a podman store of their own (so
# the archives, not buildah's store, are what runs) and runs each with --network none: every
# binary prints its version (the image's Node.js 24 and the build commit); the control plane and
# the waypoint run as non-root; ztunnel and the waypoint with no control plane answer readiness 503
# with the reason; the control plane on examples/ brings a ztunnel sharing its network namespace to
# readiness 200 (xDS synced, a certificate for every pod on node-1).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=$HERE/.cache
OUT=$HERE/out
TAG=${TAG:-dev}
COMMIT=$(cat "$OUT/commit")
RUN_ID=ambient-smoke-$$

[ -f "$CACHE/containers.conf" ] || { echo "smoke.sh: run build.sh first" >&2; exit 1; }
cat >"$CACHE/smoke-storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$CACHE/smoke-storage"
runroot = "$CACHE/smoke-run"
EOF
export CONTAINERS_STORAGE_CONF=$CACHE/smoke-storage.conf CONTAINERS_CONF=$CACHE/containers.conf

failures=0
pass() { printf '  ok    %s\n' "$*"; }
fail() { printf '  FAIL  %s\n' "$*"; failures=$((failures + 1)); }
step() { printf '%s [smoke] %s\n' "$(date +%T)" "$*"; }

STATE=$(mktemp -d)
cleanup() {
  podman rm -f -t 0 "$RUN_ID-zt" "$RUN_ID-wp" "$RUN_ID-cp" "$RUN_ID-cpzt" >/dev/null 2>&1 || true
  rm -rf "$STATE"
}
trap cleanup EXIT

step "podman load out/*.oci.tar (a fresh store)"
podman rm -af -t 0 >/dev/null 2>&1 || true
podman rmi -af >/dev/null 2>&1 || true
for comp in controlplane ztunnel waypoint cni; do
  podman load -q -i "$OUT/$comp.oci.tar" >/dev/null
done
img() { echo "localhost/ambient/$1:$TAG"; }

step "--version"
check_version() { # component binary
  local out
  out=$(podman run --rm --network none --entrypoint "$2" "$(img "$1")" --version 2>&1) || true
  if [[ "$out" =~ ^$2\ [0-9]+\.[0-9]+\.[0-9]+\ \(commit\ $COMMIT,\ Node\.js\ v24\.[0-9.]+,\ linux-x64\)$ ]]; then
    pass "$1: $out"
  else
    fail "$1: $2 --version printed: $out"
  fi
}
check_version controlplane ambient-controlplane
check_version ztunnel ztunnel
check_version waypoint waypoint
check_version cni ambient-cni-agent
# The plugin file the agent installs onto nodes, run as a runtime runs it.
out=$(podman run --rm --network none -e CNI_COMMAND=VERSION --entrypoint ambient-cni "$(img cni)" 2>&1) || true
if [[ "$out" == *'"supportedVersions"'*'"1.1.0"'* ]]; then pass "cni: ambient-cni VERSION: $out"; else fail "cni: ambient-cni VERSION printed: $out"; fi
out=$(podman run --rm --network none --entrypoint sh "$(img cni)" -c 'for t in iptables-restore ip6tables-restore ip nsenter; do command -v $t; done | wc -l' 2>&1) || true
if [ "$out" = 4 ]; then pass "cni: iptables-restore, ip6tables-restore, ip, nsenter present"; else fail "cni: tools missing ($out of 4)"; fi

step "users"
for comp in controlplane waypoint; do
  out=$(podman run --rm --network none --entrypoint id "$(img "$comp")" -u 2>&1) || true
  if [ "$out" = 65532 ]; then pass "$comp runs as uid 65532"; else fail "$comp runs as uid $out"; fi
done

# Polls GET http://$3/healthz/ready from inside container $2 (node is the only client an image has)
# until it answers with status $4 (a ztunnel is 503 until it has synced), for up to 60 s.
expect_ready() { # label container address status
  local probe='fetch(`http://${process.argv[1]}/healthz/ready`).then(async (r) => console.log(r.status, await r.text()), () => process.exit(1))'
  local out="no answer on $3"
  for _ in $(seq 1 120); do
    out=$(podman exec "$2" node -e "$probe" "$3" 2>/dev/null) || out="no answer on $3"
    [[ "$out" == "$4 "* ]] && { pass "$1: $out"; return; }
    sleep 0.5
  done
  fail "$1: expected $4, got: $out (logs: $(podman logs --tail 5 "$2" 2>&1 | tr '\n' ' '))"
}

step "readiness with no control plane"
podman run -d --name "$RUN_ID-zt" --network none "$(img ztunnel)" --node-name node-1 --node-ip 127.0.0.1 >/dev/null
podman run -d --name "$RUN_ID-wp" --network none "$(img waypoint)" --name waypoint --namespace demo --ip 127.0.0.1 >/dev/null
expect_ready "ztunnel without a control plane" "$RUN_ID-zt" 127.0.0.1:15021 503
expect_ready "waypoint without a control plane" "$RUN_ID-wp" 127.0.0.1:15021 503

step "control plane on examples/ + ztunnel in its network namespace"
chown 65532:65532 "$STATE"
podman run -d --name "$RUN_ID-cp" --network none -v "$ROOT/examples:/etc/ambient/manifests:ro" -v "$STATE:/var/lib/ambient/state" \
  "$(img controlplane)" --config-dir /etc/ambient/manifests --state-dir /var/lib/ambient/state --listen 127.0.0.1:15010 >/dev/null
# ztunnel reads its token once at start; the control plane writes it at start.
for _ in $(seq 1 120); do [ -s "$STATE/node-tokens/node-1.token" ] && break; sleep 0.5; done
podman run -d --name "$RUN_ID-cpzt" --network "container:$RUN_ID-cp" -v "$STATE:/var/run/ambient-state:ro" "$(img ztunnel)" \
  --node-name node-1 --node-ip 127.10.1.1 --xds-address 127.0.0.1:15010 \
  --token-file /var/run/ambient-state/node-tokens/node-1.token >/dev/null
expect_ready "ztunnel with the control plane" "$RUN_ID-cpzt" 127.10.1.1:15021 200

if [ "$failures" -gt 0 ]; then
  step "$failures check(s) failed"
  exit 1
fi
step "all checks passed"
