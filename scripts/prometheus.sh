#!/usr/bin/env bash
# Alert rules and dashboard, checked with the real Prometheus tools (Debian package `prometheus`:
# the server and promtool; installed here when missing, never started as a service):
#   - promtool check rules on charts/trustgate/files/prometheus-rules.yaml,
#   - promtool test rules tests/prometheus/alerts.test.yaml (input series, expected alerts),
#   - helm template with metrics.prometheusRule.enabled and metrics.grafanaDashboard.enabled:
#     promtool check rules on the rendered PrometheusRule's groups; the dashboard ConfigMap is
#     labelled for the Grafana sidecar and holds files/grafana-dashboard.json unchanged.
# The live dashboard test (every panel's query against a real Prometheus scraping a real
# `trustgate serve`) is tests/dashboard.rs; it runs the `prometheus` binary this installs.
# Usage: scripts/prometheus.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nPROMETHEUS CHECK FAILED: %s\n' "$*" >&2; exit 1; }

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    step "installing the Debian prometheus package (server + promtool)"
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || fail "promtool missing and not root; install: prometheus"
        sudo=(sudo -n)
    fi
    "${sudo[@]}" apt-get update -qq
    # policy-rc.d keeps the package from starting its service; tests run the binary themselves.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        prometheus >/dev/null
fi
promtool --version 2>&1 | head -1

RULES=charts/trustgate/files/prometheus-rules.yaml
step "promtool check rules $RULES"
promtool check rules "$RULES"

step "promtool test rules tests/prometheus/alerts.test.yaml"
promtool test rules tests/prometheus/alerts.test.yaml

step "helm template: the PrometheusRule's groups pass promtool; the dashboard ConfigMap"
bash scripts/tools.sh >/dev/null
TOOLS="${TRUSTGATE_TOOLS:-$REPO/target/tools}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/trustgate-prometheus.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
export HOME="$TMP/home" HELM_CACHE_HOME="$TMP/helm/cache" HELM_CONFIG_HOME="$TMP/helm/config" \
    HELM_DATA_HOME="$TMP/helm/data"
mkdir -p "$HOME"
"$TOOLS/bin/helm" template tg charts/trustgate --namespace tg-system \
    --set metrics.prometheusRule.enabled=true --set metrics.grafanaDashboard.enabled=true \
    --set metrics.prometheusRule.additionalLabels.team=platform >"$TMP/render.yaml"
"$TOOLS/kv/bin/python" - "$TMP" <<'PY'
import json, sys, yaml
tmp = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(f"{tmp}/render.yaml")) if d]
rules = [d for d in docs if d["kind"] == "PrometheusRule"]
maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")]
assert len(rules) == 1, f"{len(rules)} PrometheusRules rendered"
assert len(maps) == 1, f"{len(maps)} dashboard ConfigMaps rendered"
spec = rules[0]["spec"]
text = json.dumps(spec)
assert 'job=\\"tg-trustgate\\"' in text, "the job selector is the release's"
assert 'job=\\"trustgate\\"' not in text, "a job selector was left unadapted"
for g in spec["groups"]:
    for r in g["rules"]:
        a = r.get("annotations", {})
        for k in ("summary", "description", "runbook_url"):
            assert a.get(k), f"{r['alert']}: no {k}"
        assert a["runbook_url"].endswith("#" + r["alert"].lower()), r["alert"]
        assert r["labels"].get("team") == "platform", r["alert"]
yaml.safe_dump({"groups": spec["groups"]}, open(f"{tmp}/rendered-rules.yaml", "w"))
cm = maps[0]
assert cm["metadata"]["labels"].get("grafana_dashboard") == "1", cm["metadata"]["labels"]
shipped = json.load(open("charts/trustgate/files/grafana-dashboard.json"))
assert json.loads(cm["data"]["trustgate.json"]) == shipped, "ConfigMap differs from the file"
print(f"PrometheusRule: {sum(len(g['rules']) for g in spec['groups'])} alerts; "
      f"dashboard ConfigMap: {len(shipped['panels'])} panels")
PY
promtool check rules "$TMP/rendered-rules.yaml"

step "chart: the ClusterRole may list pods only when the periodic audit is enabled"
pods_rule() {
    "$TOOLS/bin/helm" template tg charts/trustgate --namespace tg-system "$@" \
        | "$TOOLS/kv/bin/python" -c '
import sys, yaml
roles = [d for d in yaml.safe_load_all(sys.stdin) if d and d["kind"] == "ClusterRole"]
print(sum(1 for r in roles for rule in r.get("rules", []) if "pods" in rule.get("resources", [])))'
}
[[ "$(pods_rule)" == 0 ]] || fail "the default ClusterRole grants access to pods"
[[ "$(pods_rule --set audit.interval=10m)" == 1 ]] || fail "audit.interval set but no pods rule"
echo "pods: not listed by default; listed with audit.interval"

# Every alert has a runbook section in docs/alerts.md.
for a in $(sed -n 's/^ *- alert: //p' "$RULES"); do
    grep -q "^## $a\$" docs/alerts.md || fail "docs/alerts.md has no section '## $a'"
done
echo "every alert has a runbook section in docs/alerts.md"
