#!/usr/bin/env bash
# Stops the reference control plane that reference-up.sh started in DIR: exactly the pids
# recorded in DIR/pids (each checked to still be that component, by its command line naming
# DIR), SIGTERM then SIGKILL after a grace period, scheduler and controller-manager first,
# etcd last. Never signals a process group. Safe to call twice; keeps logs, pki and etcd data.
# Usage: reference-down.sh DIR     (HK8S_REFERENCE_GRACE: seconds before SIGKILL, default 10)
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
[[ -d $1 ]] || exit 0
dir="$(cd "$1" && pwd)"
grace=${HK8S_REFERENCE_GRACE:-10}

# True while PID is alive and is the component NAME started for DIR (not a reused pid).
ours() {
  local pid=$1 name=$2 cmdline
  cmdline=$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) || return 1
  [[ $cmdline == *"/$name "* && $cmdline == *"$dir/"* ]]
}

stop() {
  local name=$1 file="$dir/pids/$1" pid waited=0
  [[ -f $file ]] || return 0
  pid=$(cat "$file")
  if ours "$pid" "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    while ours "$pid" "$name" && ((waited < grace * 10)); do
      sleep 0.1
      waited=$((waited + 1))
    done
    if ours "$pid" "$name"; then
      echo "reference-down: $name (pid $pid) ignored SIGTERM for ${grace}s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      while [[ -e /proc/$pid ]] && ours "$pid" "$name"; do sleep 0.05; done
    fi
    echo "    stopped $name (pid $pid)" >&2
  fi
  rm -f "$file"
}

for name in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$name"; done
rm -f "$dir/env"
