#!/usr/bin/env python3
"""Replication benchmark: a 3-node strom cluster on this host (release build, every node
controller and broker, Kafka's default settings), driven by `strom bench`.

For each case, on a fresh cluster:
  - RF=1, acks=1   (the partitions' leaders spread over the three nodes)
  - RF=1, acks=all
  - RF=3, acks=all, min.insync.replicas=2
it writes --gb GB of 1 KiB records (6 partitions, 64 KiB batches, 4 requests in flight)
and reports MB/s of record values and the three brokers' CPU seconds (user+system, from
/proc) per GB of record values. Then, on the RF=3 cluster, 20 s at a paced 20 MB/s
(16 KiB batches, one request in flight) for p50/p99 acks=all latency. The disk's
sequential write bandwidth (dd, fdatasync) is measured in the same run: with RF=3 every
byte is written three times to the same disk.

Usage: replication.py --strom target/release/strom [--gb 4] [--out FILE]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from strom_harness import StromCluster  # noqa: E402

# /proc readers and the dd probe are the single-node comparison's (same directory).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import cpu_seconds, disk_write_mbs, rss_mb  # noqa: E402


def settle_disk():
    """Write back dirty pages between runs so that one run's writeback does not slow the next."""
    subprocess.run(["sync"])
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError:
        pass


def bench(strom, bootstrap, *args):
    r = subprocess.run([strom, "bench", "-b", bootstrap, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"strom bench {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    print("   ", r.stdout.splitlines()[0], flush=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_case(strom, work, name, rf, acks, total, latency):
    settle_disk()
    c = StromCluster(Path(work) / name, size=3, binary=strom)
    c.start()
    try:
        pids = [n.pid for n in c.nodes]
        args = ["--partitions", "6", "--replication-factor", str(rf),
                "--acks", acks, "--record-size", "1024"]
        if rf > 1:
            args += ["--config", "min.insync.replicas=2"]
        c0 = sum(cpu_seconds(p) for p in pids)
        r = bench(strom, c.bootstrap, "produce", "--topic", f"bench-{name}", *args,
                  "--bytes", str(total))
        c1 = sum(cpu_seconds(p) for p in pids)
        res = {"case": name, "rf": rf, "acks": acks, "mb_per_s": r["mb_per_s"],
               "cpu_s_per_gb": (c1 - c0) / (r["bytes"] / 1e9)}
        if latency:
            lat = bench(strom, c.bootstrap, "produce", *args, "--topic", f"bench-{name}-latency",
                        "--throughput-mbs", "20", "--duration-s", "20", "--bytes", str(10**12),
                        "--batch-bytes", "16384", "--concurrency", "1")
            res.update(latency_mbs=lat["mb_per_s"], p50_ms=lat["p50_ms"], p99_ms=lat["p99_ms"])
        res["rss_mb"] = [round(rss_mb(p), 1) for p in pids]
        return res
    finally:
        c.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strom", required=True)
    ap.add_argument("--gb", type=float, default=4.0)
    ap.add_argument("--out")
    a = ap.parse_args()
    strom = os.path.abspath(a.strom)
    total = int(a.gb * 1e9)
    work = tempfile.mkdtemp(prefix="strom-repl-bench-")
    try:
        disk = disk_write_mbs(work)
        print(f"disk sequential write (dd, 1 GiB, fdatasync): {disk} MB/s", flush=True)
        results = []
        for name, rf, acks, latency in (("rf1-acks1", 1, "1", False), ("rf1-acksall", 1, "all", True),
                                         ("rf3-acksall", 3, "all", True)):
            print(f"== {name}", flush=True)
            results.append(run_case(strom, work, name, rf, acks, total, latency))
        lines = ["| case (3 nodes, 1 KiB records) | MB/s | broker CPU s per GB | p50 / p99 at 20 MB/s (ms) |",
                 "| --- | --- | --- | --- |"]
        for r in results:
            lat = f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}" if "p99_ms" in r else "-"
            lines.append(f"| RF={r['rf']}, acks={r['acks']} | {r['mb_per_s']:.0f} | {r['cpu_s_per_gb']:.2f} | {lat} |")
        lines.append(f"| disk sequential write, same run | {disk} | | |")
        table = "\n".join(lines)
        print()
        print(table)
        summary = {"disk_write_mbs": disk, "gb_per_run": a.gb, "results": results}
        print(json.dumps(summary))
        if a.out:
            Path(a.out).write_text(table + "\n\n" + json.dumps(summary, indent=1) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
