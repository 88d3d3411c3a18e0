"""Partition replication with real clients against real strom processes.

Clusters of 3 (or 5) combined nodes, topics with replication factor 3 and
min.insync.replicas=2, idempotent acks=all producers (confluent-kafka / librdkafka 2.16
and the Java client 3.9.1) writing while the leader is killed (-9), paused (SIGSTOP for
15 s) or stopped (SIGTERM), a follower dies and comes back, two replicas are down, and
nodes are killed and restarted in a loop for a minute. After each, every partition is
read back from the start: every acknowledged record is there, once, at the offset it was
acknowledged at; nothing is there twice.

Every test starts clusters of its own (`cluster_factory`), whatever E2E_NODES says, so
run.sh runs this file in its first pass only.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from e2e_util import Java, wait_until

RF3 = {"replication.factor": 3}
TOPIC_CONFIG = {"min.insync.replicas": "2"}


def admin(cluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": cluster.bootstrap})


def create_rf3_topic(cluster, partitions: int = 1, rf: int = 3, config=None) -> str:
    name = f"repl-{uuid.uuid4().hex[:10]}"
    a = admin(cluster)  # keep the client alive until its future resolves
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=rf,
                                   config=config or TOPIC_CONFIG)])
    fs[name].result(30)
    wait_until(lambda: all(p["leader"] >= 0 and len(p["isr"]) == rf for p in partitions_of(cluster, name).values())
               and len(partitions_of(cluster, name)) == partitions, 30, what=f"{name} fully replicated")
    return name


def partitions_of(cluster, topic: str, through=None) -> dict[int, dict]:
    """{partition: {leader, replicas, isr}} from Metadata through the running nodes."""
    bs = through or ",".join(n.bootstrap for n in cluster.nodes if n.running)
    md = AdminClient({"bootstrap.servers": bs}).list_topics(topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return {}
    return {p.id: {"leader": p.leader, "replicas": list(p.replicas), "isr": list(p.isrs)}
            for p in t.partitions.values()}


def leader_of(cluster, topic: str, partition: int = 0) -> int:
    return partitions_of(cluster, topic)[partition]["leader"]


class ConfluentWriter:
    """An idempotent acks=all librdkafka producer writing "<tag>-<n>" values to one
    partition from a thread, noting each delivery report (offset or error)."""

    def __init__(self, bootstrap: str, topic: str, partition: int = 0, interval: float = 0.003,
                 tag: str = "c", extra: dict | None = None):
        conf = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                "linger.ms": 2}
        conf.update(extra or {})
        self.p = Producer(conf)
        self.topic, self.partition, self.interval, self.tag = topic, partition, interval, tag
        self.acked: dict[str, int] = {}
        self.failed: dict[str, str] = {}
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.first_ack_after: dict[float, float] = {}

    def _report(self, err, msg):
        v = msg.value().decode()
        if err is None:
            self.acked[v] = msg.offset()
        else:
            self.failed[v] = err.name()

    def _run(self):
        while not self.stop.is_set():
            v = f"{self.tag}-{self.sent}"
            try:
                self.p.produce(self.topic, value=v.encode(), partition=self.partition, on_delivery=self._report)
                self.sent += 1
            except BufferError:
                pass
            self.p.poll(0)
            time.sleep(self.interval)

    def start(self):
        self.thread.start()
        return self

    def finish(self, timeout: float = 120):
        self.stop.set()
        self.thread.join()
        left = self.p.flush(timeout)
        assert left == 0, f"{left} records still undelivered after {timeout} s"
        return self


def read_partition(cluster, topic: str, partition: int = 0, timeout: float = 60) -> dict[int, str]:
    """offset -> value of the whole partition, read from its start to its end."""
    bs = ",".join(n.bootstrap for n in cluster.nodes if n.running)
    c = Consumer({"bootstrap.servers": bs, "group.id": f"read-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
        c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        got: dict[int, str] = {}
        deadline = time.monotonic() + timeout
        while (not got or max(got) < hi - 1) and hi > lo:
            assert time.monotonic() < deadline, f"read {len(got)} of {hi - lo} records"
            m = c.poll(1.0)
            if m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF):
                continue
            assert not m.error(), m.error()
            got[m.offset()] = m.value().decode()
        return got
    finally:
        c.close()


def assert_nothing_lost_nothing_twice(log: dict[int, str], acked: dict[str, int]):
    assert acked, "nothing was acknowledged: the test proved nothing"
    by_value: dict[str, int] = {}
    for off, v in log.items():
        assert v not in by_value, f"{v} is in the log twice, at {by_value[v]} and {off}"
        by_value[v] = off
    lost = {v: o for v, o in acked.items() if log.get(o) != v}
    assert not lost, f"{len(lost)} acknowledged records lost or moved, e.g. {list(lost.items())[:5]}"


def wait_isr(cluster, topic: str, size: int, partition: int = 0, timeout: float = 60):
    wait_until(lambda: len(partitions_of(cluster, topic).get(partition, {}).get("isr", [])) == size,
               timeout, what=f"ISR of {topic}-{partition} to reach {size}")


# ---------------------------------------------------------------------------------

def test_rf3_acks_all_round_trip_and_the_isr_is_real(cluster_factory):
    """RF 3 acks=all: every replica holds the same bytes; the ISR Metadata reports is
    the one the leader tracks (all three while they fetch)."""
    cluster = cluster_factory(3)
    topic = create_rf3_topic(cluster, partitions=3)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(300):
        p.produce(topic, key=str(i).encode(), value=f"v{i}".encode())
    assert p.flush(30) == 0
    for part, info in partitions_of(cluster, topic).items():
        assert sorted(info["isr"]) == [1, 2, 3], info
    # DescribeLogDirs through kafka-python: the three replicas of each partition are
    # the same size once the followers caught up.
    from kafka.admin import KafkaAdminClient
    ka = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)

    def sizes():
        out: dict[int, set] = {}
        for res in ka.describe_log_dirs():
            for d in res["log_dirs"]:
                for t in d["topics"]:
                    if t["name"] == topic:
                        for pp in t["partitions"]:
                            out.setdefault(pp["partition_index"], set()).add(pp["partition_size"])
        return out
    wait_until(lambda: len(sizes()) == 3 and all(len(s) == 1 and 0 not in s for s in sizes().values()),
               30, what="equal replica sizes")
    ka.close()
    total = sum(len(read_partition(cluster, topic, i)) for i in range(3))
    assert total == 300


@pytest.mark.parametrize("client", ["confluent", "java"])
def test_kill9_of_the_leader_loses_nothing_and_duplicates_nothing(cluster_factory, client):
    cluster = cluster_factory(3)
    topic = create_rf3_topic(cluster)
    leader = leader_of(cluster, topic)
    if client == "confluent":
        w = ConfluentWriter(cluster.bootstrap, topic).start()
        wait_until(lambda: len(w.acked) > 300, 30, what="acks before the kill")
        cluster.kill9(leader)
        wait_until(lambda: len(w.acked) > 1500, 60, what="acks after the kill")
        w.finish()
        acked, failed = w.acked, w.failed
    else:
        java = Java(cluster.bootstrap)
        cmd = ["java", "-Xss1m", "-XX:TieredStopAtLevel=1", "-cp", java.cp, "StromE2E", "produce",
               "--bootstrap", cluster.bootstrap, "--topic", topic, "--partition", "0", "--count", "3000",
               "--interval-ms", "3", "--idempotent", "true", "--acks", "all"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []

        def pump():
            for line in proc.stdout:
                if line.startswith("{"):
                    lines.append(json.loads(line))
        t = threading.Thread(target=pump, daemon=True)
        t.start()
        wait_until(lambda: sum(1 for x in lines if "offset" in x) > 300, 60, what="acks before the kill")
        cluster.kill9(leader)
        proc.wait(timeout=180)
        t.join(10)
        assert proc.returncode == 0, proc.stderr.read()[-3000:]
        acked = {f"v{x['i']}": x["offset"] for x in lines if "offset" in x}
        failed = {f"v{x['i']}": x["error"] for x in lines if "error" in x}
    assert not failed, f"{len(failed)} deliveries failed: {list(failed.items())[:5]}"
    assert leader_of(cluster, topic) != leader
    log = read_partition(cluster, topic)
    assert_nothing_lost_nothing_twice(log, acked)
    # The killed node comes back as a follower and catches up.
    cluster.restart(leader, graceful=False)
    wait_isr(cluster, topic, 3)


def test_sigstop_of_the_leader_for_15s_truncates_its_divergent_tail(cluster_factory):
    """A paused leader (SIGSTOP) is fenced after the session timeout; producers move to
    the new leader; after SIGCONT the old leader learns it follows, truncates whatever it
    had that the new leader does not, and rejoins the ISR. Nothing acknowledged is lost."""
    cluster = cluster_factory(3)
    topic = create_rf3_topic(cluster)
    leader = leader_of(cluster, topic)
    w = ConfluentWriter(cluster.bootstrap, topic).start()
    wait_until(lambda: len(w.acked) > 300, 30, what="acks before the pause")
    os.kill(cluster.node(leader).pid, signal.SIGSTOP)
    try:
        time.sleep(15)
    finally:
        os.kill(cluster.node(leader).pid, signal.SIGCONT)
    # Ask the others: the resumed node answers from its stale image for a moment.
    others = cluster.bootstrap_without(leader)
    wait_until(lambda: partitions_of(cluster, topic, through=others)[0]["leader"] not in (-1, leader),
               30, what="a new leader while the old one was paused")
    wait_until(lambda: len(w.acked) > 2000, 60, what="acks after the pause")
    w.finish()
    assert not w.failed, f"{len(w.failed)} deliveries failed: {list(w.failed.items())[:5]}"
    wait_isr(cluster, topic, 3)
    log = read_partition(cluster, topic)
    assert_nothing_lost_nothing_twice(log, w.acked)
    node = cluster.node(leader)
    logs = (node.stdout_path.read_text(errors="replace") + node.stderr_path.read_text(errors="replace"))
    assert "following" in logs


def test_sigterm_of_the_leader_fails_no_delivery(cluster_factory):
    """Controlled shutdown: the stopping leader hands its leaderships over before it
    exits, so an idempotent producer sees no failed delivery and the node exits 0."""
    cluster = cluster_factory(3)
    topic = create_rf3_topic(cluster)
    leader = leader_of(cluster, topic)
    w = ConfluentWriter(cluster.bootstrap, topic).start()
    wait_until(lambda: len(w.acked) > 300, 30, what="acks before the stop")
    code = cluster.node(leader).terminate(timeout=40)
    assert code == 0, f"the stopped node exited with {code}"
    wait_until(lambda: len(w.acked) > 1500, 60, what="acks after the stop")
    w.finish()
    assert not w.failed, f"a controlled shutdown failed {len(w.failed)} deliveries: {list(w.failed.items())[:5]}"
    assert_nothing_lost_nothing_twice(read_partition(cluster, topic), w.acked)
    text = cluster.node(leader).stdout_path.read_text(errors="replace") + \
        cluster.node(leader).stderr_path.read_text(errors="replace")
    assert "controlled shutdown complete" in text
    cluster.restart(leader)
    wait_isr(cluster, topic, 3)


def cluster_counts(cluster, through: str) -> tuple[int, int]:
    """(under-replicated, offline) partitions as `strom cluster describe` counts them."""
    import re
    r = subprocess.run([cluster.binary, "cluster", "describe", "-b", through],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    m = re.search(r"under-replicated partitions: (\d+)\s+offline partitions: (\d+)", r.stdout)
    assert m, r.stdout
    return int(m.group(1)), int(m.group(2))


def test_a_killed_follower_leaves_the_isr_and_rejoins_after_restart(cluster_factory):
    cluster = cluster_factory(3)
    topic = create_rf3_topic(cluster)
    info = partitions_of(cluster, topic)[0]
    follower = next(r for r in info["replicas"] if r != info["leader"])
    w = ConfluentWriter(cluster.bootstrap, topic).start()
    wait_until(lambda: len(w.acked) > 300, 30, what="acks before the kill")
    assert cluster_counts(cluster, cluster.bootstrap) == (0, 0)
    cluster.kill9(follower)
    wait_isr(cluster, topic, 2)
    assert follower not in partitions_of(cluster, topic)[0]["isr"]
    # `strom cluster describe` counts the partition as under-replicated, not offline.
    survivors = cluster.bootstrap_without(follower)
    under, offline = cluster_counts(cluster, survivors)
    assert under >= 1 and offline == 0, (under, offline)
    before = len(w.acked)
    wait_until(lambda: len(w.acked) > before + 500, 30, what="writes to continue with two in sync")
    cluster.restart(follower, graceful=False)
    wait_isr(cluster, topic, 3)
    wait_until(lambda: cluster_counts(cluster, cluster.bootstrap) == (0, 0), 60,
               what="no under-replicated partition after the rejoin")
    w.finish()
    assert not w.failed, list(w.failed.items())[:5]
    assert_nothing_lost_nothing_twice(read_partition(cluster, topic), w.acked)


def test_two_replicas_down_on_five_nodes_refuses_acks_all_and_takes_acks_1(cluster_factory):
    cluster = cluster_factory(5)
    topic = create_rf3_topic(cluster)
    info = partitions_of(cluster, topic)[0]
    followers = [r for r in info["replicas"] if r != info["leader"]]
    # A one-replica topic on a node about to die goes offline (no other replica to lead).
    lonely = f"{topic}-rf1"
    a = admin(cluster)  # alive until the future resolves
    a.create_topics([NewTopic(lonely, num_partitions=1, replica_assignment=[[followers[0]]])])[lonely].result(30)
    wait_until(lambda: leader_of(cluster, lonely) == followers[0], 30, what="the RF 1 topic's leader")
    for f in followers:
        cluster.kill9(f)
    wait_isr(cluster, topic, 1)
    survivors = cluster.bootstrap_without(*followers)
    wait_until(lambda: cluster_counts(cluster, survivors)[1] >= 1, 30, what="an offline partition")
    under, offline = cluster_counts(cluster, survivors)
    assert under >= 1 and offline == 1, (under, offline)
    errors = []
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "message.timeout.ms": 5000,
                  "enable.idempotence": False, "retries": 2})
    p.produce(topic, value=b"all", partition=0,
              on_delivery=lambda err, msg: errors.append(err.name() if err else None))
    p.flush(20)
    assert errors == ["NOT_ENOUGH_REPLICAS"], errors
    oks = []
    p1 = Producer({"bootstrap.servers": cluster.bootstrap, "acks": 1, "enable.idempotence": False})
    p1.produce(topic, value=b"one", partition=0,
               on_delivery=lambda err, msg: oks.append((err, msg.offset())))
    p1.flush(20)
    assert oks and oks[0][0] is None, oks
    for f in followers:
        cluster.restart(f, graceful=False)
    wait_isr(cluster, topic, 3)
    # The acks=1 record, written while alone, is readable once the ISR is back.
    assert "one" in read_partition(cluster, topic).values()


def test_group_offsets_survive_a_kill9_of_their_coordinator(cluster_factory):
    cluster = cluster_factory(3)
    topic = create_rf3_topic(cluster, partitions=3)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(90):
        p.produce(topic, value=f"v{i}".encode(), partition=i % 3)
    assert p.flush(30) == 0
    group = f"g-{uuid.uuid4().hex[:8]}"
    conf = {"bootstrap.servers": cluster.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False}
    c = Consumer(conf)
    c.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 60
    while seen < 45 and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is not None and not m.error():
            seen += 1
    c.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, i) for i in range(3)], timeout=10)}
    c.close()
    # __consumer_offsets is replicated three times: the coordinator's death loses nothing.
    offsets = partitions_of(cluster, "__consumer_offsets")
    assert offsets and all(len(x["replicas"]) == 3 for x in offsets.values())
    a = admin(cluster)
    coordinator = a.describe_consumer_groups([group])[group].result(20).coordinator.id
    cluster.kill9(coordinator)
    c2 = Consumer(dict(conf, **{"bootstrap.servers": cluster.bootstrap_without(coordinator)}))

    def fetch_committed():
        # Until a survivor coordinates the group, librdkafka's committed() can surface
        # NOT_COORDINATOR (retriable, as the Java client treats it): ask again.
        try:
            return {tp.partition: tp.offset
                    for tp in c2.committed([TopicPartition(topic, i) for i in range(3)], timeout=30)}
        except KafkaException as e:
            if e.args[0].code() in (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS):
                return None
            raise
    got = wait_until(fetch_committed, 60, interval=0.5, what="the group's committed offsets from a survivor")
    assert got == committed, (got, committed)
    c2.close()


def test_a_minute_of_kills_and_restarts_loses_nothing(cluster_factory):
    cluster = cluster_factory(3)
    topic = create_rf3_topic(cluster, partitions=2)
    writers = [ConfluentWriter(cluster.bootstrap, topic, partition=i, tag=f"w{i}", interval=0.005).start()
               for i in range(2)]
    r = random.Random(42)
    end = time.monotonic() + 60
    kills = 0
    while time.monotonic() < end:
        time.sleep(r.uniform(2, 4))
        victim = r.choice(cluster.node_ids)
        cluster.kill9(victim)
        kills += 1
        time.sleep(r.uniform(1, 3))
        cluster.restart(victim, graceful=False)
    for w in writers:
        w.finish(timeout=180)
    assert kills >= 8
    for i, w in enumerate(writers):
        assert_nothing_lost_nothing_twice(read_partition(cluster, topic, i), w.acked)


def test_reassignment_moves_a_partition_and_elect_leaders_restores_preference(cluster_factory):
    """kafka-python's admin: move a partition off a broker (drain), then let a
    preferred-leader election bring leadership back to the first replica."""
    from kafka import KafkaAdminClient
    from kafka.structs import TopicPartition as KTP
    cluster = cluster_factory(4)
    topic = create_rf3_topic(cluster)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(200):
        p.produce(topic, value=f"v{i}".encode(), partition=0)
    assert p.flush(30) == 0
    info = partitions_of(cluster, topic)[0]
    spare = next(b for b in cluster.node_ids if b not in info["replicas"])
    drained = info["replicas"][-1]
    target = [r for r in info["replicas"] if r != drained] + [spare]
    ka = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    result = ka.alter_partition_reassignments({KTP(topic, 0): target})
    assert result == {KTP(topic, 0): None}, result
    wait_until(lambda: sorted(partitions_of(cluster, topic)[0]["replicas"]) == sorted(target)
               and len(partitions_of(cluster, topic)[0]["isr"]) == 3, 60, what="the move to complete")
    assert ka.list_partition_reassignments() == {}
    assert len(read_partition(cluster, topic)) == 200
    # Move leadership away from the preferred replica, then elect it back.
    preferred = partitions_of(cluster, topic)[0]["replicas"][0]
    cluster.restart(preferred)  # graceful: leadership moves off it
    wait_isr(cluster, topic, 3)
    assert leader_of(cluster, topic) != preferred
    ka.close()
    ka = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)  # fresh view after the restart
    resp = ka.elect_leaders(0, {topic: [0]})
    errs = [pr[1] for r in resp.replica_election_results for pr in r[1]]
    assert errs == [0], resp
    wait_until(lambda: leader_of(cluster, topic) == preferred, 30, what="the preferred leader back")
    ka.close()


def test_the_cli_moves_partitions_elects_leaders_and_shows_log_dirs(cluster_factory):
    """`strom topic reassign` drains a broker, `--list` shows the move, `strom topic
    describe` shows the real ISR, `strom topic elect-leaders` brings the preferred leader
    back, `strom cluster log-dirs` shows every replica's size."""
    import re
    cluster = cluster_factory(4)
    strom = cluster.binary
    topic = create_rf3_topic(cluster)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(100):
        p.produce(topic, value=f"v{i}".encode(), partition=0)
    assert p.flush(30) == 0

    def cli(*args, ok=0):
        r = subprocess.run([strom, *args, "-b", cluster.bootstrap], capture_output=True, text=True, timeout=60)
        assert r.returncode == ok, (args, r.stdout, r.stderr)
        return r.stdout

    info = partitions_of(cluster, topic)[0]
    spare = next(b for b in cluster.node_ids if b not in info["replicas"])
    target = info["replicas"][:2] + [spare]
    out = cli("topic", "reassign", topic, "--partition", "0", "--replicas", ",".join(map(str, target)))
    assert "moving" in out
    wait_until(lambda: "no reassignment in progress" in cli("topic", "reassign", "--list"), 60,
               what="the move to finish")
    desc = cli("topic", "describe", topic)
    row = next(line.split() for line in desc.splitlines() if line.split()[:1] == ["0"])
    assert sorted(map(int, row[3].split(","))) == sorted(target), desc
    wait_until(lambda: sorted(map(int, next(line.split() for line in cli("topic", "describe", topic).splitlines()
                                            if line.split()[:1] == ["0"])[4].split(","))) == sorted(target),
               30, what="the ISR in `strom topic describe`")
    # Bad usage is refused with exit code 2; cancelling nothing is a Kafka error.
    cli("topic", "reassign", topic, "--partition", "0", ok=2)
    assert "NO_REASSIGNMENT_IN_PROGRESS" in subprocess.run(
        [strom, "topic", "reassign", topic, "--partition", "0", "--cancel", "-b", cluster.bootstrap],
        capture_output=True, text=True).stderr
    # Preferred leader election after the preferred replica restarts.
    preferred = target[0]
    cluster.restart(preferred)
    wait_isr(cluster, topic, 3)
    out = cli("topic", "elect-leaders", topic)
    assert re.search(r"elected leaders for [01] partition", out), out
    wait_until(lambda: leader_of(cluster, topic) == preferred, 30, what="the preferred leader")
    dirs = cli("cluster", "log-dirs", "--topic", topic)
    sizes = [line.split() for line in dirs.splitlines() if line.startswith(topic)]
    assert sorted(int(s[2]) for s in sizes) == sorted(target), dirs
    wait_until(lambda: len({line.split()[3] for line in cli("cluster", "log-dirs", "--topic", topic).splitlines()
                            if line.startswith(topic)}) == 1, 30, what="equal replica sizes")
    assert "under-replicated partitions: 0" in cli("cluster", "describe")


def test_a_full_disk_halts_its_broker_and_loses_nothing(cluster_factory, tmp_path):
    """A follower's log directory sits on a 16 MiB tmpfs. RF 3 acks=all writes fill it:
    the write that gets ENOSPC takes the directory offline and the broker halts (exit
    code 1, a log line naming the error), as Kafka halts a broker whose only log
    directory failed. The other two keep the ISR and the writes going; every
    acknowledged record is there at the end."""
    small = tmp_path / "small-disk"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(small)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        cluster = cluster_factory(3, node_settings={3: {"log.dirs": str(small / "logs")}})
        topic = create_rf3_topic(cluster)
        victim = cluster.node(3)
        p = Producer({"bootstrap.servers": cluster.bootstrap, "enable.idempotence": True,
                      "acks": "all", "linger.ms": 5})
        acked: dict[str, int] = {}
        failed: dict[str, str] = {}

        def report(err, msg):
            v = msg.value()[:16].decode().strip()
            if err is None:
                acked[v] = msg.offset()
            else:
                failed[v] = err.name()

        pad = b"x" * 8000
        sent = 0
        deadline = time.monotonic() + 120

        def send_one():
            nonlocal sent
            if sent - len(acked) - len(failed) > 200:  # a bounded backlog
                p.poll(0.05)
                return
            try:
                p.produce(topic, value=f"{sent:<16}".encode() + pad, partition=0, on_delivery=report)
                sent += 1
                p.poll(0)
            except BufferError:
                p.poll(0.05)

        while victim.running:
            assert time.monotonic() < deadline, "the follower never filled its disk and halted"
            send_one()
        code = victim.proc.wait(10)
        halted_at = len(acked)
        # Writes go on with the two replicas left in the ISR.
        while len(acked) < halted_at + 300:
            assert time.monotonic() < deadline, f"writes stalled after the halt ({len(acked)} acked)"
            send_one()
        assert p.flush(60) == 0
        log = victim.stderr_path.read_text(errors="replace")
        assert code == 1, f"the broker on the full disk exited with {code}"
        assert "log directory failed" in log and "No space left" in log, log[-3000:]
        assert not failed, list(failed.items())[:5]
        got = read_partition(cluster, topic, timeout=120)
        assert_nothing_lost_nothing_twice({o: v[:16].strip() for o, v in got.items()}, acked)
        print(f"[full disk] node 3 halted after {halted_at} acknowledged records; "
              f"{len(acked)} acknowledged in all")
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)
