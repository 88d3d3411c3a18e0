"""Connection limits against a real strom process: thousands of idle connections cost
little memory and are closed after `connections.max.idle.ms`, connections past
`max.connections.per.ip` are closed at once, and the node keeps serving a real client
(confluent-kafka) throughout. Each refusal leaves a log line.

Runs once, in the single-node pass (it starts its own node); skipped against an external
broker.
"""
from __future__ import annotations

import resource
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import Consumer, Producer

from e2e_util import wait_until

IDLE_CONNECTIONS = 10_000


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def round_trip(bootstrap: str, topic: str, n: int = 20):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(n):
        p.produce(topic, value=b"v%d" % i)
    assert p.flush(20) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}",
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
    c.close()
    assert sorted(got) == sorted(b"v%d" % i for i in range(n))


def closed_by_peer(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_idle_connections_are_cheap_and_closed_and_the_per_ip_limit_holds(strom_factory, new_topic):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, IDLE_CONNECTIONS + 2000), hard))
    idle_ms = 15_000  # longer than opening the connections takes
    node = strom_factory({"connections.max.idle.ms": idle_ms,
                          "max.connections.per.ip": IDLE_CONNECTIONS + 50})
    host, port = node.bootstrap.split(":")
    topic = new_topic()
    round_trip(node.bootstrap, topic)
    before = rss_bytes(node.pid)
    socks = []
    try:
        t0 = time.monotonic()
        # From 16 threads: loopback drops a SYN now and then under a burst of connects
        # (a 1 s retransmit each); in parallel those waits overlap.
        with ThreadPoolExecutor(16) as pool:
            socks.extend(pool.map(lambda _: socket.create_connection((host, int(port)), timeout=10),
                                  range(IDLE_CONNECTIONS)))
        # The node counts them all, then refuses more than the per-ip limit at once.
        extra = [socket.create_connection((host, int(port)), timeout=5) for _ in range(60)]
        opened = time.monotonic()
        refused = sum(closed_by_peer(s, 0.2) for s in extra)
        for s in extra:
            s.close()
        print(f"[limits] opened {IDLE_CONNECTIONS + 60} connections in {opened - t0:.1f} s; "
              f"{refused} of the last 60 closed at once")
        assert opened - t0 < idle_ms / 1000 - 3, "opening took too long for this test's idle timeout"
        assert 10 <= refused <= 15, f"{refused} of 60 connections past the per-ip limit (10,050) were closed"
        grown = rss_bytes(node.pid) - before
        print(f"[limits] {IDLE_CONNECTIONS} idle connections: RSS +{grown / 2**20:.1f} MiB "
              f"({grown / IDLE_CONNECTIONS / 1024:.1f} KiB each)")
        assert grown < 200 * 2**20, f"{IDLE_CONNECTIONS} idle connections grew RSS by {grown} bytes"
        # Still serving while they sit there.
        round_trip(node.bootstrap, topic + "-busy")
        # connections.max.idle.ms: the idle ones are closed by the node.
        time.sleep(max(0.0, idle_ms / 1000 + 0.5 - (time.monotonic() - t0)))
        still_open = [s for s in socks[:200] if not closed_by_peer(s, 3.0)]
        assert not still_open, f"{len(still_open)} of 200 idle connections still open after the idle timeout"
    finally:
        for s in socks:
            s.close()
    log = lambda: node.stderr_path.read_text(errors="replace")  # noqa: E731
    wait_until(lambda: "closing an idle connection" in log(), 10,
               what="a log line for the idle connections")
    assert "max.connections.per.ip" in log()
    round_trip(node.bootstrap, topic + "-after")


def _frame(api_key: int, version: int, flexible: bool, body: bytes) -> bytes:
    header = struct.pack(">hhih", api_key, version, 7, 4) + b"test"
    if flexible:
        header += b"\x00"  # request header v2: no tagged fields
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


# Requests whose arrays claim 2^31-1 elements (and hold none of them).
HUGE_ARRAYS = {
    "Produce v7": _frame(0, 7, False, struct.pack(">hhii", -1, 1, 1000, 0x7FFF_FFFF)),
    "Produce v9": _frame(0, 9, True, b"\x00" + struct.pack(">hi", 1, 1000) + b"\x80\x80\x80\x80\x08"),
    "Metadata v1": _frame(3, 1, False, struct.pack(">i", 0x7FFF_FFFF)),
    "Fetch v12": _frame(1, 12, True, struct.pack(">iiiib", -1, 500, 1, 1024, 0)
                        + struct.pack(">ii", 0, -1) + b"\x80\x80\x80\x80\x08"),
}


def test_huge_array_lengths_under_a_memory_limit(strom_factory, new_topic):
    """`ulimit -v` leaves no room for overcommit: a decoder that reserves what an array
    length claims before reading its elements (2^31-1 Produce topics ≈ 200 GB) makes the
    allocation fail and the process abort. The node must close those connections, log
    them and keep serving."""
    node = strom_factory(start=False)
    node.address_space_limit = 4 * 2**30
    node.start()
    host, port = node.bootstrap.split(":")
    topic = new_topic()
    round_trip(node.bootstrap, topic)
    for name, frame in HUGE_ARRAYS.items():
        s = socket.create_connection((host, int(port)), timeout=10)
        try:
            s.sendall(frame)
            assert closed_by_peer(s, 10), f"{name}: the connection was not closed"
        finally:
            s.close()
        assert node.running, f"{name} took the node down:\n{node.log_report()}"
    round_trip(node.bootstrap, topic + "-after")
    assert node.running
    log = node.stderr_path.read_text(errors="replace")
    assert log.count("closing connection") >= len(HUGE_ARRAYS), log[-3000:]
