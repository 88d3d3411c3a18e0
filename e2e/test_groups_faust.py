"""A Faust (faust-streaming 0.15.3, on aiokafka) app against strom: an agent counts the
words of an input topic into a Table whose changelog is a compacted topic Faust creates,
and forwards "word=count" to an output topic. Faust's worker is a consumer-group member
with its own assignor ("faust" protocol over the classic JoinGroup/SyncGroup) and
commits its input offsets; the table store is in memory, so after a restart the counts
come only from the changelog topic: they must go on, not start again, and no input
line may be processed twice.

Faust runs in a venv of its own (`${STROM_VENV}-faust`, made by e2e/setup.sh) as a
subprocess; its data dir is the test's tmp_path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from e2e_util import wait_until
from groups_util import GROUP_SETTINGS, confluent_admin, create_topic, group_offsets

STROM_SETTINGS = GROUP_SETTINGS

pytestmark = pytest.mark.timeout(240)

APP = r'''
import os
import faust

app = faust.App(
    os.environ["FAUST_APP_ID"],
    broker=";".join("kafka://" + b for b in os.environ["FAUST_BOOTSTRAP"].split(",")),
    store="memory://",
    datadir=os.environ["FAUST_DATADIR"],
    topic_replication_factor=1,
    topic_partitions=1,
    web_enabled=False,
    broker_session_timeout=10.0,
    broker_heartbeat_interval=1.0,
    broker_commit_interval=0.5,
    table_standby_replicas=0,
)
words = app.topic(os.environ["FAUST_IN"], value_type=bytes, value_serializer="raw")
out = app.topic(os.environ["FAUST_OUT"], key_type=bytes, value_type=bytes,
                key_serializer="raw", value_serializer="raw")
counts = app.Table("word_counts", default=int, partitions=1)


@app.agent(words)
async def count_words(stream):
    async for line in stream:
        for w in line.decode().split():
            counts[w] += 1
            await out.send(key=w.encode(), value=f"{w}={counts[w]}".encode())


if __name__ == "__main__":
    app.main()
'''


def faust_python() -> Path:
    py = Path(sys.prefix + "-faust") / "bin" / "python"
    if not py.exists():
        raise RuntimeError(f"{py} missing: run e2e/setup.sh (it makes the Faust venv)")
    return py


class Worker:
    def __init__(self, tmp_path: Path, env: dict, n: int):
        self.log = tmp_path / f"faust-worker-{n}.log"
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen([str(faust_python()), str(tmp_path / "app.py"), "worker", "-l", "info",
                                          # The CLI starts Faust's web server (port 6066) unless
                                          # told not to, whatever web_enabled says: two workers
                                          # in parallel tests would collide on the port.
                                          "--without-web"],
                                         cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=f,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def tail(self, n=80) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def wait_ready(self, timeout=60):
        """Faust logs "Worker ready" once its partitions are assigned and the tables recovered."""
        def ready():
            assert self.proc.poll() is None, f"Faust worker exited {self.proc.returncode}:\n{self.tail()}"
            return "Worker ready" in self.log.read_text(errors="replace")
        try:
            wait_until(ready, timeout, interval=0.2, what="the Faust worker to be ready")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.tail()}") from None

    def stop(self, timeout=30) -> int:
        """SIGTERM: Faust commits, leaves the group and exits."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"Faust worker did not stop within {timeout} s of SIGTERM:\n{self.tail()}")

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class OutputReader:
    """Reads the output topic from the start, record by record."""

    def __init__(self, bootstrap, topic):
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"e2e-unused-{uuid.uuid4().hex[:6]}",
                           "enable.auto.commit": False})
        self.c.assign([TopicPartition(topic, 0, 0)])
        self.got: list[tuple[bytes, bytes]] = []

    def read_until(self, n, timeout=45, why=""):
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            for m in self.c.consume(100, 0.5):
                if not m.error():
                    self.got.append((m.key(), m.value()))
        assert len(self.got) >= n, f"output has {len(self.got)} records, expected {n} {why}: {self.got}"
        return self.got

    def close(self):
        self.c.close()


def produce_lines(bootstrap, topic, lines):
    p = Producer({"bootstrap.servers": bootstrap})
    for line in lines:
        p.produce(topic, value=line.encode())
    assert p.flush(30) == 0


def read_changelog(bootstrap, topic) -> dict:
    """Latest value per key of the table's changelog (JSON keys and values)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"e2e-unused-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False})
    try:
        _, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        c.assign([TopicPartition(topic, 0, 0)])
        table, n = {}, 0
        deadline = time.monotonic() + 30
        while n < hi and time.monotonic() < deadline:
            for m in c.consume(100, 0.5):
                if not m.error():
                    n += 1
                    table[json.loads(m.key())] = None if m.value() is None else json.loads(m.value())
        assert n >= hi, f"read {n} of {hi} changelog records"
        return table
    finally:
        c.close()


def test_groups_faust_word_count_table_recovers(strom, new_topic, tmp_path):
    b = strom.bootstrap
    app_id = f"faust-{uuid.uuid4().hex[:8]}"
    t_in = create_topic(b, new_topic("in"), 1)
    t_out = create_topic(b, new_topic("out"), 1)
    changelog = f"{app_id}-word_counts-changelog"
    (tmp_path / "app.py").write_text(APP)
    env = dict(os.environ, FAUST_APP_ID=app_id, FAUST_BOOTSTRAP=b, FAUST_DATADIR=str(tmp_path / "faust-data"),
               FAUST_IN=t_in, FAUST_OUT=t_out, PYTHONUNBUFFERED="1")
    env = {k: v for k, v in env.items() if not k.startswith("STROM_")}
    out = OutputReader(b, t_out)
    workers = []
    try:
        w = Worker(tmp_path, env, 1)
        workers.append(w)
        w.wait_ready()
        produce_lines(b, t_in, ["apple banana apple", "cherry apple", "banana"])
        got = out.read_until(6, why="from the first worker")
        assert got == [(b"apple", b"apple=1"), (b"banana", b"banana=1"), (b"apple", b"apple=2"),
                       (b"cherry", b"cherry=1"), (b"apple", b"apple=3"), (b"banana", b"banana=2")], got

        # The Table's changelog: a compacted topic Faust created, holding the counts.
        a = confluent_admin(b)
        res = ConfigResource(ResourceType.TOPIC, changelog)
        cfg = a.describe_configs([res])[res].result(timeout=30)
        assert cfg["cleanup.policy"].value == "compact", cfg["cleanup.policy"]
        wait_until(lambda: read_changelog(b, changelog) == {"apple": 3, "banana": 2, "cherry": 1}, 20,
                   interval=0.5, what="the changelog to hold the counts")
        # Faust's group (the app id) is a classic group with Faust's own assignor.
        d = a.describe_consumer_groups([app_id])[app_id].result(timeout=30)
        assert d.state.name == "STABLE" and d.partition_assignor == "faust" and len(d.members) == 1, d

        code = w.stop()
        assert code == 0, f"Faust worker exited {code}:\n{w.tail()}"
        # It committed its input position on the way out.
        assert group_offsets(b, app_id, t_in) == {0: (3, "")}
        wait_until(lambda: a.describe_consumer_groups([app_id])[app_id].result(30).state.name == "EMPTY", 20,
                   what="Faust's group to become Empty")

        # A new worker: the in-memory table comes back from the changelog only.
        w2 = Worker(tmp_path, env, 2)
        workers.append(w2)
        w2.wait_ready()
        produce_lines(b, t_in, ["apple cherry date"])
        got = out.read_until(9, why="after the restart")
        assert got[6:] == [(b"apple", b"apple=4"), (b"cherry", b"cherry=2"), (b"date", b"date=1")], got
        time.sleep(1.0)
        assert len(out.read_until(9)) == 9, f"input processed twice after the restart: {out.got}"
        assert "Recovery" in w2.tail(400)
        wait_until(lambda: read_changelog(b, changelog) == {"apple": 4, "banana": 2, "cherry": 2, "date": 1}, 20,
                   interval=0.5, what="the changelog to hold the new counts")
        code = w2.stop()
        assert code == 0, f"Faust worker exited {code}:\n{w2.tail()}"
    except BaseException:
        for x in workers:
            print(f"--- {x.log}:\n{x.tail(150)}")
        raise
    finally:
        for x in workers:
            x.kill()
        out.close()
