"""`strom dev`: a local cluster of `strom node` child processes on 127.0.0.1
(broker/src/cli/dev.rs). Node i serves Kafka on base-port + i - 1 and its internal
listener on base-port + 100 + i - 1, keeps its data in <data-dir>/node-<id> (ids from
--first-node-id, default 1), and the
dev process prints `strom dev: N node(s) ready; bootstrap.servers=...` once every node
printed READY. Ctrl-C (SIGINT) or SIGTERM stops all nodes; a node that dies is reported
(`strom dev: node N exited (...); the others keep running`); when the dev process itself
is killed, its nodes get SIGTERM (PR_SET_PDEATHSIG).

Every test starts its own `strom dev` (in its own process group, on a block of ports
below the ephemeral range so no parallel test's free_port() takes them) and kills the
whole group in teardown, so nothing outlives a failing test. The module does not use
the `strom` fixture, so run.sh leaves it out of pass 2 (E2E_NODES=3) like
test_cluster.py: it would run exactly the same there. Skipped with E2E_BOOTSTRAP.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from e2e_util import wait_until
from strom_harness import (StromNode, _die_with_parent, free_port_block, parse_cluster_describe, port_accepts,
                           strom_binary)

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(bool(os.environ.get("E2E_BOOTSTRAP", "").strip()),
                       reason="strom dev starts strom processes of its own; E2E_BOOTSTRAP points at an external broker"),
]

READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


# ------------------------------------------------------------------ processes and ports


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie may wait for an init
    that does not reap: it has exited all the same)."""
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def child_pids(parent: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st is not None and st[1] == parent and st[0] not in ("Z", "X"):
                out.append(int(d))
    return out


def node_id_of(pid: int) -> int | None:
    """The node id of a `strom node --config <data-dir>/node-<i>/node.toml` process."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    for a in args:
        m = re.search(rb"node-(\d+)/node\.toml$", a)
        if m:
            return int(m.group(1))
    return None


def clean_env() -> dict:
    """The nodes read STROM_* variables as settings: drop the suite's own (as the harness does)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("STROM_BIN", "STROM_VENV", "STROM_BOOTSTRAP") and not k.startswith("STROM_E2E_")}
    env.setdefault("RUST_BACKTRACE", "1")
    return env


class StromDev:
    """One `strom dev` process (and its nodes) in its own process group."""

    def __init__(self, workdir: Path, nodes: int, base_port: int | None = None, data_dir: Path | None = None,
                 sets: dict | None = None, first_node_id: int = 1):
        """data_dir None: no --data-dir (the default ./strom-data, relative to workdir)."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = nodes
        self.base_port = base_port if base_port is not None else free_port_block(nodes)
        self.data_dir = data_dir
        self.sets = dict(sets or {})
        self.first_node_id = first_node_id
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.stdout_path: Path | None = None
        self.stderr_path: Path | None = None
        self.ready_line: str | None = None
        # conftest.py's failure hook attaches the logs of StromNode.live entries.
        self.node_id = "dev"

    def __repr__(self):
        return f"StromDev(nodes={self.nodes}, base_port={self.base_port}, dir={self.workdir})"

    # --- addresses -----------------------------------------------------------

    def address(self, node_id: int) -> str:
        return f"127.0.0.1:{self.base_port + node_id - self.first_node_id}"

    @property
    def node_ids(self) -> list[int]:
        return list(range(self.first_node_id, self.first_node_id + self.nodes))

    @property
    def bootstrap(self) -> str:
        return ",".join(self.address(i) for i in self.node_ids)

    @property
    def ports(self) -> list[int]:
        return [p for i in range(self.nodes)
                for p in (self.base_port + i, self.base_port + 100 + i, self.base_port + 552 + i, self.base_port - 1011 + i)]

    @property
    def effective_data_dir(self) -> Path:
        return self.data_dir if self.data_dir is not None else self.workdir / "strom-data"

    # --- lifecycle -----------------------------------------------------------

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def launch(self) -> "StromDev":
        assert not self.running, f"{self} is already running"
        self.starts += 1
        self.stdout_path = self.workdir / f"dev{self.starts}.stdout.log"
        self.stderr_path = self.workdir / f"dev{self.starts}.stderr.log"
        argv = [strom_binary(), "dev", "--nodes", str(self.nodes), "--base-port", str(self.base_port)]
        if self.data_dir is not None:
            argv += ["--data-dir", str(self.data_dir)]
        for k, v in self.sets.items():
            argv += ["--set", f"{k}={v}"]
        if self.first_node_id != 1:
            argv += ["--first-node-id", str(self.first_node_id)]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=self.workdir,
                                         env=clean_env(), preexec_fn=_die_with_parent, start_new_session=True)
        self.pgid = self.proc.pid
        if self not in StromNode.live:
            StromNode.live.append(self)
        return self

    def start(self, timeout: float = READY_TIMEOUT_S) -> "StromDev":
        self.launch()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> str:
        """Waits for `strom dev: N node(s) ready; bootstrap.servers=...`; -> the servers."""
        pattern = re.compile(rf"^strom dev: {self.nodes} node\(s\) ready; bootstrap\.servers=(\S+)$", re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = pattern.search(self.stdout())
            if m:
                self.ready_line = m.group(0)
                return m.group(1)
            code = self.proc.poll()
            assert code is None, f"strom dev exited {code} before its ready line\n{self.log_report()}"
            assert time.monotonic() < deadline, f"no ready line from strom dev within {timeout} s\n{self.log_report()}"
            time.sleep(0.05)

    def children(self) -> dict[int, int]:
        """{node id: pid} of the running direct children of the dev process."""
        kids = {}
        for pid in child_pids(self.pid):
            nid = node_id_of(pid)
            assert nid is not None, f"child {pid} of strom dev is not a strom node: {Path(f'/proc/{pid}/cmdline')}"
            kids[nid] = pid
        return kids

    def stop(self, sig=signal.SIGINT, timeout: float = STOP_TIMEOUT_S) -> tuple[int, float]:
        """Sends sig to the dev process; -> (exit code, seconds until it exited)."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"strom dev did not exit within {timeout} s of {signal.Signals(sig).name}\n"
                                 f"{self.log_report()}") from None
        return code, time.monotonic() - start

    def cleanup(self):
        """Teardown: SIGKILL the dev process and every node (its process group); never raises."""
        try:
            if self.proc is not None:
                try:
                    os.killpg(self.pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - teardown must not mask the test's failure
            pass
        finally:
            if self in StromNode.live:
                StromNode.live.remove(self)

    # --- output --------------------------------------------------------------

    def stdout(self) -> str:
        try:
            return self.stdout_path.read_text(errors="replace")
        except (FileNotFoundError, AttributeError):
            return ""

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except (FileNotFoundError, AttributeError):
            return ""

    def log_report(self, lines: int = 60) -> str:
        def tail(t):
            return "\n".join(t.splitlines()[-lines:]) or "<empty>"
        return (f"--- {self} start #{self.starts} stdout ({self.stdout_path}):\n{tail(self.stdout())}\n"
                f"--- stderr (the dev process and its nodes) ({self.stderr_path}):\n{tail(self.stderr())}\n")


@pytest.fixture
def dev_factory(tmp_path):
    """make(nodes, **kw) -> a not yet started StromDev of this test; every one is killed
    (with its whole process group) in teardown."""
    devs: list[StromDev] = []

    def make(nodes: int, **kw) -> StromDev:
        d = StromDev(tmp_path / f"dev{len(devs) + 1}", nodes, **kw)
        devs.append(d)
        return d

    yield make
    for d in devs:
        d.cleanup()


# ------------------------------------------------------------------ checks


def assert_all_exited(pids, timeout: float, what: str, dev: StromDev):
    try:
        wait_until(lambda: not [p for p in pids if alive(p)], timeout, interval=0.1, what=what)
    except AssertionError as e:
        raise AssertionError(f"{e}: still alive {[p for p in pids if alive(p)]}\n{dev.log_report()}") from None


def assert_ports_released(dev: StromDev, timeout: float = 10):
    wait_until(lambda: not [p for p in dev.ports if port_accepts(p)], timeout,
               what=f"nothing listening on the ports {dev.ports} of stopped nodes")


def graceful_stops(dev: StromDev) -> int:
    """How many nodes logged their graceful shutdown (the `stopping` line of `strom node`)."""
    return len(re.findall(r"strom::cli::node: stopping", dev.stderr()))


def assert_no_panic(dev: StromDev):
    assert "panicked" not in dev.stderr(), dev.log_report(200)


def wait_brokers(dev: StromDev, bootstrap: str | None = None) -> AdminClient:
    """A confluent AdminClient that sees every node of `dev` as a broker at its address."""
    admin = AdminClient({"bootstrap.servers": bootstrap or dev.bootstrap})
    want = {i: dev.address(i) for i in dev.node_ids}

    def seen():
        md = admin.list_topics(timeout=5)
        return {b.id: f"{b.host}:{b.port}" for b in md.brokers.values()} == want
    wait_until(seen, 20, what=f"the client's metadata listing brokers {want}")
    return admin


def client_topics(admin: AdminClient) -> dict:
    """{name: {partition: (leader, replicas, isr)}}."""
    md = admin.list_topics(timeout=10)
    return {n: {p.id: (p.leader, sorted(p.replicas), sorted(p.isrs)) for p in t.partitions.values()}
            for n, t in md.topics.items() if t.error is None}


def topic_id(admin: AdminClient, name: str) -> str:
    return str(admin.describe_topics(TopicCollection([name]))[name].result(timeout=30).topic_id)


def create_topics(admin: AdminClient, topics: list[NewTopic]):
    fs = admin.create_topics(topics, operation_timeout=30)
    for f in fs.values():
        f.result(timeout=60)


def produce(bootstrap: str, topic: str, records: list[tuple[int, bytes]]):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    errors = []
    for partition, value in records:
        p.produce(topic, value=value, partition=partition,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0 and not errors, errors


def read_all(bootstrap: str, topic: str, partitions: int, expected: int, timeout: float = 30) -> list[tuple[int, bytes]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-unused", "enable.auto.commit": False,
                  "enable.auto.offset.store": False})
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < expected:
            assert time.monotonic() < deadline, f"read {len(got)} of {expected} records of {topic}"
            m = c.poll(0.5)
            if m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF):
                continue
            assert not m.error(), m.error()
            got.append((m.partition(), m.value()))
        return sorted(got)
    finally:
        c.close()


def strom_cli(*args, input: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_")}
    return subprocess.run([strom_binary(), *map(str, args)], input=input,
                          stdin=subprocess.DEVNULL if input is None else None, capture_output=True, text=True,
                          timeout=timeout, env=env)


def retry(fn, timeout: float, what: str):
    """fn() until it returns without raising; -> (its value, seconds it took)."""
    start = time.monotonic()
    last = None
    while True:
        try:
            return fn(), time.monotonic() - start
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: no success within {timeout} s; last error: {last}")
        time.sleep(0.5)


# ------------------------------------------------------------------ tests


def test_three_nodes_kill_one_stop_and_restart(dev_factory, tmp_path, record_property):
    dev = dev_factory(3, data_dir=tmp_path / "dev-data")
    t0 = time.monotonic()
    servers = dev.start().wait_ready()
    ready_s = time.monotonic() - t0
    assert servers == dev.bootstrap, dev.ready_line
    out = dev.stdout()
    for i in dev.node_ids:
        assert re.search(rf"^\[node {i}\] strom node {i} READY kafka={dev.address(i)} "
                         rf"internal=127\.0\.0\.1:{dev.base_port + 100 + i - 1}\b", out, re.M), out
        cfg = (dev.data_dir / f"node-{i}" / "node.toml").read_text()
        assert f'"node.id" = {i}' in cfg, cfg
    kids = dev.children()
    assert sorted(kids) == [1, 2, 3], f"children of strom dev: {kids}"

    admin = wait_brokers(dev)
    d = parse_cluster_describe(strom_cli("cluster", "describe", "-b", dev.bootstrap).stdout)
    assert sorted(d["voters"]) == [1, 2, 3] and d["quorum_leader"] in (1, 2, 3), d
    assert d["brokers"] == {i: dev.address(i) for i in dev.node_ids}, d

    rf3, rf1, doomed = "dev-rf3", "dev-rf1", "dev-doomed"
    create_topics(admin, [NewTopic(rf3, 3, 3), NewTopic(rf1, 3, 1), NewTopic(doomed, 1, 1)])

    def spread():
        t = client_topics(admin)
        assert sorted(t.get(rf3, {})) == [0, 1, 2] and sorted(t.get(rf1, {})) == [0, 1, 2], t
        assert all(r == [1, 2, 3] and isr == [1, 2, 3] for _, r, isr in t[rf3].values()), t[rf3]
        assert {leader for leader, _, _ in t[rf1].values()} == {1, 2, 3}, f"RF-1 leaders not spread: {t[rf1]}"
        return t
    before = wait_until(spread, 20, what="the RF-3 topic on every node and RF-1 leaders on all three")
    ids_before = {t: topic_id(admin, t) for t in (rf3, rf1)}
    records = [(p, f"p{p}-r{i}".encode()) for p in range(3) for i in range(10)]
    produce(dev.bootstrap, rf1, records)

    # kill -9 the quorum leader: strom dev reports it and keeps the others running.
    victim = d["quorum_leader"]
    a, b = [i for i in dev.node_ids if i != victim]
    os.kill(kids[victim], signal.SIGKILL)
    msg = wait_until(lambda: re.search(rf"^strom dev: node {victim} exited \((.*)\); the others keep running$",
                                       dev.stderr(), re.M), 10, what=f"strom dev reporting node {victim}'s exit")
    assert "9" in msg.group(1) or "KILL" in msg.group(1), msg.group(0)
    time.sleep(1.5)  # one more report period: dev must not stop because of it
    assert dev.running, f"strom dev stopped after one node died\n{dev.log_report()}"
    assert dev.children() == {a: kids[a], b: kids[b]}, "the other nodes keep running (the same processes)"
    assert not re.search(rf"node ({a}|{b}) exited", dev.stderr()), dev.log_report()

    # Topic admin through the survivors: create bootstrapped from one (confluent),
    # delete bootstrapped from the other (`strom topic delete`). Until the dead node is
    # fenced (broker.session.timeout.ms) clients may still route to it: retry.
    during = "dev-during-outage"
    admin_b = AdminClient({"bootstrap.servers": dev.address(b)})

    def create():
        try:
            admin_b.create_topics([NewTopic(during, 1, 1)], operation_timeout=10,
                                  request_timeout=15)[during].result(timeout=20)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # an earlier attempt got through
                raise
    _, create_s = retry(create, 45, f"creating {during} through node {b} with node {victim} dead")

    attempts = []

    def delete():
        p = strom_cli("topic", "delete", "-b", dev.address(a), doomed)
        attempts.append(p)
        # UNKNOWN_TOPIC after a failed attempt: that attempt got through after all.
        assert p.returncode == 0 or (len(attempts) > 1 and "UNKNOWN_TOPIC_OR_PARTITION" in p.stderr), p.stderr
        return p
    _, delete_s = retry(delete, 45, f"deleting {doomed} through node {a} with node {victim} dead")
    admin_a = AdminClient({"bootstrap.servers": dev.address(a)})
    wait_until(lambda: all(during in client_topics(x) and doomed not in client_topics(x) for x in (admin_a, admin_b)),
               20, what="both survivors agreeing on the created and the deleted topic")

    # Ctrl-C: the two nodes stop gracefully, dev exits 0.
    code, stop_s = dev.stop(signal.SIGINT)
    assert code == 0, dev.log_report()
    assert_all_exited([kids[a], kids[b]], 5, "the nodes exited with strom dev", dev)
    assert_ports_released(dev)
    assert graceful_stops(dev) == 2, f"expected the 2 running nodes to stop gracefully\n{dev.log_report()}"
    assert_no_panic(dev)

    # Again with the same data dir: the same cluster, metadata and records come back.
    t1 = time.monotonic()
    dev.start()
    restart_s = time.monotonic() - t1
    assert sorted(dev.children()) == [1, 2, 3]
    admin = wait_brokers(dev)

    def recovered():
        t = client_topics(admin)
        assert doomed not in t, f"{doomed} was deleted before the restart"
        assert {rf3, rf1, during} <= set(t), sorted(t)
        assert {i: r for i, (_, r, _) in t[rf3].items()} == {i: r for i, (_, r, _) in before[rf3].items()}
        assert {i: r for i, (_, r, _) in t[rf1].items()} == {i: r for i, (_, r, _) in before[rf1].items()}
        assert all(leader >= 0 for leader, _, _ in t[rf1].values()), t[rf1]
        return t
    wait_until(recovered, 30, what="the topics of before the restart, with their replicas and leaders")
    assert {t: topic_id(admin, t) for t in (rf3, rf1)} == ids_before, "topic ids survive the restart"
    assert read_all(dev.bootstrap, rf1, 3, len(records)) == sorted(records), \
        "records written before the kill -9 and the restart are all there"
    code, _ = dev.stop(signal.SIGTERM)
    assert code == 0, dev.log_report()
    assert_no_panic(dev)
    record_property("timings", f"strom dev 3 nodes: ready {ready_s:.1f} s; after kill -9 of node {victim} (quorum "
                               f"leader): create via node {b} {create_s:.1f} s, delete via node {a} {delete_s:.1f} s; "
                               f"SIGINT -> exit "
                               f"{stop_s:.1f} s; restart ready {restart_s:.1f} s")


@pytest.mark.parametrize("how", ["SIGTERM to strom dev", "SIGINT to the process group (Ctrl-C)"])
def test_stop_signal_stops_every_node(dev_factory, how):
    dev = dev_factory(3, data_dir=None)
    dev.start()
    kids = dev.children()
    assert sorted(kids) == [1, 2, 3]
    wait_brokers(dev)
    start = time.monotonic()
    if how.startswith("SIGTERM"):
        dev.proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(dev.pgid, signal.SIGINT)  # what a terminal's Ctrl-C does: the nodes get it too
    try:
        code = dev.proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"strom dev still running {STOP_TIMEOUT_S} s after {how}\n{dev.log_report()}") from None
    took = time.monotonic() - start
    assert code == 0, f"strom dev exited {code} after {how}\n{dev.log_report()}"
    assert took < 25, f"stopping took {took:.1f} s"
    assert_all_exited(kids.values(), 2, "every node gone once strom dev exited", dev)
    assert_ports_released(dev)
    assert graceful_stops(dev) == 3, f"every node should stop gracefully\n{dev.log_report()}"
    assert not re.search(r"^strom dev: (node \d+|every node has) exited", dev.stderr(), re.M), \
        f"a stop is not a node dying\n{dev.log_report()}"
    assert_no_panic(dev)
    assert (dev.workdir / "strom-data" / "node-1" / "node.toml").is_file(), "default --data-dir is ./strom-data"


def test_kill9_of_strom_dev_takes_its_nodes_down(dev_factory, tmp_path):
    dev = dev_factory(3, data_dir=tmp_path / "data")
    dev.start()
    kids = dev.children()
    assert sorted(kids) == [1, 2, 3]
    wait_brokers(dev)
    os.kill(dev.pid, signal.SIGKILL)
    dev.proc.wait(timeout=10)
    # The nodes are orphans now, still in the dev process group (the fixture's killpg
    # would find them): they must exit by themselves, on the SIGTERM PR_SET_PDEATHSIG sends.
    assert_all_exited(kids.values(), 20, "the nodes exiting after strom dev was killed", dev)
    assert_ports_released(dev)
    assert graceful_stops(dev) == 3, f"the nodes got SIGTERM and stopped gracefully\n{dev.log_report()}"
    assert_no_panic(dev)

    # The data dir is fine for the next start.
    dev.start()
    wait_brokers(dev)
    code, _ = dev.stop(signal.SIGINT)
    assert code == 0


def test_single_node_round_trip(dev_factory, tmp_path):
    """`strom dev` (one node, the default) with --set: the setting reaches the node
    (num.partitions), strom produce / confluent / strom consume round trip."""
    dev = dev_factory(1, data_dir=tmp_path / "data", sets={"num.partitions": 3})
    servers = dev.start().wait_ready()
    assert servers == dev.address(1)
    assert sorted(dev.children()) == [1]
    assert '"num.partitions" = "3"' in (dev.data_dir / "node-1" / "node.toml").read_text()
    wait_brokers(dev)

    topic = "dev-round-trip"
    p = strom_cli("topic", "create", "-b", servers, topic)
    assert p.returncode == 0 and "(3 partitions, replication factor 1," in p.stdout, p.stdout + p.stderr
    lines = [f"key-{i % 7}:value-{i}" for i in range(30)]
    p = strom_cli("produce", "-b", servers, "-t", topic, "-K", ":", input="".join(f"{x}\n" for x in lines))
    assert p.returncode == 0 and "30 record(s) written, 0 failed" in p.stderr, p.stderr
    got = read_all(servers, topic, 3, 30)
    assert sorted(v for _, v in got) == sorted(x.split(":", 1)[1].encode() for x in lines)
    assert len({p for p, _ in got}) > 1, "keys spread over the 3 partitions"

    p = strom_cli("consume", "-b", servers, "-t", topic, "--from-beginning", "--print-key", "-n", 30)
    assert p.returncode == 0, p.stderr
    assert sorted(p.stdout.splitlines()) == sorted(x.replace(":", "\t", 1) for x in lines)

    code, took = dev.stop(signal.SIGINT)
    assert code == 0 and took < 20, (code, took, dev.log_report())
    assert graceful_stops(dev) == 1
    assert_no_panic(dev)


def test_dev_nodes_are_set_up_like_a_kafka_test_rig(dev_factory, tmp_path):
    """--first-node-id numbers the nodes from 0, as Kafka's own test rigs do; each node's
    advertised listener is set in its config, so DescribeConfigs calls it a static broker
    setting (as for a Kafka node whose server.properties sets it); a new group's first
    rebalance does not wait (group.initial.rebalance.delay.ms=0, as in the server.properties
    Kafka ships); --set replaces one of dev's own settings (default.replication.factor)
    instead of clashing with it."""
    from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType
    dev = dev_factory(2, data_dir=tmp_path / "data", sets={"default.replication.factor": 2}, first_node_id=0)
    servers = dev.start().wait_ready()
    assert servers == f"{dev.address(0)},{dev.address(1)}"
    assert sorted(dev.children()) == [0, 1]
    admin = wait_brokers(dev)
    res = admin.describe_configs([ConfigResource(ResourceType.BROKER, "0")])
    cfg = list(res.values())[0].result(timeout=30)
    adv = cfg["advertised.listeners"]
    assert adv.value == f"PLAINTEXT://{dev.address(0)}", adv
    assert adv.source in (ConfigSource.STATIC_BROKER_CONFIG, ConfigSource.STATIC_BROKER_CONFIG.value), adv
    delay = cfg["group.initial.rebalance.delay.ms"]
    assert delay.value == "0", delay  # Kafka's shipped server.properties for development
    admin.create_topics([NewTopic("dev-rf-default", 1)])["dev-rf-default"].result(timeout=30)
    wait_until(lambda: len(admin.list_topics("dev-rf-default", timeout=5).topics["dev-rf-default"].partitions[0].replicas) == 2,
               20, what="the topic with dev's replaced default.replication.factor (2)")
    code, _ = dev.stop(signal.SIGINT)
    assert code == 0, dev.log_report()
    assert_no_panic(dev)


def test_nodes_zero_is_a_usage_error(tmp_path):
    p = strom_cli("dev", "--nodes", "0", "--data-dir", tmp_path / "d", "--base-port", free_port_block(1))
    assert p.returncode == 2 and "--nodes must be at least 1" in p.stderr, (p.returncode, p.stderr)
    assert not (tmp_path / "d").exists(), "nothing is created for a usage error"


def test_node_that_cannot_start_fails_strom_dev(dev_factory):
    """Node 2's Kafka port is taken, so node 2 exits at once ("Address already in use").
    strom dev must say so and fail (exit code != 0, the other nodes stopped) promptly
    instead of waiting for a READY line that cannot come."""
    dev = dev_factory(3, data_dir=None)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", dev.base_port + 1))
        squatter.listen()
        dev.launch()
        wait_until(lambda: "Address already in use" in dev.stderr(), 20, what="node 2 failing to bind")
        kids = dev.children()
        try:
            code = dev.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                "strom dev still running 30 s after node 2 exited (its port was taken), without a ready line "
                f"and without saying that node 2 is gone (stderr has no 'node 2 exited'); children alive: "
                f"{dev.children()}\n{dev.log_report(30)}") from None
    assert code != 0, dev.log_report()
    assert_all_exited(kids.values(), 5, "the other nodes stopped with strom dev", dev)
