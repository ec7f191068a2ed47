#!/usr/bin/env bash
# Runs every test: starts the test brokers (installing tansu if needed; a plain one and
# one that requires SASL), installs the headless browser the report tests render with
# (scripts/install-chromium.sh), runs `cargo test` against them, stops the brokers. Extra
# arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-chromium.sh

addr=$(scripts/test-broker.sh start)
trap 'scripts/test-broker.sh stop; scripts/test-broker.sh stop-sasl' EXIT
export CDR_TEST_BROKERS="$addr"
# A second broker that requires SASL authentication (tests/sasl.rs).
CDR_TEST_SASL_BROKERS=$(scripts/test-broker.sh start-sasl)
export CDR_TEST_SASL_BROKERS
echo "test.sh: broker at $CDR_TEST_BROKERS, SASL broker at $CDR_TEST_SASL_BROKERS" >&2
cargo test --locked "$@"
