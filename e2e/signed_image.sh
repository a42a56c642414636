# Sourced by e2e/quickstart.sh and scripts/bench-webhook.sh (after the stack's stack.env):
# push two different one-layer OCI images and sign only the first with the real notary CLI.
#
# push_and_sign TG REPOSITORY WORK LABEL OTHER_TAG
#   pushes REPOSITORY:v1 and REPOSITORY:OTHER_TAG (contents "trustgate LABEL, image TAG", so the
#   digests are the same on every run), signs :v1 into targets with the notary CLI (trust dir
#   WORK/trust) and leaves OTHER_TAG unsigned. Sets DIGEST (of :v1) and the array NOTARY_CLI.
push_and_sign() {
    local tg=$1 repository=$2 work=$3 label=$4 other=$5 tag size
    python3 - "$work/layout" "$label" "$other" <<'PY'
# Two one-layer OCI images (v1 and another tag, different content) in one OCI layout.
import hashlib, io, json, os, sys, tarfile
out, label, other = sys.argv[1:4]; blobs = os.path.join(out, "blobs", "sha256"); os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest(); open(os.path.join(blobs, d), "wb").write(data); return d
def js(o):
    return json.dumps(o, sort_keys=True, separators=(",", ":")).encode()
manifests = []
for tag in ("v1", other):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        body = f"trustgate {label}, image {tag}\n".encode()
        info = tarfile.TarInfo("hello.txt"); info.size = len(body); info.mtime = 0
        t.addfile(info, io.BytesIO(body))
    layer = buf.getvalue(); ld = put(layer)
    cfg = js({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": ["sha256:" + ld]}})
    cd = put(cfg)
    man = js({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
              "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": len(cfg)},
              "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + ld, "size": len(layer)}]})
    manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + put(man),
                      "size": len(man), "annotations": {"org.opencontainers.image.ref.name": tag}})
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(out, "oci-layout"), "w"))
json.dump({"schemaVersion": 2, "manifests": manifests}, open(os.path.join(out, "index.json"), "w"))
PY
    for tag in v1 "$other"; do
        skopeo --policy "$SKOPEO_POLICY" copy --quiet --preserve-digests --dest-tls-verify=false --dest-no-creds \
            "oci:$work/layout:$tag" "docker://$repository:$tag"
    done
    DIGEST=$("$tg" resolve --plain-http --output json "$repository:v1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["digest"])')
    size=$(skopeo inspect --raw --tls-verify=false "docker://$repository:v1" | wc -c)
    export NOTARY_ROOT_PASSPHRASE NOTARY_TARGETS_PASSPHRASE NOTARY_SNAPSHOT_PASSPHRASE NOTARY_DELEGATION_PASSPHRASE
    NOTARY_CLI=(notary -s "$NOTARY_URL" --tlscacert "$CA" -d "$work/trust")
    "${NOTARY_CLI[@]}" init -p "$repository" </dev/null >/dev/null
    "${NOTARY_CLI[@]}" addhash -p "$repository" v1 "$size" --sha256 "${DIGEST#sha256:}" </dev/null >/dev/null
}
