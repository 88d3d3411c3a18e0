"""A consume-transform-produce worker (confluent-kafka, exactly-once): reads `src` in a
consumer group with read_committed, writes each record's value prefixed with "out-" to
`dst` (same partition) and commits its input offsets inside the same transaction
(send_offsets_to_transaction). Runs until killed. Prints one JSON line per committed
transaction. Used by test_transactions_failover.py, which kills it and its brokers.

Usage: txn_worker.py BOOTSTRAP SRC DST GROUP TRANSACTIONAL_ID
"""

from __future__ import annotations

import json
import os
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING


def main():
    bootstrap, src, dst, group, tid = sys.argv[1:6]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    c.subscribe([src])
    conf = {"bootstrap.servers": bootstrap, "transactional.id": tid, "linger.ms": 5,
            "transaction.timeout.ms": 10000}
    if os.environ.get("TXN_WORKER_DEBUG"):
        conf["debug"] = os.environ["TXN_WORKER_DEBUG"]  # librdkafka's log, on stderr
    p = Producer(conf)
    p.init_transactions(60)
    print(json.dumps({"ready": True}), flush=True)

    def rewind():
        parts = c.assignment()
        if not parts:
            return
        for tp in c.committed(parts, timeout=30):
            c.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))

    txns = 0
    while True:
        msgs = [m for m in c.consume(100, 0.5) if not m.error()]
        if not msgs:
            continue
        try:
            p.begin_transaction()
            for m in msgs:
                p.produce(dst, value=b"out-" + m.value(), partition=m.partition())
            positions = [tp for tp in c.position(c.assignment()) if tp.offset >= 0]
            p.send_offsets_to_transaction(positions, c.consumer_group_metadata(), 60)
            while True:
                try:
                    p.commit_transaction(60)
                    break
                except KafkaException as e:
                    if e.args[0].retriable():
                        print(json.dumps({"commit retry": str(e.args[0])}), flush=True)
                        continue
                    raise
            txns += 1
            print(json.dumps({"committed": txns, "records": len(msgs)}), flush=True)
        except KafkaException as e:
            err = e.args[0]
            if err.fatal():
                print(json.dumps({"fatal": str(err)}), flush=True)
                sys.exit(3)
            print(json.dumps({"aborting": str(err)}), flush=True)
            p.abort_transaction(60)
            rewind()


if __name__ == "__main__":
    main()
