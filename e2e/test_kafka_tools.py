"""Kafka's command-line tools by name (broker/src/cli/kafka): `strom install-tools DIR`
links `kafka-topics` and `kafka-topics.sh` to strom, and the tutorials' commands run
through the links with Kafka's flags and output — seed 004's
`kafka-topics --bootstrap-server localhost:9092 --create --topic my_topic --partitions 3
--replication-factor 1` and seed 001's `--create --if-not-exists`, with this test's
broker address in place of localhost:9092.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

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
        assert re.fullmatch(rf"\tTopic: {topic}\tPartition: {i}\tLeader: \d+\tReplicas: \d+\tIsr: \d+", line), line


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
    p = tool(tools, "kafka-console-consumer", "--bootstrap-server", b, "--topic", topic, "--group", "g")
    assert p.returncode == 1 and "--group is not supported" in p.stderr, p.stderr


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
