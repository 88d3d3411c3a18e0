"""The admin listener (broker/src/http): Prometheus text at /metrics, parsed by
prometheus_client's own parser and checked against what real clients did; the health
endpoints; the JSON API.

Runs against the module's target (one node, or three with E2E_NODES=3): every node's
/metrics is scraped and per-topic counters summed, so the figures hold whichever node
leads what. The readiness flip needs a cluster of its own (test_ready_flips_...).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from e2e_util import E2E_NODES, wait_until
from strom_harness import StromCluster

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(bool(os.environ.get("E2E_BOOTSTRAP", "").strip()),
                       reason="needs strom's admin listener, not an external broker"),
]


def get(url: str, timeout: float = 10) -> tuple[int, str, str]:
    """(status, content type, body) of a GET; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def scrape(node) -> dict:
    """{(name, frozenset(labels)): value} of one node's /metrics, via the real parser."""
    status, ctype, body = get(f"{node.admin_url}/metrics")
    assert status == 200, body
    assert ctype.startswith("text/plain"), ctype
    out = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def total(scrapes: list[dict], name: str, **labels) -> float:
    """The sum over nodes of the samples of `name` carrying `labels` (others free)."""
    want = set(labels.items())
    return sum(v for sc in scrapes for (n, ls), v in sc.items() if n == name and want <= ls)


def test_metrics_count_what_clients_produced_and_consumed(strom):
    topic = f"metrics-{uuid.uuid4().hex[:8]}"
    a = AdminClient({"bootstrap.servers": strom.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=len(strom.nodes))])[topic].result(30)
    n, value = 200, b"x" * 100
    p = Producer({"bootstrap.servers": strom.bootstrap, "linger.ms": 5, "compression.type": "none"})
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=value)
    assert p.flush(30) == 0
    before = [scrape(x) for x in strom.nodes]
    assert total(before, "strom_topic_records_in_total", topic=topic) == n
    # Batch bytes include headers and framing: at least the payload, not wildly more.
    bytes_in = total(before, "strom_topic_bytes_in_total", topic=topic)
    assert n * len(value) <= bytes_in <= n * (len(value) + 80), bytes_in
    produces = total(before, "strom_requests_total", api="Produce")
    assert produces >= 1
    assert total(before, "strom_request_duration_seconds_count", api="Produce") == produces
    assert total(before, "strom_request_duration_seconds_bucket", api="Produce", le="+Inf") == produces
    assert total(before, "strom_partitions", role="leader") >= 2

    # A group consumes part of the topic and commits: lag is what it has not read.
    group = f"g-{uuid.uuid4().hex[:8]}"
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
    got = []
    deadline = time.time() + 30
    while len(got) < 150 and time.time() < deadline:
        m = c.poll(1)
        if m is not None and m.error() is None:
            got.append(m)
    assert len(got) >= 150
    # Commit exactly the records handed to us (each partition's next offset).
    nxt = {}
    for m in got:
        nxt[m.partition()] = max(nxt.get(m.partition(), 0), m.offset() + 1)
    c.commit(offsets=[TopicPartition(topic, q, o) for q, o in nxt.items()], asynchronous=False)
    consumed = sum(nxt.values())
    c.close()

    def lag_seen():
        sc = [scrape(x) for x in strom.nodes]
        return sc if total(sc, "strom_group_lag", group=group, topic=topic) == n - consumed else None
    after = wait_until(lag_seen, timeout=20, what=f"strom_group_lag of {group} = {n - consumed}")
    per_partition = {int(dict(ls)["partition"]): v for sc in after for (name, ls), v in sc.items()
                     if name == "strom_group_partition_lag" and dict(ls).get("group") == group}
    ends = {0: 0, 1: 0}
    lo, hi = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": "probe"}), None
    for q in (0, 1):
        _, hi = lo.get_watermark_offsets(TopicPartition(topic, q), timeout=10)
        ends[q] = hi
    lo.close()
    assert per_partition == {q: ends[q] - nxt.get(q, 0) for q in (0, 1)}, per_partition
    out = total(after, "strom_topic_records_out_total", topic=topic)
    assert out >= consumed, out
    assert total(after, "strom_topic_bytes_out_total", topic=topic) >= consumed * len(value)
    assert total(after, "strom_groups", type="classic") >= 1
    # Process figures are real ones.
    for sc in after:
        assert total([sc], "strom_process_resident_memory_bytes") > 1_000_000
        assert total([sc], "strom_process_open_fds") > 3
        assert total([sc], "strom_node_ready") == 1


def test_a_produce_error_is_counted_by_code(strom):
    """A batch over the topic's max.message.bytes: MESSAGE_TOO_LARGE (code 10), counted
    under Produce by the leader that refused it."""
    topic = f"toolarge-{uuid.uuid4().hex[:8]}"
    a = AdminClient({"bootstrap.servers": strom.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=len(strom.nodes),
                              config={"max.message.bytes": "200"})])[topic].result(30)

    def counted():
        return sum(total([scrape(x)], "strom_partition_errors_total", api="Produce", code="10",
                         error="MESSAGE_TOO_LARGE") for x in strom.nodes)
    before = counted()
    p = Producer({"bootstrap.servers": strom.bootstrap, "retries": 0, "message.timeout.ms": 10000})
    errors = []
    p.produce(topic, value=b"v" * 1000, on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    assert errors and errors[0] is not None and errors[0].name() == "MSG_SIZE_TOO_LARGE", errors
    assert counted() >= before + 1


def test_health_and_json_api(strom):
    for node in strom.nodes:
        status, ctype, body = get(f"{node.admin_url}/health/live")
        assert status == 200 and json.loads(body)["node_id"] == node.node_id
        status, _, body = get(f"{node.admin_url}/health/ready")
        assert status == 200, body
        assert json.loads(body) == {"ready": True, "node_id": node.node_id, "reasons": []}
    node = strom.nodes[0]
    topic = f"json-{uuid.uuid4().hex[:8]}"
    a = AdminClient({"bootstrap.servers": strom.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=len(strom.nodes))])[topic].result(30)
    p = Producer({"bootstrap.servers": strom.bootstrap})
    for i in range(30):
        p.produce(topic, value=b"v", partition=i % 3)
    assert p.flush(30) == 0
    cl = json.loads(get(f"{node.admin_url}/v1/cluster")[2])
    assert sorted(b["id"] for b in cl["brokers"]) == sorted(strom.node_ids)
    assert all(not b["fenced"] for b in cl["brokers"])
    assert cl["quorum"]["leader"] in strom.node_ids
    assert cl["quorum"]["voters"] == len(strom.nodes)
    assert cl["ready"] is True
    listed = json.loads(get(f"{node.admin_url}/v1/topics?q={topic}")[2])
    assert listed["total"] == 1
    t = listed["topics"][0]
    assert (t["name"], t["partitions"], t["replication_factor"]) == (topic, 3, len(strom.nodes))
    one = json.loads(get(f"{node.admin_url}/v1/topics?name={topic}")[2])["topics"][0]
    assert [pd["log_end_offset"] for pd in one["partition_detail"]] == [10, 10, 10]
    assert all(pd["log_start_offset"] == 0 for pd in one["partition_detail"])
    status, _, body = get(f"{node.admin_url}/no/such/page")
    assert status == 404


@pytest.mark.skipif(E2E_NODES != 1, reason="starts a cluster of its own: once, in pass 1, is enough")
def test_ready_flips_when_the_quorum_is_lost_and_back(tmp_path):
    """Kill -9 two of three nodes: the survivor's heartbeats go unanswered, and after
    broker.session.timeout.ms it says it is not ready (its /health/live still answers).
    Bring them back: ready again."""
    cluster = StromCluster(tmp_path, size=3, settings={"broker.session.timeout.ms": 3000,
                                                         "broker.heartbeat.interval.ms": 300})
    try:
        cluster.start()
        survivor = cluster.node(1)
        wait_until(lambda: get(f"{survivor.admin_url}/health/ready")[0] == 200, timeout=20,
                   what="node 1 ready")
        cluster.kill9(2)
        cluster.kill9(3)
        t0 = time.monotonic()

        def not_ready():
            status, _, body = get(f"{survivor.admin_url}/health/ready")
            return json.loads(body) if status == 503 else None
        r = wait_until(not_ready, timeout=30, what="node 1 not ready without a quorum")
        assert any("has not answered a heartbeat" in x for x in r["reasons"]), r
        assert time.monotonic() - t0 >= 2.5, "not ready before the session timeout passed"
        assert get(f"{survivor.admin_url}/health/live")[0] == 200
        sc = scrape(survivor)
        assert total([sc], "strom_node_ready") == 0
        cluster.restart(2)
        cluster.restart(3)
        wait_until(lambda: get(f"{survivor.admin_url}/health/ready")[0] == 200, timeout=60,
                   what="node 1 ready again")
    finally:
        cluster.cleanup()
