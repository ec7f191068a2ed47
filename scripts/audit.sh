#!/usr/bin/env bash
# The dependency audit, offline: licences, banned crates and duplicate versions, and
# where crates come from, against the policy in deny.toml. Installs cargo-deny on first
# use (a few minutes, once per machine).
#
# Not checked here: security advisories (`cargo deny check advisories`), which need the
# RustSec database from the network; run that where the network is available.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION=0.20.2
if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "audit: installing cargo-deny $CARGO_DENY_VERSION (cargo install, once per machine)" >&2
  cargo install cargo-deny --locked --version "$CARGO_DENY_VERSION" >&2
fi
# cargo-deny reads `cargo metadata`, which needs every locked crate's manifest, those of
# other platforms too (a build fetches only the host's): fetch them first.
cargo fetch --locked
cargo deny --offline --locked check licenses bans sources
