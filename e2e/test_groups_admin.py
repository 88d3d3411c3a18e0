"""Consumer-group administration against strom: kafka-python 3's KafkaAdminClient,
kafka-python 2.0.2's (in a venv of its own, run as a subprocess), confluent-kafka's
AdminClient, the `strom group` CLI, and where the groups' coordinators are.

Every test builds its own groups on its own 3-partition topic (10 records per
partition): `active`, a classic group with two kafka-python members; `kip848`, a
KIP-848 group (confluent-kafka, group.protocol=consumer) with one member; `empty`, a
classic group whose member committed offsets and left."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.register_assert_rewrite("groups_util")

from confluent_kafka import (ConsumerGroupState, ConsumerGroupTopicPartitions,  # noqa: E402
                             ConsumerGroupType, KafkaError, KafkaException, TopicPartition)
from kafka import TopicPartition as KTP  # noqa: E402
from kafka.admin import KafkaAdminClient  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

from groups_util import (GROUP_SETTINGS, ConfluentClient, KafkaPythonClient,  # noqa: E402
                         confluent_admin, create_topic, drive, group_offsets, produce)
from e2e_util import wait_until  # noqa: E402
from strom_harness import strom_binary  # noqa: E402

STROM_SETTINGS = GROUP_SETTINGS

pytestmark = pytest.mark.timeout(180)

EMPTY_OFFSETS = {0: (4, "m0"), 1: (7, ""), 2: (10, "end of p2")}


class Groups:
    """The three groups of a test, with the clients that keep `active` and `kip848` alive."""

    def __init__(self, bootstrap: str, topic: str, empty_offsets=EMPTY_OFFSETS):
        self.bootstrap, self.topic = bootstrap, topic
        self.active, self.kip848, self.empty = f"{topic}-active", f"{topic}-kip848", f"{topic}-empty"
        self.kp = KafkaPythonClient(bootstrap)
        self.cf = ConfluentClient(bootstrap, "consumer")
        create_topic(bootstrap, topic, 3)
        produce(bootstrap, topic, 30, partitions=3, prefix="admin")

        e = self.kp.member(self.empty, topic)
        drive([e], lambda: e.last_assignment == {0, 1, 2}, what="the empty group's member")
        e.commit_offsets(empty_offsets)
        e.close()
        self.empty_offsets = empty_offsets

        self.active_members = [self.kp.member(self.active, topic) for _ in range(2)]
        self.kip848_member = self.cf.member(self.kip848, topic)
        everyone = self.active_members + [self.kip848_member]

        def settled():
            a = [m.last_assignment for m in self.active_members]
            return (all(a) and sum(map(len, a)) == 3 and set().union(*a) == {0, 1, 2}
                    and self.kip848_member.last_assignment == {0, 1, 2})
        drive(everyone, settled, timeout=45, what="active and kip848 groups to settle")
        self.active_ids = {m.member_id(): m for m in self.active_members}

    def close(self):
        self.kp.close()
        self.cf.close()

    def close_active(self):
        for m in self.active_members:
            m.close()


@pytest.fixture
def groups(strom, new_topic):
    g = Groups(strom.bootstrap, new_topic())
    yield g
    g.close()


def ours(g: Groups) -> set:
    return {g.active, g.kip848, g.empty}


# ------------------------------------------------------------------ kafka-python 3


def test_groups_admin_kafka_python3(strom, groups):
    g = groups
    a = KafkaAdminClient(bootstrap_servers=strom.bootstrap, request_timeout_ms=30000)
    try:
        listed = {x["group_id"]: x for x in a.list_groups() if x["group_id"] in ours(g)}
        assert set(listed) == ours(g), listed
        assert (listed[g.active]["group_state"], listed[g.active]["group_type"]) == ("Stable", "classic")
        assert (listed[g.kip848]["group_state"], listed[g.kip848]["group_type"]) == ("Stable", "consumer")
        assert (listed[g.empty]["group_state"], listed[g.empty]["group_type"]) == ("Empty", "classic")
        assert all(x["protocol_type"] == "consumer" for x in listed.values()), listed
        # ListGroups v4 states filter and v5 types filter
        stable = {x["group_id"] for x in a.list_groups(states_filter=["Stable"])}
        assert {g.active, g.kip848} <= stable and g.empty not in stable
        consumer_type = {x["group_id"] for x in a.list_groups(types_filter=["consumer"])}
        assert g.kip848 in consumer_type and not {g.active, g.empty} & consumer_type

        d = a.describe_groups([g.active, g.empty])
        act = d[g.active]
        assert act["error"] is None and act["group_state"] == "Stable", act
        assert act["protocol_type"] == "consumer" and act["protocol_data"] == "range", act
        assert len(act["members"]) == 2
        for mem in act["members"]:
            owner = g.active_ids[mem["member_id"]]
            parts = {p for tps in mem["member_assignment"]["assigned_partitions"] for p in tps["partitions"]}
            assert parts == owner.last_assignment, (mem, owner.last_assignment)
            assert mem["client_id"] == owner.name
            assert mem["member_metadata"]["topics"] == [g.topic]
        emp = d[g.empty]
        assert emp["error"] is None and emp["group_state"] == "Empty" and emp["members"] == [], emp

        def offsets(group):
            return {tp.partition: (om.offset, om.metadata) for tp, om in
                    a.list_group_offsets({group: None})[group].items() if tp.topic == g.topic}
        assert offsets(g.empty) == g.empty_offsets
        assert offsets(g.active) == {}
        # OffsetFetch v8: several groups in one request
        both = a.list_group_offsets([g.empty, g.active])
        assert set(both) == {g.empty, g.active} and len(both[g.empty]) == 3 and both[g.active] == {}

        # OffsetCommit by an admin (generation -1): fine on the empty group, refused on the active one
        res = a.alter_group_offsets(g.empty, {KTP(g.topic, 0): OffsetAndMetadata(2, "altered", -1)})
        assert [e.__name__ for e in res.values()] == ["NoError"], res
        res = a.alter_group_offsets(g.active, {KTP(g.topic, 0): OffsetAndMetadata(2, "", -1)})
        assert [e.__name__ for e in res.values()] == ["UnknownMemberIdError"], res
        # OffsetDelete
        res = a.delete_group_offsets(g.empty, [KTP(g.topic, 2)])
        assert [e.__name__ for e in res.values()] == ["NoError"], res
        assert offsets(g.empty) == {0: (2, "altered"), 1: g.empty_offsets[1]}

        # DeleteGroups: a group with members is refused (NON_EMPTY_GROUP), an empty one goes
        res = a.delete_groups([g.active, g.kip848, g.empty, f"{g.topic}-unknown"])
        assert res == {g.active: "NonEmptyGroupError", g.kip848: "NonEmptyGroupError", g.empty: "OK",
                       f"{g.topic}-unknown": "GroupIdNotFoundError"}, res
        assert g.empty not in {x["group_id"] for x in a.list_groups()}
        assert offsets(g.empty) == {}
        assert a.describe_groups([g.empty])[g.empty]["group_state"] == "Dead"
        # the active group is untouched
        assert {x["group_id"] for x in a.list_groups()} >= {g.active, g.kip848}
    finally:
        a.close()


# ------------------------------------------------------------------ kafka-python 2.0.2

KP2_SCRIPT = r"""
import json, sys
from kafka import KafkaAdminClient
import kafka
boot, active, empty, kip848 = sys.argv[1:5]
a = KafkaAdminClient(bootstrap_servers=boot.split(","), request_timeout_ms=30000)
out = {"version": kafka.__version__, "api_version": list(a.config["api_version"])}
out["list"] = sorted([list(x) for x in a.list_consumer_groups() if x[0] in (active, empty, kip848)])
out["describe"] = {}
for gi in a.describe_consumer_groups([active, empty]):
    out["describe"][gi.group] = {
        "error_code": gi.error_code, "state": gi.state, "protocol_type": gi.protocol_type,
        "protocol": gi.protocol,
        "members": [{"member_id": m.member_id, "client_id": m.client_id,
                     "topics": list(m.member_metadata.subscription),
                     "assignment": [[t, list(ps)] for t, ps in m.member_assignment.assignment]}
                    for m in gi.members]}
out["offsets"] = {g: {str(tp.partition): [om.offset, om.metadata]
                      for tp, om in a.list_consumer_group_offsets(g).items()} for g in (empty, active)}
out["delete"] = {g: e.__name__ for g, e in a.delete_consumer_groups([active, empty])}
out["list_after"] = sorted(x[0] for x in a.list_consumer_groups() if x[0] in (active, empty, kip848))
a.close()
print(json.dumps(out))
"""


def kp2_python() -> Path:
    py = Path(sys.prefix + "-kp2") / "bin" / "python"
    if not py.exists():
        raise RuntimeError(f"{py} missing: run e2e/setup.sh (it makes the kafka-python 2.0.2 venv)")
    return py


def test_groups_admin_kafka_python2(strom, groups, tmp_path):
    g = groups
    script = tmp_path / "kp2_admin.py"
    script.write_text(KP2_SCRIPT)
    p = subprocess.run([str(kp2_python()), str(script), strom.bootstrap, g.active, g.empty, g.kip848],
                       capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, f"kafka-python 2.0.2 script failed:\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["version"] == "2.0.2"
    assert out["list"] == sorted([[g.active, "consumer"], [g.empty, "consumer"], [g.kip848, "consumer"]]), out
    act, emp = out["describe"][g.active], out["describe"][g.empty]
    assert (act["error_code"], act["state"], act["protocol_type"], act["protocol"]) == (0, "Stable", "consumer", "range")
    assert len(act["members"]) == 2
    for mem in act["members"]:
        owner = g.active_ids[mem["member_id"]]
        assert mem["client_id"] == owner.name and mem["topics"] == [g.topic]
        assert {p for t, ps in mem["assignment"] for p in ps} == owner.last_assignment, mem
    assert (emp["error_code"], emp["state"], emp["members"]) == (0, "Empty", []), emp
    assert {int(p): tuple(v) for p, v in out["offsets"][g.empty].items()} == g.empty_offsets
    assert out["offsets"][g.active] == {}
    # kafka-python 2.0.2 returns the error class instances; NON_EMPTY_GROUP for the active one
    assert out["delete"] == {g.active: "NonEmptyGroupError", g.empty: "NoError"}, out["delete"]
    assert out["list_after"] == sorted([g.active, g.kip848])


# ------------------------------------------------------------------ confluent-kafka


@pytest.fixture
def groups_no_meta(strom, new_topic):
    """Offsets without metadata: confluent-kafka reads committed metadata past its end
    (librdkafka#4649, see groups_util.group_offsets)."""
    g = Groups(strom.bootstrap, new_topic(), empty_offsets={0: (4, ""), 1: (7, ""), 2: (10, "")})
    yield g
    g.close()


def test_groups_admin_confluent(strom, groups_no_meta):
    g = groups_no_meta
    a = confluent_admin(strom.bootstrap)
    res = a.list_consumer_groups(request_timeout=30).result(timeout=40)
    assert not res.errors, res.errors
    listed = {x.group_id: x for x in res.valid if x.group_id in ours(g)}
    assert set(listed) == ours(g)
    assert (listed[g.active].state, listed[g.active].type) == (ConsumerGroupState.STABLE, ConsumerGroupType.CLASSIC)
    assert (listed[g.kip848].state, listed[g.kip848].type) == (ConsumerGroupState.STABLE, ConsumerGroupType.CONSUMER)
    assert (listed[g.empty].state, listed[g.empty].type) == (ConsumerGroupState.EMPTY, ConsumerGroupType.CLASSIC)
    assert not any(x.is_simple_consumer_group for x in listed.values())
    only_empty = {x.group_id for x in a.list_consumer_groups(states={ConsumerGroupState.EMPTY}).result(40).valid}
    assert g.empty in only_empty and not {g.active, g.kip848} & only_empty
    only_848 = {x.group_id for x in a.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result(40).valid}
    assert g.kip848 in only_848 and not {g.active, g.empty} & only_848

    fs = a.describe_consumer_groups([g.active, g.kip848, g.empty], request_timeout=30)
    act, k848, emp = (fs[x].result(timeout=40) for x in (g.active, g.kip848, g.empty))
    assert (act.state, act.type, act.partition_assignor) == (ConsumerGroupState.STABLE, ConsumerGroupType.CLASSIC,
                                                             "range"), act
    assert {m.member_id: {tp.partition for tp in m.assignment.topic_partitions} for m in act.members} == \
        {mid: m.last_assignment for mid, m in g.active_ids.items()}
    assert {m.client_id for m in act.members} == {m.name for m in g.active_members}
    assert act.coordinator.id in strom.node_ids
    assert (k848.state, k848.type) == (ConsumerGroupState.STABLE, ConsumerGroupType.CONSUMER), k848
    assert k848.partition_assignor in ("uniform", "range"), k848.partition_assignor
    (m848,) = k848.members
    assert m848.member_id == g.kip848_member.member_id() and m848.client_id == g.kip848_member.name
    assert {tp.partition for tp in m848.assignment.topic_partitions} == {0, 1, 2}
    assert (emp.state, emp.members) == (ConsumerGroupState.EMPTY, []), emp

    def offsets(group):
        r = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=40)
        assert all(tp.error is None for tp in r.topic_partitions), r.topic_partitions
        return {tp.partition: tp.offset for tp in r.topic_partitions if tp.topic == g.topic}
    assert offsets(g.empty) == {p: o for p, (o, _) in g.empty_offsets.items()}
    assert offsets(g.active) == {}

    # AlterConsumerGroupOffsets: the empty group takes them; the active one refuses
    # per partition (UNKNOWN_MEMBER_ID, as Kafka: an admin commit needs an empty group).
    r = a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        g.empty, [TopicPartition(g.topic, 0, 1), TopicPartition(g.topic, 2, 9)])])[g.empty].result(timeout=40)
    assert [tp.error for tp in r.topic_partitions] == [None, None], r.topic_partitions
    assert offsets(g.empty) == {0: 1, 1: 7, 2: 9}
    r = a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        g.active, [TopicPartition(g.topic, 0, 1)])])[g.active].result(timeout=40)
    assert [tp.error.code() if tp.error else None for tp in r.topic_partitions] == [KafkaError.UNKNOWN_MEMBER_ID]
    assert offsets(g.active) == {}

    # DeleteConsumerGroups: NON_EMPTY_GROUP for groups with members
    fs = a.delete_consumer_groups([g.active, g.kip848, g.empty], request_timeout=30)
    fs[g.empty].result(timeout=40)
    for x in (g.active, g.kip848):
        with pytest.raises(KafkaException) as ei:
            fs[x].result(timeout=40)
        assert ei.value.args[0].code() == KafkaError.NON_EMPTY_GROUP, (x, ei.value)
    left = {x.group_id for x in a.list_consumer_groups().result(40).valid}
    assert g.empty not in left and {g.active, g.kip848} <= left
    assert offsets(g.empty) == {}

    # Once its members are gone, the classic group can be deleted too.
    g.close_active()
    wait_until(lambda: a.describe_consumer_groups([g.active])[g.active].result(40).state == ConsumerGroupState.EMPTY,
               20, what=f"{g.active} to become Empty")
    a.delete_consumer_groups([g.active])[g.active].result(timeout=40)
    assert g.active not in {x.group_id for x in a.list_consumer_groups().result(40).valid}


# ------------------------------------------------------------------ strom group CLI


def strom_cli(bootstrap, *args, ok=True, timeout=60) -> subprocess.CompletedProcess:
    p = subprocess.run([strom_binary(), "group", *args, "-b", bootstrap], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if ok:
        assert p.returncode == 0, f"strom group {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def table(text: str, first_col: str) -> list[dict]:
    """Rows of the aligned table whose header starts with first_col, cut at the header
    words' columns (a cell may be empty: PROTOCOL-TYPE of a group made by an admin commit)."""
    rows, starts, header = [], None, None
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == first_col:
            header = words
            starts = [m.start() for m in re.finditer(r"\S+", line)]
            continue
        if header is None:
            continue
        if not words:
            break
        cells = [line[s:e].strip() for s, e in zip(starts, starts[1:] + [None])]
        rows.append(dict(zip(header, cells)))
    return rows


def test_groups_cli(strom, new_topic):
    t = new_topic()
    b = strom.bootstrap
    create_topic(b, t, 3)
    produce(b, t, 30, partitions=3, prefix="cli")
    group = f"{t}-cli"
    kp = KafkaPythonClient(b)
    try:
        m = kp.member(group, t)
        drive([m], lambda: m.last_assignment == {0, 1, 2}, what="the member's assignment")
        committed = {0: 4, 1: 7, 2: 10}
        m.commit_offsets({p: (o, "") for p, o in committed.items()})
        member_id = m.member_id()

        rows = {r["GROUP"]: r for r in table(strom_cli(b, "list").stdout, "GROUP")}
        assert group in rows, rows
        assert (rows[group]["STATE"], rows[group]["TYPE"], rows[group]["PROTOCOL-TYPE"]) == ("Stable", "classic", "consumer")
        coord = confluent_admin(b).describe_consumer_groups([group])[group].result(40).coordinator.id
        assert int(rows[group]["COORDINATOR"]) == coord

        out = strom_cli(b, "describe", group).stdout
        assert re.search(rf"Group {re.escape(group)} is Stable \(coordinator {coord}, protocol consumer range, "
                         r"1 member\(s\)\)", out), out
        parts = {int(r["PARTITION"]): r for r in table(out, "TOPIC") if r["TOPIC"] == t}
        assert sorted(parts) == [0, 1, 2], out
        for p, r in parts.items():
            assert (int(r["CURRENT-OFFSET"]), int(r["LOG-END-OFFSET"]), int(r["LAG"])) == \
                (committed[p], 10, 10 - committed[p]), r
            assert (r["CONSUMER-ID"], r["CLIENT-ID"]) == (member_id, m.name), r

        # reset-offsets needs a group without members
        p = strom_cli(b, "reset-offsets", group, "--to-earliest", "--execute", ok=False)
        assert p.returncode != 0 and "active member" in p.stderr, (p.stdout, p.stderr)
        assert {k: v[0] for k, v in group_offsets(b, group, t).items()} == committed
        m.close()
        wait_until(lambda: table(strom_cli(b, "list").stdout, "GROUP") and
                   {r["GROUP"]: r["STATE"] for r in table(strom_cli(b, "list").stdout, "GROUP")}.get(group) == "Empty",
                   20, interval=0.3, what=f"{group} to become Empty")
        out = strom_cli(b, "describe", group).stdout
        assert re.search(rf"Group {re.escape(group)} is Empty .*0 member\(s\)", out), out
        assert {int(r["PARTITION"]): int(r["LAG"]) for r in table(out, "TOPIC")} == {0: 6, 1: 3, 2: 0}, out

        def plan(*args):
            rows = table(strom_cli(b, "reset-offsets", group, *args).stdout, "TOPIC")
            return {int(r["PARTITION"]): (int(r["CURRENT-OFFSET"]), int(r["NEW-OFFSET"])) for r in rows}

        def fetched():
            return {k: v[0] for k, v in group_offsets(b, group, t).items()}

        # --dry-run (also the default) prints the plan and changes nothing
        assert plan("--to-earliest", "--dry-run") == {0: (4, 0), 1: (7, 0), 2: (10, 0)}
        assert plan("--to-earliest") == {0: (4, 0), 1: (7, 0), 2: (10, 0)}
        assert fetched() == committed
        assert plan("--to-earliest", "--execute") == {0: (4, 0), 1: (7, 0), 2: (10, 0)}
        assert fetched() == {0: 0, 1: 0, 2: 0}
        assert plan("--to-offset", "6", "--execute", "--topic", t) == {0: (0, 6), 1: (0, 6), 2: (0, 6)}
        assert fetched() == {0: 6, 1: 6, 2: 6}
        assert plan("--shift-by", "3", "--execute") == {0: (6, 9), 1: (6, 9), 2: (6, 9)}
        assert plan("--shift-by", "-2", "--execute") == {0: (9, 7), 1: (9, 7), 2: (9, 7)}
        assert fetched() == {0: 7, 1: 7, 2: 7}
        # out of range: clamped to the log's start and end offsets (as kafka-consumer-groups.sh)
        assert plan("--to-offset", "50") == {0: (7, 10), 1: (7, 10), 2: (7, 10)}
        assert plan("--shift-by", "-30") == {0: (7, 0), 1: (7, 0), 2: (7, 0)}
        assert plan("--to-latest") == {0: (7, 10), 1: (7, 10), 2: (7, 10)}
        assert fetched() == {0: 7, 1: 7, 2: 7}

        # a consumer of the group starts at the reset position
        m2 = kp.member(group, t)
        drive([m2], lambda: len(m2.consumed) >= 9, what="9 records from offset 7")
        for _ in range(2):
            m2.poll(0.2)
        assert sorted((r.partition, r.offset) for r in m2.consumed) == [(p, o) for p in range(3) for o in (7, 8, 9)]
        m2.close()

        # delete: an active group is refused, an empty one goes, an unknown one is an error
        m3 = kp.member(group, t)
        drive([m3], lambda: m3.last_assignment == {0, 1, 2}, what="a member again")
        p = strom_cli(b, "delete", group, ok=False)
        assert p.returncode != 0 and "NON_EMPTY_GROUP" in p.stderr, (p.stdout, p.stderr)
        m3.close()
        wait_until(lambda: {r["GROUP"]: r["STATE"] for r in table(strom_cli(b, "list").stdout, "GROUP")}.get(group)
                   == "Empty", 20, interval=0.3, what=f"{group} to become Empty")
        strom_cli(b, "delete", group)
        assert group not in {r["GROUP"] for r in table(strom_cli(b, "list").stdout, "GROUP")}
        assert group_offsets(b, group, t) == {}
        p = strom_cli(b, "delete", group, ok=False)
        assert p.returncode != 0 and "GROUP_ID_NOT_FOUND" in p.stderr, (p.stdout, p.stderr)
    finally:
        kp.close()


# ------------------------------------------------------------------ coordinators


def java_string_hash(s: str) -> int:
    """Java's String.hashCode (what Kafka hashes a group id with), as a signed int32."""
    data, h = s.encode("utf-16-be"), 0
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def kafka_abs(n: int) -> int:
    """Kafka's Utils.abs: Math.abs, except Integer.MIN_VALUE -> 0."""
    return 0 if n == -(1 << 31) else abs(n)


def test_groups_coordinators(strom, new_topic):
    """FindCoordinator names the leader of the group's __consumer_offsets partition
    (abs(hash(group)) % 50, Kafka's Utils.abs); in a cluster those are spread over the
    nodes, so the coordinators of a dozen groups are more than one node. The CLI's
    COORDINATOR column agrees, and every group's offsets are fetched right."""
    t = create_topic(strom.bootstrap, new_topic(), 1)
    a = confluent_admin(strom.bootstrap)
    names = [f"{t}-g{i}" for i in range(12)]
    for i, name in enumerate(names):
        r = a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(name, [TopicPartition(t, 0, i)])])[name]
        assert r.result(timeout=40).topic_partitions[0].error is None
    md = a.list_topics("__consumer_offsets", timeout=10).topics["__consumer_offsets"]
    assert md.error is None and len(md.partitions) == 50, md
    leaders = {p: md.partitions[p].leader for p in md.partitions}

    fs = a.describe_consumer_groups(names, request_timeout=30)
    coords = {n: fs[n].result(timeout=40).coordinator.id for n in names}
    expected = {n: leaders[kafka_abs(java_string_hash(n)) % 50] for n in names}
    assert coords == expected, (coords, expected)
    cli = {r["GROUP"]: int(r["COORDINATOR"]) for r in table(strom_cli(strom.bootstrap, "list").stdout, "GROUP")}
    assert {n: cli.get(n) for n in names} == coords
    for i, name in enumerate(names):
        assert group_offsets(strom.bootstrap, name, t) == {0: (i, "")}
    if len(strom.nodes) > 1:
        assert len(set(coords.values())) > 1, f"every group is coordinated by one node: {coords}"
        assert set(leaders.values()) == set(strom.node_ids), f"__consumer_offsets leaders {leaders}"
