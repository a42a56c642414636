#!/usr/bin/env bash
# The README's first command: trustgate verifying a real Docker Content Trust signature, on one
# machine, without a cluster.
#  1. installs (apt-get, if missing) and starts a local registry + Notary server + signer
#     (e2e/stack.sh, everything on 127.0.0.1, ports chosen by the OS)
#  2. builds trustgate (debug build)
#  3. pushes an image as :v1 and a different one as :v2, signs only :v1 with the real notary CLI
#  4. writes a TrustPolicy pinning the repository's root key, starts `trustgate serve` with it and
#     a self-generated certificate
#  5. sends an AdmissionReview (a Pod in namespace shop) for each tag and prints the answers:
#     v1 admitted, v2 rejected
#  6. stops everything it started
# Exit status 0 only if v1 was admitted and v2 rejected.
#
#   e2e/quickstart.sh                       as above (root, or sudo -n, for apt-get)
#   e2e/quickstart.sh --stack-env FILE      use a running stack (its stack.env) instead of
#                                           starting one: what scripts/test.sh does
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
STACK_ENV=""
case "${1:-}" in
    --stack-env) STACK_ENV=${2:?--stack-env needs a file} ;;
    "") ;;
    *) echo "usage: $0 [--stack-env FILE]" >&2; exit 2 ;;
esac
say() { printf '\n==> %s\n' "$*"; }

command -v cargo >/dev/null || { echo "cargo not found: install Rust >= $(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml) (https://rustup.rs)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/trustgate-quickstart.XXXXXX")
TG_PID=""
STARTED_STACK=0
cleanup() {
    [[ -n $TG_PID ]] && { kill "$TG_PID" 2>/dev/null || true; wait "$TG_PID" 2>/dev/null || true; }
    if [[ $STARTED_STACK == 1 ]]; then bash "$REPO/e2e/stack.sh" down >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z $STACK_ENV ]]; then
    export TRUSTGATE_STACK_DIR="${TRUSTGATE_STACK_DIR:-$REPO/target/quickstart-stack}"
    say "starting a local registry, notary-signer and notary-server (e2e/stack.sh; apt-get if missing)"
    STARTED_STACK=1
    bash e2e/stack.sh up >"$WORK/stack.log" 2>&1 || { tail -20 "$WORK/stack.log" >&2; exit 1; }
    STACK_ENV=$TRUSTGATE_STACK_DIR/stack.env
fi
# shellcheck disable=SC1090
source "$STACK_ENV"
echo "registry http://$REGISTRY_HTTP, Notary server $NOTARY_URL"

say "building trustgate (cargo build --locked; the first build takes a few minutes)"
cargo build --locked --quiet
TG=$REPO/target/debug/trustgate

REPOSITORY=$REGISTRY_HTTP/quickstart/app
# A running stack may have seen earlier runs: a repository of its own.
[[ $STARTED_STACK == 1 ]] || REPOSITORY=$REPOSITORY-$(date +%s)-$$
say "pushing two different images: $REPOSITORY:v1 and :v2"
source "$REPO/e2e/signed_image.sh"
push_and_sign "$TG" "$REPOSITORY" "$WORK" "quick start" v2
say "signed $REPOSITORY:v1 ($DIGEST) with the notary CLI; v2 stays unsigned"
"${NOTARY_CLI[@]}" list "$REPOSITORY" </dev/null

say "a TrustPolicy for namespace shop pinning the repository's root key"
ROOT_KEY=$("$TG" inspect --notary-url "$NOTARY_URL" --ca "$CA" --output json "$REPOSITORY:v1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["root"]["keys"][0]["keyID"])')
mkdir -p "$WORK/policies"
cat >"$WORK/policies/quickstart.yaml" <<YAML
apiVersion: trustgate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: quickstart, namespace: shop}
spec:
  images: ["$REPOSITORY"]
  notary:
    url: $NOTARY_URL
    caBundle: |
$(sed 's/^/      /' "$CA")
  registry: {plainHTTP: true}
  trustRoots:
  - keyID: $ROOT_KEY
YAML
grep -v '^      ' "$WORK/policies/quickstart.yaml" | sed 's/caBundle: |/caBundle: (the local test CA)/'

say "starting trustgate serve (policies from $WORK/policies, self-generated certificate)"
read -r WPORT APORT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
"$TG" serve --policy-dir "$WORK/policies" --listen "127.0.0.1:$WPORT" --admin-listen "127.0.0.1:$APORT" \
    --ca-out "$WORK/ca.pem" --default-action Deny --registry-timeout 5 >"$WORK/serve.log" 2>&1 &
TG_PID=$!
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$APORT/readyz" >/dev/null 2>&1 && break
    kill -0 "$TG_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$APORT/readyz" >/dev/null || { cat "$WORK/serve.log" >&2; echo "trustgate is not ready" >&2; exit 1; }
echo "https://127.0.0.1:$WPORT/validate ready (CA in $WORK/ca.pem)"

review() { # UID IMAGE: an AdmissionReview for a Pod in namespace shop
    python3 - "$1" "$2" <<'PY'
import json, sys
uid, image = sys.argv[1], sys.argv[2]
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
    "resource": {"group": "", "version": "v1", "resource": "pods"},
    "namespace": "shop", "name": "app", "operation": "CREATE", "userInfo": {"username": "quickstart"},
    "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": "shop"},
               "spec": {"containers": [{"name": "app", "image": image}]}}}}))
PY
}
status=0
for tag in v1 v2; do
    say "AdmissionReview: a Pod in namespace shop running $REPOSITORY:$tag"
    review "quickstart-$tag" "$REPOSITORY:$tag" >"$WORK/review-$tag.json"
    curl -fsS --cacert "$WORK/ca.pem" -H 'Content-Type: application/json' \
        --data-binary "@$WORK/review-$tag.json" "https://127.0.0.1:$WPORT/validate" >"$WORK/answer-$tag.json"
    python3 - "$WORK/answer-$tag.json" "$tag" <<'PY' || status=1
import json, sys
r = json.load(open(sys.argv[1]))["response"]
answer = {"uid": r["uid"], "allowed": r["allowed"]}
if r.get("status"):
    answer["status"] = {k: r["status"][k] for k in ("code", "message") if k in r["status"]}
print(json.dumps({"response": answer}, indent=2))
want = sys.argv[2] == "v1"
if r["allowed"] is not want:
    sys.exit(f"UNEXPECTED: {sys.argv[2]} should be {'admitted' if want else 'rejected'}")
PY
done
say "the same check as \`helm test\` runs it: trustgate webhook probe"
for t in "v1 allowed" "v2 denied"; do
    set -- $t
    "$TG" webhook probe --url "https://127.0.0.1:$WPORT/validate" --ca-file "$WORK/ca.pem" \
        --namespace shop --image "$REPOSITORY:$1" --expect "$2" || status=1
done
if [[ $status != 0 ]]; then
    tail -20 "$WORK/serve.log" >&2
    echo "quick start FAILED" >&2
    exit 1
fi
say "done: $REPOSITORY:v1 admitted (signed, root key pinned), :v2 rejected (not signed)"
