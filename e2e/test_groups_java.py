"""Consumer groups through the Java client (kafka-clients 3.9.1), with the classic
protocol and with KIP-848 `group.protocol=consumer` (ConsumerGroupHeartbeat v0), the
same scenarios as test_groups.py (written once in groups_util.py). Each member is a JVM
of its own (e2e/java/StromGroupMember.java) driven line by line; the admin's view
comes from the Java Admin's describeConsumerGroups."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("groups_util")

from groups_util import (CLIENTS, GROUP_SETTINGS,  # noqa: E402
                         scenario_auto_commit, scenario_commit_and_resume,
                         scenario_manual_commit_variants, scenario_max_poll_records,
                         scenario_static_member_rejoins, scenario_three_members_then_one_leaves)

STROM_SETTINGS = GROUP_SETTINGS

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=["java-classic", "java-consumer"])
def client(request, strom):
    c = CLIENTS[request.param](strom.bootstrap)
    yield c
    c.close()


def test_groups_java_three_members_then_one_leaves(client, strom, new_topic):
    t = new_topic()
    scenario_three_members_then_one_leaves(client, strom.bootstrap, t, f"g-{t}")


def test_groups_java_cooperative_three_members_then_one_leaves(strom, new_topic):
    """The classic protocol with the CooperativeStickyAssignor (KIP-429)."""
    c = CLIENTS["java-cooperative"](strom.bootstrap)
    try:
        t = new_topic()
        scenario_three_members_then_one_leaves(c, strom.bootstrap, t, f"g-{t}")
    finally:
        c.close()


def test_groups_java_static_member_rejoins(client, strom, new_topic):
    t = new_topic()
    scenario_static_member_rejoins(client, strom.bootstrap, t, f"g-{t}")


def test_groups_java_commit_and_resume(client, strom, new_topic):
    t = new_topic()
    scenario_commit_and_resume(client, strom.bootstrap, t, f"g-{t}")


def test_groups_java_auto_commit(client, strom, new_topic):
    t = new_topic()
    scenario_auto_commit(client, strom.bootstrap, t, f"g-{t}")


def test_groups_java_max_poll_records(client, strom, new_topic):
    t = new_topic()
    scenario_max_poll_records(client, strom.bootstrap, t, f"g-{t}")


def test_groups_java_manual_commit_variants(client, strom, new_topic):
    t = new_topic()
    scenario_manual_commit_variants(client, strom.bootstrap, t, f"g-{t}")
