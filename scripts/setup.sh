#!/usr/bin/env bash
# Installs what building and testing Callbox needs on Debian/Ubuntu, when it is missing.
# Safe to run again: it only installs what is absent. Sourced by run.sh and test.sh.
set -euo pipefail

need_packages=()
command -v cc >/dev/null 2>&1 || need_packages+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_packages+=(pkg-config)
command -v curl >/dev/null 2>&1 || need_packages+=(curl ca-certificates)
# The softphone's audio goes through ALSA (cpal): its headers are needed to build.
[ -e /usr/include/alsa/asoundlib.h ] || need_packages+=(libasound2-dev)
# Opus: the opus crate builds libopus from its bundled source with cmake.
command -v cmake >/dev/null 2>&1 || need_packages+=(cmake)
# The desktop app (Tauri 2): WebKitGTK, the tray's appindicator, librsvg (icons), libxdo
# (shortcuts); Node.js and npm build the window's UI (ui/).
pkg-config --exists webkit2gtk-4.1 2>/dev/null || need_packages+=(libwebkit2gtk-4.1-dev)
pkg-config --exists ayatana-appindicator3-0.1 2>/dev/null || need_packages+=(libayatana-appindicator3-dev)
pkg-config --exists librsvg-2.0 2>/dev/null || need_packages+=(librsvg2-dev)
[ -e /usr/include/xdo.h ] || need_packages+=(libxdo-dev)
command -v xdg-mime >/dev/null 2>&1 || need_packages+=(xdg-utils)
command -v npm >/dev/null 2>&1 || need_packages+=(nodejs npm)

if [ ${#need_packages[@]} -gt 0 ]; then
  echo "setup: installing ${need_packages[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: installing the Rust toolchain (rustup)" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
for component in clippy rustfmt; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component" >/dev/null 2>&1 || true
  fi
done

# Installs Debian packages (without recommends): apt_install REASON PACKAGE...; nothing when none.
apt_install() {
  local reason=$1
  shift
  [ $# -gt 0 ] || return 0
  echo "setup: installing $* ($reason)" >&2
  local sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The keychain test needs a Secret Service on a private D-Bus session: gnome-keyring,
# dbus-run-session/dbus-send (dbus-x11 brings them) and secret-tool. test.sh calls this.
install_keychain_test_tools() {
  local need=()
  command -v gnome-keyring-daemon >/dev/null 2>&1 || need+=(gnome-keyring)
  command -v dbus-run-session >/dev/null 2>&1 || need+=(dbus-daemon)
  command -v dbus-send >/dev/null 2>&1 || need+=(dbus-bin)
  command -v dbus-launch >/dev/null 2>&1 || need+=(dbus-x11)
  command -v secret-tool >/dev/null 2>&1 || need+=(libsecret-tools)
  apt_install "keychain test" "${need[@]}"
}

# The telephony tests start real SIP peers on 127.0.0.1: kamailio (registrar and proxy, with its
# TLS module), baresip (the far end) and sipp (edge cases), plus openssl for a test certificate.
# test.sh calls this.
install_telephony_test_tools() {
  local need=()
  command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ] || need+=(kamailio)
  [ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ] || need+=(kamailio-tls-modules)
  command -v baresip >/dev/null 2>&1 || need+=(baresip-core)
  command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  apt_install "telephony tests" "${need[@]}"
}

# The desktop end-to-end tests: a headless X server, WebKit's WebDriver and tauri-driver,
# xdotool and xclip (the global shortcut on selected text), gio (opens tel: links as desktops
# do) and a D-Bus session with gnome-keyring. test.sh calls this.
install_desktop_test_tools() {
  local need=()
  command -v Xvfb >/dev/null 2>&1 || need+=(xvfb xauth)
  command -v WebKitWebDriver >/dev/null 2>&1 || need+=(webkit2gtk-driver)
  command -v xdotool >/dev/null 2>&1 || need+=(xdotool)
  command -v xclip >/dev/null 2>&1 || need+=(xclip)
  command -v gio >/dev/null 2>&1 || need+=(libglib2.0-bin)
  command -v dunst >/dev/null 2>&1 || need+=(dunst)
  command -v dbus-monitor >/dev/null 2>&1 || need+=(dbus-bin)
  apt_install "desktop end-to-end tests" "${need[@]}"
  if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
    echo "setup: installing tauri-driver 2.1.0 (cargo install)" >&2
    cargo install tauri-driver --version 2.1.0 --locked --quiet
  fi
}

# The window's UI: installs its npm packages (exactly as locked) when they changed, then builds
# ui/dist, which the desktop binary embeds (so every cargo build of the workspace needs it).
build_ui() {
  if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
    echo "setup: installing the UI's npm packages" >&2
    (cd ui && npm ci --no-audit --no-fund --loglevel=error)
  fi
  (cd ui && npm run --silent build >/dev/null)
}
build_ui
