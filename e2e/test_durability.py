"""Crash and restart: every acknowledged record survives kill -9 of the node that
leads it, exactly once and in order per partition, and a clean (SIGTERM) restart keeps
data, topics and their configs.

Each test runs a target of its own (target_factory), shaped like the suite's: one
node, or with E2E_NODES=3 a 3-node cluster whose RF-1 partitions are led by different
nodes. A test kills the node leading the partition under test (in a cluster the others
keep serving theirs) and starts it again; "kill everything" kills every node. So these
tests are skipped when E2E_BOOTSTRAP points at an external broker, and only then."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic, ResourceType

from e2e_util import Java, wait_until

pytestmark = pytest.mark.timeout(240)

# librdkafka's log lines go to Python logging (shown by pytest for failed tests).
RDKAFKA_LOG = logging.getLogger("rdkafka")


def admin_for(node) -> AdminClient:
    return AdminClient({"bootstrap.servers": node.bootstrap})


def leaders(target, topic) -> dict[int, int]:
    """{partition: leader node id} from Metadata."""
    md = admin_for(target).list_topics(topic, timeout=10).topics[topic]
    return {p: md.partitions[p].leader for p in sorted(md.partitions)}


def kill_and_restart(target, *nodes):
    """kill -9 the given nodes (the target's nodes when none are given), then start them
    again (all at once: in a cluster a majority may be among them)."""
    for n in nodes or target.nodes:
        n.kill9()
    target.start()


def create_topic(node, name, partitions, config=None):
    a = admin_for(node)
    a.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(timeout=60)

    def ready():
        md = a.list_topics(name, timeout=5).topics.get(name)
        return md is not None and md.error is None and len(md.partitions) == partitions and \
            all(p.leader >= 0 for p in md.partitions.values())
    wait_until(ready, 20, what=f"leaders of {name}")
    return name


def read_all(bootstrap, topic, partitions, timeout=60) -> dict[int, list]:
    """{partition: [(offset, key, value, headers, timestamp)]} up to each high watermark."""
    def consumer():
        return Consumer({"bootstrap.servers": bootstrap, "group.id": f"e2e-unused-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "enable.auto.offset.store": False, "check.crcs": True},
                        logger=RDKAFKA_LOG)

    c = consumer()
    try:
        deadline = time.monotonic() + timeout
        ends = {}
        for p in range(partitions):
            while True:
                try:
                    lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    break
                except Exception:  # noqa: BLE001 - the node may still be loading the partition
                    assert time.monotonic() < deadline, f"no watermarks for {topic}[{p}]"
                    time.sleep(0.2)
                    # librdkafka answers a watermark query from its metadata cache and
                    # does not refresh it when that cache says the partition has no
                    # leader (as it had while the nodes restarted): a new client asks anew.
                    c.close()
                    c = consumer()
            assert lo == 0, f"{topic}[{p}]: log start offset {lo}, expected 0 (nothing was deleted)"
            ends[p] = hi
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions) if ends[p] > 0])
        got = {p: [] for p in range(partitions)}
        while any(len(got[p]) < ends[p] for p in got):
            assert time.monotonic() < deadline, \
                f"read {[len(got[p]) for p in got]} of {[ends[p] for p in got]} records"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                continue
            got[m.partition()].append((m.offset(), m.key(), m.value(), m.headers() or [], m.timestamp()[1]))
        for p in got:
            offs = [r[0] for r in got[p]]
            assert offs == list(range(ends[p])), f"{topic}[{p}]: offsets are not 0..{ends[p] - 1} (gaps?)"
        return got
    finally:
        c.close()


class ContinuousProducer:
    """An idempotent acks=all producer writing value i to partition i % partitions until
    stopped; records what the broker acknowledged."""

    def __init__(self, bootstrap, topic, partitions):
        self.topic, self.partitions = topic, partitions
        self.p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                           "linger.ms": 5, "message.timeout.ms": 120000, "retry.backoff.ms": 100,
                           "reconnect.backoff.max.ms": 500}, logger=RDKAFKA_LOG)
        self.acked: list[tuple[int, int, int]] = []  # (partition, offset, i)
        self.errors: list[tuple[int, KafkaError]] = []
        self.sent = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _cb(self, i):
        def done(err, msg):
            with self.lock:
                if err is not None:
                    self.errors.append((i, err))
                else:
                    self.acked.append((msg.partition(), msg.offset(), i))
        return done

    def _run(self):
        i = 0
        while not self.stop.is_set():
            try:
                self.p.produce(self.topic, value=b"%09d" % i, partition=i % self.partitions, on_delivery=self._cb(i))
                i += 1
                self.sent = i
            except BufferError:
                self.p.poll(0.05)
                continue
            self.p.poll(0)
            if i % 50 == 0:
                time.sleep(0.005)  # ~ several thousand records per second, bounded

    def acked_count(self):
        with self.lock:
            return len(self.acked)

    def start(self):
        self.thread.start()
        return self

    def finish(self, timeout=130):
        self.stop.set()
        self.thread.join(10)
        remaining = self.p.flush(timeout)
        assert remaining == 0, f"{remaining} records neither acknowledged nor failed after {timeout} s"

    def abort(self):
        """After a failure: drop what is queued instead of waiting for it."""
        self.stop.set()
        self.thread.join(10)
        self.p.purge()
        self.p.flush(1)


def check_log_against_acks(got, acked, errors, partitions):
    """Every acknowledged record is in the log at its offset, exactly once; per
    partition the log holds values in the order they were sent; nothing invented."""
    seen = {}
    for p, recs in got.items():
        values = [int(v) for _, _, v, _, _ in recs]
        assert values == sorted(values), f"partition {p}: records out of order"
        assert all(v % partitions == p for v in values), f"partition {p} holds another partition's record"
        for off, _, v, _, _ in recs:
            assert int(v) not in seen, f"value {int(v)} twice: {seen[int(v)]} and ({p}, {off})"
            seen[int(v)] = (p, off)
    lost = [(p, off, i) for p, off, i in acked if seen.get(i) != (p, off)]
    assert not lost, f"{len(lost)} acknowledged records missing or moved, first: {lost[:5]} -> " \
                     f"{[seen.get(i) for _, _, i in lost[:5]]}"
    failed = {i for i, _ in errors}
    assert not failed & {i for _, _, i in acked}


@pytest.mark.parametrize("kills", [1, 3])
def test_kill9_while_producing_keeps_every_acked_record(target_factory, new_topic, kills):
    node = target_factory()
    partitions = 4
    topic = create_topic(node, new_topic(), partitions)
    leader_of = leaders(node, topic)
    prod = ContinuousProducer(node.bootstrap, topic, partitions).start()
    try:
        target = 0
        for k in range(kills):
            target += 1500
            wait_until(lambda: prod.acked_count() >= target, 60, what=f"{target} acks before kill {k + 1}")
            victim = node.node(leader_of[k % partitions])  # the leader of partition k
            victim.kill9()
            acked_at_kill = prod.acked_count()
            time.sleep(0.3)  # the producer keeps writing into the void for a moment
            victim.start()
            target = acked_at_kill + 1500
            wait_until(lambda: prod.acked_count() >= target, 60, what="acks after restart")
        prod.finish()
    except BaseException:
        prod.abort()
        raise
    assert not prod.errors, f"{len(prod.errors)} records failed, first: {prod.errors[:3]}"
    assert prod.acked_count() == prod.sent, "every record sent must end up acknowledged"
    got = read_all(node.bootstrap, topic, partitions)
    check_log_against_acks(got, prod.acked, prod.errors, partitions)
    assert sum(len(r) for r in got.values()) == prod.sent, "the log holds exactly the records sent, once each"

    # And the data survives one more crash of every node with no producer around.
    kill_and_restart(node)
    assert read_all(node.bootstrap, topic, partitions) == got


def test_kill9_java_idempotent_producer(target_factory, new_topic):
    """The Java client (idempotent, acks=all by default) keeps writing keyed records
    through a kill -9 and restart of partition 0's leader: each key's records are in
    order, once each."""
    node = target_factory()
    topic = create_topic(node, new_topic(), 3)
    victim = node.node(leaders(node, topic)[0])
    java = Java(node.bootstrap)
    count = 6000
    proc = subprocess.Popen(
        ["java", "-cp", java.cp, "StromE2E", "produce", "--bootstrap", node.bootstrap, "--topic", topic,
         "--count", str(count), "--keys", "9", "--interval-ms", "1", "--idempotent", "true", "--acks", "all",
         "--producer-config", "delivery.timeout.ms=120000", "--producer-config", "reconnect.backoff.max.ms=500"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[dict] = []
    reader = threading.Thread(target=lambda: [lines.append(json.loads(x)) for x in proc.stdout if x.startswith("{")],
                              daemon=True)
    reader.start()
    try:
        wait_until(lambda: len(lines) >= 1500, 90, what="1500 Java acks before the kill")
        victim.kill9()
        time.sleep(0.3)
        victim.start()
        proc.wait(timeout=150)
        reader.join(10)
    finally:
        proc.kill()
    err = proc.stderr.read()
    done = lines[-1] if lines else {}
    assert done.get("done") and done["failed"] == 0 and done["acked"] == count, (done, err[-3000:])
    acked = {(x["partition"], x["offset"]): x["i"] for x in lines if "offset" in x}
    assert len(acked) == count, "two records acknowledged at the same offset"

    got = read_all(node.bootstrap, topic, 3)
    seen = set()
    for p, recs in got.items():
        last_of_key = {}
        for off, key, value, _, _ in recs:
            n = int(value[1:])
            assert n not in seen, f"record v{n} twice"
            seen.add(n)
            assert key == b"k%d" % (n % 9)
            assert last_of_key.get(key, -1) < n, f"key {key}: v{n} after v{last_of_key[key]}"
            last_of_key[key] = n
            if (p, off) in acked:
                assert acked[(p, off)] == n, f"({p}, {off}) acked as v{acked[(p, off)]}, holds v{n}"
    assert seen == set(range(count))


def test_sigterm_restart_keeps_data_topics_and_configs(target_factory, new_topic):
    node = target_factory()
    t1 = create_topic(node, new_topic("plain"), 3, config={"retention.ms": "3600000", "cleanup.policy": "delete"})
    t2 = create_topic(node, new_topic("compressed"), 1)
    gone = create_topic(node, new_topic("deleted"), 1)
    admin = admin_for(node)
    ids = {t: str(admin.describe_topics(TopicCollection([t]))[t].result(timeout=30).topic_id) for t in (t1, t2)}

    base = (int(time.time()) - 600) * 1000
    p = Producer({"bootstrap.servers": node.bootstrap, "enable.idempotence": True, "linger.ms": 10},
                 logger=RDKAFKA_LOG)
    for i in range(300):
        p.produce(t1, key=b"key-%d" % (i % 7), value=b"plain-%d" % i, headers=[("i", str(i).encode())],
                  timestamp=base + i)
    for codec in ["gzip", "snappy", "lz4", "zstd"]:
        pc = Producer({"bootstrap.servers": node.bootstrap, "compression.type": codec, "linger.ms": 20})
        for i in range(50):
            pc.produce(t2, key=codec.encode(), value=(codec * 40 + str(i)).encode(), partition=0)
        assert pc.flush(30) == 0
    assert p.flush(30) == 0
    admin.delete_topics([gone])[gone].result(timeout=30)
    wait_until(lambda: gone not in admin.list_topics(timeout=5).topics, 20, what="topic deleted")

    before1 = read_all(node.bootstrap, t1, 3)
    before2 = read_all(node.bootstrap, t2, 1)
    assert sum(len(v) for v in before1.values()) == 300 and len(before2[0]) == 200

    codes = node.terminate()  # a cluster: SIGTERM to every node at once
    codes = codes if isinstance(codes, dict) else {node.node_id: codes}
    assert set(codes.values()) == {0}, \
        f"exit codes on SIGTERM {codes} (graceful shutdown should exit 0)"
    node.start()

    admin = admin_for(node)
    topics = admin.list_topics(timeout=10).topics
    assert t1 in topics and t2 in topics and gone not in topics
    assert len(topics[t1].partitions) == 3
    for t in (t1, t2):
        assert str(admin.describe_topics(TopicCollection([t]))[t].result(timeout=30).topic_id) == ids[t]
    res = ConfigResource(ResourceType.TOPIC, t1)
    cfg = admin.describe_configs([res])[res].result(timeout=30)
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert (cfg["cleanup.policy"].value, cfg["cleanup.policy"].source) == ("delete", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)

    assert read_all(node.bootstrap, t1, 3) == before1
    assert read_all(node.bootstrap, t2, 1) == before2

    # Offsets continue after the restart; the deleted name can be used again.
    p = Producer({"bootstrap.servers": node.bootstrap, "enable.idempotence": True})
    delivered = []
    p.produce(t2, value=b"after-restart", partition=0, on_delivery=lambda e, m: delivered.append((e, m)))
    assert p.flush(30) == 0
    err, msg = delivered[0]
    assert err is None and msg.offset() == 200
    create_topic(node, gone, 2)
    assert sum(len(v) for v in read_all(node.bootstrap, gone, 2).values()) == 0


def test_kill9_right_after_acks(target_factory, new_topic):
    """Records acknowledged with acks=all are there after an immediate kill -9 of the
    nodes that lead them, repeatedly."""
    node = target_factory()
    topic = create_topic(node, new_topic(), 2)
    victims = [node.node(i) for i in sorted(set(leaders(node, topic).values()))]
    expected = {0: [], 1: []}
    for round_ in range(3):
        p = Producer({"bootstrap.servers": node.bootstrap, "acks": "all", "linger.ms": 0}, logger=RDKAFKA_LOG)
        results = []
        for i in range(200):
            v = b"r%d-%d" % (round_, i)
            p.produce(topic, value=v, partition=i % 2, on_delivery=lambda e, m: results.append((e, m)))
        assert p.flush(30) == 0
        assert all(e is None for e, _ in results), [e for e, _ in results if e][:3]
        for _, m in sorted(results, key=lambda r: (r[1].partition(), r[1].offset())):
            expected[m.partition()].append((m.offset(), m.value()))
        kill_and_restart(node, *victims)
        got = read_all(node.bootstrap, topic, 2)
        for part in (0, 1):
            assert [(o, v) for o, _, v, _, _ in got[part]] == expected[part], f"round {round_}, partition {part}"
