#!/usr/bin/env bash
# Benchmark (not a test): how fast the sandbox reaches lesson 3's state, and how many pods it
# starts per second. Prints figures; asserts nothing.
#   benches/runtime.sh [replicas-for-the-scale-run (default 20)]
set -euo pipefail
cd "$(dirname "$0")/.."
replicas="${1:-20}"

cargo build --release -q -p hk8s -p hello-k8s
hk8s="$PWD/target/release/hk8s"
state="$(mktemp -d)"
export HK8S_SANDBOX_DIR="$state/sandbox"
cleanup() {
  [ -n "${sandbox_pid:-}" ] && kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l | xargs printf '%.2f'; }

t_up=$(now)
"$hk8s" sandbox up >"$state/sandbox.log" 2>&1 &
sandbox_pid=$!
until kubeconfig="$("$hk8s" sandbox kubeconfig 2>/dev/null)" && [ -f "$kubeconfig" ] \
  && KUBECONFIG="$kubeconfig" kubectl get --raw /version >/dev/null 2>&1; do
  kill -0 "$sandbox_pid" 2>/dev/null || { cat "$state/sandbox.log"; exit 1; }
  sleep 0.05
done
echo "sandbox up and answering:            $(since "$t_up") s"
export KUBECONFIG="$kubeconfig"
kubectl create namespace demo >/dev/null

m=embedded-manifests
t0=$(now)
kubectl apply -n demo -f $m/02-redis-service.yml -f $m/04-api-service.yml -f $m/06-frontend-service.yml \
  -f $m/01-redis-deployment.yml -f $m/03-api-deployment.yml -f $m/05-frontend-deployment.yml >/dev/null
kubectl wait -n demo --for=condition=Available --timeout=120s \
  deployment/redis deployment/hello-k8s-api deployment/hello-k8s-frontend >/dev/null
lesson3=$(since "$t0")
echo "lesson 3 applied -> 3 deployments Available: ${lesson3} s (target < 3 s; kind needs ~33 s just to start)"

t1=$(now)
kubectl scale -n demo deployment/hello-k8s-frontend --replicas="$replicas" >/dev/null
kubectl rollout status -n demo deployment/hello-k8s-frontend --timeout=180s >/dev/null
scale=$(since "$t1")
started=$((replicas - 1))
echo "scaled the frontend 1 -> $replicas ready pods: ${scale} s ($(echo "$started / $scale" | bc -l | xargs printf '%.1f') pods started and ready per second)"
echo "limits enforcement: $(kubectl get node hk8s-sandbox -o jsonpath='{.metadata.annotations.hk8s\.dev/limit-enforcement}')"
