#!/usr/bin/env bash
# Load harness for the webhook: an external client against `trustgate serve` and the real
# Notary + registry stack, printing one table.
#  1. starts the local stack (e2e/stack.sh) unless --stack-env names a running one
#  2. builds trustgate (release) unless --bin names a binary
#  3. pushes an image and signs it with the notary CLI (as e2e/quickstart.sh does)
#  4. starts `trustgate serve --policy-dir` with a TrustPolicy pinning the repository's root key
#  5. the raw fetches a cold review needs (python, sequential, N runs), N cold reviews (serve
#     restarted before each: empty caches, no open connections), then wrk over keep-alive HTTPS POSTing an
#     AdmissionReview at 8 and 64 connections, then a Python client opening a new TLS
#     connection for every request
#  6. prints throughput, p50/p99/max latency and server CPU per review (utime+stime of the
#     serve process from /proc/<pid>/stat, before and after each phase), and the load average
#
#   scripts/bench-webhook.sh [--stack-env FILE] [--bin PATH] [--duration SECONDS]
#                            [--fresh-requests N] [--log-decisions all|rejected|none]
#                            [--cold-runs N] [--serve-arg ARG]...
# Needs wrk (apt-get install wrk; installed if missing and root), python3, curl, skopeo and
# the notary CLI (the stack's packages). The serve process logs to a file (its size per
# decision is printed too).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
STACK_ENV="" BIN="" DURATION=6 FRESH=2000 LOG_DECISIONS=all SERVE_ARGS=() COLD_RUNS=7
while (($#)); do
    case $1 in
        --stack-env) STACK_ENV=${2:?}; shift 2 ;;
        --bin) BIN=${2:?}; shift 2 ;;
        --duration) DURATION=${2:?}; shift 2 ;;
        --fresh-requests) FRESH=${2:?}; shift 2 ;;
        --cold-runs) COLD_RUNS=${2:?}; shift 2 ;;
        --log-decisions) LOG_DECISIONS=${2:?}; shift 2 ;;
        --serve-arg) SERVE_ARGS+=("${2:?}"); shift 2 ;;
        *) sed -n '2,20p' "$0" >&2; exit 2 ;;
    esac
done
say() { printf '==> %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
    ((EUID == 0)) || { echo "wrk not found: apt-get install wrk" >&2; exit 2; }
    say "installing wrk (apt-get)"
    apt-get install -y -qq wrk >/dev/null
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/trustgate-bench.XXXXXX")
TG_PID="" STARTED_STACK=0
cleanup() {
    [[ -n $TG_PID ]] && { kill "$TG_PID" 2>/dev/null || true; wait "$TG_PID" 2>/dev/null || true; }
    if [[ $STARTED_STACK == 1 ]]; then bash "$REPO/e2e/stack.sh" down >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z $STACK_ENV ]]; then
    export TRUSTGATE_STACK_DIR="${TRUSTGATE_STACK_DIR:-$REPO/target/bench-stack}"
    say "starting the local registry + Notary stack (e2e/stack.sh)"
    STARTED_STACK=1
    bash e2e/stack.sh up >"$WORK/stack.log" 2>&1 || { tail -20 "$WORK/stack.log" >&2; exit 1; }
    STACK_ENV=$TRUSTGATE_STACK_DIR/stack.env
fi
# shellcheck disable=SC1090
source "$STACK_ENV"

if [[ -z $BIN ]]; then
    say "building trustgate (cargo build --release --locked)"
    cargo build --release --locked --quiet --bin trustgate
    BIN=$REPO/target/release/trustgate
fi
TG=$BIN

REPOSITORY=$REGISTRY_HTTP/bench/app-$(date +%s)-$$
say "pushing and signing $REPOSITORY:v1 (and an unsigned :cold for the cold review)"
source "$REPO/e2e/signed_image.sh"
push_and_sign "$TG" "$REPOSITORY" "$WORK" bench cold
ROOT_KEY=$("$TG" inspect --notary-url "$NOTARY_URL" --ca "$CA" --output json "$REPOSITORY:v1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["root"]["keys"][0]["keyID"])')
mkdir -p "$WORK/policies"
cat >"$WORK/policies/bench.yaml" <<YAML
apiVersion: trustgate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: bench, namespace: shop}
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

read -r WPORT APORT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
start_serve() { # starts `serve` (fresh caches, no connections yet) and waits until it is ready
    "$TG" --log-format json serve --policy-dir "$WORK/policies" --listen "127.0.0.1:$WPORT" \
        --admin-listen "127.0.0.1:$APORT" --ca-out "$WORK/ca.pem" --default-action Deny \
        --log-decisions "$LOG_DECISIONS" "${SERVE_ARGS[@]}" >>"$WORK/serve.log" 2>&1 &
    TG_PID=$!
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$APORT/readyz" >/dev/null 2>&1 && break
        kill -0 "$TG_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$APORT/readyz" >/dev/null || { tail "$WORK/serve.log" >&2; exit 1; }
}
stop_serve() {
    kill "$TG_PID" 2>/dev/null || true
    wait "$TG_PID" 2>/dev/null || true
    TG_PID=""
}
say "starting trustgate serve --log-format json --log-decisions $LOG_DECISIONS ${SERVE_ARGS[*]}"
start_serve
URL=https://127.0.0.1:$WPORT/validate

python3 - "$REPOSITORY:v1" >"$WORK/review.json" <<'PY'
import json, sys
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "bench", "kind": {"group": "", "version": "v1", "kind": "Pod"},
    "resource": {"group": "", "version": "v1", "resource": "pods"},
    "namespace": "shop", "name": "app", "operation": "CREATE", "userInfo": {"username": "bench"},
    "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": "shop"},
               "spec": {"containers": [{"name": "app", "image": sys.argv[1]}]}}}}))
PY
sed "s|$REPOSITORY:v1|$REPOSITORY:cold|" "$WORK/review.json" >"$WORK/review-cold.json"
# wrk's Lua: POST the review; print latency percentiles (µs) and the request count as one line.
cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$WORK/review.json", "rb"); wrk.body = f:read("*a"); f:close()
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
LUA

ticks() { awk '{print $14 + $15}' "/proc/$TG_PID/stat"; }
HZ=$(getconf CLK_TCK)
ROWS=()
row() { # NAME REQUESTS SECONDS P50_US P99_US MAX_US ERRORS TICKS
    ROWS+=("$(awk -v n="$1" -v r="$2" -v s="$3" -v p50="$4" -v p99="$5" -v mx="$6" -v e="$7" -v t="$8" -v hz="$HZ" \
        'BEGIN { printf "| %-26s | %8d | %10.0f | %8.2f | %8.2f | %8.2f | %6d | %13.3f |", n, r, r / s, p50 / 1000, p99 / 1000, mx / 1000, e, (r > 0 ? t / hz * 1000 / r : 0) }')")
}

say "raw fetches of a cold review ($COLD_RUNS runs): registry HEAD, Notary root, timestamp, snapshot, targets, targets/releases"
raw=$(python3 - "$REGISTRY_HTTP" "${REPOSITORY#*/}" "$NOTARY_URL" "$CA" "${REPOSITORY}" "$COLD_RUNS" <<'PY'
# What a cold review must fetch, one after the other, each server over one keep-alive
# connection opened for the run (TLS handshake to Notary included): the floor the cold
# review is compared with.
import http.client, ssl, sys, time
registry, repo, notary, ca, gun, runs = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
nhost, nport = notary.split("//")[1].split(":")
accept = ", ".join(["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])
times = []
for _ in range(int(runs)):
    t = time.perf_counter()
    r = http.client.HTTPConnection(*registry.split(":"))
    r.request("HEAD", f"/v2/{repo}/manifests/cold", headers={"Accept": accept})
    resp = r.getresponse(); resp.read(); assert resp.status == 200, resp.status
    n = http.client.HTTPSConnection(nhost, int(nport), context=ctx)
    for role in ["root", "timestamp", "snapshot", "targets", "targets/releases"]:
        n.request("GET", f"/v2/{gun}/_trust/tuf/{role}.json")
        resp = n.getresponse(); resp.read()
        assert resp.status in (200, 404), (role, resp.status)
    times.append((time.perf_counter() - t) * 1e6)
    r.close(); n.close()
times.sort()
print(len(times), sum(times) / 1e6, times[len(times) // 2], times[-1], times[-1])
PY
)
read -r req dur p50 p99 mx <<<"$raw"
RAW_P50=$p50
row "raw fetches (python)" "$req" "$dur" "$p50" "$p99" "$mx" 0 0

say "cold reviews ($COLD_RUNS runs, serve restarted before each: empty caches, no connections)"
stop_serve
COLD=()
cold_ticks=0
for _ in $(seq "$COLD_RUNS"); do
    start_serve
    sleep 0.5 # a webhook is up a while before its first review (Notary connections warm then)
    before=$(ticks)
    COLD+=("$(curl -sS -o "$WORK/cold.json" -w '%{time_total}' --cacert "$WORK/ca.pem" \
        -H 'Content-Type: application/json' --data-binary "@$WORK/review-cold.json" "$URL" |
        awk '{print $1 * 1e6}')")
    cold_ticks=$((cold_ticks + $(ticks) - before))
    stop_serve
done
read -r n sum p50 mx < <(printf '%s\n' "${COLD[@]}" | sort -n |
    awk '{v[NR]=$1; s+=$1} END {print NR, s/1e6, v[int((NR+1)/2)], v[NR]}')
COLD_P50=$p50
row "cold review (curl)" "$n" "$sum" "$p50" "$mx" "$mx" 0 "$cold_ticks"
start_serve
# warm the decision cache for v1
curl -fsS -o /dev/null --cacert "$WORK/ca.pem" -H 'Content-Type: application/json' --data-binary "@$WORK/review.json" "$URL"

LOG_BEFORE=$(stat -c %s "$WORK/serve.log")
DECISIONS=0
for c in 8 64; do
    say "wrk: keep-alive HTTPS, $c connections, ${DURATION}s"
    before=$(ticks)
    out=$(wrk -t2 -c"$c" -d"${DURATION}s" -s "$WORK/post.lua" "$URL" | grep '^RESULT')
    after=$(ticks)
    read -r _ req dur p50 p99 mx err <<<"$out"
    DECISIONS=$((DECISIONS + req))
    row "keep-alive, $c conns (wrk)" "$req" "$(awk -v d="$dur" 'BEGIN{print d/1e6}')" "$p50" "$p99" "$mx" "$err" $((after - before))
done

say "fresh TLS connection per request (python, $FRESH requests)"
before=$(ticks)
out=$(python3 - "$URL" "$WORK/ca.pem" "$WORK/review.json" "$FRESH" <<'PY'
# One new TCP + TLS connection per request, sequential: the API server's worst case.
import http.client, ssl, sys, time
url, ca, body_file, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
host, port = url.split("//")[1].split("/")[0].split(":")
body = open(body_file, "rb").read()
ctx = ssl.create_default_context(cafile=ca)
lat, errors = [], 0
start = time.perf_counter()
for _ in range(n):
    t = time.perf_counter()
    c = http.client.HTTPSConnection(host, int(port), context=ctx)
    try:
        c.request("POST", "/validate", body, {"Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        errors += r.status != 200
    except OSError:
        errors += 1
    finally:
        c.close()
    lat.append((time.perf_counter() - t) * 1e6)
total = time.perf_counter() - start
lat.sort()
print(n, total, lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))], lat[-1], errors)
PY
)
after=$(ticks)
read -r req dur p50 p99 mx err <<<"$out"
DECISIONS=$((DECISIONS + req))
row "fresh TLS conn (python)" "$req" "$dur" "$p50" "$p99" "$mx" "$err" $((after - before))

sleep 0.5 # the log writer thread drains its queue
LOG_BYTES=$(($(stat -c %s "$WORK/serve.log") - LOG_BEFORE))
echo
echo "| phase                      | requests |  reviews/s | p50 (ms) | p99 (ms) | max (ms) | errors | CPU/review ms |"
echo "|----------------------------|---------:|-----------:|---------:|---------:|---------:|-------:|--------------:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; --log-decisions $LOG_DECISIONS:" \
    "$LOG_BYTES log bytes for $DECISIONS warm reviews ($(awk -v b="$LOG_BYTES" -v d="$DECISIONS" 'BEGIN{printf "%.0f", d ? b/d : 0}') bytes each)"
echo "cold review p50 $(awk -v c="$COLD_P50" -v r="$RAW_P50" 'BEGIN{printf "%.2f ms vs raw fetches %.2f ms: %.2fx (target <= 1.5x + 3 ms = %.2f ms)", c/1000, r/1000, c/r, 1.5*r/1000+3}')"
echo "cold answer (unsigned :cold, so rejected after the full Notary chain): $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["response"]; print("allowed" if r["allowed"] else "rejected: " + r.get("status", {}).get("message", ""))' "$WORK/cold.json" 2>&1 | head -c 200)"
grep -m1 '"image decision"' "$WORK/serve.log" >"$WORK/line" 2>/dev/null && echo "one decision line: $(wc -c <"$WORK/line") bytes" || true
