"""Helpers shared by the e2e test files: payloads, deadlines, the Java and kcat tools."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

CODECS = ["gzip", "snappy", "lz4", "zstd"]


def _e2e_nodes() -> int:
    raw = os.environ.get("E2E_NODES", "").strip() or "1"
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise RuntimeError(f"E2E_NODES={raw!r}: expected the number of strom nodes per test module (1 or 3)")
    return n


# The shape of the `strom` fixture: 1 = one node per test module, N > 1 = an N-node
# cluster per test module (conftest.py).
E2E_NODES = _e2e_nodes()

# A replication factor larger than the brokers of any target the suite starts by
# default (1 node, or 3 with E2E_NODES=3): CreateTopics must refuse it.
RF_TOO_LARGE = max(4, E2E_NODES + 1)

# Client-side request caps: the clients' documented defaults.
JAVA_MAX_REQUEST_SIZE = 1048576           # Java client and kafka-python/aiokafka max.request.size
LIBRDKAFKA_MESSAGE_MAX_BYTES = 1000000    # librdkafka message.max.bytes default
# The biggest value that fits one record in one batch under a 1048576-byte request cap
# (batch header 61 bytes, record overhead < 30 bytes, produce request header < 200 bytes).
NEAR_1MIB_VALUE = JAVA_MAX_REQUEST_SIZE - 512


# What librdkafka logs (debug=msg, facility PRODUCE) for each ProduceRequest it sends,
# the same in 2.16 (confluent-kafka) and 2.0.2 (Debian's kcat):
#   Produce MessageSet with 10 message(s) (166 bytes, ApiVersion 10, MsgVersion 2, MsgId 1,
#   BaseSeq 0, PID{Id:1,Epoch:0}, gzip)
# and without idempotence "... MsgId 0, BaseSeq -1, PID{Invalid}, uncompressed)".
PRODUCE_LINE = re.compile(
    r"Produce MessageSet with (?P<n>\d+) message\(s\) \((?P<bytes>\d+) bytes, ApiVersion (?P<api>\d+), "
    r"MsgVersion (?P<msgver>\d+), MsgId (?P<msgid>\d+), BaseSeq (?P<baseseq>-?\d+), "
    r"PID\{(?:Id:(?P<pid>-?\d+),Epoch:(?P<epoch>-?\d+)|Invalid)\}, (?P<codec>\w+)\)")


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll predicate() until it returns a truthy value; return it, or fail after timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = predicate()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last_exc = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                                 + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


def settled(fetch, until, timeout: float = 15, interval: float = 0.1):
    """fetch() polled until until(value) holds (at most `timeout` s); -> the last value, so
    that the caller's assertion shows what was seen. For reads on a cluster right after a
    change through another broker: each broker applies the metadata log on its own, a
    moment apart, as in KRaft."""
    deadline = time.monotonic() + timeout
    while True:
        v = fetch()
        if until is None or until(v) or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def rng(seed) -> random.Random:
    return random.Random(seed)


def payload(r: random.Random, n: int) -> bytes:
    """n random bytes (not valid UTF-8 in general): checks byte-for-byte fidelity."""
    return r.randbytes(n)


def compressible(i: int, n: int) -> bytes:
    """n bytes that compress well (codecs must really shrink them), distinct per i."""
    head = f"record-{i:08d}|".encode()
    body = (b"strom e2e compressible payload " * (n // 31 + 1))
    return (head + body)[:n]


@dataclass
class Rec:
    """A record to produce."""
    key: bytes | None
    value: bytes | None
    headers: list = field(default_factory=list)  # [(str, bytes | None)]
    partition: int | None = None
    timestamp: int | None = None


@dataclass
class Got:
    """A consumed record, the same for every client."""
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list  # [(str, bytes | None)]

    def kvh(self):
        return (self.key, self.value, [tuple(h) for h in self.headers])


def assert_same_records(got: list[Got], sent: list[Rec], check_headers: bool = True):
    """got (one partition, in offset order) holds exactly sent, byte for byte, in order."""
    assert len(got) == len(sent), f"consumed {len(got)} records, produced {len(sent)}"
    offsets = [g.offset for g in got]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets), f"offsets not increasing: {offsets}"
    for i, (g, s) in enumerate(zip(got, sent)):
        assert g.key == s.key, f"record {i} (offset {g.offset}): key {g.key!r:.80} != {s.key!r:.80}"
        assert g.value == s.value, (
            f"record {i} (offset {g.offset}): value differs "
            f"(len {None if g.value is None else len(g.value)} vs {None if s.value is None else len(s.value)})")
        if check_headers:
            assert [tuple(h) for h in g.headers] == [tuple(h) for h in s.headers], \
                f"record {i} (offset {g.offset}): headers {g.headers!r} != {s.headers!r}"
        if s.timestamp is not None:
            assert g.timestamp == s.timestamp, f"record {i}: timestamp {g.timestamp} != {s.timestamp}"


def sample_records(seed, n: int, size: int = 100, headers: bool = True) -> list[Rec]:
    """n records with random binary keys/values and headers (incl. a repeated name, an
    empty value and, when the client supports it, a null value), plus a null key and
    a null value (tombstone) and an empty value."""
    r = rng(seed)
    recs = []
    for i in range(n):
        key = payload(r, r.randint(1, 40))
        value = payload(r, r.randint(0, size))
        hs = []
        if headers:
            hs = [("h-int", str(i).encode()), ("h-bin", payload(r, r.randint(0, 30))), ("h-bin", b"")]
        recs.append(Rec(key, value, hs))
    if n >= 4:
        recs[1].key = None
        recs[2].value = None
        recs[3].value = b""
    return recs


# ---------------------------------------------------------------------------- Java

JAVA_JARS = ["kafka-clients", "slf4j-api", "lz4-java", "snappy-java", "zstd-jni"]


def java_classpath() -> str:
    lib = Path(sysconfig.get_paths()["purelib"]) / "pyflink" / "lib"
    classes = Path(os.environ.get("E2E_JAVA_CLASSES", Path(sys.prefix) / "java-classes"))
    missing = [str(p) for p in [classes / "StromE2E.class"] + [lib / f"{j}.jar" for j in JAVA_JARS]
               if not p.exists()]
    if missing:
        raise RuntimeError(f"Java test tool not built ({', '.join(missing)} missing): run e2e/setup.sh "
                           f"and run pytest with its venv's python")
    return os.pathsep.join([str(classes)] + [str(lib / f"{j}.jar") for j in JAVA_JARS])


@dataclass
class JavaResult:
    returncode: int
    lines: list
    stderr: str

    @property
    def last(self) -> dict:
        return self.lines[-1] if self.lines else {}


class Java:
    """Runs e2e/java/StromE2E.java (kafka-clients 3.9.1) as a subprocess."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.cp = java_classpath()

    def run(self, *args, input: str | None = None, timeout: float = 90, ok_codes=(0,)) -> JavaResult:
        cmd = ["java", "-Xss1m", "-XX:TieredStopAtLevel=1", "-cp", self.cp, "StromE2E", *map(str, args)]
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
        res = JavaResult(p.returncode, lines, p.stderr)
        if p.returncode not in ok_codes:
            raise AssertionError(f"java {' '.join(map(str, args[:2]))} exited {p.returncode}\n"
                                 f"stdout: {p.stdout[-3000:]}\nstderr: {p.stderr[-3000:]}")
        return res

    @staticmethod
    def encode(rec: Rec) -> str:
        def b(x):
            return "-" if x is None else base64.b64encode(x).decode()
        hs = ",".join(base64.b64encode(k.encode()).decode() + ":" + ("-" if v is None else base64.b64encode(v).decode())
                      for k, v in rec.headers)
        return "\t".join(["-" if rec.partition is None else str(rec.partition),
                          "-" if rec.timestamp is None else str(rec.timestamp), b(rec.key), b(rec.value), hs])

    def produce(self, topic: str, records: list[Rec], compression: str = "none", idempotent: bool = True,
                acks: str = "all", config: dict | None = None, sync: bool = False,
                timeout: float = 90) -> tuple[list, dict]:
        """-> (acks/errors ordered by input index, the final summary). sync: each record
        is acknowledged before the next is sent (one record per batch)."""
        args = ["produce", "--bootstrap", self.bootstrap, "--topic", topic, "--input", "-",
                "--compression", compression, "--idempotent", str(idempotent).lower(), "--acks", acks,
                "--sync", str(sync).lower()]
        for k, v in (config or {}).items():
            args += ["--producer-config", f"{k}={v}"]
        res = self.run(*args, input="".join(self.encode(r) + "\n" for r in records), timeout=timeout)
        done = res.last
        assert done.get("done"), f"producer did not finish: {res.lines[-3:]} {res.stderr[-2000:]}"
        acks_ = sorted((x for x in res.lines if "i" in x), key=lambda x: x["i"])
        assert len(acks_) == len(records), f"{len(acks_)} callbacks for {len(records)} records"
        return acks_, done

    def consume(self, topic: str, partitions=None, start: str = "beginning", max: int | None = None,
                until_end: bool = False, timeout_ms: int = 30000, config: dict | None = None):
        """-> (positions after seek {partition: offset}, [Got], summary)."""
        args = ["consume", "--bootstrap", self.bootstrap, "--topic", topic, "--from", start,
                "--timeout-ms", timeout_ms, "--until-end", str(until_end).lower()]
        for p in partitions or []:
            args += ["--partition", p]
        if max is not None:
            args += ["--max", max]
        for k, v in (config or {}).items():
            args += ["--consumer-config", f"{k}={v}"]
        res = self.run(*args, timeout=timeout_ms / 1000 + 60)
        positions = {int(k): v for k, v in res.lines[0]["positions"].items()}
        got = []
        for x in res.lines[1:]:
            if "offset" in x:
                got.append(Got(x["partition"], x["offset"], x["timestamp"],
                               None if x["key"] is None else base64.b64decode(x["key"]),
                               None if x["value"] is None else base64.b64decode(x["value"]),
                               [(h[0], None if h[1] is None else base64.b64decode(h[1])) for h in x["headers"]]))
        return positions, got, res.last

    def admin(self, op: str, *args, ok_codes=(0, 3), timeout: float = 60, **kw) -> dict:
        """-> the JSON answer; Kafka errors come back as {"error": "<ERROR_NAME>", ...}."""
        argv = ["admin", op, "--bootstrap", self.bootstrap, *args]
        for k, v in kw.items():
            flag = "--" + k.replace("_", "-")
            for item in (v if isinstance(v, list) else [v]):
                argv += [flag, str(item).lower() if isinstance(item, bool) else item]
        return self.run(*argv, ok_codes=ok_codes, timeout=timeout).last


# ---------------------------------------------------------------------------- kcat

def kcat_binary() -> str:
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if not path:
        raise RuntimeError("kcat is not installed: run e2e/setup.sh (apt-get install kcat)")
    return path
