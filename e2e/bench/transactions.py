#!/usr/bin/env python3
"""Transactional against idempotent-only produce throughput on strom, same run.

For a single node and a three-node cluster (`strom dev`; on three nodes the topic has
replication factor 3 and min.insync.replicas=2, as `__transaction_state` does), one
confluent-kafka (librdkafka 2.16) producer writes `--records` records of 100 bytes to a
6-partition topic:
  - idempotent: enable.idempotence=true (acks=all), produce all, flush;
  - transactional: transactional.id set, records in transactions of `--txn-size`
    (begin, produce, commit_transaction: each commit waits for the markers).
Both with linger.ms=5. Prints records/s of each and their ratio as one JSON line per
cluster size.

Usage: transactions.py --strom target/release/strom [--records 200000] [--txn-size 100]
Run with the e2e venv's python (it needs confluent_kafka). Only 127.0.0.1 is used.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def free_base_port(n):
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 100 + n > 65000:
            continue
        ok = True
        # `strom dev`: Kafka on base..base+n, internal listeners on base+100...
        for p in list(range(base, base + n)) + list(range(base + 100, base + 100 + n)):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base


def start_cluster(strom, nodes, work):
    port = free_base_port(nodes)
    log = open(os.path.join(work, f"dev-{nodes}.log"), "w")
    proc = subprocess.Popen([strom, "dev", "--nodes", str(nodes), "--base-port", str(port),
                             "--data-dir", os.path.join(work, f"data-{nodes}")],
                            stdout=log, stderr=subprocess.STDOUT)
    bootstrap = ",".join(f"127.0.0.1:{port + i}" for i in range(nodes))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = subprocess.run([strom, "topic", "-b", bootstrap, "list"], capture_output=True)
        if r.returncode == 0:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"strom dev --nodes {nodes} not ready")
    time.sleep(2)
    return proc, bootstrap


def create_topic(bootstrap, nodes):
    name = f"txnbench-{uuid.uuid4().hex[:6]}"
    rf = min(3, nodes)
    cfg = {"min.insync.replicas": "2"} if rf == 3 else {}
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(name, 6, rf, config=cfg)])[name].result(30)
    time.sleep(1)
    return name


def idempotent(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5,
                  "queue.buffering.max.messages": 1000000})
    value = b"x" * 100
    t0 = time.monotonic()
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=value, key=str(i).encode())
                break
            except BufferError:
                p.poll(0.01)
    assert p.flush(120) == 0
    return n / (time.monotonic() - t0)


def transactional(bootstrap, topic, n, size):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"bench-{uuid.uuid4().hex[:6]}",
                  "linger.ms": 5})
    p.init_transactions(30)
    value = b"x" * 100
    t0 = time.monotonic()
    done = 0
    while done < n:
        p.begin_transaction()
        for i in range(size):
            p.produce(topic, value=value, key=str(done + i).encode())
        p.commit_transaction(60)
        done += size
    return done / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strom", required=True)
    ap.add_argument("--records", type=int, default=200000)
    ap.add_argument("--txn-size", type=int, default=100)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="strom-txnbench-")
    try:
        for nodes in a.nodes:
            proc, bootstrap = start_cluster(a.strom, nodes, work)
            try:
                idem = idempotent(bootstrap, create_topic(bootstrap, nodes), a.records)
                txn = transactional(bootstrap, create_topic(bootstrap, nodes), a.records, a.txn_size)
                print(json.dumps({"nodes": nodes, "records": a.records, "txn_size": a.txn_size,
                                  "idempotent_rec_s": round(idem), "transactional_rec_s": round(txn),
                                  "ratio": round(txn / idem, 3)}), flush=True)
            finally:
                proc.terminate()
                proc.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
