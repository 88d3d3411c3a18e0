"""Consumer groups through confluent-kafka (classic protocol and KIP-848
`group.protocol=consumer`), kafka-python 3 and aiokafka, each scenario written once in
groups_util.py: three members of one group on a 3-partition topic get one partition
each (their own view and the admin's describe agree), one leaves and the two others
take over its partition; commit and resume exactly at the committed offset; auto
commit; max poll records; async commits and explicit offsets with metadata; static
members; the cooperative-sticky assignor.

In pass 2 the group's coordinator is whichever node leads its `__consumer_offsets`
partition, and the topic's three partitions are led by different nodes."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer

pytest.register_assert_rewrite("groups_util")

from groups_util import (CLIENTS, GROUP_SETTINGS,  # noqa: E402
                         scenario_auto_commit, scenario_commit_and_resume,
                         scenario_manual_commit_variants, scenario_max_poll_records,
                         scenario_static_member_rejoins, scenario_three_members_then_one_leaves)

STROM_SETTINGS = GROUP_SETTINGS

PY_CLIENTS = ["confluent-classic", "confluent-consumer", "kafka-python", "aiokafka"]


@pytest.fixture(params=PY_CLIENTS)
def client(request, strom):
    c = CLIENTS[request.param](strom.bootstrap)
    yield c
    c.close()


def test_groups_three_members_then_one_leaves(client, strom, new_topic):
    t = new_topic()
    scenario_three_members_then_one_leaves(client, strom.bootstrap, t, f"g-{t}")


@pytest.mark.parametrize("name", ["confluent-cooperative"])
def test_groups_cooperative_three_members_then_one_leaves(strom, new_topic, name):
    """The classic protocol with librdkafka's cooperative-sticky assignor (incremental
    rebalancing is client-side: the broker sees JoinGroup/SyncGroup rounds)."""
    c = CLIENTS[name](strom.bootstrap)
    try:
        t = new_topic()
        scenario_three_members_then_one_leaves(c, strom.bootstrap, t, f"g-{t}")
    finally:
        c.close()


def test_groups_static_member_rejoins(client, strom, new_topic):
    t = new_topic()
    scenario_static_member_rejoins(client, strom.bootstrap, t, f"g-{t}")


def test_groups_commit_and_resume(client, strom, new_topic):
    t = new_topic()
    scenario_commit_and_resume(client, strom.bootstrap, t, f"g-{t}")


def test_groups_auto_commit(client, strom, new_topic):
    t = new_topic()
    scenario_auto_commit(client, strom.bootstrap, t, f"g-{t}")


def test_groups_max_poll_records(client, strom, new_topic):
    t = new_topic()
    scenario_max_poll_records(client, strom.bootstrap, t, f"g-{t}")


def test_groups_manual_commit_variants(client, strom, new_topic):
    t = new_topic()
    scenario_manual_commit_variants(client, strom.bootstrap, t, f"g-{t}")


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_a_consumer_that_never_subscribed_commits_to_its_empty_group(strom, new_topic, protocol):
    """A consumer with a group id that never subscribes may commit to the group while it
    has no members: Kafka accepts a negative generation or member epoch whatever the
    member id (a KIP-848 consumer sends the id it made itself) and creates the group
    (confluent-kafka-python's test_consumer_topicpartition_metadata, KIP-848 run)."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = new_topic()
    admin = AdminClient({"bootstrap.servers": strom.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": f"g-{topic}",
                  "group.protocol": protocol})
    try:
        for offset, metadata in [(1, None), (2, "hello world"), (3, "")]:
            tp = TopicPartition(topic, 0, offset) if metadata is None else TopicPartition(topic, 0, offset, metadata)
            c.commit(offsets=[tp], asynchronous=False)
            got = c.committed([TopicPartition(topic, 0)], timeout=30)
            assert (got[0].offset, got[0].metadata) == (offset, metadata), got
    finally:
        c.close()


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_a_live_group_moves_to_the_consumer_protocol_and_back(strom, new_topic, strategy):
    """KIP-848's online migration (confluent-kafka-python's test_consumer_upgrade_downgrade):
    a consumer-protocol member joins a live classic group, which becomes a consumer group
    with the classic member still in it (it rejoins and gets its share); the classic
    member leaves, another classic member joins the consumer group; the consumer-protocol
    member leaves and the group is classic again with the classic member owning every
    partition. Every record produced in each phase is consumed."""
    from confluent_kafka import ConsumerGroupType
    from confluent_kafka.admin import NewTopic

    from groups_util import CLASSIC_HEARTBEAT_MS, CLASSIC_SESSION_MS, confluent_admin, produce

    topic, parts = new_topic(), 4
    group = f"g-{topic}"
    admin = confluent_admin(strom.bootstrap)
    admin.create_topics([NewTopic(topic, parts, 1)])[topic].result(timeout=30)
    base = {"bootstrap.servers": strom.bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
    classic = {**base, "group.protocol": "classic", "partition.assignment.strategy": strategy,
               "heartbeat.interval.ms": CLASSIC_HEARTBEAT_MS, "session.timeout.ms": CLASSIC_SESSION_MS}
    modern = {**base, "group.protocol": "consumer"}
    members: list = []
    seen: set = set()

    def poll_all(until, what, timeout=60):
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: " + str(
                [sorted(p.partition for p in c.assignment()) for c in members])
            for c in members:
                m = c.poll(0.05)
                if m is not None and m.error() is None:
                    seen.add((m.partition(), m.offset()))

    def split_evenly():
        got = [sorted(p.partition for p in c.assignment()) for c in members]
        flat = [p for g in got for p in g]
        return sorted(flat) == list(range(parts)) and all(len(g) == parts // len(members) for g in got)

    def group_type():
        return admin.describe_consumer_groups([group])[group].result(timeout=30).type

    def phase(expected_type, n=20):
        poll_all(split_evenly, f"{parts} partitions split over {len(members)} member(s)")
        assert group_type() == expected_type
        before = len(seen)
        produce(strom.bootstrap, topic, n, partitions=parts)
        poll_all(lambda: len(seen) >= before + n, f"{n} records")

    def join(conf):
        c = Consumer(conf)
        c.subscribe([topic])
        members.append(c)

    try:
        join(classic)
        phase(ConsumerGroupType.CLASSIC)
        join(modern)
        phase(ConsumerGroupType.CONSUMER)
        members.pop(0).close()
        phase(ConsumerGroupType.CONSUMER)
        join(classic)
        phase(ConsumerGroupType.CONSUMER)
        members.pop(0).close()
        phase(ConsumerGroupType.CLASSIC)
        assert len(seen) == 100, "every record of every phase, at least once"
    finally:
        for c in members:
            c.close()
