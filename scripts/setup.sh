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
