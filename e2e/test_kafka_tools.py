"""Kafka's command-line tools by name (broker/src/cli/kafka): `strom install-tools DIR`
links `kafka-topics` and `kafka-topics.sh` to strom, and the tutorials' commands run
through the links with Kafka's flags and output — seed 004's
`kafka-topics --bootstrap-server localhost:9092 --create --topic my_topic --partitions 3
--replication-factor 1` and seed 001's `--create --if-not-exists`, with this test's
broker address in place of localhost:9092.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from e2e_util import wait_until
from strom_harness import strom_binary

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tools(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tools")
    p = subprocess.run([strom_binary(), "install-tools", str(d)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    for name in ("kafka-topics", "kafka-topics.sh", "kafka-consumer-groups", "kafka-consumer-groups.sh",
                 "kafka-console-consumer", "kafka-console-producer.sh", "kafka-configs"):
        assert (d / name).is_symlink(), list(d.iterdir())
        assert os.path.realpath(d / name) == os.path.realpath(strom_binary())
    return d


def tool(tools: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(tools / name), *args], capture_output=True, text=True, timeout=60)


def settle_topic(strom, topic: str):
    """Waits until every node's Metadata names a leader for each partition of `topic`:
    a CreateTopics answer means the quorum committed it; each broker applies the metadata
    log a moment apart (as in KRaft), and a tool may ask any of them."""
    def everywhere():
        for n in strom.nodes:
            md = AdminClient({"bootstrap.servers": n.bootstrap}).list_topics(topic, timeout=10)
            t = md.topics.get(topic)
            if t is None or t.error is not None or not t.partitions:
                return False
            if any(p.leader < 0 for p in t.partitions.values()):
                return False
        return True
    wait_until(everywhere, 15, interval=0.1, what=f"{topic} in every node's Metadata")


def test_seed_004_create_and_describe(strom, tools):
    topic = f"my_topic_{uuid.uuid4().hex[:6]}"
    p = tool(tools, "kafka-topics", "--bootstrap-server", strom.bootstrap, "--create", "--topic", topic,
             "--partitions", "3", "--replication-factor", "1")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout == ("WARNING: Due to limitations in metric names, topics with a period ('.') or underscore "
                        "('_') could collide. To avoid issues it is best to use either, but not both.\n"
                        f"Created topic {topic}.\n"), p.stdout
    # Really there, as a Kafka client sees it.
    md = AdminClient({"bootstrap.servers": strom.bootstrap}).list_topics(topic, timeout=10)
    assert len(md.topics[topic].partitions) == 3
    # Again: Kafka's error line and exit status 1.
    p = tool(tools, "kafka-topics.sh", "--bootstrap-server", strom.bootstrap, "--create", "--topic", topic,
             "--partitions", "3", "--replication-factor", "1")
    assert p.returncode == 1
    assert p.stdout.strip().endswith(f"Error while executing topic command : Topic '{topic}' already exists."), p.stdout
    # Describe: Kafka's header line and one line per partition.
    p = tool(tools, "kafka-topics", "--bootstrap-server", strom.bootstrap, "--describe", "--topic", topic)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert re.fullmatch(rf"Topic: {topic}\tTopicId: [0-9a-f-]{{36}}\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: ",
                        lines[0]), lines[0]
    assert len(lines) == 4
    for i, line in enumerate(lines[1:]):
        assert re.fullmatch(rf"\tTopic: {topic}\tPartition: {i}\tLeader: \d+\tReplicas: \d+\tIsr: \d+\tElr: \tLastKnownElr: ", line), line


def test_seed_001_if_not_exists_list_alter_delete(strom, tools):
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    for _ in range(2):
        p = tool(tools, "kafka-topics", "--bootstrap-server", strom.bootstrap, "--create", "--if-not-exists",
                 "--topic", topic, "--partitions", "2", "--replication-factor", "1",
                 "--config", "retention.ms=60000")
        assert p.returncode == 0, p.stdout + p.stderr
    p = tool(tools, "kafka-topics", "--bootstrap-server", strom.bootstrap, "--list")
    assert p.returncode == 0 and topic in p.stdout.splitlines(), p.stdout
    p = tool(tools, "kafka-topics", "--bootstrap-server", strom.bootstrap, "--list", "--exclude-internal")
    assert not any(line.startswith("__") for line in p.stdout.splitlines()), p.stdout
    p = tool(tools, "kafka-topics", "--bootstrap-server", strom.bootstrap, "--describe", "--topic", topic)
    assert "Configs: retention.ms=60000" in p.stdout.splitlines()[0], p.stdout
    p = tool(tools, "kafka-topics", "--bootstrap-server", strom.bootstrap, "--alter", "--topic", topic,
             "--partitions", "4")
    assert p.returncode == 0, p.stdout + p.stderr
    p = tool(tools, "kafka-topics", "--bootstrap-server", strom.bootstrap, "--describe", "--topic", topic)
    assert "PartitionCount: 4" in p.stdout, p.stdout
    p = tool(tools, "kafka-topics", "--bootstrap-server", strom.bootstrap, "--delete", "--topic", topic)
    assert p.returncode == 0, p.stdout + p.stderr
    p = tool(tools, "kafka-topics", "--bootstrap-server", strom.bootstrap, "--describe", "--topic", topic)
    assert p.returncode == 1 and f"Topic '{topic}' does not exist as expected" in p.stdout, p.stdout
    p = tool(tools, "kafka-topics", "--bootstrap-server", strom.bootstrap, "--delete", "--topic", topic,
             "--if-exists")
    assert p.returncode == 0, p.stdout + p.stderr


def test_unknown_flags_and_bad_usage_fail_clearly(tools):
    p = tool(tools, "kafka-topics", "--bootstrap-server", "127.0.0.1:1", "--list", "--frobnicate")
    assert p.returncode != 0
    assert "--frobnicate" in p.stderr, p.stderr
    p = tool(tools, "kafka-topics", "--bootstrap-server", "127.0.0.1:1", "--list", "--describe")
    assert p.returncode == 1 and "exactly one action" in p.stderr, p.stderr
    p = tool(tools, "kafka-topics", "--list")
    assert p.returncode == 1 and "bootstrap-server" in p.stderr, p.stderr


def test_seed_004_consumer_groups_describe_and_reset(strom, tools):
    """Seed 004: `kafka-consumer-groups ... --group payment_service --describe` and
    `... --reset-offsets --to-earliest --topic user_events --execute`."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    b = strom.bootstrap
    p = tool(tools, "kafka-topics", "--bootstrap-server", b, "--create", "--if-not-exists", "--topic", "user_events",
             "--partitions", "1", "--replication-factor", "1")
    assert p.returncode == 0, p.stdout + p.stderr
    prod = Producer({"bootstrap.servers": b})
    for i in range(10):
        prod.produce("user_events", value=f"e{i}".encode())
    assert prod.flush(30) == 0
    c = Consumer({"bootstrap.servers": b, "group.id": "payment_service", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.assign([TopicPartition("user_events", 0, 0)])
    got = 0
    while got < 6:
        m = c.poll(10)
        assert m is not None and m.error() is None
        got += 1
    c.commit(offsets=[TopicPartition("user_events", 0, 6)], asynchronous=False)
    c.close()

    def rows(out: str) -> list[list[str]]:
        lines = [line for line in out.splitlines() if line.strip()]
        i = next(i for i, line in enumerate(lines) if line.startswith("GROUP"))
        return [line.split() for line in lines[i:]]

    p = tool(tools, "kafka-consumer-groups", "--bootstrap-server", b, "--group", "payment_service", "--describe")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Consumer group 'payment_service' has no active members." in p.stdout, p.stdout
    r = rows(p.stdout)
    assert r[0] == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID",
                    "HOST", "CLIENT-ID"], p.stdout
    assert r[1] == ["payment_service", "user_events", "0", "6", "10", "4", "-", "-", "-"], p.stdout

    p = tool(tools, "kafka-consumer-groups", "--bootstrap-server", b, "--group", "payment_service",
             "--reset-offsets", "--to-earliest", "--topic", "user_events", "--execute")
    assert p.returncode == 0, p.stdout + p.stderr
    assert rows(p.stdout) == [["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
                              ["payment_service", "user_events", "0", "0"]], p.stdout
    p = tool(tools, "kafka-consumer-groups", "--bootstrap-server", b, "--group", "payment_service", "--describe")
    assert rows(p.stdout)[1][3:6] == ["0", "10", "10"], p.stdout
    # Without --execute: Kafka's warning, nothing changed.
    p = tool(tools, "kafka-consumer-groups", "--bootstrap-server", b, "--group", "payment_service",
             "--reset-offsets", "--to-latest", "--topic", "user_events")
    assert p.stdout.startswith("WARN: No action will be performed as the --execute option is missing."), p.stdout
    assert rows(p.stdout)[1][3] == "10"
    p = tool(tools, "kafka-consumer-groups", "--bootstrap-server", b, "--group", "payment_service", "--describe")
    assert rows(p.stdout)[1][3] == "0", p.stdout
    p = tool(tools, "kafka-consumer-groups", "--bootstrap-server", b, "--list")
    assert "payment_service" in p.stdout.splitlines(), p.stdout


def test_console_producer_and_seed_004_console_consumer(strom, tools):
    """Lines through kafka-console-producer (keys parsed), read back by a Kafka client
    and by seed 004's `kafka-console-consumer ... --from-beginning` with Kafka's
    formatter properties."""
    from confluent_kafka import Consumer, TopicPartition
    topic = f"console-{uuid.uuid4().hex[:6]}"
    b = strom.bootstrap
    p = tool(tools, "kafka-topics", "--bootstrap-server", b, "--create", "--topic", topic, "--partitions", "1",
             "--replication-factor", "1")
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run([str(tools / "kafka-console-producer"), "--bootstrap-server", b, "--topic", topic,
                        "--property", "parse.key=true", "--property", "key.separator=:"],
                       input="k1:hello\nk2:world\nk3:{\"a\": 1}\n", capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    c = Consumer({"bootstrap.servers": b, "group.id": "check", "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    while len(got) < 3:
        m = c.poll(10)
        assert m is not None and m.error() is None
        got.append((m.key(), m.value()))
    c.close()
    assert got == [(b"k1", b"hello"), (b"k2", b"world"), (b"k3", b'{"a": 1}')]

    p = tool(tools, "kafka-console-consumer", "--bootstrap-server", b, "--topic", topic, "--from-beginning",
             "--max-messages", "3")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout == 'hello\nworld\n{"a": 1}\n', p.stdout
    assert "Processed a total of 3 messages" in p.stderr, p.stderr
    p = tool(tools, "kafka-console-consumer.sh", "--bootstrap-server", b, "--topic", topic, "--from-beginning",
             "--property", "print.key=true", "--property", "print.offset=true", "--property", "key.separator= | ",
             "--timeout-ms", "3000")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines() == ["Offset:0 | k1 | hello", "Offset:1 | k2 | world", 'Offset:2 | k3 | {"a": 1}'], \
        p.stdout
    p = tool(tools, "kafka-console-consumer", "--bootstrap-server", b, "--topic", topic, "--partition", "0",
             "--offset", "2", "--max-messages", "1")
    assert p.stdout == '{"a": 1}\n', p.stdout


def test_console_consumer_in_a_group(strom, tools):
    """`kafka-console-consumer --group`: a group member that commits what it printed (and
    no more, with --max-messages), shares the partitions with other console consumers
    and a librdkafka consumer in the same group (range assignment, every record read
    once), and leaves the group on SIGTERM so the others take its partitions."""
    import signal
    import time
    from confluent_kafka import Consumer, Producer, TopicPartition
    topic = f"grp-{uuid.uuid4().hex[:6]}"
    b = strom.bootstrap
    p = tool(tools, "kafka-topics", "--bootstrap-server", b, "--create", "--topic", topic, "--partitions", "4",
             "--replication-factor", str(len(strom.nodes)))
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run([str(tools / "kafka-console-producer"), "--bootstrap-server", b, "--topic", topic,
                        "--property", "parse.key=true", "--property", "key.separator=:"],
                       input="".join(f"k{i}:v{i}\n" for i in range(40)), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr

    def committed(group: str) -> dict[int, int]:
        c = Consumer({"bootstrap.servers": b, "group.id": group})
        offs = c.committed([TopicPartition(topic, q) for q in range(4)], timeout=10)
        c.close()
        return {tp.partition: tp.offset for tp in offs if tp.offset >= 0}

    group = f"console-{uuid.uuid4().hex[:6]}"
    p = tool(tools, "kafka-console-consumer", "--bootstrap-server", b, "--topic", topic, "--group", group,
             "--from-beginning", "--max-messages", "10")
    assert p.returncode == 0, p.stdout + p.stderr
    first = p.stdout.splitlines()
    assert len(first) == 10, p.stdout
    assert sum(committed(group).values()) == 10, committed(group)
    # The next member of the group goes on from the commits: the other 30, none again.
    p = tool(tools, "kafka-console-consumer", "--bootstrap-server", b, "--topic", topic, "--group", group,
             "--from-beginning", "--timeout-ms", "3000")
    assert p.returncode == 0, p.stdout + p.stderr
    rest = p.stdout.splitlines()
    assert sorted(first + rest) == sorted(f"v{i}" for i in range(40)), (first, rest)
    assert sum(committed(group).values()) == 40, committed(group)
    p = tool(tools, "kafka-consumer-groups", "--bootstrap-server", b, "--group", group, "--describe")
    lags = [line.split()[5] for line in p.stdout.splitlines() if line.startswith(group)]
    assert lags == ["0"] * 4, p.stdout

    # Two console consumers and a librdkafka consumer in one group, which starts at
    # offset 40 everywhere (committed beforehand, so no member races a "latest" reset).
    shared = f"shared-{uuid.uuid4().hex[:6]}"
    c = Consumer({"bootstrap.servers": b, "group.id": shared})
    c.commit(offsets=[TopicPartition(topic, q, o) for q, o in committed(group).items()], asynchronous=False)
    c.close()
    procs = [subprocess.Popen([str(tools / "kafka-console-consumer"), "--bootstrap-server", b, "--topic", topic,
                               "--group", shared, "--property", "print.partition=true",
                               "--consumer-property", "heartbeat.interval.ms=500"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    rd = Consumer({"bootstrap.servers": b, "group.id": shared, "auto.offset.reset": "latest",
                   "partition.assignment.strategy": "range"})
    rd.subscribe([topic])
    a = AdminClient({"bootstrap.servers": b})
    try:
        def members():
            d = a.describe_consumer_groups([shared])[shared].result(10)
            return d.state.name, {m.member_id: sorted(tp.partition for tp in m.assignment.topic_partitions)
                                  for m in d.members}
        deadline = time.monotonic() + 60
        state = None
        while time.monotonic() < deadline:
            rd.poll(0.2)
            state = members()
            owned = sorted(q for qs in state[1].values() for q in qs)
            if state[0] == "STABLE" and len(state[1]) == 3 and owned == [0, 1, 2, 3]:
                break
        else:
            pytest.fail(f"the group never settled with three members owning 0-3 once: {state}")
        assert sorted(len(qs) for qs in state[1].values()) == [1, 1, 2], state
        mine = sorted(tp.partition for tp in rd.assignment())
        # Produce 40 more; each is read exactly once, by whoever owns its partition.
        pr = Producer({"bootstrap.servers": b})
        for i in range(40, 80):
            pr.produce(topic, key=f"k{i}", value=f"v{i}")
        pr.flush(30)
        seen_rd = []
        deadline = time.monotonic() + 8  # the console consumers read meanwhile
        while time.monotonic() < deadline:
            m = rd.poll(0.2)
            if m is not None and m.error() is None:
                seen_rd.append((m.partition(), m.value().decode()))
        # SIGTERM: each console consumer commits, leaves, and prints its count.
        outs = []
        for pr_ in procs:
            pr_.send_signal(signal.SIGTERM)
            try:
                out, err = pr_.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                pr_.kill()
                out, err = pr_.communicate()
                pytest.fail(f"a console consumer did not stop on SIGTERM: {err[-3000:]}")
            assert pr_.returncode == 0, err
            assert "Processed a total of" in err, err
            outs += [tuple(line.split("\t", 1)) for line in out.splitlines()]
        console = [(int(part.split(":")[1]), v) for part, v in outs]
        values = sorted(v for _, v in console) + sorted(v for _, v in seen_rd)
        assert sorted(values) == sorted(f"v{i}" for i in range(40, 80)), (console, seen_rd)
        assert {q for q, _ in seen_rd} <= set(mine) and not {q for q, _ in console} & set(mine), (mine, console)
        # The console consumers left: the librdkafka member gets every partition.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rd.poll(0.2)
            if sorted(tp.partition for tp in rd.assignment()) == [0, 1, 2, 3]:
                break
        else:
            pytest.fail(f"after the others left the librdkafka member owns {rd.assignment()}")
    finally:
        for pr_ in procs:
            if pr_.poll() is None:
                pr_.kill()
        rd.close()


def test_kafka_configs_alter_and_describe(strom, tools):
    """kafka-configs on a topic: --add-config (with a bracketed list value), --describe
    in Kafka's lines, --delete-config; a Kafka client sees the same configs."""
    from confluent_kafka.admin import ConfigResource
    topic = f"cfg-{uuid.uuid4().hex[:6]}"
    b = strom.bootstrap
    assert tool(tools, "kafka-topics", "--bootstrap-server", b, "--create", "--topic", topic,
                "--replication-factor", "1").returncode == 0
    p = tool(tools, "kafka-configs", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", topic,
             "--alter", "--add-config", "retention.ms=60000,cleanup.policy=[compact,delete]")
    assert p.returncode == 0 and p.stdout == f"Completed updating config for topic {topic}.\n", p.stdout + p.stderr
    a = AdminClient({"bootstrap.servers": b})
    cfg = a.describe_configs([ConfigResource("topic", topic)])
    got = {k: v.value for k, v in list(cfg.values())[0].result(30).items()}
    assert got["retention.ms"] == "60000" and got["cleanup.policy"] == "compact,delete", got
    p = tool(tools, "kafka-configs.sh", "--bootstrap-server", b, "--topic", topic, "--describe")
    assert p.stdout.splitlines() == [
        f"Dynamic configs for topic {topic} are:",
        "  cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete, "
        "DEFAULT_CONFIG:log.cleanup.policy=delete}",
        "  retention.ms=60000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=60000, "
        "DEFAULT_CONFIG:log.retention.ms=604800000}",
    ], p.stdout
    p = tool(tools, "kafka-configs", "--bootstrap-server", b, "--topic", topic, "--alter",
             "--delete-config", "retention.ms")
    assert p.returncode == 0, p.stdout + p.stderr
    p = tool(tools, "kafka-configs", "--bootstrap-server", b, "--topic", topic, "--describe")
    assert "retention.ms" not in p.stdout and "cleanup.policy=compact,delete" in p.stdout, p.stdout
    p = tool(tools, "kafka-configs", "--bootstrap-server", b, "--topic", topic, "--alter",
             "--add-config", "no.such.config=1")
    assert p.returncode == 1 and "Unknown topic config name: no.such.config" in p.stdout, p.stdout


def test_kafka_metadata_quorum_describe(strom, tools):
    ids = sorted(n.node_id for n in strom.nodes)
    p = tool(tools, "kafka-metadata-quorum", "--bootstrap-server", strom.bootstrap, "describe", "--status")
    assert p.returncode == 0, p.stdout + p.stderr
    fields = dict(re.fullmatch(r"(\w+):\s+(.*)", line).groups() for line in p.stdout.splitlines())
    assert list(fields) == ["ClusterId", "LeaderId", "LeaderEpoch", "HighWatermark", "MaxFollowerLag",
                            "MaxFollowerLagTimeMs", "CurrentVoters", "CurrentObservers"], p.stdout
    assert fields["ClusterId"] == AdminClient({"bootstrap.servers": strom.bootstrap}).list_topics(timeout=10).cluster_id
    assert int(fields["LeaderId"]) in ids
    assert int(fields["LeaderEpoch"]) >= 1 and int(fields["HighWatermark"]) > 0
    assert fields["CurrentVoters"] == "[" + ",".join(map(str, ids)) + "]"
    p = tool(tools, "kafka-metadata-quorum.sh", "--bootstrap-controller", strom.bootstrap, "describe",
             "--replication")
    assert p.returncode == 0, p.stdout + p.stderr
    rows = [[c.strip() for c in line.split("\t") if c.strip()] for line in p.stdout.splitlines()]
    assert rows[0] == ["NodeId", "LogEndOffset", "Lag", "LastFetchTimestamp", "LastCaughtUpTimestamp", "Status"]
    assert rows[1][5] == "Leader" and int(rows[1][0]) == int(fields["LeaderId"])
    assert sorted(int(r[0]) for r in rows[1:] if r[5] in ("Leader", "Follower")) == ids
    assert all(int(r[1]) > 0 and int(r[2]) >= 0 for r in rows[1:]), rows
    p = tool(tools, "kafka-metadata-quorum", "--bootstrap-server", strom.bootstrap, "describe")
    assert p.returncode == 1 and "--status or --replication" in p.stderr, p.stderr


def test_kafka_leader_election(strom, tools, tmp_path):
    topic = f"elect-{uuid.uuid4().hex[:6]}"
    n = len(strom.nodes)
    a = AdminClient({"bootstrap.servers": strom.bootstrap})
    from confluent_kafka.admin import NewTopic
    a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=n)])[topic].result(30)
    settle_topic(strom, topic)
    # The preferred replica leads already: nothing to do, as Kafka says it.
    p = tool(tools, "kafka-leader-election", "--bootstrap-server", strom.bootstrap, "--election-type", "preferred",
             "--topic", topic, "--partition", "0")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout == f"Valid replica already elected for partitions {topic}-0\n", p.stdout
    if n > 1:
        # Put another broker first in the replica list; a preferred election moves the leader there.
        leader = a.list_topics(topic, timeout=10).topics[topic].partitions[0].leader
        order = [leader % n + 1] + [b for b in range(1, n + 1) if b != leader % n + 1]
        r = subprocess.run([strom_binary(), "topic", "reassign", topic, "-p", "0", "--replicas",
                            ",".join(map(str, order)), "--bootstrap-server", strom.bootstrap],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        f = tmp_path / "election.json"
        f.write_text(json.dumps({"partitions": [{"topic": topic, "partition": 0}]}))

        def elected():
            p = tool(tools, "kafka-leader-election", "--bootstrap-server", strom.bootstrap, "--election-type",
                     "PREFERRED", "--path-to-json-file", str(f))
            return p if p.returncode == 0 and "Successfully" in p.stdout else None
        p = wait_until(elected, 30, interval=0.5, what="a preferred election")
        assert p.stdout == f"Successfully completed leader election (PREFERRED) for partitions {topic}-0\n"
        # The client's metadata catches up with the new leader (a broker's cache may lag a moment).
        wait_until(lambda: a.list_topics(topic, timeout=10).topics[topic].partitions[0].leader == order[0], 15,
                   interval=0.2, what=f"broker {order[0]} leading {topic}-0")
    p = tool(tools, "kafka-leader-election", "--bootstrap-server", strom.bootstrap, "--election-type", "preferred",
             "--all-topic-partitions")
    assert p.returncode == 0, p.stdout + p.stderr
    # A partition that does not exist: Kafka's error line, exit status 1.
    p = tool(tools, "kafka-leader-election", "--bootstrap-server", strom.bootstrap, "--election-type", "preferred",
             "--topic", f"{topic}-none", "--partition", "0")
    assert p.returncode == 1
    assert p.stdout.startswith(f"Error completing leader election (PREFERRED) for partition: {topic}-none-0: "), p.stdout
    p = tool(tools, "kafka-leader-election", "--bootstrap-server", strom.bootstrap, "--election-type", "preferred",
             "--topic", topic, "--partition", "0", "--all-topic-partitions")
    assert p.returncode == 1 and "One and only one" in p.stderr, p.stderr


def test_kafka_reassign_partitions_generate_execute_verify(strom, tools, tmp_path):
    topic = f"move-{uuid.uuid4().hex[:6]}"
    ids = sorted(n.node_id for n in strom.nodes)
    a = AdminClient({"bootstrap.servers": strom.bootstrap})
    from confluent_kafka.admin import NewTopic
    a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)
    settle_topic(strom, topic)
    topics = tmp_path / "topics.json"
    topics.write_text(json.dumps({"version": 1, "topics": [{"topic": topic}]}))
    target = ids[-1]
    p = tool(tools, "kafka-reassign-partitions", "--bootstrap-server", strom.bootstrap, "--generate",
             "--topics-to-move-json-file", str(topics), "--broker-list", str(target))
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "Current partition replica assignment"
    assert lines[3] == "Proposed partition reassignment configuration"
    current, proposed = json.loads(lines[1]), json.loads(lines[4])
    assert [x["partition"] for x in current["partitions"]] == [0, 1]
    assert proposed == {"version": 1, "partitions": [
        {"topic": topic, "partition": q, "replicas": [target], "log_dirs": ["any"]} for q in (0, 1)]}
    plan = tmp_path / "plan.json"
    plan.write_text(lines[4])
    p = tool(tools, "kafka-reassign-partitions.sh", "--bootstrap-server", strom.bootstrap, "--execute",
             "--reassignment-json-file", str(plan))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("Current partition replica assignment\n\n{")
    assert "Save this to use as the --reassignment-json-file option during rollback\n" in p.stdout
    assert p.stdout.endswith(f"Successfully started partition reassignments for {topic}-0,{topic}-1\n"), p.stdout

    def verified():
        p = tool(tools, "kafka-reassign-partitions", "--bootstrap-server", strom.bootstrap, "--verify",
                 "--reassignment-json-file", str(plan))
        return p if p.returncode == 0 and "still in progress" not in p.stdout else None
    p = wait_until(verified, 60, interval=0.5, what="the moves to finish")
    assert p.stdout == ("Status of partition reassignment:\n"
                        f"Reassignment of partition {topic}-0 is completed.\n"
                        f"Reassignment of partition {topic}-1 is completed.\n"), p.stdout
    md = a.list_topics(topic, timeout=10).topics[topic]
    assert all(md.partitions[q].replicas == [target] for q in (0, 1))
    p = tool(tools, "kafka-reassign-partitions", "--bootstrap-server", strom.bootstrap, "--list")
    assert p.returncode == 0 and p.stdout == "No partition reassignments found.\n", p.stdout
    p = tool(tools, "kafka-reassign-partitions", "--bootstrap-server", strom.bootstrap, "--execute")
    assert p.returncode == 1 and "--reassignment-json-file" in p.stderr, p.stderr


def test_kafka_transactions_list_describe_and_producers(strom, tools):
    from confluent_kafka import Producer
    from confluent_kafka.admin import NewTopic
    topic, tid = f"txn-{uuid.uuid4().hex[:6]}", f"tool-txn-{uuid.uuid4().hex[:6]}"
    a = AdminClient({"bootstrap.servers": strom.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=len(strom.nodes))])[topic].result(30)
    settle_topic(strom, topic)
    p = Producer({"bootstrap.servers": strom.bootstrap, "transactional.id": tid})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, value=b"open")
    assert p.flush(30) == 0

    def table(*args):
        r = tool(tools, "kafka-transactions", "--bootstrap-server", strom.bootstrap, *args)
        assert r.returncode == 0, r.stdout + r.stderr
        return [[c.strip() for c in line.split("\t") if c.strip()] for line in r.stdout.splitlines()]
    rows = table("describe", "--transactional-id", tid)
    assert rows[0] == ["CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState",
                       "TransactionTimeoutMs", "CurrentTransactionStartTimeMs", "TransactionDurationMs",
                       "TopicPartitions"]
    assert rows[1][1] == tid and rows[1][4] == "Ongoing" and rows[1][8] == f"{topic}-0", rows
    producer_id = rows[1][2]
    rows = table("describe-producers", "--topic", topic, "--partition", "0")
    assert rows[0] == ["ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp",
                       "CurrentTransactionStartOffset"]
    mine = [r for r in rows[1:] if r[0] == producer_id]
    assert mine and mine[0][5] == "0", rows
    p.commit_transaction(30)
    rows = table("list")
    assert rows[0] == ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]
    assert [r for r in rows[1:] if r[0] == tid][0][3] in ("CompleteCommit", "Empty"), rows
    rows = table("describe-producers", "--topic", topic, "--partition", "0")
    assert [r for r in rows[1:] if r[0] == producer_id][0][5] == "None", rows


def test_kafka_transactions_find_hanging_and_abort(strom, tools):
    """An open transaction its coordinator holds is not hanging; `abort --start-offset`
    ends it on the partition (the last stable offset moves past it and a read_committed
    consumer never sees its records), and a second abort finds nothing open."""
    import time
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import NewTopic
    topic, tid = f"hang-{uuid.uuid4().hex[:6]}", f"hang-txn-{uuid.uuid4().hex[:6]}"
    b = strom.bootstrap
    a = AdminClient({"bootstrap.servers": b})
    a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=len(strom.nodes))])[topic].result(30)
    settle_topic(strom, topic)
    p = Producer({"bootstrap.servers": b, "transactional.id": tid})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=f"open-{i}".encode(), partition=0)
    assert p.flush(30) == 0

    def run(*args):
        return tool(tools, "kafka-transactions", "--bootstrap-server", b, *args)

    def rows(out):
        return [[c.strip() for c in line.split("\t") if c.strip()] for line in out.splitlines()]
    header = ["Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch", "StartOffset",
              "LastTimestamp", "Duration(min)"]
    r = run("find-hanging", "--topic", topic, "--max-transaction-timeout", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert rows(r.stdout) == [header], r.stdout  # open, but its coordinator will end it
    r = run("find-hanging", "--broker-id", str(strom.nodes[0].node_id))
    assert r.returncode == 0 and rows(r.stdout) == [header], r.stdout + r.stderr  # 15 minutes by default
    r = run("find-hanging")
    assert r.returncode == 1 and "requires either --topic or --broker-id" in r.stderr, r.stderr

    r = run("abort", "--topic", topic, "--partition", "0", "--start-offset", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    pd = rows(run("describe-producers", "--topic", topic, "--partition", "0").stdout)
    assert all(row[5] == "None" for row in pd[1:]), pd
    r = run("abort", "--topic", topic, "--partition", "0", "--start-offset", "0")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"Could not find any open transactions starting at offset 0 on partition {topic}-0" in r.stderr
    r = run("abort", "--topic", topic, "--partition", "0")
    assert r.returncode == 1 and "--start-offset" in r.stderr, r.stderr
    # The producer's own commit still completes; its records stay aborted on partition 0
    # and later records are read.
    p.commit_transaction(30)
    p.begin_transaction()
    p.produce(topic, value=b"after", partition=0)
    p.commit_transaction(30)
    c = Consumer({"bootstrap.servers": b, "group.id": f"rc-{uuid.uuid4().hex[:6]}",
                  "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and b"after" not in got:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
    c.close()
    assert got == [b"after"], got  # without the abort the commit would have shown open-0..2


def test_kafka_perf_tests(strom, tools):
    import time
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import NewTopic
    topic = f"perf-{uuid.uuid4().hex[:6]}"
    a = AdminClient({"bootstrap.servers": strom.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=len(strom.nodes))])[topic].result(30)
    settle_topic(strom, topic)
    p = tool(tools, "kafka-producer-perf-test", "--topic", topic, "--num-records", "5000", "--record-size", "100",
             "--throughput", "-1", "--producer-props", f"bootstrap.servers={strom.bootstrap}", "acks=all")
    assert p.returncode == 0, p.stdout + p.stderr
    last = p.stdout.splitlines()[-1]
    assert re.fullmatch(r"5000 records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg latency, "
                        r"[\d.]+ ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, \d+ ms 99\.9th\.", last), last
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": "probe"})
    ends = [c.get_watermark_offsets(TopicPartition(topic, q), timeout=10)[1] for q in range(3)]
    c.close()
    assert sum(ends) == 5000, ends
    # --throughput paces: 300 records at 100 a second take at least 2 s (Kafka's throttle).
    t0 = time.monotonic()
    p = tool(tools, "kafka-producer-perf-test.sh", "--topic", topic, "--num-records", "300", "--record-size", "1000",
             "--throughput", "100", "--bootstrap-server", strom.bootstrap)
    assert p.returncode == 0, p.stdout + p.stderr
    assert time.monotonic() - t0 >= 2.0
    group = f"perf-{uuid.uuid4().hex[:6]}"
    p = tool(tools, "kafka-consumer-perf-test", "--bootstrap-server", strom.bootstrap, "--topic", topic,
             "--messages", "5300", "--timeout", "20000", "--group", group)
    assert p.returncode == 0, p.stdout + p.stderr
    header, line = p.stdout.splitlines()
    assert header == ("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
                      "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
    cols = line.split(", ")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}", cols[0]), cols
    assert cols[4] == "5300" and cols[2] == f"{(5000 * 100 + 300 * 1000) / 1048576:.4f}", cols
    # It consumed as a member of the group: joining took time apart from fetching, and
    # on leaving it committed everything it read.
    assert int(cols[6]) >= 0 and int(cols[7]) > 0, cols
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": group})
    offs = c.committed([TopicPartition(topic, q) for q in range(3)], timeout=10)
    c.close()
    assert sum(tp.offset for tp in offs) == 5300, offs

    # Transactions: 2,000 records at 2,000 a second, a commit every 200 ms; a
    # read_committed consumer reads them all, and each commit left a marker in each
    # partition (at least two transactions, so at least 6 markers over 3 partitions).
    txn_topic, tid = f"perf-txn-{uuid.uuid4().hex[:6]}", f"perf-tx-{uuid.uuid4().hex[:6]}"
    a.create_topics([NewTopic(txn_topic, num_partitions=3, replication_factor=len(strom.nodes))])[txn_topic].result(30)
    settle_topic(strom, txn_topic)
    p = tool(tools, "kafka-producer-perf-test", "--topic", txn_topic, "--num-records", "2000", "--record-size", "50",
             "--throughput", "2000", "--transactional-id", tid, "--transaction-duration-ms", "200",
             "--producer-props", f"bootstrap.servers={strom.bootstrap}")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-1].startswith("2000 records sent"), p.stdout
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": f"rc-{uuid.uuid4().hex[:6]}",
                  "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(txn_topic, q, 0) for q in range(3)])
    n, deadline = 0, time.monotonic() + 30
    while n < 2000 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            n += 1
    ends = [c.get_watermark_offsets(TopicPartition(txn_topic, q), timeout=10)[1] for q in range(3)]
    c.close()
    assert n == 2000, n
    assert sum(ends) - 2000 >= 6, ends
    r = tool(tools, "kafka-transactions", "--bootstrap-server", strom.bootstrap, "describe", "--transactional-id", tid)
    assert r.returncode == 0 and "CompleteCommit" in r.stdout, r.stdout + r.stderr


def test_kafka_configs_entity_default_for_brokers(strom, tools):
    """--entity-type brokers --entity-default: the cluster-wide dynamic default (set to
    its default value here, so the module's other tests see no change)."""
    b = strom.bootstrap
    p = tool(tools, "kafka-configs", "--bootstrap-server", b, "--entity-type", "brokers", "--entity-default",
             "--alter", "--add-config", "log.retention.bytes=-1")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout == "Completed updating default config for brokers in the cluster.\n", p.stdout
    p = tool(tools, "kafka-configs", "--bootstrap-server", b, "--entity-type", "brokers", "--entity-default",
             "--describe")
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "Default configs for brokers in the cluster are:", p.stdout
    assert any(line.startswith("  log.retention.bytes=-1 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:"
                               "log.retention.bytes=-1") for line in lines[1:]), p.stdout
    # Each broker sees it as a cluster-wide default.
    for n in strom.nodes:
        p = tool(tools, "kafka-configs", "--bootstrap-server", b, "--broker", str(n.node_id), "--describe", "--all")
        assert any(line.startswith("  log.retention.bytes=-1") and "DYNAMIC_DEFAULT_BROKER_CONFIG" in line
                   for line in p.stdout.splitlines()), p.stdout
    p = tool(tools, "kafka-configs", "--bootstrap-server", b, "--entity-type", "brokers", "--entity-default",
             "--alter", "--delete-config", "log.retention.bytes")
    assert p.returncode == 0, p.stdout + p.stderr
    p = tool(tools, "kafka-configs", "--bootstrap-server", b, "--entity-type", "brokers", "--entity-default",
             "--describe")
    assert "log.retention.bytes" not in p.stdout, p.stdout
    p = tool(tools, "kafka-configs", "--bootstrap-server", b, "--entity-type", "topics", "--entity-default",
             "--describe")
    assert p.returncode == 1 and "--entity-default is not valid for --entity-type topics" in p.stderr, p.stderr
    p = tool(tools, "kafka-configs", "--bootstrap-server", b, "--entity-type", "clients", "--entity-default",
             "--describe")
    assert p.returncode == 1 and "no client quotas" in p.stderr, p.stderr


def test_kafka_configs_for_a_consumer_group(strom, tools):
    """KIP-848 group configs through `kafka-configs --entity-type groups` (Kafka 4.0)."""
    b, group = strom.bootstrap, f"cfg-{uuid.uuid4().hex[:6]}"
    p = tool(tools, "kafka-configs", "--bootstrap-server", b, "--entity-type", "groups", "--entity-name", group,
             "--alter", "--add-config", "consumer.session.timeout.ms=50000")
    assert p.returncode == 0 and p.stdout == f"Completed updating config for group {group}.\n", p.stdout + p.stderr
    p = tool(tools, "kafka-configs", "--bootstrap-server", b, "--entity-type", "groups", "--entity-name", group,
             "--describe")
    assert p.stdout.splitlines() == [
        f"Dynamic configs for group {group} are:",
        "  consumer.session.timeout.ms=50000 sensitive=false synonyms={GROUP_CONFIG:consumer.session.timeout.ms=50000}",
    ], p.stdout
    p = tool(tools, "kafka-configs", "--bootstrap-server", b, "--entity-type", "groups", "--entity-name", group,
             "--alter", "--add-config", "consumer.session.timeout.ms=1")
    assert p.returncode == 1, p.stdout + p.stderr  # below the broker's minimum: refused
