#!/usr/bin/env bash
# Shows that each history checker fails on a deliberately broken build.
# Every *.patch here breaks strom in one plausible way; this script applies each to a
# scratch worktree of HEAD, runs its simulation test (t04_replication unless TEST says) over a few
# seeds, and checks that the invariant the patch targets is reported as failed
# ("INVARIANT <name> FAILED"). Not part of ./test.sh (about 15 minutes on 2 cores).
#
# Usage: sim-tests/mutations/run.sh [seeds per test, default 10] [patch name...]
set -uo pipefail
cd "$(dirname "$0")/../.."
SEEDS=${1:-10}
shift || true
ONLY=("$@")
TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/strom-target}/sim-mutants
WORK=$(mktemp -d /tmp/strom-mutant.XXXXXX)
trap 'git worktree remove --force "$WORK/tree" >/dev/null 2>&1' EXIT
echo "logs in $WORK"

# patch -> the invariant it must break
declare -A EXPECT=(
  [ack-at-append]=no_lost_acked_writes
  [read-above-hw]=reads_below_hw_stay
  [no-kip207-wait]=hw_never_goes_back
  [follower-forgets-producers]=no_duplicates
  [follower-restamps-epoch]=replicas_agree_below_hw
  [stale-epoch-stamp]=epochs_never_decrease
  [raft-append-not-flushed]=metadata_logs_agree
  [coordinator-acks-unreplicated]=committed_offsets_never_go_back
  [commit-acked-not-stored]=acked_commits_are_kept
  [leader-appends-retries]=no_duplicates
  [keep-last-known-leader]=no_lost_acked_writes
  [read-committed-above-lso]=no_aborted_reads
)
# patch -> a test name filter (default: every test of the file)
declare -A FILTER=(
  [leader-appends-retries]=connection_resets
  [keep-last-known-leader]=double_unclean
)
# patch -> the simulation test that runs it (default t04_replication)
declare -A TEST=(
  [raft-append-not-flushed]=t01_single_node
  [coordinator-acks-unreplicated]=t03_groups
  [commit-acked-not-stored]=t03_groups
  [read-committed-above-lso]=t05_transactions
)
git worktree add -q --detach "$WORK/tree" HEAD
# Uncommitted changes of the simulation itself count (the checkers under test).
cp -r sim-tests/src sim-tests/tests "$WORK/tree/sim-tests/"
status=0
for patch in sim-tests/mutations/*.patch; do
  name=$(basename "$patch" .patch)
  if [ ${#ONLY[@]} -gt 0 ] && [[ ! " ${ONLY[*]} " == *" $name "* ]]; then continue; fi
  want=${EXPECT[$name]:-?}
  (cd "$WORK/tree" && git checkout -q -- broker controller && git apply "$OLDPWD/$patch") || {
    echo "MUTANT $name: patch does not apply"; status=1; continue; }
  out="$WORK/$name.log"
  (cd "$WORK/tree" && MADSIM_TEST_NUM=$SEEDS RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR="$TARGET" \
    timeout 1800 cargo test -q --profile sim -p strom-sim-tests --test "${TEST[$name]:-t04_replication}" -- ${FILTER[$name]:-} --test-threads 2) >"$out" 2>&1
  if grep -q "could not compile" "$out"; then
    echo "MUTANT $name: does not build"; grep -m3 "^error" "$out"; status=1; continue
  fi
  failed=$(grep -o "INVARIANT [a-z_]* FAILED" "$out" | sort | uniq -c | sed 's/^ *//' | tr '\n' ';')
  seed=$(grep -o "MADSIM_TEST_SEED=[0-9]*" "$out" | head -1)
  if grep -q "INVARIANT $want FAILED" "$out"; then
    echo "MUTANT $name: caught by $want ($failed first failing seed: $seed)"
  else
    echo "MUTANT $name: NOT caught by $want (reported: ${failed:-nothing})"
    status=1
  fi
done
exit $status
