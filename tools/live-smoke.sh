#!/usr/bin/env bash
# Smoke test of the live test tier's servers (not part of CI): starts etcd, kube-apiserver,
# kube-controller-manager and a CNCF distribution registry on free 127.0.0.1 ports in a temp
# dir, checks them as the Rust harness will, and stops them by pid. Nothing listens on
# anything but 127.0.0.1 (checked with ss). Needs .ci/install-live-tools, openssl, curl,
# perl (bcrypt via libxcrypt's crypt(3)), python3 (free ports) and ss.
# Every flag set below is one that worked (etcd v3.6.4, Kubernetes v1.34.4, registry v3.1.2).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/.tools/bin"
for t in etcd kube-apiserver kube-controller-manager kubectl-1.34 registry crane helm; do
  [ -x "$bin/$t" ] || { echo "live-smoke: $bin/$t is missing; run .ci/install-live-tools" >&2; exit 1; }
done
kubectl="$bin/kubectl-1.34"
tmp=$(mktemp -d)
pids=()
stop() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$rc" -ne 0 ]; then
    echo "live-smoke: FAILED (rc=$rc); last server log lines:" >&2
    tail -n 15 "$tmp"/*.log >&2 || true
  fi
  # LIVE_SMOKE_LOGS=DIR keeps the servers' logs.
  [ -z "${LIVE_SMOKE_LOGS:-}" ] || { mkdir -p "$LIVE_SMOKE_LOGS" && cp "$tmp"/*.log "$LIVE_SMOKE_LOGS/"; } || true
  rm -rf "$tmp"
  exit "$rc"
}
trap stop EXIT
log() { echo "live-smoke: $*" >&2; }
# A free loopback port (the kernel picks it; a tiny race with other processes is accepted).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for WHAT SECONDS CMD...: polls CMD every 0.2 s
  local what=$1 n=$(($2 * 5)); shift 2
  until "$@" >/dev/null 2>&1; do
    n=$((n - 1)); [ "$n" -gt 0 ] || { log "$what not ready in time"; return 1; }
    sleep 0.2
  done
  log "$what ready after $((SECONDS - t0))s"
}

# --- certificates: one CA, one serving cert (SAN IP:127.0.0.1, DNS:localhost), SA key pair
# A CA-signed leaf (not a self-signed leaf) so that strict clients (rustls/webpki refuse a CA
# certificate used as the server's own) accept it as well as curl and Go.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ocitool-live-ca \
  -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
  -keyout "$tmp/serving.key" -out "$tmp/serving.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > "$tmp/serving.ext"
openssl x509 -req -in "$tmp/serving.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
  -days 2 -extfile "$tmp/serving.ext" -out "$tmp/serving.crt" 2>/dev/null
openssl genrsa -out "$tmp/sa.key" 2048 2>/dev/null
openssl rsa -in "$tmp/sa.key" -pubout -out "$tmp/sa.pub" 2>/dev/null

t0=$SECONDS
# --- etcd: client and peer URLs on loopback, data in the temp dir, metrics on the client URL.
# --unsafe-no-fsync: a throwaway store, no need to fsync (faster on CI disks).
etcd_port=$(free_port); etcd_peer=$(free_port)
"$bin/etcd" --name=live --data-dir="$tmp/etcd" \
  --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
  --listen-peer-urls="http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer" \
  --initial-cluster="live=http://127.0.0.1:$etcd_peer" --initial-cluster-state=new \
  --unsafe-no-fsync --log-level=warn >"$tmp/etcd.log" 2>&1 &
pids+=($!)
wait_for etcd 30 sh -c "curl -fsS http://127.0.0.1:$etcd_port/health | grep -q '\"health\":\"true\"'"

# --- kube-apiserver: TLS with the serving cert, static tokens, RBAC, no endpoint reconciler
# (nothing to advertise), service-account tokens signed with sa.key.
api_port=$(free_port)
admin_token=$(openssl rand -hex 16); kcm_token=$(openssl rand -hex 16)
# token,user,uid,"groups"
printf '%s,admin,admin,"system:masters"\n%s,system:kube-controller-manager,kcm,"system:masters"\n' \
  "$admin_token" "$kcm_token" > "$tmp/tokens.csv"
"$bin/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$etcd_port" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
  --tls-cert-file="$tmp/serving.crt" --tls-private-key-file="$tmp/serving.key" --cert-dir="$tmp/apiserver-certs" \
  --token-auth-file="$tmp/tokens.csv" --authorization-mode=RBAC \
  --service-account-issuer="https://127.0.0.1:$api_port" \
  --service-account-key-file="$tmp/sa.pub" --service-account-signing-key-file="$tmp/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 --endpoint-reconciler-type=none \
  --profiling=false >"$tmp/kube-apiserver.log" 2>&1 &
pids+=($!)
# /readyz is readable anonymously (system:public-info-viewer); it answers "ok" once the
# post-start hooks (RBAC bootstrap roles, priority-and-fairness config, ...) are done.
wait_for kube-apiserver 90 sh -c "curl -fsS --cacert '$tmp/ca.crt' https://127.0.0.1:$api_port/readyz | grep -qx ok"

kubeconfig() { # kubeconfig FILE TOKEN
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: live
  cluster: {server: "https://127.0.0.1:$api_port", certificate-authority: "$tmp/ca.crt"}
users:
- name: live
  user: {token: "$2"}
contexts:
- name: live
  context: {cluster: live, user: live}
current-context: live
EOF
}
kubeconfig "$tmp/admin.kubeconfig" "$admin_token"
kubeconfig "$tmp/kcm.kubeconfig" "$kcm_token"

# --- kube-controller-manager: only the controllers a namespace lifecycle needs.
kcm_port=$(free_port)
"$bin/kube-controller-manager" \
  --kubeconfig="$tmp/kcm.kubeconfig" \
  --controllers=namespace-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller \
  --leader-elect=false --bind-address=127.0.0.1 --secure-port="$kcm_port" --cert-dir="$tmp/kcm-certs" \
  --service-account-private-key-file="$tmp/sa.key" --root-ca-file="$tmp/ca.crt" \
  --profiling=false >"$tmp/kube-controller-manager.log" 2>&1 &
pids+=($!)
# kcm serves with a self-signed cert it writes to --cert-dir; /healthz is always allowed.
wait_for kube-controller-manager 60 sh -c "curl -fsSk https://127.0.0.1:$kcm_port/healthz | grep -qx ok"

# --- registry: TLS with the serving cert, htpasswd (bcrypt) auth, storage in the temp dir.
reg_port=$(free_port)
reg_user=ocitool; reg_pass=$(openssl rand -hex 12)
# bcrypt without htpasswd: crypt(3) of libxcrypt does "$2b$"; the salt is 22 chars of
# ./A-Za-z0-9, the last one of ".Oeu" (its low 4 bits are unused).
salt="$(openssl rand -base64 48 | tr -dc './A-Za-z0-9' | head -c 21)e"
echo "$reg_user:$(perl -e 'print crypt($ARGV[0], "\$2b\$10\$$ARGV[1]")' "$reg_pass" "$salt")" > "$tmp/htpasswd"
mkdir -p "$tmp/registry"
cat > "$tmp/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: "$tmp/registry"}
  delete: {enabled: true}
http:
  addr: "127.0.0.1:$reg_port"
  secret: "$(openssl rand -hex 16)"
  tls: {certificate: "$tmp/serving.crt", key: "$tmp/serving.key"}
auth:
  htpasswd: {realm: ocitool-live, path: "$tmp/htpasswd"}
EOF
# OTEL_TRACES_EXPORTER=none: registry v3 otherwise exports traces to localhost:4318 (OTLP).
OTEL_TRACES_EXPORTER=none "$bin/registry" serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
pids+=($!)
wait_for registry 30 sh -c "test \"\$(curl -sS -o /dev/null -w '%{http_code}' --cacert '$tmp/ca.crt' https://127.0.0.1:$reg_port/v2/)\" = 401"

# --- nothing of ours listens off loopback
listeners=$(ss -Hltnp | grep -E "pid=($(IFS='|'; echo "${pids[*]}"))," || true)
echo "$listeners" | awk '{print "live-smoke: listening " $4}' >&2
if echo "$listeners" | awk '{print $4}' | grep -qv '^127\.0\.0\.1:'; then
  log "a server listens off 127.0.0.1"; exit 1
fi

# --- Kubernetes: namespace, secret, the default ServiceAccount (serviceaccount-controller),
# namespace deletion (namespace-controller)
k() { "$kubectl" --kubeconfig "$tmp/admin.kubeconfig" "$@"; }
k create namespace smoke-x >&2
k get ns >&2
k -n smoke-x create secret generic demo --from-literal=key=value >&2
[ "$(k -n smoke-x get secret demo -o jsonpath='{.data.key}' | base64 -d)" = value ]
wait_for "ServiceAccount default in smoke-x" 30 k -n smoke-x get serviceaccount default
k delete namespace smoke-x --wait=true --timeout=60s >&2
! k get namespace smoke-x >/dev/null 2>&1 || { log "namespace smoke-x still there"; exit 1; }

# --- registry: 401 without, 200 with credentials; push and pull with crane and helm
code() { curl -sS -o /dev/null -w '%{http_code}' --cacert "$tmp/ca.crt" "$@" "https://127.0.0.1:$reg_port/v2/"; }
[ "$(code)" = 401 ] && [ "$(code -u "$reg_user:$reg_pass")" = 200 ] && [ "$(code -u "$reg_user:wrong")" = 401 ]
log "registry /v2/: 401 without and with a wrong password, 200 with credentials"
mkdir -p "$tmp/docker"
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$reg_port" "$(printf '%s:%s' "$reg_user" "$reg_pass" | base64 -w0)" \
  > "$tmp/docker/config.json"
# crane (go-containerregistry) reads DOCKER_CONFIG; Go trusts the CA through SSL_CERT_FILE.
export DOCKER_CONFIG="$tmp/docker" SSL_CERT_FILE="$tmp/ca.crt"
mkdir -p "$tmp/layer" && echo "hello from ocitool" > "$tmp/layer/hello.txt"
tar -C "$tmp/layer" -czf "$tmp/layer.tar.gz" hello.txt
ref="127.0.0.1:$reg_port/smoke/app:v1"
digest=$("$bin/crane" append -f "$tmp/layer.tar.gz" -t "$ref" 2>/dev/null)
log "crane pushed $digest"
[ "$("$bin/crane" digest "$ref")" = "${digest#*@}" ]
"$bin/crane" export "$ref" - | tar -xO hello.txt | grep -qx "hello from ocitool"
log "crane pulled it back"
# helm: the same docker-style config.json serves as its registry config.
helm() { HELM_CONFIG_HOME="$tmp/helm" HELM_CACHE_HOME="$tmp/helm-cache" HELM_DATA_HOME="$tmp/helm-data" \
  "$bin/helm" --registry-config "$tmp/docker/config.json" "$@"; }
helm create "$tmp/smokechart" >/dev/null
helm package "$tmp/smokechart" --version 0.1.0 -d "$tmp" >/dev/null
helm push "$tmp/smokechart-0.1.0.tgz" "oci://127.0.0.1:$reg_port/charts" --ca-file "$tmp/ca.crt" >&2
mkdir -p "$tmp/pulled"
helm pull "oci://127.0.0.1:$reg_port/charts/smokechart" --version 0.1.0 -d "$tmp/pulled" --ca-file "$tmp/ca.crt" >&2
[ -f "$tmp/pulled/smokechart-0.1.0.tgz" ]
log "helm pushed and pulled the chart"

# --- no connection of ours goes off loopback either
conns=$(ss -Htanp | grep -E "pid=($(IFS='|'; echo "${pids[*]}"))," | awk '$1 != "LISTEN" {print $5}' | sort -u)
if echo "$conns" | grep -v '^$' | grep -qv '^127\.0\.0\.1:'; then
  log "a connection off 127.0.0.1: $(echo "$conns" | grep -v '^127\.0\.0\.1:' | tr '\n' ' ')"; exit 1
fi
log "$(echo "$conns" | grep -c . || true) peer addresses seen, all on 127.0.0.1"

# --- stop everything and check nothing is left listening
for p in "${pids[@]}"; do kill "$p"; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
left=$(ss -Hltnp | grep -E "pid=($(IFS='|'; echo "${pids[*]}"))," || true)
[ -z "$left" ] || { log "still listening: $left"; exit 1; }
pids=()
log "all servers stopped; nothing left listening. OK"
