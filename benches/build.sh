#!/usr/bin/env bash
# Build-time benchmark (prints figures, asserts nothing): the newcomer's first build, a
# cold `cargo build --release --workspace --locked` (an empty target directory; the
# registry cache may stay warm, downloads are not timed) of this checkout and of a baseline
# commit, one after the other in the same run, with the wall time of each and their ratio.
# Target: at most 6 minutes on 2 cores (the baseline took 10m47s).
#
#   bash benches/build.sh                     # against 0ef7516, before the build diet
#   bash benches/build.sh --baseline <rev>    # against any commit
#
# It takes two full builds (about 20 minutes on 2 cores) and needs a few GB in $TMPDIR.
set -euo pipefail

baseline=0ef7516
while [[ $# -gt 0 ]]; do
    case "$1" in
        --baseline)
            baseline="${2:?--baseline needs a commit}"
            shift 2
            ;;
        -h | --help)
            sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "unknown argument: $1 (see --help)" >&2
            exit 2
            ;;
    esac
done

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=$(mktemp -d "${TMPDIR:-/tmp}/hk8s-build-bench.XXXXXX")
cleanup() {
    git -C "$root" worktree remove --force "$work/baseline" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

git -C "$root" worktree add --detach --quiet "$work/baseline" "$baseline"
baseline_rev=$(git -C "$work/baseline" rev-parse --short HEAD)
current_rev=$(git -C "$root" rev-parse --short HEAD)
if [[ -n $(git -C "$root" status --porcelain --untracked-files=no) ]]; then
    current_rev="$current_rev+changes"
fi

# Downloads first, so that only compiling is timed.
(cd "$root" && cargo fetch --locked --quiet)
(cd "$work/baseline" && cargo fetch --locked --quiet)

# Prints the milliseconds a cold release build of the checkout in $1 takes.
cold_build_ms() {
    local dir=$1 target="$work/target"
    rm -rf "$target"
    local start end
    start=$(date +%s%N)
    (cd "$dir" && env -u RUSTC_WRAPPER CARGO_TARGET_DIR="$target" \
        cargo build --release --workspace --locked --quiet)
    end=$(date +%s%N)
    rm -rf "$target"
    echo $(((end - start) / 1000000))
}

minutes() {
    local ms=$1
    printf '%dm%02ds' $((ms / 60000)) $(((ms / 1000) % 60))
}

echo "cold cargo build --release --workspace --locked, $(nproc) cores, $(rustc --version)"
current_ms=$(cold_build_ms "$root")
echo "  current  $current_rev: $(minutes "$current_ms") ($((current_ms / 1000)) s)"
baseline_ms=$(cold_build_ms "$work/baseline")
echo "  baseline $baseline_rev: $(minutes "$baseline_ms") ($((baseline_ms / 1000)) s)"
awk -v c="$current_ms" -v b="$baseline_ms" \
    'BEGIN { printf "  current/baseline: %.2f (%.0f%% less time)\n", c / b, (1 - c / b) * 100 }'
