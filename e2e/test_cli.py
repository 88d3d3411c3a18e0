"""The `strom` command-line tools against the module's strom target (one node, or with
E2E_NODES=3 a 3-node cluster): `strom topic create|list|describe|alter-config|delete`,
`strom produce`, `strom consume`, `strom cluster describe`, every `--help`, and the
error paths (exit code 1 for a failed operation with the Kafka error named on stderr,
2 for bad usage, as broker/src/cli/mod.rs promises).

Every result is checked against what real clients see: confluent-kafka's AdminClient
(metadata, topic ids, configs), confluent-kafka and kafka-python consumers reading what
`strom produce` wrote, and `strom consume` printing what they produced.

Output formats the tests parse (broker/src/cli/topic.rs, consume.rs):
* `topic describe`: per topic a line
  `Topic: <name>\\tTopicId: <uuid>\\tPartitionCount: <n>\\tReplicationFactor: <rf>\\tConfigs: k=v,...`
  (only configs set on the topic), then a table PARTITION LEADER EPOCH REPLICAS ISR OFFLINE.
* `consume --print-offset --print-key --print-headers`:
  `<partition>:<offset>@<timestamp>\\t<key>\\t<value>\\t<hk>=<hv>...` (`null` for a null key).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition
from kafka.partitioner.default import murmur2

from e2e_util import RF_TOO_LARGE, settled, wait_until
from strom_harness import free_port, parse_cluster_describe, strom_binary

CLI_TIMEOUT = 60
DEFAULT_RETENTION_MS = "604800000"
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


# ------------------------------------------------------------------ running the CLI


def cli_env(extra: dict | None = None) -> dict:
    """The test's environment without the suite's STROM_* variables (the CLI reads
    STROM_BOOTSTRAP as its default bootstrap), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_")}
    env.update(extra or {})
    return env


def strom_cli(*args, input: str | None = None, timeout: float = CLI_TIMEOUT,
              env: dict | None = None) -> subprocess.CompletedProcess:
    """`$STROM_BIN <args>` with text stdin/stdout/stderr."""
    return subprocess.run([strom_binary(), *map(str, args)], input=input,
                          stdin=subprocess.DEVNULL if input is None else None,
                          capture_output=True, text=True, timeout=timeout, env=cli_env(env))


def show(p: subprocess.CompletedProcess) -> str:
    return (f"`strom {' '.join(map(str, p.args[1:]))}` exited {p.returncode}\n"
            f"--- stdout:\n{p.stdout[-3000:]}\n--- stderr:\n{p.stderr[-3000:]}")


def ok(p: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert p.returncode == 0, show(p)
    assert "panicked" not in p.stderr, show(p)
    return p


def fails(p: subprocess.CompletedProcess, code: int, *needles: str) -> subprocess.CompletedProcess:
    """The command exited `code` (1: a failed operation, 2: bad usage) with a readable
    message naming every needle on stderr (and no panic)."""
    assert p.returncode == code, f"expected exit code {code}\n{show(p)}"
    assert "panicked" not in p.stderr and "RUST_BACKTRACE" not in p.stderr, show(p)
    for n in needles:
        assert n in p.stderr, f"{n!r} missing from stderr\n{show(p)}"
    return p


class Cli:
    """`strom <command> -b <bootstrap> <rest...>`."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap

    def __call__(self, command: str, *rest, **kw) -> subprocess.CompletedProcess:
        return strom_cli(command, "-b", self.bootstrap, *rest, **kw)

    def topic(self, *rest, **kw) -> subprocess.CompletedProcess:
        return self("topic", *rest, **kw)

    def produce(self, topic: str, lines: list[str], *flags, **kw) -> subprocess.CompletedProcess:
        return self("produce", "-t", topic, *flags, input="".join(f"{line}\n" for line in lines), **kw)

    def consume(self, topic: str, *flags, **kw) -> subprocess.CompletedProcess:
        return self("consume", "-t", topic, *flags, **kw)


@pytest.fixture(scope="module")
def cli(strom) -> Cli:
    return Cli(strom.bootstrap)


# ------------------------------------------------------------------ parsing its output


def parse_topic_describe(text: str) -> dict:
    """{name: {"topic_id", "partition_count", "rf", "configs": {k: v},
               "partitions": {index: {"leader", "epoch", "replicas", "isr", "offline"}}}}"""
    topics: dict = {}
    cur = None
    cols = None
    for line in text.splitlines():
        if line.startswith("Topic: "):
            fields = {}
            for f in line.split("\t"):
                k, _, v = f.partition(":")
                fields[k.strip()] = v.strip()
            configs = {}
            if fields["Configs"]:
                # A value may hold commas (cleanup.policy=compact,delete): split only
                # before the next "key=".
                for kv in re.split(r",(?=[a-z0-9._-]+=)", fields["Configs"]):
                    k, _, v = kv.partition("=")
                    configs[k] = v
            cur = {"topic_id": fields["TopicId"], "partition_count": int(fields["PartitionCount"]),
                   "rf": int(fields["ReplicationFactor"]), "configs": configs, "partitions": {}}
            topics[fields["Topic"]] = cur
            cols = None
        elif line.startswith("PARTITION"):
            cols = [(m.group(), m.start()) for m in re.finditer(r"\S+", line)]
        elif line.strip() and cur is not None and cols:
            cells = {}
            for i, (name, start) in enumerate(cols):
                end = cols[i + 1][1] if i + 1 < len(cols) else None
                cells[name] = line[start:end].strip()

            def ids(s):
                return [int(x) for x in s.split(",") if x]
            cur["partitions"][int(cells["PARTITION"])] = {
                "leader": int(cells["LEADER"]), "epoch": int(cells["EPOCH"]), "replicas": ids(cells["REPLICAS"]),
                "isr": ids(cells["ISR"]), "offline": ids(cells["OFFLINE"])}
        elif not line.strip():
            cols = None
    return topics


CONSUMED = re.compile(r"^(?P<p>\d+):(?P<o>\d+)@(?P<ts>-?\d+)\t(?P<rest>.*)$")


def parse_consumed(text: str, key: bool = True, headers: bool = True) -> list[dict]:
    """Lines of `consume --print-offset [--print-key] [--print-headers]`."""
    out = []
    for line in text.splitlines():
        m = CONSUMED.match(line)
        assert m, f"unexpected consume output line {line!r}"
        rest = m.group("rest").split("\t")
        rec = {"partition": int(m.group("p")), "offset": int(m.group("o")), "timestamp": int(m.group("ts"))}
        if key:
            rec["key"] = rest.pop(0)
        rec["value"] = rest.pop(0)
        if headers:
            rec["headers"] = [tuple(h.split("=", 1)) for h in rest]
        out.append(rec)
    return out


# ------------------------------------------------------------------ real clients


@pytest.fixture(scope="module")
def admin(strom) -> AdminClient:
    return AdminClient({"bootstrap.servers": strom.bootstrap})


def client_topics(admin: AdminClient) -> dict:
    """{name: {index: (leader, replicas, isr)}} as confluent-kafka's metadata shows them."""
    md = admin.list_topics(timeout=15)
    return {name: {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in t.partitions.values()}
            for name, t in md.topics.items() if t.error is None}


def broker_ids(admin: AdminClient) -> list[int]:
    return sorted(admin.list_topics(timeout=15).brokers)


def wait_topic(admin: AdminClient, name: str, partitions: int) -> dict:
    """Waits until the client's metadata shows `name` with `partitions` led partitions."""
    def ready():
        t = client_topics(admin).get(name)
        return t if t is not None and sorted(t) == list(range(partitions)) and \
            all(v[0] >= 0 for v in t.values()) else None
    return wait_until(ready, 20, what=f"{name} with {partitions} led partitions in the client's metadata")


def wait_gone(admin: AdminClient, name: str):
    wait_until(lambda: name not in client_topics(admin), 20, what=f"{name} gone from the client's metadata")


def client_uuid(u) -> str:
    """confluent-kafka's Uuid (printed in Kafka's base64 form) as a canonical UUID string."""
    mask = (1 << 64) - 1
    return str(uuid.UUID(int=((u.get_most_significant_bits() & mask) << 64) | (u.get_least_significant_bits() & mask)))


def topic_configs(admin: AdminClient, name: str, until=None) -> dict:
    """The topic's configs (with `until`: once it holds, see e2e_util.settled)."""
    res = ConfigResource(ResourceType.TOPIC, name)
    return settled(lambda: admin.describe_configs([res])[res].result(timeout=30), until)


def confluent_consumer(bootstrap: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": f"e2e-unused-{uuid.uuid4().hex[:8]}",
                     "enable.auto.commit": False, "enable.auto.offset.store": False, "check.crcs": True})


def confluent_read(bootstrap: str, topic: str, partitions: list[int], expected: int, timeout: float = 30) -> list[dict]:
    """Every record of the partitions (there must be exactly `expected`), with
    confluent-kafka, in (partition, offset) order."""
    c = confluent_consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < expected:
            assert time.monotonic() < deadline, f"confluent read {len(got)} of {expected} records of {topic}"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                continue
            got.append({"partition": m.partition(), "offset": m.offset(), "timestamp": m.timestamp()[1],
                        "key": m.key(), "value": m.value(), "headers": list(m.headers() or [])})
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        assert sum(ends.values()) == expected, f"{topic} holds {ends} records per partition, expected {expected} in all"
        return sorted(got, key=lambda r: (r["partition"], r["offset"]))
    finally:
        c.close()


def kafka_python_read(bootstrap: str, topic: str, partition: int, expected: int, timeout: float = 30) -> list:
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest")
    try:
        tp = KTopicPartition(topic, partition)
        c.assign([tp])
        c.seek_to_beginning(tp)
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < expected:
            assert time.monotonic() < deadline, f"kafka-python read {len(got)} of {expected} records of {topic}"
            for recs in c.poll(timeout_ms=500).values():
                got.extend(recs)
        assert c.end_offsets([tp])[tp] == expected
        return got
    finally:
        c.close()


def confluent_produce(bootstrap: str, topic: str, records: list[dict]) -> list:
    """records: dicts of Producer.produce keyword arguments; -> delivered messages in order."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    out: list = [None] * len(records)

    def cb(i):
        def done(err, msg):
            out[i] = err if err is not None else msg
        return done
    for i, r in enumerate(records):
        p.produce(topic, on_delivery=cb(i), **r)
    assert p.flush(30) == 0
    errors = [m for m in out if isinstance(m, KafkaError)]
    assert not errors, errors
    return out


# ------------------------------------------------------------------ --help and usage


def help_tree() -> list[list[str]]:
    """Every command path, found by walking the `Commands:` sections of `--help`."""
    paths, todo = [], [[]]
    while todo:
        path = todo.pop(0)
        paths.append(path)
        text = ok(strom_cli(*path, "--help")).stdout
        section = re.search(r"^Commands:\n((?:  .*\n)+)", text, re.M)
        if section:
            for line in section.group(1).splitlines():
                name = line.split()[0]
                if name != "help":
                    todo.append(path + [name])
    return paths


# What the walk must find at least (so a broken walk cannot pass vacuously).
KNOWN_COMMANDS = [[], ["node"], ["dev"], ["topic"], ["topic", "create"], ["topic", "list"], ["topic", "describe"],
                  ["topic", "delete"], ["topic", "alter-config"], ["produce"], ["consume"], ["cluster"],
                  ["cluster", "describe"], ["group"], ["bench"], ["health"], ["chaos"]]
# Commands that do not take --bootstrap-server: they run nodes, ask one node's admin
# listener (health), or start or name their own cluster (chaos: --bootstrap for compose).
LOCAL_COMMANDS = [[], ["node"], ["dev"], ["install-tools"], ["health"], ["chaos"]]


def test_help_of_every_subcommand():
    paths = help_tree()
    for known in KNOWN_COMMANDS:
        assert known in paths, f"`strom {' '.join(known)}` missing from the --help tree {paths}"
    for path in paths:
        name = " ".join(["strom", *path])
        for flag in ("--help", "-h"):
            p = ok(strom_cli(*path, flag))
            assert p.stderr == "", show(p)
            assert re.search(rf"^Usage: {re.escape(name)}( |$)", p.stdout, re.M), show(p)
            assert "Options:" in p.stdout, show(p)
        if path not in LOCAL_COMMANDS:
            assert "--bootstrap-server" in p.stdout, show(p)
        if path:  # `strom help <path>` prints the same text as `strom <path> --help`
            h = ok(strom_cli("help", *path))
            assert h.stdout == ok(strom_cli(*path, "--help")).stdout, show(h)
    for path, flags in [(["topic", "create"], ["--partitions", "--replication-factor", "--config", "--validate-only"]),
                        (["topic", "alter-config"], ["--set", "--delete"]),
                        (["topic", "list"], ["--internal"]),
                        (["produce"], ["--topic", "--partition", "--key-separator", "--header", "--acks",
                                       "--compression", "--idempotent", "--batch"]),
                        (["consume"], ["--topic", "--partition", "--from-beginning", "--offset", "--from-timestamp",
                                       "--max-messages", "--timeout-ms", "--print-key", "--print-offset",
                                       "--print-headers"]),
                        (["dev"], ["--nodes", "--base-port", "--data-dir", "--set"])]:
        text = ok(strom_cli(*path, "--help")).stdout
        for f in flags:
            assert f in text, f"`strom {' '.join(path)} --help` does not mention {f}:\n{text}"


def test_version():
    p = ok(strom_cli("--version"))
    assert re.fullmatch(r"strom \d+\.\d+\.\d+\S*\n", p.stdout), show(p)


@pytest.mark.parametrize("args, needle", [
    ([], "Usage: strom <COMMAND>"),
    (["bogus"], "unrecognized subcommand 'bogus'"),
    (["topic"], "Usage: strom topic"),
    (["topic", "create"], "<NAME>"),
    (["topic", "delete"], "<NAMES>"),
    (["topic", "create", "x", "--partitions", "abc"], "invalid value 'abc' for '--partitions"),
    (["produce"], "--topic <TOPIC>"),
    (["consume", "-t", "x", "--from-beginning", "--offset", "3"], "cannot be used with"),
    (["consume", "-t", "x", "--no-such-flag"], "unexpected argument '--no-such-flag'"),
], ids=lambda v: "_".join(v) if isinstance(v, list) else None)
def test_usage_errors_exit_2(args, needle):
    """Bad usage is refused by the argument parser, before any connection (no broker
    is named: none is needed)."""
    fails(strom_cli(*args), 2, needle)


# ------------------------------------------------------------------ topic admin


def test_topic_create_with_partitions_and_configs(cli, admin, new_topic):
    name = new_topic()
    p = ok(cli.topic("create", name, "--partitions", 3, "--config", "retention.ms=3600000",
                     "--config", "cleanup.policy=compact"))
    m = re.fullmatch(rf"created topic {re.escape(name)} \(3 partitions, replication factor 1, id ({UUID_RE})\)\n",
                     p.stdout)
    assert m, show(p)
    parts = wait_topic(admin, name, 3)
    assert all(len(replicas) == 1 for _, replicas, _ in parts.values()), parts

    desc = admin.describe_topics(TopicCollection([name]))[name].result(timeout=30)
    assert client_uuid(desc.topic_id) == m.group(1), "the CLI prints the topic id clients see"
    cfg = topic_configs(admin, name)
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == \
        ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert (cfg["cleanup.policy"].value, cfg["cleanup.policy"].source) == \
        ("compact", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert cfg["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value

    assert name in ok(cli.topic("list")).stdout.splitlines()
    d = parse_topic_describe(ok(cli.topic("describe", name)).stdout)
    assert set(d) == {name}
    assert d[name]["topic_id"] == m.group(1), "describe and create name the same topic id"
    assert d[name]["partition_count"] == 3 and sorted(d[name]["partitions"]) == [0, 1, 2]
    assert d[name]["rf"] == 1
    assert d[name]["configs"] == {"retention.ms": "3600000", "cleanup.policy": "compact"}, \
        "describe lists exactly the configs set on the topic"


def test_topic_create_defaults(cli, admin, strom, new_topic):
    """Without --partitions/--replication-factor the broker's defaults apply (the
    harness's num.partitions = 1, strom's default.replication.factor = 1)."""
    name = new_topic()
    p = ok(cli.topic("create", name))
    assert p.stdout.startswith(f"created topic {name} ("), show(p)
    parts = wait_topic(admin, name, 1) if not strom.is_external else client_topics(admin)[name]
    m = re.search(r"\((\d+) partitions, replication factor (\d+),", p.stdout)
    assert int(m.group(1)) == len(parts)
    assert int(m.group(2)) == len(parts[0][1])
    d = parse_topic_describe(ok(cli.topic("describe", name)).stdout)[name]
    assert d["configs"] == {}, "no config set on the topic"


def test_topic_replication_factor(cli, admin, new_topic):
    """-r <number of brokers>: every partition lists every broker as replica and in its
    ISR, leaders spread over the brokers; a factor larger than the brokers is refused."""
    brokers = broker_ids(admin)
    rf = len(brokers)
    name = new_topic(f"rf{rf}")
    p = ok(cli.topic("create", name, "-p", 2 * rf, "-r", rf))
    assert f"({2 * rf} partitions, replication factor {rf}," in p.stdout, show(p)
    parts = wait_topic(admin, name, 2 * rf)
    d = parse_topic_describe(ok(cli.topic("describe", name)).stdout)[name]
    assert d["rf"] == rf and d["partition_count"] == 2 * rf
    for i, row in d["partitions"].items():
        assert sorted(row["replicas"]) == brokers, (i, row)
        assert sorted(row["isr"]) == brokers, (i, row)
        assert row["leader"] in brokers and row["offline"] == [], (i, row)
        assert (row["leader"], row["replicas"], row["isr"]) == parts[i], \
            f"partition {i}: describe shows {row}, confluent's metadata {parts[i]}"
    assert {row["leader"] for row in d["partitions"].values()} == set(brokers), \
        f"leaders not spread over the brokers {brokers}: {d['partitions']}"

    too_many = new_topic("too-many")
    fails(cli.topic("create", too_many, "-r", RF_TOO_LARGE), 1, "INVALID_REPLICATION_FACTOR", too_many)
    fails(cli.topic("create", too_many, "--replication-factor=0"), 1, "INVALID_REPLICATION_FACTOR")
    assert too_many not in client_topics(admin)


def test_topic_describe_matches_client_metadata(cli, admin, strom, new_topic):
    """RF-1 topics: the LEADER/REPLICAS/ISR columns equal confluent's metadata, leaders
    spread over every node; several names and no name at all describe several topics."""
    brokers = broker_ids(admin)
    a, b = new_topic("a"), new_topic("b")
    ok(cli.topic("create", a, "-p", 6, "-r", 1))
    ok(cli.topic("create", b, "-p", 2, "--config", "max.message.bytes=200000"))
    pa, pb = wait_topic(admin, a, 6), wait_topic(admin, b, 2)
    for names in ([a, b], []):
        d = parse_topic_describe(ok(cli.topic("describe", *names)).stdout)
        assert {a, b} <= set(d), d.keys()
        for name, parts in ((a, pa), (b, pb)):
            rows = d[name]["partitions"]
            assert sorted(rows) == sorted(parts)
            for i, row in rows.items():
                assert (row["leader"], row["replicas"], row["isr"]) == parts[i], (name, i, row, parts[i])
                assert row["replicas"] == [row["leader"]] and row["epoch"] >= 0, (name, i, row)
        assert d[b]["configs"] == {"max.message.bytes": "200000"}
    leaders = {row["leader"] for row in parse_topic_describe(ok(cli.topic("describe", a)).stdout)[a]["partitions"].values()}
    assert leaders == set(brokers), f"6 partitions should have leaders on every broker {brokers}, got {leaders}"
    if not strom.is_external:
        assert set(brokers) == set(strom.node_ids)


def test_topic_list(cli, admin, new_topic):
    names = sorted(new_topic(s) for s in ("x", "y"))
    for n in names:
        ok(cli.topic("create", n))
        wait_topic(admin, n, 1)
    listed = ok(cli.topic("list")).stdout.splitlines()
    assert set(names) <= set(listed), listed
    assert len(listed) == len(set(listed)), f"a topic listed twice: {listed}"
    assert not [t for t in listed if t.startswith("__")], f"internal topics listed without --internal: {listed}"
    client_view = {t for t in client_topics(admin) if not t.startswith("__")}
    assert set(listed) == client_view, "strom topic list and confluent's metadata disagree"
    with_internal = ok(cli.topic("list", "--internal")).stdout.splitlines()
    assert set(listed) <= set(with_internal)
    assert set(with_internal) - set(listed) == {t for t in client_topics(admin) if t.startswith("__")}


def test_topic_alter_config(cli, admin, new_topic):
    name = new_topic()
    ok(cli.topic("create", name, "--config", "retention.ms=3600000", "--config", "cleanup.policy=compact"))
    wait_topic(admin, name, 1)

    p = ok(cli.topic("alter-config", name, "--set", "retention.ms=7200000", "--set", "max.message.bytes=300000",
                     "--delete", "cleanup.policy"))
    assert p.stdout == f"altered configs of topic {name}\n", show(p)
    cfg = topic_configs(admin, name, until=lambda c: c["max.message.bytes"].value == "300000")
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == ("7200000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert (cfg["max.message.bytes"].value, cfg["max.message.bytes"].source) == \
        ("300000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert (cfg["cleanup.policy"].value, cfg["cleanup.policy"].source) == ("delete", ConfigSource.DEFAULT_CONFIG.value), \
        "--delete goes back to the default"
    d = parse_topic_describe(ok(cli.topic("describe", name)).stdout)[name]
    assert d["configs"] == {"retention.ms": "7200000", "max.message.bytes": "300000"}

    ok(cli.topic("alter-config", name, "--delete", "retention.ms"))
    assert topic_configs(admin, name, until=lambda c: c["retention.ms"].value == DEFAULT_RETENTION_MS)[
        "retention.ms"].value == DEFAULT_RETENTION_MS

    # Errors: nothing changes.
    fails(cli.topic("alter-config", name, "--set", "no.such.config=1"), 1, "INVALID_CONFIG", "no.such.config")
    fails(cli.topic("alter-config", name, "--set", "retention.ms=soon"), 1, "INVALID_CONFIG", "retention.ms")
    fails(cli.topic("alter-config", name, "--set", "retention.ms"), 2, "expected KEY=VALUE")
    fails(cli.topic("alter-config", name), 2, "nothing to change")
    cfg = topic_configs(admin, name)
    assert cfg["retention.ms"].value == DEFAULT_RETENTION_MS
    assert "no.such.config" not in cfg
    assert parse_topic_describe(ok(cli.topic("describe", name)).stdout)[name]["configs"] == \
        {"max.message.bytes": "300000"}

    unknown = new_topic("unknown")
    fails(cli.topic("alter-config", unknown, "--set", "retention.ms=1000"), 1, "UNKNOWN_TOPIC_OR_PARTITION")


def test_topic_delete(cli, admin, new_topic):
    a, b, c = new_topic("a"), new_topic("b"), new_topic("c")
    for n in (a, b, c):
        ok(cli.topic("create", n, "-p", 2))
        wait_topic(admin, n, 2)
    p = ok(cli.topic("delete", a, b))
    assert p.stdout.splitlines() == [f"deleted topic {a}", f"deleted topic {b}"], show(p)
    wait_gone(admin, a)
    wait_gone(admin, b)
    assert c in client_topics(admin)
    listed = ok(cli.topic("list")).stdout.splitlines()
    assert a not in listed and b not in listed and c in listed

    # A name given twice is deleted once.
    d = new_topic("twice")
    ok(cli.topic("create", d, "-p", 1))
    wait_topic(admin, d, 1)
    p = ok(cli.topic("delete", d, d))
    assert p.stdout.splitlines() == [f"deleted topic {d}"], show(p)
    wait_gone(admin, d)

    # Deleting it again, or an unknown topic, fails and names it.
    fails(cli.topic("delete", a), 1, "UNKNOWN_TOPIC_OR_PARTITION", a)
    fails(cli.topic("describe", a), 1, f"{a}: UNKNOWN_TOPIC_OR_PARTITION")
    # A known and an unknown one: the known one is deleted, the exit code says one failed.
    unknown = new_topic("unknown")
    p = fails(cli.topic("delete", c, unknown), 1, unknown, "UNKNOWN_TOPIC_OR_PARTITION")
    assert f"deleted topic {c}" in p.stdout, show(p)
    wait_gone(admin, c)

    # The name can be used again: a new topic (new id), empty.
    p = ok(cli.topic("create", a, "-p", 1))
    wait_topic(admin, a, 1)
    assert confluent_read(cli.bootstrap, a, [0], 0) == []


def test_topic_create_errors(cli, admin, new_topic):
    existing = new_topic("existing")
    ok(cli.topic("create", existing, "-p", 2, "--config", "retention.ms=3600000"))
    wait_topic(admin, existing, 2)
    fails(cli.topic("create", existing, "-p", 5, "--config", "retention.ms=1000"), 1, "TOPIC_ALREADY_EXISTS", existing)
    assert sorted(client_topics(admin)[existing]) == [0, 1], "the existing topic keeps its partitions"
    assert topic_configs(admin, existing)["retention.ms"].value == "3600000", "and its configs"

    cases = [
        (["--config", "no.such.config=1"], 1, ["INVALID_CONFIG", "no.such.config"]),
        (["--config", "retention.ms=forever"], 1, ["INVALID_CONFIG", "retention.ms"]),
        (["--config", "cleanup.policy=shred"], 1, ["INVALID_CONFIG", "cleanup.policy"]),
        (["--config", "retention.ms"], 2, ["expected KEY=VALUE"]),
        (["--config", "retention.ms=1000", "--config", "retention.ms=2000"], 2, ["--config retention.ms: given twice"]),
        (["--partitions", "0"], 1, ["INVALID_PARTITIONS"]),
        (["--partitions=-5"], 1, ["INVALID_PARTITIONS"]),
        (["--partitions", "many"], 2, ["invalid value 'many'"]),
        (["--partitions", "99999999999"], 2, ["--partitions"]),
    ]
    tried = []
    for i, (flags, code, needles) in enumerate(cases):
        name = new_topic(f"bad{i}")
        tried.append(name)
        p = fails(cli.topic("create", name, *flags), code, *needles)
        assert p.stdout == "", show(p)
    for bad_name, needle in [("bad name!", "INVALID_TOPIC_EXCEPTION"), ("x" * 250, "INVALID_TOPIC_EXCEPTION"),
                             ("..", "INVALID_TOPIC_EXCEPTION")]:
        tried.append(bad_name)
        fails(cli.topic("create", bad_name), 1, needle)
    time.sleep(0.5)
    assert not set(tried) & set(client_topics(admin)), "a refused create left a topic behind"

    # --validate-only: valid request, nothing created; an invalid one is still refused.
    name = new_topic("validate")
    p = ok(cli.topic("create", name, "-p", 3, "--validate-only"))
    assert p.stdout == f"topic {name} is valid (not created)\n", show(p)
    fails(cli.topic("create", name, "--config", "retention.ms=x", "--validate-only"), 1, "INVALID_CONFIG")
    time.sleep(0.5)
    assert name not in client_topics(admin)


def test_describe_unknown_topic(cli, admin, new_topic):
    known, unknown = new_topic("known"), new_topic("unknown")
    ok(cli.topic("create", known))
    wait_topic(admin, known, 1)
    p = fails(cli.topic("describe", unknown), 1, f"{unknown}: UNKNOWN_TOPIC_OR_PARTITION")
    assert p.stdout == "", show(p)
    p = fails(cli.topic("describe", known, unknown), 1, f"{unknown}: UNKNOWN_TOPIC_OR_PARTITION")
    assert set(parse_topic_describe(p.stdout)) == {known}, "the known topic is still described"
    assert unknown not in client_topics(admin), "describe must not auto-create the topic"


def test_create_absurd_partition_count_fails_fast(strom_factory):
    """`--partitions 2147483647`: a typo away from a real count. The broker must refuse it
    (or at least fail it) promptly without allocating without bound. A node of this test
    alone (the module's node could be left unusable); it is killed as soon as it grows
    past 512 MiB."""
    node = strom_factory()
    pid = node.pid

    def rss_mib() -> int:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
        return 0
    proc = subprocess.Popen([strom_binary(), "topic", "create", "-b", node.bootstrap, "huge", "-p", "2147483647"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env())
    start = time.monotonic()
    peak, killed = 0, None
    try:
        while time.monotonic() - start < 20:
            peak = max(peak, rss_mib())
            if peak > 512:
                killed = time.monotonic() - start
                node.kill9()
                break
            if proc.poll() is not None and time.monotonic() - start > 3:
                break  # the CLI is done; watch the node a little longer
            time.sleep(0.1)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    took = time.monotonic() - start
    assert killed is None, (
        f"the node grew past 512 MiB of RSS {killed:.1f} s after `strom topic create huge -p 2147483647` "
        f"(killed); the CLI said: rc {proc.returncode} {err.strip()!r}")
    assert proc.returncode == 1, f"rc {proc.returncode}: {out!r} {err!r}"
    assert "huge" in err and took < 15, f"after {took:.1f} s: {err!r}"
    assert "huge" not in ok(strom_cli("topic", "list", "-b", node.bootstrap)).stdout.splitlines()


@pytest.mark.parametrize("command", ["topic list", "topic create", "topic describe", "topic delete",
                                     "topic alter-config", "cluster describe", "produce", "consume"])
def test_unreachable_bootstrap(command):
    """Nothing listens on the port: exit code 1 and a message naming the address, fast."""
    addr = f"127.0.0.1:{free_port()}"
    extra = {"topic create": ["x"], "topic describe": ["x"], "topic delete": ["x"],
             "topic alter-config": ["x", "--set", "retention.ms=1"], "produce": ["-t", "x"],
             "consume": ["-t", "x", "-n", "1"]}.get(command, [])
    start = time.monotonic()
    p = strom_cli(*command.split(), "-b", addr, *extra, input="a\n" if command == "produce" else None, timeout=30)
    took = time.monotonic() - start
    fails(p, 1, f"cannot reach {addr}", "Connection refused")
    assert took < 15, f"`strom {command}` took {took:.1f} s to give up on {addr}"


def test_bootstrap_env_and_dead_first_address(cli, admin, new_topic):
    """STROM_BOOTSTRAP is the default bootstrap, -b beats it; a dead first address in
    the list is skipped."""
    name = new_topic()
    ok(cli.topic("create", name))
    wait_topic(admin, name, 1)
    dead = f"127.0.0.1:{free_port()}"
    p = ok(strom_cli("topic", "list", env={"STROM_BOOTSTRAP": cli.bootstrap}))
    assert name in p.stdout.splitlines()
    p = ok(strom_cli("topic", "list", "-b", cli.bootstrap, env={"STROM_BOOTSTRAP": dead}))
    assert name in p.stdout.splitlines()
    fails(strom_cli("topic", "list", env={"STROM_BOOTSTRAP": dead}), 1, f"cannot reach {dead}")
    p = ok(strom_cli("topic", "list", "-b", f"{dead},{cli.bootstrap}"))
    assert name in p.stdout.splitlines()


# ------------------------------------------------------------------ produce / consume


def test_produce_keys_and_consume_round_trip(cli, admin, new_topic):
    """-K splits at the first separator; a line without it has a null key; confluent and
    kafka-python read exactly what `strom produce` wrote, `strom consume` prints it back."""
    name = new_topic()
    ok(cli.topic("create", name, "-p", 1))
    wait_topic(admin, name, 1)
    lines = ["k1:v1", "k2:v:2", "no separator here", "k3:", ":empty key", "ünïcödé:漢字 ✓"]
    expected = [(b"k1", b"v1"), (b"k2", b"v:2"), (None, b"no separator here"), (b"k3", b""), (b"", b"empty key"),
                ("ünïcödé".encode(), "漢字 ✓".encode())]
    p = ok(cli.produce(name, lines, "-K", ":"))
    assert "6 record(s) written, 0 failed" in p.stderr, show(p)

    got = confluent_read(cli.bootstrap, name, [0], len(lines))
    assert [(g["key"], g["value"]) for g in got] == expected
    assert [g["offset"] for g in got] == list(range(len(lines)))
    assert all(g["headers"] == [] for g in got)
    kp = kafka_python_read(cli.bootstrap, name, 0, len(lines))
    assert [(r.key, r.value) for r in kp] == expected

    p = ok(cli.consume(name, "--from-beginning", "--print-key", "-n", len(lines), timeout=30))
    assert p.stdout.splitlines() == ["k1\tv1", "k2\tv:2", "null\tno separator here", "k3\t", "\tempty key",
                                     "ünïcödé\t漢字 ✓"], show(p)
    p = ok(cli.consume(name, "--from-beginning", "-n", len(lines), timeout=30))
    assert p.stdout.splitlines() == [v.decode() for _, v in expected], "without --print-key: values only"

    # No newline after the last line: it is a record all the same; empty input writes nothing.
    name3 = new_topic("nonl")
    ok(cli.topic("create", name3, "-p", 1))
    wait_topic(admin, name3, 1)
    p = ok(cli("produce", "-t", name3, input="first\nlast"))
    assert "2 record(s) written, 0 failed" in p.stderr, show(p)
    p = ok(cli("produce", "-t", name3, input=""))
    assert "0 record(s) written, 0 failed" in p.stderr, show(p)
    assert [g["value"] for g in confluent_read(cli.bootstrap, name3, [0], 2)] == [b"first", b"last"]

    # A multi-character separator.
    name2 = new_topic("sep")
    ok(cli.topic("create", name2, "-p", 1))
    wait_topic(admin, name2, 1)
    ok(cli.produce(name2, ["a::b::c", "a:b"], "--key-separator", "::"))
    assert [(g["key"], g["value"]) for g in confluent_read(cli.bootstrap, name2, [0], 2)] == \
        [(b"a", b"b::c"), (None, b"a:b")]


def test_produce_headers_partition_and_print_options(cli, admin, new_topic):
    name = new_topic()
    ok(cli.topic("create", name, "-p", 3))
    wait_topic(admin, name, 3)
    before = int(time.time() * 1000)
    p = ok(cli.produce(name, ["k:one", "k:two", "three"], "-K", ":", "-p", 1, "--header", "source=cli",
                       "--header", "eq=a=b", "--header", "empty="))
    after = int(time.time() * 1000)
    assert "3 record(s) written, 0 failed" in p.stderr, show(p)
    got = confluent_read(cli.bootstrap, name, [0, 1, 2], 3)
    assert [(g["partition"], g["offset"]) for g in got] == [(1, 0), (1, 1), (1, 2)], "-p 1 puts everything in 1"
    hs = [("source", b"cli"), ("eq", b"a=b"), ("empty", b"")]
    assert [(g["key"], g["value"], g["headers"]) for g in got] == \
        [(b"k", b"one", hs), (b"k", b"two", hs), (None, b"three", hs)]
    for g in got:
        assert before - 1000 <= g["timestamp"] <= after + 1000, (g, before, after)

    p = ok(cli.consume(name, "--from-beginning", "--print-offset", "--print-key", "--print-headers", "-n", 3))
    printed = parse_consumed(p.stdout)
    assert [(r["partition"], r["offset"], r["timestamp"], r["key"], r["value"]) for r in printed] == \
        [(g["partition"], g["offset"], g["timestamp"], "null" if g["key"] is None else g["key"].decode(),
          g["value"].decode()) for g in got]
    assert all(r["headers"] == [("source", "cli"), ("eq", "a=b"), ("empty", "")] for r in printed), printed

    # One partition only: -p 0 has nothing (the timeout ends it), -p 1 everything.
    p = ok(cli.consume(name, "-p", 0, "--from-beginning", "--timeout-ms", 1000))
    assert p.stdout == ""
    p = ok(cli.consume(name, "-p", 1, "--from-beginning", "--timeout-ms", 1000))
    assert p.stdout.splitlines() == ["one", "two", "three"]


def test_produce_partitioning(cli, admin, new_topic):
    """Keyed lines go where Kafka's default partitioner (murmur2) puts the key, so strom
    produce and Java/kafka-python producers agree; keyless lines are spread round robin."""
    name = new_topic()
    n = 4
    ok(cli.topic("create", name, "-p", n))
    wait_topic(admin, name, n)
    keys = [f"user-{i}" for i in range(20)]
    lines = [f"{k}:{k}-{j}" for j in range(3) for k in keys]
    ok(cli.produce(name, lines, "-K", ":"))
    got = confluent_read(cli.bootstrap, name, list(range(n)), len(lines))
    for g in got:
        key = g["key"]
        assert g["partition"] == (murmur2(key) & 0x7FFFFFFF) % n, \
            f"key {key!r} went to partition {g['partition']}, Kafka's partitioner says {(murmur2(key) & 0x7FFFFFFF) % n}"
    for k in keys:
        assert [g["value"].decode() for g in got if g["key"] == k.encode()] == [f"{k}-{j}" for j in range(3)], \
            f"records of key {k} out of order"

    name2 = new_topic("keyless")
    ok(cli.topic("create", name2, "-p", n))
    wait_topic(admin, name2, n)
    ok(cli.produce(name2, [f"v{i}" for i in range(4 * n)]))
    got = confluent_read(cli.bootstrap, name2, list(range(n)), 4 * n)
    per = {p: sum(1 for g in got if g["partition"] == p) for p in range(n)}
    assert max(per.values()) - min(per.values()) <= 1 and min(per.values()) > 0, f"keyless lines not spread: {per}"


def test_produce_many_lines_in_batches(cli, admin, new_topic):
    """3000 lines in batches of 250 (--batch), idempotent and with each codec: all there,
    in order, for kafka-python and confluent."""
    name = new_topic()
    ok(cli.topic("create", name, "-p", 1))
    wait_topic(admin, name, 1)
    lines = [f"line-{i:05d} " + "x" * (i % 50) for i in range(3000)]
    p = ok(cli.produce(name, lines, "--batch", 250, "--idempotent"))
    assert "3000 record(s) written, 0 failed" in p.stderr, show(p)
    got = kafka_python_read(cli.bootstrap, name, 0, len(lines))
    assert [r.value.decode() for r in got] == lines
    assert [r.offset for r in got] == list(range(len(lines)))

    total = list(lines)
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        more = [f"{codec}-{i} " + "compressible " * 20 for i in range(50)]
        p = ok(cli.produce(name, more, "--compression", codec, "--acks", "1"))
        assert "50 record(s) written, 0 failed" in p.stderr, show(p)
        total += more
    ok(cli.produce(name, ["acks-zero"], "--acks", "0"))
    total.append("acks-zero")
    got = wait_until(lambda: _try_read(cli.bootstrap, name, len(total)), 30, what="records produced with acks=0")
    assert [g["value"].decode() for g in got] == total


def _try_read(bootstrap, topic, n):
    try:
        return confluent_read(bootstrap, topic, [0], n, timeout=5)
    except AssertionError:
        return None


def test_produce_errors(cli, admin, new_topic):
    name = new_topic()
    ok(cli.topic("create", name, "-p", 2))
    wait_topic(admin, name, 2)
    p = fails(cli.produce(name, ["a", "b"], "-p", 7), 1, "partition 7", "0 record(s) written, 2 failed")
    fails(cli.produce(name, ["a"], "--acks", "2"), 2, "--acks 2")
    fails(cli.produce(name, ["a"], "--compression", "brotli"), 2, "--compression brotli")
    fails(cli.produce(name, ["a"], "--header", "novalue"), 2, "--header novalue", "KEY=VALUE")
    fails(cli.produce(name, ["a"], "--idempotent", "--acks", "1"), 2, "--idempotent needs --acks all")
    fails(cli.consume(name, "-p", 9, "--from-beginning", "--timeout-ms", 1000), 1, "partition 9")
    fails(cli.consume(name, "--offset", 1), 2, "--offset needs --partition")
    c = confluent_consumer(cli.bootstrap)
    try:
        assert [c.get_watermark_offsets(TopicPartition(name, i), timeout=10)[1] for i in (0, 1)] == [0, 0], \
            "a refused produce wrote records"
    finally:
        c.close()


def test_consume_limits_offsets_and_timestamps(cli, admin, new_topic):
    name = new_topic()
    ok(cli.topic("create", name, "-p", 1))
    wait_topic(admin, name, 1)
    lines = [f"m{i}" for i in range(10)]
    ok(cli.produce(name, lines))

    start = time.monotonic()
    p = ok(cli.consume(name, "--from-beginning", "--max-messages", 3))
    assert p.stdout.splitlines() == lines[:3], show(p)
    assert time.monotonic() - start < 15, "-n 3 returns as soon as it has 3 records"

    start = time.monotonic()
    p = ok(cli.consume(name, "--from-beginning", "--timeout-ms", 1500))
    took = time.monotonic() - start
    assert p.stdout.splitlines() == lines, show(p)
    assert 1.5 <= took < 20, f"--timeout-ms 1500 ended after {took:.1f} s"

    p = ok(cli.consume(name, "-p", 0, "--offset", 7, "--timeout-ms", 1000))
    assert p.stdout.splitlines() == lines[7:], show(p)
    p = ok(cli.consume(name, "-p", 0, "--offset", 7, "-n", 1, "--print-offset"))
    assert re.fullmatch(r"0:7@\d+\tm7\n", p.stdout), show(p)
    # Past the end: out of range, so it waits at the end (kafka-console-consumer's
    # latest), printing nothing old, and then prints what is written next.
    code, out, err = consume_while_producing(cli, name, "-p", "0", "--offset", "50", "--print-offset")
    m = re.fullmatch(r"0:(\d+)@\d+\tnew-(\d+)\n", out)
    assert code == 0 and m and int(m.group(1)) == 10 + int(m.group(2)), (code, out, err)

    # --from-timestamp: the first record at or after it (confluent sets the timestamps).
    ts_topic = new_topic("ts")
    ok(cli.topic("create", ts_topic, "-p", 1))
    wait_topic(admin, ts_topic, 1)
    base = int(time.time() * 1000) - 60_000
    confluent_produce(cli.bootstrap, ts_topic, [{"value": f"t{i}".encode(), "timestamp": base + 1000 * i, "partition": 0}
                                                for i in range(5)])
    p = ok(cli.consume(ts_topic, "--from-timestamp", base + 2500, "--timeout-ms", 1000, "--print-offset"))
    printed = parse_consumed(p.stdout, key=False, headers=False)
    assert [(r["offset"], r["timestamp"], r["value"]) for r in printed] == \
        [(i, base + 1000 * i, f"t{i}") for i in (3, 4)], show(p)


def test_consume_max_messages_zero_prints_nothing(cli, admin, new_topic):
    """`-n 0` ("stop after 0 records"): nothing printed (or refused as bad usage), like
    kafka-console-consumer --max-messages 0."""
    name = new_topic()
    ok(cli.topic("create", name, "-p", 1))
    wait_topic(admin, name, 1)
    ok(cli.produce(name, ["a", "b", "c"]))
    p = cli.consume(name, "--from-beginning", "-n", 0, "--timeout-ms", 1500)
    if p.returncode == 2:
        return  # refused as bad usage: fine too
    assert p.returncode == 0 and p.stdout == "", f"-n 0 printed records\n{show(p)}"


def consume_while_producing(cli, name: str, *flags) -> tuple[int, str, str]:
    """`strom consume -n 1 <flags>` in the background while new-<i> records go to partition
    0 every 0.3 s until it exits (30 s at most): -> (exit code, stdout, stderr)."""
    proc = subprocess.Popen([strom_binary(), "consume", "-b", cli.bootstrap, "-t", name, "-n", "1",
                             "--timeout-ms", "30000", *flags],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env())
    try:
        deadline = time.monotonic() + 30
        i = 0
        while proc.poll() is None and time.monotonic() < deadline:
            confluent_produce(cli.bootstrap, name, [{"value": f"new-{i}".encode(), "partition": 0}])
            i += 1
            time.sleep(0.3)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def test_consume_without_from_beginning_reads_new_records_only(cli, admin, new_topic):
    name = new_topic()
    ok(cli.topic("create", name, "-p", 1))
    wait_topic(admin, name, 1)
    ok(cli.produce(name, [f"old-{i}" for i in range(5)]))
    # The consumer starts at the end at some moment: it must never print an old record.
    code, out, err = consume_while_producing(cli, name)
    assert code == 0, err
    assert re.fullmatch(r"new-\d+\n", out), f"printed {out!r} (stderr {err!r})"


def test_confluent_and_kafka_python_records_printed_by_strom_consume(cli, admin, new_topic):
    name = new_topic()
    ok(cli.topic("create", name, "-p", 3))
    wait_topic(admin, name, 3)
    recs = [{"key": f"key-{i}".encode(), "value": f"value {i} ✓".encode(), "partition": i % 3,
             "headers": [("n", str(i).encode()), ("kind", b"confluent")]} for i in range(9)]
    recs.append({"key": None, "value": b"no key", "partition": 0, "headers": []})
    delivered = confluent_produce(cli.bootstrap, name, recs)
    kp = KafkaProducer(bootstrap_servers=cli.bootstrap)
    try:
        md = kp.send(name, key=b"kp", value=b"from kafka-python", partition=2,
                     headers=[("kind", b"kafka-python")]).get(timeout=30)
    finally:
        kp.close()

    p = ok(cli.consume(name, "--from-beginning", "--print-offset", "--print-key", "--print-headers", "-n", 11))
    printed = sorted(parse_consumed(p.stdout), key=lambda r: (r["partition"], r["offset"]))
    want = [{"partition": m.partition(), "offset": m.offset(), "timestamp": m.timestamp()[1],
             "key": "null" if r["key"] is None else r["key"].decode(), "value": r["value"].decode(),
             "headers": [(k, v.decode()) for k, v in r["headers"]]} for m, r in zip(delivered, recs)]
    want.append({"partition": 2, "offset": md.offset, "timestamp": md.timestamp, "key": "kp",
                 "value": "from kafka-python", "headers": [("kind", "kafka-python")]})
    assert printed == sorted(want, key=lambda r: (r["partition"], r["offset"]))


# ------------------------------------------------------------------ cluster describe


def test_cluster_describe(cli, admin, strom, new_topic):
    name = new_topic()
    ok(cli.topic("create", name, "-p", 2))
    wait_topic(admin, name, 2)
    p = ok(strom_cli("cluster", "describe", "-b", cli.bootstrap))
    d = parse_cluster_describe(p.stdout)
    md = admin.list_topics(timeout=15)
    assert d["brokers"] == {b.id: f"{b.host}:{b.port}" for b in md.brokers.values()}, show(p)
    assert d["cluster_id"] == md.cluster_id and d["cluster_id"], show(p)
    cluster = admin.describe_cluster().result(timeout=30)
    assert cluster.cluster_id == d["cluster_id"]
    assert d["quorum_leader"] in d["voters"], show(p)
    assert list(d["voters"].values()).count("leader") == 1, show(p)
    assert d["voters"][d["quorum_leader"]] == "leader"
    m = re.search(r"^Topics: (\d+)\s+under-replicated partitions: (\d+)\s+offline partitions: (\d+)$", p.stdout, re.M)
    assert m, show(p)
    assert int(m.group(1)) == len(md.topics) and (m.group(2), m.group(3)) == ("0", "0"), show(p)
    if not strom.is_external:
        assert d["brokers"] == {n.node_id: n.bootstrap for n in strom.nodes}
        assert sorted(d["voters"]) == sorted(strom.node_ids)
        # Through every node alone: the same cluster, the same quorum leader.
        for n in strom.nodes:
            dn = parse_cluster_describe(ok(strom_cli("cluster", "describe", "-b", n.bootstrap)).stdout)
            assert (dn["cluster_id"], dn["brokers"], sorted(dn["voters"])) == \
                (d["cluster_id"], d["brokers"], sorted(d["voters"])), n
            assert dn["quorum_leader"] == d["quorum_leader"]


def test_long_running_commands_show_progress(cli, admin, new_topic):
    """bench reports every 5 s on stderr (stdout keeps its two result lines); reassign
    --wait follows the move to its end; reset-offsets says what it is doing."""
    topic = new_topic("progress")
    ok(cli.topic("create", topic, "-p", "1", "-r", "1"))
    wait_topic(admin, topic, 1)
    p = ok(cli("bench", "produce", "-t", topic, "--bytes", "100000000000", "--duration-s", "6",
               "--throughput-mbs", "2", "--record-size", "100", timeout=60))
    assert re.search(r"^\[bench\] 5 s: \d+ of 100000 MB acknowledged \([\d.]+ MB/s\)$", p.stderr, re.M), show(p)
    assert len(p.stdout.splitlines()) == 2 and p.stdout.startswith("produce: "), show(p)
    target = broker_ids(admin)[-1]
    p = ok(cli.topic("reassign", topic, "-p", "0", "--replicas", str(target), "--wait", timeout=60))
    assert re.search(rf"^moved {re.escape(topic)}-0: replicas {target} \([\d.]+ s\)$", p.stdout, re.M), show(p)
    group = new_topic("progress-group")
    ok(cli("group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute"))
    p = ok(cli("group", "reset-offsets", group, "--topic", topic, "--to-latest", "--execute"))
    assert "[reset] finding the new offsets of 1 partition(s)" in p.stderr, show(p)
    assert "[reset] committing 1 offset(s)" in p.stderr, show(p)
    assert re.search(rf"committed 1 offset\(s\) for group {re.escape(group)} \([\d.]+ s\)", p.stdout), show(p)
