"""Faust (faust-streaming, on aiokafka) with processing_guarantee="exactly_once" against
strom: an agent forwards every input line to an output topic and counts lines in a
Table; Faust runs one transactional producer per input partition, writes the table's
changelog and commits its input offsets inside the transactions. The worker is killed
(-9) mid-stream and a new one takes over (fencing the old producer). Read with
read_committed, the table's changelog counts 1, 2, … N without a gap or a repeat (the
killed worker's open transaction is aborted and invisible; every committed count is
there) and N covers every line; the output holds every input line.

faust-streaming 0.15 sends an agent's output through its plain producer, outside the
transactions (the output's batches carry no transactional flag), so the output is at
least once: a line appears twice when the killed worker's aborted transaction had
forwarded it, or when Faust handles an event twice (seen once on a starved CI machine:
the count of that event is then in the committed changelog twice too).

Faust runs in its own venv (made by e2e/setup.sh) as a subprocess, like
test_groups_faust.py."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from e2e_util import wait_until
from groups_util import GROUP_SETTINGS, create_topic
from test_groups_faust import Worker, produce_lines

STROM_SETTINGS = GROUP_SETTINGS

pytestmark = pytest.mark.timeout(300)

APP = r'''
import os
import faust

app = faust.App(
    os.environ["FAUST_APP_ID"],
    broker=";".join("kafka://" + b for b in os.environ["FAUST_BOOTSTRAP"].split(",")),
    store="memory://",
    datadir=os.environ["FAUST_DATADIR"],
    processing_guarantee="exactly_once",
    topic_replication_factor=1,
    topic_partitions=1,
    web_enabled=False,
    broker_session_timeout=10.0,
    broker_heartbeat_interval=1.0,
    broker_commit_interval=0.2,
    table_standby_replicas=0,
)
lines = app.topic(os.environ["FAUST_IN"], value_type=bytes, value_serializer="raw")
out = app.topic(os.environ["FAUST_OUT"], value_type=bytes, value_serializer="raw")
counts = app.Table("line_counts", default=int, partitions=1)


@app.agent(lines)
async def forward(stream):
    async for line in stream:
        counts["lines"] += 1
        await out.send(value=line)


if __name__ == "__main__":
    app.main()
'''


def read_committed(bootstrap, topic) -> list[tuple[bytes | None, bytes | None]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex[:6]}",
                  "isolation.level": "read_committed", "enable.partition.eof": True,
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    return got
                continue
            got.append((m.key(), m.value()))
        raise AssertionError(f"{topic} not read to its end")
    finally:
        c.close()


def test_faust_exactly_once_survives_a_killed_worker(strom, new_topic, tmp_path):
    b = strom.bootstrap
    app_id = f"fausteos-{uuid.uuid4().hex[:8]}"
    t_in = create_topic(b, new_topic("in"), 1)
    t_out = create_topic(b, new_topic("out"), 1)
    changelog = f"{app_id}-line_counts-changelog"
    (tmp_path / "app.py").write_text(APP)
    env = dict(os.environ, FAUST_APP_ID=app_id, FAUST_BOOTSTRAP=b, FAUST_DATADIR=str(tmp_path / "faust-data"),
               FAUST_IN=t_in, FAUST_OUT=t_out, PYTHONUNBUFFERED="1")
    env = {k: v for k, v in env.items() if not k.startswith("STROM_")}
    sent = [f"line-{i}" for i in range(400)]
    workers = []
    try:
        w = Worker(tmp_path, env, 1)
        workers.append(w)
        w.wait_ready()
        produce_lines(b, t_in, sent[:200])
        wait_until(lambda: len(read_committed(b, t_out)) >= 50, 60, interval=0.5,
                   what="the first worker's committed output")
        w.kill()  # -9, most likely inside a transaction
        produce_lines(b, t_in, sent[200:])
        w2 = Worker(tmp_path, env, 2)
        workers.append(w2)
        w2.wait_ready(timeout=90)
        wait_until(lambda: {v.decode() for _, v in read_committed(b, t_out)} >= set(sent)
                   and len(read_committed(b, changelog)) >= len(sent), 90, interval=0.5,
                   what="all lines forwarded and counted")
        time.sleep(1.0)
        out = [v.decode() for _, v in read_committed(b, t_out)]
        assert set(out) == set(sent), f"lines missing: {sorted(set(sent) - set(out))[:5]}"
        # The table's changelog, read_committed: 1, 2, … N.
        counts = [int(v) for _, v in read_committed(b, changelog)]
        assert counts == list(range(1, len(counts) + 1)), \
            f"changelog not 1..N: {[c for i, c in enumerate(counts) if c != i + 1][:5]}"
        assert len(counts) >= len(sent), f"{len(counts)} counts for {len(sent)} lines"
        if len(out) > len(sent):
            print(f"at least once: {len(out) - len(set(out))} output lines twice "
                  f"(changelog N={len(counts)} for {len(sent)} lines)")
        assert w2.stop() == 0, w2.tail()
    except BaseException:
        for x in workers:
            print(f"--- {x.log}:\n{x.tail(150)}")
        raise
    finally:
        for x in workers:
            x.kill()
