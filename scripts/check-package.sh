#!/usr/bin/env bash
# Builds the .deb the way scripts/package.sh does, from the test build (debug: the same code
# and bundler, without a second, release build of everything in the test run), then checks that
# it installs and works:
#   - apt resolves its dependencies on this machine (`apt-get install --simulate`);
#   - it holds callbox, callbox-cli, the desktop entry and the icons;
#   - the desktop entry is valid, launches `callbox %u` and claims tel:, callto: and sip: links;
#   - the packaged callbox-cli runs (it checks the built-in templates).
# Called by scripts/test.sh after the desktop build; needs ui/dist and ui/node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
apt_install "package checks" $(command -v dpkg-deb >/dev/null 2>&1 || echo dpkg-dev) \
  $(command -v desktop-file-validate >/dev/null 2>&1 || echo desktop-file-utils)

cargo build --locked -p callbox-cli
log=$(mktemp)
(cd src-tauri && ../ui/node_modules/.bin/tauri build --debug --bundles deb --ci \
  --config '{"bundle":{"linux":{"deb":{"files":{"/usr/bin/callbox-cli":"../target/debug/callbox-cli"}}}}}' \
  -- --locked) >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
rm -f "$log"
deb=$(ls -t target/debug/bundle/deb/Callbox_*_amd64.deb | head -1)
fail() { echo "package check failed: $*" >&2; exit 1; }

apt-get install --simulate --no-install-recommends "./$deb" >/dev/null 2>&1 \
  || { apt-get install --simulate "./$deb" >&2 || true; fail "its dependencies do not resolve"; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
for file in usr/bin/callbox usr/bin/callbox-cli usr/share/applications/Callbox.desktop \
  usr/share/icons/hicolor/128x128/apps/callbox.png; do
  [ -s "$root/$file" ] || fail "no $file in $deb"
done
[ -x "$root/usr/bin/callbox" ] && [ -x "$root/usr/bin/callbox-cli" ] || fail "binaries not executable"

entry="$root/usr/share/applications/Callbox.desktop"
problems=$(desktop-file-validate "$entry" 2>&1) || fail "invalid desktop entry: $problems"
[ -z "$problems" ] || fail "desktop entry: $problems"
grep -qx 'Exec=callbox %u' "$entry" || fail "the desktop entry does not pass links: $(grep ^Exec "$entry")"
for scheme in tel callto sip; do
  grep -q "^MimeType=.*x-scheme-handler/$scheme;" "$entry" || fail "the desktop entry does not claim $scheme: links"
done

"$root/usr/bin/callbox-cli" template check templates/*.xml >/dev/null \
  || fail "the packaged callbox-cli cannot check the built-in templates"

echo "   $deb: $(du -h "$deb" | cut -f1), dependencies resolve, contents and desktop entry checked" >&2
