#!/usr/bin/env bash
# Packaging checks: the Helm chart, the rendered manifests, the CRD copies, the example policies
# and the Dockerfile. Fetches its tools with scripts/tools.sh (helm, kubernetes-validate), works
# offline after that, and fails on the first problem.
#
#   scripts/packaging.sh            check everything
#   scripts/packaging.sh --update   also rewrite manifests/trustgate.yaml and the chart's CRD copy
#                                   from their sources (then review and commit the diff)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
UPDATE=0
case "${1:-}" in
    --update) UPDATE=1 ;;
    "") ;;
    *) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac

t0=$(date +%s)
step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nPACKAGING CHECK FAILED: %s\n' "$*" >&2; exit 1; }

CHART=charts/trustgate
KUBE_VERSION=1.33.0          # the oldest supported cluster (k8s-openapi feature v1_33)
REL=tg                       # release and namespace used for the checks: not the defaults, so
NS=tg-system                 # that hard-coded names would show up
MANIFEST=manifests/trustgate.yaml
MANIFEST_VALUES=$CHART/ci/manifests-values.yaml

TMP="$(mktemp -d "${TMPDIR:-/tmp}/trustgate-packaging.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
# Helm must not read or write the user's configuration.
export HOME="$TMP/home" HELM_CACHE_HOME="$TMP/helm/cache" HELM_CONFIG_HOME="$TMP/helm/config" \
    HELM_DATA_HOME="$TMP/helm/data"
mkdir -p "$HOME" "$TMP/render"

step "tools (scripts/tools.sh)"
bash scripts/tools.sh
TOOLS="${TRUSTGATE_TOOLS:-$REPO/target/tools}"
HELM="$TOOLS/bin/helm"
KV="$TOOLS/bin/kubernetes-validate"
PY="$TOOLS/kv/bin/python"        # has PyYAML and jsonschema (kubernetes-validate's dependencies)

# ---------------------------------------------------------------------------------------------
step "CRDs: $CHART/files/trustgate-crds.yaml is a byte-identical copy of crds/ (no $CHART/crds/)"
if [[ $UPDATE == 1 ]]; then
    cp crds/trustgate-crds.yaml "$CHART/files/trustgate-crds.yaml"
fi
# Helm installs crds/ once and never upgrades it: the chart renders its CRDs from templates.
[[ ! -e "$CHART/crds" ]] || fail "$CHART/crds/ must not exist (Helm never upgrades it): the CRDs are rendered by templates/crds.yaml"
cmp crds/trustgate-crds.yaml "$CHART/files/trustgate-crds.yaml" \
    || fail "$CHART/files/trustgate-crds.yaml differs from crds/trustgate-crds.yaml: run scripts/crdgen.sh"
echo "identical: crds/trustgate-crds.yaml == $CHART/files/trustgate-crds.yaml"

# ---------------------------------------------------------------------------------------------
step "versions: Chart appVersion, Cargo.toml, Dockerfile"
cargo_version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
app_version="$(sed -n 's/^appVersion: "\(.*\)"/\1/p' "$CHART/Chart.yaml")"
docker_version="$(sed -n 's/^ARG VERSION=\(.*\)/\1/p' Dockerfile)"
[[ -n "$cargo_version" && "$app_version" == "$cargo_version" ]] \
    || fail "Chart.yaml appVersion ($app_version) != Cargo.toml version ($cargo_version)"
[[ "$docker_version" == "$cargo_version" ]] \
    || fail "Dockerfile ARG VERSION ($docker_version) != Cargo.toml version ($cargo_version)"
echo "appVersion $app_version == Cargo.toml $cargo_version == Dockerfile $docker_version"

# ---------------------------------------------------------------------------------------------
# Scenarios: the defaults plus every ci/*-values.yaml (chart-testing layout).
scenarios=(default)
for f in "$CHART"/ci/*-values.yaml; do
    scenarios+=("$(basename "$f" -values.yaml)")
done
values_args() { [[ $1 == default ]] || printf -- '-f\n%s\n' "$CHART/ci/$1-values.yaml"; }

step "helm lint --strict (${#scenarios[@]} value sets)"
for s in "${scenarios[@]}"; do
    mapfile -t va < <(values_args "$s")
    if ! out="$("$HELM" lint --strict "$CHART" --namespace "$NS" --kube-version "$KUBE_VERSION" "${va[@]}" 2>&1)"; then
        printf '%s\n' "$out" >&2
        fail "helm lint --strict failed for value set '$s'"
    fi
    # Only the icon recommendation is tolerated.
    if grep -E '^\[(WARNING|ERROR)\]' <<<"$out" >&2; then
        fail "helm lint reported problems for value set '$s'"
    fi
    echo "lint ok: $s"
done

step "helm template + kubernetes-validate --strict -k $KUBE_VERSION"
# Custom resources have no schema in kubernetes-validate: it only WARNs about exactly these kinds,
# which the semantic checks below cover instead. Any other WARN, any ERROR and any resource that
# neither passed nor was warned about fails.
allowed_unknown='^WARN .* Couldn'"'"'t find schema for kind (Certificate|Issuer) with api version cert-manager\.io/v1 |^WARN .* Couldn'"'"'t find schema for kind (ServiceMonitor|PrometheusRule) with api version monitoring\.coreos\.com/v1 |^WARN .* Couldn'"'"'t find schema for kind (TrustPolicy|ClusterTrustPolicy) with api version trustgate\.dev/v1alpha1 '
validate() { # FILE
    local file=$1 out rc=0 docs passed warned bad
    out="$("$KV" --strict -k "$KUBE_VERSION" "$file" 2>&1)" || rc=$?
    bad="$(grep -v -E "^INFO .* passed for resource |$allowed_unknown" <<<"$out" || true)"
    if [[ $rc != 0 || -n "$bad" ]]; then
        printf '%s\n' "$out" >&2
        fail "kubernetes-validate rejected $file (rc $rc)"
    fi
    docs="$("$PY" -c 'import sys, yaml; print(sum(1 for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$file")"
    passed="$(grep -c -E '^INFO .* passed for resource ' <<<"$out" || true)"
    warned="$(grep -c -E "$allowed_unknown" <<<"$out" || true)"
    [[ $((passed + warned)) == "$docs" ]] \
        || fail "$file: $docs documents, but $passed passed and $warned were skipped as custom resources"
    echo "valid: $(basename "$file"): $passed resources validated, $warned custom resources (checked below)"
}
# The webhook configurations are not release resources: the registration Job applies them from
# the <fullname>-webhooks ConfigMap. Appended to each render as ordinary documents, so they are
# validated and checked like the rest.
with_webhooks() { # FILE: append the ConfigMap's webhook configurations as documents
    "$PY" - "$1" <<'PY'
import json, sys, yaml
path = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
extra = []
for d in docs:
    if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-webhooks"):
        for key in sorted(d.get("data", {})):
            extra.append(json.loads(d["data"][key]))
if not extra:
    sys.exit(f"{path}: no webhook configuration in a -webhooks ConfigMap")
with open(path, "a") as f:
    f.write("\n---\n# From the -webhooks ConfigMap (applied by the registration Job)\n")
    yaml.safe_dump_all(extra, f, sort_keys=False)
PY
}
for s in "${scenarios[@]}"; do
    mapfile -t va < <(values_args "$s")
    "$HELM" template "$REL" "$CHART" --namespace "$NS" --kube-version "$KUBE_VERSION" \
        "${va[@]}" >"$TMP/render/$s.yaml" || fail "helm template failed for value set '$s'"
    with_webhooks "$TMP/render/$s.yaml" || fail "webhook configurations of value set '$s'"
    validate "$TMP/render/$s.yaml"
done

step "values.schema.json: the cross-field rules are generated (scripts/schema-rules.py)"
python3 scripts/schema-rules.py --check || fail "run python3 scripts/schema-rules.py"

step "the checks can fail: bad values are rejected, a bad field is caught"
expect_template_failure() { # DESCRIPTION ARGS...
    local what=$1; shift
    if "$HELM" template "$REL" "$CHART" --namespace "$NS" "$@" >"$TMP/neg.out" 2>&1; then
        fail "helm template accepted $what ($*)"
    fi
    # The first specific message: a schema violation line or helm's error.
    echo "rejected: $what: $(grep -v -E '^(Error: values don.t meet|trustgate:$|- \(root\): Must validate)' "$TMP/neg.out" | head -1 | cut -c1-100)"
}
expect_template_failure "timeoutSeconds 31" --set webhook.timeoutSeconds=31
expect_template_failure "timeoutSeconds 0" --set webhook.timeoutSeconds=0
expect_template_failure "failurePolicy Sometimes" --set webhook.failurePolicy=Sometimes
expect_template_failure "an unknown top-level key" --set replicas=2
expect_template_failure "an unknown nested key" --set webhook.timeout=5
expect_template_failure "defaultAction allow (lower case)" --set defaultAction=allow
expect_template_failure "certs.mode external without a Secret" --set certs.mode=external
expect_template_failure "an unknown certs.mode" --set certs.mode=selfSigned
expect_template_failure "extraKinds without podSpecPath" \
    --set 'extraKinds[0].apiGroup=x.io,extraKinds[0].apiVersion=v1,extraKinds[0].resource=xs,extraKinds[0].kind=X'
expect_template_failure "extraKinds with a JSON pointer path" \
    --set 'extraKinds[0].apiGroup=x.io,extraKinds[0].apiVersion=v1,extraKinds[0].resource=xs,extraKinds[0].kind=X,extraKinds[0].podSpecPath=/spec/template/spec'
expect_template_failure "timeoutSeconds 1 without an explicit budget" --set webhook.timeoutSeconds=1
expect_template_failure "a budget not below timeoutSeconds (20s >= 10)" --set webhook.budget=20s --set webhook.timeoutSeconds=10
expect_template_failure "a budget equal to timeoutSeconds" --set webhook.budget=10s
expect_template_failure "a preStop sleep not below the grace period" --set preStopSleepSeconds=30 --set terminationGracePeriodSeconds=30
expect_template_failure "an unknown enforcement mode" --set webhook.enforcement=All
expect_template_failure "a matchCondition without expression" --set 'webhook.matchConditions[0].name=x'
# ...and what must still pass.
for ok in "webhook.budget=9.5s" "webhook.timeoutSeconds=30,webhook.budget=29s" "preStopSleepSeconds=29,terminationGracePeriodSeconds=30" "preStopSleepSeconds=60,terminationGracePeriodSeconds=300"; do
    "$HELM" template "$REL" "$CHART" --namespace "$NS" --set "$ok" >/dev/null 2>"$TMP/neg.out" \
        || { cat "$TMP/neg.out" >&2; fail "helm template refused valid values $ok"; }
    echo "accepted: $ok"
done
"$PY" - "$TMP/render/default.yaml" "$TMP/neg.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "ValidatingWebhookConfiguration":
        d["webhooks"][0]["timeoutSecond"] = 5          # typo of timeoutSeconds
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
if "$KV" --strict -k "$KUBE_VERSION" "$TMP/neg.yaml" >"$TMP/neg.out" 2>&1; then
    fail "kubernetes-validate --strict accepted an unknown field (timeoutSecond)"
fi
echo "rejected: unknown field webhooks[0].timeoutSecond ($(grep -c ^ERROR "$TMP/neg.out") error)"

# ---------------------------------------------------------------------------------------------
step "semantic checks of the rendered manifests"
"$PY" - "$TMP/render" "$REL" "$NS" "${scenarios[@]}" <<'PY' || fail "semantic checks of the rendered manifests"
import base64, json, os, re, subprocess, sys, tempfile, yaml

render_dir, rel, ns, scenarios = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
fullname = f"{rel}-trustgate"
errors = []

def check(cond, scenario, msg):
    if not cond:
        errors.append(f"[{scenario}] {msg}")
    return cond

def load(s):
    docs = [d for d in yaml.safe_load_all(open(os.path.join(render_dir, s + ".yaml"))) if d]
    by = {}
    for d in docs:
        by.setdefault(d["kind"], []).append(d)
    return docs, by

def one(by, kind, s):
    items = by.get(kind, [])
    check(len(items) == 1, s, f"expected one {kind}, found {len(items)}")
    return items[0] if items else {}

def arg(args, name):
    vals = [a.split("=", 1)[1] for a in args if a.startswith(name + "=")]
    return vals

def seconds(v):
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)s", v)
    return float(m.group(1)) if m else None

EXPECTED_RULES = {
    ("", "v1"): {"pods", "pods/ephemeralcontainers", "replicationcontrollers"},
    ("apps", "v1"): {"deployments", "replicasets", "statefulsets", "daemonsets"},
    ("batch", "v1"): {"jobs", "cronjobs"},
}
BASE_KINDS = {"CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
              "Service", "Deployment", "ValidatingWebhookConfiguration", "ConfigMap", "Job", "Pod"}

for s in scenarios:
    docs, by = load(s)
    values = {}
    if s != "default":
        values = yaml.safe_load(open(f"charts/trustgate/ci/{s}-values.yaml")) or {}
    wh_values = values.get("webhook", {})
    cert_mode = values.get("certs", {}).get("mode", "generate")
    replicas = values.get("replicaCount", 3)

    # --- every namespaced object lands in the release namespace
    for d in docs:
        md = d.get("metadata", {})
        if d["kind"] in ("Deployment", "Service", "ServiceAccount", "Secret", "PodDisruptionBudget",
                         "Certificate", "Issuer", "ServiceMonitor", "NetworkPolicy", "PrometheusRule"):
            check(md.get("namespace") == ns, s, f"{d['kind']}/{md.get('name')} not in namespace {ns}")
    kinds = set(by)
    check(BASE_KINDS <= kinds, s, f"missing kinds {sorted(BASE_KINDS - kinds)}")
    crds = {d["metadata"]["name"] for d in by.get("CustomResourceDefinition", [])}
    check(crds == {"trustpolicies.trustgate.dev", "clustertrustpolicies.trustgate.dev"}, s, f"CRDs {crds}")
    for d in by.get("CustomResourceDefinition", []):
        check((d["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") == "keep", s,
              f"CRD {d['metadata']['name']} lacks helm.sh/resource-policy: keep")

    # --- webhook configuration
    vwc = one(by, "ValidatingWebhookConfiguration", s)
    whs = vwc.get("webhooks", [])
    check(len(whs) == 1, s, "expected one webhook")
    wh = whs[0] if whs else {}
    check(wh.get("admissionReviewVersions") == ["v1"], s, "admissionReviewVersions != [v1]")
    check(wh.get("sideEffects") == "NoneOnDryRun", s, "sideEffects != NoneOnDryRun")
    check(wh.get("matchPolicy") == "Equivalent", s, "matchPolicy != Equivalent")
    fp = wh_values.get("failurePolicy", "Fail")
    check(wh.get("failurePolicy") == fp, s, f"failurePolicy {wh.get('failurePolicy')} != {fp}")
    timeout = wh.get("timeoutSeconds")
    check(timeout == wh_values.get("timeoutSeconds", 10), s, f"timeoutSeconds {timeout}")
    check(isinstance(timeout, int) and 1 <= timeout <= 30, s, "timeoutSeconds outside 1..30")
    svc_ref = wh.get("clientConfig", {}).get("service", {})
    check(svc_ref == {"name": fullname, "namespace": ns, "path": "/validate", "port": 443}, s,
          f"clientConfig.service {svc_ref}")
    exprs = wh.get("namespaceSelector", {}).get("matchExpressions", [])
    name_excl = [e for e in exprs if e.get("key") == "kubernetes.io/metadata.name" and e.get("operator") == "NotIn"]
    check(len(name_excl) == 1, s, "no NotIn expression on kubernetes.io/metadata.name")
    excluded = set(name_excl[0]["values"]) if name_excl else set()
    want_excluded = {"kube-system", ns} | set(wh_values.get("excludeNamespaces", []))
    if cert_mode == "certManager":
        want_excluded.add(values.get("certs", {}).get("certManager", {}).get("namespace", "cert-manager"))
    check(excluded == want_excluded, s, f"excluded namespaces {sorted(excluded)} != {sorted(want_excluded)}")
    optout = [e for e in exprs if e.get("key") == "trustgate.dev/ignore"]
    optin = [e for e in exprs if e.get("key") == "trustgate.dev/enforce"]
    if wh_values.get("enforcement", "OptIn") == "OptIn":
        # A fresh install checks no namespace until one is labelled.
        check(optin[:1] == [{"key": "trustgate.dev/enforce", "operator": "In", "values": ["true"]}] and not optout, s,
              f"OptIn: namespaceSelector must require trustgate.dev/enforce=true: {exprs}")
    else:
        check(optout == [{"key": "trustgate.dev/ignore", "operator": "NotIn", "values": ["true"]}], s,
              f"opt-out label expression {optout}")
    check(wh.get("matchConditions", []) == wh_values.get("matchConditions", []), s, "matchConditions")
    check("objectSelector" in wh, s, "objectSelector missing")
    rules = {}
    for r in wh.get("rules", []):
        check(r.get("operations") == ["CREATE", "UPDATE"], s, f"operations {r.get('operations')}")
        check(r.get("scope") == "Namespaced", s, f"scope {r.get('scope')}")
        for g in r["apiGroups"]:
            for v in r["apiVersions"]:
                rules.setdefault((g, v), set()).update(r["resources"])
    want_rules = {k: set(v) for k, v in EXPECTED_RULES.items()}
    for ek in values.get("extraKinds", []):
        want_rules.setdefault((ek["apiGroup"], ek["apiVersion"]), set()).add(ek["resource"])
    check(rules == want_rules, s, f"rules {rules} != {want_rules}")
    annotations = vwc.get("metadata", {}).get("annotations") or {}

    # --- mutating webhook (`/mutate`, pinning): the validating webhook's settings, path /mutate,
    # reinvocationPolicy IfNeeded, Pods only unless mutation.pinTemplates. The configurations are
    # read from the -webhooks ConfigMap (`validating.json`/`mutating.json`), which with_webhooks
    # appended to the render as ordinary documents.
    mut_values = values.get("mutation", {})
    mwcs = by.get("MutatingWebhookConfiguration", [])
    vwcs = by.get("ValidatingWebhookConfiguration", [])
    if mut_values.get("enabled", True):
        if check(len(mwcs) == 1 and len(vwcs) == 1, s, f"{len(mwcs)} mutating, {len(vwcs)} validating configurations"):
            mwc, v = mwcs[0], vwcs[0]
            check(mwc["metadata"]["name"] == v["metadata"]["name"], s, "mutating configuration not named as the validating one")
            check((mwc["metadata"].get("annotations") or {}) == (v["metadata"].get("annotations") or {}), s,
                  "mutating configuration annotations differ (cert-manager CA injection)")
            mw, vw = mwc["webhooks"], v["webhooks"]
            if check(len(mw) == 1, s, "expected one mutating webhook"):
                mw, vw = mw[0], vw[0]
                check(mw.get("reinvocationPolicy") == "IfNeeded", s, "reinvocationPolicy != IfNeeded")
                check(mw.get("sideEffects") == "NoneOnDryRun", s, "mutating sideEffects != NoneOnDryRun")
                check(mw.get("clientConfig", {}).get("service", {}).get("path") == "/mutate", s, "mutating path != /mutate")
                for field in ("admissionReviewVersions", "failurePolicy", "matchPolicy", "timeoutSeconds",
                              "namespaceSelector", "objectSelector", "matchConditions"):
                    check(mw.get(field) == vw.get(field), s, f"mutating {field} {mw.get(field)} != validating {vw.get(field)}")
                mcc, vcc = dict(mw.get("clientConfig", {})), dict(vw.get("clientConfig", {}))
                check(mcc.get("caBundle") == vcc.get("caBundle"), s, "mutating caBundle != validating caBundle")
                check({**mcc["service"], "path": ""} == {**vcc["service"], "path": ""}, s, "mutating service != validating service")
                mrules = {}
                for r in mw.get("rules", []):
                    check(r.get("operations") == ["CREATE", "UPDATE"] and r.get("scope") == "Namespaced", s,
                          f"mutating rule {r}")
                    for g in r["apiGroups"]:
                        for ver in r["apiVersions"]:
                            mrules.setdefault((g, ver), set()).update(r["resources"])
                if mut_values.get("pinTemplates"):
                    check(mrules == want_rules, s, f"pinTemplates: mutating rules {mrules} != {want_rules}")
                else:
                    check(mrules == {("", "v1"): {"pods", "pods/ephemeralcontainers"}}, s, f"mutating rules {mrules}")
    else:
        check(not mwcs, s, "MutatingWebhookConfiguration rendered with mutation.enabled=false")

    # --- deployment
    dep = one(by, "Deployment", s)
    spec = dep.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    check(spec.get("replicas") == replicas, s, f"replicas {spec.get('replicas')} != {replicas}")
    sel = spec.get("selector", {}).get("matchLabels", {})
    pod_labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    check(sel and all(pod_labels.get(k) == v for k, v in sel.items()), s, "selector does not match pod labels")
    c = (pod.get("containers") or [{}])[0]
    args = c.get("args", [])
    check(args[:1] == ["serve"], s, f"args do not start with serve: {args[:1]}")
    wport, aport = wh_values.get("port", 8443), values.get("metrics", {}).get("port", 8080)
    check(arg(args, "--listen") == [f"0.0.0.0:{wport}"], s, "--listen")
    check(arg(args, "--admin-listen") == [f"0.0.0.0:{aport}"], s, "--admin-listen")
    check(pod.get("hostNetwork", False) == values.get("hostNetwork", False), s, "hostNetwork")
    if values.get("hostNetwork"):
        check(pod.get("dnsPolicy") == "ClusterFirstWithHostNet", s, "dnsPolicy with hostNetwork")
    check(arg(args, "--tls-cert") == ["/tls/tls.crt"] and arg(args, "--tls-key") == ["/tls/tls.key"], s,
          "--tls-cert/--tls-key")
    check(arg(args, "--default-action") == [values.get("defaultAction", "Deny")], s, "--default-action")
    budget = arg(args, "--budget")
    b = seconds(budget[0]) if budget else None
    check(b is not None and 0 < b < timeout, s, f"--budget {budget} not below timeoutSeconds {timeout}")
    if not wh_values.get("budget"):
        check(b == max(timeout - 2, 1), s, f"--budget {b} != timeoutSeconds - 2")
    pin_templates = mut_values.get("enabled", True) and mut_values.get("pinTemplates", False)
    check(("--pin-templates" in args) == bool(pin_templates), s, f"--pin-templates in args != {pin_templates}")
    want_extra = [f"{k['apiGroup']}/{k['kind']}={k['podSpecPath']}" for k in values.get("extraKinds", [])]
    check(arg(args, "--extra-kind") == want_extra, s, f"--extra-kind {arg(args, '--extra-kind')} != {want_extra}")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports == {"webhook": wport, "admin": aport}, s, f"container ports {ports}")
    lp, rp = c.get("livenessProbe", {}).get("httpGet", {}), c.get("readinessProbe", {}).get("httpGet", {})
    check(lp == {"path": "/healthz", "port": "admin"}, s, f"livenessProbe {lp}")
    check(rp == {"path": "/readyz", "port": "admin"}, s, f"readinessProbe {rp}")
    res = c.get("resources", {})
    check(all(res.get("requests", {}).get(r) for r in ("cpu", "memory")) and res.get("limits", {}).get("memory"), s,
          "resource requests for cpu and memory, a memory limit")
    if "resources" not in values:
        check("cpu" not in res.get("limits", {}), s, "a CPU limit by default (a throttled webhook times out)")
    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, s, "pod runAsNonRoot")
    if "podSecurityContext" not in values:
        check(psc.get("runAsUser") == 65532, s, "pod runAsUser 65532")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", s, "pod seccompProfile")
    check(csc.get("readOnlyRootFilesystem") is True, s, "readOnlyRootFilesystem")
    check(csc.get("allowPrivilegeEscalation") is False, s, "allowPrivilegeEscalation")
    check(csc.get("capabilities", {}).get("drop") == ["ALL"], s, "capabilities drop ALL")
    check(csc.get("runAsNonRoot") is True, s, "container runAsNonRoot")
    if "securityContext" not in values:
        check(csc.get("runAsUser") == 65532, s, "container runAsUser 65532")
    image = c.get("image", "")
    digest = values.get("image", {}).get("digest")
    want_image = f"ghcr.io/trustgate/trustgate@{digest}" if digest else "ghcr.io/trustgate/trustgate:0.1.0"
    check(image == want_image, s, f"image {image} != {want_image}")
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    check(mounts.get("tls", {}).get("mountPath") == "/tls" and mounts["tls"].get("readOnly"), s, "tls mount")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    tls_secret = vols.get("tls", {}).get("secret", {}).get("secretName")
    check(pod.get("serviceAccountName") == fullname, s, "serviceAccountName")
    tsc = pod.get("topologySpreadConstraints", [])
    if values.get("topologySpread", {}).get("enabled", True):
        host = [t for t in tsc if t.get("topologyKey") == "kubernetes.io/hostname"]
        check(host and host[0].get("whenUnsatisfiable") == "ScheduleAnyway"
              and host[0].get("labelSelector", {}).get("matchLabels") == sel, s, "hostname spread constraint")
    for t in tsc:
        check(t.get("labelSelector", {}).get("matchLabels") == sel, s, f"spread constraint selector {t}")
    sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(sleep >= 1 and sleep + 20 <= grace, s,
          f"preStop sleep {sleep}s + 20s drain must fit terminationGracePeriodSeconds {grace}")
    pcn = values.get("priorityClassName", "system-cluster-critical")
    check(pod.get("priorityClassName") == pcn, s, f"priorityClassName {pod.get('priorityClassName')}")

    # --- service
    svc = one(by, "Service", s)
    sports = {p["name"]: (p["port"], p["targetPort"]) for p in svc.get("spec", {}).get("ports", [])}
    check(sports == {"https": (443, "webhook"), "metrics": (8080, "admin")}, s, f"service ports {sports}")
    check(svc.get("spec", {}).get("selector") == sel, s, "service selector != deployment selector")
    check(svc.get("metadata", {}).get("name") == fullname, s, "service name")

    # --- PDB
    pdbs = by.get("PodDisruptionBudget", [])
    if replicas > 1:
        check(len(pdbs) == 1, s, "no PodDisruptionBudget with replicas > 1")
        if pdbs:
            p = pdbs[0]["spec"]
            check(p.get("selector", {}).get("matchLabels") == sel, s, "PDB selector")
            want = values.get("podDisruptionBudget", {})
            if want.get("minAvailable") is not None:
                check(p.get("minAvailable") == want["minAvailable"] and "maxUnavailable" not in p, s, f"PDB {p}")
            else:
                check(p.get("maxUnavailable") == 1 and "minAvailable" not in p, s, f"PDB {p}")
    else:
        check(not pdbs, s, "PodDisruptionBudget rendered for a single replica")

    # --- RBAC: least privilege
    roles = {r["metadata"]["name"]: r for r in by.get("ClusterRole", [])}
    check(set(roles) == {fullname, fullname + "-credentials", fullname + "-hooks"}, s, f"ClusterRoles {sorted(roles)}")
    hook_rules = roles.pop(fullname + "-hooks", {}).get("rules", [])
    ar = "admissionregistration.k8s.io"
    wcs = ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"]
    check(hook_rules == [{"apiGroups": [ar], "resources": wcs, "verbs": ["create"]},
                         {"apiGroups": [ar], "resources": wcs, "resourceNames": [fullname],
                          "verbs": ["get", "patch", "update", "delete"]}], s, f"hooks ClusterRole rules {hook_rules}")
    granted = set()
    for r in roles.values():
        for rule in r.get("rules", []):
            for field in ("apiGroups", "resources", "verbs"):
                check("*" not in rule.get(field, []), s, f"wildcard in {r['metadata']['name']} {field}")
            for g in rule["apiGroups"]:
                for res_ in rule["resources"]:
                    for v in rule["verbs"]:
                        granted.add((g, res_, v))
    want_granted = {("trustgate.dev", r, v) for r in ("trustpolicies", "clustertrustpolicies") for v in ("get", "list", "watch")}
    want_granted |= {("trustgate.dev", r + "/status", v) for r in ("trustpolicies", "clustertrustpolicies") for v in ("patch", "update")}
    want_granted |= {("events.k8s.io", "events", v) for v in ("create", "patch")}
    want_granted |= {("", r, "get") for r in ("secrets", "serviceaccounts")}
    if values.get("audit", {}).get("interval"):
        want_granted |= {("", "pods", "list")}  # the periodic audit of running Pods
    check(granted == want_granted, s, f"RBAC grants differ: extra {sorted(granted - want_granted)}, missing {sorted(want_granted - granted)}")
    hook_crb = [b for b in by.get("ClusterRoleBinding", []) if b["roleRef"]["name"] == fullname + "-hooks"]
    check(len(hook_crb) == 1 and hook_crb[0]["subjects"] == [{"kind": "ServiceAccount", "name": fullname + "-hooks", "namespace": ns}],
          s, "hooks ClusterRoleBinding")
    by["ClusterRoleBinding"] = [b for b in by.get("ClusterRoleBinding", []) if b not in hook_crb]
    crbs = {b["roleRef"]["name"] for b in by.get("ClusterRoleBinding", [])}
    rbs = {b["metadata"]["namespace"] for b in by.get("RoleBinding", [])}
    secret_ns = values.get("rbac", {}).get("secretsNamespaces", [])
    if secret_ns:
        check(crbs == {fullname}, s, f"secrets are bound cluster-wide despite rbac.secretsNamespaces: {crbs}")
        check(rbs == set(secret_ns) | {ns}, s, f"RoleBindings in {sorted(rbs)}")
    else:
        check(crbs == {fullname, fullname + "-credentials"} and not rbs, s, f"bindings {crbs} {rbs}")
    for b in by.get("ClusterRoleBinding", []) + by.get("RoleBinding", []):
        check(b["subjects"] == [{"kind": "ServiceAccount", "name": fullname, "namespace": ns}], s,
              f"binding subjects {b['subjects']}")

    # --- hooks: registration after readiness, removal before uninstall, helm test
    def hook(d):
        return (d["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
    jobs = {hook(j): j for j in by.get("Job", [])}
    check(set(jobs) == {"post-install,post-upgrade", "pre-delete"}, s, f"hook Jobs {sorted(jobs)}")
    svc_sel = sel
    for h, j in jobs.items():
        jp = j["spec"]["template"]["spec"]
        jc = jp["containers"][0]
        check(jp.get("serviceAccountName") == fullname + "-hooks", s, f"{h} Job service account")
        check(jc.get("image") == want_image, s, f"{h} Job image {jc.get('image')}")
        labels = j["spec"]["template"]["metadata"].get("labels", {})
        check(not all(labels.get(k) == v for k, v in svc_sel.items()), s, f"{h} Job pods are selected by the Service")
        check(jc.get("securityContext", {}).get("readOnlyRootFilesystem") is True, s, f"{h} Job securityContext")
        if h == "pre-delete":
            check(jc.get("args") == ["webhook", "unregister", f"--validating={fullname}", f"--mutating={fullname}"], s,
                  f"pre-delete Job args {jc.get('args')}")
        else:
            a = jc.get("args", [])
            check(a[:3] == ["webhook", "register", "/webhooks"], s, f"register Job args {a}")
            check(arg(a, "--wait-url") == [f"http://{fullname}.{ns}.svc:8080/readyz"], s, f"register waits for {arg(a, '--wait-url')}")
            vols_ = {v["name"]: v for v in jp.get("volumes", [])}
            check(vols_.get("webhooks", {}).get("configMap", {}).get("name") == f"{fullname}-webhooks", s, "register Job mounts the webhooks ConfigMap")
            check("ca" in vols_, s, "register Job has the CA volume")
            want_removed = [] if values.get("mutation", {}).get("enabled", True) else [fullname]
            check(arg(a, "--remove-mutating") == want_removed, s,
                  f"register Job --remove-mutating {arg(a, '--remove-mutating')} (mutation turned off must remove it)")
    tests = [p_ for p_ in by.get("Pod", []) if hook(p_) == "test"]
    if check(len(tests) == 1, s, "one helm test Pod"):
        tc = tests[0]["spec"]["containers"][0]
        ta = tc.get("args", [])
        check(ta[:2] == ["webhook", "probe"], s, f"test Pod args {ta}")
        check(arg(ta, "--url") == [f"https://{fullname}.{ns}.svc:443/validate"], s, "test Pod URL")
        want_expect = "denied" if values.get("defaultAction", "Deny") == "Deny" else "allowed"
        check(arg(ta, "--expect") == [want_expect], s, f"test Pod --expect {arg(ta, '--expect')}")
        labels = tests[0]["metadata"].get("labels", {})
        check(not all(labels.get(k) == v for k, v in svc_sel.items()), s, "test Pod is selected by the Service")
    check(not [x for x in docs if x["kind"] in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
               and "helm.sh/hook" in (x["metadata"].get("annotations") or {})], s, "webhook configuration as a hook")

    # --- certificates
    dns = f"{fullname}.{ns}.svc"
    if cert_mode == "generate":
        sec = [x for x in by.get("Secret", []) if x["metadata"]["name"] == tls_secret]
        check(len(sec) == 1 and sec[0].get("type") == "kubernetes.io/tls", s, "generated TLS Secret")
        if sec:
            import datetime
            na = (sec[0]["metadata"].get("annotations") or {}).get("trustgate.dev/not-after", "")
            days = values.get("certs", {}).get("generate", {}).get("validityDays", 3650)
            try:
                left = (datetime.datetime.fromisoformat(na.replace("Z", "+00:00")) - datetime.datetime.now(datetime.timezone.utc)).days
            except ValueError:
                left = None
            check(left is not None and days - 2 <= left <= days, s, f"Secret annotation trustgate.dev/not-after {na!r} not ~{days} days ahead")
        check("cert-manager.io/inject-ca-from" not in annotations, s, "inject-ca-from in generate mode")
        ca_b64 = wh.get("clientConfig", {}).get("caBundle", "")
        if sec and check(ca_b64 == sec[0]["data"]["ca.crt"], s, "caBundle != Secret ca.crt"):
            with tempfile.TemporaryDirectory() as t:
                for k, fn in (("ca.crt", "ca.pem"), ("tls.crt", "tls.pem"), ("tls.key", "key.pem")):
                    open(os.path.join(t, fn), "wb").write(base64.b64decode(sec[0]["data"][k]))
                v = subprocess.run(["openssl", "verify", "-purpose", "sslserver", "-CAfile", "ca.pem", "tls.pem"],
                                   cwd=t, capture_output=True, text=True)
                check(v.returncode == 0, s, f"serving cert does not verify against the caBundle: {v.stdout}{v.stderr}")
                san = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", "tls.pem"],
                                     cwd=t, capture_output=True, text=True).stdout
                check(f"DNS:{dns}" in san, s, f"SAN lacks {dns}: {san}")
                pub = lambda args: subprocess.run(["openssl"] + args, cwd=t, capture_output=True).stdout
                check(pub(["x509", "-noout", "-pubkey", "-in", "tls.pem"]) == pub(["pkey", "-pubout", "-in", "key.pem"]),
                      s, "tls.key does not match tls.crt")
    elif cert_mode == "certManager":
        certs = {x["metadata"]["name"]: x for x in by.get("Certificate", [])}
        serving = certs.get(f"{fullname}-tls", {}).get("spec", {})
        check(serving.get("secretName") == tls_secret, s, "Certificate secretName != mounted Secret")
        check(dns in serving.get("dnsNames", []), s, f"Certificate dnsNames lack {dns}")
        check("server auth" in serving.get("usages", []), s, "Certificate lacks usage server auth")
        check(annotations.get("cert-manager.io/inject-ca-from") == f"{ns}/{fullname}-tls", s, "inject-ca-from")
        check("caBundle" not in wh.get("clientConfig", {}), s, "caBundle set although cert-manager injects it")
        check(not by.get("Secret"), s, "a Secret rendered in certManager mode")
        issuer_ref = values.get("certs", {}).get("certManager", {}).get("issuerRef")
        issuers = {x["metadata"]["name"]: x["spec"] for x in by.get("Issuer", [])}
        if issuer_ref:
            check(serving.get("issuerRef") == issuer_ref, s, "issuerRef not used")
            check(not issuers and set(certs) == {f"{fullname}-tls"}, s, "chart CA rendered despite issuerRef")
        else:
            ca = certs.get(f"{fullname}-ca", {}).get("spec", {})
            check(ca.get("isCA") is True and ca.get("issuerRef", {}).get("name") == f"{fullname}-selfsigned", s, "CA Certificate")
            check(issuers.get(f"{fullname}-selfsigned") == {"selfSigned": {}}, s, "selfSigned Issuer")
            check(issuers.get(f"{fullname}-ca") == {"ca": {"secretName": ca.get("secretName")}}, s, "CA Issuer")
            check(serving.get("issuerRef", {}).get("name") == f"{fullname}-ca", s, "serving cert issuer")
        for x in by.get("Certificate", []) + by.get("Issuer", []):
            check(x.get("apiVersion") == "cert-manager.io/v1", s, f"{x['kind']} apiVersion")
    elif cert_mode == "external":
        ext = values["certs"]["external"]
        check(tls_secret == ext["secretName"], s, "external secretName not mounted")
        check(wh.get("clientConfig", {}).get("caBundle") == ext["caBundle"], s, "external caBundle")
        check(not by.get("Secret") and not by.get("Certificate"), s, "Secret/Certificate rendered in external mode")

    # --- ServiceMonitor
    sms = by.get("ServiceMonitor", [])
    if values.get("metrics", {}).get("serviceMonitor", {}).get("enabled"):
        if check(len(sms) == 1, s, "ServiceMonitor missing"):
            sm = sms[0]
            check(sm["apiVersion"] == "monitoring.coreos.com/v1", s, "ServiceMonitor apiVersion")
            check(sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items(), s,
                  "ServiceMonitor selector does not select the Service")
            check([e["port"] for e in sm["spec"]["endpoints"]] == ["metrics"], s, "ServiceMonitor port")
            check(sm["spec"]["endpoints"][0]["path"] == "/metrics", s, "ServiceMonitor path")
    else:
        check(not sms, s, "ServiceMonitor rendered although disabled")

    # --- NetworkPolicy
    nps = by.get("NetworkPolicy", [])
    if values.get("networkPolicy", {}).get("enabled"):
        if check(len(nps) == 1, s, "NetworkPolicy missing"):
            np = nps[0]["spec"]
            check(np["podSelector"]["matchLabels"] == sel, s, "NetworkPolicy podSelector")
            ports_ = {p["port"] for r in np.get("ingress", []) for p in r.get("ports", [])}
            check(ports_ == {"webhook", "admin"}, s, f"NetworkPolicy ingress ports {ports_}")
            webhook_rule = [r for r in np["ingress"] if any(p["port"] == "webhook" for p in r["ports"])][0]
            npv = values.get("networkPolicy", {})
            cidrs = npv.get("apiServerCIDRs") or []
            api_ns = npv.get("apiServerNamespaceSelector")
            if cidrs or api_ns or npv.get("webhookFrom"):
                # Restricted: exactly the named API-server sources (and the chart's test Pod) may call.
                peers = webhook_rule.get("from", [])
                for c in cidrs:
                    check({"ipBlock": {"cidr": c}} in peers, s, f"API server CIDR {c} not allowed to the webhook port")
                if api_ns:
                    check({"namespaceSelector": api_ns} in peers, s, "API server namespaceSelector not allowed")
                check({"podSelector": {"matchLabels": {"app.kubernetes.io/instance": rel,
                       "app.kubernetes.io/component": "test"}}} in peers, s,
                      "the helm test Pod cannot reach the webhook port")
                check(all(p.get("ipBlock", {}).get("cidr") != "0.0.0.0/0" for p in peers), s,
                      "webhook port open to 0.0.0.0/0 although restricted")
            else:
                check("from" not in webhook_rule, s, "the API server could be blocked from the webhook port")
            admin_rule = [r for r in np["ingress"] if any(p["port"] == "admin" for p in r["ports"])][0]
            if "from" in admin_rule:
                check({"podSelector": {"matchLabels": {"app.kubernetes.io/instance": rel,
                       "app.kubernetes.io/component": "webhook-registration"}}} in admin_rule["from"], s,
                      "the registration Job cannot reach /readyz through the NetworkPolicy")
    else:
        check(not nps, s, "NetworkPolicy rendered although disabled")

    print(f"semantics ok: {s}" if not [e for e in errors if e.startswith(f"[{s}]")] else f"semantics FAILED: {s}")

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
PY

# ---------------------------------------------------------------------------------------------
step "RBAC: no TrustPolicy write access aggregated into the built-in admin/edit roles"
# Whoever may write TrustPolicies in a namespace can relax every ClusterTrustPolicy that does not
# say namespacedPolicies: Tighten (docs/threat-model.md). So the chart never labels a ClusterRole
# rbac.authorization.k8s.io/aggregate-to-admin or -edit (which would hand that to every namespace
# admin and editor), and an aggregation into view, if one is ever added, stays read-only.
cat >"$TMP/aggregation.py" <<'PY'
import sys, yaml
READ = {"get", "list", "watch"}
problems = []
for path in sys.argv[1:]:
    for d in yaml.safe_load_all(open(path)):
        if not d or d.get("kind") != "ClusterRole":
            continue
        md = d.get("metadata") or {}
        name = md.get("name")
        labels = md.get("labels") or {}
        into = sorted(k.rsplit("/", 1)[1][len("aggregate-to-"):] for k, v in labels.items()
                      if k.startswith("rbac.authorization.k8s.io/aggregate-to-") and str(v).lower() == "true")
        if d.get("aggregationRule"):
            problems.append(f"{path}: ClusterRole {name} has an aggregationRule")
        for role in into:
            if role != "view":
                problems.append(f"{path}: ClusterRole {name} aggregates into the built-in {role} role")
                continue
            for rule in d.get("rules") or []:
                groups = rule.get("apiGroups") or []
                writes = set(rule.get("verbs") or []) - READ
                if ("trustgate.dev" in groups or "*" in groups) and writes:
                    problems.append(f"{path}: ClusterRole {name} aggregates {sorted(writes)} on trustgate.dev into view")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY
"$PY" "$TMP/aggregation.py" "$TMP"/render/*.yaml \
    || fail "a ClusterRole aggregates TrustPolicy access into a built-in role"
echo "no aggregation into admin/edit in ${#scenarios[@]} renders"
# The check can fail: an aggregated admin or edit role, and write verbs aggregated into view.
agg_role() { # LABEL VERBS
    printf '%s\n' "apiVersion: rbac.authorization.k8s.io/v1" "kind: ClusterRole" \
        "metadata:" "  name: trustgate-aggregated" "  labels: {rbac.authorization.k8s.io/$1: \"true\"}" \
        "rules:" "  - apiGroups: [\"trustgate.dev\"]" "    resources: [\"trustpolicies\"]" "    verbs: $2"
}
agg_role aggregate-to-edit '[get, create, update]' >"$TMP/agg-edit.yaml"
agg_role aggregate-to-admin '[get, list]' >"$TMP/agg-admin.yaml"
agg_role aggregate-to-view '[get, list, patch]' >"$TMP/agg-view-write.yaml"
agg_role aggregate-to-view '[get, list, watch]' >"$TMP/agg-view-read.yaml"
for neg in agg-edit agg-admin agg-view-write; do
    if "$PY" "$TMP/aggregation.py" "$TMP/$neg.yaml" >"$TMP/neg.out"; then
        fail "the aggregation check accepted $neg.yaml"
    fi
    echo "rejected: $(head -1 "$TMP/neg.out" | sed "s|$TMP/||")"
done
"$PY" "$TMP/aggregation.py" "$TMP/agg-view-read.yaml" >/dev/null \
    || fail "the aggregation check refused a read-only aggregation into view"
echo "accepted: a read-only aggregation into view"

# ---------------------------------------------------------------------------------------------
step "$MANIFEST is up to date"
{
    cat <<EOF
# trustgate ${app_version}: every resource of the Helm chart, for clusters without Helm.
#
#   kubectl create namespace trustgate
#   kubectl apply --server-side -f manifests/trustgate.yaml
#
# REQUIRES cert-manager (cert-manager.io/v1). Generated by scripts/packaging.sh; do not edit.
# It is the chart rendered with its default values, except those in
# charts/trustgate/ci/manifests-values.yaml, without Helm's hooks:
#   helm template trustgate charts/trustgate --namespace trustgate --no-hooks \\
#     -f charts/trustgate/ci/manifests-values.yaml
# followed by the ValidatingWebhookConfiguration that the chart's registration Job would apply
# once trustgate is ready. Enforcement is opt-in: only namespaces labelled
# trustgate.dev/enforce=true are checked, so applying this file blocks nothing by itself.
# To remove it, delete the ValidatingWebhookConfiguration named trustgate first.
# - certs.mode=certManager: by default the chart generates a CA and a serving certificate at
#   install time (and reuses them on upgrade), which would make this file different on every
#   render and leave kubectl users without rotation. Here cert-manager issues the certificate
#   from a chart-local self-signed CA and injects the caBundle into the webhook configuration.
#   Without cert-manager, use the Helm chart, or render it yourself with certs.mode=external.
# - webhook.excludeNamespaces=[cert-manager]: trustgate depends on cert-manager, so it never
#   blocks cert-manager's pods.
# The webhook is namespace trustgate's: to install elsewhere, render the chart with --namespace.
# defaultAction is Deny: until policies match them, images in checked namespaces are rejected.
EOF
    "$HELM" template trustgate "$CHART" --namespace trustgate --kube-version "$KUBE_VERSION" \
        --no-hooks -f "$MANIFEST_VALUES"
} >"$TMP/manifest.yaml" || fail "rendering $MANIFEST failed"
with_webhooks "$TMP/manifest.yaml" || fail "webhook configuration of $MANIFEST"
validate "$TMP/manifest.yaml"
if [[ $UPDATE == 1 ]]; then
    mkdir -p "$(dirname "$MANIFEST")"
    cp "$TMP/manifest.yaml" "$MANIFEST"
    echo "updated $MANIFEST"
fi
[[ -f $MANIFEST ]] || fail "$MANIFEST is missing: run scripts/packaging.sh --update"
if ! diff -u "$MANIFEST" "$TMP/manifest.yaml" >"$TMP/manifest.diff"; then
    head -60 "$TMP/manifest.diff" >&2
    fail "$MANIFEST is out of date with the chart: run scripts/packaging.sh --update and commit it"
fi
echo "up to date: $MANIFEST ($(grep -c '^kind:' "$MANIFEST") resources)"

# ---------------------------------------------------------------------------------------------
step "generated certificates are reused on upgrade (helm lookup, against a stub API server)"
# A stub API server on 127.0.0.1 serves two Secrets: tg's (complete) and partial's (no ca.crt).
# `helm template --dry-run=server` runs lookup against it, as `helm upgrade` does in a cluster.
mkdir -p "$TMP/stub"
"$PY" - "$TMP/stub" <<'PY'
import json, sys
d = sys.argv[1]
def secret(name, data):
    json.dump({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
               "metadata": {"name": name, "namespace": "tg-system"}, "data": data},
              open(f"{d}/{name}.json", "w"))
secret("tg-trustgate-tls", {"ca.crt": "RVhJU1RJTkctQ0E=", "tls.crt": "RVhJU1RJTkctQ1JU", "tls.key": "RVhJU1RJTkctS0VZ"})
secret("partial-trustgate-tls", {"tls.crt": "UEFSVElBTC1DUlQ=", "tls.key": "UEFSVElBTC1LRVk="})
import datetime
def annotate(name, days):
    s = json.load(open(f"{d}/{name}.json"))
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    s["metadata"]["annotations"] = {"trustgate.dev/not-after": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    json.dump(s, open(f"{d}/{name}.json", "w"))
annotate("tg-trustgate-tls", 400)
import base64
old_ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nT0xE\n-----END CERTIFICATE-----\n").decode()
secret("expiring-trustgate-tls", {"ca.crt": old_ca, "tls.crt": "RVhQSVJJTkctQ1JU", "tls.key": "RVhQSVJJTkctS0VZ"})
annotate("expiring-trustgate-tls", 10)
secret("legacy-trustgate-tls", {"ca.crt": old_ca, "tls.crt": "TEVHQUNZLUNSVA==", "tls.key": "TEVHQUNZLUtFWQ=="})
PY
"$PY" - "$TMP/stub" >"$TMP/stub/log" 2>&1 <<'PY' &
import glob, json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
d = sys.argv[1]
secrets = {}
for f in glob.glob(f"{d}/*.json"):
    s = json.load(open(f))
    secrets[f"/api/v1/namespaces/{s['metadata']['namespace']}/secrets/{s['metadata']['name']}"] = s
class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        print("GET", self.path, flush=True)
    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/version":
            return self.reply(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
        if path == "/api":
            return self.reply(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            return self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        if path == "/api/v1":
            return self.reply(200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret", "verbs": ["get"]}]})
        if path in secrets:
            return self.reply(200, secrets[path])
        self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})
server = HTTPServer(("127.0.0.1", 0), Handler)
with open(f"{d}/port.tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(f"{d}/port.tmp", f"{d}/port")
server.serve_forever()
PY
stub_pid=$!
trap 'kill "$stub_pid" 2>/dev/null || true; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do [[ -f "$TMP/stub/port" ]] && break; sleep 0.1; done
[[ -f "$TMP/stub/port" ]] || { cat "$TMP/stub/log" >&2; fail "the stub API server did not start"; }
cat >"$TMP/stub/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters: [{name: stub, cluster: {server: "http://127.0.0.1:$(cat "$TMP/stub/port")"}}]
users: [{name: stub, user: {}}]
contexts: [{name: stub, context: {cluster: stub, user: stub}}]
current-context: stub
KUBECONFIG
for rel in tg partial fresh expiring legacy; do
    KUBECONFIG="$TMP/stub/kubeconfig" "$HELM" template "$rel" "$CHART" --namespace "$NS" --dry-run=server \
        >"$TMP/stub/$rel.yaml" || fail "helm template --dry-run=server (release $rel) failed"
done
kill "$stub_pid" 2>/dev/null || true
grep -q "GET /api/v1/namespaces/$NS/secrets/tg-trustgate-tls" "$TMP/stub/log" \
    || fail "helm did not look up the Secret (stub log: $(tr '\n' ' ' <"$TMP/stub/log"))"
"$PY" - "$TMP/stub" <<'PY' || fail "lookup of the generated certificate Secret"
import base64, json, sys, yaml
d = sys.argv[1]
def tls(rel):
    docs = [x for x in yaml.safe_load_all(open(f"{d}/{rel}.yaml")) if x]
    sec = [x for x in docs if x["kind"] == "Secret"][0]["data"]
    cm = [x for x in docs if x["kind"] == "ConfigMap" and x["metadata"]["name"].endswith("-webhooks")][0]
    vwc = json.loads(cm["data"]["validating.json"])
    return sec, vwc["webhooks"][0]["clientConfig"]["caBundle"]
sec, ca = tls("tg")
assert sec == {"ca.crt": "RVhJU1RJTkctQ0E=", "tls.crt": "RVhJU1RJTkctQ1JU", "tls.key": "RVhJU1RJTkctS0VZ"}, f"existing Secret not reused: {sec}"
assert ca == "RVhJU1RJTkctQ0E=", "caBundle is not the existing Secret's ca.crt"
print("reused: an existing complete Secret keeps its certificate and CA (caBundle = its ca.crt)")
for rel, why in (("partial", "an incomplete Secret (no ca.crt)"), ("fresh", "no Secret")):
    sec, ca = tls(rel)
    assert sec["ca.crt"] == ca and b"BEGIN CERTIFICATE" in base64.b64decode(ca), f"{rel}: no new CA"
    assert b"BEGIN CERTIFICATE" in base64.b64decode(sec["tls.crt"]) and b"PRIVATE KEY" in base64.b64decode(sec["tls.key"]), rel
    print(f"regenerated: {why} gets a new CA and certificate")
for rel, why in (("expiring", "a certificate expiring in 10 days"), ("legacy", "a Secret without trustgate.dev/not-after")):
    sec, ca = tls(rel)
    old = "-----BEGIN CERTIFICATE-----\nT0xE\n-----END CERTIFICATE-----"
    assert sec["tls.crt"] not in ("RVhQSVJJTkctQ1JU", "TEVHQUNZLUNSVA=="), f"{rel}: certificate not renewed"
    bundle = base64.b64decode(ca).decode()
    new = base64.b64decode(sec["ca.crt"]).decode().strip()
    assert bundle.count("BEGIN CERTIFICATE") == 2 and new in bundle and old in bundle, f"{rel}: caBundle must hold the new and the old CA: {bundle}"
    print(f"rotated: {why} gets a new CA and certificate; the caBundle holds the new and the old CA")
PY

# ---------------------------------------------------------------------------------------------
step "NOTES.txt renders and points at what exists"
# helm template skips NOTES.txt: render a copy of it as an ordinary template of a scratch chart.
cp -r "$CHART" "$TMP/notes-chart"
{ echo "notes: |"; echo "  NOTES:"; sed 's/^/  /' "$CHART/templates/NOTES.txt"; } >"$TMP/notes-chart/templates/notes.yaml"
for s in "${scenarios[@]}"; do
    mapfile -t va < <(values_args "$s" | sed "s|^$CHART/|$TMP/notes-chart/|")
    "$HELM" template "$REL" "$TMP/notes-chart" --namespace "$NS" --show-only templates/notes.yaml "${va[@]}" \
        >"$TMP/notes.yaml" || fail "NOTES.txt does not render for value set '$s'"
    "$PY" - "$TMP/notes.yaml" <<'PY' || fail "NOTES.txt for value set '$s'"
import glob, os, sys, yaml
notes = yaml.safe_load(open(sys.argv[1]))["notes"]
want = ["trustgate inspect", "trustgate check", "examples/policies/", "kubectl events", "/metrics"]
want += [os.path.basename(f) for f in glob.glob("examples/policies/*.yaml")]
missing = [w for w in want if w not in notes]
if missing:
    sys.exit(f"NOTES.txt does not mention {missing}")
PY
done
echo "NOTES.txt renders for ${#scenarios[@]} value sets and names the inspect/check commands and every example"

# ---------------------------------------------------------------------------------------------
step "chart README documents every value"
"$PY" - "$CHART/values.yaml" "$CHART/README.md" <<'PY' || fail "$CHART/README.md lacks values (add rows to its Values table)"
import sys, yaml
values, readme = yaml.safe_load(open(sys.argv[1])), open(sys.argv[2]).read()
whole = {"resources", "certs.certManager.issuerRef", "updateStrategy", "livenessProbe", "readinessProbe",
         "podSecurityContext", "securityContext", "hooks.resources"}
def walk(d, prefix=""):
    for k, v in d.items():
        path = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v and path not in whole:
            yield from walk(v, path)
        else:
            yield path
paths = list(walk(values))
missing = [p for p in paths if f"`{p}`" not in readme]
for p in missing:
    print(f"undocumented value: {p}", file=sys.stderr)
print(f"{len(paths) - len(missing)} of {len(paths)} values documented")
sys.exit(1 if missing else 0)
PY

# ---------------------------------------------------------------------------------------------
step "example policies: valid against the CRD schema"
for f in examples/policies/*.yaml; do validate "$f"; done
"$PY" - crds/trustgate-crds.yaml examples/policies/*.yaml <<'PY' || fail "example policies"
import sys, yaml, jsonschema
crds = {d["spec"]["names"]["kind"]: d for d in yaml.safe_load_all(open(sys.argv[1])) if d}

def to_jsonschema(s):
    # OpenAPI v3 "nullable" has no JSON Schema meaning; the other x-kubernetes-* keys are ignored.
    if isinstance(s, dict):
        out = {k: to_jsonschema(v) for k, v in s.items() if not k.startswith("x-kubernetes-")}
        if out.pop("nullable", False) and "type" in out:
            out["type"] = [out["type"], "null"]
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)      # structural schema: prune = reject
        return out
    if isinstance(s, list):
        return [to_jsonschema(v) for v in s]
    return s

failed = False
seen = set()
for path in sys.argv[2:]:
    for d in yaml.safe_load_all(open(path)):
        if not d:
            continue
        kind = d.get("kind")
        if d.get("apiVersion") != "trustgate.dev/v1alpha1" or kind not in crds:
            print(f"{path}: not a trustgate policy: {d.get('apiVersion')} {kind}", file=sys.stderr)
            failed = True
            continue
        seen.add(kind)
        crd = crds[kind]
        schema = to_jsonschema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
        schema["properties"].pop("metadata", None)
        body = {k: v for k, v in d.items() if k not in ("apiVersion", "kind", "metadata")}
        errs = sorted(jsonschema.Draft7Validator(schema).iter_errors(body), key=str)
        namespaced = crd["spec"]["scope"] == "Namespaced"
        if namespaced != ("namespace" in d.get("metadata", {})):
            errs.append(f"metadata.namespace {'missing' if namespaced else 'set'} on a {kind}")
        spec = d.get("spec", {})
        if spec.get("action", "Verify") == "Verify" and not (spec.get("notary", {}).get("url") and spec.get("trustRoots")):
            errs.append("action Verify needs notary.url and trustRoots")
        for e in errs:
            print(f"{path}: {getattr(e, 'message', e)}", file=sys.stderr)
            failed = True
        if not errs:
            print(f"schema ok: {path} ({kind} {d['metadata']['name']})")
if seen != {"TrustPolicy", "ClusterTrustPolicy"}:
    print(f"examples should show both kinds, found {seen}", file=sys.stderr)
    failed = True
sys.exit(1 if failed else 0)
PY

# ---------------------------------------------------------------------------------------------
step "Dockerfile and .dockerignore"
grep -qx 'FROM rust:1.95-bookworm AS build' Dockerfile || fail "Dockerfile: builder must be rust:1.95-bookworm"
grep -q 'cargo build --locked --release' Dockerfile || fail "Dockerfile: must run cargo build --locked --release"
grep -qx 'FROM gcr.io/distroless/cc-debian12:nonroot' Dockerfile || fail "Dockerfile: runtime must be distroless cc-debian12:nonroot"
grep -qx 'USER 65532:65532' Dockerfile || fail "Dockerfile: USER 65532:65532"
grep -qx 'ENTRYPOINT \["/trustgate"\]' Dockerfile || fail "Dockerfile: ENTRYPOINT"
grep -qx 'CMD \["serve"\]' Dockerfile || fail "Dockerfile: CMD"
for l in source description licenses version; do
    grep -q "org.opencontainers.image.$l=" Dockerfile || fail "Dockerfile: label org.opencontainers.image.$l"
done
license="$(sed -n 's/^license = "\(.*\)"/\1/p' Cargo.toml)"
grep -q "org.opencontainers.image.licenses=\"$license\"" Dockerfile || fail "Dockerfile: licenses label != Cargo.toml ($license)"
grep -qx '/target' .dockerignore || fail ".dockerignore must exclude /target"
# Everything the release build reads must stay in the build context.
for p in Cargo.toml Cargo.lock src benches; do
    if grep -qxE "/?$p/?" .dockerignore; then fail ".dockerignore excludes $p, which cargo build needs"; fi
done
echo "Dockerfile: builder, release build, distroless runtime, user, entrypoint and labels present"

# ---------------------------------------------------------------------------------------------
# Opt-in: TRUSTGATE_BIN=target/debug/trustgate runs the rendered container arguments against the
# real binary (scripts/test.sh sets it after building): certificate, flags, probes and webhook.
if [[ -n "${TRUSTGATE_BIN:-}" ]]; then
step "smoke test: the Deployment's arguments and certificate with $TRUSTGATE_BIN"
[[ -x "$TRUSTGATE_BIN" ]] || fail "TRUSTGATE_BIN=$TRUSTGATE_BIN is not an executable"
mkdir -p "$TMP/smoke/tls" "$TMP/smoke/policies"
cp examples/policies/*.yaml "$TMP/smoke/policies/"
# Arguments and certificate of a render with most options (extraKinds, registry config, budget).
"$HELM" template "$REL" "$CHART" --namespace "$NS" -f "$CHART/ci/extrakinds-values.yaml" \
    --set registryConfigSecret=regcreds >"$TMP/smoke/render.yaml" || fail "render for the smoke test"
"$PY" - "$TMP/smoke" <<'PY' || fail "preparing the smoke test"
import base64, json, socket, sys, yaml
d = sys.argv[1]
docs = [x for x in yaml.safe_load_all(open(f"{d}/render.yaml")) if x]
sec = [x for x in docs if x["kind"] == "Secret"][0]["data"]
for k in ("tls.crt", "tls.key", "ca.crt"):
    open(f"{d}/tls/{k}", "wb").write(base64.b64decode(sec[k]))
open(f"{d}/regcreds.json", "w").write('{"auths": {}}')
ports = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s.getsockname()[1]); s.close()
args = [x for x in docs if x["kind"] == "Deployment"][0]["spec"]["template"]["spec"]["containers"][0]["args"]
out = []
for a in args:
    a = a.replace("0.0.0.0:8443", f"127.0.0.1:{ports[0]}").replace("0.0.0.0:8080", f"127.0.0.1:{ports[1]}")
    a = a.replace("=/tls/", f"={d}/tls/").replace("=/registry/config.json", f"={d}/regcreds.json")
    out.append(a)
# Policies from files: the smoke test has no cluster.
out.append(f"--policy-dir={d}/policies")
open(f"{d}/args", "w").write("\n".join(out) + "\n")
open(f"{d}/ports", "w").write(f"{ports[0]} {ports[1]}\n")
def review(uid, image, kind=("", "v1", "Pod"), resource="pods", obj=None):
    g, v, k = kind
    obj = obj or {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
                  "spec": {"containers": [{"name": "c", "image": image}]}}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": g, "version": v, "kind": k},
        "resource": {"group": g, "version": v, "resource": resource},
        "namespace": "shop", "operation": "CREATE", "name": "p",
        "userInfo": {"username": "smoke"}, "object": obj, "dryRun": False}}
json.dump(review("allow-1", "registry.k8s.io/pause:3.10"), open(f"{d}/allow.json", "w"))
json.dump(review("deny-1", "docker.io/library/redis:7"), open(f"{d}/deny.json", "w"))
rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r", "namespace": "shop"},
           "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "docker.io/library/redis:7"}]}}}}
json.dump(review("rollout-1", None, ("argoproj.io", "v1alpha1", "Rollout"), "rollouts", rollout), open(f"{d}/rollout.json", "w"))
PY
read -r wport aport <"$TMP/smoke/ports"
mapfile -t sargs <"$TMP/smoke/args"
echo "running: $TRUSTGATE_BIN ${sargs[*]}"
"$TRUSTGATE_BIN" "${sargs[@]}" >"$TMP/smoke/log" 2>&1 &
smoke_pid=$!
trap 'kill "$smoke_pid" 2>/dev/null || true; rm -rf "$TMP"' EXIT
smoke_fail() { kill "$smoke_pid" 2>/dev/null || true; tail -20 "$TMP/smoke/log" >&2; fail "smoke test: $*"; }
ready=0
for _ in $(seq 100); do
    if curl -fsS "http://127.0.0.1:$aport/readyz" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$smoke_pid" 2>/dev/null || smoke_fail "trustgate exited (bad arguments?)"
    sleep 0.1
done
[[ $ready == 1 ]] || smoke_fail "/readyz did not answer 200 within 10 s"
curl -fsS "http://127.0.0.1:$aport/healthz" >/dev/null || smoke_fail "/healthz"
curl -fsS "http://127.0.0.1:$aport/metrics" | grep -q '^trustgate_' || smoke_fail "/metrics has no trustgate_ series"
curl -fsS "http://127.0.0.1:$aport/metrics" | grep -qE '^trustgate_serving_certificate_expiry_timestamp_seconds [1-9][0-9]{9}' \
    || smoke_fail "/metrics lacks the serving certificate's expiry"
# The API server connects to <svc>.<ns>.svc and checks the certificate against the caBundle.
post() { # FILE [PATH] -> response
    curl -fsS --cacert "$TMP/smoke/tls/ca.crt" --resolve "$REL-trustgate.$NS.svc:$wport:127.0.0.1" \
        -H 'Content-Type: application/json' --data-binary "@$TMP/smoke/$1" \
        "https://$REL-trustgate.$NS.svc:$wport${2:-/validate}"
}
post allow.json >"$TMP/smoke/allow.out" || smoke_fail "POST /validate over TLS with the chart's caBundle"
post deny.json >"$TMP/smoke/deny.out" || smoke_fail "POST /validate (deny)"
post rollout.json >"$TMP/smoke/rollout.out" || smoke_fail "POST /validate (extra kind)"
post deny.json /mutate >"$TMP/smoke/deny-mutate.out" || smoke_fail "POST /mutate (deny)"
kill "$smoke_pid" 2>/dev/null || true
wait "$smoke_pid" 2>/dev/null || true
"$PY" - "$TMP/smoke" <<'PY' || { tail -20 "$TMP/smoke/log" >&2; fail "smoke test: webhook answers"; }
import json, sys
d = sys.argv[1]
for name, uid, allowed in (("allow", "allow-1", True), ("deny", "deny-1", False), ("rollout", "rollout-1", False),
                           ("deny-mutate", "deny-1", False)):
    r = json.load(open(f"{d}/{name}.out"))["response"]
    assert r["uid"] == uid and r["allowed"] is allowed, f"{name}: {r}"
    print(f"{name}: allowed={r['allowed']} {r.get('status', {}).get('message', '')[:90]}")
PY
echo "smoke ok: flags accepted, TLS verified for $REL-trustgate.$NS.svc, probes, metrics, allow/deny, extra kind, /mutate"
fi

printf '\npackaging checks passed in %ss\n' "$(( $(date +%s) - t0 ))"
