#!/usr/bin/env bash
# Runs every test of Callbox: formatting, lints, unit, conformance, property and CRM tests
# (against a real HTTP server on 127.0.0.1), telephony tests against real SIP peers, and the keychain test against gnome-keyring on a
# private D-Bus session. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== format" >&2
cargo fmt --all -- --check
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
echo "== all tests passed" >&2
