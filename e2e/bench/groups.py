#!/usr/bin/env python3
"""Consumer-group timing of strom against tansu 0.6.0, with broker defaults
(`group.initial.rebalance.delay.ms` = 3000 on strom, as on Kafka).

For each broker and group protocol, `--trials` times:
  - three confluent-kafka (librdkafka 2.16) consumers subscribe at once to a fresh
    3-partition topic; "stable" is the time from the subscribes until each of the three
    holds exactly one partition;
  - one of them closes; "rebalance" is the time from its close() returning until the
    two others hold all three partitions between them.
Protocols: classic (range assignor) on both brokers; KIP-848 (`group.protocol=consumer`)
on strom only (tansu does not serve it). Client settings are librdkafka's defaults.

Usage: groups.py --strom target/release/strom [--tansu <path>] [--trials 3]
Run with the e2e venv's python (it needs confluent_kafka). Only 127.0.0.1 is used.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Broker, free_port  # noqa: E402


class Member:
    """A consumer polling on its own thread; `assigned` mirrors its assignment."""

    def __init__(self, conf, topic):
        # KIP-848 assignments arrive incrementally; classic range is eager.
        self.incremental = conf.get("group.protocol") == "consumer"
        self.c = Consumer(conf)
        self.assigned = set()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.c.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                         on_lost=self._on_revoke)
        self.t = threading.Thread(target=self._run, daemon=True)

    def _on_assign(self, c, parts):
        with self.lock:
            if self.incremental:
                self.assigned |= {p.partition for p in parts}
            else:
                self.assigned = {p.partition for p in parts}

    def _on_revoke(self, c, parts):
        with self.lock:
            if self.incremental:
                self.assigned -= {p.partition for p in parts}
            else:
                self.assigned = set()

    def parts(self):
        with self.lock:
            return set(self.assigned)

    def _run(self):
        while not self.stop.is_set():
            self.c.poll(0.05)

    def close(self):
        self.stop.set()
        self.t.join()
        self.c.close()


def wait(pred, timeout=120):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.01)
    return None


def trial(bootstrap, protocol):
    topic = f"gbench-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    time.sleep(0.5)
    group = f"g-{topic}"
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    if protocol == "consumer":
        conf["group.protocol"] = "consumer"
    members = [Member(conf, topic) for _ in range(3)]
    for m in members:
        m.t.start()
    stable = wait(lambda: all(len(m.parts()) == 1 for m in members)
                  and set().union(*(m.parts() for m in members)) == {0, 1, 2})
    rebalance = None
    if stable is not None:
        members[0].close()
        rest = members[1:]
        rebalance = wait(lambda: set().union(*(m.parts() for m in rest)) == {0, 1, 2}
                         and sum(len(m.parts()) for m in rest) == 3)
    else:
        members[0].close()
    for m in members[1:]:
        m.close()
    admin.delete_topics([topic])
    return stable, rebalance


def fmt(xs):
    ok = [x for x in xs if x is not None]
    if not ok:
        return "did not stabilize in 120 s"
    s = f"{statistics.median(ok):.2f} s (min {min(ok):.2f}, max {max(ok):.2f})"
    if len(ok) < len(xs):
        s += f", {len(xs) - len(ok)} of {len(xs)} timed out"
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strom", required=True)
    ap.add_argument("--tansu")
    ap.add_argument("--trials", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="strom-gbench-")
    runs = []
    try:
        sp, si = free_port(), free_port()
        cfg = os.path.join(work, "strom.toml")
        with open(cfg, "w") as f:
            f.write(f'"node.id" = 1\n"listeners" = "PLAINTEXT://127.0.0.1:{sp}"\n'
                    f'"internal.listener" = "127.0.0.1:{si}"\n"admin.listener" = "127.0.0.1:0"\n"data.dir" = "{work}/strom-data"\n')
        brokers = [(Broker("strom", [a.strom, "node", "--config", cfg], sp, a.strom),
                    ["classic", "consumer"])]
        if a.tansu:
            tp = free_port()
            brokers.append((Broker("tansu", [a.tansu, "broker", "--listener-url", f"tcp://127.0.0.1:{tp}",
                                             "--advertised-listener-url", f"tcp://127.0.0.1:{tp}",
                                             "--storage-engine", "memory://tansu/", "--silent"],
                                   tp, a.strom), ["classic"]))
        for b, protocols in brokers:
            b.start(work)
            try:
                for p in protocols:
                    st, rb = [], []
                    for i in range(a.trials):
                        s, r = trial(b.bootstrap, p)
                        print(f"  [{b.name} {p}] trial {i + 1}: stable {s} s, rebalance {r} s", flush=True)
                        st.append(s)
                        rb.append(r)
                    runs.append({"broker": b.name, "protocol": p, "stable_s": st, "rebalance_s": rb})
            finally:
                b.stop()
        lines = ["| broker, protocol | group of 3 stable | rebalance after one leaves |",
                 "| --- | --- | --- |"]
        for r in runs:
            lines.append(f"| {r['broker']}, {r['protocol']} | {fmt(r['stable_s'])} | {fmt(r['rebalance_s'])} |")
        print()
        print("\n".join(lines))
        print(json.dumps(runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
