#!/usr/bin/env bash
# Measures the desktop app on this machine, release build, under Xvfb (software rendering):
# start-up to an interactive window, idle memory of all its processes (PSS: the app, WebKit's
# web and network processes) beside an empty Tauri window, and binary size.
#   ./scripts/bench-desktop.sh [RUNS] [configured]
# `configured`: Callbox registered at a local kamailio (the test lab's), with an integration
# (the helpdesk template, its API key in a gnome-keyring of its own) and 10,000 cached
# contacts, instead of the first run with nothing configured.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
install_desktop_test_tools
runs=${1:-5}
mode=${2:-first-run}
cargo build --release --locked -p callbox-desktop --bin callbox --example empty_window
if [ "$mode" = configured ]; then
  cargo build --release --locked -p callbox-cli
  cargo build --release --locked -p callbox-sip --features test-support --example lab_registrar
  # The registrar runs until this script's end closes its standard input (fd 4).
  registrar_out=$(mktemp)
  exec 4> >(target/release/examples/lab_registrar >"$registrar_out")
  for _ in $(seq 1 100); do [ -s "$registrar_out" ] && break; sleep 0.1; done
  registrar=$(head -n1 "$registrar_out")
  echo "registrar: $registrar"
  contacts=$(mktemp)
  awk 'BEGIN { print "ContactsId,FirstName,LastName,Company,BusinessNumber";
               for (i = 0; i < 10000; i++) printf "c-%d,First%d,Last%d,Company %d,+4930%07d\n", i, i, i, i % 500, i }' >"$contacts"
fi
app=target/release/callbox
empty=target/release/examples/empty_window

display=":$((90 + RANDOM % 400))"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true' EXIT
sleep 1
export DISPLAY="$display"

# PSS (kB) of a process and all its descendants: "TOTAL COUNT name=kB name=kB…".
tree_pss() {
  local pids=("$1") all=() p
  while [ ${#pids[@]} -gt 0 ]; do
    p=${pids[0]}; pids=("${pids[@]:1}"); all+=("$p")
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do pids+=("$c"); done
  done
  local total=0 v parts=""
  for p in "${all[@]}"; do
    v=$(awk '/^Pss:/ {print $2}' /proc/"$p"/smaps_rollup 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
    parts+=" $(basename "$(readlink /proc/"$p"/exe 2>/dev/null || echo gone)")=$((${v:-0} / 1024))"
  done
  echo "$total ${#all[@]}$parts"
}

measure() { # NAME BINARY
  local name=$1 bin=$2 home start ready pid pss count parts
  home=$(mktemp -d)
  local launch=("$bin")
  if [ "$mode" = configured ] && [ "$name" = callbox ]; then
    mkdir -p "$home/config/callbox/integrations"
    printf 'registrar = "%s"\ndomain = "127.0.0.1"\nuser = "1002"\npassword = "secret"\nexpires = 60\n' \
      "$registrar" >"$home/config/callbox/telephony.toml"
    printf 'template = "example-helpdesk"\n[fields]\nbase_url = "http://127.0.0.1:9"\npriority = "normal"\n' \
      >"$home/config/callbox/integrations/desk.toml"
    XDG_CONFIG_HOME="$home/config" XDG_DATA_HOME="$home/data" \
      target/release/callbox-cli contacts import --integration desk "$contacts" >/dev/null
    # The keychain lives in the app's D-Bus session; the API key is stored there first.
    launch=(sh -c 'echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null;
                   echo key | target/release/callbox-cli secret set desk api_key >/dev/null;
                   exec "$0"' "$bin")
  fi
  start=$(date +%s%N)
  XDG_CONFIG_HOME="$home/config" XDG_DATA_HOME="$home/data" dbus-run-session -- "${launch[@]}" >"$home/out.log" 2>&1 &
  local session=$!
  # Ready: the app logs it at its page's first IPC call; the empty window when its page loaded.
  for _ in $(seq 1 500); do
    grep -q -e 'window interactive' -e 'empty window loaded' "$home/out.log" 2>/dev/null && break
    sleep 0.02
  done
  ready=$(date +%s%N)
  sleep 10
  pid=$(pgrep -n -f "^$bin\$" || true)
  read -r pss count parts < <(tree_pss "${pid:-$session}")
  kill "$pid" 2>/dev/null || true
  wait "$session" 2>/dev/null || true
  if [ "$mode" = configured ] && [ "$name" = callbox ]; then
    grep -q 'phone registration.*Registered' "$home/out.log" ||
      { echo "warning: callbox did not register:"; tail -n 5 "$home/out.log"; } >&2
  fi
  echo "$name ($mode) start_ms=$(( (ready - start) / 1000000 )) pss_mb=$((pss / 1024)) processes=$count (MB:$parts)"
  rm -rf "$home"
}

echo "binary: $(stat -c %s "$app" | awk '{printf "%.1f MB", $1/1e6}') (callbox, release); stripped: $(strip -o /tmp/callbox.stripped "$app" && stat -c %s /tmp/callbox.stripped | awk '{printf "%.1f MB", $1/1e6}')"
for i in $(seq 1 "$runs"); do
  measure "empty-tauri-window" "$empty"
  measure "callbox" "$app"
done
