#!/usr/bin/env bash
# End-to-end harness: pass-through floor vs the filter on the test broker.
#   scripts/bench-e2e.sh            # 1,000,000 events
#   E2E_EVENTS=200000 scripts/bench-e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
addr=$(scripts/test-broker.sh start)
trap 'scripts/test-broker.sh stop' EXIT
# The pass-through floor (`run --passthrough`) exists only with this feature. The broker
# is this script's: the harness restarts it before each process it measures.
CDR_TEST_BROKERS="$addr" E2E_RESTART_BROKER=1 cargo bench --bench e2e --features bench-passthrough
