#!/usr/bin/env bash
# Reference control plane benchmark (prints figures, asserts nothing): the warm no-op build
# (cache hit), launch-to-ready of reference-up.sh (etcd, kube-apiserver, controller-manager,
# scheduler until /readyz is ok and kubectl works) and reference-down.sh, and, when
# target/release/hk8s exists, the sandbox's launch-to-first-kubectl-answer for a ratio.
# --cold also builds from nothing (empty GOCACHE, GOMODCACHE and binary cache in temp dirs),
# which takes tens of minutes on 2 cores.
# Usage: bash benches/reference.sh [--cold] [RUNS]     (RUNS of up/down, default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
cold=false
[[ ${1:-} == --cold ]] && { cold=true; shift; }
runs=${1:-3}
work=$(mktemp -d)
cleanup() {
  for d in "$work"/up.*; do [[ -d $d ]] && scripts/reference-down.sh "$d" 2>/dev/null; done
  [[ -d $work/gomodcache ]] && chmod -R u+w "$work/gomodcache"
  rm -rf "$work"
}
trap cleanup EXIT
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

if $cold; then
  echo "--- cold build: empty GOCACHE, GOMODCACHE and binary cache"
  start=$(date +%s%N)
  HK8S_REFERENCE_CACHE="$work/cold-cache" GOCACHE="$work/gocache" GOMODCACHE="$work/gomodcache" \
    scripts/reference-build.sh >/dev/null
  echo "cold build (modules downloaded, all four binaries compiled): $(ms_since "$start") ms"
  echo "  Go build cache $(du -sh "$work/gocache" | cut -f1), module cache $(du -sh "$work/gomodcache" | cut -f1)"
fi

echo "--- reference-build.sh (builds once if the cache is missing or stale)"
start=$(date +%s%N)
bin=$(scripts/reference-build.sh 2>/dev/null)
echo "first call: $(ms_since "$start") ms"
start=$(date +%s%N)
scripts/reference-build.sh >/dev/null 2>&1
echo "warm no-op build: $(ms_since "$start") ms"
echo "binary cache: $(du -sh "$(dirname "$bin")" | cut -f1) in $(dirname "$bin")"

echo "--- reference-up.sh to ready, then reference-down.sh ($runs runs)"
ups="" downs=""
for i in $(seq "$runs"); do
  d="$work/up.$i"
  start=$(date +%s%N)
  HK8S_REFERENCE_BIN=$bin scripts/reference-up.sh "$d" >/dev/null 2>"$work/up.$i.log" || {
    cat "$work/up.$i.log" >&2
    exit 1
  }
  up=$(ms_since "$start")
  start=$(date +%s%N)
  scripts/reference-down.sh "$d" 2>/dev/null
  down=$(ms_since "$start")
  echo "run $i: up to ready $up ms, down $down ms"
  ups="$ups $up" downs="$downs $down"
done
up_median=$(median <<<"$ups")
echo "warm start to ready (median of $runs): $up_median ms; down: $(median <<<"$downs") ms"

if [[ -x target/release/hk8s ]]; then
  echo "--- hk8s sandbox up --detach, then kubectl until it answers (same run, for the ratio)"
  state="$work/sandbox"
  start=$(date +%s%N)
  target/release/hk8s sandbox up --detach --state-dir "$state" >/dev/null
  until KUBECONFIG="$state/kubeconfig" kubectl get --raw /version >/dev/null 2>&1; do sleep 0.005; done
  sandbox=$(ms_since "$start")
  target/release/hk8s sandbox down --state-dir "$state" >/dev/null
  echo "sandbox up to first kubectl answer: $sandbox ms; reference/sandbox: $(awk -v r="$up_median" -v s="$sandbox" 'BEGIN { printf "%.1fx", r / s }')"
fi
