"""kafka-python 3.0.12 against strom: produce/consume, codecs, big records, keys,
seeks and timestamps, idempotence, topic admin with configs.

Consumers use manual assignment with group_id=None (no consumer group)."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import AlterConfigOp, ConfigResource, KafkaAdminClient
import kafka.errors as Errors

from e2e_util import (CODECS, NEAR_1MIB_VALUE, RF_TOO_LARGE, Got, Rec, assert_same_records, compressible,
                      payload, rng, sample_records, wait_until)

DEFAULT_RETENTION_MS = "604800000"  # Kafka's log.retention.hours=168


@pytest.fixture(scope="module")
def admin(strom):
    a = KafkaAdminClient(bootstrap_servers=strom.bootstrap, request_timeout_ms=30000)
    yield a
    a.close()


def create_topic(admin, name, partitions=1, configs=None):
    res = admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1,
                                      "configs": configs or {}}}, wait_for_metadata=True)
    assert res["topics"][0]["error_code"] == 0, res
    return name


def producer(strom, **cfg) -> KafkaProducer:
    cfg.setdefault("linger_ms", 5)
    return KafkaProducer(bootstrap_servers=strom.bootstrap, **cfg)


def consumer(strom, **cfg) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=strom.bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", **cfg)


def produce(p: KafkaProducer, topic: str, recs: list[Rec]):
    futs = [p.send(topic, key=r.key, value=r.value, headers=r.headers or None, partition=r.partition,
                   timestamp_ms=r.timestamp) for r in recs]
    p.flush(timeout=60)
    return [f.get(timeout=60) for f in futs]


def poll_n(c: KafkaConsumer, n: int, timeout: float = 30) -> list[Got]:
    """Poll the assigned partitions until n records arrived; fail at the deadline."""
    got: list[Got] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"got {len(got)} of {n} records within {timeout} s"
        for tp, records in c.poll(timeout_ms=500).items():
            for r in records:
                got.append(Got(r.partition, r.offset, r.timestamp, r.key, r.value, list(r.headers)))
    return got


def read_partition(strom, topic, partition, n, **cfg) -> list[Got]:
    c = consumer(strom, **cfg)
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek_to_beginning(tp)
        got = poll_n(c, n)
        assert len(got) == n, f"expected {n} records, got {len(got)}"
        return got
    finally:
        c.close()


def test_round_trip_keys_headers_bytes(strom, admin, new_topic):
    topic = create_topic(admin, new_topic())
    sent = sample_records("kafka-python-rt", 60)
    p = producer(strom)
    md = produce(p, topic, sent)
    p.close()
    assert [m.partition for m in md] == [0] * 60
    assert [m.offset for m in md] == list(range(60)), "offsets of one producer's records must be 0..n-1"
    got = read_partition(strom, topic, 0, 60)
    assert_same_records(got, sent)
    assert [g.offset for g in got] == list(range(60))
    assert all(g.timestamp == m.timestamp for g, m in zip(got, md)), "CreateTime timestamps must come back"


@pytest.mark.parametrize("codec", CODECS)
def test_compression_round_trip(strom, admin, new_topic, codec):
    topic = create_topic(admin, new_topic(codec))
    sent = [Rec(f"key-{i}".encode(), compressible(i, 2000), [("codec", codec.encode())]) for i in range(300)]
    p = producer(strom, compression_type=codec, linger_ms=50, batch_size=256 * 1024)
    md = produce(p, topic, sent)
    rate = p.metrics()["producer-metrics"]["compression-rate-avg"]
    p.close()
    # The client really compressed its batches (ratio of compressed to uncompressed size).
    assert rate < 0.5, f"{codec}: compression-rate-avg {rate}: batches were not compressed"
    assert [m.offset for m in md] == list(range(300))
    assert_same_records(read_partition(strom, topic, 0, 300), sent)


def test_near_1mib_records(strom, admin, new_topic):
    topic = create_topic(admin, new_topic())
    r = rng("kp-big")
    sent = [Rec(f"big-{i}".encode(), payload(r, NEAR_1MIB_VALUE)) for i in range(3)]
    p = producer(strom, max_request_size=1048576, linger_ms=0)
    md = produce(p, topic, sent)
    p.close()
    assert [m.offset for m in md] == [0, 1, 2]
    # Default max_partition_fetch_bytes is 1 MiB: the broker must still return a
    # first batch bigger than that (KIP-74) so the consumer makes progress.
    assert_same_records(read_partition(strom, topic, 0, 3), sent, check_headers=False)


def test_same_key_same_partition(strom, admin, new_topic):
    topic = create_topic(admin, new_topic(), partitions=6)
    keys = [f"user-{k}".encode() for k in range(12)]
    sent = [Rec(keys[i % 12], f"{keys[i % 12].decode()}:{i // 12}".encode()) for i in range(12 * 25)]
    p = producer(strom)
    md = produce(p, topic, sent)
    p.close()
    part_of = {}
    for rec, m in zip(sent, md):
        assert part_of.setdefault(rec.key, m.partition) == m.partition, f"key {rec.key} went to two partitions"
    assert len(set(part_of.values())) > 1, "12 keys all hashed to one of 6 partitions: partitioner not used?"
    c = consumer(strom)
    tps = [TopicPartition(topic, p_) for p_ in range(6)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
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
    """n records on partition 0 with CreateTime base + i*1000 (base an hour ago), in
    multi-record batches (the broker must find offsets inside a batch) or one by one."""
    create_topic(admin, topic)
    base = (int(time.time()) - 3600) * 1000
    p = producer(strom)
    recs = [Rec(b"k%d" % i, b"v%d" % i, timestamp=base + i * 1000) for i in range(n)]
    md = produce(p, topic, recs) if batched else [produce(p, topic, [r])[0] for r in recs]
    p.close()
    assert [m.offset for m in md] == list(range(n))
    return base


def test_offsets_for_times(strom, admin, new_topic):
    topic = new_topic()
    base = produce_timestamped(strom, admin, topic)
    tp = TopicPartition(topic, 0)
    c = consumer(strom)
    try:
        c.assign([tp])
        assert c.beginning_offsets([tp]) == {tp: 0}
        assert c.end_offsets([tp]) == {tp: 20}
        # The first offset whose timestamp is >= the one asked for, with that timestamp.
        found = c.offsets_for_times({tp: base + 3500})[tp]
        assert (found.offset, found.timestamp) == (4, base + 4000)
        found = c.offsets_for_times({tp: base})[tp]
        assert (found.offset, found.timestamp) == (0, base)
        found = c.offsets_for_times({tp: base - 86_400_000})[tp]
        assert (found.offset, found.timestamp) == (0, base)
        found = c.offsets_for_times({tp: base + 19_000})[tp]
        assert (found.offset, found.timestamp) == (19, base + 19_000)
        assert c.offsets_for_times({tp: base + 20_000})[tp] is None, "no record at or after this timestamp"
    finally:
        c.close()


def test_seek(strom, admin, new_topic):
    topic = new_topic()
    base = produce_timestamped(strom, admin, topic, batched=False)
    tp = TopicPartition(topic, 0)
    c = consumer(strom)
    try:
        c.assign([tp])
        c.seek(tp, 10)
        got = poll_n(c, 10)
        assert [g.offset for g in got] == list(range(10, 20))
        assert [g.value for g in got] == [b"v%d" % i for i in range(10, 20)]
        assert [g.timestamp for g in got] == [base + i * 1000 for i in range(10, 20)]

        c.seek_to_beginning(tp)
        assert c.position(tp) == 0
        assert poll_n(c, 1)[0].value == b"v0"

        c.seek_to_end(tp)
        assert c.position(tp) == 20
        p = producer(strom)
        produce(p, topic, [Rec(b"late", b"after-seek-to-end")])
        p.close()
        got = poll_n(c, 1)
        assert (got[0].offset, got[0].value) == (20, b"after-seek-to-end")
    finally:
        c.close()


def test_idempotent_producer_no_duplicates(strom, admin, new_topic):
    topic = create_topic(admin, new_topic())
    p = producer(strom, max_in_flight_requests_per_connection=5, linger_ms=1, batch_size=4096)
    assert p.config["enable_idempotence"], "kafka-python 3.x enables idempotence by default"
    sent = [Rec(None, b"seq-%06d" % i) for i in range(1000)]
    md = produce(p, topic, sent)
    pid = p._transaction_manager.producer_id_and_epoch
    p.close()
    assert pid.producer_id >= 0, f"no producer id from InitProducerId: {pid}"
    assert [m.offset for m in md] == list(range(1000)), "offsets must be contiguous, no gaps or duplicates"
    got = read_partition(strom, topic, 0, 1000)
    assert [g.value for g in got] == [r.value for r in sent]


# ------------------------------------------------------------------ admin


def configs_of(admin, topic, config_filter="all") -> dict:
    """Every config of `topic`. The request goes to any broker, which may not have
    applied the topic's creation yet (it answers UNKNOWN_TOPIC_OR_PARTITION, which
    kafka-python reports as no configs), so ask again for a few seconds, as Kafka's own
    tests do after a create."""
    deadline = time.monotonic() + 10
    while True:
        res = admin.describe_configs([ConfigResource("TOPIC", topic)], config_filter=config_filter)
        configs = res.get("topic", {}).get(topic) or {}
        if configs or time.monotonic() > deadline:
            return configs
        time.sleep(0.1)


def test_admin_create_topic_with_configs(strom, admin, new_topic):
    name = new_topic()
    res = admin.create_topics({name: {"num_partitions": 3, "replication_factor": 1,
                                      "configs": {"retention.ms": "3600000", "cleanup.policy": "compact"}}})
    t = res["topics"][0]
    assert (t["error_code"], t["num_partitions"], t["replication_factor"]) == (0, 3, 1), t
    admin.wait_for_topics([name])
    desc = admin.describe_topics([name])[0]
    assert desc["error_code"] == 0 and not desc["is_internal"]
    parts = sorted(desc["partitions"], key=lambda p: p["partition_index"])
    assert [p["partition_index"] for p in parts] == [0, 1, 2]
    for p in parts:
        assert p["leader_id"] >= 0 and p["replica_nodes"] == [p["leader_id"]] and p["isr_nodes"] == [p["leader_id"]]
    if not strom.is_external:
        assert all(p["leader_id"] in strom.node_ids for p in parts), parts

    cfg = configs_of(admin, name)
    assert cfg["retention.ms"]["value"] == "3600000"
    assert cfg["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert cfg["cleanup.policy"]["value"] == "compact"
    assert cfg["cleanup.policy"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert cfg["segment.bytes"]["value"] == "1073741824"
    assert cfg["segment.bytes"]["config_source"] == "DEFAULT_CONFIG"
    assert cfg["max.message.bytes"]["value"] == "1048588"
    assert cfg["max.message.bytes"]["config_source"] == "DEFAULT_CONFIG"
    # The default filter ("modified") lists exactly what the topic overrides.
    modified = configs_of(admin, name, config_filter="modified")
    assert set(modified) == {"retention.ms", "cleanup.policy"}


def test_admin_validate_only_creates_nothing(strom, admin, new_topic):
    name = new_topic()
    res = admin.create_topics({name: {"num_partitions": 2, "replication_factor": 1}}, validate_only=True)
    assert res["topics"][0]["error_code"] == 0, res
    assert name not in admin.list_topics()
    # ... and a real create afterwards works.
    create_topic(admin, name, partitions=2)
    assert name in admin.list_topics()


def test_admin_alter_configs_incremental(strom, admin, new_topic):
    name = create_topic(admin, new_topic(), configs={"retention.ms": "3600000"})
    res = admin.alter_configs([ConfigResource("TOPIC", name, {"retention.ms": "7200000",
                                                               "cleanup.policy": "compact"})],
                              incremental=True, raise_on_unknown=False)
    assert res["topic"][name] == "OK", res
    cfg = configs_of(admin, name)
    assert (cfg["retention.ms"]["value"], cfg["retention.ms"]["config_source"]) == ("7200000", "DYNAMIC_TOPIC_CONFIG")
    assert (cfg["cleanup.policy"]["value"], cfg["cleanup.policy"]["config_source"]) == ("compact", "DYNAMIC_TOPIC_CONFIG")

    res = admin.alter_configs([ConfigResource("TOPIC", name, {"retention.ms": (AlterConfigOp.DELETE, None)})],
                              incremental=True, raise_on_unknown=False)
    assert res["topic"][name] == "OK", res
    cfg = configs_of(admin, name)
    assert (cfg["retention.ms"]["value"], cfg["retention.ms"]["config_source"]) == (DEFAULT_RETENTION_MS, "DEFAULT_CONFIG")
    assert cfg["cleanup.policy"]["value"] == "compact", "deleting one config must leave the others"

    # validate_only changes nothing.
    res = admin.alter_configs([ConfigResource("TOPIC", name, {"retention.ms": "1000"})],
                              incremental=True, validate_only=True, raise_on_unknown=False)
    assert res["topic"][name] == "OK", res
    assert configs_of(admin, name)["retention.ms"]["value"] == DEFAULT_RETENTION_MS

    # An invalid value is refused with INVALID_CONFIG and changes nothing.
    res = admin.alter_configs([ConfigResource("TOPIC", name, {"retention.ms": "not-a-number"})],
                              incremental=True, raise_on_unknown=False)
    assert res["topic"][name].startswith("[Error 40] InvalidConfigurationError"), res
    assert configs_of(admin, name)["retention.ms"]["value"] == DEFAULT_RETENTION_MS


def test_admin_legacy_alter_configs_replaces_all(strom, admin, new_topic):
    """AlterConfigs (non-incremental) sets the whole set of topic overrides."""
    name = create_topic(admin, new_topic(), configs={"retention.ms": "3600000", "cleanup.policy": "compact"})
    # incremental=False: kafka-python then re-sends the other modified keys itself, so
    # send the request directly to see the broker's replace-all semantics.
    from kafka.protocol.admin import AlterConfigsRequest
    req = AlterConfigsRequest(resources=[(2, name, [("retention.ms", "5000000")])], validate_only=False)
    resp = admin._manager.run(admin._manager.send, req)
    assert [r.error_code for r in resp.responses] == [0], resp
    cfg = configs_of(admin, name)
    assert (cfg["retention.ms"]["value"], cfg["retention.ms"]["config_source"]) == ("5000000", "DYNAMIC_TOPIC_CONFIG")
    assert (cfg["cleanup.policy"]["value"], cfg["cleanup.policy"]["config_source"]) == ("delete", "DEFAULT_CONFIG")


def test_admin_create_partitions(strom, admin, new_topic):
    name = create_topic(admin, new_topic(), partitions=2)
    res = admin.create_partitions({name: 4})
    assert [r.error_code for r in res.results] == [0], res

    def four():
        d = admin.describe_topics([name])[0]
        return len(d["partitions"]) == 4 and all(p["leader_id"] >= 0 for p in d["partitions"])
    wait_until(four, 15, what="4 partitions with leaders")
    p = producer(strom)
    md = produce(p, name, [Rec(b"k", b"to-new-partition", partition=3)])
    p.close()
    assert (md[0].partition, md[0].offset) == (3, 0)
    assert read_partition(strom, name, 3, 1)[0].value == b"to-new-partition"

    res = admin.create_partitions({name: 2}, raise_errors=False)  # fewer
    assert [r.error_code for r in res.results] == [Errors.InvalidPartitionsError.errno], res
    res = admin.create_partitions({name: 4}, raise_errors=False)  # no increase
    assert [r.error_code for r in res.results] == [Errors.InvalidPartitionsError.errno], res
    res = admin.create_partitions({name: 6}, validate_only=True)
    assert [r.error_code for r in res.results] == [0], res
    assert len(admin.describe_topics([name])[0]["partitions"]) == 4, "validate_only must not add partitions"


def test_admin_delete_topic(strom, admin, new_topic):
    name = create_topic(admin, new_topic())
    p = producer(strom)
    produce(p, name, [Rec(b"k", b"before-delete")])
    p.close()
    res = admin.delete_topics([name])
    assert [t["error_code"] for t in res["topics"]] == [0], res
    wait_until(lambda: name not in admin.list_topics(), 15, what="topic gone from metadata")
    desc = admin.describe_topics([name])
    assert desc[0]["error_code"] == Errors.UnknownTopicOrPartitionError.errno, desc
    res = admin.delete_topics([name], raise_errors=False)
    assert [t["error_code"] for t in res["topics"]] == [Errors.UnknownTopicOrPartitionError.errno], res
    # Re-created under the same name, it is a new, empty topic.
    create_topic(admin, name)
    c = consumer(strom)
    tp = TopicPartition(name, 0)
    c.assign([tp])
    assert c.end_offsets([tp]) == {tp: 0}
    c.close()


CREATE_ERRORS = {
    "rf-too-large": ({"num_partitions": 1, "replication_factor": RF_TOO_LARGE}, Errors.InvalidReplicationFactorError),
    "zero-partitions": ({"num_partitions": 0, "replication_factor": 1}, Errors.InvalidPartitionsError),
    "retention-not-a-number": ({"num_partitions": 1, "replication_factor": 1,
                                "configs": {"retention.ms": "not-a-number"}}, Errors.InvalidConfigurationError),
    "cleanup-policy-bogus": ({"num_partitions": 1, "replication_factor": 1,
                              "configs": {"cleanup.policy": "bogus"}}, Errors.InvalidConfigurationError),
    "unknown-config": ({"num_partitions": 1, "replication_factor": 1,
                        "configs": {"no.such.config": "1"}}, Errors.InvalidConfigurationError),
}


@pytest.mark.parametrize("case", sorted(CREATE_ERRORS))
@pytest.mark.parametrize("validate_only", [False, True], ids=["create", "validate_only"])
def test_admin_create_topic_errors(strom, admin, new_topic, case, validate_only):
    spec, error = CREATE_ERRORS[case]
    name = new_topic()
    res = admin.create_topics({name: spec}, raise_errors=False, validate_only=validate_only)
    assert res["topics"][0]["error_code"] == error.errno, res
    assert name not in admin.list_topics(), "a failed create must not leave a topic behind"


def test_admin_create_topic_exists_and_bad_name(strom, admin, new_topic):
    name = create_topic(admin, new_topic())
    res = admin.create_topics({name: {"num_partitions": 1, "replication_factor": 1}}, raise_errors=False)
    assert res["topics"][0]["error_code"] == Errors.TopicAlreadyExistsError.errno, res
    for bad in ["bad/name", "x" * 250, "."]:
        res = admin.create_topics({bad: {"num_partitions": 1, "replication_factor": 1}}, raise_errors=False)
        assert res["topics"][0]["error_code"] == Errors.InvalidTopicError.errno, (bad, res)


def test_admin_describe_cluster(strom, admin):
    cl = admin.describe_cluster()
    brokers = {f"{b['host']}:{b['port']}": b["broker_id"] for b in cl["brokers"]}
    assert sorted(brokers) == sorted(strom.bootstrap.split(",")), cl
    assert cl["controller_id"] in brokers.values(), "the controller id given to clients is a live broker"
    assert cl["cluster_id"]
    if not strom.is_external:
        assert brokers == {n.bootstrap: n.node_id for n in strom.nodes}, cl


# Kafka 4.x admin APIs and version detection (the clients' own suites call these).


def test_client_infers_kafka_4_2_from_api_versions(strom):
    """kafka-python guesses the broker's version from ApiVersions (ListOffsets v11 means 4.2)."""
    c = KafkaConsumer(bootstrap_servers=strom.bootstrap, group_id=None, api_version=None)
    try:
        assert c.config["api_version"] == (4, 2)
    finally:
        c.close()


def test_create_topics_answers_a_null_message_on_success(strom, admin, new_topic):
    name = new_topic()
    res = admin.create_topics({name: {"num_partitions": 1, "replication_factor": 1}})
    t = res["topics"][0]
    assert (t["error_code"], t["error_message"]) == (0, None), res


def test_admin_subtract_can_empty_cleanup_policy(strom, admin, new_topic):
    """Kafka 4.0 (KIP-1030) accepts an empty cleanup.policy: nothing is deleted or compacted."""
    name = create_topic(admin, new_topic())
    res = admin.alter_configs([ConfigResource("TOPIC", name, {"cleanup.policy": (AlterConfigOp.SUBTRACT, "delete")})],
                              incremental=True, raise_on_unknown=False)
    assert res["topic"][name] == "OK", res
    cfg = configs_of(admin, name)
    assert (cfg["cleanup.policy"]["value"], cfg["cleanup.policy"]["config_source"]) == ("", "DYNAMIC_TOPIC_CONFIG")
    # Records still go in and come out.
    p = producer(strom)
    produce(p, name, [Rec(key=b"k", value=b"v", partition=0)])
    p.close()
    assert [g.value for g in read_partition(strom, name, 0, 1)] == [b"v"]


def test_admin_list_config_resources(strom, admin, new_topic):
    """ListConfigResources (KIP-1142): every topic and every broker; a type filter applies."""
    name = create_topic(admin, new_topic())
    everything = admin.list_config_resources()
    assert name in everything["topic"]
    brokers = [str(b["broker_id"]) for b in admin.describe_cluster()["brokers"]]
    assert sorted(everything["broker"]) == sorted(brokers)
    assert sorted(everything["broker_logger"]) == sorted(brokers)
    only_topics = admin.list_config_resources(["TOPIC"])
    assert set(only_topics) == {"topic"} and name in only_topics["topic"]


def test_admin_describe_producers(strom, admin, new_topic):
    """DescribeProducers (KIP-664): an idempotent producer's id, epoch and last sequence."""
    name = create_topic(admin, new_topic())
    p = producer(strom, enable_idempotence=True, acks="all")
    for i in range(5):
        p.send(name, value=b"x%d" % i, partition=0).get(timeout=30)
    pid = p._transaction_manager.producer_id_and_epoch.producer_id
    p.close()
    tp = TopicPartition(name, 0)
    state = admin.describe_producers([tp])[tp]
    rows = [r for r in state.active_producers if r.producer_id == pid]
    assert len(rows) == 1, state
    r = rows[0]
    assert (r.producer_epoch, r.last_sequence, r.coordinator_epoch, r.current_transaction_start_offset) == (0, 4, -1, -1)
    assert abs(r.last_timestamp / 1000 - time.time()) < 300


def test_cluster_wide_min_insync_replicas_is_a_dynamic_default(strom, admin, new_topic):
    """KIP-966 (Kafka 4.1): with eligible leader replicas the active controller writes the
    cluster-wide min.insync.replicas, so topics and brokers report it as a dynamic
    cluster default."""
    name = create_topic(admin, new_topic())
    cfg = configs_of(admin, name)["min.insync.replicas"]
    assert (cfg["value"], cfg["config_source"]) == ("1", "DYNAMIC_DEFAULT_BROKER_CONFIG"), cfg
    # A broker's own view: the cluster-wide value, its static one as a synonym.
    broker_id = admin.describe_cluster()["brokers"][0]["broker_id"]
    res = admin.describe_configs([ConfigResource("BROKER", str(broker_id))], config_filter="all")
    b = res["broker"][str(broker_id)]["min.insync.replicas"]
    assert (b["value"], b["config_source"]) == ("1", "DYNAMIC_DEFAULT_BROKER_CONFIG"), b
