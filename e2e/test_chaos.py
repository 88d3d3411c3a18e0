"""`strom chaos` on three local nodes it starts itself: a short run (the CI recipe)
with kill -9, SIGSTOP and SIGTERM of partition leaders under idempotent acks=all
producers and a consumer group. The run must end safe (exit 0), and what it writes must
hold up: the verdict's numbers, a history whose acknowledged records are all in the
final read, and a plot with both series and the faults.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from strom_harness import free_port_block, strom_binary

pytestmark = pytest.mark.timeout(300)

if os.environ.get("E2E_BOOTSTRAP") or os.environ.get("E2E_NODES", "1") != "1":
    pytest.skip("starts a cluster of its own: once, in pass 1, is enough", allow_module_level=True)


def test_a_short_chaos_run_is_safe_and_reports_it(tmp_path):
    base = free_port_block(3)
    out = tmp_path / "chaos"
    p = subprocess.run([strom_binary(), "chaos", "--nodes", "3", "--base-port", str(base), "--duration", "40s",
                        "--every", "10s", "--down", "4s", "--faults", "kill,pause,term", "--seed", "42",
                        "--producers", "2", "--rate", "300", "--consumers", "2", "--out", str(out)],
                       capture_output=True, text=True, timeout=280)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    assert "verdict (seed 42): safe" in p.stdout, p.stdout
    v = json.loads((out / "verdict.json").read_text())
    assert v["faults"] >= 3, v
    assert v["acknowledged"] > 5000, v
    assert v["lost"] == [] and v["duplicated"] == [] and v["reordered"] == [] and v["offsets_with_two_values"] == []
    assert v["read_at_end"] >= v["acknowledged"], v
    h = json.loads((out / "history.json").read_text())
    kinds = {f["kind"] for f in h["faults"]}
    assert kinds <= {"kill", "pause", "term"} and len(h["faults"]) == v["faults"], h["faults"]
    acked = {r["value"] for r in h["produced"] if r["acked_ms"] is not None}
    assert acked and acked <= {r["value"] for r in h["read_at_end"]}
    assert h["read_during"], "the group read nothing during the run"
    svg = (out / "plot.svg").read_text()
    assert svg.count("<polyline") == 2 and svg.count("node ") >= v["faults"], svg[:500]
    # The seed replays the same schedule: the faults' kinds in order.
    assert [f["kind"] for f in h["faults"]] == [line.split()[3] for line in p.stdout.splitlines()
                                               if line.startswith("[chaos]") and " s  " in line], p.stdout
