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
# the addresses from CDR_TEST_BROKERS and CDR_TEST_SASL_BROKERS.
#
# The authenticated tansu keeps its data in sqlite (.broker-sasl/tansu.db, new at every
# start): the in-memory store keeps no SCRAM credentials, sqlite does. That needs tansu
# built with `--features libsql`, installed once per machine into its own root
# (CDR_TEST_TANSU_SQL_ROOT, default ~/.cache/cdr-purpose-filter/tansu-sql) so it does not
# replace the plain tansu. At start, tansu runs first WITHOUT authentication on that store
# to create the test user (`tansu user create`: its client cannot authenticate), then is
# restarted with --authentication on the same store and port. The test user, for both
# SCRAM-SHA-256 and SCRAM-SHA-512 (fixed test values; tests/sasl.rs uses the same):
#
#   user cdr-test-user   password cdr-test-password
set -euo pipefail

cd "$(dirname "$0")/.."
STATE=.broker
SASL=false
case "${1:-}" in
  *-sasl) STATE=.broker-sasl; SASL=true ;;
esac
TANSU_VERSION=0.6.0
TANSU_SQL_ROOT="${CDR_TEST_TANSU_SQL_ROOT:-${HOME:-/root}/.cache/cdr-purpose-filter/tansu-sql}"
SASL_USER=cdr-test-user
SASL_PASSWORD=cdr-test-password

install() {
  if command -v tansu >/dev/null 2>&1; then
    return
  fi
  echo "test-broker: installing tansu $TANSU_VERSION (cargo install, about 10 minutes, once per machine)" >&2
  cargo install tansu --locked --features dynostore --version "$TANSU_VERSION" >&2
}

# tansu with sqlite storage, for the authenticated broker.
install_sql() {
  if [ -x "$TANSU_SQL_ROOT/bin/tansu" ]; then
    return
  fi
  echo "test-broker: installing tansu $TANSU_VERSION with sqlite storage into $TANSU_SQL_ROOT" \
    "(cargo install --features libsql, about 25 minutes on 2 busy cores, once per machine)" >&2
  local began=$SECONDS
  cargo install tansu --locked --features libsql --version "$TANSU_VERSION" \
    --root "$TANSU_SQL_ROOT" >&2
  echo "test-broker: tansu with sqlite storage installed in $((SECONDS - began)) s" >&2
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

running() {
  [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null
}

# Starts a tansu (`$1`: the binary) on port `$2` with storage `$3` and extra arguments,
# its output in `$4`, and waits until it listens. tansu runs in $STATE (a sqlite store's
# path is relative to its working directory).
launch() {
  local bin=$1 port=$2 storage=$3 log=$4
  shift 4
  # A clean environment: tansu reads CLUSTER_ID, LISTENER_URL, STORAGE_ENGINE, ... from it.
  env -i -C "$STATE" PATH="$PATH" HOME="${HOME:-/root}" RUST_LOG="${TANSU_LOG:-warn}" \
    nohup "$bin" broker \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine "$storage" \
      "$@" \
      >"$STATE/$log" 2>&1 &
  echo $! >"$STATE/pid"
  echo "$port" >"$STATE/port"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return
    fi
    if ! running; then
      echo "test-broker: tansu exited at start; its log:" >&2
      cat "$STATE/$log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "test-broker: tansu did not answer on 127.0.0.1:$port within 10 s; its log:" >&2
  cat "$STATE/$log" >&2
  exit 1
}

start() {
  if $SASL; then install_sql; else install; fi
  if running; then
    echo "127.0.0.1:$(cat "$STATE/port")"
    return
  fi
  mkdir -p "$STATE"
  local port
  port=$(free_port)
  if $SASL; then
    local bin="$TANSU_SQL_ROOT/bin/tansu"
    rm -f "$STATE"/tansu.db*
    # Without authentication first: the only way to create the SCRAM user.
    launch "$bin" "$port" sqlite://tansu.db users.log
    for mechanism in scram256 scram512; do
      if ! "$bin" user create --broker "tcp://127.0.0.1:$port" --mechanism "$mechanism" \
        "$SASL_USER" "$SASL_PASSWORD" >>"$STATE/users.log" 2>&1; then
        echo "test-broker: tansu user create ($mechanism) failed; its output:" >&2
        cat "$STATE/users.log" >&2
        stop >/dev/null 2>&1
        exit 1
      fi
    done
    stop 2>/dev/null
    launch "$bin" "$port" sqlite://tansu.db broker.log --authentication
    echo "test-broker: tansu (sqlite storage, SASL authentication, SCRAM user $SASL_USER)" \
      "listening on 127.0.0.1:$port (pid $(cat "$STATE/pid"), log $STATE/broker.log)" >&2
  else
    launch tansu "$port" memory://tansu/ broker.log
    echo "test-broker: tansu listening on 127.0.0.1:$port (pid $(cat "$STATE/pid"), log $STATE/broker.log)" >&2
  fi
  echo "127.0.0.1:$port"
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
