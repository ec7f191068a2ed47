#!/usr/bin/env bash
# Latency against throughput, one setting of the filter at a time: for each setting below,
# the end-to-end harness (benches/e2e.rs) on the protobuf input with the floor and `run`
# only, then its latency phase at a pace the machine carries. Each setting is given to
# `run` as the environment variable that sets it (docs/configuration.md); the floor keeps
# its own settings and is measured again in every run, as the reference.
#
#   scripts/bench-settings.sh                 # every setting below
#   scripts/bench-settings.sh linger.ms=0     # the ones named
#
# E2E_EVENTS (default 500,000), E2E_ROUNDS (default 3), E2E_LATENCY_RATE (default 30,000
# events/s) and E2E_LATENCY_SECS (default 10) are passed on. The whole output of each run
# is kept in target/bench-settings/, and a summary is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

# The bench's configuration commits every 100 ms (`delivery.commit_interval`); the rest is
# the filter's defaults.
# NAME|ASSIGNMENT, in the order they run (ASSIGNMENT empty: the bench's own settings).
ALL=(
  "bench-default|"
  "linger.ms=0|CDR_PURPOSE_FILTER_KAFKA__PRODUCER_PROPERTIES__LINGER_MS=0"
  "linger.ms=20|CDR_PURPOSE_FILTER_KAFKA__PRODUCER_PROPERTIES__LINGER_MS=20"
  "linger.ms=100|CDR_PURPOSE_FILTER_KAFKA__PRODUCER_PROPERTIES__LINGER_MS=100"
  "batch.num.messages=500|CDR_PURPOSE_FILTER_KAFKA__PRODUCER_PROPERTIES__BATCH_NUM_MESSAGES=500"
  "batch.size=65536|CDR_PURPOSE_FILTER_KAFKA__PRODUCER_PROPERTIES__BATCH_SIZE=65536"
  "commit_interval=10ms|CDR_PURPOSE_FILTER_DELIVERY__COMMIT_INTERVAL=10ms"
  "commit_interval=1s|CDR_PURPOSE_FILTER_DELIVERY__COMMIT_INTERVAL=1s"
  "max_in_flight=100|CDR_PURPOSE_FILTER_DELIVERY__MAX_IN_FLIGHT=100"
  "max_in_flight=20000|CDR_PURPOSE_FILTER_DELIVERY__MAX_IN_FLIGHT=20000"
)

RUN=()
if [ "$#" -eq 0 ]; then
  RUN=("${ALL[@]}")
else
  for wanted in "$@"; do
    found=""
    for entry in "${ALL[@]}"; do
      if [ "${entry%%|*}" = "$wanted" ]; then found=$entry; fi
    done
    if [ -z "$found" ]; then
      known=$(for entry in "${ALL[@]}"; do printf '%s ' "${entry%%|*}"; done)
      echo "bench-settings: unknown setting '$wanted' (known: $known)" >&2
      exit 2
    fi
    RUN+=("$found")
  done
fi

out=target/bench-settings
mkdir -p "$out"
summary="$out/summary-$(date -u +%Y%m%dT%H%M%SZ).txt"
for entry in "${RUN[@]}"; do
  name=${entry%%|*}
  setting=${entry#*|}
  echo "bench-settings: $name" >&2
  log="$out/$name.log"
  # shellcheck disable=SC2086 # the setting is one NAME=VALUE word, or none
  env $setting \
    E2E_INPUTS=protobuf E2E_PROCESSES=floor,run \
    E2E_EVENTS="${E2E_EVENTS:-500000}" E2E_ROUNDS="${E2E_ROUNDS:-3}" \
    E2E_LATENCY_RATE="${E2E_LATENCY_RATE:-30000}" E2E_LATENCY_SECS="${E2E_LATENCY_SECS:-10}" \
    scripts/bench-e2e.sh >"$log" 2>&1 || {
    echo "bench-settings: $name failed, see $log" >&2
    exit 1
  }
  {
    echo "## $name $setting"
    grep -E '^protobuf +[0-9]+B +(floor|run) ' "$log"
    grep -E '^protobuf +(broker|floor|run) +[0-9.]+ ' "$log"
    # Rounds beside other work (the bench's note under its table), if any.
    grep -E '^note: ' "$log" || true
  } | tee -a "$summary"
done
echo "bench-settings: summary in $summary" >&2
