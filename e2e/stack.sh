#!/usr/bin/env bash
# Local Notary v1 + registry test stack for trustgate (see e2e/README.md).
#
#   e2e/stack.sh up       stop a previous stack (by its PID files), wipe the work dir,
#                         start everything on 127.0.0.1, wait for real readiness and
#                         write $DIR/stack.env
#   e2e/stack.sh down     stop the PIDs recorded in the work dir, check no listener is left
#   e2e/stack.sh status   show what runs
#
# Work dir: ${TRUSTGATE_STACK_DIR:-<repo>/target/stack}. Ports are asked from the OS
# unless overridden (TRUSTGATE_PORT_SIGNER, _NOTARY, _NOTARY_LOCAL, _NOTARY_TOKEN,
# _REGISTRY_HTTP, _REGISTRY_TLS, _REGISTRY_BASIC, _REGISTRY_TOKEN, _TOKEN_SERVER).
# TRUSTGATE_STACK_TIMEOUT (s, default 20) bounds each readiness wait.
set -euo pipefail
set +m # no job control: background children stay out of their own process group

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${TRUSTGATE_STACK_DIR:-$REPO/target/stack}
[[ $DIR == /* ]] || DIR=$PWD/$DIR
DIR=${DIR%/}
TIMEOUT=${TRUSTGATE_STACK_TIMEOUT:-20}
POLL_SLEEP=0.02       # s between readiness polls
STOP_GRACE_MS=5000    # SIGTERM -> SIGKILL on stop
PORTS_GRACE_MS=2000   # for the listeners to go after a stop
MARKER=$DIR/.trustgate-stack
RUN=$DIR/run
LOGS=$DIR/logs
CERTS=$DIR/certs
CONF=$DIR/conf

REG_USER=testuser
REG_PASS=testpass
ISSUER=trustgate-test-issuer
REGISTRY_SERVICE=trustgate-registry
NOTARY_SERVICE=notary-server
READY_GUN=readiness/check

# service name -> env override suffix
SERVICES=(signer notary notary-local notary-token registry-http registry-tls registry-basic registry-token token-server)

LOG_PREFIX=stack
BRINGUP="stack bring-up"
# shellcheck source=e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stop_services() { stop_pidfiles; } # every PID file in $RUN

# ---------------------------------------------------------------- packages
ensure_packages() {
  local missing=0 c
  for c in notary notary-server notary-signer docker-registry skopeo htpasswd curl openssl jq python3 setsid; do
    command -v "$c" >/dev/null 2>&1 || { log "missing: $c"; missing=1; }
  done
  ((missing)) || return 0
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "packages missing and not root; install: docker-registry skopeo notary apache2-utils curl openssl python3 jq"
    sudo=(sudo -n)
  fi
  log "installing packages (apt-get)"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    docker-registry skopeo notary apache2-utils curl openssl python3 jq util-linux >/dev/null
}

# ---------------------------------------------------------------- certs
leaf_cert() { # name serial
  local n=$1
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$CERTS/$n.key" -out "$CERTS/$n.csr" -subj "/CN=$n" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:localhost,DNS:%s,IP:127.0.0.1\n' "$n" >"$CERTS/$n.ext"
  openssl x509 -req -in "$CERTS/$n.csr" -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" \
    -set_serial "$2" -out "$CERTS/$n.crt" -days 825 -extfile "$CERTS/$n.ext" 2>/dev/null
}

make_certs() {
  mkdir -p "$CERTS"
  # token signing cert (RSA, self-signed; it is the services' rootcertbundle)
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$CERTS/token.key" -out "$CERTS/token.crt" \
    -days 3650 -subj "/CN=trustgate test token signer" 2>/dev/null &
  local rsa=$!
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$CERTS/ca.key" -out "$CERTS/ca.crt" -days 3650 -subj "/CN=trustgate test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  local pids=() serial=4096 n
  for n in notary-server notary-signer registry client; do
    serial=$((serial + 1))
    leaf_cert "$n" "$serial" &
    pids+=($!)
  done
  for n in "${pids[@]}" "$rsa"; do wait "$n" || die "certificate generation failed"; done
  chmod 600 "$CERTS"/*.key
}

# ---------------------------------------------------------------- configs
write_configs() {
  mkdir -p "$CONF"
  local c=$CERTS tok="http://127.0.0.1:${PORT[token-server]}/token"

  cat >"$CONF/signer.json" <<EOF
{"server": {"grpc_addr": "127.0.0.1:${PORT[signer]}",
            "tls_cert_file": "$c/notary-signer.crt", "tls_key_file": "$c/notary-signer.key",
            "client_ca_file": "$c/ca.crt"},
 "logging": {"level": "info"},
 "storage": {"backend": "memory", "default_alias": "stackalias"}}
EOF
  local remote
  remote="\"trust_service\": {\"type\": \"remote\", \"hostname\": \"127.0.0.1\", \"port\": \"${PORT[signer]}\",
   \"key_algorithm\": \"ecdsa\", \"tls_ca_file\": \"$c/ca.crt\",
   \"tls_client_cert\": \"$c/notary-server.crt\", \"tls_client_key\": \"$c/notary-server.key\"}"
  cat >"$CONF/notary.json" <<EOF
{"server": {"http_addr": "127.0.0.1:${PORT[notary]}",
            "tls_cert_file": "$c/notary-server.crt", "tls_key_file": "$c/notary-server.key"},
 $remote,
 "logging": {"level": "info"},
 "storage": {"backend": "memory"}}
EOF
  cat >"$CONF/notary-local.json" <<EOF
{"server": {"http_addr": "127.0.0.1:${PORT[notary-local]}"},
 "trust_service": {"type": "local"},
 "logging": {"level": "info"},
 "storage": {"backend": "memory"}}
EOF
  cat >"$CONF/notary-token.json" <<EOF
{"server": {"http_addr": "127.0.0.1:${PORT[notary-token]}",
            "tls_cert_file": "$c/notary-server.crt", "tls_key_file": "$c/notary-server.key"},
 $remote,
 "auth": {"type": "token", "options": {"realm": "$tok", "service": "$NOTARY_SERVICE",
          "issuer": "$ISSUER", "rootcertbundle": "$c/token.crt"}},
 "logging": {"level": "info"},
 "storage": {"backend": "memory"}}
EOF

  htpasswd -Bbn "$REG_USER" "$REG_PASS" >"$CONF/htpasswd" 2>/dev/null
  local name tls auth
  for name in registry-http registry-tls registry-basic registry-token; do
    tls="" auth=""
    case $name in
      registry-tls | registry-basic) tls="  tls: {certificate: $c/registry.crt, key: $c/registry.key}" ;;
    esac
    case $name in
      registry-basic) auth="auth: {htpasswd: {realm: trustgate-registry, path: $CONF/htpasswd}}" ;;
      registry-token) auth="auth: {token: {realm: \"$tok\", service: $REGISTRY_SERVICE, issuer: $ISSUER, rootcertbundle: $c/token.crt}}" ;;
    esac
    mkdir -p "$DIR/data/$name"
    cat >"$CONF/$name.yml" <<EOF
version: 0.1
log: {level: info, formatter: text}
storage:
  filesystem: {rootdirectory: $DIR/data/$name}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:${PORT[$name]}
  secret: trustgate-test-secret
$tls
$auth
EOF
  done
  printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$CONF/policy.json"
}

# ---------------------------------------------------------------- start + readiness
token_for() { # service scope -> prints a token obtained with the test credentials
  curl -sf --max-time 2 -u "$REG_USER:$REG_PASS" -G "http://127.0.0.1:${PORT[token-server]}/token" \
    --data-urlencode "service=$1" --data-urlencode "scope=$2" | jq -er .token
}

bearer_code() { # want service scope curl-args...
  local want=$1 svc=$2 scope=$3 t
  shift 3
  t=$(token_for "$svc" "$scope") || return 1
  is_code "$want" -H "Authorization: Bearer $t" "$@"
}

start_all() {
  local py
  py=$(python3 -c 'import sys; print(sys.executable)')
  start signer env NOTARY_SIGNER_STACKALIAS=stackpass notary-signer -config "$CONF/signer.json"
  start token-server "$py" -u "$REPO/e2e/token_server.py" --port "${PORT[token-server]}" \
    --key "$CERTS/token.key" --cert "$CERTS/token.crt" --issuer "$ISSUER" \
    --user "$REG_USER" --password "$REG_PASS"
  local n
  for n in notary notary-local notary-token; do
    start "$n" notary-server -config "$CONF/$n.json"
  done
  for n in registry-http registry-tls registry-basic registry-token; do
    start "$n" docker-registry serve "$CONF/$n.yml"
  done
}

wait_all() {
  local ca=$CERTS/ca.crt tk="http://127.0.0.1:${PORT[token-server]}"
  local n=https://127.0.0.1:${PORT[notary]} nl=http://127.0.0.1:${PORT[notary-local]}
  local nt=https://127.0.0.1:${PORT[notary-token]} key=_trust/tuf/timestamp.key
  local rscope="repository:$READY_GUN:push,pull"

  wait_for signer "gRPC port ${PORT[signer]} open" port_open "${PORT[signer]}"
  wait_for token-server "GET /token" is_code 200 "$tk/token?service=readiness"
  wait_for notary "health" is_code 200 --cacert "$ca" "$n/_notary_server/health"
  wait_for notary "timestamp.key via the signer" is_code 200 --cacert "$ca" "$n/v2/$READY_GUN/$key"
  wait_for notary-local "health" is_code 200 "$nl/_notary_server/health"
  wait_for notary-local "timestamp.key" is_code 200 "$nl/v2/$READY_GUN/$key"
  wait_for notary-token "health" is_code 200 --cacert "$ca" "$nt/_notary_server/health"
  wait_for notary-token "401 without token" is_code 401 --cacert "$ca" "$nt/v2/$READY_GUN/$key"
  wait_for notary-token "timestamp.key with bearer token" \
    bearer_code 200 "$NOTARY_SERVICE" "$rscope" --cacert "$ca" "$nt/v2/$READY_GUN/$key"
  wait_for registry-http "/v2/ 200" is_code 200 "http://127.0.0.1:${PORT[registry-http]}/v2/"
  wait_for registry-tls "/v2/ 200 over TLS" is_code 200 --cacert "$ca" "https://127.0.0.1:${PORT[registry-tls]}/v2/"
  wait_for registry-basic "/v2/ 401 anonymous" is_code 401 --cacert "$ca" "https://127.0.0.1:${PORT[registry-basic]}/v2/"
  wait_for registry-basic "/v2/ 200 with basic auth" is_code 200 --cacert "$ca" -u "$REG_USER:$REG_PASS" \
    "https://127.0.0.1:${PORT[registry-basic]}/v2/"
  wait_for registry-token "/v2/ 401 anonymous" is_code 401 "http://127.0.0.1:${PORT[registry-token]}/v2/"
  wait_for registry-token "/v2/ 200 with bearer token" \
    bearer_code 200 "$REGISTRY_SERVICE" "$rscope" "http://127.0.0.1:${PORT[registry-token]}/v2/"
  # readiness requests must not show up in the counters tests look at
  curl -sf --max-time 2 -X POST "$tk/stats/reset" >/dev/null || fail_service token-server "POST /stats/reset"
}

write_env() {
  local h=127.0.0.1 tmp=$DIR/stack.env.tmp
  {
    echo "TRUSTGATE_STACK_DIR=$DIR"
    echo "CA=$CERTS/ca.crt"
    echo "CERT_DIR=$DIR/certdir"
    echo "TLS_CERT=$CERTS/client.crt"
    echo "TLS_KEY=$CERTS/client.key"
    echo "REGISTRY_HTTP=$h:${PORT[registry-http]}"
    echo "REGISTRY_TLS=$h:${PORT[registry-tls]}"
    echo "REGISTRY_BASIC=$h:${PORT[registry-basic]}"
    echo "REGISTRY_TOKEN=$h:${PORT[registry-token]}"
    echo "REGISTRY_USER=$REG_USER"
    echo "REGISTRY_PASSWORD=$REG_PASS"
    echo "REGISTRY_TOKEN_SERVICE=$REGISTRY_SERVICE"
    echo "TOKEN_SERVER=http://$h:${PORT[token-server]}"
    echo "TOKEN_REALM=http://$h:${PORT[token-server]}/token"
    echo "TOKEN_ISSUER=$ISSUER"
    echo "TOKEN_CERT=$CERTS/token.crt"
    echo "NOTARY_URL=https://$h:${PORT[notary]}"
    echo "NOTARY_LOCAL_URL=http://$h:${PORT[notary-local]}"
    echo "NOTARY_TOKEN_URL=https://$h:${PORT[notary-token]}"
    echo "NOTARY_TOKEN_SERVICE=$NOTARY_SERVICE"
    echo "NOTARY_SIGNER=$h:${PORT[signer]}"
    echo "NOTARY_USER=$REG_USER"
    echo "NOTARY_PASSWORD=$REG_PASS"
    echo "NOTARY_AUTH=$(printf '%s:%s' "$REG_USER" "$REG_PASS" | base64)"
    echo "NOTARY_ROOT_PASSPHRASE=root-passphrase-1"
    echo "NOTARY_TARGETS_PASSPHRASE=targets-passphrase-1"
    echo "NOTARY_SNAPSHOT_PASSPHRASE=snapshot-passphrase-1"
    echo "NOTARY_DELEGATION_PASSPHRASE=delegation-passphrase-1"
    echo "SKOPEO_POLICY=$CONF/policy.json"
    echo "STACK_LOGS=$LOGS"
  } >"$tmp"
  mv "$tmp" "$DIR/stack.env"
}

# ---------------------------------------------------------------- commands
cmd_up() {
  local t0 t1
  t0=$(now_ms)
  ensure_packages
  reset_workdir "a stack dir" "a previous stack"
  pick_ports
  t1=$(now_ms)
  make_certs
  mkdir -p "$DIR/certdir"
  cp "$CERTS/ca.crt" "$DIR/certdir/ca.crt"
  write_configs
  log "certs+configs $(($(now_ms) - t1)) ms"
  t1=$(now_ms)
  start_all
  wait_all
  log "services ready $(($(now_ms) - t1)) ms"
  write_env
  log "stack up in $(($(now_ms) - t0)) ms"
  echo "$(($(now_ms) - t0))" >"$RUN/up_ms"
  echo "$DIR/stack.env"
}

cmd_down() {
  if [[ ! -d $RUN ]]; then
    log "no stack in $DIR"
    return 0
  fi
  stop_services
  check_ports_closed || die "listeners left after stopping the stack in $DIR"
  rm -f "$DIR/stack.env"
  log "stack in $DIR stopped"
}

cmd_status() {
  local rc=0
  [[ -d $RUN ]] || { echo "no stack in $DIR"; return 1; }
  status_rows 15 || rc=$?
  ((rc != 2)) || { echo "no stack running in $DIR"; return 1; }
  [[ -f $DIR/stack.env ]] && echo "env: $DIR/stack.env"
  return $rc
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 up|down|status   (work dir: $DIR)" >&2
    exit 2
    ;;
esac
