#!/usr/bin/env bash
# Builds the Callbox AppImage from a Callbox .deb and this machine's WebKitGTK:
#   scripts/appimage.sh DEB OUT.AppImage
# scripts/package.sh (release) and scripts/check-appimage.sh (the test build) call it.
#
# Tauri's own AppImage bundling downloads linuxdeploy, its GTK plugin and the AppImage runtime
# from GitHub, which our build machines cannot reach; this script does the same work from
# Debian's packages (ARCHITECTURE.md, "Packaging"):
#   1. the .deb's files (callbox, callbox-cli, desktop entry, icons) make the AppDir;
#   2. WebKitGTK's helper processes, GIO's TLS/proxy/settings modules, gdk-pixbuf's image
#      loaders and the tray library (loaded with dlopen, so ldd cannot see it) are added;
#   3. every library they need is copied beside them, except the ones that must come from the
#      machine it runs on (glibc, the graphics driver stack, X11/xcb, ALSA, fontconfig/freetype,
#      libstdc++ and a few base libraries: packaging/appimage-exclude); each copied ELF file gets a
#      RUNPATH into the AppDir (patchelf), so no LD_LIBRARY_PATH leaks into programs Callbox
#      starts, such as the browser;
#   4. the absolute paths compiled into WebKitGTK (its helper processes), GIO (its modules)
#      and gdk-pixbuf (its loaders) are rewritten to the same-length relative `././/lib/…`,
#      which AppRun makes resolve inside the AppDir by starting Callbox in `$APPDIR/usr`;
#   5. the AppDir becomes a squashfs image behind the AppImage type-2 runtime (AppImageKit's,
#      taken from the `appimage` crate on crates.io, checksum pinned below).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 DEB OUT.AppImage" >&2; exit 2; }
deb=$1
out=$2
[ -f "$deb" ] || { echo "appimage: no such .deb: $deb" >&2; exit 1; }
fail() { echo "appimage: $*" >&2; exit 1; }

source scripts/setup.sh
apt_install "AppImage assembly" \
  $(command -v patchelf >/dev/null 2>&1 || echo patchelf) \
  $(command -v mksquashfs >/dev/null 2>&1 || echo squashfs-tools) \
  $(command -v glib-compile-schemas >/dev/null 2>&1 || echo libglib2.0-bin) \
  $(command -v dpkg-deb >/dev/null 2>&1 || echo dpkg-dev)

multiarch=x86_64-linux-gnu
system_lib=/usr/lib/$multiarch
webkit=webkit2gtk-4.1
runtime_sha256=328e0d745c5c6817048c27bc3e8314871703f8f47ffa81a37cb06cd95a94b323
[ -x "$system_lib/$webkit/WebKitWebProcess" ] || fail "WebKitGTK ($webkit) is not installed; scripts/setup.sh installs it"

# Libraries taken from the machine the AppImage runs on, never bundled (the file says why).
mapfile -t excluded < <(grep -v -e '^#' -e '^$' packaging/appimage-exclude)
is_excluded() {
  local name
  for name in "${excluded[@]}"; do [ "$1" = "$name" ] && return 0; done
  return 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
appdir=$work/Callbox.AppDir
lib=$appdir/usr/lib/$multiarch
dpkg-deb -x "$deb" "$appdir"
[ -x "$appdir/usr/bin/callbox" ] || fail "$deb holds no usr/bin/callbox"
strip --strip-debug "$appdir"/usr/bin/*
mkdir -p "$lib"

# 2. What the dynamic linker cannot see from usr/bin/callbox.
mkdir -p "$lib/$webkit/injected-bundle"
for process in WebKitWebProcess WebKitNetworkProcess WebKitGPUProcess; do
  [ -e "$system_lib/$webkit/$process" ] && cp "$system_lib/$webkit/$process" "$lib/$webkit/"
done
cp "$system_lib/$webkit/injected-bundle/libwebkit2gtkinjectedbundle.so" "$lib/$webkit/injected-bundle/"
mkdir -p "$lib/gio/modules"
for module in libgiognutls.so libgiolibproxy.so libgiognomeproxy.so libdconfsettings.so; do
  [ -e "$system_lib/gio/modules/$module" ] && cp "$system_lib/gio/modules/$module" "$lib/gio/modules/"
done
[ -e "$lib/gio/modules/libgiognutls.so" ] || fail "GIO's TLS module (glib-networking) is missing; HTTPS would not work"
loaders=gdk-pixbuf-2.0/2.10.0
mkdir -p "$lib/$loaders/loaders"
cp "$system_lib/$loaders/loaders/"*.so "$lib/$loaders/loaders/"
tray=$(ls "$system_lib"/libayatana-appindicator3.so.1 2>/dev/null || true)
[ -n "$tray" ] || fail "libayatana-appindicator3 (the tray) is not installed; scripts/setup.sh installs it"
cp -L "$tray" "$lib/"

# 3. The libraries all of that needs, and a RUNPATH into the AppDir for each ELF file.
is_elf() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ]; }
# Walked through DT_NEEDED, not ldd's flat list: what only an excluded library needs (libXau
# for libxcb, say) comes with that library on the machine, and is not bundled.
declare -A resolved=() taken=()
mapfile -t queue < <(find "$appdir" -type f | while read -r file; do is_elf "$file" && echo "$file"; done)
while [ ${#queue[@]} -gt 0 ]; do
  elf=${queue[0]}
  queue=("${queue[@]:1}")
  while read -r name path; do resolved[$name]=$path; done \
    < <(ldd "$elf" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }')
  for name in $(readelf -d "$elf" | awk '/\(NEEDED\)/ { gsub(/[][]/, "", $5); print $5 }'); do
    is_excluded "$name" && continue
    [ -z "${taken[$name]:-}" ] || continue
    taken[$name]=1
    [ -e "$lib/$name" ] && continue
    [ -n "${resolved[$name]:-}" ] || fail "$elf needs $name, which is not installed"
    cp -L "${resolved[$name]}" "$lib/$name"
    queue+=("$lib/$name")
  done
done
bundled=0
while IFS= read -r -d '' elf; do
  is_elf "$elf" || continue
  dir=$(dirname "$elf")
  relative=$(realpath --relative-to="$dir" "$lib")
  if [ "$relative" = . ]; then runpath='$ORIGIN'; else runpath="\$ORIGIN/$relative"; fi
  patchelf --set-rpath "$runpath" "$elf"
  bundled=$((bundled + 1))
done < <(find "$appdir/usr" -type f -print0)

# 4. Compiled-in absolute paths, rewritten to relative ones of the same length.
relocate() { # FILE FROM: FROM starts with /usr; it becomes ././ (resolved from $APPDIR/usr)
  local file=$1 from=$2 to="././${2#/usr}" count
  count=$(FROM="$from" perl -0777 -ne 'my $n = () = /\Q$ENV{FROM}\E/g; print $n' "$file")
  [ "$count" -gt 0 ] || fail "$(basename "$file") holds no $from any more: the relocation needs a look"
  FROM="$from" TO="$to" perl -0777 -pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/g' "$file"
}
relocate "$lib/libwebkit2gtk-4.1.so.0" "$system_lib/$webkit"
relocate "$lib/libgio-2.0.so.0" "$system_lib/gio/modules"
relocate "$lib/libgdk_pixbuf-2.0.so.0" "$system_lib"
# gdk-pixbuf's loader cache, written with the same relative paths.
query=$system_lib/gdk-pixbuf-2.0/gdk-pixbuf-query-loaders
[ -x "$query" ] || query=$(command -v gdk-pixbuf-query-loaders)
"$query" "$lib/$loaders/loaders/"*.so | sed "s|$appdir/usr/|././/|" >"$lib/$loaders/loaders.cache"
grep -q '"././/lib/' "$lib/$loaders/loaders.cache" || fail "the gdk-pixbuf loader cache has no relocated path"
# GTK's settings schemas (the file chooser needs them), found through XDG_DATA_DIRS.
mkdir -p "$appdir/usr/share/glib-2.0/schemas"
cp /usr/share/glib-2.0/schemas/org.gtk.*.gschema.xml "$appdir/usr/share/glib-2.0/schemas/"
glib-compile-schemas "$appdir/usr/share/glib-2.0/schemas"

# The AppImage's entry point, desktop entry and icon.
cat >"$appdir/AppRun" <<'EOF'
#!/bin/sh
# Starts Callbox from its AppImage (written by scripts/appimage.sh).
here=$(dirname "$(readlink -f "$0")")
APPDIR=${APPDIR:-$here}
export APPDIR
# `Callbox.AppImage cli …` is callbox-cli, run where it was started from (the runtime says
# where in OWD), so its file arguments keep their meaning.
if [ "${1:-}" = cli ]; then
  shift
  cd "${OWD:-.}" || exit 1
  exec "$APPDIR/usr/bin/callbox-cli" "$@"
fi
# GTK's settings schemas and the icons inside the AppImage come first.
XDG_DATA_DIRS="$APPDIR/usr/share:${XDG_DATA_DIRS:-/usr/local/share:/usr/share}"
export XDG_DATA_DIRS
# WebKitGTK, GIO and gdk-pixbuf find their helpers and modules at ././/lib/…, from here.
cd "$APPDIR/usr" || exit 1
exec "$APPDIR/usr/bin/callbox" "$@"
EOF
chmod +x "$appdir/AppRun"
cp "$appdir/usr/share/applications/Callbox.desktop" "$appdir/Callbox.desktop"
icon=$(grep -m1 '^Icon=' "$appdir/Callbox.desktop" | cut -d= -f2)
cp "$appdir/usr/share/icons/hicolor/128x128/apps/$icon.png" "$appdir/$icon.png"
ln -s "$icon.png" "$appdir/.DirIcon"

# 5. The runtime, from the `appimage` crate (Cargo.lock pins it), and the image behind it.
manifest=packaging/appimage-runtime/Cargo.toml
crate=$(cargo metadata --manifest-path "$manifest" --format-version 1 --locked \
  | grep -o '"manifest_path":"[^"]*/appimage-0\.4\.0/Cargo\.toml"' | cut -d'"' -f4)
[ -n "$crate" ] || fail "cargo did not fetch the appimage crate ($manifest)"
runtime=$(dirname "$crate")/assets/runtime-x86_64
echo "$runtime_sha256  $runtime" | sha256sum --check --quiet - || fail "the AppImage runtime's checksum changed: $runtime"
mksquashfs "$appdir" "$work/image.squashfs" -root-owned -noappend -quiet -no-progress -comp gzip >/dev/null
mkdir -p "$(dirname "$out")"
cat "$runtime" "$work/image.squashfs" >"$out"
chmod 755 "$out"
echo "   $out: $(du -h "$out" | cut -f1), $bundled ELF files with a RUNPATH into the AppImage" >&2
