"""The image and the three-node docker compose cluster of deploy/: the image is small,
static, runs as a non-root user and carries Kafka's tool names; `docker compose up -d`
gives a healthy cluster, configured with cp-kafka's KAFKA_* variables; real clients
work from the host (confluent-kafka: RF 3, acks=all, a group) and from containers on
the compose network (the image's own Kafka tools); a killed, paused or disconnected
partition leader under acks=all load loses no acknowledged record; `down` and `up`
keep the data.

The image comes from STROM_IMAGE (test.sh builds it with deploy/build-image.sh), else
this module builds it. Each run has its own compose project and host ports. Figures
(image size, time to healthy) go to e2e/artifacts/deploy/figures.json.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import uuid

import pytest

from deploy_util import ROOT, docker_works, image_tag, record, run

COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"

pytestmark = pytest.mark.timeout(900)


if not os.environ.get("E2E_DEPLOY"):
    pytest.skip("docker deploy tests run in their own stage of test.sh (E2E_DEPLOY=1)", allow_module_level=True)
if os.environ.get("E2E_BOOTSTRAP") or os.environ.get("E2E_NODES", "1") != "1":
    pytest.skip("the compose cluster is its own: runs once, in the single-node pass", allow_module_level=True)
if not docker_works():
    pytest.skip("no working docker engine here", allow_module_level=True)


def compose_command() -> list[str]:
    if run("docker", "compose", "version", check=False).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def image() -> str:
    return image_tag()


class Cluster:
    def __init__(self, image: str):
        self.image = image
        self.project = f"strome2e{uuid.uuid4().hex[:8]}"
        self.ports = [free_port() for _ in range(3)]
        self.admin_ports = [free_port() for _ in range(3)]
        self.registry_ports = [free_port() for _ in range(3)]
        self.env = {**os.environ, "STROM_IMAGE": image}
        for i in range(3):
            self.env[f"STROM_PORT_{i + 1}"] = str(self.ports[i])
            self.env[f"STROM_ADMIN_PORT_{i + 1}"] = str(self.admin_ports[i])
            self.env[f"STROM_REGISTRY_PORT_{i + 1}"] = str(self.registry_ports[i])
        self.bootstrap = ",".join(f"localhost:{p}" for p in self.ports)
        self.network = f"{self.project}_default"

    def compose(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return run(*compose_command(), "-p", self.project, "-f", str(COMPOSE_FILE), *args,
                   timeout=timeout, env=self.env)

    def container(self, node: int) -> str:
        return self.compose("ps", "-q", f"strom-{node}").stdout.strip()

    def health(self, node: int) -> str:
        p = run("docker", "inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                self.container(node), check=False)
        return p.stdout.strip()

    def wait_healthy(self, nodes=(1, 2, 3), timeout: float = 90) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if all(self.health(n) == "healthy" for n in nodes):
                return time.monotonic() - t0
            time.sleep(0.2)
        logs = {n: run("docker", "logs", "--tail", "30", self.container(n), check=False).stderr for n in nodes}
        raise AssertionError(f"not healthy after {timeout} s: { {n: self.health(n) for n in nodes} }\n{logs}")

    def up(self) -> float:
        t0 = time.monotonic()
        self.compose("up", "-d")
        self.wait_healthy()
        return time.monotonic() - t0


@pytest.fixture(scope="module")
def cluster(image):
    c = Cluster(image)
    try:
        took = c.up()
        record(compose_up_to_healthy_s=round(took, 1))
        c.first_up_s = took
        yield c
    finally:
        if os.environ.get("E2E_KEEP_COMPOSE"):
            print(f"kept compose project {c.project}")
        else:
            c.compose("down", "-v", "--remove-orphans", timeout=300)


def test_the_image_is_small_static_non_root_and_has_the_tool_names(image):
    size = int(run("docker", "image", "inspect", "-f", "{{.Size}}", image).stdout)
    record(image_bytes=size, image_mib=round(size / 1048576, 1))
    assert size < 30 * 1024 * 1024, f"{size} bytes"
    cfg = json.loads(run("docker", "image", "inspect", "-f", "{{json .Config}}", image).stdout)
    assert cfg["User"] == "10001:10001", cfg
    assert "/var/lib/strom" in (cfg.get("Volumes") or {}), cfg
    p = run("docker", "run", "--rm", image, "--version")
    assert p.stdout.startswith("strom "), p.stdout
    for tool in ("kafka-topics", "kafka-topics.sh", "kafka-console-consumer", "kafka-consumer-groups",
                 "kafka-configs", "kafka-transactions", "kafka-producer-perf-test"):
        p = run("docker", "run", "--rm", "--entrypoint", tool, image, "--help", check=False)
        assert p.returncode == 0 and "served by strom" in p.stdout, (tool, p.stdout, p.stderr)


def test_compose_up_gives_a_healthy_cluster(cluster):
    # The time from `up -d` to three healthy nodes (containers created and started,
    # quorum formed, brokers registered and caught up, health checks run).
    assert cluster.first_up_s < 10, f"{cluster.first_up_s:.1f} s"
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(timeout=15)
    assert sorted(md.brokers) == [1, 2, 3]
    assert md.cluster_id == "MkU3OEVBNTcwNTJENDM2Qk"


def produce_values(bootstrap: str, topic: str, values: list[str]) -> None:
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    errors = []
    for v in values:
        p.produce(topic, key=v, value=v, on_delivery=lambda e, m: errors.append(e) if e else None)
    assert p.flush(60) == 0 and not errors, errors


def consume_all(bootstrap: str, topic: str, partitions: int, expect: int | None = None,
                timeout: float = 60) -> list[str]:
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, q, 0) for q in range(partitions)])
    got, deadline, quiet_since = [], time.monotonic() + timeout, time.monotonic()
    while time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            if expect is None and time.monotonic() - quiet_since > 5:
                break
            continue
        quiet_since = time.monotonic()
        got.append(m.value().decode())
        if expect is not None and len(got) >= expect:
            break
    c.close()
    return got


def test_host_clients_rf3_acks_all_and_a_group(cluster):
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": cluster.bootstrap})
    a.create_topics([NewTopic("host-rf3", num_partitions=3, replication_factor=3)])["host-rf3"].result(30)
    values = [f"h{i}" for i in range(600)]
    produce_values(cluster.bootstrap, "host-rf3", values)
    md = a.list_topics("host-rf3", timeout=10).topics["host-rf3"]
    assert all(sorted(p.replicas) == [1, 2, 3] and sorted(p.isrs) == [1, 2, 3] for p in md.partitions.values())
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "host-group", "auto.offset.reset": "earliest"})
    c.subscribe(["host-rf3"])
    got, deadline = [], time.monotonic() + 60
    while len(got) < 600 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value().decode())
    c.commit(asynchronous=False)
    c.close()
    assert sorted(got) == sorted(values)


def test_clients_inside_the_compose_network(cluster, image):
    # Seed 001's kind of command, in a node's container.
    p = run("docker", "exec", cluster.container(1), "kafka-topics", "--bootstrap-server",
            f"localhost:{cluster.ports[0]}", "--create", "--topic", "inside", "--partitions", "3",
            "--replication-factor", "3")
    assert "Created topic inside." in p.stdout, p.stdout
    p = run("docker", "exec", cluster.container(2), "kafka-topics", "--bootstrap-server", "strom-2:29092", "--list")
    assert "inside" in p.stdout.split(), p.stdout
    # A client container on the compose network, reaching the nodes by service name.
    lines = "".join(f"k{i}:v{i}\n" for i in range(50))
    p = subprocess.run(["docker", "run", "--rm", "-i", "--network", cluster.network, "--entrypoint",
                        "kafka-console-producer", image, "--bootstrap-server", "strom-1:29092,strom-3:29092",
                        "--topic", "inside", "--property", "parse.key=true", "--property", "key.separator=:",
                        "--request-required-acks", "all"],
                       input=lines, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    p = run("docker", "run", "--rm", "--network", cluster.network, "--entrypoint", "kafka-console-consumer",
            image, "--bootstrap-server", "strom-2:29092", "--topic", "inside", "--group", "inside-group",
            "--from-beginning", "--max-messages", "50", timeout=120)
    assert sorted(p.stdout.split()) == sorted(f"v{i}" for i in range(50)), p.stdout
    p = run("docker", "exec", cluster.container(3), "kafka-consumer-groups", "--bootstrap-server",
            "strom-3:29092", "--describe", "--group", "inside-group")
    lags = [line.split()[5] for line in p.stdout.splitlines() if line.startswith("inside-group")]
    assert lags == ["0", "0", "0"], p.stdout


class Load:
    """An idempotent acks=all producer sending unique values until stopped; what was
    acknowledged is kept."""

    def __init__(self, bootstrap: str, topic: str):
        from confluent_kafka import Producer
        self.topic = topic
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                           "linger.ms": 5, "message.timeout.ms": 120000})
        self.acked: list[str] = []
        self.failed: list[str] = []
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _cb(self, err, msg):
        (self.failed if err else self.acked).append(msg.value().decode())

    def _run(self):
        while not self.stop.is_set():
            v = f"{self.topic}-{self.sent}"
            try:
                self.p.produce(self.topic, key=v, value=v, on_delivery=self._cb)
                self.sent += 1
            except BufferError:
                pass
            self.p.poll(0.002)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        self.p.flush(150)


def leader_of(bootstrap: str, topic: str, partition: int = 0) -> int:
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=15)
    return md.topics[topic].partitions[partition].leader


def faulted_run(cluster, name: str, fault, heal) -> dict:
    from confluent_kafka.admin import AdminClient, NewTopic
    topic = f"fault-{name}"
    a = AdminClient({"bootstrap.servers": cluster.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3,
                              config={"min.insync.replicas": "2"})])[topic].result(30)
    time.sleep(1)
    victim = leader_of(cluster.bootstrap, topic)
    with Load(cluster.bootstrap, topic) as load:
        time.sleep(3)
        fault(victim)
        # Longer than broker.session.timeout.ms (9 s): the controller fences the
        # victim and its partitions get new leaders before it comes back.
        time.sleep(12)
        new_leader = leader_of(cluster.bootstrap, topic)
        heal(victim)
        cluster.wait_healthy()
        time.sleep(3)
    got = consume_all(cluster.bootstrap, topic, 3)
    lost = set(load.acked) - set(got)
    dup = len(got) - len(set(got))
    assert load.acked, "nothing was acknowledged"
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {sorted(lost)[:5]}"
    assert dup == 0, f"{dup} duplicates"
    assert new_leader not in (victim, -1), f"partition 0 still led by {new_leader} with {victim} gone"
    return {"victim": victim, "new_leader": new_leader, "acked": len(load.acked), "failed": len(load.failed),
            "read": len(got)}


def test_killing_the_leader_under_acks_all_loses_nothing(cluster):
    figures = faulted_run(cluster, "kill",
                          lambda n: run("docker", "kill", cluster.container(n)),
                          lambda n: run("docker", "start", cluster.container(n)))
    record(kill_leader=figures)


def test_pausing_the_leader_under_acks_all_loses_nothing(cluster):
    figures = faulted_run(cluster, "pause",
                          lambda n: run("docker", "pause", cluster.container(n)),
                          lambda n: run("docker", "unpause", cluster.container(n)))
    record(pause_leader=figures)


def test_disconnecting_the_leader_under_acks_all_loses_nothing(cluster):
    def heal(n):
        run("docker", "network", "connect", "--alias", f"strom-{n}", cluster.network, cluster.container(n))
    figures = faulted_run(cluster, "disconnect",
                          lambda n: run("docker", "network", "disconnect", cluster.network, cluster.container(n)),
                          heal)
    record(disconnect_leader=figures)


def test_down_and_up_keep_the_data(cluster):
    cluster.compose("down", timeout=300)
    took = cluster.up()
    record(compose_up_again_to_healthy_s=round(took, 1))
    got = consume_all(cluster.bootstrap, "host-rf3", 3, expect=600)
    assert sorted(got) == sorted(f"h{i}" for i in range(600))
