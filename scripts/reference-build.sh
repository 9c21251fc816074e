#!/usr/bin/env bash
# Builds the reference control plane (real kube-apiserver, kube-controller-manager,
# kube-scheduler and etcd from reference/go.mod) into a cache outside the repository and
# reuses it while go.mod, go.sum, the main files and the build flags are unchanged.
# Progress goes to stderr; the only line on stdout is the bin directory, so callers can do
# `bin=$(scripts/reference-build.sh)`. Test tooling: never shipped to learners.
#
# Environment: HK8S_REFERENCE_CACHE overrides the cache directory (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/hk8s/reference/<kubernetes version>); GOCACHE and
# GOMODCACHE are honoured as usual (the cold-build benchmark points them at empty dirs).
set -euo pipefail
module_dir="$(cd "$(dirname "$0")/../reference" && pwd)"
binaries=(kube-apiserver kube-controller-manager kube-scheduler etcd)

log() { printf '%s\n' "$*" >&2; }
die() { log "reference-build: $*"; exit 1; }

command -v go >/dev/null || die "go is not on PATH; the reference control plane is built from Go modules (Go >= 1.26)"
k8s_version=$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$module_dir/go.mod")
[[ $k8s_version =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "cannot read the k8s.io/kubernetes version from $module_dir/go.mod (got '$k8s_version')"
k8s_major=${BASH_REMATCH[1]}
k8s_minor=${BASH_REMATCH[2]}
cache="${HK8S_REFERENCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hk8s/reference/$k8s_version}"
bin="$cache/bin"

# Kubernetes' own release flags (hack/lib/golang.sh, hack/lib/version.sh): static, trimmed,
# stripped, tags selinux,notest,grpcnotrace, version stamped into client-go and component-base.
# The module proxy serves no git metadata, so gitCommit stays empty and the tree state is
# "archive", as Kubernetes reports for a source tree exported without git.
k8s_tags="selinux,notest,grpcnotrace"
version_vars() {
  local build_date=$1 pkg
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    printf -- "-X '%s.%s=%s' " \
      "$pkg" gitVersion "$k8s_version" "$pkg" gitMajor "$k8s_major" "$pkg" gitMinor "$k8s_minor" \
      "$pkg" gitTreeState archive "$pkg" gitCommit "" "$pkg" buildDate "$build_date"
  done
}
flags_id="CGO_ENABLED=0 -trimpath -buildvcs=false -tags=$k8s_tags -ldflags=$(version_vars DATE) -s -w"

stamp() {
  {
    go env GOVERSION GOOS GOARCH
    printf '%s\n' "$flags_id"
    cd "$module_dir" && sha256sum go.mod go.sum cmd/*/main.go
  } | sha256sum | cut -d' ' -f1
}

up_to_date() {
  local name
  for name in "${binaries[@]}"; do [[ -x "$bin/$name" ]] || return 1; done
  [[ -f "$cache/stamp" && "$(cat "$cache/stamp")" == "$want" ]]
}

# Prints the module-proxy diagnosis when go's output shows a refused or missing module.
explain_go_failure() {
  if grep -qE 'GOPROXY|proxy\.golang\.org|reading https?://|(403|404|410) (Forbidden|Not Found|Gone)|verifying module|unknown revision|invalid version' <<<"$1"; then
    log "reference-build: the Go module proxy refused or could not serve a module (exact error above)."
    log "reference-build: the reference control plane cannot be built; nothing is substituted for it."
  fi
}

# Runs a go command in the module, timing it; on failure prints go's exact output and exits.
run_go() {
  local what=$1 started out
  shift
  started=$(date +%s%N)
  if ! out=$(cd "$module_dir" && nice -n 10 env CGO_ENABLED=0 go "$@" 2>&1); then
    log "$out"
    log "reference-build: FAILED: $what (go $*)"
    explain_go_failure "$out"
    exit 1
  fi
  out=$(sed '/^$/d' <<<"$out")
  [[ -z $out ]] || log "$out"
  log "    $what: $(( ($(date +%s%N) - started) / 1000000 )) ms"
}

build() {
  local tmp="$cache/bin.tmp.$$" build_date name started
  rm -rf "$tmp"
  mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  started=$(date +%s%N)
  log "--- reference: building Kubernetes $k8s_version into $bin ($(go env GOVERSION), GOCACHE=$(go env GOCACHE))"
  run_go "resolve and download modules" list -mod=readonly -deps -f '{{with .Error}}{{.}}{{end}}' ./cmd/...
  build_date=$(cd "$module_dir" && go list -mod=readonly -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
  for name in "${binaries[@]}"; do
    log "--- reference: go build $name"
    run_go "$name" build -mod=readonly -trimpath -buildvcs=false -tags="$k8s_tags" \
      -ldflags="all=$(version_vars "$build_date") -s -w" -o "$tmp/$name" "./cmd/$name"
  done
  rm -rf "$bin"
  mv "$tmp" "$bin"
  trap - EXIT
  printf '%s\n' "$want" >"$cache/stamp"
  log "--- reference: built in $(( ($(date +%s%N) - started) / 1000000 )) ms total"
}

mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
want=$(stamp)
if up_to_date; then
  log "--- reference: Kubernetes $k8s_version binaries are up to date in $bin"
else
  build
fi
printf '%s\n' "$bin"
