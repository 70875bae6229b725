#!/usr/bin/env bash
# Builds the installable packages of the desktop app with the Tauri bundler (from npm):
#   ./scripts/package.sh            → target/release/bundle/deb/Callbox_<version>_amd64.deb
#                                     (callbox and callbox-cli; install: apt install ./Callbox_…deb)
#   ./scripts/package.sh appimage   → also an AppImage (the bundler downloads linuxdeploy from
#                                     GitHub: needs internet access beyond package registries)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
bundles=deb
[ "${1:-}" = appimage ] && bundles=deb,appimage
apt_install "packaging" $(command -v dpkg-deb >/dev/null 2>&1 || echo dpkg-dev) $(command -v file >/dev/null 2>&1 || echo file)
# ui/dist is already built by setup.sh; the bundler builds the app's release binary, and the
# package carries callbox-cli beside it (tauri.conf.json: bundle.linux.deb.files).
cargo build --release --locked -p callbox-cli
(cd src-tauri && ../ui/node_modules/.bin/tauri build --bundles "$bundles" -- --locked)
ls -l target/release/bundle/*/* 2>/dev/null
