#!/usr/bin/env bash
# The README's main command: a short, real walk-through on a fresh machine.
#  1. installs (if missing) and starts the local stack: docker-registry + notary-server/signer
#  2. builds a tiny OCI image, pushes it with skopeo, signs its digest with the real notary CLI
#  3. runs trustgate against it: `resolve` (tag -> digest) and `inspect` (verified trust data)
# The stack is stopped at the end (keep it with DEMO_KEEP=1). Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
export TRUSTGATE_STACK_DIR="${TRUSTGATE_STACK_DIR:-$REPO/target/demo-stack}"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "starting the local registry + Notary stack in $TRUSTGATE_STACK_DIR"
bash e2e/stack.sh up >/dev/null
[[ ${DEMO_KEEP:-0} == 1 ]] || trap 'bash "$REPO/e2e/stack.sh" down >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC1091
source "$TRUSTGATE_STACK_DIR/stack.env"

say "building trustgate"
cargo build --locked --quiet
TG=$REPO/target/debug/trustgate

WORK=$(mktemp -d)
say "building a one-file OCI image and pushing it to $REGISTRY_HTTP/demo/app:v1"
python3 - "$WORK/layout" <<'PY'
import hashlib, io, json, os, sys, tarfile
out = sys.argv[1]; blobs = os.path.join(out, "blobs", "sha256"); os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest(); open(os.path.join(blobs, d), "wb").write(data); return d
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    body = b"hello from the trustgate demo\n"; info = tarfile.TarInfo("hello.txt"); info.size = len(body); info.mtime = 0
    t.addfile(info, io.BytesIO(body))
layer = buf.getvalue(); ld = put(layer)
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": ["sha256:" + ld]}}, sort_keys=True, separators=(",", ":")).encode()
cd = put(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": len(cfg)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + ld, "size": len(layer)}]},
    sort_keys=True, separators=(",", ":")).encode()
md = put(man)
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(out, "oci-layout"), "w"))
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + md,
    "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, open(os.path.join(out, "index.json"), "w"))
PY
skopeo --policy "$SKOPEO_POLICY" copy --quiet --preserve-digests --dest-tls-verify=false --dest-no-creds \
  "oci:$WORK/layout:v1" "docker://$REGISTRY_HTTP/demo/app:v1"

say "trustgate resolve: the digest the registry serves for the tag"
"$TG" resolve --plain-http "$REGISTRY_HTTP/demo/app:v1"
DIGEST=$("$TG" resolve --plain-http --output json "$REGISTRY_HTTP/demo/app:v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["digest"])')
SIZE=$(skopeo inspect --raw --tls-verify=false "docker://$REGISTRY_HTTP/demo/app:v1" | wc -c)

GUN=$REGISTRY_HTTP/demo/app
say "signing $GUN:v1 = $DIGEST with the notary CLI (server $NOTARY_URL)"
export NOTARY_ROOT_PASSPHRASE NOTARY_TARGETS_PASSPHRASE NOTARY_SNAPSHOT_PASSPHRASE NOTARY_DELEGATION_PASSPHRASE
N=(notary -s "$NOTARY_URL" --tlscacert "$CA" -d "$WORK/trust")
"${N[@]}" init -p "$GUN" </dev/null >/dev/null
"${N[@]}" addhash -p "$GUN" v1 "$SIZE" --sha256 "${DIGEST#sha256:}" </dev/null >/dev/null
"${N[@]}" list "$GUN" </dev/null

say "trustgate inspect: the verified trust data a policy author needs"
"$TG" inspect --notary-url "$NOTARY_URL" --ca "$CA" "$GUN:v1"
ROOT_KEY=$("$TG" inspect --notary-url "$NOTARY_URL" --ca "$CA" --output json "$GUN:v1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["root"]["keys"][0]["keyID"])')

say "a TrustPolicy pinning that root key, and an unsigned tag v2 pushed next to v1"
skopeo --policy "$SKOPEO_POLICY" copy --quiet --preserve-digests --dest-tls-verify=false --dest-no-creds \
  "oci:$WORK/layout:v1" "docker://$REGISTRY_HTTP/demo/app:v2"
cat > "$WORK/policy.yaml" <<YAML
apiVersion: trustgate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: demo, namespace: shop}
spec:
  images: ["$REGISTRY_HTTP/demo/**"]
  notary:
    url: $NOTARY_URL
    caBundle: |
$(sed 's/^/      /' "$CA")
  registry: {plainHTTP: true}
  trustRoots:
  - keyID: $ROOT_KEY
YAML
sed -n '1,8p' "$WORK/policy.yaml"; echo "  ..."

say "trustgate check: v1 is signed, v2 is not, and nothing matches busybox (default Deny)"
set +e
"$TG" check --policy "$WORK/policy.yaml" --namespace shop "$GUN:v1" "$GUN:v2" busybox
echo "exit status $? (0 all admitted, 1 something rejected)"
set -e
rm -rf "$WORK"
say "done"
