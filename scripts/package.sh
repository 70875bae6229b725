#!/usr/bin/env bash
# Builds the installable packages of the desktop app:
#   ./scripts/package.sh            → target/release/bundle/deb/Callbox_<version>_amd64.deb
#                                     (callbox and callbox-cli; install: apt install ./Callbox_…deb)
#   ./scripts/package.sh appimage   → also target/release/bundle/appimage/Callbox_<version>_amd64.AppImage
#                                     (made from the .deb and this machine's WebKitGTK by
#                                     scripts/appimage.sh; runs on glibc 2.35 or newer)
# The .deb comes from the Tauri bundler (from npm); Tauri's own AppImage bundling is not used, as
# it downloads its tools from GitHub (ARCHITECTURE.md, "Packaging").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
apt_install "packaging" $(command -v dpkg-deb >/dev/null 2>&1 || echo dpkg-dev) $(command -v file >/dev/null 2>&1 || echo file)
# ui/dist is already built by setup.sh; the bundler builds the app's release binary, and the
# package carries callbox-cli beside it (tauri.conf.json: bundle.linux.deb.files).
cargo build --release --locked -p callbox-cli
(cd src-tauri && ../ui/node_modules/.bin/tauri build --bundles deb -- --locked)
deb=$(ls -t target/release/bundle/deb/Callbox_*_amd64.deb | head -1)
if [ "${1:-}" = appimage ]; then
  ./scripts/appimage.sh "$deb" "target/release/bundle/appimage/$(basename "$deb" .deb).AppImage"
fi
ls -l target/release/bundle/*/*.deb target/release/bundle/*/*.AppImage 2>/dev/null
