#!/usr/bin/env python3
"""Failover time: kill -9 of a partition leader until the first acknowledged write after
it, with a librdkafka producer (confluent-kafka 2.16) at its defaults (acks=all, retries,
backoff, linger as shipped; only bootstrap.servers set), on a 3-node strom cluster (release
build, Kafka's default settings: broker.session.timeout.ms 9 s) and a topic with 3
partitions, replication factor 3, min.insync.replicas=2.

The producer writes one record every 2 ms to each partition. Each round kills the leader
of one partition and measures from the kill to (a) the moment a surviving broker's
Metadata names another leader (polled every 10 ms: the cluster's part) and (b) the
acknowledgement of the first record produced after the kill (what the application sees:
the cluster's part plus the client's metadata refresh and retry backoff), and reads from
the quorum leader's log when it fenced the victim; then it
restarts the node and waits for the ISR to be whole again. Rounds
alternate between a leader that is not the metadata quorum leader (its death closes its
session with the quorum leader: fenced at once) and one that is (the quorum elects a new
leader first, then gives brokers a 0.5 s grace to reopen their sessions).

Usage: failover.py --strom target/release/strom [--kills 10] [--out FILE]
"""
import argparse
import datetime
import json
import re
import statistics
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from strom_harness import StromCluster, metadata_leaders  # noqa: E402


class Writer:
    def __init__(self, bootstrap, topic, partitions):
        self.p = Producer({"bootstrap.servers": bootstrap})
        self.topic, self.partitions = topic, partitions
        self.acks = {p: [] for p in range(partitions)}  # monotonic times of successful acks
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def report(self, sent, err, msg):
        if err is None:
            self.acks[msg.partition()].append((sent, time.monotonic()))

    def run(self):
        n = 0
        while not self.stop.is_set():
            for p in range(self.partitions):
                try:
                    sent = time.monotonic()
                    self.p.produce(self.topic, value=b"x" * 100, partition=p,
                                   on_delivery=lambda err, msg, sent=sent: self.report(sent, err, msg))
                except BufferError:
                    pass
            n += 1
            self.p.poll(0)
            time.sleep(0.002)

    def first_ack_of_record_sent_after(self, partition, t, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            later = [acked for sent, acked in self.acks[partition] if sent > t]
            if later:
                return min(later)
            time.sleep(0.005)
        return None


FENCE_LINE = re.compile(r"^(\S+Z) .*(?:session closed; fenced it at once|session expired; fencing it) broker=(\d+)")


def fenced_at(cluster, victim, after_wall):
    """Wall-clock time of the quorum leader's log line fencing `victim` after `after_wall`
    (the survivors' logs; None if none says so)."""
    best = None
    for n in cluster.nodes:
        if n.node_id == victim or n.stderr_path is None:
            continue
        for line in n.stderr_path.read_text(errors="replace").splitlines():
            m = FENCE_LINE.match(line)
            if not m or int(m.group(2)) != victim:
                continue
            t = datetime.datetime.strptime(m.group(1)[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            if t >= after_wall and (best is None or t < best):
                best = t
    return best


def new_leader_seen(survivor, topic, partition, old_leader, t, timeout=60):
    """Polls one surviving broker's Metadata until the partition has another leader."""
    deadline = t + timeout
    while time.monotonic() < deadline:
        try:
            leader = (metadata_leaders(survivor, topic) or {}).get(partition, -1)
            if leader >= 0 and leader != old_leader:
                return time.monotonic()
        except OSError:
            pass
        time.sleep(0.01)
    return None


def partitions(bootstrap, topic):
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    return {p.id: (p.leader, list(p.isrs)) for p in md.topics[topic].partitions.values()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strom", required=True)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--out")
    a = ap.parse_args()
    import tempfile
    work = Path(tempfile.mkdtemp(prefix="strom-failover-"))
    c = StromCluster(work, size=3, binary=str(Path(a.strom).resolve()),
                     settings={"broker.heartbeat.interval.ms": 2000})
    c.start()
    results = []
    try:
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        topic = "failover"
        admin.create_topics([NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})])[topic].result(30)
        w = Writer(c.bootstrap, topic, 3)
        w.t.start()
        time.sleep(3)
        for i in range(a.kills):
            # A whole ISR everywhere before each kill.
            deadline = time.monotonic() + 60
            while True:
                ps = partitions(c.bootstrap, topic)
                if all(len(isr) == 3 and leader >= 0 for leader, isr in ps.values()):
                    break
                assert time.monotonic() < deadline, f"ISR not whole: {ps}"
                time.sleep(0.2)
            quorum_leader = c.quorum_leader()
            want_quorum_leader = i % 2 == 1
            choice = [p for p, (leader, _) in ps.items() if (leader == quorum_leader) == want_quorum_leader]
            if not choice:
                choice = list(ps)
            part = choice[0]
            victim = ps[part][0]
            survivor = c.bootstrap_without(victim).split(",")[0]
            wall_kill = time.time()
            t_kill = time.monotonic()
            c.kill9(victim)
            t_leader = new_leader_seen(survivor, topic, part, victim, t_kill)
            t_ack = w.first_ack_of_record_sent_after(part, t_kill)
            took = None if t_ack is None else round((t_ack - t_kill) * 1000)
            leader_ms = None if t_leader is None else round((t_leader - t_kill) * 1000)
            t_fenced = fenced_at(c, victim, wall_kill)
            fenced_ms = None if t_fenced is None else round((t_fenced - wall_kill) * 1000)
            was_ql = victim == quorum_leader
            print(f"kill {i + 1}: node {victim} (leader of partition {part}, quorum leader: {was_ql}) "
                  f"-> fenced after {fenced_ms} ms, new leader in Metadata after {leader_ms} ms, first acknowledged new write "
                  f"after {took} ms", flush=True)
            results.append({"victim": victim, "quorum_leader": was_ql, "ms": took, "leader_ms": leader_ms,
                            "fenced_ms": fenced_ms})
            c.restart(victim, graceful=False)
        w.stop.set()
        w.p.flush(30)
    finally:
        c.cleanup()

    def stats(rs):
        out = {"n": len(rs)}
        for key, name in (("fenced_ms", "fenced"), ("leader_ms", "new_leader"), ("ms", "first_ack")):
            xs = [r[key] for r in rs if r[key] is not None]
            out[name] = {"p50_ms": statistics.median(xs) if xs else None,
                         "max_ms": max(xs) if xs else None, "min_ms": min(xs) if xs else None}
        return out
    summary = {"leader_only": stats([r for r in results if not r["quorum_leader"]]),
               "leader_and_quorum_leader": stats([r for r in results if r["quorum_leader"]]),
               "all": stats(results), "kills": results}
    print(json.dumps(summary))
    if a.out:
        Path(a.out).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
