#!/usr/bin/env bash
# Runs every test of Callbox: formatting, lints, the UI's type check and unit tests, unit,
# conformance, property and CRM tests (against a real HTTP server on 127.0.0.1), telephony tests
# against real SIP peers, the keychain test against gnome-keyring on a private D-Bus session,
# the desktop end-to-end tests (a real window under Xvfb driven by WebDriver) and the checks of
# the .deb and the AppImage. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== format" >&2
cargo fmt --all -- --check
echo "== ui (TypeScript strict, Vitest)" >&2
(cd ui && npm run --silent typecheck && npm test --silent)
echo "== lints" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== docs" >&2
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
echo "== tests (the telephony ones against kamailio, baresip and sipp on 127.0.0.1)" >&2
install_telephony_test_tools
cargo test --workspace --locked
echo "== keychain, secrets and the chaos test (gnome-keyring on a private D-Bus session)" >&2
install_keychain_test_tools
# Each suite gets its own private session and keyring (the keychain test locks its keyring).
for suite in "callbox-engine --test keychain" "callbox-cli --test live"; do
  keyring_home=$(mktemp -d)
  XDG_DATA_HOME="$keyring_home" dbus-run-session -- sh -c "echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; CALLBOX_KEYCHAIN_TEST=1 cargo test -p $suite --locked -- --nocapture"
  rm -rf "$keyring_home"
done
echo "== desktop end to end (Xvfb, WebDriver, kamailio, baresip, the fake CRM, gnome-keyring)" >&2
install_desktop_test_tools
cargo build --locked -p callbox-desktop
display=":$((90 + RANDOM % 400))"
while [ -e "/tmp/.X11-unix/X${display#:}" ]; do display=":$((90 + RANDOM % 400))"; done
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
trap 'kill $xvfb_pid 2>/dev/null || true' EXIT
sleep 1
keyring_home=$(mktemp -d)
DISPLAY="$display" XDG_DATA_HOME="$keyring_home" dbus-run-session -- sh -c "echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; CALLBOX_E2E=1 cargo test -p callbox-desktop --test e2e --locked -- --test-threads=1" 2> >(grep -v -e '^dbus-daemon' -e 'AccessDenied' >&2)
rm -rf "$keyring_home"
echo "   screenshots: target/e2e/screenshots/" >&2
echo "== the .deb package (built from the test build; dependencies, contents, desktop entry)" >&2
./scripts/check-package.sh
echo "== the AppImage (built from that .deb; started with only the libraries it does not bundle left visible here)" >&2
./scripts/check-appimage.sh
echo "== all tests passed" >&2
