#!/usr/bin/env bash
# Refreshes the OpenAPI v3 documents the sandbox serves (sandbox/src/apiserver/openapi/v3/)
# from Kubernetes' own published specification (api/openapi-spec/v3 of k8s.io/kubernetes),
# minified and gzipped. Needs Go (for `go mod download`) and python3.
# Usage: bash scripts/openapi-v3.sh [version, default v1.37.2]
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-v1.37.2}
dir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$version" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
out=sandbox/src/apiserver/openapi/v3
# The group versions the sandbox serves or is about to serve; the server publishes only those
# it serves, with the paths of its served resources.
for gv in api__v1 apis__apps__v1 apis__autoscaling__v1 apis__autoscaling__v2 apis__batch__v1 \
  apis__discovery.k8s.io__v1 apis__storage.k8s.io__v1 apis__coordination.k8s.io__v1 \
  apis__apiextensions.k8s.io__v1 apis__authorization.k8s.io__v1 apis__authentication.k8s.io__v1 \
  apis__networking.k8s.io__v1 apis__policy__v1 apis__rbac.authorization.k8s.io__v1 \
  apis__apiregistration.k8s.io__v1; do
  python3 -c 'import json, sys; json.dump(json.load(open(sys.argv[1])), sys.stdout, separators=(",", ":"))' \
    "$dir/api/openapi-spec/v3/${gv}_openapi.json" | gzip -9n >"$out/$gv.json.gz"
done
echo "wrote $(ls "$out" | wc -l) documents from k8s.io/kubernetes@$version to $out"
