#!/usr/bin/env bash
# The test suite on Node.js 24 LTS, the images' runtime. Node comes from the npm registry
# (node-linux-<arch>, the version the images pin in deploy/images/build.sh). The suite runs in a
# worktree of the committed HEAD under .tools/node24-tree, installed and built there with Node 24
# (node-gyp builds re2 and @ambient/netns for its ABI against its headers), so this checkout's
# node_modules, built for the Node on PATH, stay as they are. Uncommitted changes are not tested.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${NODE_VERSION:-$(sed -n 's/^NODE_VERSION=\${NODE_VERSION:-\(.*\)}$/\1/p' deploy/images/build.sh)}
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "test-node24: no Node.js package for $(uname -m)" >&2; exit 1 ;;
esac
node=$PWD/.tools/node-$version
if [ ! -x "$node/bin/node" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-$arch@$version" >/dev/null)
  mkdir -p "$node"
  tar xzf "$tmp"/node-linux-"$arch"-*.tgz -C "$node" --strip-components=1
  rm -rf "$tmp"
fi

tree=$PWD/.tools/node24-tree
git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
git worktree prune
git worktree add --detach "$tree" HEAD >/dev/null
cd "$tree"
export PATH="$node/bin:$PATH" npm_config_nodedir="$node"
echo "[node24] $(node --version) in $tree at $(git rev-parse --short HEAD)" >&2
npx -y pnpm@10 install
npx -y pnpm@10 run build
npx -y pnpm@10 run kube-clients
npx -y pnpm@10 test
