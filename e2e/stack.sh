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

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------- processes
# Alive = /proc entry exists and state is not Z/X (pitfall 13: late reaping).
pid_alive() {
  local pid=$1 stat rest
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  case ${rest%% *} in Z | X | x) return 1 ;; esac
  return 0
}

# Ours = its command line mentions this work dir.
pid_ours() {
  local pid=$1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/"
}

# A listener on 127.0.0.1:PORT? `ss` when available (no connection, so no "TLS handshake
# error" noise in the service logs), else a bash /dev/tcp connect.
if command -v ss >/dev/null 2>&1; then
  port_open() { [[ $1 =~ ^[0-9]+$ ]] && [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }
else
  port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
fi

stop_stack() {
  local f pid name pids=() deadline
  [[ -d $RUN ]] || return 0
  for f in "$RUN"/*.pid; do
    [[ -e $f ]] || continue
    pid=$(<"$f")
    name=$(basename "$f" .pid)
    if pid_alive "$pid" && pid_ours "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      log "stopping $name (pid $pid)"
    fi
  done
  deadline=$(($(now_ms) + 5000))
  for pid in "${pids[@]}"; do
    while pid_alive "$pid" && (($(now_ms) < deadline)); do sleep 0.02; done
    if pid_alive "$pid" && pid_ours "$pid"; then
      log "pid $pid ignored SIGTERM, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$RUN"/*.pid
}

# Fails if any port recorded for this stack still accepts connections.
check_ports_closed() {
  local name port left=0 deadline
  [[ -f $RUN/ports ]] || return 0
  deadline=$(($(now_ms) + 2000))
  while read -r name port; do
    while port_open "$port" && (($(now_ms) < deadline)); do sleep 0.02; done
    if port_open "$port"; then
      log "port $port ($name) still has a listener"
      left=1
    fi
  done <"$RUN/ports"
  return $left
}

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

# ---------------------------------------------------------------- ports
# NAME -> port; env override TRUSTGATE_PORT_<NAME upper, - -> _>.
declare -A PORT
pick_ports() {
  local free s var i=0
  # shellcheck disable=SC2207
  free=($(python3 - "${#SERVICES[@]}" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
))
  : >"$RUN/ports"
  for s in "${SERVICES[@]}"; do
    var=TRUSTGATE_PORT_$(tr 'a-z-' 'A-Z_' <<<"$s")
    PORT[$s]=${!var:-${free[$i]}}
    i=$((i + 1))
    if port_open "${PORT[$s]}"; then
      die "port ${PORT[$s]} for $s is already in use"
    fi
    echo "$s ${PORT[$s]}" >>"$RUN/ports"
  done
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
start() { # name cmd...
  local name=$1
  shift
  setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

fail_service() { # name message
  log "$1: $2"
  log "---- tail of $LOGS/$1.log ----"
  tail -n 30 "$LOGS/$1.log" >&2 2>/dev/null || true
  log "----"
  stop_stack
  die "stack bring-up failed ($1); logs in $LOGS"
}

# wait_for name description cmd... : polls cmd every 20 ms until it succeeds.
wait_for() {
  local name=$1 desc=$2
  shift 2
  local deadline=$(($(now_ms) + TIMEOUT * 1000)) pid
  pid=$(<"$RUN/$name.pid")
  until "$@"; do
    pid_alive "$pid" || fail_service "$name" "process exited while waiting for: $desc"
    (($(now_ms) < deadline)) || fail_service "$name" "not ready after ${TIMEOUT}s: $desc"
    sleep 0.02
  done
}

# is_code CODE curl-args... : the HTTP status equals CODE
is_code() {
  local want=$1
  shift
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" 2>/dev/null) == "$want" ]]
}

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
  if [[ -d $DIR ]]; then
    if [[ -n $(ls -A "$DIR") && ! -e $MARKER ]]; then
      die "$DIR exists, is not empty and is not a stack dir (no $MARKER); refusing to wipe it"
    fi
    stop_stack
    check_ports_closed || die "a previous stack in $DIR left listeners behind"
    rm -rf "$DIR"
  fi
  mkdir -p "$DIR" "$RUN" "$LOGS"
  touch "$MARKER"
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
  stop_stack
  check_ports_closed || die "listeners left after stopping the stack in $DIR"
  rm -f "$DIR/stack.env"
  log "stack in $DIR stopped"
}

cmd_status() {
  local f name pid port state rc=0 any=0
  [[ -d $RUN ]] || { echo "no stack in $DIR"; return 1; }
  for f in "$RUN"/*.pid; do
    [[ -e $f ]] || continue
    any=1
    name=$(basename "$f" .pid)
    pid=$(<"$f")
    port=$(awk -v n="$name" '$1==n{print $2}' "$RUN/ports" 2>/dev/null)
    if pid_alive "$pid" && pid_ours "$pid"; then
      if port_open "$port"; then state=running; else state="running (port closed)"; rc=1; fi
    else
      state=dead
      rc=1
    fi
    printf '%-15s pid %-8s 127.0.0.1:%-6s %s\n' "$name" "$pid" "$port" "$state"
  done
  ((any)) || { echo "no stack running in $DIR"; return 1; }
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
