"""Transactions (KIP-98, KIP-447, KIP-890 part 1) with real clients against strom.

confluent-kafka (librdkafka 2.16) and kafka-python transactional producers commit and
abort; read_committed consumers see only committed records, read_uncommitted ones see
everything; an open transaction holds read_committed consumers at its first offset until
it ends; a second producer with the same transactional id fences the first; a
consume-transform-produce loop commits its input offsets inside its transactions
(send_offsets_to_transaction) and the group's offsets move only when a transaction
commits; a transaction left open past transaction.timeout.ms is aborted by the
coordinator.

On one node or, with E2E_NODES=3, on a three-node cluster with replication factor 3
(the transaction coordinator, the group coordinator and the partition leaders then sit
on different brokers, and the markers go between them).
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

from e2e_util import E2E_NODES, wait_until

STROM_SETTINGS = {
    # Timed-out transactions are looked for every 500 ms (Kafka: every 10 s).
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500,
    "group.initial.rebalance.delay.ms": 200,
}


@pytest.fixture(scope="module")
def admin(strom):
    return AdminClient({"bootstrap.servers": strom.bootstrap})


def create_topic(admin, partitions: int = 1, one_node: bool = False) -> str:
    """A topic with replication factor 3 (min.insync.replicas 2) on a cluster of three or
    more nodes, 1 on a single node (or a node of the test's own, `one_node`)."""
    name = f"txn-{uuid.uuid4().hex[:10]}"
    rf, cfg = (3, {"min.insync.replicas": "2"}) if E2E_NODES >= 3 and not one_node else (1, {})
    fs = admin.create_topics([NewTopic(name, partitions, rf, config=cfg)], operation_timeout=30)
    fs[name].result(timeout=60)

    def ready():
        t = admin.list_topics(name, timeout=10).topics.get(name)
        return t is not None and t.error is None and len(t.partitions) == partitions and all(
            p.leader >= 0 for p in t.partitions.values())

    wait_until(ready, 30, what=f"leaders for {name}")
    return name


def txn_producer(strom, tid: str, **extra) -> Producer:
    conf = {"bootstrap.servers": strom.bootstrap, "transactional.id": tid, "linger.ms": 5}
    conf.update(extra)
    return Producer(conf)


def read_all(strom, topic: str, partitions: int, isolation: str, timeout: float = 20) -> list[tuple[int, int, bytes]]:
    """Every record a consumer with `isolation` reads from the start to the end it
    reports (partition EOF on each partition): [(partition, offset, value)]."""
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:6]}",
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out, eof = [], set()
        deadline = time.monotonic() + timeout
        while len(eof) < partitions and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                raise KafkaException(m.error())
            eof.discard(m.partition())
            out.append((m.partition(), m.offset(), m.value()))
        assert len(eof) == partitions, f"no end of partition reached within {timeout}s; read {len(out)}"
        return out
    finally:
        c.close()


def values(records) -> list[bytes]:
    return [v for _, _, v in sorted(records)]


def test_confluent_commit_and_abort(strom, admin):
    topic = create_topic(admin, partitions=3)
    p = txn_producer(strom, f"tid-{uuid.uuid4().hex[:8]}")
    p.init_transactions(30)
    committed, aborted = [], []
    for n, commit in enumerate([True, False, True, False, True]):
        p.begin_transaction()
        batch = [f"t{n}-r{i}".encode() for i in range(20)]
        for i, v in enumerate(batch):
            p.produce(topic, value=v, key=str(i).encode())
        if commit:
            p.commit_transaction(30)
            committed += batch
        else:
            p.flush(30)  # written, then aborted (abort alone would purge unsent records)
            p.abort_transaction(30)
            aborted += batch
    got = read_all(strom, topic, 3, "read_committed")
    assert sorted(values(got)) == sorted(committed)
    everything = read_all(strom, topic, 3, "read_uncommitted")
    assert sorted(values(everything)) == sorted(committed + aborted)
    # Within a partition a committed transaction's records keep their order.
    for part in range(3):
        seq = [v for pp, _, v in sorted(got) if pp == part]
        assert seq == sorted(seq, key=lambda v: (int(v.split(b"-")[0][1:]), int(v.split(b"-r")[1])))


def test_kafka_python_commit_and_abort(strom, admin):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTP

    topic = create_topic(admin, partitions=2)
    p = KafkaProducer(bootstrap_servers=strom.bootstrap, transactional_id=f"kp-{uuid.uuid4().hex[:8]}")
    p.init_transactions()
    p.begin_transaction()
    for i in range(10):
        p.send(topic, value=f"commit-{i}".encode(), partition=i % 2)
    p.commit_transaction()
    p.begin_transaction()
    for i in range(10):
        p.send(topic, value=f"abort-{i}".encode(), partition=i % 2)
    p.flush()  # written, then aborted
    p.abort_transaction()
    p.begin_transaction()
    p.send(topic, value=b"last", partition=0)
    p.commit_transaction()
    p.close()

    def consume(isolation):
        c = KafkaConsumer(bootstrap_servers=strom.bootstrap, isolation_level=isolation,
                          enable_auto_commit=False, consumer_timeout_ms=3000)
        c.assign([KTP(topic, 0), KTP(topic, 1)])
        c.seek_to_beginning()
        got = [m.value for m in c]
        c.close()
        return got

    committed = consume("read_committed")
    assert sorted(committed) == sorted([f"commit-{i}".encode() for i in range(10)] + [b"last"])
    assert len(consume("read_uncommitted")) == 21


def test_open_transaction_holds_read_committed_consumers(strom, admin):
    topic = create_topic(admin)
    plain = Producer({"bootstrap.servers": strom.bootstrap})
    plain.produce(topic, value=b"before")
    plain.flush(10)
    p = txn_producer(strom, f"open-{uuid.uuid4().hex[:8]}")
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, value=b"in-txn")
    p.flush(10)
    # A non-transactional record after the open transaction's first offset.
    plain.produce(topic, value=b"after")
    plain.flush(10)
    assert values(read_all(strom, topic, 1, "read_committed")) == [b"before"]
    assert values(read_all(strom, topic, 1, "read_uncommitted")) == [b"before", b"in-txn", b"after"]
    # ListOffsets(latest) answers the last stable offset to read_committed clients and
    # the high watermark to the others.
    for isolation, end in (("read_committed", 1), ("read_uncommitted", 3)):
        c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": "x", "isolation.level": isolation})
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
        c.close()
        assert (lo, hi) == (0, end), isolation
    p.commit_transaction(30)
    assert values(read_all(strom, topic, 1, "read_committed")) == [b"before", b"in-txn", b"after"]


def test_a_second_producer_fences_the_first(strom, admin):
    topic = create_topic(admin)
    tid = f"fence-{uuid.uuid4().hex[:8]}"
    p1 = txn_producer(strom, tid)
    p1.init_transactions(30)
    p1.begin_transaction()
    p1.produce(topic, value=b"zombie")
    p1.flush(10)
    p2 = txn_producer(strom, tid)
    p2.init_transactions(30)  # aborts p1's open transaction and bumps the epoch
    p2.begin_transaction()
    p2.produce(topic, value=b"new")
    p2.commit_transaction(30)
    with pytest.raises(KafkaException) as e:
        p1.produce(topic, value=b"zombie-2")
        p1.commit_transaction(10)
    err = e.value.args[0]
    assert err.fatal() or err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                         KafkaError.INVALID_PRODUCER_EPOCH), err
    assert values(read_all(strom, topic, 1, "read_committed")) == [b"new"]


def test_consume_transform_produce_commits_offsets_in_the_transaction(strom, admin):
    src = create_topic(admin, partitions=2)
    dst = create_topic(admin, partitions=2)
    plain = Producer({"bootstrap.servers": strom.bootstrap})
    for i in range(200):
        plain.produce(src, value=str(i).encode(), partition=i % 2)
    plain.flush(10)
    group = f"ctp-{uuid.uuid4().hex[:6]}"
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    c.subscribe([src])
    p = txn_producer(strom, f"ctp-{uuid.uuid4().hex[:6]}")
    p.init_transactions(30)
    done, rounds, aborted_once = 0, 0, False
    deadline = time.monotonic() + 60
    while done < 200 and time.monotonic() < deadline:
        msgs = c.consume(50, 1.0)
        msgs = [m for m in msgs if not m.error()]
        if not msgs:
            continue
        p.begin_transaction()
        for m in msgs:
            p.produce(dst, value=b"x" + m.value(), partition=m.partition())
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
        rounds += 1
        if rounds == 2 and not aborted_once:
            # Abort one round: its output disappears and its offsets are not committed,
            # so the same input is processed again.
            p.abort_transaction(30)
            aborted_once = True
            committed = c.committed(c.assignment(), timeout=10)
            for tp in committed:
                c.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
            continue
        p.commit_transaction(30)
        done += len(msgs)
    assert aborted_once and done == 200
    committed = c.committed([TopicPartition(src, 0), TopicPartition(src, 1)], timeout=10)
    c.close()
    assert sorted(tp.offset for tp in committed) == [100, 100]
    out = values(read_all(strom, dst, 2, "read_committed"))
    assert sorted(out) == sorted(b"x" + str(i).encode() for i in range(200))


def test_the_coordinator_aborts_a_transaction_past_its_timeout(strom, admin):
    topic = create_topic(admin)
    p = txn_producer(strom, f"slow-{uuid.uuid4().hex[:8]}", **{"transaction.timeout.ms": 2000})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, value=b"abandoned")
    p.flush(10)
    assert values(read_all(strom, topic, 1, "read_uncommitted")) == [b"abandoned"]
    # The coordinator aborts it (marker written): read_committed consumers move past it.
    plain = Producer({"bootstrap.servers": strom.bootstrap})
    plain.produce(topic, value=b"later")
    plain.flush(10)
    wait_until(lambda: values(read_all(strom, topic, 1, "read_committed", timeout=5)) == [b"later"], 30,
               interval=0.5, what="the timed-out transaction aborted")
    with pytest.raises(KafkaException):
        p.commit_transaction(10)


def java_txn(*args, timeout: float = 120) -> list[dict]:
    """Runs e2e/java/StromTxn.java (kafka-clients 3.9.1); -> its JSON lines."""
    import json
    import subprocess

    from e2e_util import java_classpath

    cmd = ["java", "-Xss1m", "-XX:TieredStopAtLevel=1", "-cp", java_classpath(), "StromTxn", *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"StromTxn {args[0]} exited {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}"
    return [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]


def test_java_commit_abort_fencing_and_consume_transform_produce(strom, admin):
    topic = create_topic(admin, partitions=2)
    java_txn("produce", "--bootstrap", strom.bootstrap, "--topic", topic, "--tid", f"j-{uuid.uuid4().hex[:6]}",
             "--commit", 30, "--abort", 20)
    got = values(read_all(strom, topic, 2, "read_committed"))
    assert sorted(got) == sorted([f"java-commit-{i}".encode() for i in range(30)] + [b"java-last"])
    assert len(read_all(strom, topic, 2, "read_uncommitted")) == 51

    fenced_topic = create_topic(admin)
    out = java_txn("fence", "--bootstrap", strom.bootstrap, "--topic", fenced_topic, "--tid", f"jf-{uuid.uuid4().hex[:6]}")
    assert out[-1]["fenced"] in ("ProducerFencedException", "InvalidProducerEpochException"), out
    assert values(read_all(strom, fenced_topic, 1, "read_committed")) == [b"new"]

    src, dst = create_topic(admin, partitions=2), create_topic(admin, partitions=2)
    plain = Producer({"bootstrap.servers": strom.bootstrap})
    for i in range(300):
        plain.produce(src, value=str(i).encode(), partition=i % 2)
    plain.flush(10)
    group = f"jctp-{uuid.uuid4().hex[:6]}"
    out = java_txn("ctp", "--bootstrap", strom.bootstrap, "--src", src, "--dst", dst, "--group", group,
                   "--tid", f"jc-{uuid.uuid4().hex[:6]}", "--expect", 300)
    assert out[-1]["processed"] == 300, out
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": group})
    committed = c.committed([TopicPartition(src, 0), TopicPartition(src, 1)], timeout=10)
    c.close()
    assert sorted(tp.offset for tp in committed) == [150, 150]
    assert sorted(values(read_all(strom, dst, 2, "read_committed"))) == sorted(f"java-{i}".encode() for i in range(300))


def strom_txn(bootstrap, *args) -> list[list[str]]:
    """`strom txn ARGS -b BOOTSTRAP`: the table's rows (header first), split on 2+ spaces."""
    import re
    import subprocess

    from strom_harness import strom_binary

    p = subprocess.run([strom_binary(), "txn", *map(str, args), "-b", bootstrap], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"strom txn {' '.join(map(str, args))} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    return [re.split(r"\s{2,}", line.strip()) for line in p.stdout.splitlines() if line.strip()]


def test_txn_cli(strom, admin):
    topic = create_topic(admin)
    tid = f"cli-{uuid.uuid4().hex[:8]}"
    p = txn_producer(strom, tid)
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, value=b"a")
    p.produce(topic, value=b"b")
    p.flush(10)
    # An open transaction: its state and partitions, and at the partition's leader the
    # producer with the transaction's first offset.
    head, row = strom_txn(strom.bootstrap, "describe", tid)
    d = dict(zip(head, row))
    assert d["TRANSACTIONAL-ID"] == tid and d["STATE"] == "Ongoing", d
    assert d["PARTITIONS"] == f"{topic}-0" and d["TIMEOUT-MS"] == "60000", d
    rows = strom_txn(strom.bootstrap, "describe-producers", "--topic", topic, "--partition", 0)
    prods = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [x["TXN-START-OFFSET"] for x in prods] == ["0"], prods
    assert prods[0]["PRODUCER-ID"] == d["PRODUCER-ID"]
    listed = {r[0]: dict(zip(rows_h, r)) for rows_h in [strom_txn(strom.bootstrap, "list")[0]]
              for r in strom_txn(strom.bootstrap, "list")[1:]}
    assert listed[tid]["STATE"] == "Ongoing" and listed[tid]["PRODUCER-ID"] == d["PRODUCER-ID"], listed
    p.commit_transaction(30)

    def settled():
        rows = strom_txn(strom.bootstrap, "list")
        states = {r[0]: dict(zip(rows[0], r))["STATE"] for r in rows[1:]}
        return states.get(tid) == "CompleteCommit"

    wait_until(settled, 15, what="the transaction listed as CompleteCommit")
    rows = strom_txn(strom.bootstrap, "describe-producers", "--topic", topic, "--partition", 0)
    prods = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [x["TXN-START-OFFSET"] for x in prods] == ["-"], prods


def test_an_idle_transactional_id_expires(strom_factory):
    """transactional.id.expiration.ms: an id without a transaction for that long is
    forgotten (listed no more); the producer that used it then gets a fatal error, and a
    new one with the same id starts afresh."""
    node = strom_factory({"transactional.id.expiration.ms": 2000,
                          "transaction.abort.timed.out.transaction.cleanup.interval.ms": 300})
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    topic = create_topic(a, one_node=True)
    tid = f"exp-{uuid.uuid4().hex[:8]}"
    p = txn_producer(node, tid)
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, value=b"one")
    p.commit_transaction(30)

    def listed():
        return {r[0] for r in strom_txn(node.bootstrap, "list")[1:]}

    assert tid in listed()
    wait_until(lambda: tid not in listed(), 20, interval=0.5, what="the idle id to expire")
    p2 = txn_producer(node, tid)
    p2.init_transactions(30)
    p2.begin_transaction()
    p2.produce(topic, value=b"two")
    p2.commit_transaction(30)
    assert values(read_all(node, topic, 1, "read_committed")) == [b"one", b"two"]
