#!/usr/bin/env bash
# Benchmark of `hk8s load` (not a test): against nginx serving a ~3 KB file on 127.0.0.1,
#  1. hk8s load -c 50 -t 10S  vs  wrk -t1 -c50 -d10s    -> req/s of both and the ratio
#     (target: hk8s >= 0.9 x wrk);
#  2. siege's tutorial flags -d1 -c255 -t10S with siege and with hk8s load
#     -> transactions of both and the ratio (target: within 10 %).
# Needs nginx, wrk and siege (Debian packages). Run from anywhere: bash benches/load.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for tool in nginx wrk siege curl python3; do
  command -v "$tool" >/dev/null || { echo "benches/load.sh: $tool is not installed (apt-get install $tool)" >&2; exit 1; }
done

echo "== building hk8s (release)"
cargo build --release --locked --manifest-path "$root/Cargo.toml" -p hk8s --bin hk8s
hk8s="$root/target/release/hk8s"

work="$(mktemp -d)"
nginx_pid=""
cleanup() {
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$work/www" "$work/logs" "$work/tmp"
head -c 3072 /dev/zero | tr '\0' 'k' >"$work/www/hello.txt"
chmod -R a+rX "$work"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
error_log $work/logs/error.log warn;
pid $work/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/tmp/body;
  proxy_temp_path $work/tmp/proxy;
  fastcgi_temp_path $work/tmp/fastcgi;
  uwsgi_temp_path $work/tmp/uwsgi;
  scgi_temp_path $work/tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    root $work/www;
  }
}
CONF
nginx -p "$work" -c "$work/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
url="http://127.0.0.1:$port/hello.txt"
for _ in $(seq 50); do
  curl -fsS -o /dev/null "$url" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "$url" || { echo "nginx did not come up on $url" >&2; cat "$work/logs/error.log" >&2; exit 1; }
echo "== nginx (1 worker) serving $(stat -c %s "$work/www/hello.txt") bytes at $url"

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

# Two alternating rounds, best of each: the machine is shared, so one round can be unlucky.
wrk_rps=0
hk8s_rps=0
best() { python3 -c "import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))" "$1" "$2"; }
for round in 1 2; do
  echo "== round $round: wrk -t1 -c50 -d10s"
  wrk_out="$(wrk -t1 -c50 -d10s "$url")"
  echo "$wrk_out" | grep -E 'requests in|Requests/sec|Socket errors' || true
  wrk_rps="$(best "$wrk_rps" "$(awk '/^Requests\/sec:/ {print $2}' <<<"$wrk_out")")"

  echo "== round $round: hk8s load -c 50 -t 10S"
  hk8s_json="$("$hk8s" load --json -c 50 -t 10S "$url" 2>/dev/null)"
  echo "hk8s load: $(json_field transactions <<<"$hk8s_json") transactions, $(json_field failed_transactions <<<"$hk8s_json") failed, $(json_field transaction_rate <<<"$hk8s_json") trans/sec"
  hk8s_rps="$(best "$hk8s_rps" "$(json_field transaction_rate <<<"$hk8s_json")")"
done

echo "== siege -d1 -c255 -t10S"
# A private siegerc: the classic text report, no per-request lines, no log file.
cat >"$work/siegerc" <<CONF
verbose = false
quiet = false
json_output = false
show-logfile = false
logging = false
parser = false
limit = 255
protocol = HTTP/1.1
CONF
siege_out="$(siege -R "$work/siegerc" -d1 -c255 -t10S "$url" 2>&1 || true)"
echo "$siege_out" | grep -E 'Transactions|Availability|Transaction rate|Failed' || true
siege_tx="$(grep -oE 'Transactions:[[:space:]]+[0-9]+' <<<"$siege_out" | grep -oE '[0-9]+$' || true)"
[ -n "$siege_tx" ] || { echo "could not read siege's transaction count from:" >&2; echo "$siege_out" >&2; exit 1; }

echo "== hk8s load -d1 -c255 -t10S"
hk8s_d1_json="$("$hk8s" load --json -d1 -c255 -t10S "$url" 2>/dev/null)"
hk8s_d1_tx="$(json_field transactions <<<"$hk8s_d1_json")"
echo "hk8s load: $hk8s_d1_tx transactions, $(json_field failed_transactions <<<"$hk8s_d1_json") failed"

echo
echo "== results"
python3 - "$wrk_rps" "$hk8s_rps" "$siege_tx" "$hk8s_d1_tx" <<'PY'
import sys
wrk, hk8s, siege_tx, hk8s_tx = (float(x) for x in sys.argv[1:])
print(f"throughput (best of 2)  wrk {wrk:,.0f} req/s   hk8s load {hk8s:,.0f} req/s   ratio {hk8s / wrk:.2f} (target >= 0.90)")
print(f"-d1 -c255   siege {siege_tx:,.0f} transactions   hk8s load {hk8s_tx:,.0f}   ratio {hk8s_tx / siege_tx:.2f} (target 0.90..1.10)")
PY
