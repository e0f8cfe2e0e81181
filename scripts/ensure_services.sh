#!/usr/bin/env bash
# Make sure the services the test suite talks to are up: start what is installed
# but stopped, and fail with what to install when something is missing.
set -u
fail=0
say() { printf 'ensure_services: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && exec 3>&- 3<&-; }

wait_port() {  # port, seconds
  for _ in $(seq 1 $(( $2 * 10 ))); do port_open "$1" && return 0; sleep 0.1; done
  return 1
}

ensure() {  # name, port, binary, start command
  local name=$1 port=$2 bin=$3 start=$4
  if port_open "$port"; then return 0; fi
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "$bin" ]; then
    say "$name is not installed (no '$bin'). Install it, e.g. 'apt-get install $5', and start it on port $port."
    fail=1; return 1
  fi
  say "$name is installed but not running on port $port; starting it"
  bash -c "$start" >/dev/null 2>&1 || true
  if ! wait_port "$port" 30; then
    say "$name did not come up on port $port after '$start'"
    fail=1; return 1
  fi
}

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | head -n1)
ensure PostgreSQL 5432 "${PG_BIN:-pg_ctlcluster}" \
  'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -n1) main start' postgresql
ensure Redis 6379 redis-server \
  'mkdir -p /var/lib/redis /var/log/redis; redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log' redis-server
ensure Mosquitto 1883 mosquitto 'mosquitto -d -c /etc/mosquitto/mosquitto.conf' mosquitto
# The other-hosts test forwards the services into network namespaces with socat.
if ! command -v socat >/dev/null 2>&1; then
  say "socat is missing; installing it (apt-get install socat)"
  (apt-get install -y -q socat || (apt-get update -q && apt-get install -y -q socat)) >/dev/null 2>&1 \
    || { say "could not install socat: run 'apt-get install socat'"; fail=1; }
fi
exit $fail
