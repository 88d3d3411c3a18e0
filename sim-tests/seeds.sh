#!/usr/bin/env bash
# Runs simulation tests over many seeds and keeps going past failures, saving every
# failing seed. madsim stops a run at its first failing seed; this script runs seeds in
# chunks (MADSIM_TEST_SEED=<first> MADSIM_TEST_NUM=<chunk> runs first..first+chunk-1),
# and after a failure starts the next chunk just past the seed that failed.
#
# Usage: sim-tests/seeds.sh <seeds per test> [test file[::test name]...]
#   e.g. sim-tests/seeds.sh 1000 t04_replication::random_faults_keep_every_replication_invariant
#        sim-tests/seeds.sh 200            (every simulation test file)
# Failing seeds go to sim-tests/failing-seeds.txt ("<test> <seed> <first failure line>");
# rerun one with MADSIM_TEST_SEED=<seed> cargo test ... <test name>.
# FIRST_SEED sets where to start (default: the current time, so each run tries new seeds).
set -uo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:?seeds per test}
shift
TESTS=("$@")
if [ ${#TESTS[@]} -eq 0 ]; then
  TESTS=($(ls sim-tests/tests/*.rs | xargs -n1 basename | sed 's/\.rs$//'))
fi
CHUNK=${CHUNK:-50}
OUT=sim-tests/failing-seeds.txt
export RUSTFLAGS="--cfg madsim" RUSTDOCFLAGS="--cfg madsim"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/strom-target}/sim
cargo build -q --profile sim -p strom-sim-tests --tests || exit 1
failures=0
for spec in "${TESTS[@]}"; do
  file=${spec%%::*}
  name=""
  [[ "$spec" == *::* ]] && name=${spec#*::}
  seed=${FIRST_SEED:-$(date +%s)}
  last=$((seed + SEEDS))
  t0=$(date +%s)
  while [ "$seed" -lt "$last" ]; do
    n=$((last - seed < CHUNK ? last - seed : CHUNK))
    log=$(mktemp)
    MADSIM_TEST_SEED=$seed MADSIM_TEST_NUM=$n cargo test -q --profile sim -p strom-sim-tests --test "$file" -- $name >"$log" 2>&1
    if grep -q "^test result: ok" "$log" && ! grep -q "FAILED" "$log"; then
      seed=$((seed + n))
    else
      bad=$(grep -o "MADSIM_TEST_SEED=[0-9]*" "$log" | head -1 | cut -d= -f2)
      why=$(grep -m1 -E "panicked at|INVARIANT .* FAILED" -A1 "$log" | tail -1 | cut -c1-200)
      if [ -z "$bad" ]; then
        echo "$spec: a run failed without naming a seed; see $log"
        failures=$((failures + 1))
        break
      fi
      echo "$spec $bad $why" | tee -a "$OUT"
      failures=$((failures + 1))
      seed=$((bad + 1))
    fi
    rm -f "$log"
  done
  echo "$spec: $SEEDS seeds in $(( $(date +%s) - t0 )) s"
done
echo "$failures failing seed(s)$([ $failures -gt 0 ] && echo ", saved in $OUT")"
[ "$failures" -eq 0 ]
