"""aiokafka 0.14 against strom: produce/consume, codecs, big records, keys, seeks and
timestamps, idempotence, topic admin with configs (aiokafka's admin speaks the legacy
AlterConfigs API). Consumers use manual assignment with group_id=None."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import TopicPartition

from e2e_util import (CODECS, NEAR_1MIB_VALUE, RF_TOO_LARGE, Got, Rec, assert_same_records, compressible,
                      payload, rng, sample_records)

# Kafka error codes (protocol guide).
TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, INVALID_CONFIG = 36, 37, 38, 40
UNKNOWN_TOPIC_OR_PARTITION = 3
# DescribeConfigs config_source values.
DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG = 1, 5


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 110))


class Admin:
    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    async def __aenter__(self):
        self.a = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=30000)
        await self.a.start()
        return self.a

    async def __aexit__(self, *exc):
        await self.a.close()


async def create_topic(bootstrap, name, partitions=1, configs=None, validate_only=False):
    """-> the error code of CreateTopics for this topic; waits for its leaders when created."""
    async with Admin(bootstrap) as a:
        r = await a.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})],
                                  validate_only=validate_only)
        (_, code, *_), = r.topic_errors
        if code == 0 and not validate_only:
            await wait_leaders(a, name, partitions)
        return code


async def wait_leaders(a, name, partitions, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        topics = await a.describe_topics([name])
        t = topics[0]
        if t["error_code"] == 0 and len(t["partitions"]) == partitions and \
                all(p["leader"] >= 0 for p in t["partitions"]):
            return
        assert time.monotonic() < deadline, f"no leaders for {name}: {t}"
        await asyncio.sleep(0.1)


async def must_create(bootstrap, name, partitions=1, configs=None):
    code = await create_topic(bootstrap, name, partitions, configs)
    assert code == 0, f"CreateTopics {name}: error {code}"
    return name


async def produce(bootstrap, topic, recs: list[Rec], **cfg):
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, **cfg)
    try:
        await p.start()
        futs = [await p.send(topic, key=r.key, value=r.value, partition=r.partition, timestamp_ms=r.timestamp,
                             headers=r.headers or None) for r in recs]
        return [await f for f in futs]
    finally:
        await p.stop()


def consumer(bootstrap, **cfg):
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                            auto_offset_reset="earliest", **cfg)


async def poll_n(c, n, timeout=30) -> list[Got]:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"got {len(got)} of {n} records within {timeout} s"
        batch = await c.getmany(timeout_ms=500)
        for tp, records in batch.items():
            for r in records:
                got.append(Got(r.partition, r.offset, r.timestamp, r.key, r.value, list(r.headers)))
    return got


async def read_partition(bootstrap, topic, partition, n, **cfg) -> list[Got]:
    c = consumer(bootstrap, **cfg)
    try:
        await c.start()
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        return await poll_n(c, n)
    finally:
        await c.stop()


def test_round_trip_keys_headers_bytes(strom, new_topic):
    async def body():
        topic = await must_create(strom.bootstrap, new_topic())
        sent = sample_records("aiokafka-rt", 60)
        t0 = int(time.time() * 1000)
        md = await produce(strom.bootstrap, topic, sent, linger_ms=5)
        t1 = int(time.time() * 1000)
        assert [m.offset for m in md] == list(range(60))
        got = await read_partition(strom.bootstrap, topic, 0, 60)
        assert_same_records(got, sent)
        # (aiokafka's RecordMetadata gives every record of a batch the first one's
        # timestamp, so compare the CreateTime read back with the produce window.)
        ts = [g.timestamp for g in got]
        assert ts == sorted(ts) and t0 <= ts[0] and ts[-1] <= t1, (t0, ts, t1)
    run(body())


@pytest.mark.parametrize("codec", CODECS)
def test_compression_round_trip(strom, new_topic, codec):
    async def body():
        topic = await must_create(strom.bootstrap, new_topic(codec))
        sent = [Rec(f"key-{i}".encode(), compressible(i, 2000), [("codec", codec.encode())]) for i in range(300)]
        md = await produce(strom.bootstrap, topic, sent, compression_type=codec, linger_ms=50,
                           max_batch_size=256 * 1024)
        assert [m.offset for m in md] == list(range(300))
        assert_same_records(await read_partition(strom.bootstrap, topic, 0, 300), sent)
    run(body())


def test_near_1mib_records(strom, new_topic):
    async def body():
        topic = await must_create(strom.bootstrap, new_topic())
        r = rng("aiokafka-big")
        sent = [Rec(f"big-{i}".encode(), payload(r, NEAR_1MIB_VALUE)) for i in range(3)]
        md = await produce(strom.bootstrap, topic, sent, max_request_size=1048576)
        assert [m.offset for m in md] == [0, 1, 2]
        assert_same_records(await read_partition(strom.bootstrap, topic, 0, 3), sent, check_headers=False)
    run(body())


def test_same_key_same_partition(strom, new_topic):
    async def body():
        topic = await must_create(strom.bootstrap, new_topic(), partitions=6)
        keys = [f"user-{k}".encode() for k in range(12)]
        sent = [Rec(keys[i % 12], f"{keys[i % 12].decode()}:{i // 12}".encode()) for i in range(12 * 25)]
        md = await produce(strom.bootstrap, topic, sent, linger_ms=5)
        part_of = {}
        for rec, m in zip(sent, md):
            assert part_of.setdefault(rec.key, m.partition) == m.partition, f"key {rec.key} in two partitions"
        assert len(set(part_of.values())) > 1
        c = consumer(strom.bootstrap)
        try:
            await c.start()
            tps = [TopicPartition(topic, p) for p in range(6)]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            got = await poll_n(c, len(sent))
        finally:
            await c.stop()
        by_key = {}
        for g in got:
            assert part_of[g.key] == g.partition
            by_key.setdefault(g.key, []).append(g)
        for k in keys:
            seq = [int(g.value.split(b":")[1]) for g in sorted(by_key[k], key=lambda g: g.offset)]
            assert seq == list(range(25)), f"key {k}: {seq}"
    run(body())


async def produce_timestamped(bootstrap, topic, n=20, batched=True):
    await must_create(bootstrap, topic)
    base = (int(time.time()) - 3600) * 1000
    recs = [Rec(b"k%d" % i, b"v%d" % i, timestamp=base + i * 1000) for i in range(n)]
    if batched:
        md = await produce(bootstrap, topic, recs, linger_ms=20)
    else:
        md = [(await produce(bootstrap, topic, [r]))[0] for r in recs]
    assert [m.offset for m in md] == list(range(n))
    return base


def test_offsets_for_times(strom, new_topic):
    async def body():
        topic = new_topic()
        base = await produce_timestamped(strom.bootstrap, topic)
        tp = TopicPartition(topic, 0)
        c = consumer(strom.bootstrap)
        try:
            await c.start()
            c.assign([tp])
            assert await c.beginning_offsets([tp]) == {tp: 0}
            assert await c.end_offsets([tp]) == {tp: 20}
            found = (await c.offsets_for_times({tp: base + 3500}))[tp]
            assert (found.offset, found.timestamp) == (4, base + 4000)
            found = (await c.offsets_for_times({tp: base - 1}))[tp]
            assert (found.offset, found.timestamp) == (0, base)
            assert (await c.offsets_for_times({tp: base + 20_000}))[tp] is None
        finally:
            await c.stop()
    run(body())


def test_seek(strom, new_topic):
    async def body():
        topic = new_topic()
        await produce_timestamped(strom.bootstrap, topic, batched=False)
        tp = TopicPartition(topic, 0)
        c = consumer(strom.bootstrap)
        try:
            await c.start()
            c.assign([tp])
            c.seek(tp, 15)
            got = await poll_n(c, 5)
            assert [g.value for g in got] == [b"v%d" % i for i in range(15, 20)]
            await c.seek_to_beginning(tp)
            assert await c.position(tp) == 0
            assert (await poll_n(c, 1))[0].offset == 0
            await c.seek_to_end(tp)
            assert await c.position(tp) == 20
            await produce(strom.bootstrap, topic, [Rec(b"late", b"after-seek-to-end")])
            got = await poll_n(c, 1)
            assert (got[0].offset, got[0].value) == (20, b"after-seek-to-end")
        finally:
            await c.stop()
    run(body())


def test_idempotent_producer(strom, new_topic):
    async def body():
        topic = await must_create(strom.bootstrap, new_topic())
        sent = [Rec(None, b"seq-%06d" % i) for i in range(1000)]
        md = await produce(strom.bootstrap, topic, sent, enable_idempotence=True, linger_ms=1,
                           max_batch_size=4096)
        assert [m.offset for m in md] == list(range(1000))
        got = await read_partition(strom.bootstrap, topic, 0, 1000)
        assert [g.value for g in got] == [r.value for r in sent]
    run(body())


# ------------------------------------------------------------------ admin


async def topic_configs(a, name, until=None) -> dict:
    """{name: (value, config_source)} from DescribeConfigs (v1+ carries the source). With
    `until`, polled (15 s at most) until until(configs) holds: on a cluster the broker
    answering may apply a config change a moment after the one that took it (each follows
    the metadata log on its own, as in KRaft)."""
    deadline = time.monotonic() + 15
    while True:
        resp, = await a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        (err, _msg, _rtype, rname, entries), = resp.resources
        if err == 3 and time.monotonic() < deadline:
            # UNKNOWN_TOPIC_OR_PARTITION: the answering broker has not applied the
            # topic's creation yet (it follows the metadata log on its own).
            await asyncio.sleep(0.1)
            continue
        assert err == 0 and rname == name
        cfg = {e[0]: (e[1], e[3]) for e in entries}
        if until is None or until(cfg) or time.monotonic() > deadline:
            return cfg
        await asyncio.sleep(0.1)


def test_admin_create_describe_alter(strom, new_topic):
    async def body():
        name = new_topic()
        await must_create(strom.bootstrap, name, partitions=3,
                          configs={"retention.ms": "3600000", "cleanup.policy": "compact"})
        async with Admin(strom.bootstrap) as a:
            t, = await a.describe_topics([name])
            assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2]
            cfg = await topic_configs(a, name)
            assert cfg["retention.ms"] == ("3600000", DYNAMIC_TOPIC_CONFIG)
            assert cfg["cleanup.policy"] == ("compact", DYNAMIC_TOPIC_CONFIG)
            assert cfg["segment.bytes"] == ("1073741824", DEFAULT_CONFIG)

            # Legacy AlterConfigs replaces the whole set of overrides.
            resps = await a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name,
                                                          {"retention.ms": "7200000"})])
            codes = [r[0] for resp in resps for r in resp.resources]
            assert codes == [0], resps
            cfg = await topic_configs(a, name, until=lambda c: c["retention.ms"][0] == "7200000")
            assert cfg["retention.ms"] == ("7200000", DYNAMIC_TOPIC_CONFIG)
            assert cfg["cleanup.policy"] == ("delete", DEFAULT_CONFIG)

            resps = await a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name,
                                                          {"retention.ms": "soon"})])
            assert [r[0] for resp in resps for r in resp.resources] == [INVALID_CONFIG], resps
            assert (await topic_configs(a, name))["retention.ms"] == ("7200000", DYNAMIC_TOPIC_CONFIG)
    run(body())


def test_admin_validate_only_then_exists(strom, new_topic):
    async def body():
        b = strom.bootstrap
        name = new_topic()
        assert await create_topic(b, name, 2, validate_only=True) == 0
        async with Admin(b) as a:
            assert name not in await a.list_topics()
        assert await create_topic(b, name, 2) == 0
        assert await create_topic(b, name, 2) == TOPIC_ALREADY_EXISTS
    run(body())


@pytest.mark.parametrize("partitions,rf,configs,error", [
    (1, RF_TOO_LARGE, {}, INVALID_REPLICATION_FACTOR),
    (0, 1, {}, INVALID_PARTITIONS),
    (1, 1, {"cleanup.policy": "bogus"}, INVALID_CONFIG),
    (1, 1, {"retention.ms": "abc"}, INVALID_CONFIG),
], ids=["rf-too-large", "zero-partitions", "cleanup-policy-bogus", "retention-not-a-number"])
def test_admin_create_topic_errors(strom, new_topic, partitions, rf, configs, error):
    async def body():
        name = new_topic()
        async with Admin(strom.bootstrap) as a:
            r = await a.create_topics([NewTopic(name, partitions, rf, topic_configs=configs)])
            assert r.topic_errors[0][1] == error, r
            assert name not in await a.list_topics()
    run(body())


def test_admin_create_partitions(strom, new_topic):
    async def body():
        b = strom.bootstrap
        name = await must_create(b, new_topic(), partitions=1)
        async with Admin(b) as a:
            await a.create_partitions({name: NewPartitions(3)})
            await wait_leaders(a, name, 3)
        md = await produce(b, name, [Rec(b"k", b"p2", partition=2)])
        assert (md[0].partition, md[0].offset) == (2, 0)
        assert (await read_partition(b, name, 2, 1))[0].value == b"p2"
    run(body())


def test_admin_delete_topic(strom, new_topic):
    async def body():
        b = strom.bootstrap
        name = await must_create(b, new_topic(), partitions=2)
        async with Admin(b) as a:
            r = await a.delete_topics([name])
            assert [e[1] for e in r.topic_error_codes] == [0], r
            deadline = time.monotonic() + 15
            while name in await a.list_topics():
                assert time.monotonic() < deadline, "deleted topic still listed"
                await asyncio.sleep(0.1)
            r = await a.delete_topics([name])
            assert [e[1] for e in r.topic_error_codes] == [UNKNOWN_TOPIC_OR_PARTITION], r
    run(body())
