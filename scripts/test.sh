#!/usr/bin/env bash
# Runs every test: starts the test broker (installing it if needed), installs the
# headless browser the report tests render with (scripts/install-chromium.sh), runs
# `cargo test` against them, stops the broker. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-chromium.sh

addr=$(scripts/test-broker.sh start)
trap 'scripts/test-broker.sh stop' EXIT
export CDR_TEST_BROKERS="$addr"
echo "test.sh: broker at $CDR_TEST_BROKERS" >&2
cargo test --locked "$@"
