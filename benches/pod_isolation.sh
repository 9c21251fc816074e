#!/usr/bin/env bash
# Benchmark (not a test): pod start-to-Ready time and pods per second with pods in Linux
# namespaces (the default as root) against plain processes (HK8S_SANDBOX_ISOLATION=off),
# each on a fresh sandbox in the same run. Prints figures and the ratio; asserts nothing.
#   benches/pod_isolation.sh [replicas (default 20)]
set -euo pipefail
cd "$(dirname "$0")/.."
replicas="${1:-20}"

cargo build --release -q -p hk8s -p hello-k8s
hk8s="$PWD/target/release/hk8s"
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l | xargs printf '%.2f'; }

# run MODE: starts a sandbox (isolation MODE), measures one pod's start-to-Ready and a
# Deployment of $replicas pods, prints "single scale" seconds on the last line.
run() {
  local mode="$1" state sandbox_pid kubeconfig t0 single scale
  state="$(mktemp -d)"
  HK8S_SANDBOX_ISOLATION="$mode" HK8S_SANDBOX_DIR="$state/sandbox" \
    "$hk8s" sandbox up >"$state/sandbox.log" 2>&1 &
  sandbox_pid=$!
  until kubeconfig="$(HK8S_SANDBOX_DIR="$state/sandbox" "$hk8s" sandbox kubeconfig 2>/dev/null)" \
    && [ -f "$kubeconfig" ] && KUBECONFIG="$kubeconfig" kubectl get --raw /version >/dev/null 2>&1; do
    kill -0 "$sandbox_pid" 2>/dev/null || { cat "$state/sandbox.log" >&2; exit 1; }
    sleep 0.05
  done
  export KUBECONFIG="$kubeconfig"
  kubectl create namespace demo >/dev/null
  echo "  isolation: $(kubectl get node hk8s-sandbox -o jsonpath='{.metadata.annotations.hk8s\.dev/pod-isolation}')" >&2
  t0=$(now)
  kubectl run -n demo one --image=hello-k8s-api:0.1.0 >/dev/null
  kubectl wait -n demo --for=condition=Ready --timeout=60s pod/one >/dev/null
  single=$(since "$t0")
  t0=$(now)
  kubectl create deployment -n demo many --image=hello-k8s-api:0.1.0 --replicas="$replicas" >/dev/null
  kubectl rollout status -n demo deployment/many --timeout=180s >/dev/null
  scale=$(since "$t0")
  kill "$sandbox_pid"; wait "$sandbox_pid" 2>/dev/null || true
  rm -rf "$state"
  echo "$single $scale"
}

echo "namespace mode:" >&2
read -r ns_single ns_scale < <(run on | tail -1)
echo "process mode:" >&2
read -r pr_single pr_scale < <(run off | tail -1)
rate() { echo "$replicas / $1" | bc -l | xargs printf '%.1f'; }
echo "one pod created -> Ready:   namespaces ${ns_single} s, processes ${pr_single} s (ratio $(echo "$ns_single / $pr_single" | bc -l | xargs printf '%.2f'))"
echo "$replicas pods created -> Ready: namespaces ${ns_scale} s ($(rate "$ns_scale") pods/s), processes ${pr_scale} s ($(rate "$pr_scale") pods/s), ratio $(echo "$ns_scale / $pr_scale" | bc -l | xargs printf '%.2f')"
