#!/usr/bin/env python3
"""Single-node benchmark of strom against tansu 0.6.0, in one run, with the same client
(`strom bench`) and the same load.

Measures, for each broker:
  - start-to-ready time (process start until a Kafka Metadata request is answered),
  - idle RSS (2 s after ready),
  - produce throughput with 1 KiB records, acks=1 and acks=all,
  - consume throughput (the acks=1 topic, from the beginning),
  - the broker's CPU seconds per GB moved (from /proc/<pid>/stat),
  - p50/p99 produce request latency at a fixed 20 MB/s,
and, once, the disk's sequential write bandwidth (dd with fdatasync) in the data dir.

Usage: compare.py --strom target/release/strom --tansu <path> [--gb 1] [--out FILE]
Only 127.0.0.1 is used. Prints a Markdown table and a JSON summary.
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def disk_write_mbs(directory):
    path = os.path.join(directory, "dd-probe")
    out = subprocess.run(
        ["dd", "if=/dev/zero", f"of={path}", "bs=1M", "count=1024", "conv=fdatasync"],
        capture_output=True, text=True,
    ).stderr
    os.remove(path)
    m = re.search(r"([\d.,]+) ([GM]B)/s", out)
    if not m:
        return None
    v = float(m.group(1).replace(",", "."))
    return v * 1000 if m.group(2) == "GB" else v


class Broker:
    def __init__(self, name, cmd, port, strom):
        self.name, self.cmd, self.port, self.strom = name, cmd, port, strom
        self.proc = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self, workdir):
        self.log = open(os.path.join(workdir, f"{self.name}.log"), "w")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = t0 + 60
        while time.monotonic() < deadline:
            r = subprocess.run([self.strom, "topic", "-b", self.bootstrap, "list"], capture_output=True)
            if r.returncode == 0:
                return time.monotonic() - t0
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log.name}")
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} not ready in 60 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def bench(self, *args):
        r = subprocess.run([self.strom, "bench", "-b", self.bootstrap, *args], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{self.name}: strom bench {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
        print(f"  [{self.name}] {r.stdout.splitlines()[0]}", flush=True)
        return json.loads(r.stdout.strip().splitlines()[-1])


def run_one(b, workdir, total_bytes):
    res = {"broker": b.name}
    res["ready_s"] = b.start(workdir)
    time.sleep(2)
    res["idle_rss_mb"] = rss_mb(b.proc.pid)
    pid = b.proc.pid
    for acks, topic in (("1", "bench-acks1"), ("all", "bench-acksall")):
        c0 = cpu_seconds(pid)
        r = b.bench("produce", "--topic", topic, "--bytes", str(total_bytes), "--acks", acks, "--record-size", "1024")
        c1 = cpu_seconds(pid)
        res[f"produce_acks{acks}_mbs"] = r["mb_per_s"]
        res[f"produce_acks{acks}_cpu_s_per_gb"] = (c1 - c0) / (r["bytes"] / 1e9)
    c0 = cpu_seconds(pid)
    r = b.bench("consume", "--topic", "bench-acks1")
    c1 = cpu_seconds(pid)
    res["consume_mbs"] = r["mb_per_s"]
    res["consume_cpu_s_per_gb"] = (c1 - c0) / (r["bytes"] / 1e9)
    r = b.bench(
        "produce", "--topic", "bench-latency", "--acks", "1", "--record-size", "1024",
        "--throughput-mbs", "20", "--duration-s", "20", "--bytes", str(10**12),
        "--batch-bytes", "16384", "--concurrency", "1",
    )
    res["latency_at_20mbs_mbs"] = r["mb_per_s"]
    res["latency_p50_ms"] = r["p50_ms"]
    res["latency_p99_ms"] = r["p99_ms"]
    res["peak_rss_mb"] = rss_mb(pid)
    b.stop()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strom", required=True)
    ap.add_argument("--tansu", required=True)
    ap.add_argument("--gb", type=float, default=1.0, help="GB of record values per produce run")
    ap.add_argument("--out")
    a = ap.parse_args()
    total = int(a.gb * 1e9)
    work = tempfile.mkdtemp(prefix="strom-bench-")
    try:
        disk = disk_write_mbs(work)
        print(f"disk sequential write (dd, 1 GiB, fdatasync): {disk} MB/s", flush=True)
        sp, si, tp = free_port(), free_port(), free_port()
        cfg = os.path.join(work, "strom.toml")
        with open(cfg, "w") as f:
            f.write(
                f'"node.id" = 1\n"listeners" = "PLAINTEXT://127.0.0.1:{sp}"\n'
                f'"internal.listener" = "127.0.0.1:{si}"\n"admin.listener" = "127.0.0.1:0"\n"data.dir" = "{work}/strom-data"\n'
                '"num.partitions" = 6\n'
            )
        strom = Broker("strom", [a.strom, "node", "--config", cfg], sp, a.strom)
        tansu = Broker(
            "tansu",
            [a.tansu, "broker", "--listener-url", f"tcp://127.0.0.1:{tp}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{tp}", "--storage-engine", "memory://tansu/", "--silent"],
            tp, a.strom,
        )
        results = []
        for b in (strom, tansu):
            print(f"== {b.name}", flush=True)
            try:
                results.append(run_one(b, work, total))
            finally:
                b.stop() if b.proc and b.proc.poll() is None else None
        rows = [
            ("start to ready (s)", "ready_s", "{:.3f}"),
            ("idle RSS (MB)", "idle_rss_mb", "{:.1f}"),
            ("produce 1 KiB, acks=1 (MB/s)", "produce_acks1_mbs", "{:.0f}"),
            ("produce 1 KiB, acks=all (MB/s)", "produce_acksall_mbs", "{:.0f}"),
            ("consume (MB/s)", "consume_mbs", "{:.0f}"),
            ("broker CPU s per GB produced (acks=1)", "produce_acks1_cpu_s_per_gb", "{:.2f}"),
            ("broker CPU s per GB consumed", "consume_cpu_s_per_gb", "{:.2f}"),
            ("produce latency p50 at 20 MB/s (ms)", "latency_p50_ms", "{:.2f}"),
            ("produce latency p99 at 20 MB/s (ms)", "latency_p99_ms", "{:.2f}"),
            ("RSS after the runs (MB)", "peak_rss_mb", "{:.0f}"),
        ]
        lines = ["| metric | strom | tansu 0.6.0 |", "| --- | --- | --- |"]
        for label, key, fmt in rows:
            lines.append(f"| {label} | " + " | ".join(fmt.format(r[key]) for r in results) + " |")
        lines.append(f"| disk sequential write, same run (MB/s) | {disk} | |")
        table = "\n".join(lines)
        print()
        print(table)
        summary = {"disk_write_mbs": disk, "gb_per_run": a.gb, "results": results}
        print(json.dumps(summary))
        if a.out:
            with open(a.out, "w") as f:
                f.write(table + "\n\n" + json.dumps(summary, indent=1) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
