#!/usr/bin/env bash
# Runs every test of strom: formatting and lints, unit and integration tests, the
# workspace built and the simulation tests run under madsim, and the end-to-end suite
# with real Kafka clients against real strom processes; then the container image is
# built and the docker compose cluster and the Kubernetes StatefulSet's stand-in are
# tested under docker. Installs what the tests need (Python venv, kcat, the Java
# client, Chromium) through e2e/setup.sh.
#
# Build outputs go to $CARGO_TARGET_DIR (default ~/.cache/strom-target), outside the
# clone, so repeated runs are fast; the madsim build has its own dir under it.
set -euo pipefail
cd "$(dirname "$0")"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strom-target}"
SIM_TARGET_DIR="$CARGO_TARGET_DIR/sim"
export CARGO_TERM_COLOR=never
START=$(date +%s)
STAGE_START=$START

stage() {
  local now
  now=$(date +%s)
  if [ -n "${STAGE_NAME:-}" ]; then
    printf '=== %-40s %4ds (total %4ds)\n' "$STAGE_NAME done" $((now - STAGE_START)) $((now - START))
  fi
  STAGE_NAME="$1"
  STAGE_START=$now
  printf '\n=== %s\n' "$1"
}

stage "setup: e2e dependencies (venv, kcat, Java client)"
bash e2e/setup.sh

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

stage "cargo build (debug)"
cargo build --workspace --all-targets

stage "cargo test (unit, integration, proptest)"
cargo test --workspace

stage "madsim: build the workspace with --cfg madsim"
RUSTFLAGS="--cfg madsim" RUSTDOCFLAGS="--cfg madsim" CARGO_TARGET_DIR="$SIM_TARGET_DIR" cargo build --workspace --all-targets

stage "madsim: simulation tests (${MADSIM_TEST_NUM:-50} seeds each)"
MADSIM_TEST_NUM="${MADSIM_TEST_NUM:-50}" RUSTFLAGS="--cfg madsim" RUSTDOCFLAGS="--cfg madsim" CARGO_TARGET_DIR="$SIM_TARGET_DIR" cargo test --workspace

stage "madsim: determinism check (every simulation test, 2 seeds, each run twice)"
MADSIM_TEST_NUM=2 MADSIM_TEST_CHECK_DETERMINISM=1 RUSTFLAGS="--cfg madsim" RUSTDOCFLAGS="--cfg madsim" CARGO_TARGET_DIR="$SIM_TARGET_DIR" \
  cargo test -p strom-sim-tests

stage "e2e: real clients against real strom processes"
STROM_BIN="$CARGO_TARGET_DIR/debug/strom" bash e2e/run.sh

stage "image: static release build, FROM scratch image (deploy/build-image.sh)"
STROM_STATIC_TARGET_DIR="$CARGO_TARGET_DIR/static" bash deploy/build-image.sh strom:test

stage "deploy: the image, docker compose cluster and StatefulSet stand-in under docker"
E2E_DEPLOY=1 STROM_IMAGE=strom:test "${STROM_VENV:-$HOME/.cache/strom-venv}/bin/python" -m pytest \
  e2e/test_deploy.py e2e/test_k8s.py -p no:xdist -ra --durations=10

stage "finished"
echo "all tests passed in $(( $(date +%s) - START ))s"
