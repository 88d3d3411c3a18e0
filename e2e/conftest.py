"""pytest fixtures for the end-to-end suite.

Target switch:
* default: every test module gets its own fresh `strom` node ($STROM_BIN), started
  in the module's tmp dir on free ports (fixture `strom`); tests that need their
  own node with extra settings, or kill/restart it, use `strom_factory`.
* E2E_NODES=3 (any N >= 2): `strom` is a fresh N-node cluster per module instead
  (every node controller and broker, bootstrap = all N addresses); topics are still
  made with replication factor 1, so their leaders are spread over the nodes.
  `target_factory` follows the same switch for tests that crash and restart their
  own target. test_cluster.py always uses clusters of its own (`cluster_factory`,
  `strom_cluster`), whatever E2E_NODES says.
* E2E_BOOTSTRAP=host:port: no strom is started; `strom` is that external broker
  (used to debug the tests against another Kafka-compatible broker). Tests that
  need a node they can kill or restart are skipped in this mode, and only in it.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from e2e_util import E2E_NODES  # noqa: E402
from strom_harness import ExternalBroker, StromCluster, StromNode  # noqa: E402

E2E_BOOTSTRAP = os.environ.get("E2E_BOOTSTRAP", "").strip()


def external_mode() -> bool:
    return bool(E2E_BOOTSTRAP)


def pytest_report_header(config):
    if external_mode():
        return f"e2e target: external broker E2E_BOOTSTRAP={E2E_BOOTSTRAP} (no strom started)"
    shape = "a single strom node" if E2E_NODES == 1 else f"a {E2E_NODES}-node strom cluster"
    return (f"e2e target: {shape} per module (E2E_NODES={E2E_NODES}), "
            f"STROM_BIN={os.environ.get('STROM_BIN', '<unset>')}")


def _skip_if_external(what: str):
    if external_mode():
        pytest.skip(f"needs {what} of its own to kill/restart/configure; "
                    f"E2E_BOOTSTRAP={E2E_BOOTSTRAP} points at an external broker")


def make_target(workdir: Path, settings: dict | None = None):
    """A not yet started StromNode, or with E2E_NODES=N>1 a StromCluster of N nodes."""
    if E2E_NODES == 1:
        return StromNode(workdir, settings=settings)
    return StromCluster(workdir, size=E2E_NODES, settings=settings)


@pytest.fixture(scope="module")
def strom(request, tmp_path_factory):
    """The broker of this test module: a fresh single strom node, a fresh cluster of
    E2E_NODES nodes, or E2E_BOOTSTRAP.

    A module may set STROM_SETTINGS = {...} for extra node settings (ignored, with
    the tests still running, in E2E_BOOTSTRAP mode: don't rely on them for asserts).
    """
    if external_mode():
        yield ExternalBroker(E2E_BOOTSTRAP)
        return
    settings = getattr(request.module, "STROM_SETTINGS", None)
    workdir = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    target = make_target(workdir, settings)
    try:
        target.start()
        yield target
    finally:
        target.cleanup()


@pytest.fixture(autouse=True)
def _strom_survives_the_test(request):
    """A test after which a node of the module's target is no longer running fails (in
    teardown), so the crash is pinned on the test that caused it, with the node's logs."""
    yield
    if "strom" in request.fixturenames:
        target = request.getfixturevalue("strom")
        dead = target.dead_nodes()
        if dead:
            pytest.fail("".join(f"strom node {n.node_id} died during this test (exit code "
                                f"{n.proc.returncode if n.proc else None})\n{n.log_report()}" for n in dead),
                        pytrace=False)


@pytest.fixture
def strom_factory(tmp_path):
    """make(settings=None) -> a started StromNode of this test alone (kill/restart allowed).
    Skipped in the 3-node pass (E2E_NODES > 1): the node would be the same.

    In E2E_BOOTSTRAP mode the test is skipped: an external broker cannot be
    killed, restarted or configured by the test.
    """
    _skip_if_external("a strom process")
    if E2E_NODES != 1:
        # The node is the same single node in both passes: pass 1 ran this test.
        pytest.skip("starts a single node of its own: once, in pass 1, is enough")
    nodes: list[StromNode] = []

    def make(settings: dict | None = None, start: bool = True) -> StromNode:
        node = StromNode(tmp_path / f"node{len(nodes) + 1}", settings=settings)
        nodes.append(node)
        if start:
            node.start()
        return node

    yield make
    for node in nodes:
        node.cleanup()


@pytest.fixture
def target_factory(tmp_path):
    """make(settings=None) -> a started target of this test alone, shaped like `strom`:
    a StromNode, or with E2E_NODES=N>1 a StromCluster of N nodes. Both offer nodes,
    node(id), node_ids, bootstrap, start() (starts every stopped node), terminate().
    Skipped with E2E_BOOTSTRAP."""
    _skip_if_external("a strom target")
    targets = []

    def make(settings: dict | None = None, start: bool = True):
        t = make_target(tmp_path / f"target{len(targets) + 1}", settings)
        targets.append(t)
        if start:
            t.start()
        return t

    yield make
    for t in targets:
        t.cleanup()


@pytest.fixture
def cluster_factory(tmp_path):
    """make(size=3, settings=None, node_settings=None, start=True) -> a StromCluster of
    this test alone (kill/restart allowed), whatever E2E_NODES says. Skipped with
    E2E_BOOTSTRAP."""
    _skip_if_external("a strom cluster")
    clusters: list[StromCluster] = []

    def make(size: int = 3, settings: dict | None = None, node_settings: dict | None = None,
             start: bool = True) -> StromCluster:
        c = StromCluster(tmp_path / f"cluster{len(clusters) + 1}", size=size, settings=settings,
                         node_settings=node_settings)
        clusters.append(c)
        if start:
            c.start()
        return c

    yield make
    for c in clusters:
        c.cleanup()


@pytest.fixture(scope="module")
def strom_cluster(request, tmp_path_factory):
    """A 3-node cluster shared by the tests of one module, whatever E2E_NODES says (a
    module may set CLUSTER_SETTINGS = {...}). Tests must leave all its nodes running.
    Skipped with E2E_BOOTSTRAP."""
    _skip_if_external("a strom cluster")
    settings = getattr(request.module, "CLUSTER_SETTINGS", None)
    c = StromCluster(tmp_path_factory.mktemp("cluster"), size=3, settings=settings)
    try:
        c.start()
        yield c
    finally:
        c.cleanup()


@pytest.fixture
def new_topic(request):
    """new_topic(suffix='') -> a topic name unique to this test run."""
    base = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name).strip("-")[:150]
    counter = iter(range(1, 1_000_000))

    def make(suffix: str = "") -> str:
        return f"e2e-{base}{'-' + suffix if suffix else ''}-{next(counter)}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tails of the logs of every strom node alive in this process."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for node in list(StromNode.live):
            try:
                report.sections.append((f"strom node {node.node_id} ({node.workdir})",
                                        node.log_report(lines=40)))
            except Exception as e:  # noqa: BLE001
                report.sections.append(("strom node", f"could not read logs: {e}"))


def pytest_terminal_summary(terminalreporter):
    """Print what tests recorded with record_property("timings", ...) (test_cluster.py's
    failover times), also when they ran on xdist workers."""
    lines = []
    for reports in terminalreporter.stats.values():
        for rep in reports:
            if getattr(rep, "when", None) == "call":
                lines += [f"{rep.nodeid}: {v}" for k, v in getattr(rep, "user_properties", []) if k == "timings"]
    if lines:
        terminalreporter.section("strom timings")
        for line in sorted(lines):
            terminalreporter.write_line(line)
