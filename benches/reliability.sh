#!/usr/bin/env bash
# Sandbox memory and latency under load (prints figures, asserts nothing), issue 13:
#   - RSS after start, after 400 patches of a ~1 MiB ConfigMap, after create/delete churn of
#     $CHURN small ConfigMaps, each as a ratio to the RSS measured after start in this run;
#   - GET, LIST (of 1,000 ConfigMaps) and PATCH latency, p50/p99, at 1, 8 and 32 clients,
#     with ratios to the 1-client figure of this run.
# Targets from the issue: RSS under 200 MB in both runs; LIST of 1,000 p50 under 10 ms with
# one client. Clients are Python stdlib HTTPS connections (keep-alive), so the latencies
# include the client's own overhead. HK8S_BIN picks another build (default: release).
set -euo pipefail
cd "$(dirname "$0")/.."

CHURN="${CHURN:-50000}"
PATCHES="${PATCHES:-400}"
if [ -z "${HK8S_BIN:-}" ]; then
  cargo build --release --quiet -p hk8s --bin hk8s
  HK8S_BIN=target/release/hk8s
fi
state="$(mktemp -d)/sandbox"
trap '"$HK8S_BIN" sandbox down --state-dir "$state" >/dev/null 2>&1 || true' EXIT

"$HK8S_BIN" sandbox up --detach --state-dir "$state" >/dev/null
pid=$(head -n1 "$state/sandbox.lock")
echo "sandbox pid $pid ($HK8S_BIN), churn $CHURN, patches $PATCHES"

python3 - "$state" "$pid" "$CHURN" "$PATCHES" <<'PY'
import base64, http.client, json, os, re, ssl, sys, tempfile, threading, time

state, pid, churn, patches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
kubeconfig = open(os.path.join(state, "kubeconfig")).read()
server = re.search(r"server:\s*(\S+)", kubeconfig).group(1)
host, port = server.removeprefix("https://").rsplit(":", 1)
token = open(os.path.join(state, "token")).read().strip()
ca = tempfile.NamedTemporaryFile("w", suffix=".crt", delete=False)
ca.write(open(os.path.join(state, "ca.crt")).read()); ca.close()
ctx = ssl.create_default_context(cafile=ca.name)
NS = "/api/v1/namespaces/default/configmaps"

def conn():
    return http.client.HTTPSConnection(host, int(port), context=ctx)

def call(c, method, path, body=None, ctype="application/json"):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": ctype}
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse(); data = r.read()
    if r.status >= 300 and r.status != 404:
        raise RuntimeError(f"{method} {path}: {r.status} {data[:200]!r}")
    return data

def rss_mb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")

def settle():
    time.sleep(3)
    return rss_mb()

base = settle()
print(f"RSS after start:            {base:7.1f} MB")

c = conn()
value = "v" * 1_000_000
call(c, "POST", NS, json.dumps({"metadata": {"name": "big"}, "data": {"blob": value}}))
for i in range(patches):
    call(c, "PATCH", f"{NS}/big", json.dumps({"data": {"n": str(i)}}), "application/merge-patch+json")
call(c, "DELETE", f"{NS}/big")
storm = settle()
print(f"RSS after {patches} x 1 MiB patches: {storm:7.1f} MB  ({storm / base:.2f}x start)")

def churner(lo, hi):
    c = conn()
    for i in range(lo, hi):
        call(c, "POST", NS, json.dumps({"metadata": {"name": f"churn-{i}"}, "data": {"k": "x" * 200}}))
        call(c, "DELETE", f"{NS}/churn-{i}")
threads = [threading.Thread(target=churner, args=(k * churn // 8, (k + 1) * churn // 8)) for k in range(8)]
t0 = time.time()
[t.start() for t in threads]; [t.join() for t in threads]
after = settle()
print(f"RSS after {churn} create+delete: {after:7.1f} MB  ({after / base:.2f}x start, {churn * 2 / (time.time() - t0):.0f} writes/s)")

c = conn()  # the storm's connection sat idle through the churn; the server closes idle ones
for i in range(1000):
    call(c, "POST", NS, json.dumps({"metadata": {"name": f"obj-{i:04}"}, "data": {"k": "x" * 100}}))

def measure(kind, clients, per_client):
    lat = []; lock = threading.Lock()
    def worker(k):
        c = conn(); mine = []
        for i in range(per_client):
            t = time.perf_counter()
            if kind == "GET":
                call(c, "GET", f"{NS}/obj-{(k * 31 + i) % 1000:04}")
            elif kind == "LIST":
                call(c, "GET", NS)
            else:
                call(c, "PATCH", f"{NS}/obj-{(k * 31 + i) % 1000:04}", json.dumps({"data": {"n": str(i)}}), "application/merge-patch+json")
            mine.append((time.perf_counter() - t) * 1000)
        with lock: lat.extend(mine)
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    [t.start() for t in ts]; [t.join() for t in ts]
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]

for kind, n in (("GET", 400), ("LIST", 40), ("PATCH", 200)):
    ref = None
    for clients in (1, 8, 32):
        p50, p99 = measure(kind, clients, max(5, n // clients))
        ref = ref or (p50, p99)
        print(f"{kind:5} {clients:2} clients: p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  ({p50 / ref[0]:.1f}x / {p99 / ref[1]:.1f}x the 1-client figures)")
print(f"RSS at the end:             {rss_mb():7.1f} MB  ({rss_mb() / base:.2f}x start)")
PY
