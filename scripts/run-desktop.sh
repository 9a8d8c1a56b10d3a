#!/usr/bin/env bash
# `make run`: the desktop app, signed in on "this computer" (a Peal server
# inside the app, and the Echo contact that answers with your own video).
set -euo pipefail
app="$1"
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  cat >&2 <<MSG
make run: no display here (DISPLAY and WAYLAND_DISPLAY are unset).
Run it from a desktop session, or on a headless machine:
  xvfb-run -a $app --this-computer
For the signaling server and the CLI alone: make run-server
MSG
  exit 1
fi
echo "Starting Peal on this computer: call Echo to see and hear yourself." >&2
exec "$app" --this-computer
