#!/usr/bin/env bash
# Regenerates every copy of the CRDs after a change to the policy types (src/policy/crd.rs):
#   crds/trustgate-crds.yaml                   `trustgate crdgen`
#   charts/trustgate/files/trustgate-crds.yaml the chart's copy (rendered by templates/crds.yaml)
#   manifests/trustgate.yaml                   the chart rendered for kubectl users
# then runs the packaging checks. Review and commit the diff.
# Usage: scripts/crdgen.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --locked -- crdgen >crds/trustgate-crds.yaml.tmp
mv crds/trustgate-crds.yaml.tmp crds/trustgate-crds.yaml
cp crds/trustgate-crds.yaml charts/trustgate/files/trustgate-crds.yaml
bash scripts/packaging.sh --update
git status --short crds charts/trustgate/files manifests
