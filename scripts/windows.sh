#!/usr/bin/env bash
# make windows: cross-builds Peal for Windows (x86_64-pc-windows-gnu) on this
# Debian machine, into target/x86_64-pc-windows-gnu/release/.
#
# What it needs and does, installing what is missing (safe to run again):
#  - mingw-w64 and nasm from Debian, and the Rust target from rustup;
#  - libvpx and libopus for the target, from Debian's own source packages
#    (libvpx 1.12 with Debian's security fixes, opus 1.3.1), fetched with
#    `apt-get source` through a private deb-src list (no change to the
#    machine's apt sources), built static: libvpx VP8 only, realtime;
#    opus without the stack protector and fortify, which mingw's static
#    link lacks (libssp);
#  - the environment that points env-libvpx-sys (at lib/) and audiopus_sys (at
#    the prefix: it adds lib/ itself) at them is
#    set for the Windows cargo invocation only.
#
# Usage: scripts/windows.sh [build|check|clippy] [cargo args...]   (default:
# build --release the server, the CLI and the desktop app, with
# WebView2Loader.dll placed beside the app), or scripts/windows.sh package:
# the app and its installer (scripts/windows/installer.nsi, Debian's
# makensis) in target/x86_64-pc-windows-gnu/release/bundle/nsis/. Each C
# library's build log is in target/windows-deps/build/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
TARGET=x86_64-pc-windows-gnu
HOST=x86_64-w64-mingw32
deps=$root/target/windows-deps
prefix=$deps/prefix

say() { echo "windows: $*" >&2; }

# Runs "$@" with its output in the log $1, showing the log's end if it fails.
logged() {
  local log=$1; shift
  if ! "$@" >"$log" 2>&1; then
    tail -30 "$log" >&2; say "failed: $* (the whole log: $log)"; exit 1
  fi
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root to run: $*"; exit 1; fi
}

need=()
command -v $HOST-gcc >/dev/null || need+=(mingw-w64)
command -v nasm >/dev/null || need+=(nasm)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
command -v make >/dev/null || need+=(make)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
rustup target list --installed | grep -qx $TARGET || rustup target add $TARGET

# The sources, through a private apt state under target/.
fetch() {
  local pkg=$1
  if ls -d "$deps/src/$pkg"-*/ >/dev/null 2>&1; then return; fi
  local apt=$deps/apt
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$deps/src"
  if [ ! -f "$apt/sources.list" ]; then
    local key=/usr/share/keyrings/debian-archive-keyring.gpg
    {
      echo "deb-src [signed-by=$key] http://deb.debian.org/debian bookworm main"
      echo "deb-src [signed-by=$key] http://deb.debian.org/debian bookworm-updates main"
      echo "deb-src [signed-by=$key] http://deb.debian.org/debian-security bookworm-security main"
    } > "$apt/sources.list"
  fi
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/parts"
              -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "Debug::NoLocking=1"
              -o "APT::Sandbox::User=$(id -un)")
  if [ ! -f "$apt/updated" ]; then
    say "reading Debian's source lists"
    apt-get "${opts[@]}" update -qq
    touch "$apt/updated"
  fi
  say "fetching the source of $pkg"
  (cd "$deps/src" && apt-get "${opts[@]}" source -qq "$pkg" >/dev/null)
}

# build PKG LIB [configure args...]: Debian's source of PKG, configured for
# the target with the args, built and installed static into the prefix;
# nothing when the prefix has lib/LIB already.
build() {
  local pkg=$1 lib=$2
  shift 2
  [ -f "$prefix/lib/$lib" ] && return
  fetch "$pkg"
  local src
  src=$(ls -d "$deps/src/$pkg"-*/ | head -1)
  say "building $pkg for Windows from $src (log: $deps/build/$pkg.log)"
  mkdir -p "$deps/build/$pkg"
  logged "$deps/build/$pkg.log" bash -c 'cd "$0" && "$1/configure" "${@:2}" && make -j"$(nproc)" && make install' \
    "$deps/build/$pkg" "$src" --prefix="$prefix" --enable-static --disable-shared "$@"
}

# libvpx's configure takes its tools' prefix from CROSS.
CROSS=$HOST- build libvpx libvpx.a --target=x86_64-win64-gcc --disable-vp9 --enable-vp8 \
  --enable-realtime-only --disable-examples --disable-tools --disable-docs --disable-unit-tests
build opus libopus.a --host=$HOST --disable-doc --disable-extra-programs --disable-stack-protector \
  CFLAGS="-O2 -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=0"
vpx_version=$(sed -n 's/^Version: //p' "$prefix/lib/pkgconfig/vpx.pc")

cmd=build
case "${1:-}" in build|check|clippy|package) cmd=$1; shift ;; esac
out=$root/target/$TARGET/debug
[[ " $* " != *" --release "* && $cmd != package ]] || out=$root/target/$TARGET/release

cargo_for_windows() {
  say "cargo $1 --target $TARGET ${*:2}"
  env VPX_LIB_DIR="$prefix/lib" VPX_INCLUDE_DIR="$prefix/include" VPX_VERSION="$vpx_version" \
      VPX_STATIC=1 LIBOPUS_LIB_DIR="$prefix" LIBOPUS_STATIC=1 LIBOPUS_NO_PKG=1 \
      cargo "$1" --target $TARGET "${@:2}"
}

# The app's .exe loads WebView2Loader.dll from beside it: Microsoft's, as
# webview2-com-sys ships it (and links against it).
place_loader() {
  [ -f "$out/peal-desktop.exe" ] || return 0
  local dll
  dll=$(ls -t "$out"/build/webview2-com-sys-*/out/x64/WebView2Loader.dll 2>/dev/null | head -1)
  [ -n "$dll" ] || { say "no WebView2Loader.dll in $out/build (webview2-com-sys)"; exit 1; }
  cp "$dll" "$out/WebView2Loader.dll"
}

case $cmd in
  package)
    command -v makensis >/dev/null || { say "installing nsis"; as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nsis >/dev/null; }
    cargo_for_windows build --release -p peal-desktop
    place_loader
    version=$(sed -n 's/^ *"version": "\(.*\)",/\1/p' tauri.conf.json | head -1)
    mkdir -p "$out/bundle/nsis"
    setup=$out/bundle/nsis/Peal_${version}_x64-setup.exe
    say "makensis -> $setup"
    logged "$out/bundle/nsis/makensis.log" makensis -V2 -DVERSION="$version" -DAPP="$out/peal-desktop.exe" \
      -DLOADER="$out/WebView2Loader.dll" -DICON="$root/icons/icon.ico" \
      -DPICTURE="$root/icons/128x128.png" -DOUT="$setup" scripts/windows/installer.nsi
    say "built $setup ($(du -h "$setup" | cut -f1))"
    ;;
  *)
    args=("$@")
    [ ${#args[@]} -gt 0 ] || args=(--release -p peal-server -p peal-cli -p peal-desktop)
    cargo_for_windows "$cmd" "${args[@]}"
    [ "$cmd" != build ] || place_loader
    ;;
esac
