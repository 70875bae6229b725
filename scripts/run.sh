#!/usr/bin/env bash
# Installs what is missing, builds the Callbox desktop app (release) and starts it. With nothing
# configured the window guides the agent through setup (docs/desktop.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo build --release --locked -p callbox-desktop -p callbox-cli
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "run: built target/release/callbox, but there is no display to show it on." >&2
  echo "     Start it from a desktop session, or headless: xvfb-run target/release/callbox" >&2
  exit 1
fi
exec target/release/callbox "$@"
