#!/usr/bin/env bash
# The libwebrtc baseline for `peal-bench media`: `run.sh TRIALS` prints one
# JSON line (see drive.mjs) and nothing else on stdout.
#
# Chromium does not offer 127.0.0.1 as an ICE candidate, so drive.mjs runs in
# a private network namespace that has only lo and a veth pair with TEST-NET-1
# addresses (192.0.2.1, 192.0.2.2): its traffic never leaves this machine.
# As root that is `unshare -n`; otherwise a user namespace (`unshare -rn`).
# scripts/ensure-bench-deps.sh installs what it needs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/$(basename "${BASH_SOURCE[0]}")"
cd "$here"

if [ "${_PEAL_BENCH_IN_NETNS:-}" != 1 ]; then
  if [ ! -d node_modules/playwright-core ]; then
    echo "run.sh: $here/node_modules is missing: run scripts/ensure-bench-deps.sh" >&2
    exit 1
  fi
  command -v unshare >/dev/null || { echo "run.sh: unshare not found (util-linux): run scripts/ensure-bench-deps.sh" >&2; exit 1; }
  command -v ip >/dev/null || { echo "run.sh: ip not found (iproute2): run scripts/ensure-bench-deps.sh" >&2; exit 1; }
  export _PEAL_BENCH_IN_NETNS=1
  if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
    exec unshare -n -- bash "$self" "$@"
  elif unshare -rn true 2>/dev/null; then
    exec unshare -rn -- bash "$self" "$@"
  else
    echo "run.sh: cannot make a private network namespace (neither 'unshare -n' as root nor 'unshare -rn' in a user namespace works here)" >&2
    exit 1
  fi
fi

# Inside the namespace.
{
  ip link set lo up
  ip link add peal0 type veth peer name peal1
  ip addr add 192.0.2.1/24 dev peal0
  ip addr add 192.0.2.2/24 dev peal1
  ip link set peal0 up
  ip link set peal1 up
} >&2
exec node drive.mjs "$@"
