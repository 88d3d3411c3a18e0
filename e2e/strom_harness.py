"""Start, stop, kill and restart real `strom` processes for the end-to-end tests.

The contract with the binary (see e2e/README.md):

* `$STROM_BIN node --config <file.toml>` starts one node; the TOML file holds
  Kafka-named settings as quoted keys.
* The node prints a line containing `READY` on stdout once it serves Kafka
  clients; logs go to stderr.
* SIGTERM is a graceful shutdown, SIGKILL a crash; starting again with the same
  config and data dir brings the same data back.

Every node gets its own free ports and its own directory (config, data, one pair
of stdout/stderr files per start), so tests can run in parallel.

`StromNode` is one node that is its own single-voter quorum; `StromCluster` is N
nodes (each both controller and broker) forming one quorum. Both offer the same
"target" interface the tests use: `bootstrap`, `nodes`, `node(id)`, `node_ids`,
`start()`, `terminate()`, `cleanup()`, `dead_nodes()`, `log_report()`.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import re
import resource
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


class HarnessError(RuntimeError):
    """The node did not do what the harness contract says."""


def strom_binary() -> str:
    """The strom executable from $STROM_BIN, or a clear error."""
    path = os.environ.get("STROM_BIN")
    if not path:
        raise HarnessError(
            "STROM_BIN is not set: point it at the strom binary "
            "(e.g. STROM_BIN=$PWD/target/debug/strom), or set E2E_BOOTSTRAP=host:port "
            "to run the tests against an already running Kafka-compatible broker")
    p = Path(path)
    if not p.is_file():
        raise HarnessError(f"STROM_BIN={path!r} does not exist (build it first: cargo build)")
    if not os.access(p, os.X_OK):
        raise HarnessError(f"STROM_BIN={path!r} is not executable")
    return str(p.resolve())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, Path):
        v = str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    raise TypeError(f"cannot write {v!r} ({type(v).__name__}) as a TOML value")


def toml_document(settings: dict) -> str:
    return "".join(f"{json.dumps(str(k))} = {toml_value(v)}\n" for k, v in settings.items())


try:
    _LIBC = ctypes.CDLL("libc.so.6", use_errno=True)  # loaded before any fork
except OSError:
    _LIBC = None


def _die_with_parent():
    """Runs in the child before exec: SIGKILL it when the test process dies."""
    if _LIBC is not None:
        _LIBC.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


def _child_setup(address_space: int | None):
    """preexec_fn: die with the parent and, if asked, cap the address space
    (RLIMIT_AS, what `ulimit -v` sets): an allocation past it fails instead of
    being overcommitted."""
    def setup():
        _die_with_parent()
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    return setup


def _tail(path: Path | None, lines: int) -> str:
    if path is None:
        return "<not started>"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "<no file>"
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:]) or "<empty>"


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port_block(nodes: int) -> int:
    """A base port for `strom dev --nodes <nodes>`: base..base+nodes-1 (Kafka),
    base+100.. (internal), base+552.. (admin) and base-1011.. (schema registry) free, all
    below the kernel's ephemeral range (which free_port() of the other tests draws
    from)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    top = low - 110 - nodes if low > 12000 else 30000
    r = random.Random()
    for _ in range(500):
        base = r.randrange(10000, top)
        if all(_bindable(p) for i in range(nodes) for p in (base + i, base + 100 + i, base + 552 + i, base - 1011 + i)):
            return base
    raise RuntimeError(f"no free block of ports for {nodes} nodes below {top}")


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def cluster_describe(bootstrap: str, binary: str | None = None, timeout: float = 30) -> str:
    """stdout of `strom cluster describe -b <bootstrap>`; HarnessError when it fails."""
    p = subprocess.run([binary or strom_binary(), "cluster", "describe", "-b", bootstrap],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise HarnessError(f"strom cluster describe -b {bootstrap} exited {p.returncode}\n"
                           f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}")
    return p.stdout


def parse_cluster_describe(text: str) -> dict:
    """The parts of `strom cluster describe` the tests check:
    {"cluster_id", "quorum_leader" (None when it says no leader is reachable),
     "brokers": {id: address}, "voters": {id: role}}."""
    out = {"cluster_id": None, "quorum_leader": None, "brokers": {}, "voters": {}}
    table = None
    for line in text.splitlines():
        m = re.match(r"Cluster id:\s*(\S*)", line)
        if m:
            out["cluster_id"] = m.group(1)
            continue
        m = re.match(r"Quorum leader:\s*(-?\d+)", line)
        if m:
            out["quorum_leader"] = int(m.group(1))
            continue
        words = line.split()
        if not words:
            table = None
            continue
        if words[0] in ("BROKER", "VOTER"):
            table = words[0]
            continue
        if table == "BROKER" and words[0].isdigit():
            out["brokers"][int(words[0])] = words[1]
        elif table == "VOTER" and words[0].isdigit():
            out["voters"][int(words[0])] = words[1]
    return out


def metadata_brokers(host_port: str, timeout: float = 2.0) -> tuple[dict[int, str], int]:
    """A Metadata v1 request (no topics) straight to one broker; -> ({node id: "host:port"}
    of the brokers it lists as live, controller id). A few dozen bytes on a socket, so the
    harness needs no Kafka client. Raises OSError/ValueError when there is no answer."""
    brokers, controller, _ = _metadata_v1(host_port, [], timeout)
    return brokers, controller


def metadata_leaders(host_port: str, topic: str, timeout: float = 2.0) -> dict[int, int] | None:
    """The partition leaders of `topic` as the broker at host_port alone sees them:
    {partition: leader id}, or None when it does not know the topic (yet)."""
    _, _, topics = _metadata_v1(host_port, [topic], timeout)
    err, parts = topics.get(topic, (3, {}))
    return None if err != 0 else parts


def _metadata_v1(host_port: str, topics: list[str], timeout: float):
    """-> (brokers {id: "host:port"}, controller id, {topic: (error, {partition: leader})})."""
    host, port = host_port.rsplit(":", 1)
    client_id = b"strom-e2e-harness"
    body = struct.pack(">hhih", 3, 1, 1, len(client_id)) + client_id + struct.pack(">i", len(topics))
    for t in topics:
        body += struct.pack(">h", len(t.encode())) + t.encode()
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(body)) + body)

        def read(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise ValueError(f"{host_port} closed the connection")
                buf += chunk
            return buf

        size, = struct.unpack(">i", read(4))
        data = read(size)
    pos = 4  # correlation id

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take(">h")
        if n < 0:
            return None
        v = data[pos:pos + n].decode()
        pos += n
        return v

    brokers = {}
    for _ in range(take(">i")):
        node_id = take(">i")
        h = string()
        p = take(">i")
        string()  # rack
        brokers[node_id] = f"{h}:{p}"
    controller = take(">i")
    out = {}
    for _ in range(take(">i")):
        err = take(">h")
        name = string()
        take(">b")  # is_internal
        parts = {}
        for _ in range(take(">i")):
            take(">h")  # partition error
            index = take(">i")
            parts[index] = take(">i")
            for _ in range(take(">i")):
                take(">i")  # replicas
            for _ in range(take(">i")):
                take(">i")  # isr
        out[name] = (err, parts)
    return brokers, controller, out


class ExternalBroker:
    """A broker the tests did not start (E2E_BOOTSTRAP=host:port): no kill, no restart."""

    is_external = True
    node_id = None
    node_ids = None  # unknown
    nodes: list = []

    def dead_nodes(self) -> list:
        return []

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap

    def __repr__(self):
        return f"ExternalBroker({self.bootstrap})"


class StromNode:
    """One `strom node` process with its own ports, config file and data dir."""

    is_external = False
    live: list["StromNode"] = []  # nodes started and not yet cleaned up (for failure reports)

    def __init__(self, workdir: Path, settings: dict | None = None, node_id: int = 1,
                 binary: str | None = None, ports: tuple[int, ...] | None = None):
        """ports: (kafka, internal, admin[, schema registry]), free ones when not given. A
        node of a cluster gets its `controller.quorum.voters` through settings."""
        self.binary = binary or strom_binary()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.node_id = node_id
        ports = tuple(ports or free_ports(4))
        if len(ports) < 4:
            ports += tuple(free_ports(1))
        self.kafka_port, self.internal_port, self.admin_port, self.registry_port = ports[:4]
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "node.toml"
        self.settings = {
            "node.id": node_id,
            "process.roles": "broker,controller",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.kafka_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.kafka_port}",
            "internal.listener": f"127.0.0.1:{self.internal_port}",
            "admin.listener": f"127.0.0.1:{self.admin_port}",
            "schema.registry.listener": f"127.0.0.1:{self.registry_port}",
            "controller.quorum.voters": f"{node_id}@127.0.0.1:{self.internal_port}",
            "data.dir": str(self.data_dir),
            "num.partitions": 1,
            "auto.create.topics.enable": True,
        }
        self.settings.update(settings or {})
        self.proc: subprocess.Popen | None = None
        # RLIMIT_AS in bytes for the process (`ulimit -v`), None for no limit.
        self.address_space_limit: int | None = None
        self.starts = 0
        self.stdout_path: Path | None = None
        self.stderr_path: Path | None = None
        self.ready_line: str | None = None
        self.write_config()

    def __repr__(self):
        state = "running" if self.running else "stopped"
        return f"StromNode(id={self.node_id}, {self.bootstrap}, {state}, dir={self.workdir})"

    # --- configuration -------------------------------------------------------

    def write_config(self):
        self.config_path.write_text(toml_document(self.settings))

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def admin_url(self) -> str:
        """The admin listener's base URL (metrics, health, the web console)."""
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def registry_url(self) -> str:
        """The schema registry listener's base URL (Confluent's REST API)."""
        return f"http://127.0.0.1:{self.registry_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # The "target" interface shared with StromCluster: a single node is a cluster of one.
    @property
    def nodes(self) -> list["StromNode"]:
        return [self]

    @property
    def node_ids(self) -> list[int]:
        return [self.node_id]

    def node(self, node_id: int) -> "StromNode":
        if node_id != self.node_id:
            raise HarnessError(f"{self} has no node {node_id}")
        return self

    def dead_nodes(self) -> list["StromNode"]:
        return [] if self.running else [self]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    # --- lifecycle -----------------------------------------------------------

    def start(self, timeout: float = READY_TIMEOUT_S) -> "StromNode":
        """Start the process and wait for READY. A node of a multi-node cluster prints
        READY only once a quorum exists: start its peers with launch() first."""
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> "StromNode":
        """Start the process without waiting for READY (see wait_ready)."""
        if self.running:
            raise HarnessError(f"{self} is already running")
        # Nothing may still be serving our port (a previous incarnation that did not die
        # would make READY below meaningless).
        deadline = time.monotonic() + 10
        while port_accepts(self.kafka_port):
            if time.monotonic() > deadline:
                raise HarnessError(f"port {self.kafka_port} still accepts connections before start "
                                   f"#{self.starts + 1}: an old process of this node is still alive")
            time.sleep(0.1)
        self.starts += 1
        self.stdout_path = self.workdir / f"start{self.starts}.stdout.log"
        self.stderr_path = self.workdir / f"start{self.starts}.stderr.log"
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        # strom reads STROM_* variables as settings that beat the config file
        # (STROM_BIN would become a setting "bin"): drop the suite's own.
        for k in list(env):
            if k in ("STROM_BIN", "STROM_VENV", "STROM_BOOTSTRAP") or k.startswith("STROM_E2E_"):
                del env[k]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [self.binary, "node", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                cwd=self.workdir, env=env, preexec_fn=_child_setup(self.address_space_limit),
                start_new_session=True)
        if self not in StromNode.live:
            StromNode.live.append(self)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while True:
            line = self._ready_line()
            if line is not None:
                self.ready_line = line
                break
            code = self.proc.poll()
            if code is not None:
                raise HarnessError(
                    f"strom exited with code {code} before printing READY "
                    f"(start #{self.starts})\n{self.log_report()}")
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"strom did not print READY within {timeout:.0f} s "
                    f"(start #{self.starts})\n{self.log_report()}")
            time.sleep(0.05)
        # READY means "serves Kafka clients": the listener must accept connections.
        while not port_accepts(self.kafka_port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise HarnessError(
                    f"strom printed {self.ready_line!r} but nothing accepts connections on "
                    f"{self.bootstrap}\n{self.log_report()}")
            time.sleep(0.05)

    def _ready_line(self) -> str | None:
        try:
            text = self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return None
        for line in text.splitlines():
            if "READY" in line:
                return line
        return None

    def _kill_group(self):
        """SIGKILL the node and anything it started (it runs in its own session).
        Only called while the node's process is not yet reaped."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def kill9(self):
        """SIGKILL: a crash. Returns once the process is gone."""
        if not self.running:
            raise HarnessError(f"kill9: {self} is not running")
        self._kill_group()
        self.proc.wait(timeout=STOP_TIMEOUT_S)

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then wait for the graceful shutdown; returns the exit code.

        A node still running after `timeout` is killed and HarnessError raised.
        """
        if not self.running:
            raise HarnessError(f"terminate: {self} is not running")
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill_group()
            self.proc.wait()
            raise HarnessError(
                f"strom did not exit within {timeout:.0f} s of SIGTERM\n{self.log_report()}")

    def restart(self, graceful: bool = True, timeout: float = READY_TIMEOUT_S) -> "StromNode":
        """Stop (SIGTERM, or SIGKILL when graceful=False) and start again, same config and data."""
        if self.running:
            if graceful:
                self.terminate()
            else:
                self.kill9()
        return self.start(timeout)

    def cleanup(self):
        """Teardown: stop the node whatever its state; never raises."""
        try:
            if self.running:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._kill_group()  # while the leader is unreaped, its group id is ours
                    self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - teardown must not mask the test's own failure
            pass
        finally:
            if self in StromNode.live:
                StromNode.live.remove(self)

    # --- logs ----------------------------------------------------------------

    def log_report(self, lines: int = 60) -> str:
        return (f"--- {self} config {self.config_path}:\n{self.config_path.read_text()}"
                f"--- stdout tail ({self.stdout_path}):\n{_tail(self.stdout_path, lines)}\n"
                f"--- stderr tail ({self.stderr_path}):\n{_tail(self.stderr_path, lines)}\n")


# Settings every node of a StromCluster gets unless the test overrides them.
CLUSTER_DEFAULTS = {
    "broker.heartbeat.interval.ms": 500,
}


class StromCluster:
    """N `strom node` processes (each both metadata controller and broker) forming one
    quorum on 127.0.0.1, each with its own ports and directory `<workdir>/node<id>`.

    Node ids are 1..N. A node prints READY only once a quorum (a majority of the
    voters) exists, so start() launches every stopped node first and then waits for
    all READY lines; starting and waiting one by one would deadlock on the first.
    """

    is_external = False

    def __init__(self, workdir: Path, size: int = 3, settings: dict | None = None,
                 node_settings: dict[int, dict] | None = None, binary: str | None = None):
        """settings go to every node (after CLUSTER_DEFAULTS); node_settings[id] to one."""
        if size < 1:
            raise HarnessError(f"a cluster needs at least one node, not {size}")
        self.workdir = Path(workdir)
        self.binary = binary or strom_binary()
        ports = free_ports(4 * size)  # all at once: no two nodes get the same port
        pairs = [tuple(ports[4 * i:4 * i + 4]) for i in range(size)]
        self.voters = ",".join(f"{i + 1}@127.0.0.1:{p[1]}" for i, p in enumerate(pairs))
        self.nodes: list[StromNode] = []
        for i, pair in enumerate(pairs, start=1):
            s = dict(CLUSTER_DEFAULTS)
            s["controller.quorum.voters"] = self.voters
            s.update(settings or {})
            s.update((node_settings or {}).get(i, {}))
            self.nodes.append(StromNode(self.workdir / f"node{i}", settings=s, node_id=i,
                                        binary=self.binary, ports=pair))

    def __repr__(self):
        return f"StromCluster({', '.join(repr(n) for n in self.nodes)})"

    # --- addresses -----------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """Every node's Kafka address, comma-separated (clients take it as bootstrap.servers)."""
        return ",".join(n.bootstrap for n in self.nodes)

    @property
    def node_ids(self) -> list[int]:
        return [n.node_id for n in self.nodes]

    def node(self, node_id: int) -> StromNode:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise HarnessError(f"no node {node_id} in {self}")

    def bootstrap_without(self, *node_ids: int) -> str:
        """The Kafka addresses of the other nodes (e.g. of the survivors of a kill)."""
        return ",".join(n.bootstrap for n in self.nodes if n.node_id not in node_ids)

    @property
    def running(self) -> bool:
        return all(n.running for n in self.nodes)

    def dead_nodes(self) -> list[StromNode]:
        return [n for n in self.nodes if not n.running]

    # --- lifecycle -----------------------------------------------------------

    def start(self, timeout: float = READY_TIMEOUT_S, wait_brokers: bool = True) -> "StromCluster":
        """Launch every node that is not running, then wait for each one's READY.

        wait_brokers: then also wait until every node's Metadata lists every node as a
        live broker. strom prints READY once the node is registered with the quorum, a
        moment before the controller unfences it, so right after the READY lines a
        node's Metadata may still miss a broker, even itself (test_cluster.py::
        test_ready_means_listed_in_metadata checks this without the wait). A client
        started in that moment sees a partial cluster: librdkafka, for one, then drops
        the connection its admin request was on (_DESTROY_BROKER).
        """
        starting = [n for n in self.nodes if not n.running]
        for n in starting:
            n.launch()
        deadline = time.monotonic() + timeout
        for n in starting:
            n.wait_ready(max(1.0, deadline - time.monotonic()))
        if wait_brokers:
            self.wait_brokers(timeout=max(1.0, deadline - time.monotonic()))
        return self

    def wait_brokers(self, expected: list[int] | None = None, timeout: float = 30):
        """Wait until the Metadata of every running node lists exactly `expected` (default:
        the running nodes) as live brokers at their addresses."""
        want = {n.node_id: n.bootstrap for n in self.nodes
                if (n.node_id in expected if expected is not None else n.running)}
        deadline = time.monotonic() + timeout
        while True:
            views = {}
            for n in self.nodes:
                if n.running:
                    try:
                        views[n.node_id] = metadata_brokers(n.bootstrap)[0]
                    except (OSError, ValueError, struct.error) as e:
                        views[n.node_id] = repr(e)
            if all(v == want for v in views.values()):
                return
            if time.monotonic() > deadline:
                raise HarnessError(f"the nodes' Metadata did not list brokers {sorted(want)} within "
                                   f"{timeout:.0f} s; last answers: {views}\n{self.log_report(30)}")
            time.sleep(0.05)

    def kill9(self, node_id: int):
        """SIGKILL one node (a crash); returns once its process is gone."""
        self.node(node_id).kill9()

    def restart(self, node_id: int, graceful: bool = True, timeout: float = READY_TIMEOUT_S) -> StromNode:
        """(Stop, when running, with SIGTERM or SIGKILL, and) start one node again with the
        same config and data dir; returns once it printed READY. A node killed before
        is simply started."""
        return self.node(node_id).restart(graceful=graceful, timeout=timeout)

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> dict[int, int]:
        """SIGTERM every running node at once, wait for each; -> {node id: exit code}.
        A node still running after `timeout` is killed and HarnessError raised."""
        running = [n for n in self.nodes if n.running]
        for n in running:
            n.proc.send_signal(signal.SIGTERM)
        codes, stuck = {}, []
        deadline = time.monotonic() + timeout
        for n in running:
            try:
                codes[n.node_id] = n.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                n._kill_group()
                n.proc.wait()
                stuck.append(n)
        if stuck:
            raise HarnessError(f"nodes {[n.node_id for n in stuck]} did not exit within {timeout:.0f} s "
                               f"of SIGTERM\n" + "".join(n.log_report() for n in stuck))
        return codes

    def cleanup(self):
        """Teardown: stop every node whatever its state; never raises. SIGTERM goes to
        all nodes at once (one by one, the last ones would wait for a lost quorum)."""
        try:
            for n in self.nodes:
                if n.running:
                    n.proc.send_signal(signal.SIGTERM)
        except Exception:  # noqa: BLE001
            pass
        for n in self.nodes:
            n.cleanup()

    # --- quorum --------------------------------------------------------------

    def describe(self, *node_ids: int) -> dict:
        """`strom cluster describe` through the given nodes (default: all), parsed
        (see parse_cluster_describe), plus the raw text under "text"."""
        bootstrap = ",".join(self.node(i).bootstrap for i in node_ids) if node_ids else self.bootstrap
        text = cluster_describe(bootstrap, self.binary)
        out = parse_cluster_describe(text)
        out["text"] = text
        return out

    def quorum_leader(self, *through: int, timeout: float = 30) -> int:
        """The quorum leader's node id as `strom cluster describe` names it (asked through
        the given nodes, default all), waiting up to `timeout` for one to be elected."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                d = self.describe(*through)
                if d["quorum_leader"] is not None and d["quorum_leader"] >= 0:
                    return d["quorum_leader"]
                last = d["text"]
            except (HarnessError, subprocess.TimeoutExpired) as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise HarnessError(f"no quorum leader within {timeout} s; last answer:\n{last}")
            time.sleep(0.2)

    # --- logs ----------------------------------------------------------------

    def log_report(self, lines: int = 60) -> str:
        return "".join(n.log_report(lines) for n in self.nodes)
