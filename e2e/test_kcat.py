"""kcat (Debian's 1.7.1, librdkafka 2.0.2) against strom. This old librdkafka is picky
about tagged fields (KIP-482: a broker writes only the ones it sets) and about which Produce versions a broker advertises
before it compresses; these tests hold strom to both. Topics are made with
confluent-kafka's admin (kcat has none); kcat consumes without a group (-C)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from e2e_util import PRODUCE_LINE, compressible, kcat_binary, payload, rng, wait_until


@pytest.fixture(scope="module")
def admin(strom):
    return AdminClient({"bootstrap.servers": strom.bootstrap})


def create_topic(admin, name, partitions=1):
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=60)

    def ready():
        md = admin.list_topics(name, timeout=5).topics.get(name)
        return md is not None and md.error is None and len(md.partitions) == partitions and \
            all(p.leader >= 0 for p in md.partitions.values())
    wait_until(ready, 15, what=f"leaders of {name}")
    return name


class Kcat:
    def __init__(self, bootstrap):
        self.bin = kcat_binary()
        self.bootstrap = bootstrap

    def run(self, *args, input: bytes | None = None, timeout: float = 60, check: bool = True):
        cmd = [self.bin, "-b", self.bootstrap, "-m", "15", *map(str, args)]
        p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd[:12])} exited {p.returncode}:\n"
                                 f"{p.stderr.decode(errors='replace')[-3000:]}")
        return p

    def consume(self, topic, *args, partition: int | None = 0, start="beginning", count=None):
        """-> [(partition, offset, timestamp, key, value, headers)] read with a binary-safe format."""
        argv = ["-C", "-t", topic, "-o", start, "-e", "-f", "%p %o %T %K %S %h\n%k%s\n", *args]
        if partition is not None:
            argv += ["-p", partition]
        if count is not None:
            argv += ["-c", count]
        out = self.run(*argv).stdout
        recs, i = [], 0
        while i < len(out):
            nl = out.index(b"\n", i)
            p_, o, t, klen, vlen, hdrs = out[i:nl].decode().split(" ", 5)
            i = nl + 1
            klen, vlen = int(klen), int(vlen)
            key = out[i:i + klen] if klen >= 0 else None
            i += max(klen, 0)
            value = out[i:i + vlen] if vlen >= 0 else None
            i += max(vlen, 0)
            assert out[i:i + 1] == b"\n", f"kcat output framing broken at byte {i}"
            i += 1
            headers = [tuple(h.split("=", 1)) for h in hdrs.split(",")] if hdrs else []
            recs.append((int(p_), int(o), int(t), key, value, headers))
        return recs


@pytest.fixture(scope="module")
def kcat(strom):
    return Kcat(strom.bootstrap)


def test_metadata_listing(kcat, admin, strom, new_topic):
    topic = create_topic(admin, new_topic(), partitions=3)
    md = json.loads(kcat.run("-L", "-J", "-t", topic).stdout)
    brokers = {b["name"]: b["id"] for b in md["brokers"]}
    assert sorted(brokers) == sorted(strom.bootstrap.split(",")), md
    if not strom.is_external:
        assert brokers == {n.bootstrap: n.node_id for n in strom.nodes}, md
    t, = md["topics"]
    assert t["topic"] == topic and "error" not in t, t
    parts = sorted(t["partitions"], key=lambda p: p["partition"])
    assert [p["partition"] for p in parts] == [0, 1, 2]
    for p in parts:
        assert p["leader"] in brokers.values()
        assert [r["id"] for r in p["replicas"]] == [p["leader"]] and [r["id"] for r in p["isrs"]] == [p["leader"]]


def test_round_trip_keys_headers(kcat, admin, new_topic):
    topic = create_topic(admin, new_topic())
    lines = [(f"key-{i}", f"value {i} with spaces, commas and = signs") for i in range(50)]
    data = "".join(f"{k}\t{v}\n" for k, v in lines).encode()
    kcat.run("-P", "-t", topic, "-p", 0, "-K", "\t", "-H", "h1=one", "-H", "h2=a=b", "-H", "h1=again",
             input=data)
    got = kcat.consume(topic)
    assert [r[1] for r in got] == list(range(50))
    assert [(r[3].decode(), r[4].decode()) for r in got] == lines
    for r in got:
        assert r[5] == [("h1", "one"), ("h2", "a=b"), ("h1", "again")], r[5]


def test_binary_messages_from_files(kcat, admin, new_topic, tmp_path):
    """Each file is one message: arbitrary bytes (incl. newlines and NULs) come back exact."""
    topic = create_topic(admin, new_topic())
    r = rng("kcat-bin")
    blobs = [payload(r, n) for n in (1, 100, 10_000, 65_536)] + [b"\n\x00\r\n"]
    files = []
    for i, b in enumerate(blobs):
        f = tmp_path / f"m{i}.bin"
        f.write_bytes(b)
        files.append(f)
    for f in files:  # one by one: the order of several files on one command line is not guaranteed
        kcat.run("-P", "-t", topic, "-p", 0, "-k", "fixed-key", f)
    got = kcat.consume(topic)
    assert [g[4] for g in got] == blobs
    assert all(g[3] == b"fixed-key" for g in got)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_really_compressed(kcat, admin, new_topic, codec):
    topic = create_topic(admin, new_topic(codec))
    n, size = 200, 1000
    values = [compressible(i, size).replace(b"\n", b" ") for i in range(n)]
    codec_args = ["-z", codec] if codec != "zstd" else ["-X", "compression.codec=zstd"]
    p = kcat.run("-P", "-t", topic, "-p", 0, *codec_args, "-X", "linger.ms=100", "-d", "msg",
                 input=b"\n".join(values) + b"\n")
    stderr = p.stderr.decode(errors="replace")
    produced = [m for m in map(PRODUCE_LINE.search, stderr.splitlines()) if m]
    assert produced, "no 'Produce MessageSet' line in kcat -d msg output:\n" + stderr[-2000:]
    assert sum(int(m["n"]) for m in produced) == n
    for m in produced:
        # librdkafka 2.0.2 silently sends uncompressed batches to a broker whose
        # ApiVersions answer makes it think compression is unsupported (KAFKA-18659).
        assert m["codec"] == codec, f"kcat sent {m['codec']} instead of {codec}: {m.group(0)}"
        assert m["msgver"] == "2"
        assert int(m["bytes"]) < int(m["n"]) * size / 2, m.group(0)
    got = kcat.consume(topic)
    assert [g[4] for g in got] == values


def test_record_of_1mb(kcat, admin, new_topic, tmp_path):
    topic = create_topic(admin, new_topic())
    value = payload(rng("kcat-big"), 1_000_000)
    f = tmp_path / "big.bin"
    f.write_bytes(value)
    kcat.run("-P", "-t", topic, "-p", 0, "-k", "big", "-X", "message.max.bytes=1048576", f)
    got = kcat.consume(topic)
    assert len(got) == 1 and got[0][3] == b"big" and got[0][4] == value


def test_same_key_same_partition(kcat, admin, new_topic):
    topic = create_topic(admin, new_topic(), partitions=6)
    keys = [f"user-{k}" for k in range(12)]
    lines = [f"{keys[i % 12]}\t{keys[i % 12]}:{i // 12}" for i in range(12 * 25)]
    kcat.run("-P", "-t", topic, "-K", "\t", input=("\n".join(lines) + "\n").encode())
    got = kcat.consume(topic, partition=None)
    assert len(got) == len(lines)
    part_of, by_key = {}, {}
    for p_, off, _, k, v, _ in got:
        assert part_of.setdefault(k, p_) == p_, f"key {k} in partitions {part_of[k]} and {p_}"
        by_key.setdefault(k, []).append((off, int(v.split(b":")[1])))
    assert len(set(part_of.values())) > 1
    for k, seq in by_key.items():
        assert [s for _, s in sorted(seq)] == list(range(25)), k


def test_offsets_and_timestamps(kcat, admin, strom, new_topic):
    topic = create_topic(admin, new_topic())
    base = (int(time.time()) - 3600) * 1000
    p = Producer({"bootstrap.servers": strom.bootstrap, "linger.ms": 20})
    for i in range(20):
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0, timestamp=base + i * 1000)
    assert p.flush(30) == 0

    out = kcat.run("-Q", "-t", f"{topic}:0:{base + 3500}").stdout.decode()
    assert f"{topic} [0] offset 4" in out, out
    out = kcat.run("-Q", "-t", f"{topic}:0:{base}").stdout.decode()
    assert f"{topic} [0] offset 0" in out, out

    got = kcat.consume(topic, start="10")
    assert [g[1] for g in got] == list(range(10, 20))
    assert [g[2] for g in got] == [base + i * 1000 for i in range(10, 20)]
    got = kcat.consume(topic, start="-5")
    assert [g[4] for g in got] == [b"v%d" % i for i in range(15, 20)]
    got = kcat.consume(topic, start=f"s@{base + 12_500}")
    assert [g[1] for g in got] == list(range(13, 20))
    got = kcat.consume(topic, f"-o", f"e@{base + 3_000}", start="beginning")
    assert [g[1] for g in got] == [0, 1, 2]


def test_consume_from_end_sees_only_new(kcat, admin, strom, new_topic):
    topic = create_topic(admin, new_topic())
    kcat.run("-P", "-t", topic, "-p", 0, input=b"old-0\nold-1\n")
    proc = subprocess.Popen([kcat.bin, "-b", kcat.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "end",
                             "-c", "1", "-f", "%o %s\n"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # kcat resolves "end" asynchronously: add records until it has read one. The
        # first one it reads must be new, at the offset it was written at.
        deadline = time.monotonic() + 30
        n = 0
        while proc.poll() is None:
            assert time.monotonic() < deadline, "kcat -o end read nothing"
            kcat.run("-P", "-t", topic, "-p", 0, input=b"new-%d\n" % (n + 2))
            n += 1
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    first = out.decode().split("\n")[0]
    offset, value = first.split(" ", 1)
    assert value == f"new-{offset}", f"kcat -o end read {first!r} ({err.decode(errors='replace')[-500:]})"


def test_idempotent_producer(kcat, admin, new_topic):
    topic = create_topic(admin, new_topic())
    n = 1000
    p = kcat.run("-P", "-t", topic, "-p", 0, "-X", "enable.idempotence=true", "-X", "batch.num.messages=100",
                 "-d", "msg", input=b"".join(b"seq-%06d\n" % i for i in range(n)))
    produced = [m for m in map(PRODUCE_LINE.search, p.stderr.decode(errors="replace").splitlines()) if m]
    assert produced
    assert len({(m["pid"], m["epoch"]) for m in produced}) == 1 and int(produced[0]["pid"]) >= 0, \
        [m.group(0) for m in produced[:3]]
    expected = 0
    for base_seq, cnt in sorted((int(m["baseseq"]), int(m["n"])) for m in produced):
        assert base_seq == expected
        expected += cnt
    got = kcat.consume(topic)
    assert [g[1] for g in got] == list(range(n))
    assert [g[4] for g in got] == [b"seq-%06d" % i for i in range(n)]
