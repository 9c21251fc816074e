#!/usr/bin/env bash
# Sandbox API benchmark (prints figures, asserts nothing): time from `hk8s sandbox up` to
# the first answer, then p50/p99 of GET, LIST and watch delivery with 1,000 objects.
# Targets: ready < 300 ms, p99 GET < 5 ms. For scale: kind ~33 s, k3d ~20 s to a cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet -p hk8s --bin hk8s
cargo build --release --quiet -p hk8s-sandbox --example bench
state="$(mktemp -d)/sandbox"
trap 'target/release/hk8s sandbox down --state-dir "$state" >/dev/null 2>&1 || true' EXIT

echo "--- hk8s sandbox up --detach, then kubectl until it answers"
start=$(date +%s%N)
target/release/hk8s sandbox up --detach --state-dir "$state" >/dev/null
until KUBECONFIG="$state/kubeconfig" kubectl get --raw /version >/dev/null 2>&1; do sleep 0.005; done
end=$(date +%s%N)
echo "up -> first kubectl answer: $(( (end - start) / 1000000 )) ms (includes kubectl's own start-up)"
target/release/hk8s sandbox down --state-dir "$state" >/dev/null

echo "--- in-process, through kube-rs over HTTPS"
target/release/examples/bench
