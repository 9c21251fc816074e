# shellcheck shell=bash
# Throwaway PKI for the reference control plane, sourced by reference-up.sh: the layout
# kubeadm writes (CA, apiserver serving and kubelet-client certificates, front-proxy CA and
# client, service-account key pair) plus a static token file. ECDSA P-256 keeps it fast;
# the service-account key is RSA 2048 as kubeadm makes it.

# Writes a key and a certificate signed by the CA at $1 (prefix of .crt/.key);
# $2 prefix, $3 subject, $4 extensions (one per line).
pki_sign() {
  local ca=$1 out=$2 subject=$3 extensions=$4
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$out.key" -subj "$subject" -out "$out.csr" 2>/dev/null
  openssl x509 -req -in "$out.csr" -CA "$ca.crt" -CAkey "$ca.key" -days 365 -out "$out.crt" \
    -extfile <(printf '%s\n' "$extensions") 2>/dev/null
  rm -f "$out.csr"
}

pki_ca() {
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$1.key" -out "$1.crt" -days 365 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" 2>/dev/null
}

# make_pki DIR SERVICE_IP: fills DIR; tokens in DIR/*.token and DIR/tokens.csv.
make_pki() {
  local pki=$1 service_ip=$2 client="keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
basicConstraints=critical,CA:FALSE"
  mkdir -p "$pki"
  chmod 700 "$pki"
  pki_ca "$pki/ca" hk8s-reference-ca
  pki_sign "$pki/ca" "$pki/apiserver" "/CN=kube-apiserver" "keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
basicConstraints=critical,CA:FALSE
subjectAltName=IP:127.0.0.1,IP:$service_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  pki_sign "$pki/ca" "$pki/apiserver-kubelet-client" "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
  pki_ca "$pki/front-proxy-ca" front-proxy-ca
  pki_sign "$pki/front-proxy-ca" "$pki/front-proxy-client" "/CN=front-proxy-client" "$client"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
  local name
  for name in admin controller-manager scheduler; do openssl rand -hex 24 >"$pki/$name.token"; done
  {
    printf '%s,admin,admin-uid,"system:masters"\n' "$(cat "$pki/admin.token")"
    printf '%s,system:kube-controller-manager,system:kube-controller-manager\n' "$(cat "$pki/controller-manager.token")"
    printf '%s,system:kube-scheduler,system:kube-scheduler\n' "$(cat "$pki/scheduler.token")"
  } >"$pki/tokens.csv"
  chmod 600 "$pki"/*.key "$pki"/*.token "$pki/tokens.csv"
}
