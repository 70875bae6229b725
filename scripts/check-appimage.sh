#!/usr/bin/env bash
# Builds the AppImage the way scripts/package.sh does (scripts/appimage.sh), from the .deb of the
# test build that scripts/check-package.sh made, then checks that it works on its own:
#   - it is a type-2 AppImage: the runtime gives its offset, and its image holds AppRun, the
#     desktop entry (valid, `callbox %u`, claiming tel:, callto: and sip: links) and the icon;
#   - it starts Callbox to an interactive window under Xvfb while this machine's library
#     directory holds only what the image leaves to the machine (bubblewrap), so nothing it
#     needs is taken from here by accident; WebKit's web and network processes run from the
#     image; the links are registered to the AppImage; a second launch hands its tel: link over;
#   - its GIO loads its own TLS module, its gdk-pixbuf decodes an SVG through its own loaders;
#   - `Callbox.AppImage cli …` runs the packaged callbox-cli where it was started (it checks the
#     built-in templates, named relative to the checkout).
# Called by scripts/test.sh after scripts/check-package.sh; `scripts/check-appimage.sh DEB` checks
# the AppImage of another .deb (the release one, say).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
apt_install "AppImage checks" \
  $(command -v bwrap >/dev/null 2>&1 || echo bubblewrap) \
  $(command -v desktop-file-validate >/dev/null 2>&1 || echo desktop-file-utils) \
  $(command -v Xvfb >/dev/null 2>&1 || echo xvfb) \
  $(command -v dbus-run-session >/dev/null 2>&1 || echo dbus-daemon) \
  $([ -e /usr/lib/x86_64-linux-gnu/libfuse.so.2 ] || echo libfuse2) \
  $(command -v fusermount >/dev/null 2>&1 || command -v fusermount3 >/dev/null 2>&1 || echo fuse3)
fail() { echo "AppImage check failed: $*" >&2; exit 1; }

deb=${1:-$(ls -t target/debug/bundle/deb/Callbox_*_amd64.deb | head -1)}
image=$(dirname "$(dirname "$deb")")/appimage/$(basename "$deb" .deb).AppImage
./scripts/appimage.sh "$deb" "$image"
image=$(realpath "$image")

work=$(mktemp -d)
xvfb_pid=
cleanup() {
  [ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null
  pkill -f "$work/run/session.sh" 2>/dev/null || true
  pkill -f "$work/run/[^ ]*/usr/bin/callbox" 2>/dev/null || true
  # Should anything have left a FUSE mount in the test's home (the image's own, a portal's).
  awk -v work="$work" 'index($2, work) == 1 { print $2 }' /proc/mounts | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The image and what it holds.
offset=$("$image" --appimage-offset) || fail "the runtime does not give the image's offset"
[ "$offset" -gt 0 ] || fail "offset $offset"
(cd "$work" && "$image" --appimage-extract >/dev/null) || fail "the image does not extract"
root=$work/squashfs-root
for file in AppRun Callbox.desktop callbox.png .DirIcon usr/bin/callbox usr/bin/callbox-cli \
  usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/WebKitWebProcess \
  usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/WebKitNetworkProcess \
  usr/lib/x86_64-linux-gnu/gio/modules/libgiognutls.so \
  usr/lib/x86_64-linux-gnu/libayatana-appindicator3.so.1; do
  [ -e "$root/$file" ] || fail "no $file in the image"
done
problems=$(desktop-file-validate "$root/Callbox.desktop" 2>&1) || fail "invalid desktop entry: $problems"
grep -qx 'Exec=callbox %u' "$root/Callbox.desktop" || fail "the desktop entry does not pass links"
for scheme in tel callto sip; do
  grep -q "^MimeType=.*x-scheme-handler/$scheme;" "$root/Callbox.desktop" || fail "the desktop entry does not claim $scheme: links"
done
"$image" cli template check templates/*.xml >/dev/null \
  || fail "the AppImage's callbox-cli (\`Callbox.AppImage cli\`) cannot check the built-in templates from here"
# The oldest glibc and libstdc++ it can run with: the newest symbol versions it needs of them.
symbols=$(find "$root" -type f \( -name '*.so*' -o -path '*/bin/*' -o -path '*/webkit2gtk-4.1/*' \) \
  -exec objdump -T {} + 2>/dev/null | grep -o -e 'GLIBC_[0-9.]*' -e 'GLIBCXX_[0-9.]*' | sort -u)
glibc="$(grep '^GLIBC_' <<<"$symbols" | sort -V | tail -1) and $(grep '^GLIBCXX_' <<<"$symbols" | sort -V | tail -1)"

# While the image runs, /usr/lib/x86_64-linux-gnu holds only what the image leaves to the
# machine (packaging/appimage-exclude), what those libraries need, the graphics driver's modules,
# iconv's, libfuse and what the shell needs: a library missing from the image fails this check
# instead of being borrowed from this machine. (Programs of this machine that Callbox starts,
# like update-desktop-database, cannot run in there; Callbox only warns about them.)
multiarch=/usr/lib/x86_64-linux-gnu
declare -A visible=()
keep() { # FILE: it and every library it needs stay visible
  local path
  for path in "$1" $(ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
    visible[$(basename "$path")]=$(realpath "$path")
  done
}
while read -r name; do
  [ -e "$multiarch/$name" ] && keep "$multiarch/$name"
done < <(grep -v -e '^#' -e '^$' packaging/appimage-exclude)
for file in "$multiarch"/dri/*.so "$multiarch"/libEGL_mesa.so.0 "$multiarch"/libGLX_mesa.so.0 \
  "$multiarch"/libfuse.so.2 /bin/sh /usr/bin/readlink /usr/bin/dirname; do
  [ -e "$file" ] && keep "$file"
done
hide=(--tmpfs "$multiarch")
for name in "${!visible[@]}"; do hide+=(--ro-bind "${visible[$name]}" "$multiarch/$name"); done
for dir in dri gconv; do
  [ -d "$multiarch/$dir" ] && hide+=(--ro-bind "$multiarch/$dir" "$multiarch/$dir")
done
bundled=$(ls "$root/usr/lib/x86_64-linux-gnu" | grep -c '\.so')
hidden="this machine's $multiarch reduced to ${#visible[@]} libraries while it ran"
isolate=(bwrap --dev-bind / / "${hide[@]}")
if ! "${isolate[@]}" true 2>/dev/null; then
  # A container without mount namespaces: the checks still run, on this machine's libraries too.
  echo "   bubblewrap cannot make a mount namespace here: the AppImage runs without hiding this machine's libraries" >&2
  hidden="NOT hidden: bubblewrap cannot make a mount namespace here"
  isolate=()
fi

# The image's GLib and gdk-pixbuf find their modules at the relocated paths: GIO loads the TLS
# module (WebKit needs it for every https: CRM page), and gdk-pixbuf decodes an SVG through a
# loader module from the image's loader cache (PNG is built in, so SVG it is).
cat >"$work/modules.c" <<'EOF'
#include <stdio.h>
void *g_tls_backend_get_default(void);
int g_tls_backend_supports_tls(void *backend);
void *gdk_pixbuf_new_from_file(const char *path, void **error);
int main(int argc, char **argv) {
  void *error = 0;
  if (!g_tls_backend_supports_tls(g_tls_backend_get_default())) { puts("no TLS module"); return 1; }
  if (argc != 2 || !gdk_pixbuf_new_from_file(argv[1], &error)) { puts("no SVG loader"); return 1; }
  return 0;
}
EOF
cc -o "$work/modules" "$work/modules.c" -L"$root/usr/lib/x86_64-linux-gnu" -l:libgio-2.0.so.0 \
  -l:libgobject-2.0.so.0 -l:libgdk_pixbuf-2.0.so.0 -Wl,--allow-shlib-undefined \
  -Wl,-rpath,"$root/usr/lib/x86_64-linux-gnu"
printf '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>' >"$work/icon.svg"
missing=$(cd "$root/usr" && "${isolate[@]}" "$work/modules" "$work/icon.svg") \
  || fail "the image's own modules do not load: $missing"

# Callbox from the AppImage (mounted with FUSE; extracted where FUSE is not allowed), on a
# display and D-Bus session of its own, with a home of its own.
display=":$((500 + RANDOM % 400))"
while [ -e "/tmp/.X11-unix/X${display#:}" ]; do display=":$((500 + RANDOM % 400))"; done
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
sleep 1
mode=extracted
# libfuse 2 mounts by itself as root, through fusermount otherwise.
[ -c /dev/fuse ] && [ -w /dev/fuse ] && { [ "$(id -u)" -eq 0 ] || command -v fusermount >/dev/null; } \
  && mode=mounted
home=$work/run/home
mkdir -p "$home"
cp "$image" "$work/run/Callbox.AppImage"
# The runtime extracts instead of mounting when APPIMAGE_EXTRACT_AND_RUN is set at all.
extract_and_run=()
[ "$mode" = extracted ] && extract_and_run=(APPIMAGE_EXTRACT_AND_RUN=1)
# The session runs Callbox, then (once the test says so) a second launch with a tel: link, the
# way a browser hands one over: the running Callbox must take it.
cat >"$work/run/session.sh" <<EOF
"$work/run/Callbox.AppImage" &
first=\$!
while [ ! -e "$work/run/second" ]; do sleep 0.2; done
"$work/run/Callbox.AppImage" 'tel:+49%2030%201234567' >"$work/run/second.log" 2>&1
touch "$work/run/second-done"
wait \$first
EOF
# A session bus that starts nothing by itself: no portals, accessibility bus or notification
# daemon outliving the check (Callbox does without them).
cat >"$work/run/bus.conf" <<'EOF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
(
  cd "$work/run"
  DISPLAY="$display" HOME="$home" XDG_CONFIG_HOME="$home/.config" XDG_DATA_HOME="$home/.local/share" \
    XDG_CACHE_HOME="$home/.cache" TMPDIR="$work/run" \
    NO_AT_BRIDGE=1 env "${extract_and_run[@]}" dbus-run-session --config-file="$work/run/bus.conf" -- "${isolate[@]}" sh "$work/run/session.sh" >"$work/run/out.log" 2>&1
) &
app=$!
log_dir=$home/.local/share/callbox/logs
wait_for() { # WHAT COMMAND…: until COMMAND succeeds, for up to 60 s
  local what=$1
  shift
  for _ in $(seq 1 120); do
    "$@" && return 0
    kill -0 "$app" 2>/dev/null || break
    sleep 0.5
  done
  cat "$work/run/out.log" >&2
  cat "$log_dir"/* >&2 2>/dev/null || true
  fail "$what"
}
logged() { grep -qs "$1" "$log_dir"/*; }
wait_for "Callbox from the AppImage did not reach an interactive window within 60 s" logged "window interactive"
started=$(grep -ho 'window interactive ms=[0-9]*' "$log_dir"/* | head -1)
for process in WebKitWebProcess WebKitNetworkProcess; do
  found=
  for pid in $(pgrep -f "$process"); do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    case $exe in
    "$work/run/"*/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/$process) found=$exe ;;
    esac
  done
  [ -n "$found" ] || fail "no $process runs from the AppImage"
done
# Tauri knows it runs from an AppImage (restart and link registration use $APPIMAGE), and the
# links are registered to open the AppImage, not its temporary mount.
if [ "$mode" = mounted ] && logged "not detected as an AppImage"; then
  pid=$(pgrep -f "$work/run/[^ ]*/usr/bin/callbox" | head -1)
  fail "Tauri did not recognise the AppImage: $(grep -h 'AppImage' "$log_dir"/*)
  callbox: $(readlink "/proc/$pid/exe"), $(tr '\0' '\n' <"/proc/$pid/environ" | grep -E '^(TMPDIR|APPIMAGE|APPDIR)=' | tr '\n' ' ')"
fi
handler=$home/.local/share/applications/callbox-handler.desktop
wait_for "no link handler was written" test -s "$handler"
grep -qx "Exec=\"$work/run/Callbox.AppImage\" %u" "$handler" \
  || fail "the link handler does not start the AppImage: $(grep ^Exec "$handler")"
touch "$work/run/second"
wait_for "the second launch did not end" test -e "$work/run/second-done"
wait_for "the running Callbox did not take the tel: link of a second launch" logged "click-to-call link target=+49301234567"
# Callbox quits; the runtime unmounts the image, dbus-run-session ends its bus.
pkill -f "$work/run/[^ ]*/usr/bin/callbox" 2>/dev/null || true
wait "$app" 2>/dev/null || true
echo "   $image: $(du -h "$image" | cut -f1), $mode, $bundled libraries bundled, $hidden, interactive in ${started#window interactive ms=} ms, took a second launch's tel: link, needs $glibc" >&2
