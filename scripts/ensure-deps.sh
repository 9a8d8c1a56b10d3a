#!/usr/bin/env bash
# Installs what building and testing Peal needs on a fresh Debian 12 machine,
# and nothing when it is already there. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "ensure-deps: need root to run: $*" >&2; exit 1; fi
}

need_apt=()
command -v cc >/dev/null || need_apt+=(build-essential)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v curl >/dev/null || need_apt+=(curl ca-certificates)
# Media: libopus and libvpx for the codecs; ALSA (microphone, speaker) and
# libclang (the V4L2 camera bindings are generated at build time); coturn for
# the relay (TURN) tests.
pkg-config --exists opus 2>/dev/null || need_apt+=(libopus-dev)
pkg-config --exists vpx 2>/dev/null || need_apt+=(libvpx-dev)
pkg-config --exists alsa 2>/dev/null || need_apt+=(libasound2-dev)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need_apt+=(libclang-dev)
command -v turnserver >/dev/null || need_apt+=(coturn)
# The Windows scenarios (tests/windows.rs): the cross-built .exe files run
# under wine (64-bit only); scripts/windows.sh installs the cross compiler.
command -v wine >/dev/null || need_apt+=(wine wine64)
# ... and the installer, made with makensis and run under wine.
command -v makensis >/dev/null || need_apt+=(nsis)
# The device-choice tests' sound server: PulseAudio's clocked null sinks and
# a sine source, reached through ALSA's pulse plugin (what cpal opens), and
# parec to record what a sink played.
command -v pulseaudio >/dev/null || need_apt+=(pulseaudio)
command -v parec >/dev/null || need_apt+=(pulseaudio-utils)
ls /usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so >/dev/null 2>&1 || need_apt+=(libasound2-plugins)
# The shaped network path (crates/peal-netem): namespaces and veths with
# iproute2, offloads off with ethtool.
command -v ip >/dev/null || need_apt+=(iproute2)
command -v ethtool >/dev/null || [ -x /usr/sbin/ethtool ] || need_apt+=(ethtool)
# The desktop app: WebKitGTK for Tauri, GStreamer's VP8 for WebCodecs in the
# page; Xvfb and WebKitWebDriver for its end-to-end tests.
pkg-config --exists webkit2gtk-4.1 2>/dev/null || need_apt+=(libwebkit2gtk-4.1-dev)
ls /usr/lib/*/gstreamer-1.0/libgstvpx.so >/dev/null 2>&1 || need_apt+=(gstreamer1.0-plugins-good)
command -v Xvfb >/dev/null || need_apt+=(xvfb xauth)
command -v WebKitWebDriver >/dev/null || need_apt+=(webkit2gtk-driver)
# The tray icon (loaded at run time), a session bus for notifications and the
# single-instance check, and the end-to-end tests' screenshots and window list.
pkg-config --exists ayatana-appindicator3-0.1 2>/dev/null || need_apt+=(libayatana-appindicator3-dev)
# The keyring (the Secret Service over D-Bus) that keeps the sign-in.
pkg-config --exists dbus-1 2>/dev/null || need_apt+=(libdbus-1-dev)
command -v dbus-daemon >/dev/null || need_apt+=(dbus-daemon)
command -v dbus-send >/dev/null || need_apt+=(dbus-bin)
# A real Secret Service for the keyring test (GNOME Keyring on a private bus).
command -v gnome-keyring-daemon >/dev/null || need_apt+=(gnome-keyring)
command -v xwd >/dev/null || need_apt+=(x11-apps)
command -v xwininfo >/dev/null || need_apt+=(x11-utils)
# The page's type check and unit tests, and the Tauri CLI that bundles the
# .deb, come from npm.
command -v npm >/dev/null || need_apt+=(nodejs npm)
command -v dpkg-deb >/dev/null || need_apt+=(dpkg)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "ensure-deps: installing ${need_apt[*]} with apt-get" >&2
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

# Rust: Debian 12's own cargo is too old (1.63); use rustup's stable.
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  echo "ensure-deps: installing the Rust toolchain with rustup" >&2
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! cargo fmt --version >/dev/null 2>&1 && command -v rustup >/dev/null; then
  rustup component add rustfmt
fi
if ! cargo clippy --version >/dev/null 2>&1 && command -v rustup >/dev/null; then
  rustup component add clippy
fi
# tauri-driver (the WebDriver bridge for the desktop app's end-to-end tests).
if ! command -v tauri-driver >/dev/null && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
  echo "ensure-deps: installing tauri-driver with cargo" >&2
  cargo install tauri-driver --locked --version 2.1.0
fi
# The page's tools (TypeScript, Vitest, the Tauri CLI), exactly as locked.
if [ ! -f ui/node_modules/.package-lock.json ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  echo "ensure-deps: installing the page's tools with npm ci" >&2
  npm ci --prefix ui --no-audit --no-fund
fi
