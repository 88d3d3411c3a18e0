#!/usr/bin/env bash
# What counting metrics costs on the produce path: the same `strom bench produce` run
# against a single node of two builds, alternately, in one run:
#   e2e/bench/metrics_cost.sh BASE_STROM NEW_STROM [ROUNDS] [BYTES]
# BASE_STROM is a release build from before the metrics (e.g. commit 895dda0), NEW_STROM
# one with them. Each round starts a fresh node (`strom dev --nodes 1`) of each build,
# writes BYTES (default 1 GiB) of 1 KiB records with acks=1 from 4 requests in flight,
# and prints the MB/s and records/s `strom bench` reports and the node's CPU seconds.
set -euo pipefail
BASE=${1:?base strom binary}
NEW=${2:?new strom binary}
ROUNDS=${3:-3}
BYTES=${4:-1073741824}
PORT=${PORT:-19092}
WORK=$(mktemp -d)
trap 'kill %1 2>/dev/null || true; rm -rf "$WORK"' EXIT

run_one() {
  local name=$1 bin=$2 dir="$WORK/$1-$3"
  "$bin" dev --nodes 1 --base-port "$PORT" --data-dir "$dir" > "$dir.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 120); do grep -q "node(s) ready" "$dir.log" 2>/dev/null && break; sleep 0.5; done
  local out node cpu
  out=$("$NEW" bench produce -b "127.0.0.1:$PORT" --bytes "$BYTES" --acks 1 2>&1 | grep -E "^produce:" | cut -d';' -f1)
  # The node's CPU time (user + system) for the whole run, from /proc.
  node=$(pgrep -P "$pid" | head -1)
  cpu=$(awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$node/stat")
  echo "round $3 $name: $out; node CPU ${cpu} s"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for r in $(seq 1 "$ROUNDS"); do
  run_one base "$BASE" "$r"
  run_one new "$NEW" "$r"
done
