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

# Times a cold release build of the checkout in $1; prints "wall_s cpu_s" (CPU is user +
# system time of cargo and the compilers, which other load on the machine disturbs less).
cold_build() {
    local dir=$1 target="$work/target"
    rm -rf "$target"
    local TIMEFORMAT='%R %U %S' real user sys
    if ! { time (cd "$dir" && env -u RUSTC_WRAPPER CARGO_TARGET_DIR="$target" \
        cargo build --release --workspace --locked --quiet 2>"$work/cargo.err"); } 2>"$work/time"; then
        cat "$work/cargo.err" >&2
        exit 1
    fi
    rm -rf "$target"
    read -r real user sys <"$work/time"
    awk -v r="$real" -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f %.0f\n", r, u + s }'
}

minutes() {
    printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
}

echo "cold cargo build --release --workspace --locked, $(nproc) cores, $(rustc --version)"
echo "  (load average before: $(cut -d' ' -f1-3 /proc/loadavg); other work on the machine inflates wall time)"
read -r current_wall current_cpu < <(cold_build "$root")
echo "  current  $current_rev: $(minutes "$current_wall") wall, ${current_cpu} s CPU"
read -r baseline_wall baseline_cpu < <(cold_build "$work/baseline")
echo "  baseline $baseline_rev: $(minutes "$baseline_wall") wall, ${baseline_cpu} s CPU"
awk -v cw="$current_wall" -v bw="$baseline_wall" -v cc="$current_cpu" -v bc="$baseline_cpu" \
    'BEGIN { printf "  current/baseline: %.2f wall, %.2f CPU\n", cw / bw, cc / bc }'
