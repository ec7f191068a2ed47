#!/usr/bin/env bash
# Runs every test: starts the test broker (installing it if needed), runs `cargo test`
# against it, stops it. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

addr=$(scripts/test-broker.sh start)
trap 'scripts/test-broker.sh stop' EXIT
export CDR_TEST_BROKERS="$addr"
echo "test.sh: broker at $CDR_TEST_BROKERS" >&2
cargo test --locked "$@"
