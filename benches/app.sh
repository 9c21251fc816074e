#!/usr/bin/env bash
# Benchmark (not a test): release build of hello-k8s, then redis-server, the API and the
# frontend on free loopback ports; wrk -t2 -c50 -d10s --latency on the frontend's GET / (the
# full frontend -> API -> Redis chain, a page of 10 messages) and on the API's GET /.
# Prints req/s, p50/p99 and each process's peak RSS (VmHWM), against the original Python
# app's reference figures on a 2-core machine (about 230 req/s, p99 ~310 ms, ~46 MiB/process).
# Targets: frontend GET / >= 10,000 req/s, p99 < 20 ms, < 20 MiB RSS per process.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in redis-server wrk curl; do
  command -v "$tool" >/dev/null || { echo "benches/app.sh needs $tool (Debian package: ${tool/redis-server/redis-server})" >&2; exit 1; }
done

duration="${BENCH_DURATION:-10s}"
connections="${BENCH_CONNECTIONS:-50}"

echo "--- cargo build --release -p hello-k8s"
cargo build --release --locked -p hello-k8s
bin="${CARGO_TARGET_DIR:-target}/release"

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -s TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}

wait_http() {
  local url="$1" i
  for i in $(seq 1 200); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timed out waiting for $url" >&2
  exit 1
}

redis_port="$(free_port)"
api_port="$(free_port)"
fe_port="$(free_port)"

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
HKA_HOST=127.0.0.1 HKA_PORT="$api_port" REDIS_HOST=127.0.0.1 REDIS_PORT="$redis_port" HOSTNAME=bench-api \
  "$bin/hello-k8s-api" >"$tmp/api.log" &
api_pid=$!
pids+=("$api_pid")
HKF_HOST=127.0.0.1 HKF_PORT="$fe_port" API_HOST=127.0.0.1 API_PORT="$api_port" HOSTNAME=bench-frontend \
  "$bin/hello-k8s-frontend" >"$tmp/frontend.log" &
fe_pid=$!
pids+=("$fe_pid")

wait_http "http://127.0.0.1:$api_port/readyz"
wait_http "http://127.0.0.1:$fe_port/readyz"
for i in $(seq 1 10); do
  curl -fsS -o /dev/null --data-binary "benchmark message $i: hello <k8s> & friends" "http://127.0.0.1:$api_port/new"
done
page_bytes="$(curl -fsS "http://127.0.0.1:$fe_port/" | wc -c)"
echo "--- page: $page_bytes bytes with 10 messages"

run_wrk() {
  local slug="$1" name="$2" url="$3" out="$tmp/$1.wrk"
  wrk -t2 -c"$connections" -d"$duration" --latency "$url" >"$out"
  local rps p50 p99 errors
  rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
  p50="$(awk '$1 == "50%" {print $2}' "$out")"
  p99="$(awk '$1 == "99%" {print $2}' "$out")"
  errors="$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$out")"
  printf '%-34s %10s req/s   p50 %-9s p99 %-9s non-2xx %s\n' "$name" "$rps" "$p50" "$p99" "${errors:-0}"
  echo "$rps" >"$tmp/$slug.rps"
}

echo "--- wrk -t2 -c$connections -d$duration --latency"
run_wrk frontend "frontend GET / (full chain)" "http://127.0.0.1:$fe_port/"
run_wrk api "api GET /" "http://127.0.0.1:$api_port/"

echo "--- peak resident memory (VmHWM) after the runs"
for entry in "redis-server:$redis_pid" "hello-k8s-api:$api_pid" "hello-k8s-frontend:$fe_pid"; do
  name="${entry%%:*}"
  pid="${entry##*:}"
  kib="$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")"
  awk -v n="$name" -v k="$kib" 'BEGIN { printf "%-20s %7.1f MiB\n", n, k / 1024 }'
done

fe_rps="$(cat "$tmp/frontend.rps")"
awk -v r="$fe_rps" 'BEGIN { printf "--- frontend GET /: %.0f req/s = %.1fx the original Python app (230 req/s); target >= 10000\n", r, r / 230 }'
