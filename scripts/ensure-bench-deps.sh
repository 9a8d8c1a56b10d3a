#!/usr/bin/env bash
# Installs what `peal-bench` needs beyond scripts/ensure-deps.sh on a Debian 12
# machine, and nothing when it is already there. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "ensure-bench-deps: need root to run: $*" >&2; exit 1; fi
}

need_apt=()
# The libwebrtc baseline (crates/peal-bench/chromium): Debian's Chromium,
# driven by playwright-core, in a private network namespace (ip, unshare).
[ -x /usr/bin/chromium ] || command -v chromium >/dev/null || need_apt+=(chromium)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v unshare >/dev/null || need_apt+=(util-linux)
command -v npm >/dev/null || need_apt+=(nodejs npm)
# The signaling baseline: NATS pub→sub and request-reply.
command -v nats-server >/dev/null || need_apt+=(nats-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "ensure-bench-deps: installing ${need_apt[*]} with apt-get" >&2
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

# playwright-core, exactly as locked (it drives the system Chromium; it
# downloads no browser).
bench=crates/peal-bench/chromium
if [ ! -f "$bench/node_modules/.package-lock.json" ] || [ "$bench/package-lock.json" -nt "$bench/node_modules/.package-lock.json" ]; then
  echo "ensure-bench-deps: installing playwright-core in $bench with npm ci" >&2
  (cd "$bench" && npm ci --no-audit --no-fund >&2)
fi
