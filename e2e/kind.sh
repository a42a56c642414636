#!/usr/bin/env bash
# Real-cluster end-to-end check of trustgate on kind, for machines with Docker and kind.
# NOT RUN in this project's CI or dev machines: they have no Docker engine (the API-server
# tier, e2e/apiserver.sh, is what runs there). Needs: docker, kind, kubectl, helm, notary (CLI),
# curl, jq, openssl, and network access to pull kindest/node, notary, registry and busybox.
#
#   e2e/kind.sh           create cluster + local registry + notary-server/signer, build and load
#                         the image, helm install, sign one image, apply a TrustPolicy, check that
#                         the signed pod is admitted and the unsigned one rejected, tear down
#   KEEP=1 e2e/kind.sh    leave everything running (delete: kind delete cluster --name trustgate-e2e;
#                         docker rm -f kind-registry notary-server notary-signer)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER=trustgate-e2e NET=kind REG=kind-registry:5000 REG_HOST=localhost:5001
WORK=$(mktemp -d) NS=demo
log() { printf '[kind] %s\n' "$*" >&2; }
for c in docker kind kubectl helm notary curl jq openssl; do
  command -v "$c" >/dev/null || { log "missing: $c"; exit 1; }
done
cleanup() {
  [[ ${KEEP:-} == 1 ]] && { log "KEEP=1: leaving cluster $CLUSTER and containers up"; return; }
  kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  docker rm -f kind-registry notary-server notary-signer >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log "PKI for notary (server cert valid for notary-server and localhost)"
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
  -days 30 -subj "/CN=trustgate kind CA" 2>/dev/null
for n in notary-server notary-signer; do
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $n.key -out $n.csr -subj "/CN=$n" 2>/dev/null
  printf 'extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\n' $n >$n.ext
  openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile $n.ext -out $n.crt 2>/dev/null
done
chmod 644 ./*.key
cat >signer.json <<'EOF'
{"server": {"grpc_addr": ":7899", "tls_cert_file": "/certs/notary-signer.crt", "tls_key_file": "/certs/notary-signer.key", "client_ca_file": "/certs/ca.crt"},
 "logging": {"level": "info"}, "storage": {"backend": "memory", "default_alias": "kind"}}
EOF
cat >server.json <<'EOF'
{"server": {"http_addr": ":4443", "tls_cert_file": "/certs/notary-server.crt", "tls_key_file": "/certs/notary-server.key"},
 "trust_service": {"type": "remote", "hostname": "notary-signer", "port": "7899", "key_algorithm": "ecdsa",
   "tls_ca_file": "/certs/ca.crt", "tls_client_cert": "/certs/notary-server.crt", "tls_client_key": "/certs/notary-server.key"},
 "logging": {"level": "info"}, "storage": {"backend": "memory"}}
EOF

log "kind cluster with containerd reading /etc/containerd/certs.d (local registry over http)"
kind create cluster --name "$CLUSTER" --wait 120s --config - <<'EOF'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
containerdConfigPatches:
- |-
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
EOF
docker run -d --restart=always --name kind-registry --network "$NET" -p 127.0.0.1:5001:5000 registry:2 >/dev/null
for node in $(kind get nodes --name "$CLUSTER"); do
  docker exec "$node" sh -c "mkdir -p /etc/containerd/certs.d/$REG && printf '[host.\"http://$REG\"]\n' >/etc/containerd/certs.d/$REG/hosts.toml"
done
docker run -d --name notary-signer --network "$NET" -e NOTARY_SIGNER_KIND=kindpass -v "$WORK:/certs:ro" \
  -v "$WORK/signer.json:/cfg.json:ro" notary:signer-0.7.0 notary-signer -config /cfg.json >/dev/null
docker run -d --name notary-server --network "$NET" -p 127.0.0.1:4443:4443 -v "$WORK:/certs:ro" \
  -v "$WORK/server.json:/cfg.json:ro" notary:server-0.7.0 notary-server -config /cfg.json >/dev/null
until curl -sf --cacert ca.crt https://localhost:4443/_notary_server/health >/dev/null; do sleep 1; done

log "demo images: $REG/demo/signed:1 (signed) and $REG/demo/unsigned:1 (no trust data)"
docker pull -q busybox:1.36 >/dev/null
for r in signed unsigned; do docker tag busybox:1.36 "$REG_HOST/demo/$r:1" && docker push -q "$REG_HOST/demo/$r:1" >/dev/null; done
accept='application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json'
curl -sf -H "Accept: $accept" "http://$REG_HOST/v2/demo/signed/manifests/1" >manifest.json
SIZE=$(stat -c %s manifest.json) SHA=$(sha256sum manifest.json | cut -d' ' -f1)

log "sign $REG/demo/signed:1 with the notary CLI (GUN = the name pods use)"
export NOTARY_ROOT_PASSPHRASE=root-pass NOTARY_TARGETS_PASSPHRASE=targets-pass NOTARY_SNAPSHOT_PASSPHRASE=snap-pass
N=(notary -s https://localhost:4443 -d "$WORK/trust" --tlscacert "$WORK/ca.crt")
"${N[@]}" init "$REG/demo/signed"
"${N[@]}" addhash "$REG/demo/signed" 1 "$SIZE" --sha256 "$SHA"
"${N[@]}" publish "$REG/demo/signed"
ROOT_ID=$(curl -sf --cacert ca.crt "https://localhost:4443/v2/$REG/demo/signed/_trust/tuf/root.json" | jq -r '.signed.roles.root.keyids[0]')

log "build, load and install trustgate"
docker build -q -t trustgate:e2e "$REPO" >/dev/null
kind load docker-image trustgate:e2e --name "$CLUSTER"
kubectl apply -f "$REPO/crds/trustgate-crds.yaml"
helm install trustgate "$REPO/charts/trustgate" -n trustgate --create-namespace --wait --timeout 180s \
  --set image.repository=trustgate --set image.tag=e2e --set image.pullPolicy=Never \
  --set replicaCount=1 --set defaultAction=Deny
kubectl create namespace "$NS"
kubectl apply -f - <<EOF
apiVersion: trustgate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: demo, namespace: $NS}
spec:
  images: ["$REG/demo/**"]
  notary:
    url: https://notary-server:4443
    caBundle: |
$(sed 's/^/      /' ca.crt)
  registry: {plainHTTP: true}
  trustRoots: [{keyID: "$ROOT_ID"}]
EOF
sleep 5 # the policy reaches the webhook through its watch

log "signed image: admitted"
kubectl -n "$NS" run signed --image="$REG/demo/signed:1" --restart=Never -- sleep 600
log "unsigned image: rejected"
if out=$(kubectl -n "$NS" run unsigned --image="$REG/demo/unsigned:1" --restart=Never -- sleep 600 2>&1); then
  log "FAIL: the unsigned pod was admitted"; exit 1
fi
grep -q 'denied the request' <<<"$out" || { log "FAIL: unexpected error: $out"; exit 1; }
log "rejection: $out"
kubectl -n "$NS" wait --for=condition=Ready pod/signed --timeout=120s
log "PASS"
