#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, starts the local
# Notary + registry stack on 127.0.0.1, runs format, lint and every test, and stops the stack.
# Usage: scripts/test.sh            (README's test command; .ci/run calls exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

step() { printf '\n==> %s\n' "$*"; }
t0=$(date +%s)

step "public Notary fixtures (real trust data the unit tests read in place)"
if [[ -n "${TRUSTGATE_NOTARY_FIXTURES:-}" ]]; then
  [[ -d "$TRUSTGATE_NOTARY_FIXTURES" ]] || { echo "TRUSTGATE_NOTARY_FIXTURES=$TRUSTGATE_NOTARY_FIXTURES is not a directory" >&2; exit 1; }
  export TRUSTGATE_NOTARY_FIXTURES="$(cd "$TRUSTGATE_NOTARY_FIXTURES" && pwd)"
  echo "TRUSTGATE_NOTARY_FIXTURES=$TRUSTGATE_NOTARY_FIXTURES"
elif [[ "${TRUSTGATE_REQUIRE_FIXTURES:-0}" == 1 ]]; then
  echo "TRUSTGATE_REQUIRE_FIXTURES=1 but TRUSTGATE_NOTARY_FIXTURES is not set" >&2; exit 1
else
  echo "WARNING: TRUSTGATE_NOTARY_FIXTURES is not set: the tests that read public Notary fixtures print SKIP"
fi

step "install (if missing) and start the test stack: registry x4, token server, notary-signer, notary-server x3"
export TRUSTGATE_STACK_DIR="${TRUSTGATE_STACK_DIR:-$REPO/target/stack}"
cleanup() { bash "$REPO/e2e/stack.sh" down || true; bash "$REPO/e2e/apiserver.sh" down || true; }
trap cleanup EXIT
bash e2e/stack.sh up
export TRUSTGATE_STACK_ENV="$TRUSTGATE_STACK_DIR/stack.env"
export TRUSTGATE_REQUIRE_STACK=1

step "API-server tier: apiextensions-apiserver + etcd + stub core API (build cached in ~/.cache/trustgate-apiserver; ~5 min cold)"
export TRUSTGATE_APISERVER_DIR="${TRUSTGATE_APISERVER_DIR:-$REPO/target/apiserver}"
bash e2e/apiserver.sh build
bash e2e/apiserver.sh up
export TRUSTGATE_APISERVER_ENV="$TRUSTGATE_APISERVER_DIR/apiserver.env"
export TRUSTGATE_REQUIRE_APISERVER=1

step "new-format signing tools: the real notation and cosign (Debian sid packages, cached in ~/.cache/trustgate-sigtools)"
bash e2e/sigtools.sh fetch
eval "$(bash e2e/sigtools.sh env)"
export TRUSTGATE_REQUIRE_SIGTOOLS=1

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets --all-features -D warnings (the bench-support benches included)"
cargo clippy --locked --all-targets --all-features -- -D warnings

step "benches compile (every [[bench]], the bench-support ones included; debug profile, not run)"
cargo test --locked --benches --all-features --no-run

step "alert rules and dashboard: promtool check/test rules, rendered PrometheusRule (installs the Debian prometheus package if missing)"
bash scripts/prometheus.sh
export TRUSTGATE_REQUIRE_PROMETHEUS=1   # tests/dashboard.rs: a real Prometheus scraping trustgate

step "cargo test"
cargo test --locked --lib --bins --tests
cargo test --locked --doc

step "quick start (e2e/quickstart.sh against the running stack): a signed tag admitted, an unsigned one rejected"
bash e2e/quickstart.sh --stack-env "$TRUSTGATE_STACK_ENV"

step "migration guide (e2e/migration.sh, docs/migration.md): Docker Content Trust to Notation and cosign, step by step"
bash e2e/migration.sh --stack-env "$TRUSTGATE_STACK_ENV"

step "packaging: Helm chart lint + render + schema validation, manifests, CRD copies, examples, Dockerfile"
cargo build --locked
TRUSTGATE_BIN="$REPO/target/debug/trustgate" bash scripts/packaging.sh

printf '\nall checks passed in %ss\n' "$(( $(date +%s) - t0 ))"
