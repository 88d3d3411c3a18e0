"""The Java client (kafka-clients 3.9.1, through e2e/java/StromE2E.java) against strom:
produce/consume, codecs (also across clients), big records, keys, seeks and timestamps,
idempotence, topic admin with configs. Consumers: manual assign, no group.id."""

from __future__ import annotations

import base64
import json
import subprocess
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from e2e_util import (CODECS, E2E_NODES, NEAR_1MIB_VALUE, RF_TOO_LARGE, Got, Java, Rec, assert_same_records, compressible,
                      payload, rng, sample_records, settled, wait_until)

DEFAULT_RETENTION_MS = "604800000"


@pytest.fixture(scope="module")
def java(strom):
    return Java(strom.bootstrap)


def create(java, name, partitions=1, **configs):
    res = java.admin("create-topic", name=name, partitions=partitions, replication_factor=1,
                     config=[f"{k.replace('_', '.')}={v}" for k, v in configs.items()])
    assert res.get("ok"), res

    def leaders_ready():
        parts = java.admin("describe-topic", name=name).get("partitions")
        return parts is not None and len(parts) == partitions and \
            all(p["leader"] is not None and p["leader"] >= 0 for p in parts)
    wait_until(leaders_ready, 20, interval=0.2, what=f"leaders of {name}")
    return name


def offsets_ok(acks, expected):
    errors = [a for a in acks if "error" in a]
    assert not errors, f"{len(errors)} produce errors, first: {errors[0]}"
    assert [a["offset"] for a in acks] == expected, [a["offset"] for a in acks][:50]


def test_round_trip_keys_headers_bytes(java, new_topic):
    topic = create(java, new_topic())
    sent = sample_records("java-rt", 60)
    sent[7].headers = [("null-value", None), ("empty", b""), ("dup", b"1"), ("dup", b"2")]
    acks, done = java.produce(topic, sent)
    assert done["acked"] == 60 and done["failed"] == 0
    offsets_ok(acks, list(range(60)))
    assert {a["partition"] for a in acks} == {0}
    positions, got, end = java.consume(topic, partitions=[0], max=60)
    assert positions == {0: 0}
    assert_same_records(got, sent)
    assert [g.timestamp for g in got] == [a["timestamp"] for a in acks]


def one_codec_on_a_cluster(codec):
    """Codecs are a node's concern (it checks and keeps each batch byte for byte, and
    followers copy the batches): pass 1 runs every codec, the 3-node pass one of them."""
    if E2E_NODES != 1 and codec != "zstd":
        pytest.skip("a node's codec handling: pass 1 ran every codec, the 3-node pass runs zstd")


@pytest.mark.parametrize("codec", CODECS)
def test_compression_round_trip(java, new_topic, codec):
    one_codec_on_a_cluster(codec)
    topic = create(java, new_topic(codec))
    sent = [Rec(f"key-{i}".encode(), compressible(i, 2000), [("codec", codec.encode())]) for i in range(300)]
    acks, _ = java.produce(topic, sent, compression=codec, config={"linger.ms": 50, "batch.size": 262144})
    offsets_ok(acks, list(range(300)))
    _, got, _ = java.consume(topic, partitions=[0], max=300)
    assert_same_records(got, sent)


@pytest.mark.parametrize("codec", CODECS)
def test_compression_across_clients(strom, java, new_topic, codec):
    """Batches compressed by the Java client are read by librdkafka and vice versa:
    the broker stores and serves both byte for byte."""
    one_codec_on_a_cluster(codec)
    t1 = create(java, new_topic("java-to-rdkafka"))
    sent = [Rec(b"j%d" % i, compressible(i, 1000)) for i in range(100)]
    acks, _ = java.produce(t1, sent, compression=codec, config={"linger.ms": 50})
    offsets_ok(acks, list(range(100)))
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": "e2e-unused", "enable.auto.commit": False,
                  "check.crcs": True})
    c.assign([TopicPartition(t1, 0, OFFSET_BEGINNING)])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 100 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(Got(m.partition(), m.offset(), m.timestamp()[1], m.key(), m.value(), []))
    c.close()
    assert_same_records(got, sent, check_headers=False)

    t2 = create(java, new_topic("rdkafka-to-java"))
    p = Producer({"bootstrap.servers": strom.bootstrap, "compression.type": codec, "linger.ms": 50})
    errors = []
    for r in sent:
        p.produce(t2, key=r.key, value=r.value, on_delivery=lambda err, msg: err and errors.append(err))
    assert p.flush(30) == 0 and not errors, errors
    _, got, _ = java.consume(t2, partitions=[0], max=100)
    assert_same_records(got, sent, check_headers=False)


def test_near_1mib_records(java, new_topic):
    topic = create(java, new_topic())
    r = rng("java-big")
    sent = [Rec(f"big-{i}".encode(), payload(r, NEAR_1MIB_VALUE)) for i in range(3)]
    acks, _ = java.produce(topic, sent, config={"max.request.size": 1048576, "linger.ms": 0})
    offsets_ok(acks, [0, 1, 2])
    # max.partition.fetch.bytes defaults to 1 MiB; the broker still returns the first
    # batch whole when it is bigger (KIP-74).
    _, got, _ = java.consume(topic, partitions=[0], max=3)
    assert_same_records(got, sent, check_headers=False)


def test_record_too_large_for_broker(java, new_topic):
    topic = create(java, new_topic())
    acks, done = java.produce(topic, [Rec(b"huge", b"x" * 2_000_000)],
                              config={"max.request.size": 4_000_000, "buffer.memory": 16_000_000,
                                      "delivery.timeout.ms": 30000, "request.timeout.ms": 20000})
    assert done["failed"] == 1, acks
    assert acks[0]["error"] in ("MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE"), acks[0]


def test_same_key_same_partition(java, new_topic):
    topic = create(java, new_topic(), partitions=6)
    keys = [f"user-{k}".encode() for k in range(12)]
    sent = [Rec(keys[i % 12], f"{keys[i % 12].decode()}:{i // 12}".encode()) for i in range(12 * 25)]
    acks, _ = java.produce(topic, sent)
    part_of = {}
    for rec, a in zip(sent, acks):
        assert part_of.setdefault(rec.key, a["partition"]) == a["partition"], f"key {rec.key} in two partitions"
    assert len(set(part_of.values())) > 1
    _, got, _ = java.consume(topic, max=len(sent))
    by_key = {}
    for g in got:
        assert part_of[g.key] == g.partition
        by_key.setdefault(g.key, []).append(g)
    for k in keys:
        seq = [int(g.value.split(b":")[1]) for g in sorted(by_key[k], key=lambda g: g.offset)]
        assert seq == list(range(25)), f"key {k}: {seq}"


def produce_timestamped(java, topic, n=20, batched=True):
    create(java, topic)
    base = (int(time.time()) - 3600) * 1000
    recs = [Rec(b"k%d" % i, b"v%d" % i, timestamp=base + i * 1000) for i in range(n)]
    acks, _ = java.produce(topic, recs, config={"linger.ms": 50}, sync=not batched)
    offsets_ok(acks, list(range(n)))
    assert [a["timestamp"] for a in acks] == [r.timestamp for r in recs]
    return base


def test_offsets_for_times(java, new_topic):
    topic = new_topic()
    base = produce_timestamped(java, topic)

    def lookup(ts):
        r = java.run("offsets", "--bootstrap", java.bootstrap, "--topic", topic, "--partition", 0,
                     "--spec", f"timestamp:{ts}").last
        return r["offset"], r["timestamp"]

    assert lookup(base + 3500) == (4, base + 4000)
    assert lookup(base) == (0, base)
    assert lookup(base - 86_400_000) == (0, base)
    assert lookup(base + 19_000) == (19, base + 19_000)
    assert lookup(base + 20_000) == (None, None)
    for spec, want in [("earliest", 0), ("latest", 20)]:
        assert java.run("offsets", "--bootstrap", java.bootstrap, "--topic", topic, "--partition", 0,
                        "--spec", spec).last["offset"] == want, spec
    # Seeking by timestamp starts at the first record at or after it.
    positions, got, _ = java.consume(topic, partitions=[0], start=f"timestamp:{base + 15_500}", max=4)
    assert positions == {0: 16}
    assert [g.value for g in got] == [b"v16", b"v17", b"v18", b"v19"]
    assert [g.timestamp for g in got] == [base + i * 1000 for i in range(16, 20)]


def test_admin_list_offsets(java, new_topic):
    topic = new_topic()
    base = produce_timestamped(java, topic)

    def lo(spec):
        return java.admin("list-offsets", name=topic, partition=0, spec=spec)

    assert lo("earliest")["offset"] == 0
    assert lo("latest")["offset"] == 20
    r = lo(f"timestamp:{base + 3500}")
    assert (r["offset"], r["timestamp"]) == (4, base + 4000)
    r = lo("max-timestamp")
    assert (r["offset"], r["timestamp"]) == (19, base + 19_000)


def test_seek(java, new_topic):
    topic = new_topic()
    produce_timestamped(java, topic, batched=False)
    positions, got, _ = java.consume(topic, partitions=[0], start="offset:10", max=10)
    assert positions == {0: 10}
    assert [g.offset for g in got] == list(range(10, 20))
    assert [g.value for g in got] == [b"v%d" % i for i in range(10, 20)]
    positions, got, end = java.consume(topic, partitions=[0], start="beginning", until_end=True)
    assert positions == {0: 0} and end["end_offsets"] == {"0": 20}
    assert [g.offset for g in got] == list(range(20))

    # seekToEnd, then a new record: the consumer reads exactly that one.
    proc = subprocess.Popen(
        ["java", "-cp", java.cp, "StromE2E", "consume", "--bootstrap", java.bootstrap, "--topic", topic,
         "--partition", "0", "--from", "end", "--max", "1", "--timeout-ms", "30000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())  # printed once the seek is resolved
        assert first["positions"] == {"0": 20}
        acks, _ = java.produce(topic, [Rec(b"late", b"after-seek-to-end")])
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    recs = [x for x in lines if "offset" in x]
    assert len(recs) == 1, (lines, err[-2000:])
    assert (recs[0]["offset"], base64.b64decode(recs[0]["value"])) == (20, b"after-seek-to-end")


def test_idempotent_producer(java, new_topic):
    topic = create(java, new_topic())
    sent = [Rec(None, b"seq-%06d" % i) for i in range(2000)]
    acks, _ = java.produce(topic, sent, idempotent=True,
                           config={"max.in.flight.requests.per.connection": 5, "linger.ms": 1,
                                   "batch.size": 4096})
    offsets_ok(acks, list(range(2000)))
    _, got, _ = java.consume(topic, partitions=[0], max=2000)
    assert [g.value for g in got] == [r.value for r in sent]


def test_non_idempotent_acks_1_and_0(java, new_topic):
    topic = create(java, new_topic())
    acks, _ = java.produce(topic, [Rec(None, b"a1-%d" % i) for i in range(10)], idempotent=False, acks="1")
    offsets_ok(acks, list(range(10)))
    acks, done = java.produce(topic, [Rec(None, b"a0-%d" % i) for i in range(10)], idempotent=False, acks="0")
    assert done["failed"] == 0  # acks=0: no offsets come back (-1)
    _, got, _ = java.consume(topic, partitions=[0], max=20)
    assert [g.value for g in got] == [b"a1-%d" % i for i in range(10)] + [b"a0-%d" % i for i in range(10)]


# ------------------------------------------------------------------ admin


def configs(java, name, until=None) -> dict:
    """The topic's configs (with `until`: once it holds, see e2e_util.settled)."""
    def fetch():
        res = java.admin("describe-configs", name=name)
        assert "configs" in res, res
        return res["configs"]
    return settled(fetch, until)


def test_admin_create_with_configs_and_describe(java, strom, new_topic):
    name = new_topic()
    res = java.admin("create-topic", name=name, partitions=3, replication_factor=1,
                     config=["retention.ms=3600000", "cleanup.policy=compact"])
    assert res.get("ok") and res.get("partitions") == 3 and res.get("replication_factor") == 1, res
    desc = java.admin("describe-topic", name=name)
    assert desc["topic_id"] == res["topic_id"] and desc["topic_id"] != "AAAAAAAAAAAAAAAAAAAAAA"
    assert [p["partition"] for p in desc["partitions"]] == [0, 1, 2]
    for p in desc["partitions"]:
        assert p["replicas"] == [p["leader"]] and p["isr"] == [p["leader"]]
        if not strom.is_external:
            assert p["leader"] in strom.node_ids
    cfg = configs(java, name)
    r = cfg["retention.ms"]
    assert (r["value"], r["source"], r["is_default"]) == ("3600000", "DYNAMIC_TOPIC_CONFIG", False), r
    assert (cfg["cleanup.policy"]["value"], cfg["cleanup.policy"]["source"]) == ("compact", "DYNAMIC_TOPIC_CONFIG")
    # Kafka 4.1+ (KIP-966): the cluster-wide min.insync.replicas the controller writes.
    m = cfg["min.insync.replicas"]
    assert (m["value"], m["source"], m["is_default"]) == ("1", "DYNAMIC_DEFAULT_BROKER_CONFIG", False), m
    for key, default in [("segment.bytes", "1073741824"), ("max.message.bytes", "1048588"),
                         ("compression.type", "producer"), ("message.timestamp.type", "CreateTime")]:
        assert key in cfg, f"{key} missing from DescribeConfigs"
        assert (cfg[key]["value"], cfg[key]["source"], cfg[key]["is_default"]) == (default, "DEFAULT_CONFIG", True), \
            (key, cfg[key])


def test_admin_validate_only(java, new_topic):
    name = new_topic()
    res = java.admin("create-topic", name=name, partitions=2, replication_factor=1, validate_only=True)
    assert res.get("ok"), res
    assert name not in java.admin("list-topics")["topics"]
    res = java.admin("create-topic", name=name, partitions=2, replication_factor=1, validate_only=True,
                     config=["retention.ms=-5x"])
    assert res.get("error") == "INVALID_CONFIG", res


def test_admin_incremental_alter_configs(java, new_topic):
    name = create(java, new_topic(), retention_ms=3600000)
    assert java.admin("alter-configs", name=name, set=["retention.ms=7200000", "cleanup.policy=compact"]).get("ok")
    cfg = configs(java, name, until=lambda c: c["retention.ms"]["value"] == "7200000")
    assert (cfg["retention.ms"]["value"], cfg["retention.ms"]["source"]) == ("7200000", "DYNAMIC_TOPIC_CONFIG")
    assert (cfg["cleanup.policy"]["value"], cfg["cleanup.policy"]["source"]) == ("compact", "DYNAMIC_TOPIC_CONFIG")

    assert java.admin("alter-configs", name=name, append=["cleanup.policy=delete"]).get("ok")
    assert set(configs(java, name, until=lambda c: "," in c["cleanup.policy"]["value"])["cleanup.policy"]["value"].split(",")) == {"compact", "delete"}
    assert java.admin("alter-configs", name=name, subtract=["cleanup.policy=compact"]).get("ok")
    assert configs(java, name, until=lambda c: c["cleanup.policy"]["value"] == "delete")["cleanup.policy"]["value"] == "delete"

    assert java.admin("alter-configs", name=name, delete=["retention.ms"]).get("ok")
    cfg = configs(java, name, until=lambda c: c["retention.ms"]["value"] == DEFAULT_RETENTION_MS)
    assert (cfg["retention.ms"]["value"], cfg["retention.ms"]["source"]) == (DEFAULT_RETENTION_MS, "DEFAULT_CONFIG")

    assert java.admin("alter-configs", name=name, set=["retention.ms=1000"], validate_only=True).get("ok")
    assert configs(java, name)["retention.ms"]["value"] == DEFAULT_RETENTION_MS

    res = java.admin("alter-configs", name=name, set=["retention.ms=not-a-number"])
    assert res.get("error") == "INVALID_CONFIG", res
    res = java.admin("alter-configs", name=name, set=["no.such.config=1"])
    assert res.get("error") == "INVALID_CONFIG", res
    assert configs(java, name)["retention.ms"]["value"] == DEFAULT_RETENTION_MS

    res = java.admin("alter-configs", name=name + "-missing", set=["retention.ms=1000"])
    assert res.get("error") == "UNKNOWN_TOPIC_OR_PARTITION", res


def test_admin_create_partitions(java, new_topic):
    name = create(java, new_topic(), partitions=2)
    assert java.admin("create-partitions", name=name, count=4, validate_only=True).get("ok")
    assert len(java.admin("describe-topic", name=name)["partitions"]) == 2
    assert java.admin("create-partitions", name=name, count=4).get("ok")
    wait_until(lambda: len(java.admin("describe-topic", name=name)["partitions"]) == 4, 20, interval=0.2)
    acks, _ = java.produce(name, [Rec(b"k", b"p3", partition=3)])
    offsets_ok(acks, [0])
    assert acks[0]["partition"] == 3
    res = java.admin("create-partitions", name=name, count=3)
    assert res.get("error") == "INVALID_PARTITIONS", res
    res = java.admin("create-partitions", name=name + "-missing", count=3)
    assert res.get("error") == "UNKNOWN_TOPIC_OR_PARTITION", res


def test_admin_delete_and_recreate(java, new_topic):
    name = create(java, new_topic(), partitions=2)
    old_id = java.admin("describe-topic", name=name)["topic_id"]
    offsets_ok(java.produce(name, [Rec(b"k", b"old", partition=1)])[0], [0])
    assert java.admin("delete-topic", name=name).get("ok")
    wait_until(lambda: name not in java.admin("list-topics")["topics"], 20, interval=0.2, what="topic deleted")
    assert java.admin("describe-topic", name=name).get("error") == "UNKNOWN_TOPIC_OR_PARTITION"
    assert java.admin("delete-topic", name=name).get("error") == "UNKNOWN_TOPIC_OR_PARTITION"
    create(java, name, partitions=2)
    assert java.admin("describe-topic", name=name)["topic_id"] != old_id
    positions, got, end = java.consume(name, start="beginning", until_end=True, timeout_ms=10000)
    assert got == [] and end["end_offsets"] == {"0": 0, "1": 0}, "a re-created topic starts empty"


@pytest.mark.parametrize("args,error", [
    ({"partitions": 1, "replication_factor": RF_TOO_LARGE}, "INVALID_REPLICATION_FACTOR"),
    ({"partitions": 0, "replication_factor": 1}, "INVALID_PARTITIONS"),
    ({"partitions": 1, "replication_factor": 1, "config": ["retention.ms=abc"]}, "INVALID_CONFIG"),
    ({"partitions": 1, "replication_factor": 1, "config": ["cleanup.policy=bogus"]}, "INVALID_CONFIG"),
    ({"partitions": 1, "replication_factor": 1, "config": ["max.message.bytes=-1"]}, "INVALID_CONFIG"),
], ids=["rf-too-large", "zero-partitions", "retention-abc", "cleanup-bogus", "max-message-bytes-negative"])
def test_admin_create_errors(java, new_topic, args, error):
    name = new_topic()
    res = java.admin("create-topic", name=name, **args)
    assert res.get("error") == error, res
    assert name not in java.admin("list-topics")["topics"]


def test_admin_topic_exists(java, new_topic):
    name = create(java, new_topic())
    res = java.admin("create-topic", name=name, partitions=1, replication_factor=1)
    assert res.get("error") == "TOPIC_ALREADY_EXISTS", res


def test_admin_describe_cluster(java, strom):
    cl = java.admin("describe-cluster")
    brokers = {f"{n['host']}:{n['port']}": n["id"] for n in cl["nodes"]}
    assert sorted(brokers) == sorted(strom.bootstrap.split(",")), cl
    assert cl["controller"]["id"] in brokers.values(), "the controller id given to clients is a live broker"
    assert cl["cluster_id"]
    if not strom.is_external:
        assert brokers == {n.bootstrap: n.node_id for n in strom.nodes}, cl
