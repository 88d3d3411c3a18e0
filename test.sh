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
#
# Two pieces of work run in the background, where the machine has idle time: the e2e
# dependencies install (network-bound) while the workspace is linted and built, and the
# image's static release build runs at the lowest CPU priority during the e2e stage
# (whose tests mostly wait on their clients and clusters). The stages that need them
# wait for them and print how long they took.
set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
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

LOGS=$(mktemp -d)
bg_wait() { # bg_wait NAME PID LOG: waits for a background job, prints its log, fails with it
  local name=$1 pid=$2 log=$3 t0 code=0
  t0=$(date +%s)
  wait "$pid" || code=$?
  echo "[$name] waited $(( $(date +%s) - t0 ))s for it; its output:"
  cat "$log"
  if [ "$code" -ne 0 ]; then
    echo "[$name] failed with exit code $code" >&2
    exit "$code"
  fi
}

stage "cargo fmt --check (e2e dependencies install in the background)"
bash e2e/setup.sh >"$LOGS/setup.log" 2>&1 &
SETUP_PID=$!
cargo fmt --all -- --check

stage "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

stage "cargo build (debug)"
cargo build --workspace --all-targets

stage "cargo test (unit, integration, proptest)"
cargo test --workspace

# The madsim stages use the `sim` profile (Cargo.toml): dev with strom's own crates at
# opt-level 1, which compiles in about three minutes more and runs the simulations about
# four times faster.
stage "madsim: build the workspace with --cfg madsim (profile sim)"
RUSTFLAGS="--cfg madsim" RUSTDOCFLAGS="--cfg madsim" CARGO_TARGET_DIR="$SIM_TARGET_DIR" cargo build --profile sim --workspace --all-targets

stage "madsim: simulation tests (${MADSIM_TEST_NUM:-50} seeds each)"
# cargo-nextest runs every test binary's tests in one pool (cargo test runs the binaries
# one after another, and a binary with one long test leaves a core idle meanwhile).
if cargo nextest --version >/dev/null 2>&1; then
  MADSIM_TEST_NUM="${MADSIM_TEST_NUM:-50}" RUSTFLAGS="--cfg madsim" RUSTDOCFLAGS="--cfg madsim" CARGO_TARGET_DIR="$SIM_TARGET_DIR" \
    cargo nextest run --cargo-profile sim --workspace --no-fail-fast --failure-output final
else
  MADSIM_TEST_NUM="${MADSIM_TEST_NUM:-50}" RUSTFLAGS="--cfg madsim" RUSTDOCFLAGS="--cfg madsim" CARGO_TARGET_DIR="$SIM_TARGET_DIR" cargo test --profile sim --workspace
fi

stage "madsim: determinism check (every simulation test, 2 seeds, each run twice)"
MADSIM_TEST_NUM=2 MADSIM_TEST_CHECK_DETERMINISM=1 RUSTFLAGS="--cfg madsim" RUSTDOCFLAGS="--cfg madsim" CARGO_TARGET_DIR="$SIM_TARGET_DIR" \
  cargo test --profile sim -p strom-sim-tests

stage "e2e: real clients against real strom processes (the image's release build in the background, nice 19)"
bg_wait setup "$SETUP_PID" "$LOGS/setup.log"
STROM_STATIC_TARGET_DIR="$CARGO_TARGET_DIR/static" nice -n 19 bash deploy/build-image.sh --build-only >"$LOGS/static.log" 2>&1 &
STATIC_PID=$!
STROM_BIN="$CARGO_TARGET_DIR/debug/strom" bash e2e/run.sh

stage "image: static release build, FROM scratch image (deploy/build-image.sh)"
bg_wait "static build" "$STATIC_PID" "$LOGS/static.log"
STROM_STATIC_TARGET_DIR="$CARGO_TARGET_DIR/static" bash deploy/build-image.sh strom:test

stage "deploy: the image, docker compose cluster and StatefulSet stand-in under docker"
E2E_DEPLOY=1 STROM_IMAGE=strom:test "${STROM_VENV:-$HOME/.cache/strom-venv}/bin/python" -m pytest \
  e2e/test_deploy.py e2e/test_k8s.py -p no:xdist -ra --durations=10

stage "finished"
echo "all tests passed in $(( $(date +%s) - START ))s"
