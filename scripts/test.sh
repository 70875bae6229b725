#!/usr/bin/env bash
# Runs every test of Callbox: formatting, lints, unit, conformance, property and CRM tests
# (against a real HTTP server on 127.0.0.1). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== format" >&2
cargo fmt --all -- --check
echo "== lints" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== docs" >&2
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
echo "== tests" >&2
cargo test --workspace --locked
echo "== all tests passed" >&2
