#!/usr/bin/env bash
# Runs the deterministic simulation of the engine on many seeds (a soak):
#   scripts/simulate.sh --seeds 100000 [--first 500]
# A failing seed is printed with its trace and appended to
# src/pipeline/sim/regressions.txt, which every `cargo test` replays.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=10000
first=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --first) first="$2"; shift 2 ;;
    *) echo "usage: $0 [--seeds N] [--first S]" >&2; exit 2 ;;
  esac
done
SIM_SEEDS="$seeds" SIM_FIRST="$first" cargo test --release --lib \
  pipeline::sim::every_seed_keeps_the_invariants -- --nocapture
