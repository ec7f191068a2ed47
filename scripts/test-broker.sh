#!/usr/bin/env bash
# The test broker: tansu (an Apache-Kafka-compatible broker with an in-memory store),
# installed from crates.io if missing, started on a free loopback port.
#
#   scripts/test-broker.sh start   # installs if needed, starts, waits, prints the address
#   scripts/test-broker.sh stop
#   scripts/test-broker.sh address # prints host:port of the running broker
#   scripts/test-broker.sh start-sasl|stop-sasl|address-sasl
#                                  # the same for a second tansu that requires SASL
#                                  # authentication (`tansu broker --authentication`)
#
# State lives in .broker/ (pid, port, log), .broker-sasl/ for the second one. Tests read
# the addresses from CDR_TEST_BROKERS and CDR_TEST_SASL_BROKERS. The authenticated tansu
# has no users and, with this storage, keeps none: it refuses every SCRAM login
# (tests/sasl.rs and docs/sasl.md say what that tests).
set -euo pipefail

cd "$(dirname "$0")/.."
STATE=.broker
EXTRA=()
case "${1:-}" in
  *-sasl) STATE=.broker-sasl; EXTRA=(--authentication) ;;
esac
TANSU_VERSION=0.6.0

install() {
  if command -v tansu >/dev/null 2>&1; then
    return
  fi
  echo "test-broker: installing tansu $TANSU_VERSION (cargo install, about 10 minutes, once per machine)" >&2
  cargo install tansu --locked --features dynostore --version "$TANSU_VERSION" >&2
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

running() {
  [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null
}

start() {
  install
  if running; then
    echo "127.0.0.1:$(cat "$STATE/port")"
    return
  fi
  mkdir -p "$STATE"
  local port
  port=$(free_port)
  # A clean environment: tansu reads CLUSTER_ID, LISTENER_URL, STORAGE_ENGINE, ... from it.
  env -i PATH="$PATH" HOME="${HOME:-/root}" RUST_LOG="${TANSU_LOG:-warn}" \
    nohup tansu broker \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine memory://tansu/ \
      ${EXTRA[@]+"${EXTRA[@]}"} \
      >"$STATE/broker.log" 2>&1 &
  echo $! >"$STATE/pid"
  echo "$port" >"$STATE/port"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "test-broker: tansu listening on 127.0.0.1:$port (pid $(cat "$STATE/pid"), log $STATE/broker.log)" >&2
      echo "127.0.0.1:$port"
      return
    fi
    if ! running; then
      echo "test-broker: tansu exited at start; its log:" >&2
      cat "$STATE/broker.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "test-broker: tansu did not answer on 127.0.0.1:$port within 10 s; its log:" >&2
  cat "$STATE/broker.log" >&2
  exit 1
}

stop() {
  if running; then
    kill "$(cat "$STATE/pid")" 2>/dev/null || true
    for _ in $(seq 1 50); do running || break; sleep 0.1; done
    running && kill -9 "$(cat "$STATE/pid")" 2>/dev/null || true
    echo "test-broker: stopped" >&2
  fi
  rm -f "$STATE/pid" "$STATE/port"
}

case "${1:-}" in
  start|start-sasl) start ;;
  stop|stop-sasl) stop ;;
  address|address-sasl) running && echo "127.0.0.1:$(cat "$STATE/port")" || { echo "test-broker: not running" >&2; exit 1; } ;;
  *) echo "usage: $0 start|stop|address|start-sasl|stop-sasl|address-sasl" >&2; exit 2 ;;
esac
