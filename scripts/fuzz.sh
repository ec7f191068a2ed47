#!/usr/bin/env bash
# Fuzzes decode → policy → encode (fuzz/fuzz_targets/decode_policy_encode.rs) with
# libFuzzer, on the stable toolchain: the coverage instrumentation cargo-fuzz would add is
# passed as plain rustc flags, so neither nightly nor cargo-fuzz is needed.
#
#   scripts/fuzz.sh [SECONDS]   # default 60; new inputs go to fuzz/corpus/, crashes to
#                               # fuzz/artifacts/ (and the script fails)
#
# The checked-in corpus (fuzz/corpus/decode_policy_encode/) is the starting point; the
# hostile corpus of tests/corpus/ is read too. libFuzzer's closing statistics are printed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_TO_RUN="${1:-60}"
# FUZZ_TARGET=wire_differential fuzzes the wire path against the struct path;
# FUZZ_TARGET=json_differential the pipeline's JSON fast paths against the struct path.
TARGET="${FUZZ_TARGET:-decode_policy_encode}"
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cllvm-args=-simplifycfg-branch-fold-threshold=0"
# --target keeps the instrumentation off build scripts and proc macros.
cargo build --locked --release --target "$TRIPLE" --bin "$TARGET"
BIN="target/$TRIPLE/release/$TARGET"

mkdir -p "corpus/$TARGET" "artifacts/$TARGET" "target/new-corpus"
# New inputs go to a scratch folder; the checked-in corpus stays as it is unless asked
# (FUZZ_KEEP_CORPUS=1 adds the new ones to it).
NEW=target/new-corpus
if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ]; then NEW="corpus/$TARGET"; fi
status=0
"$BIN" "$NEW" "corpus/$TARGET" corpus/decode_policy_encode ../tests/corpus \
  -max_total_time="$SECONDS_TO_RUN" \
  -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 \
  -artifact_prefix="artifacts/$TARGET/" >target/fuzz.log 2>&1 || status=$?
# The run's last progress lines and libFuzzer's final statistics.
grep -E '^#[0-9]+ +(INITED|DONE|pulse|NEW|REDUCE)' target/fuzz.log | tail -5 || true
grep -E '^(stat::|==[0-9]+==|SUMMARY|INFO: (Loaded|seed|-max_len))|panicked|Test unit written' target/fuzz.log || true
if [ "$status" -ne 0 ]; then
  echo "fuzz: $TARGET failed (exit $status); the input is in fuzz/artifacts/$TARGET/" >&2
  exit "$status"
fi
echo "fuzz: $TARGET ran ${SECONDS_TO_RUN}s without a crash"
