#!/usr/bin/env bash
# Starts the reference control plane (real etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler, built by reference-build.sh) on loopback with free ports and throwaway
# certificates, all state under DIR:
#   DIR/kubeconfig   admin (static token, group system:masters)
#   DIR/env          shell-sourceable: ports, pids, paths, token (names start REFERENCE_)
#   DIR/pki/         CA, serving and client certificates, service-account key pair, tokens
#   DIR/logs/        one log per component
# Waits until /readyz is ok, the controller-manager and scheduler are healthy (and hold
# their leases when leader election is on), and the default namespaces and ServiceAccount
# exist; then prints the kubeconfig path as the only line on stdout. Stop with
# reference-down.sh DIR. Test tooling: never shipped to learners.
#
# Usage: reference-up.sh DIR
# Environment:
#   HK8S_REFERENCE_BIN           directory with the four binaries (default: run reference-build.sh)
#   HK8S_REFERENCE_TIMEOUT       seconds from launch to ready before giving up (default 180)
#   HK8S_REFERENCE_LEADER_ELECT  true|false for the controller-manager and scheduler (default true:
#                                it costs ~30 ms on a fresh etcd and gives the leases a cluster has)
#   HK8S_REFERENCE_SA_CREDENTIALS  true|false: --use-service-account-credentials of the
#                                controller-manager (default true, as kubeadm and kind; false
#                                saves ~5 s of start-up on 2 cores but runs every controller as
#                                system:kube-controller-manager)
#   HK8S_REFERENCE_ADVERTISE     --advertise-address of kube-apiserver, written to the kubernetes
#                                Service's endpoints (default: the host's address on the default
#                                route; kube-apiserver refuses a loopback address here)
#   HK8S_REFERENCE_SERVICE_CIDR  --service-cluster-ip-range (default 10.96.0.0/16); a node joined
#                                to the reference sets it to the range its proxy serves (the
#                                sandbox's NodeNetwork::service_cidr, e.g. 198.19.7.0/24)
set -euo pipefail
scripts="$(cd "$(dirname "$0")" && pwd)"
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
timeout_s=${HK8S_REFERENCE_TIMEOUT:-180}
leader_elect=${HK8S_REFERENCE_LEADER_ELECT:-true}
sa_credentials=${HK8S_REFERENCE_SA_CREDENTIALS:-true}
service_cidr=${HK8S_REFERENCE_SERVICE_CIDR:-10.96.0.0/16}
# The kubernetes Service's cluster IP: the range's first address.
service_ip=$(python3 -c 'import ipaddress, sys; print(next(ipaddress.ip_network(sys.argv[1]).hosts()))' "$service_cidr") || {
  echo "reference-up: HK8S_REFERENCE_SERVICE_CIDR=$service_cidr is not a CIDR" >&2
  exit 2
}

log() { printf '%s\n' "$*" >&2; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

for pid_file in "$dir"/pids/*; do
  if [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    log "reference-up: $dir already holds a running control plane (run reference-down.sh $dir first)"
    exit 1
  fi
done
bin=${HK8S_REFERENCE_BIN:-$("$scripts/reference-build.sh")}
for name in etcd kube-apiserver kube-controller-manager kube-scheduler; do
  [[ -x "$bin/$name" ]] || { log "reference-up: $bin/$name is missing (run scripts/reference-build.sh)"; exit 1; }
done
command -v openssl >/dev/null || { log "reference-up: openssl is required for the throwaway certificates"; exit 1; }
command -v curl >/dev/null || { log "reference-up: curl is required for the readiness checks"; exit 1; }
started_ms=$(now_ms)

# shellcheck source=scripts/reference-pki.sh
source "$scripts/reference-pki.sh"

# Prints N distinct free loopback ports (all held open together so they differ).
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}

default_advertise() {
  local addr
  addr=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -1) || true
  [[ -n $addr ]] || addr=$(hostname -I 2>/dev/null | awk '{print $1}') || true
  printf '%s\n' "${addr:-203.0.113.1}"
}

write_kubeconfig() {
  local file=$1 user=$2 token=$3
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: reference
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $dir/pki/ca.crt
users:
- name: $user
  user:
    token: $token
contexts:
- name: reference
  context:
    cluster: reference
    user: $user
current-context: reference
EOF
  chmod 600 "$file"
}

write_env() {
  local key
  : >"$dir/env.tmp"
  for key in DIR BIN VERSION SERVER KUBECONFIG TOKEN CA_CERT CA_KEY SERVICE_CIDR ADVERTISE_ADDRESS \
    ETCD_PORT ETCD_PEER_PORT APISERVER_PORT CONTROLLER_MANAGER_PORT SCHEDULER_PORT \
    ETCD_PID APISERVER_PID CONTROLLER_MANAGER_PID SCHEDULER_PID LOGS; do
    [[ -n ${ref[$key]+x} ]] && printf 'REFERENCE_%s=%q\n' "$key" "${ref[$key]}" >>"$dir/env.tmp"
  done
  mv "$dir/env.tmp" "$dir/env"
}

# Starts one component in the background with its log under logs/, records its pid.
launch() {
  local name=$1 pid
  shift
  "$bin/$name" "$@" >"$dir/logs/$name.log" 2>&1 </dev/null &
  pid=$!
  printf '%s\n' "$pid" >"$dir/pids/$name"
  log "    started $name (pid $pid)"
}

# Polls CHECK (a command) until it succeeds; fails when the component NAME exits or time runs out.
wait_for() {
  local what=$1 name=$2 pid
  shift 2
  pid=$(cat "$dir/pids/$name")
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "reference-up: $name exited while waiting for $what; last lines of $dir/logs/$name.log:"
      tail -n 25 "$dir/logs/$name.log" >&2
      return 1
    fi
    if (( $(now_ms) - started_ms > timeout_s * 1000 )); then
      log "reference-up: timed out after ${timeout_s}s waiting for $what; last lines of $dir/logs/$name.log:"
      tail -n 25 "$dir/logs/$name.log" >&2
      return 1
    fi
    sleep 0.1
  done
  log "    $what after $(( $(now_ms) - started_ms )) ms"
}

# The checks below run through wait_for.
# shellcheck disable=SC2317
api_get() { curl -sfk --max-time 5 -H "Authorization: Bearer $admin_token" "https://127.0.0.1:$api_port$1"; }
# shellcheck disable=SC2317
healthz_ok() { [[ "$(curl -sk --max-time 5 "https://127.0.0.1:$1/healthz")" == ok ]]; }
# shellcheck disable=SC2317
readyz_ok() { [[ "$(api_get /readyz)" == ok ]]; }
# shellcheck disable=SC2317
namespaces_exist() {
  local ns
  for ns in default kube-system kube-public kube-node-lease; do api_get "/api/v1/namespaces/$ns" || return 1; done
}
# shellcheck disable=SC2317
lease_held() { api_get "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/$1" | grep -q '"holderIdentity"'; }

start_etcd() {
  launch etcd --name=reference --data-dir="$dir/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster="reference=http://127.0.0.1:$etcd_peer_port" --initial-cluster-state=new \
    --unsafe-no-fsync --heartbeat-interval=10 --election-timeout=100 --log-level=warn
  wait_for "etcd /health" etcd curl -sf --max-time 5 "http://127.0.0.1:$etcd_port/health"
}

start_apiserver() {
  local pki="$dir/pki"
  launch kube-apiserver --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --secure-port="$api_port" --advertise-address="${ref[ADVERTISE_ADDRESS]}" \
    --cert-dir="$pki/apiserver-certs" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --token-auth-file="$pki/tokens.csv" \
    --authorization-mode=Node,RBAC --allow-privileged=true \
    --service-cluster-ip-range="$service_cidr" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname \
    --requestheader-client-ca-file="$pki/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key"
}

start_controllers() {
  local pki="$dir/pki"
  launch kube-controller-manager --kubeconfig="$dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$dir/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$kcm_port" --cert-dir="$pki/controller-manager-certs" \
    --leader-elect="$leader_elect" --use-service-account-credentials="$sa_credentials" \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --service-cluster-ip-range="$service_cidr"
  launch kube-scheduler --kubeconfig="$dir/scheduler.kubeconfig" \
    --authentication-kubeconfig="$dir/scheduler.kubeconfig" \
    --authorization-kubeconfig="$dir/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$scheduler_port" --cert-dir="$pki/scheduler-certs" \
    --leader-elect="$leader_elect"
}

# The controller-manager exits when RBAC is not bootstrapped yet, so it starts after /readyz.
wait_ready() {
  wait_for "kube-controller-manager /healthz" kube-controller-manager healthz_ok "$kcm_port" || return 1
  wait_for "kube-scheduler /healthz" kube-scheduler healthz_ok "$scheduler_port" || return 1
  if [[ $leader_elect == true ]]; then
    wait_for "controller-manager lease" kube-controller-manager lease_held kube-controller-manager || return 1
    wait_for "scheduler lease" kube-scheduler lease_held kube-scheduler || return 1
  fi
  wait_for "the four default namespaces" kube-apiserver namespaces_exist || return 1
  wait_for "ServiceAccount default/default" kube-controller-manager \
    api_get /api/v1/namespaces/default/serviceaccounts/default || return 1
  if command -v kubectl >/dev/null; then
    wait_for "kubectl get namespace default" kube-apiserver \
      kubectl --kubeconfig="$dir/kubeconfig" get namespace default || return 1
  fi
}

start_all() {
  read -r etcd_port etcd_peer_port api_port kcm_port scheduler_port <<<"$(free_ports 5)"
  ref[ETCD_PORT]=$etcd_port ref[ETCD_PEER_PORT]=$etcd_peer_port ref[APISERVER_PORT]=$api_port
  ref[CONTROLLER_MANAGER_PORT]=$kcm_port ref[SCHEDULER_PORT]=$scheduler_port
  ref[SERVER]="https://127.0.0.1:$api_port"
  write_kubeconfig "$dir/kubeconfig" admin "$admin_token"
  write_kubeconfig "$dir/controller-manager.kubeconfig" system:kube-controller-manager "$kcm_token"
  write_kubeconfig "$dir/scheduler.kubeconfig" system:kube-scheduler "$scheduler_token"
  rm -rf "$dir/etcd"
  log "--- reference: etcd :$etcd_port, kube-apiserver :$api_port, controller-manager :$kcm_port, scheduler :$scheduler_port"
  start_etcd || return 1
  ref[ETCD_PID]=$(cat "$dir/pids/etcd")
  start_apiserver
  ref[APISERVER_PID]=$(cat "$dir/pids/kube-apiserver")
  write_env
  wait_for "kube-apiserver /readyz" kube-apiserver readyz_ok || return 1
  start_controllers
  ref[CONTROLLER_MANAGER_PID]=$(cat "$dir/pids/kube-controller-manager")
  ref[SCHEDULER_PID]=$(cat "$dir/pids/kube-scheduler")
  write_env
  wait_ready
}

mkdir -p "$dir/logs" "$dir/pids"
declare -A ref=()
ref[DIR]=$dir ref[BIN]=$bin ref[KUBECONFIG]="$dir/kubeconfig" ref[LOGS]="$dir/logs"
ref[VERSION]=$("$bin/kube-apiserver" --version | awk '{print $2}') ref[SERVICE_CIDR]=$service_cidr
ref[ADVERTISE_ADDRESS]=${HK8S_REFERENCE_ADVERTISE:-$(default_advertise)}
log "--- reference: throwaway certificates in $dir/pki"
make_pki "$dir/pki" "$service_ip"
admin_token=$(cat "$dir/pki/admin.token")
kcm_token=$(cat "$dir/pki/controller-manager.token")
scheduler_token=$(cat "$dir/pki/scheduler.token")
ref[TOKEN]=$admin_token ref[CA_CERT]="$dir/pki/ca.crt" ref[CA_KEY]="$dir/pki/ca.key"

# A port picked as free can be taken by someone else before the component binds it: retry.
for attempt in 1 2 3; do
  if start_all; then
    log "--- reference: ready in $(( $(now_ms) - started_ms )) ms (kubectl --kubeconfig $dir/kubeconfig)"
    printf '%s\n' "$dir/kubeconfig"
    exit 0
  fi
  "$scripts/reference-down.sh" "$dir" >&2 || true
  if (( attempt < 3 )) && grep -qs 'address already in use' "$dir"/logs/*.log; then
    log "reference-up: a port was taken before a component could bind it; retrying with new ports"
    mkdir -p "$dir/pids"
    continue
  fi
  break
done
log "reference-up: the control plane did not become ready; logs are in $dir/logs"
exit 1
