#!/usr/bin/env bash
# Runs one lesson on the built-in sandbox from a fresh checkout: installs redis-server when
# missing (Debian/Ubuntu via apt-get, macOS via Homebrew), builds hk8s and the app, then runs
# `hk8s lesson N --sandbox --yes`. Usage: bash scripts/quickstart.sh [LESSON] [hk8s options]
set -euo pipefail
cd "$(dirname "$0")/.."
lesson=${1:-3}
shift || true

if ! command -v redis-server >/dev/null; then
  echo "--- redis-server is missing (the sandbox runs the tutorial's Redis pods with it); installing"
  if command -v apt-get >/dev/null; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends redis-server
  elif command -v brew >/dev/null; then
    brew install redis
  else
    echo "install redis-server with your package manager, then run this again" >&2
    exit 1
  fi
fi

echo "--- building hk8s and the hello-k8s app (release; the first build takes a few minutes)"
cargo build --release --workspace --locked
exec ./target/release/hk8s lesson "$lesson" --sandbox --yes "$@"
