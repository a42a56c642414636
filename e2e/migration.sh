#!/usr/bin/env bash
# The migration guide (docs/migration.md), run end to end against a real registry and Notary
# server with the real `notary`, `notation` and `cosign` programs: a team that enforces Docker
# Content Trust moves to Notation signatures without a gap, then stops needing the Notary server.
#
#   step 0  today: releases signed with `notary`; a NotaryV1 policy admits them
#   step 1  new releases are signed with `notation` as well (DCT still enforced)
#   step 2  policy formats [NotaryV1, Notation], require AnyOf: both releases admitted; the
#           migration report names the release that passes only through NotaryV1
#   step 3  the older release is signed with `notation` too: the report is empty
#   step 4  policy formats [Notation]: no Notary server needed; an unsigned image is rejected
#   step 5  the Notary server is gone: step 4's policy still admits the signed releases
#           (checked with the NotaryV1 policy failing closed against an unreachable server)
#   extra   the same move to cosign: formats [NotaryV1, Cosign] and then [Cosign]
#
#   e2e/migration.sh --stack-env FILE   against a running stack (what scripts/test.sh does)
#   e2e/migration.sh                    starts its own stack (e2e/stack.sh) and stops it after
# Exit status 0 only if every step decided as the guide says.
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
fail() { printf 'migration: FAILED: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/trustgate-migration.XXXXXX")
STARTED_STACK=0
cleanup() {
    if [[ $STARTED_STACK == 1 ]]; then bash "$REPO/e2e/stack.sh" down >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z $STACK_ENV ]]; then
    export TRUSTGATE_STACK_DIR="${TRUSTGATE_STACK_DIR:-$REPO/target/migration-stack}"
    STARTED_STACK=1
    bash e2e/stack.sh up >"$WORK/stack.log" 2>&1 || { tail -20 "$WORK/stack.log" >&2; exit 1; }
    STACK_ENV=$TRUSTGATE_STACK_DIR/stack.env
fi
# shellcheck disable=SC1090
source "$STACK_ENV"
bash e2e/sigtools.sh fetch
eval "$(bash e2e/sigtools.sh env)"
cargo build --locked --quiet
TG=$REPO/target/debug/trustgate
# The tools keep their configuration (keys, certificates, trust policies) under these.
export XDG_CONFIG_HOME=$WORK/config HOME=$WORK/home
mkdir -p "$XDG_CONFIG_HOME" "$HOME"
notation() { "$TRUSTGATE_NOTATION" "$@"; }
cosign() { "$TRUSTGATE_COSIGN" "$@"; }

REPOSITORY=$REGISTRY_HTTP/migration/app-$(date +%s)-$$
source "$REPO/e2e/signed_image.sh"

say "step 0: today. Two releases, 1.0 and 1.1, both signed with Docker Content Trust"
push_and_sign "$TG" "$REPOSITORY" "$WORK" "migration" "1.1"
# push_and_sign signed :v1; call it release 1.0 and sign 1.1 too.
D10=$DIGEST
skopeo --policy "$SKOPEO_POLICY" copy --quiet --preserve-digests --src-tls-verify=false \
    --dest-tls-verify=false --dest-no-creds "docker://$REPOSITORY:v1" "docker://$REPOSITORY:1.0"
D11=$("$TG" resolve --plain-http --output json "$REPOSITORY:1.1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["digest"])')
size11=$(skopeo inspect --raw --tls-verify=false "docker://$REPOSITORY:1.1" | wc -c)
"${NOTARY_CLI[@]}" addhash -p "$REPOSITORY" 1.0 "$(skopeo inspect --raw --tls-verify=false "docker://$REPOSITORY:1.0" | wc -c)" \
    --sha256 "${D10#sha256:}" </dev/null >/dev/null
"${NOTARY_CLI[@]}" addhash -p "$REPOSITORY" 1.1 "$size11" --sha256 "${D11#sha256:}" </dev/null >/dev/null
ROOT_KEY=$("$TG" inspect --notary-url "$NOTARY_URL" --ca "$CA" --output json "$REPOSITORY:1.0" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["root"]["keys"][0]["keyID"])')
# A third image nobody signed.
skopeo --policy "$SKOPEO_POLICY" copy --quiet --src-tls-verify=false --dest-tls-verify=false \
    --dest-no-creds "docker://$REPOSITORY:v1" "docker://$REPOSITORY-unsigned:1.0"

notary_block() {
    cat <<YAML
  notary:
    url: $NOTARY_URL
    caBundle: |
$(sed 's/^/      /' "$CA")
  trustRoots:
  - keyID: $ROOT_KEY
YAML
}
policy() { # NAME FORMATS REQUIRE [notary] : writes $WORK/NAME.yaml
    local name=$1 formats=$2 require=$3 with_notary=${4:-}
    {
        cat <<YAML
apiVersion: trustgate.dev/v1alpha1
kind: ClusterTrustPolicy
metadata: {name: shop-releases}
spec:
  images: ["$REGISTRY_HTTP/migration/**"]
  registry: {plainHTTP: true}
YAML
        [[ -n $with_notary ]] && notary_block
        [[ $formats == "" ]] && return
        printf '  signatures: {formats: [%s], require: %s}\n' "$formats" "$require"
        if [[ $formats == *Notation* ]]; then
            printf '  notation:\n    trustStore:\n    - |\n'
            sed 's/^/      /' "$XDG_CONFIG_HOME/notation/localkeys/release.crt"
            printf '    trustedIdentities: ["x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=release"]\n'
        fi
        if [[ $formats == *Cosign* ]]; then
            printf '  cosign:\n    publicKeys:\n    - |\n'
            sed 's/^/      /' "$WORK/cosign.pub"
        fi
    } >"$WORK/$name.yaml"
}
check() { # POLICY IMAGE... : trustgate check --output json into $WORK/out.json; returns its status
    local p=$1
    shift
    "$TG" check --policy "$WORK/$p.yaml" --output json "$@" >"$WORK/out.json" || return $?
}
expect() { # PYTHON-EXPRESSION over `results` (list) and `doc`: the step's claim
    python3 - "$WORK/out.json" "$1" <<'PY' || { python3 -c "import json,sys; [print(r[\"image\"], json.dumps(r.get(\"formats\")), r[\"reason\"]) for r in json.load(open(sys.argv[1]))[\"results\"]]" "$WORK/out.json" >&2; fail "$1"; }
import json, sys
doc = json.load(open(sys.argv[1]))
results = doc["results"]
by = dict(zip(["1.0", "1.1"], results))  # every check lists release 1.0 first, then 1.1
def fmt(tag, name):
    return by[tag]["formats"][name]["passed"]
if not eval(sys.argv[2]):
    sys.exit(1)
PY
}

policy step0 "" "" notary
check step0 "$REPOSITORY:1.0" "$REPOSITORY:1.1" || fail "step 0: both releases must be admitted"
expect 'all(r["allowed"] for r in results) and results[0]["formats"] is None'
echo "step 0: 1.0 and 1.1 admitted by Docker Content Trust alone"

say "step 1: new releases are signed with notation too (Docker Content Trust still enforced)"
notation cert generate-test --default release >/dev/null
notation sign --insecure-registry "$REPOSITORY@$D10" >/dev/null
check step0 "$REPOSITORY:1.0" || fail "step 1: the NotaryV1 policy must still admit 1.0"
echo "step 1: $REPOSITORY@$D10 signed with notation; the NotaryV1 policy still decides"

say "step 2: accept either format: formats [NotaryV1, Notation], require AnyOf"
policy step2 "NotaryV1, Notation" AnyOf notary
check step2 "$REPOSITORY:1.0" "$REPOSITORY:1.1" "$REPOSITORY-unsigned:1.0" && fail "step 2: the unsigned image must be rejected"
expect 'by["1.0"]["allowed"] and fmt("1.0", "NotaryV1") and fmt("1.0", "Notation")'
expect 'by["1.1"]["allowed"] and fmt("1.1", "NotaryV1") and not fmt("1.1", "Notation")'
expect 'not results[2]["allowed"]'
expect 'doc["migration"]["onlyNotaryV1"] == [by["1.1"]["image"]]'
"$TG" check --policy "$WORK/step2.yaml" "$REPOSITORY:1.0" "$REPOSITORY:1.1" | tee "$WORK/step2.txt"
grep -q "^MIGRATION" "$WORK/step2.txt" || fail "step 2: the text report has no MIGRATION line"
echo "step 2: both releases admitted; the report names 1.1 as signed only with Docker Content Trust"

say "step 3: sign the remaining release with notation; the report empties"
notation sign --insecure-registry "$REPOSITORY@$D11" >/dev/null
check step2 "$REPOSITORY:1.0" "$REPOSITORY:1.1" || fail "step 3: both releases must be admitted"
expect 'fmt("1.1", "Notation") and doc["migration"]["onlyNotaryV1"] == []'
echo "step 3: every release has a Notation signature"

say "step 4: require Notation alone: formats [Notation] (no notary, no trustRoots)"
policy step4 "Notation" AnyOf
check step4 "$REPOSITORY:1.0" "$REPOSITORY:1.1" || fail "step 4: both releases must be admitted"
expect 'all(r["allowed"] and list(r["formats"]) == ["Notation"] for r in results)'
check step4 "$REPOSITORY-unsigned:1.0" && fail "step 4: the unsigned image must be rejected"
expect 'not results[0]["allowed"] and "Notation" in results[0]["reason"]'
echo "step 4: Notation alone decides"

say "step 5: the Notary server is turned off"
sed "s|url: $NOTARY_URL|url: https://127.0.0.1:9|" "$WORK/step0.yaml" >"$WORK/gone.yaml"
"$TG" check --policy "$WORK/gone.yaml" --output json "$REPOSITORY:1.0" >"$WORK/out.json" &&
    fail "step 5: a NotaryV1 policy must fail closed without its server"
check step4 "$REPOSITORY:1.0" "$REPOSITORY:1.1" || fail "step 5: the Notation policy must not need the Notary server"
echo "step 5: without the Notary server, NotaryV1 policies fail closed and the Notation policy still admits"

say "the same move with cosign: formats [NotaryV1, Cosign] (AnyOf), then [Cosign]"
(cd "$WORK" && COSIGN_PASSWORD='' cosign generate-key-pair >/dev/null 2>&1)
COSIGN_PASSWORD='' cosign sign --key "$WORK/cosign.key" --use-signing-config=false --tlog-upload=false \
    --allow-http-registry --allow-insecure-registry -y "$REPOSITORY@$D10" >/dev/null 2>&1
policy cosign1 "NotaryV1, Cosign" AnyOf notary
check cosign1 "$REPOSITORY:1.0" "$REPOSITORY:1.1" || fail "cosign: both releases must be admitted"
expect 'fmt("1.0", "Cosign") and not fmt("1.1", "Cosign") and doc["migration"]["onlyNotaryV1"] == [by["1.1"]["image"]]'
policy cosign2 "Cosign" AnyOf
check cosign2 "$REPOSITORY:1.0" || fail "cosign: 1.0 must be admitted by cosign alone"
check cosign2 "$REPOSITORY:1.1" && fail "cosign: 1.1 has no cosign signature and must be rejected"
expect 'results[0]["reason"].count("Cosign") >= 1'
echo "cosign: the same steps decide the same way"

say "migration guide: every step decided as documented"
