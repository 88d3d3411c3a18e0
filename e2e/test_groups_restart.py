"""Committed offsets survive restarts: groups of different kinds (classic through
kafka-python and confluent-kafka, KIP-848 through confluent-kafka, an admin's commit)
commit offsets with metadata, then the node(s) coordinating them restart - gracefully
(SIGTERM), or with kill -9 right after the commits were acknowledged - and OffsetFetch
returns every offset as it was, and a new member of each group resumes exactly there.

A target of the test's own (target_factory): one node, or with E2E_NODES=3 a 3-node
cluster where the groups' coordinators (leaders of their `__consumer_offsets`
partitions, three replicas each) are spread over the nodes; only the nodes coordinating
a group restart, and their groups move to another replica meanwhile."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("groups_util")

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition  # noqa: E402

from e2e_util import wait_until  # noqa: E402
from groups_util import (CLIENTS, GROUP_SETTINGS, confluent_admin, create_topic, drive,  # noqa: E402
                         forget_admin, group_offsets, produce)

pytestmark = pytest.mark.timeout(240)

KINDS = ["kafka-python", "confluent-classic", "confluent-consumer", "admin"]


def coordinator(bootstrap, group) -> int:
    a = confluent_admin(bootstrap)
    return a.describe_consumer_groups([group], request_timeout=20)[group].result(timeout=30).coordinator.id


def commit_all(target, topic, groups: dict, round_: int) -> dict:
    """Each group commits its own offsets {p: (offset, metadata)} (acknowledged when this
    returns); -> {group: offsets as OffsetFetch returns them}."""
    b = target.bootstrap
    expected = {}
    for i, (group, kind) in enumerate(groups.items()):
        offs = {p: (1 + (i + p + round_ * 3) % 9, f"{kind} r{round_} p{p}") for p in range(3)}
        if kind == "admin":
            a = confluent_admin(b)
            r = a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
                group, [TopicPartition(topic, p, o) for p, (o, _) in offs.items()])])[group].result(timeout=40)
            assert all(tp.error is None for tp in r.topic_partitions), r.topic_partitions
            offs = {p: (o, "") for p, (o, _) in offs.items()}
        else:
            c = CLIENTS[kind](b)
            try:
                m = c.member(group, topic)
                drive([m], lambda: m.last_assignment == {0, 1, 2}, what=f"{group}'s member")
                m.commit_offsets(offs)  # synchronous: acknowledged by the coordinator
                offs = {p: (o, meta + c.stored_metadata_suffix) for p, (o, meta) in offs.items()}
            finally:
                c.close()
        expected[group] = offs
    for group, offs in expected.items():
        assert group_offsets(b, group, topic) == offs, group
    return expected


def listing(bootstrap, groups) -> dict:
    """ListGroups (confluent AdminClient): {group: (state, type, simple)} of `groups`."""
    res = confluent_admin(bootstrap).list_consumer_groups(request_timeout=20).result(timeout=30)
    assert not res.errors, res.errors
    return {x.group_id: (x.state.name, x.type.name, x.is_simple_consumer_group)
            for x in res.valid if x.group_id in groups}


def fetch_when_ready(bootstrap, group, topic, timeout=30):
    """OffsetFetch, retried while the restarted coordinator loads its partitions."""
    return wait_until(lambda: group_offsets(bootstrap, group, topic) or None, timeout, interval=0.3,
                      what=f"offsets of {group} after the restart")


@pytest.mark.parametrize("how", ["graceful", "kill9"])
def test_groups_offsets_survive_restart(target_factory, new_topic, how):
    target = target_factory(settings=GROUP_SETTINGS)
    b = target.bootstrap
    topic = create_topic(b, new_topic(), 3)
    produce(b, topic, 30, partitions=3, prefix="restart")
    groups = {f"{topic}-{kind}-{j}": kind for j in range(2) for kind in KINDS}
    expected = commit_all(target, topic, groups, 0)
    coords = {g: coordinator(b, g) for g in groups}
    restart_ids = sorted(set(coords.values()))
    if len(target.nodes) > 1:
        assert len(restart_ids) > 1, f"all {len(groups)} groups on one coordinator: {coords}"

    # A second round of commits right before the stop: the ones that must survive.
    expected = commit_all(target, topic, groups, 1)
    listed = listing(b, groups)
    assert {g: listed.get(g, ("?",))[:2] for g in groups} == \
        {g: ("EMPTY", "CONSUMER" if kind == "confluent-consumer" else "CLASSIC") for g, kind in groups.items()}
    if how == "graceful":
        for nid in restart_ids:  # one at a time: a rolling restart
            node = target.node(nid)
            assert node.terminate() == 0, node.log_report()
            node.start()
    else:
        for nid in restart_ids:
            target.node(nid).kill9()
        target.start()  # every stopped node at once (a cluster may have lost its quorum)
    forget_admin(b)  # librdkafka's AdminClient is stuck after a re-bootstrap (see forget_admin)

    for g in groups:
        assert fetch_when_ready(b, g, topic) == expected[g], f"{g} (coordinator {coords[g]})"
    # With one node the coordinator is that node again; with three, __consumer_offsets
    # has three replicas, so a restarted coordinator's partitions moved to another one
    # (as in Kafka) and the offsets above were read from it.
    after = {g: coordinator(b, g) for g in groups}
    if len(target.nodes) == 1:
        assert after == coords
    # the groups themselves came back too (state, type: classic or KIP-848)
    assert listing(b, groups) == listed

    # A new member of each group resumes exactly at the committed offsets.
    for g, kind in groups.items():
        if g.endswith("-1"):
            continue  # one group of each kind is enough
        c = CLIENTS["kafka-python" if kind == "admin" else kind](b)
        try:
            m = c.member(g, topic)
            want = sum(10 - o for o, _ in expected[g].values())
            drive([m], lambda: len(m.consumed) >= want, timeout=40, what=f"{want} records in {g}")
            m.poll(0.3)
            got = sorted((r.partition, r.offset) for r in m.consumed)
            assert got == [(p, o) for p in range(3) for o in range(expected[g][p][0], 10)], g
        finally:
            c.close()
