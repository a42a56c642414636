#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, starts the local
# Notary + registry stack on 127.0.0.1, runs format, lint and every test, and stops the stack.
# Usage: scripts/test.sh            (README's test command; .ci/run calls exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

step() { printf '\n==> %s\n' "$*"; }
t0=$(date +%s)

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

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --locked --all-targets -- -D warnings

step "alert rules and dashboard: promtool check/test rules, rendered PrometheusRule (installs the Debian prometheus package if missing)"
bash scripts/prometheus.sh
export TRUSTGATE_REQUIRE_PROMETHEUS=1   # tests/dashboard.rs: a real Prometheus scraping trustgate

step "cargo test"
cargo test --locked --lib --bins --tests
cargo test --locked --doc

step "packaging: Helm chart lint + render + schema validation, manifests, CRD copies, examples, Dockerfile"
cargo build --locked
TRUSTGATE_BIN="$REPO/target/debug/trustgate" bash scripts/packaging.sh

printf '\nall checks passed in %ss\n' "$(( $(date +%s) - t0 ))"
