"""confluent-kafka 2.16 (librdkafka 2.16) against strom: produce/consume, codecs with
proof from librdkafka's own debug log that batches went out compressed, big records,
keys, seeks and timestamps, idempotence, topic admin with configs.

librdkafka's Consumer insists on a group.id: it gets one, but partitions are assign()ed
with explicit offsets and nothing is committed (no consumer-group protocol is used)."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid

import pytest
from confluent_kafka import (OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException,
                             Producer, TopicCollection, TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewPartitions, NewTopic, OffsetSpec, ResourceType)

from e2e_util import (CODECS, PRODUCE_LINE, RF_TOO_LARGE, Got, Rec, assert_same_records, compressible,
                      payload, rng, sample_records, settled, wait_until)

DEFAULT_RETENTION_MS = "604800000"

class LogLines(logging.Handler):
    """Collects librdkafka's log lines (delivered to Python on poll/flush)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._mu = threading.Lock()

    def emit(self, record):
        with self._mu:
            self.lines.append(record.getMessage())

    def logger(self) -> logging.Logger:
        lg = logging.getLogger(f"librdkafka.{uuid.uuid4().hex[:8]}")
        lg.setLevel(logging.DEBUG)
        lg.propagate = False
        lg.addHandler(self)
        return lg

    def produce_lines(self) -> list[re.Match]:
        with self._mu:
            return [m for m in map(PRODUCE_LINE.search, self.lines) if m]


@pytest.fixture(scope="module")
def admin(strom):
    return AdminClient({"bootstrap.servers": strom.bootstrap})


def create_topic(admin, name, partitions=1, config=None):
    fs = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})], operation_timeout=30)
    fs[name].result(timeout=60)
    wait_until(lambda: leaders_known(admin, name, partitions), 15, what=f"leaders for {name}")
    return name


def leaders_known(admin, name, partitions):
    md = admin.list_topics(name, timeout=5).topics.get(name)
    return (md is not None and md.error is None and len(md.partitions) == partitions
            and all(p.leader >= 0 for p in md.partitions.values()))


def producer(strom, **cfg) -> Producer:
    conf = {"bootstrap.servers": strom.bootstrap, "linger.ms": 5}
    conf.update(cfg)
    return Producer(conf)


def consumer(strom, **cfg) -> Consumer:
    conf = {"bootstrap.servers": strom.bootstrap, "group.id": f"e2e-unused-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "check.crcs": True}
    conf.update(cfg)
    return Consumer(conf)


def produce(p: Producer, topic: str, recs: list[Rec], timeout: float = 60) -> list:
    """Produce recs in order; -> delivered messages (or KafkaError) in input order."""
    results: list = [None] * len(recs)

    def cb(i):
        def done(err, msg):
            results[i] = err if err is not None else msg
        return done

    for i, r in enumerate(recs):
        kw = {}
        if r.partition is not None:
            kw["partition"] = r.partition
        if r.timestamp is not None:
            kw["timestamp"] = r.timestamp
        if r.headers:
            kw["headers"] = r.headers
        while True:
            try:
                p.produce(topic, value=r.value, key=r.key, on_delivery=cb(i), **kw)
                break
            except BufferError:  # local queue full: serve callbacks and retry
                p.poll(0.1)
        p.poll(0)
    remaining = p.flush(timeout)
    assert remaining == 0, f"{remaining} messages not delivered within {timeout} s"
    return results


def delivered(results) -> list:
    errors = [r for r in results if isinstance(r, KafkaError)]
    assert not errors, f"{len(errors)} delivery errors, first: {errors[0]}"
    return results


def poll_n(c: Consumer, n: int, timeout: float = 30) -> list[Got]:
    got: list[Got] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"got {len(got)} of {n} records within {timeout} s"
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise AssertionError(f"consumer error: {m.error()}")
        got.append(Got(m.partition(), m.offset(), m.timestamp()[1], m.key(), m.value(),
                       [(k, v) for k, v in (m.headers() or [])]))
    return got


def read_partition(strom, topic, partition, n, start=OFFSET_BEGINNING, **cfg) -> list[Got]:
    c = consumer(strom, **cfg)
    try:
        c.assign([TopicPartition(topic, partition, start)])
        return poll_n(c, n)
    finally:
        c.close()


# ------------------------------------------------------------------ produce / consume


def test_round_trip_keys_headers_bytes(strom, admin, new_topic):
    topic = create_topic(admin, new_topic())
    sent = sample_records("confluent-rt", 60)
    sent[5].headers = [("null-value", None), ("utf8", "héllo".encode())]
    p = producer(strom)
    res = delivered(produce(p, topic, sent))
    assert [m.partition() for m in res] == [0] * 60
    assert [m.offset() for m in res] == list(range(60))
    got = read_partition(strom, topic, 0, 60)
    assert_same_records(got, sent)
    assert [g.timestamp for g in got] == [m.timestamp()[1] for m in res]


@pytest.mark.parametrize("codec", CODECS)
def test_compression_really_compressed(strom, admin, new_topic, codec):
    topic = create_topic(admin, new_topic(codec))
    log = LogLines()
    size, n = 2000, 300
    sent = [Rec(f"key-{i}".encode(), compressible(i, size), [("codec", codec.encode())]) for i in range(n)]
    p = producer(strom, **{"compression.type": codec, "linger.ms": 50, "debug": "msg",
                           "enable.idempotence": True}, logger=log.logger())
    res = delivered(produce(p, topic, sent))
    p.flush(5)
    assert [m.offset() for m in res] == list(range(n))
    lines = log.produce_lines()
    assert lines, "no 'Produce MessageSet' debug line from librdkafka:\n" + "\n".join(log.lines[-20:])
    assert sum(int(m["n"]) for m in lines) == n
    for m in lines:
        assert m["codec"] == codec, f"librdkafka sent a batch {m['codec']!r}, not {codec!r}: {m.group(0)}"
        assert m["msgver"] == "2", m.group(0)
        assert int(m["bytes"]) < int(m["n"]) * size / 2, f"batch not smaller than its records: {m.group(0)}"
    assert_same_records(read_partition(strom, topic, 0, n), sent)


def test_uncompressed_log_line(strom, admin, new_topic):
    """The control for the test above: without compression the line says 'uncompressed'."""
    topic = create_topic(admin, new_topic())
    log = LogLines()
    p = producer(strom, **{"debug": "msg"}, logger=log.logger())
    delivered(produce(p, topic, [Rec(b"k", compressible(i, 2000)) for i in range(20)]))
    p.flush(5)
    lines = log.produce_lines()
    assert lines and all(m["codec"] == "uncompressed" for m in lines), [m.group(0) for m in lines]
    assert sum(int(m["bytes"]) for m in lines) > 20 * 2000


def test_records_of_1mb(strom, admin, new_topic):
    topic = create_topic(admin, new_topic())
    r = rng("confluent-big")
    sent = [Rec(f"big-{i}".encode(), payload(r, 1_000_000), [("i", str(i).encode())]) for i in range(3)]
    p = producer(strom, **{"message.max.bytes": 1048576, "linger.ms": 0})
    res = delivered(produce(p, topic, sent))
    assert [m.offset() for m in res] == [0, 1, 2]
    assert_same_records(read_partition(strom, topic, 0, 3), sent)


def test_record_larger_than_broker_limit_is_refused(strom, admin, new_topic):
    """A 2 MB record (client limits raised) exceeds the broker's message.max.bytes
    (1048588): the produce fails with MSG_SIZE_TOO_LARGE and nothing is appended."""
    topic = create_topic(admin, new_topic())
    p = producer(strom, **{"message.max.bytes": 4_000_000, "batch.size": 4_000_000, "linger.ms": 0,
                           "message.timeout.ms": 30000})
    res = produce(p, topic, [Rec(b"huge", b"x" * 2_000_000)])
    assert isinstance(res[0], KafkaError), f"2 MB record was accepted at offset {res[0].offset()}"
    assert res[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, res[0]
    # The partition stays usable and empty of the refused record.
    res = delivered(produce(p, topic, [Rec(b"small", b"ok")]))
    assert res[0].offset() == 0


@pytest.mark.parametrize("partitioner", ["consistent_random", "murmur2_random"])
def test_same_key_same_partition(strom, admin, new_topic, partitioner):
    topic = create_topic(admin, new_topic(), partitions=6)
    keys = [f"user-{k}".encode() for k in range(12)]
    sent = [Rec(keys[i % 12], f"{keys[i % 12].decode()}:{i // 12}".encode()) for i in range(12 * 25)]
    p = producer(strom, partitioner=partitioner)
    res = delivered(produce(p, topic, sent))
    part_of = {}
    for rec, m in zip(sent, res):
        assert part_of.setdefault(rec.key, m.partition()) == m.partition(), f"key {rec.key} went to two partitions"
    assert len(set(part_of.values())) > 1, "12 keys all in one of 6 partitions: partitioner not used?"
    c = consumer(strom)
    c.assign([TopicPartition(topic, p_, OFFSET_BEGINNING) for p_ in range(6)])
    got = poll_n(c, len(sent))
    c.close()
    by_key = {}
    for g in got:
        assert part_of[g.key] == g.partition, f"record of key {g.key} read from partition {g.partition}"
        by_key.setdefault(g.key, []).append(g)
    for k in keys:
        seq = [int(g.value.split(b":")[1]) for g in sorted(by_key[k], key=lambda g: g.offset)]
        assert seq == list(range(25)), f"key {k}: values out of order or missing: {seq}"


def produce_timestamped(strom, admin, topic, n=20, batched=True):
    create_topic(admin, topic)
    base = (int(time.time()) - 3600) * 1000
    recs = [Rec(b"k%d" % i, b"v%d" % i, timestamp=base + i * 1000) for i in range(n)]
    p = producer(strom, **({"linger.ms": 50} if batched else {"linger.ms": 0, "max.in.flight": 1}))
    if batched:
        res = delivered(produce(p, topic, recs))
    else:
        res = [delivered(produce(p, topic, [r]))[0] for r in recs]
    assert [m.offset() for m in res] == list(range(n))
    return base


def test_offsets_for_times(strom, admin, new_topic):
    topic = new_topic()
    base = produce_timestamped(strom, admin, topic)
    c = consumer(strom)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 20)

        def lookup(ts):
            return c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)[0].offset

        assert lookup(base + 3500) == 4
        assert lookup(base) == 0
        assert lookup(base - 86_400_000) == 0
        assert lookup(base + 19_000) == 19
        assert lookup(base + 20_000) == OFFSET_END, "no record at or after: -1 (end)"
    finally:
        c.close()


def test_list_offsets_admin(strom, admin, new_topic):
    topic = new_topic()
    base = produce_timestamped(strom, admin, topic)
    tp = TopicPartition(topic, 0)

    def one(spec):
        return admin.list_offsets({tp: spec})[tp].result(timeout=30)

    assert one(OffsetSpec.earliest()).offset == 0
    assert one(OffsetSpec.latest()).offset == 20
    r = one(OffsetSpec.for_timestamp(base + 3500))
    assert (r.offset, r.timestamp) == (4, base + 4000)
    r = one(OffsetSpec.max_timestamp())
    assert (r.offset, r.timestamp) == (19, base + 19_000)


def test_seek(strom, admin, new_topic):
    topic = new_topic()
    base = produce_timestamped(strom, admin, topic, batched=False)
    c = consumer(strom)
    try:
        c.assign([TopicPartition(topic, 0, 10)])
        got = poll_n(c, 10)
        assert [g.offset for g in got] == list(range(10, 20))
        assert [g.timestamp for g in got] == [base + i * 1000 for i in range(10, 20)]

        c.seek(TopicPartition(topic, 0, 3))
        got = poll_n(c, 1)
        assert (got[0].offset, got[0].value) == (3, b"v3")

        c.seek(TopicPartition(topic, 0, OFFSET_BEGINNING))
        assert poll_n(c, 1)[0].offset == 0

        # Seeking to the logical end resolves asynchronously in librdkafka: keep adding
        # records until one arrives. The first one read must be one of those (no record
        # from before the seek), at the offset it was acknowledged at.
        c.seek(TopicPartition(topic, 0, OFFSET_END))
        p = producer(strom, **{"linger.ms": 0})
        acked = {}
        deadline = time.monotonic() + 30
        first = None
        while first is None:
            assert time.monotonic() < deadline, "nothing consumed after seek to end"
            res = delivered(produce(p, topic, [Rec(b"late", b"late-%d" % len(acked))]))
            acked[res[0].value()] = res[0].offset()
            m = c.poll(0.5)
            if m is not None and not m.error():
                first = m
        assert first.value() in acked, f"read {first.value()!r} at offset {first.offset()} after seek to end"
        assert first.offset() == acked[first.value()] >= 20
    finally:
        c.close()


def test_idempotent_producer(strom, admin, new_topic):
    topic = create_topic(admin, new_topic())
    log = LogLines()
    p = producer(strom, **{"enable.idempotence": True, "linger.ms": 1, "batch.num.messages": 50,
                           "debug": "msg"}, logger=log.logger())
    sent = [Rec(None, b"seq-%06d" % i) for i in range(2000)]
    res = delivered(produce(p, topic, sent))
    p.flush(5)
    assert [m.offset() for m in res] == list(range(2000)), "offsets must be contiguous, no gaps or duplicates"
    lines = log.produce_lines()
    assert lines
    pids = {(m["pid"], m["epoch"]) for m in lines}
    assert len(pids) == 1 and int(next(iter(pids))[0]) >= 0, f"expected one valid producer id: {pids}"
    # Each batch's BaseSeq continues where the previous one ended.
    seqs = sorted((int(m["baseseq"]), int(m["n"])) for m in lines)
    expected = 0
    for base_seq, n in seqs:
        assert base_seq == expected, f"sequence gap or overlap at {base_seq} (expected {expected})"
        expected += n
    got = read_partition(strom, topic, 0, 2000)
    assert [g.value for g in got] == [r.value for r in sent]


# ------------------------------------------------------------------ admin


def describe_configs(admin, topic, until=None) -> dict:
    """The topic's configs (with `until`: once it holds, see e2e_util.settled)."""
    res = ConfigResource(ResourceType.TOPIC, topic)
    return settled(lambda: admin.describe_configs([res])[res].result(timeout=30), until)


def test_admin_create_topic_with_configs(strom, admin, new_topic):
    name = new_topic()
    create_topic(admin, name, partitions=3, config={"retention.ms": "3600000", "cleanup.policy": "compact"})
    desc = admin.describe_topics(TopicCollection([name]))[name].result(timeout=30)
    assert desc.name == name and not desc.is_internal
    assert str(desc.topic_id) not in ("", "AAAAAAAAAAAAAAAAAAAAAA"), "a created topic has a topic id (KIP-516)"
    assert [p.id for p in desc.partitions] == [0, 1, 2]
    for p in desc.partitions:
        assert p.leader is not None and [r.id for r in p.replicas] == [p.leader.id]
        assert [r.id for r in p.isr] == [p.leader.id]
        if not strom.is_external:
            assert p.leader.id in strom.node_ids

    cfg = describe_configs(admin, name)
    assert cfg["retention.ms"].value == "3600000"
    assert cfg["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not cfg["retention.ms"].is_default
    assert cfg["cleanup.policy"].value == "compact"
    assert cfg["cleanup.policy"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert cfg["segment.bytes"].value == "1073741824"
    assert cfg["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert cfg["segment.bytes"].is_default


def test_admin_validate_only(strom, admin, new_topic):
    name = new_topic()
    fs = admin.create_topics([NewTopic(name, 2, 1)], validate_only=True)
    fs[name].result(timeout=30)
    assert name not in admin.list_topics(timeout=10).topics


def test_admin_incremental_alter_configs(strom, admin, new_topic):
    name = create_topic(admin, new_topic(), config={"retention.ms": "3600000"})

    def alter(*entries, validate_only=False):
        res = ConfigResource(ResourceType.TOPIC, name, incremental_configs=list(entries))
        return admin.incremental_alter_configs([res], validate_only=validate_only)[res].result(timeout=30)

    alter(ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
          ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET))
    cfg = describe_configs(admin, name, until=lambda c: c["retention.ms"].value == "7200000")
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == ("7200000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert cfg["cleanup.policy"].value == "compact"

    alter(ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.APPEND))
    assert set(describe_configs(admin, name, until=lambda c: "," in c["cleanup.policy"].value)
               ["cleanup.policy"].value.split(",")) == {"compact", "delete"}
    alter(ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SUBTRACT))
    assert describe_configs(admin, name, until=lambda c: c["cleanup.policy"].value == "delete")[
        "cleanup.policy"].value == "delete"

    alter(ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE))
    cfg = describe_configs(admin, name, until=lambda c: c["retention.ms"].value == DEFAULT_RETENTION_MS)
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == (DEFAULT_RETENTION_MS, ConfigSource.DEFAULT_CONFIG.value)

    alter(ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET), validate_only=True)
    assert describe_configs(admin, name)["retention.ms"].value == DEFAULT_RETENTION_MS

    with pytest.raises(KafkaException) as e:
        alter(ConfigEntry("retention.ms", "not-a-number", incremental_operation=AlterConfigOpType.SET))
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert describe_configs(admin, name)["retention.ms"].value == DEFAULT_RETENTION_MS


def test_admin_dynamic_broker_configs(strom, admin, new_topic):
    """Dynamic broker configs (`kafka-configs --entity-type brokers --alter`): each broker
    resource goes to the broker it names and is kept in the metadata log; a topic-config
    synonym set there becomes the default of that broker's topics (a record ten minutes
    ahead is refused once `log.message.timestamp.after.max.ms` is one minute, accepted
    again after DELETE); settings read at start are refused (Kafka's INVALID_REQUEST)."""
    name = create_topic(admin, new_topic())
    brokers = sorted(admin.list_topics(timeout=10).brokers)
    SET, DELETE = AlterConfigOpType.SET, AlterConfigOpType.DELETE
    APPEND, SUBTRACT = AlterConfigOpType.APPEND, AlterConfigOpType.SUBTRACT

    def alter(broker, *entries):
        res = ConfigResource(ResourceType.BROKER, str(broker), incremental_configs=list(entries))
        return admin.incremental_alter_configs([res])[res].result(timeout=30)

    def describe_broker(broker):
        res = ConfigResource(ResourceType.BROKER, str(broker))
        return admin.describe_configs([res])[res].result(timeout=30)

    def produce_ahead() -> KafkaError | None:
        """Produces one record stamped ten minutes ahead; its delivery error."""
        got = []
        p = Producer({"bootstrap.servers": strom.bootstrap, "linger.ms": 0, "retries": 0})
        p.produce(name, b"v", key=b"k", timestamp=int(time.time() * 1000) + 600_000,
                  on_delivery=lambda err, msg: got.append(err))
        p.flush(30)
        assert len(got) == 1
        return got[0]

    assert produce_ahead() is None, "ten minutes ahead is within Kafka's default hour"
    for b in brokers:
        alter(b, ConfigEntry("log.message.timestamp.after.max.ms", "60000", incremental_operation=SET),
              ConfigEntry("log.cleanup.policy", "compact", incremental_operation=APPEND),
              ConfigEntry("background.threads", "9", incremental_operation=SET))
    cfg = describe_broker(brokers[0])
    ahead = cfg["log.message.timestamp.after.max.ms"]
    assert (ahead.value, ahead.source, ahead.is_read_only) == (
        "60000", ConfigSource.DYNAMIC_BROKER_CONFIG.value, False)
    assert cfg["log.cleanup.policy"].value == "delete,compact", "APPEND starts from the default"
    assert cfg["background.threads"].value == "9", "a name strom does not use is kept, as Kafka keeps it"
    assert cfg["node.id"].is_read_only
    tcfg = describe_configs(admin, name, until=lambda c: c["message.timestamp.after.max.ms"].value == "60000")
    assert tcfg["message.timestamp.after.max.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    err = settled(produce_ahead, lambda e: e is not None)
    assert err.code() == KafkaError.INVALID_TIMESTAMP, err

    with pytest.raises(KafkaException) as e:
        alter(brokers[0], ConfigEntry("node.id", "77", incremental_operation=SET))
    assert e.value.args[0].code() == KafkaError.INVALID_REQUEST
    with pytest.raises(KafkaException) as e:
        alter(brokers[0], ConfigEntry("log.retention.ms", "soon", incremental_operation=SET))
    assert e.value.args[0].code() == KafkaError.INVALID_REQUEST

    for b in brokers:
        alter(b, ConfigEntry("log.message.timestamp.after.max.ms", None, incremental_operation=DELETE),
              ConfigEntry("log.cleanup.policy", "compact", incremental_operation=SUBTRACT),
              ConfigEntry("background.threads", None, incremental_operation=DELETE))
    cfg = describe_broker(brokers[0])
    assert cfg["log.message.timestamp.after.max.ms"].source != ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert cfg["log.cleanup.policy"].value == "delete" and "background.threads" not in cfg
    describe_configs(admin, name, until=lambda c: c["message.timestamp.after.max.ms"].value == "3600000")
    assert settled(produce_ahead, lambda e: e is None) is None


def test_admin_group_configs(strom, admin):
    """KIP-848 group configs (`kafka-configs --entity-type groups`): kept per group (the
    group need not exist), described with source GROUP_CONFIG, the other group configs
    with the broker's value as DEFAULT_CONFIG; values outside the broker's bounds and
    names of group types strom does not serve are refused (INVALID_CONFIG)."""
    group = f"cfg-{uuid.uuid4().hex[:8]}"
    res = ConfigResource(ResourceType.GROUP, group)

    def alter(*entries):
        r = ConfigResource(ResourceType.GROUP, group, incremental_configs=list(entries))
        return admin.incremental_alter_configs([r])[r].result(timeout=30)

    def describe():
        return {k: (v.value, v.source) for k, v in admin.describe_configs([res])[res].result(timeout=30).items()}

    before = describe()
    assert set(before) == {"consumer.session.timeout.ms", "consumer.heartbeat.interval.ms"}
    assert all(src == ConfigSource.DEFAULT_CONFIG.value for _, src in before.values())
    alter(ConfigEntry("consumer.session.timeout.ms", "50000", incremental_operation=AlterConfigOpType.SET))
    after = settled(describe, lambda d: d["consumer.session.timeout.ms"][0] == "50000")
    assert after["consumer.session.timeout.ms"] == ("50000", ConfigSource.GROUP_CONFIG.value)
    assert after["consumer.heartbeat.interval.ms"] == before["consumer.heartbeat.interval.ms"]
    for name, value in [("consumer.session.timeout.ms", "1000"), ("share.auto.offset.reset", "earliest")]:
        with pytest.raises(KafkaException) as e:
            alter(ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET))
        assert e.value.args[0].code() == KafkaError.INVALID_CONFIG, (name, e.value)
    assert describe()["consumer.session.timeout.ms"][0] == "50000"
    alter(ConfigEntry("consumer.session.timeout.ms", None, incremental_operation=AlterConfigOpType.DELETE))
    assert settled(describe, lambda d: d == before) == before


def test_admin_create_partitions(strom, admin, new_topic):
    name = create_topic(admin, new_topic(), partitions=2)
    admin.create_partitions([NewPartitions(name, 5)])[name].result(timeout=30)
    wait_until(lambda: leaders_known(admin, name, 5), 15, what="5 partitions with leaders")
    p = producer(strom)
    # On a cluster the broker the producer asks may apply the new partitions a moment
    # after the one the admin asked (each follows the metadata log on its own, as in
    # KRaft); librdkafka fails a record for a partition its metadata lacks at once.
    wait_until(lambda: leaders_known(p, name, 5), 15, what="the producer's view of 5 partitions")
    res = delivered(produce(p, name, [Rec(b"k", b"p4", partition=4)]))
    assert (res[0].partition(), res[0].offset()) == (4, 0)
    assert read_partition(strom, name, 4, 1)[0].value == b"p4"
    with pytest.raises(KafkaException) as e:
        admin.create_partitions([NewPartitions(name, 3)])[name].result(timeout=30)
    assert e.value.args[0].code() == KafkaError.INVALID_PARTITIONS


def test_admin_delete_topic(strom, admin, new_topic):
    name = create_topic(admin, new_topic())
    old_id = admin.describe_topics(TopicCollection([name]))[name].result(timeout=30).topic_id
    delivered(produce(producer(strom), name, [Rec(b"k", b"before-delete")]))
    admin.delete_topics([name], operation_timeout=30)[name].result(timeout=60)
    wait_until(lambda: name not in admin.list_topics(timeout=5).topics, 15, what="topic gone")
    with pytest.raises(KafkaException) as e:
        admin.delete_topics([name])[name].result(timeout=30)
    assert e.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    create_topic(admin, name)
    new_id = admin.describe_topics(TopicCollection([name]))[name].result(timeout=30).topic_id
    assert str(new_id) != str(old_id), "a topic re-created under the same name gets a new topic id"
    c = consumer(strom)
    # On a cluster the broker the new consumer asks may learn of the re-created topic a
    # moment later (each broker applies the metadata log on its own).
    wm = wait_until(lambda: c.get_watermark_offsets(TopicPartition(name, 0), timeout=5), 15,
                    what="watermarks of the re-created topic")
    assert wm == (0, 0), "re-created topic must be empty"
    c.close()


@pytest.mark.parametrize("case,kwargs,error", [
    ("rf-too-large", {"num_partitions": 1, "replication_factor": RF_TOO_LARGE}, KafkaError.INVALID_REPLICATION_FACTOR),
    ("retention-not-a-number", {"num_partitions": 1, "replication_factor": 1,
                                "config": {"retention.ms": "abc"}}, KafkaError.INVALID_CONFIG),
    ("cleanup-policy-bogus", {"num_partitions": 1, "replication_factor": 1,
                              "config": {"cleanup.policy": "bogus"}}, KafkaError.INVALID_CONFIG),
])
def test_admin_create_topic_errors(strom, admin, new_topic, case, kwargs, error):
    name = new_topic()
    with pytest.raises(KafkaException) as e:
        admin.create_topics([NewTopic(name, **kwargs)])[name].result(timeout=30)
    assert e.value.args[0].code() == error, e.value
    assert name not in admin.list_topics(timeout=10).topics


def test_admin_topic_already_exists(strom, admin, new_topic):
    name = create_topic(admin, new_topic())
    with pytest.raises(KafkaException) as e:
        admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=30)
    assert e.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS


def test_admin_describe_cluster(strom, admin):
    cl = admin.describe_cluster().result(timeout=30)
    brokers = {f"{n.host}:{n.port}": n.id for n in cl.nodes}
    assert sorted(brokers) == sorted(strom.bootstrap.split(",")), cl.nodes
    assert cl.controller is not None and cl.controller.id in brokers.values(), \
        "the controller id given to clients is a live broker"
    assert cl.cluster_id
    if not strom.is_external:
        assert brokers == {n.bootstrap: n.node_id for n in strom.nodes}
