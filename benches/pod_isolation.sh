#!/usr/bin/env bash
# Benchmark (not a test): pods in Linux namespaces (the default as root) against plain
# processes (HK8S_SANDBOX_ISOLATION=off, the reference), each on a fresh sandbox in the same
# run: one pod's start-to-Ready, lesson 3's state (the tutorial's manifests applied -> three
# Deployments Available and a message posted and read back through the frontend's
# LoadBalancer; target < 3 s), and a Deployment of N pods (pods per second). Prints figures
# and ratios; asserts nothing.
#   benches/pod_isolation.sh [replicas (default 20)]
#   HK8S_BENCH_LESSONS=5 benches/pod_isolation.sh   # lesson 3 runs per mode (default 3; medians)
#   HK8S_BENCH_PROFILE=debug benches/pod_isolation.sh   # use the debug build (default release)
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
replicas="${1:-20}"
lessons="${HK8S_BENCH_LESSONS:-3}"
for program in redis-server kubectl curl bc; do
  command -v "$program" >/dev/null || {
    echo "pod_isolation.sh needs $program on PATH; install it and run again" >&2
    exit 1
  }
done
profile="${HK8S_BENCH_PROFILE:-release}"
target="${CARGO_TARGET_DIR:-$PWD/target}"

if [ "$profile" = release ]; then
  cargo build --release -q -p hk8s -p hello-k8s
else
  cargo build -q -p hk8s -p hello-k8s
fi
hk8s="$target/$profile/hk8s"
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l | xargs printf '%.2f'; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
rate() { echo "$replicas / $1" | bc -l | xargs printf '%.1f'; }

sandbox_pid=""
state=""
cleanup() {
  if [ -n "$sandbox_pid" ]; then
    kill "$sandbox_pid" 2>/dev/null || true
    wait "$sandbox_pid" 2>/dev/null || true
  fi
  [ -n "$state" ] && rm -rf "$state"
  sandbox_pid="" state=""
}
trap cleanup EXIT

# until SECONDS WHAT COMMAND...: retries COMMAND every 20 ms; fails the run after SECONDS.
until_ok() {
  local limit="$1" what="$2" start
  shift 2
  start=$(now)
  until "$@" >/dev/null 2>&1; do
    if (($(echo "$(now) - $start > $limit" | bc -l))); then
      echo "timed out after ${limit}s waiting for $what" >&2
      return 1
    fi
    sleep 0.02
  done
}

# message_round_trip NAMESPACE MESSAGE: the message posted through the LoadBalancer shows
# on the page read back through it.
message_round_trip() {
  local ip msg="$2"
  ip="$(kubectl get service -n "$1" frontend -o jsonpath='{.status.loadBalancer.ingress[0].ip}')"
  [ -n "$ip" ] || return 1
  curl -fsS -m 2 -o /dev/null -d "msg=$msg" "http://$ip/" || return 1
  curl -fsS -m 2 "http://$ip/" | grep -q "$msg"
}

# lesson3 NAMESPACE: the tutorial's six manifests applied -> three Deployments Available and
# a message read back through the LoadBalancer; prints "applied available total" seconds. Two
# floors are not the sandbox's: "applied" (when `kubectl apply` returns) is mostly kubectl's
# own start and its parse of the OpenAPI document before its first POST, as on any cluster,
# and the api and frontend manifests' readinessProbe initialDelaySeconds: 2.
lesson3() {
  local ns="$1" m=embedded-manifests t0 applied available msg="bench-$RANDOM$RANDOM"
  t0=$(now)
  kubectl apply -n "$ns" -f $m/01-redis-deployment.yml -f $m/02-redis-service.yml \
    -f $m/03-api-deployment.yml -f $m/04-api-service.yml \
    -f $m/05-frontend-deployment.yml -f $m/06-frontend-service.yml >/dev/null
  applied=$(since "$t0")
  kubectl wait -n "$ns" --for=condition=Available --timeout=120s \
    deployment/redis deployment/hello-k8s-api deployment/hello-k8s-frontend >/dev/null
  available=$(since "$t0")
  until_ok 60 "a message through the LoadBalancer" message_round_trip "$ns" "$msg"
  echo "$applied $available $(since "$t0")"
}

# median: the middle of the numbers on stdin (the lower middle of an even count).
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# lessons: lesson 3 $lessons times, each in a namespace of its own (the earlier runs' pods
# keep running); prints the median "applied available total" and the totals' "min max".
lessons() {
  local i runs=""
  for i in $(seq 1 "$lessons"); do
    kubectl create namespace "demo$i" >/dev/null
    runs+="$(lesson3 "demo$i")"$'\n'
    echo "    lesson 3 run $i: $(tail -n 1 <<<"${runs%$'\n'}" | awk '{ printf "apply returned %s s, Available %s s, message read back %s s", $1, $2, $3 }')" >&2
  done
  runs="${runs%$'\n'}"
  echo "$(cut -d' ' -f1 <<<"$runs" | median) $(cut -d' ' -f2 <<<"$runs" | median)" \
    "$(cut -d' ' -f3 <<<"$runs" | median) $(cut -d' ' -f3 <<<"$runs" | sort -n | head -n 1)" \
    "$(cut -d' ' -f3 <<<"$runs" | sort -n | tail -n 1)"
}

# run MODE: a fresh sandbox with isolation MODE; prints "single applied available lesson3
# lesson3-min lesson3-max scale" seconds (lesson 3's figures are medians).
run() {
  local mode="$1" kubeconfig t0 single lesson scale
  trap cleanup EXIT
  state="$(mktemp -d)"
  HK8S_SANDBOX_ISOLATION="$mode" HK8S_SANDBOX_DIR="$state/sandbox" \
    "$hk8s" sandbox up >"$state/sandbox.log" 2>&1 &
  sandbox_pid=$!
  until kubeconfig="$(HK8S_SANDBOX_DIR="$state/sandbox" "$hk8s" sandbox kubeconfig 2>/dev/null)" \
    && [ -f "$kubeconfig" ] && KUBECONFIG="$kubeconfig" kubectl get --raw /version >/dev/null 2>&1; do
    kill -0 "$sandbox_pid" 2>/dev/null || { cat "$state/sandbox.log" >&2; return 1; }
    sleep 0.05
  done
  export KUBECONFIG="$kubeconfig"
  kubectl create namespace bench >/dev/null
  echo "  isolation: $(kubectl get node hk8s-sandbox -o jsonpath='{.metadata.annotations.hk8s\.dev/pod-isolation}')" >&2
  t0=$(now)
  kubectl run -n bench one --image=hello-k8s-api:0.1.0 >/dev/null
  kubectl wait -n bench --for=condition=Ready --timeout=60s pod/one >/dev/null
  single=$(since "$t0")
  lesson=$(lessons)
  t0=$(now)
  kubectl create deployment -n bench many --image=hello-k8s-api:0.1.0 --replicas="$replicas" >/dev/null
  kubectl rollout status -n bench deployment/many --timeout=180s >/dev/null
  scale=$(since "$t0")
  cleanup
  echo "$single $lesson $scale"
}

# The api and frontend manifests' readinessProbe initialDelaySeconds: no pod is Ready sooner.
readiness_delay=2
echo "build: $profile" >&2
echo "namespace mode:" >&2
ns=$(run on)
echo "process mode (reference):" >&2
pr=$(run off)
read -r ns_single ns_applied ns_available ns_lesson ns_min ns_max ns_scale <<<"$ns"
read -r pr_single pr_applied pr_available pr_lesson pr_min pr_max pr_scale <<<"$pr"
printf '%-34s %12s %12s %8s\n' "" namespaces processes ratio
printf '%-34s %10s s %10s s %8s\n' "one pod created -> Ready" "$ns_single" "$pr_single" "$(ratio "$ns_single" "$pr_single")"
printf '%-34s %10s s %10s s %8s\n' "lesson 3 (median of $lessons): applied" "$ns_applied" "$pr_applied" "$(ratio "$ns_applied" "$pr_applied")"
printf '%-34s %10s s %10s s %8s\n' "  3 Deployments Available" "$ns_available" "$pr_available" "$(ratio "$ns_available" "$pr_available")"
printf '%-34s %10s s %10s s %8s\n' "  + message via LB (target < 3 s)" "$ns_lesson" "$pr_lesson" "$(ratio "$ns_lesson" "$pr_lesson")"
printf '%-34s %12s %12s\n' "    fastest - slowest run" "$ns_min-$ns_max s" "$pr_min-$pr_max s"
# What the sandbox itself adds: Available minus kubectl's share and the probes' 2 s delay.
ns_share=$(echo "$ns_available - $ns_applied - $readiness_delay" | bc -l | xargs printf '%.2f')
pr_share=$(echo "$pr_available - $pr_applied - $readiness_delay" | bc -l | xargs printf '%.2f')
printf '%-34s %10s s %10s s %8s\n' "  sandbox's share of Available" "$ns_share" "$pr_share" "$(ratio "$ns_share" "$pr_share")"
printf '%-34s %10s s %10s s %8s\n' "$replicas pods created -> Ready" "$ns_scale" "$pr_scale" "$(ratio "$ns_scale" "$pr_scale")"
printf '%-34s %8s/s %8s/s %8s\n' "  pods per second" "$(rate "$ns_scale")" "$(rate "$pr_scale")" "$(ratio "$(rate "$ns_scale")" "$(rate "$pr_scale")")"
echo "lesson 3 against its 3 s target (median; slowest run): namespaces $(ratio "$ns_lesson" 3)x;" \
  "$(ratio "$ns_max" 3)x, processes $(ratio "$pr_lesson" 3)x; $(ratio "$pr_max" 3)x"
