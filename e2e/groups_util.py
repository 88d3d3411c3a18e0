"""Consumer-group drivers for the e2e tests: one small interface over confluent-kafka
(classic protocol and KIP-848 `group.protocol=consumer`), kafka-python 3, aiokafka and
the Java client (classic and KIP-848, through e2e/java/StromGroupMember.java), so each
group scenario is written once and runs against every client.

Every member runs its client calls on a thread of its own (a one-thread executor), the
way separate processes would: `drive()` polls all members of a group at the same time,
so a client whose poll blocks in a JoinGroup (kafka-python) does not stall the others.
aiokafka members share one event loop thread per client; Java members are one JVM
each, driven line by line over stdin.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import queue
import struct
import subprocess
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from e2e_util import java_classpath, wait_until
from strom_harness import metadata_leaders

# Node settings of the group test modules: a short initial rebalance delay (the default
# 3000 ms would cost every new group 3 s) and a short KIP-848 heartbeat interval (the
# broker tells ConsumerGroupHeartbeat clients how often to come back; default 5000 ms).
GROUP_SETTINGS = {
    "group.initial.rebalance.delay.ms": 200,
    "group.consumer.heartbeat.interval.ms": 500,
}

# Classic-protocol clients heartbeat every 3 s by default, and learn of a rebalance only
# on a heartbeat: 500 ms keeps the tests fast.
CLASSIC_HEARTBEAT_MS = 500
CLASSIC_SESSION_MS = 10000


@dataclass(frozen=True)
class Msg:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class DescMember:
    member_id: str
    client_id: str
    partitions: frozenset


@dataclass
class Desc:
    """A group as an admin client describes it, normalized over the clients."""
    state: str                      # lower case: "stable", "empty", ...
    members: list = field(default_factory=list)  # [DescMember]
    coordinator: int | None = None
    type: str | None = None

    def assignment(self) -> dict:
        return {m.member_id: set(m.partitions) for m in self.members}


# ------------------------------------------------------------------ confluent helpers

_ADMINS: dict = {}


def confluent_admin(bootstrap):
    """One confluent AdminClient per bootstrap, kept for the run: an AdminClient that is
    garbage collected fails its pending futures with _DESTROY, which a chained call like
    confluent_admin(b).describe_consumer_groups([g])[g].result() would hit."""
    from confluent_kafka.admin import AdminClient
    if bootstrap not in _ADMINS:
        _ADMINS[bootstrap] = AdminClient({"bootstrap.servers": bootstrap})
    return _ADMINS[bootstrap]


def forget_admin(bootstrap):
    """Drop the kept AdminClient of `bootstrap`: call it after restarting nodes. A
    librdkafka 2.16 AdminClient that saw all its brokers go down re-bootstraps (KIP-1102
    decommissioning) and afterwards answers one request and then times out every
    further one (its old broker thread for the node id spins in "Handle is terminating"),
    so requests after a restart go through a new one."""
    _ADMINS.pop(bootstrap, None)


def create_topic(bootstrap: str, name: str, partitions: int = 3, config: dict | None = None) -> str:
    """Create an RF-1 topic and wait until every partition has a leader."""
    from confluent_kafka.admin import NewTopic
    a = confluent_admin(bootstrap)
    a.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(timeout=60)

    def ready():
        md = a.list_topics(name, timeout=5).topics.get(name)
        return (md is not None and md.error is None and len(md.partitions) == partitions
                and all(p.leader >= 0 for p in md.partitions.values()))
    wait_until(ready, 20, what=f"leaders of {name}")
    # In a cluster every broker follows the metadata log on its own: wait until each one
    # knows the topic, so that a coordinator on any node accepts its offsets.
    for address in bootstrap.split(","):
        wait_until(lambda: (lambda ls: ls is not None and len(ls) == partitions
                            and all(v >= 0 for v in ls.values()))(metadata_leaders(address, name)),
                   20, what=f"{address} to know {name}")
    return name


def produce(bootstrap: str, topic: str, n: int, partitions: int | None = None, prefix: str = "m",
            keyed: bool = True) -> list[Msg]:
    """n records with keys key-<i % 7> (or, with `partitions`, spread round robin over the
    partitions), -> [Msg] as acknowledged, in (partition, offset) order."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    acked, errors = [], []

    def done(err, m):
        if err is not None:
            errors.append(err)
        else:
            acked.append(Msg(m.partition(), m.offset(), m.key(), m.value()))

    for i in range(n):
        kw = {"partition": i % partitions} if partitions else {}
        p.produce(topic, key=(f"key-{i % 7}".encode() if keyed else None),
                  value=f"{prefix}-{i}-{uuid.uuid4().hex[:6]}".encode(), on_delivery=done, **kw)
        p.poll(0)
    assert p.flush(60) == 0, "records not delivered within 60 s"
    assert not errors, f"delivery errors: {errors[:3]}"
    return sorted(acked, key=lambda m: (m.partition, m.offset))


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"e2e-unused-{uuid.uuid4().hex[:6]}"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        c.close()


def group_offsets(bootstrap: str, group: str, topic: str | None = None) -> dict:
    """OffsetFetch (kafka-python's KafkaAdminClient) -> {partition: (offset, metadata)} of
    `topic`, or with topic=None {(topic, partition): (offset, metadata)} of every topic.

    Not confluent's AdminClient: librdkafka hands committed metadata over without its
    length, and confluent-kafka reads it as a C string, so a metadata string comes back
    with random bytes after it (or as a UnicodeDecodeError) - librdkafka#4649."""
    from kafka.admin import KafkaAdminClient
    a = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        res = a.list_group_offsets({group: None})[group]
    finally:
        a.close()
    out = {}
    for tp, om in res.items():
        if om.offset < 0:
            continue
        if topic is None:
            out[(tp.topic, tp.partition)] = (om.offset, om.metadata or "")
        elif tp.topic == topic:
            out[tp.partition] = (om.offset, om.metadata or "")
    return out


def same_positions(committed: dict, expected: dict, partitions=range(3)) -> bool:
    """committed {p: offset | (offset, meta) | None} names the positions `expected`
    {p: offset} does; a partition without records consumed may be committed at 0 (the
    Java client, kafka-python and aiokafka commit every assigned position) or not at all."""
    def off(v):
        return None if v is None else (v[0] if isinstance(v, tuple) else v)
    return all((off(committed.get(p)) or 0) == expected.get(p, 0) for p in partitions)


def next_offsets(msgs) -> dict[int, int]:
    """{partition: last offset + 1} of the given records."""
    out: dict[int, int] = {}
    for m in msgs:
        out[m.partition] = max(out.get(m.partition, 0), m.offset + 1)
    return out


# ------------------------------------------------------------------ members

class Member:
    """One group member. Every client call runs on the member's own thread."""

    def __init__(self, client: "Client", group: str, topic: str, name: str):
        self.client, self.group, self.topic, self.name = client, group, topic, name
        self.consumed: list[Msg] = []
        self.batches: list[int] = []     # records per poll that returned any
        self.closed = False
        self.last_assignment: set = set()
        self._ex = ThreadPoolExecutor(1, thread_name_prefix=name)

    def __repr__(self):
        return f"<{self.name} {sorted(self.last_assignment)}>"

    def _run(self, fn, *args, timeout: float = 90):
        return self._ex.submit(fn, *args).result(timeout=timeout)

    # --- the interface the tests use
    def poll_async(self, timeout_s: float) -> Future:
        def task():
            recs = self._poll(timeout_s)
            if recs:
                self.consumed.extend(recs)
                self.batches.append(len(recs))
            self.last_assignment = self._assignment()
            return recs
        return self._ex.submit(task)

    def poll(self, timeout_s: float = 0.5) -> list[Msg]:
        return self.poll_async(timeout_s).result(timeout=timeout_s + 90)

    def assignment(self) -> set:
        self.last_assignment = self._run(self._assignment)
        return self.last_assignment

    def member_id(self) -> str:
        return self._run(self._member_id)

    def generation(self) -> int | None:
        """The generation (classic) or member epoch (KIP-848) the client reports, when it
        reports one."""
        return self._run(self._generation)

    def _generation(self):
        return None

    def is_leader(self) -> bool | None:
        """Whether this member is the classic group's leader, when the client tells."""
        return self._run(self._is_leader)

    def _is_leader(self):
        return None

    def commit(self):
        """Synchronous commit of the consumed positions."""
        return self._run(self._commit)

    def commit_async(self):
        return self._run(self._commit_async)

    def async_results(self, timeout_s: float = 20) -> list:
        """Waits (polling) for every commit_async so far: -> [(offsets {p: offset}, error)]."""
        return self._run(self._async_results, timeout_s, timeout=timeout_s + 60)

    def commit_offsets(self, offsets: dict):
        """offsets: {partition: (offset, metadata)}; synchronous."""
        return self._run(self._commit_offsets, offsets)

    def committed(self, partitions) -> dict:
        """-> {partition: (offset, metadata) or None}."""
        return self._run(self._committed, list(partitions))

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self._run(self._close, timeout=60)
            finally:
                self._ex.shutdown(wait=False)

    def kill(self):
        """Teardown: close, never raise."""
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


class Client:
    """A Kafka client library in one group protocol: makes members, describes groups."""
    name = "?"
    protocol = "classic"
    # True when a rebalance must leave members the partitions they keep (KIP-848's
    # server-side assignors, the client-side cooperative-sticky assignor).
    sticky = False
    # What the broker stores after the metadata string a commit of this client names.
    stored_metadata_suffix = ""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.members: list[Member] = []

    def member(self, group: str, topic: str, auto_commit_ms: int | None = None,
               max_poll_records: int | None = None, instance_id: str | None = None) -> Member:
        """A new member subscribed to topic in group; instance_id makes it a static member
        (group.instance.id)."""
        m = self._member(group, topic, auto_commit_ms, max_poll_records,
                         f"{self.name}-{len(self.members) + 1}-{uuid.uuid4().hex[:4]}", instance_id)
        self.members.append(m)
        return m

    def describe(self, group: str) -> Desc:
        raise NotImplementedError

    def close(self):
        for m in self.members:
            m.kill()


# --- confluent-kafka --------------------------------------------------------------

class ConfluentMember(Member):
    def __init__(self, client, group, topic, name, auto_commit_ms, max_poll_records, instance_id=None):
        super().__init__(client, group, topic, name)
        from confluent_kafka import Consumer
        self._callbacks: list = []
        self._async_calls = 0
        conf = {"bootstrap.servers": client.bootstrap, "group.id": group, "client.id": name,
                "auto.offset.reset": "earliest", "enable.auto.commit": auto_commit_ms is not None,
                "on_commit": self._on_commit}
        if auto_commit_ms is not None:
            conf["auto.commit.interval.ms"] = auto_commit_ms
        if instance_id is not None:
            conf["group.instance.id"] = instance_id
        conf.update(client.extra)
        if client.protocol == "consumer":
            conf["group.protocol"] = "consumer"
        else:
            conf["heartbeat.interval.ms"] = CLASSIC_HEARTBEAT_MS
            conf["session.timeout.ms"] = CLASSIC_SESSION_MS
        self.max_records = max_poll_records or 500
        self.c = self._run(Consumer, conf)
        self._run(self.c.subscribe, [topic])

    def _on_commit(self, err, partitions):
        self._callbacks.append(({tp.partition: tp.offset for tp in partitions}, None if err is None else str(err)))

    def _poll(self, timeout_s):
        msgs = self.c.consume(num_messages=self.max_records, timeout=timeout_s)
        out = []
        for m in msgs:
            if m.error():
                raise AssertionError(f"{self.name}: consumer error {m.error()}")
            out.append(Msg(m.partition(), m.offset(), m.key(), m.value()))
        return out

    def _assignment(self):
        return {tp.partition for tp in self.c.assignment()}

    def _member_id(self):
        return self.c.memberid()

    def _commit(self):
        self.c.commit(asynchronous=False)

    def _commit_async(self):
        self._async_calls += 1
        self.c.commit(asynchronous=True)

    def _async_results(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        assigned = self.c.assignment()
        self.c.pause(assigned)  # poll serves the commit callback but must not hand out records
        try:
            while len(self._callbacks) < self._async_calls and time.monotonic() < deadline:
                m = self.c.poll(0.05)
                assert m is None or m.error(), f"{self.name}: a record arrived from a paused partition"
        finally:
            self.c.resume(assigned)
        return list(self._callbacks)

    def _commit_offsets(self, offsets):
        from confluent_kafka import TopicPartition
        res = self.c.commit(offsets=[TopicPartition(self.topic, p, o, metadata=meta)
                                     for p, (o, meta) in offsets.items()], asynchronous=False)
        bad = [tp for tp in res if tp.error is not None]
        assert not bad, f"commit errors: {bad}"

    def _committed(self, partitions):
        """committed(): safe for metadata this client committed itself, which carries a
        trailing NUL (see ConfluentClient.stored_metadata_suffix); metadata committed by
        another client comes back with random bytes after it (librdkafka#4649)."""
        from confluent_kafka import TopicPartition
        res = self.c.committed([TopicPartition(self.topic, p) for p in partitions], timeout=30)
        return {tp.partition: (None if tp.offset < 0 else (tp.offset, tp.metadata or "")) for tp in res}

    def _close(self):
        self.c.close()


class ConfluentClient(Client):
    # confluent-kafka (2.16) sends TopicPartition.metadata with its C string terminator:
    # metadata "abc" goes out as the 4 bytes "abc\0" (kafka-python's OffsetFetch reads it
    # back so); its own committed() stops at the NUL.
    stored_metadata_suffix = "\x00"

    def __init__(self, bootstrap, protocol="classic", assignor=None):
        super().__init__(bootstrap)
        self.protocol = protocol
        self.name = f"confluent-{protocol}" if assignor is None else f"confluent-{assignor}"
        self.extra = {} if assignor is None else {"partition.assignment.strategy": assignor}
        self.sticky = protocol == "consumer" or assignor == "cooperative-sticky"
        self.admin = confluent_admin(bootstrap)

    def _member(self, group, topic, auto_commit_ms, max_poll_records, name, instance_id):
        return ConfluentMember(self, group, topic, name, auto_commit_ms, max_poll_records, instance_id)

    def describe(self, group) -> Desc:
        d = self.admin.describe_consumer_groups([group], request_timeout=30)[group].result(timeout=40)
        return Desc(d.state.name.lower(),
                    [DescMember(m.member_id, m.client_id,
                                frozenset(tp.partition for tp in (m.assignment.topic_partitions if m.assignment else [])))
                     for m in d.members],
                    d.coordinator.id if d.coordinator else None,
                    d.type.name.lower() if getattr(d, "type", None) is not None else None)


# --- kafka-python -------------------------------------------------------------------

class KafkaPythonMember(Member):
    def __init__(self, client, group, topic, name, auto_commit_ms, max_poll_records, instance_id=None):
        super().__init__(client, group, topic, name)
        from kafka import KafkaConsumer
        self._callbacks: list = []
        self._async_calls = 0
        kw = dict(bootstrap_servers=client.bootstrap, group_id=group, client_id=name,
                  auto_offset_reset="earliest", enable_auto_commit=auto_commit_ms is not None,
                  heartbeat_interval_ms=CLASSIC_HEARTBEAT_MS, session_timeout_ms=CLASSIC_SESSION_MS)
        if auto_commit_ms is not None:
            kw["auto_commit_interval_ms"] = auto_commit_ms
        if max_poll_records:
            kw["max_poll_records"] = max_poll_records
        if instance_id is not None:
            kw["group_instance_id"] = instance_id
        self.c = self._run(lambda: KafkaConsumer(topic, **kw))

    def _poll(self, timeout_s):
        out = []
        for tp, recs in self.c.poll(timeout_ms=int(timeout_s * 1000)).items():
            out += [Msg(r.partition, r.offset, r.key, r.value) for r in recs]
        return out

    def _assignment(self):
        return {tp.partition for tp in self.c.assignment()}

    def _member_id(self):
        return self.c.group_metadata().member_id

    def _generation(self):
        return self.c.group_metadata().generation_id

    def _is_leader(self):
        return self.c._coordinator._is_leader  # noqa: SLF001 - not in kafka-python's API

    def _commit(self):
        self.c.commit()

    def _commit_async(self):
        self._async_calls += 1

        def cb(offsets, response):
            err = response if isinstance(response, Exception) else None
            self._callbacks.append(({tp.partition: om.offset for tp, om in offsets.items()},
                                    None if err is None else repr(err)))
        self.c.commit_async(callback=cb)

    def _async_results(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        assigned = list(self.c.assignment())
        self.c.pause(*assigned)  # the callback runs inside poll, which must not hand out records
        try:
            while len(self._callbacks) < self._async_calls and time.monotonic() < deadline:
                recs = self._poll(0.05)
                assert not recs, f"{self.name}: records arrived from paused partitions"
        finally:
            self.c.resume(*assigned)
        return list(self._callbacks)

    def _commit_offsets(self, offsets):
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata
        self.c.commit({TopicPartition(self.topic, p): OffsetAndMetadata(o, meta, -1)
                       for p, (o, meta) in offsets.items()})

    def _committed(self, partitions):
        from kafka import TopicPartition
        out = {}
        for p in partitions:
            om = self.c.committed(TopicPartition(self.topic, p), metadata=True)
            out[p] = None if om is None or om.offset < 0 else (om.offset, om.metadata or "")
        return out

    def _close(self):
        self.c.close()


def decode_assignment(data: bytes) -> set:
    """ConsumerProtocolAssignment bytes -> {(topic, partition)}."""
    if not data:
        return set()
    pos = 2  # version

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return v
    out = set()
    for _ in range(take(">i")):
        n = take(">h")
        topic = data[pos:pos + n].decode()
        pos += n
        for _ in range(take(">i")):
            out.add((topic, take(">i")))
    return out


class KafkaPythonClient(Client):
    name = "kafka-python"

    def __init__(self, bootstrap):
        super().__init__(bootstrap)
        from kafka.admin import KafkaAdminClient
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)

    def _member(self, group, topic, auto_commit_ms, max_poll_records, name, instance_id):
        return KafkaPythonMember(self, group, topic, name, auto_commit_ms, max_poll_records, instance_id)

    def describe(self, group) -> Desc:
        g = self.admin.describe_groups([group])[group]
        assert g["error"] is None, g
        members = []
        for m in g["members"]:
            a = m["member_assignment"]
            parts = frozenset(p for tps in (a or {}).get("assigned_partitions", []) for p in tps["partitions"])
            members.append(DescMember(m["member_id"], m["client_id"], parts))
        return Desc(g["group_state"].lower(), members, None, g.get("protocol_type"))

    def close(self):
        super().close()
        self.admin.close()


# --- aiokafka -----------------------------------------------------------------------

class AioMember(Member):
    def __init__(self, client, group, topic, name, auto_commit_ms, max_poll_records, instance_id=None):
        super().__init__(client, group, topic, name)
        self._tasks: list = []
        kw = dict(bootstrap_servers=client.bootstrap, group_id=group, client_id=name,
                  auto_offset_reset="earliest", enable_auto_commit=auto_commit_ms is not None,
                  heartbeat_interval_ms=CLASSIC_HEARTBEAT_MS, session_timeout_ms=CLASSIC_SESSION_MS)
        if auto_commit_ms is not None:
            kw["auto_commit_interval_ms"] = auto_commit_ms
        if max_poll_records:
            kw["max_poll_records"] = max_poll_records
        if instance_id is not None:
            kw["group_instance_id"] = instance_id

        async def make():
            from aiokafka import AIOKafkaConsumer
            c = AIOKafkaConsumer(topic, **kw)
            await c.start()
            return c
        self.c = client.run(make())

    def _poll(self, timeout_s):
        res = self.client.run(self.c.getmany(timeout_ms=int(timeout_s * 1000)))
        return [Msg(r.partition, r.offset, r.key, r.value) for recs in res.values() for r in recs]

    def _assignment(self):
        return {tp.partition for tp in self.c.assignment()}

    def _member_id(self):
        return self.c._coordinator.member_id  # no public accessor

    def _generation(self):
        return self.c._coordinator.generation

    def _commit(self):
        self.client.run(self.c.commit())

    def _commit_async(self):
        # aiokafka's own recipe for a fire-and-forget commit: a task with a done callback.
        async def start():
            offsets = {tp.partition: await self.c.position(tp) for tp in self.c.assignment()}
            t = asyncio.get_running_loop().create_task(self.c.commit())
            return offsets, t
        self._tasks.append(self.client.run(start()))

    def _async_results(self, timeout_s):
        async def wait():
            out = []
            for offsets, t in self._tasks:
                try:
                    await asyncio.wait_for(asyncio.shield(t), timeout_s)
                    out.append((offsets, None))
                except Exception as e:  # noqa: BLE001
                    out.append((offsets, repr(e)))
            return out
        return self.client.run(wait())

    def _commit_offsets(self, offsets):
        from aiokafka.structs import TopicPartition
        self.client.run(self.c.commit({TopicPartition(self.topic, p): (o, meta) for p, (o, meta) in offsets.items()}))

    def _committed(self, partitions):
        """Offsets through committed(); metadata through aiokafka's OffsetFetch (its
        consumer API returns the offset only)."""
        from aiokafka.structs import TopicPartition
        out = {}
        for p in partitions:
            tp = TopicPartition(self.topic, p)
            off = self.client.run(self.c.committed(tp))
            if off is None or off < 0:
                out[p] = None
                continue
            fetched = self.client.run(self.c._coordinator.fetch_committed_offsets([tp]))
            om = fetched.get(tp)
            assert om is not None and om.offset == off, (off, fetched)
            out[p] = (off, om.metadata or "")
        return out

    def _close(self):
        self.client.run(self.c.stop())


class AioClient(Client):
    name = "aiokafka"

    def __init__(self, bootstrap):
        super().__init__(bootstrap)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="aiokafka-loop")
        self.thread.start()
        self.admin = None

    def run(self, coro, timeout: float = 90):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _member(self, group, topic, auto_commit_ms, max_poll_records, name, instance_id):
        return AioMember(self, group, topic, name, auto_commit_ms, max_poll_records, instance_id)

    def _admin(self):
        if self.admin is None:
            async def make():
                from aiokafka.admin import AIOKafkaAdminClient
                a = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=30000)
                await a.start()
                return a
            self.admin = self.run(make())
        return self.admin

    def describe(self, group) -> Desc:
        resps = self.run(self._admin().describe_consumer_groups([group]))
        groups = [g for r in resps for g in r.groups]
        (g,) = groups
        err, gid, state, ptype, proto, members = g[:6]
        assert err == 0, g
        return Desc(state.lower(),
                    [DescMember(m[0], m[-4], frozenset(p for _, p in decode_assignment(m[-1]))) for m in members],
                    None, ptype)

    def list_offsets(self, group) -> dict:
        return self.run(self._admin().list_consumer_group_offsets(group))

    def close(self):
        super().close()
        if self.admin is not None:
            try:
                self.run(self.admin.close(), timeout=20)
            except Exception:  # noqa: BLE001
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)


# --- Java ---------------------------------------------------------------------------

class JavaMember(Member):
    """A StromGroupMember JVM: one command line in, one JSON line out."""

    def __init__(self, client, group, topic, name, auto_commit_ms, max_poll_records, instance_id=None):
        super().__init__(client, group, topic, name)
        cfg = {"client.id": name}
        if client.protocol == "consumer":
            cfg["group.protocol"] = "consumer"
        else:
            cfg["heartbeat.interval.ms"] = CLASSIC_HEARTBEAT_MS
            cfg["session.timeout.ms"] = CLASSIC_SESSION_MS
        if auto_commit_ms is not None:
            cfg["enable.auto.commit"] = "true"
            cfg["auto.commit.interval.ms"] = auto_commit_ms
        if max_poll_records:
            cfg["max.poll.records"] = max_poll_records
        if instance_id is not None:
            cfg["group.instance.id"] = instance_id
        cfg.update(client.extra)
        args = ["java", "-Xss1m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", java_classpath(),
                "StromGroupMember", "--bootstrap", client.bootstrap, "--group", group, "--topic", topic]
        for k, v in cfg.items():
            args += ["--consumer-config", f"{k}={v}"]
        self.stderr = collections.deque(maxlen=300)
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout, self._lines.put), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr.append), daemon=True).start()
        ready = self._line(60)
        assert ready.get("ready"), ready
        self._assign: set = set()
        self._async_calls = 0

    @staticmethod
    def _read(stream, put):
        for line in stream:
            put(line.rstrip("\n"))

    def _line(self, timeout) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.name}: no answer within {timeout} s (exit code {self.proc.poll()})\n"
                                     + "\n".join(list(self.stderr)[-60:]))
            if line.startswith("{"):
                return json.loads(line)

    def cmd(self, line: str, timeout: float = 60) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        out = self._line(timeout)
        if "error" in out and not line.startswith("async-results"):
            raise AssertionError(f"{self.name}: {line!r} -> {out}\n" + "\n".join(list(self.stderr)[-40:]))
        return out

    def _poll(self, timeout_s):
        out = self.cmd(f"poll {int(timeout_s * 1000)}")
        self._assign = set(out["assignment"])
        return [Msg(r["partition"], r["offset"], None if r["key"] is None else base64.b64decode(r["key"]),
                    None if r["value"] is None else base64.b64decode(r["value"])) for r in out["records"]]

    def _assignment(self):
        return set(self.cmd("assignment")["assignment"])

    def _member_id(self):
        return self.cmd("member-id")["member_id"]

    def _generation(self):
        return self.cmd("member-id")["generation"]

    def _commit(self):
        self.cmd("commit-sync")

    def _commit_async(self):
        self._async_calls += 1
        self.cmd("commit-async")

    def _async_results(self, timeout_s):
        out = self.cmd(f"async-results {int(timeout_s * 1000)}", timeout=timeout_s + 30)
        return [({int(p): o["offset"] for p, o in cb["offsets"].items()},
                 None if cb["error"] is None else json.dumps(cb["error"])) for cb in out["callbacks"]]

    def _commit_offsets(self, offsets):
        parts = [f"{p}={o}:{base64.b64encode(meta.encode()).decode() if meta else '-'}"
                 for p, (o, meta) in offsets.items()]
        self.cmd("commit " + " ".join(parts))

    def _committed(self, partitions):
        out = self.cmd("committed " + " ".join(map(str, partitions)))["committed"]
        return {int(p): None if v is None else (v["offset"], v["metadata"] or "") for p, v in out.items()} | \
            {p: None for p in partitions if str(p) not in out}

    def describe(self) -> Desc:
        d = self._run(self.cmd, "describe")
        return Desc(d["state"].lower(),
                    [DescMember(m["member_id"], m["client_id"], frozenset(m["partitions"])) for m in d["members"]],
                    d["coordinator"], d["type"].lower())

    def _close(self):
        try:
            self.cmd("close", timeout=45)
        finally:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def kill(self):
        super().kill()
        if self.proc.poll() is None:
            self.proc.kill()


class JavaClient(Client):
    def __init__(self, bootstrap, protocol="classic", assignor=None):
        super().__init__(bootstrap)
        self.protocol = protocol
        self.name = f"java-{protocol}" if assignor is None else "java-cooperative"
        self.extra = {} if assignor is None else {"partition.assignment.strategy": assignor}
        self.sticky = protocol == "consumer" or assignor is not None

    def _member(self, group, topic, auto_commit_ms, max_poll_records, name, instance_id):
        return JavaMember(self, group, topic, name, auto_commit_ms, max_poll_records, instance_id)

    def describe(self, group) -> Desc:
        """Through the Java Admin of a live member of the group (one JVM each)."""
        live = [m for m in self.members if not m.closed and m.group == group]
        assert live, f"no live Java member of {group} to describe it through"
        return live[0].describe()


CLIENTS = {
    "confluent-classic": lambda b: ConfluentClient(b, "classic"),
    "confluent-consumer": lambda b: ConfluentClient(b, "consumer"),
    "kafka-python": KafkaPythonClient,
    "aiokafka": AioClient,
    "java-classic": lambda b: JavaClient(b, "classic"),
    "java-consumer": lambda b: JavaClient(b, "consumer"),
    # classic protocol with the client-side incremental (KIP-429) assignor
    "confluent-cooperative": lambda b: ConfluentClient(b, "classic", "cooperative-sticky"),
    "java-cooperative": lambda b: JavaClient(
        b, "classic", "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"),
}


# ------------------------------------------------------------------ driving a group

def drive(members: list[Member], until, timeout: float = 40, poll_s: float = 0.2, what: str = "condition"):
    """Poll every member at once, round after round, until until() is truthy; -> its value."""
    deadline = time.monotonic() + timeout
    while True:
        futs = [m.poll_async(poll_s) for m in members]
        for f in futs:
            f.result(timeout=poll_s + 90)
        v = until()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; assignments: "
                                 f"{[(m.name, sorted(m.last_assignment)) for m in members]}")


# ------------------------------------------------------------------ scenarios
# Written once, run by test_groups.py (Python clients) and test_groups_java.py.

def _assert_describe_matches(client: Client, group: str, members: list[Member], timeout: float = 30) -> Desc:
    """The admin's view of the group (client.describe) names every member with exactly
    the partitions the member's own client reports (members keep polling meanwhile)."""
    by_id = {m.member_id(): m for m in members}
    assert len(by_id) == len(members), f"member ids not distinct: {list(by_id)}"
    last = {}

    def matches():
        d = client.describe(group)
        last["d"] = d
        want = {mid: set(m.last_assignment) for mid, m in by_id.items()}
        return d if d.state == "stable" and d.assignment() == want else None
    try:
        return drive(members, matches, timeout=timeout, what=f"describe of {group} to match the members")
    except AssertionError as e:
        raise AssertionError(f"{e}\nlast describe: {last.get('d')}\nmembers: "
                             f"{ {mid: sorted(m.last_assignment) for mid, m in by_id.items()} }") from None


def scenario_three_members_then_one_leaves(client: Client, bootstrap: str, topic: str, group: str):
    create_topic(bootstrap, topic, 3)
    ms = [client.member(group, topic) for _ in range(3)]

    def one_each():
        asg = [m.last_assignment for m in ms]
        return all(len(a) == 1 for a in asg) and set().union(*asg) == {0, 1, 2}
    drive(ms, one_each, timeout=45, what="one partition per member")
    d = _assert_describe_matches(client, group, ms)
    assert len(d.members) == 3 and sorted(len(m.partitions) for m in d.members) == [1, 1, 1], d
    assert {m.client_id for m in d.members} == {m.name for m in ms}, d

    # One member leaves: its partition moves to the two others, no partition twice.
    gone, rest = ms[0], ms[1:]
    before = {m.name: set(m.last_assignment) for m in rest}
    gone.close()

    def covered():
        asg = [m.last_assignment for m in rest]
        return sum(len(a) for a in asg) == 3 and set().union(*asg) == {0, 1, 2}
    drive(rest, covered, timeout=45, what="the two remaining members to cover all 3 partitions")
    assert sorted(len(m.last_assignment) for m in rest) == [1, 2], [m.last_assignment for m in rest]
    if client.sticky:
        # KIP-848's server-side assignors and cooperative-sticky keep what a member has.
        for m in rest:
            assert before[m.name] <= m.last_assignment, (before, [m.last_assignment for m in rest])
    d = _assert_describe_matches(client, group, rest)
    assert len(d.members) == 2, d

    # The records of every partition now reach the member that owns it.
    sent = produce(bootstrap, topic, 30, partitions=3, prefix="after-leave")
    owner = {p: m for m in rest for p in m.last_assignment}
    drive(rest, lambda: sum(len(m.consumed) for m in rest) >= 30, timeout=30, what="30 records")
    for m in rest:
        assert {r.partition for r in m.consumed} <= m.last_assignment
    got = sorted((r for m in rest for r in m.consumed), key=lambda r: (r.partition, r.offset))
    assert got == sent, f"consumed {len(got)} records, produced {len(sent)}"
    assert all(owner[r.partition] is m for m in rest for r in m.consumed)


def scenario_commit_and_resume(client: Client, bootstrap: str, topic: str, group: str, n: int = 60):
    create_topic(bootstrap, topic, 3)
    sent = produce(bootstrap, topic, n, prefix="resume")
    assert len({m.partition for m in sent}) == 3, "keys did not spread over the 3 partitions"
    a = client.member(group, topic, max_poll_records=8)
    drive([a], lambda: len(a.consumed) >= 20, what="20 records")
    first = list(a.consumed)
    assert len(first) < n, "the first member consumed everything: nothing left to resume"
    a.commit()
    expected = next_offsets(first)
    got = a.committed([0, 1, 2])
    assert same_positions(got, expected), (got, expected)
    a.close()
    fetched = group_offsets(bootstrap, group, topic)
    assert same_positions(fetched, expected), (fetched, expected)

    b = client.member(group, topic, max_poll_records=8)
    drive([b], lambda: len(b.consumed) >= n - len(first), timeout=40, what=f"the remaining {n - len(first)} records")
    for _ in range(3):
        b.poll(0.3)  # nothing more may come
    second = list(b.consumed)
    again = set(first) & set(second)
    assert not again, f"re-delivered after the commit: {sorted(again, key=lambda r: (r.partition, r.offset))[:5]}"
    for p in range(3):
        offs = [r.offset for r in second if r.partition == p]
        if offs:
            assert min(offs) == expected.get(p, 0), f"partition {p}: resumed at {min(offs)}, committed {expected.get(p)}"
    assert sorted(first + second, key=lambda r: (r.partition, r.offset)) == sent, "records skipped or changed"


def scenario_auto_commit(client: Client, bootstrap: str, topic: str, group: str):
    create_topic(bootstrap, topic, 3)
    sent = produce(bootstrap, topic, 30, partitions=3, prefix="auto1")
    m = client.member(group, topic, auto_commit_ms=200, max_poll_records=5)
    drive([m], lambda: len(m.consumed) >= 30, what="30 records")
    expected = next_offsets(m.consumed)
    assert expected == {0: 10, 1: 10, 2: 10}
    # Committed by the auto commit while the member is still open (it keeps polling,
    # kafka-python and the classic Java consumer auto-commit inside poll).
    drive([m], lambda: {p: o for p, (o, _) in group_offsets(bootstrap, group, topic).items()} == expected,
          timeout=20, poll_s=0.2, what=f"auto-committed offsets {expected}")
    # Part of a second batch, then close: close commits exactly what was consumed.
    produce(bootstrap, topic, 30, partitions=3, prefix="auto2")
    drive([m], lambda: len(m.consumed) >= 40, what="10 more records")
    consumed = list(m.consumed)
    assert len(consumed) < 60
    m.close()
    expected = next_offsets(consumed)
    got = {p: o for p, (o, _) in group_offsets(bootstrap, group, topic).items()}
    assert got == expected, f"committed after close {got}, consumed up to {expected}"
    assert set(sent) <= set(consumed) and len(set(consumed)) == len(consumed)


def scenario_max_poll_records(client: Client, bootstrap: str, topic: str, group: str, n: int = 60, cap: int = 7):
    create_topic(bootstrap, topic, 3)
    sent = produce(bootstrap, topic, n, partitions=3, prefix="mpr")
    m = client.member(group, topic, max_poll_records=cap)
    drive([m], lambda: len(m.consumed) >= n, what=f"{n} records")
    for _ in range(2):
        m.poll(0.2)
    assert max(m.batches) <= cap, f"batches {m.batches} exceed max poll records {cap}"
    assert cap in m.batches, f"no batch of {cap} records: {m.batches}"
    assert sorted(m.consumed, key=lambda r: (r.partition, r.offset)) == sent


def scenario_manual_commit_variants(client: Client, bootstrap: str, topic: str, group: str):
    create_topic(bootstrap, topic, 3)
    produce(bootstrap, topic, 30, partitions=3, prefix="manual")
    m = client.member(group, topic, max_poll_records=5)
    drive([m], lambda: len(m.consumed) >= 12 and m.last_assignment == {0, 1, 2}, what="12 records")
    consumed = next_offsets(m.consumed)

    # Async commit of the consumed positions: the callback reports success.
    m.commit_async()
    results = m.async_results(20)
    assert len(results) == 1, results
    offsets, err = results[0]
    assert err is None, results
    offsets = {p: o for p, o in offsets.items() if o >= 0}
    assert same_positions(offsets, consumed), (offsets, consumed)
    got = m.committed([0, 1, 2])
    assert same_positions(got, consumed), (got, consumed)

    # Explicit offsets with metadata (also lower than the position): committed() and
    # OffsetFetch return them, metadata included; a new member starts there.
    explicit = {0: (3, "meta-0 ✓ ünïcode"), 1: (5, "m1 with spaces"), 2: (1, "x" * 200)}
    m.commit_offsets(explicit)
    assert m.committed([0, 1, 2]) == explicit
    stored = {p: (o, meta + client.stored_metadata_suffix) for p, (o, meta) in explicit.items()}
    assert group_offsets(bootstrap, group, topic) == stored
    m.close()
    assert group_offsets(bootstrap, group, topic) == stored
    b = client.member(group, topic)
    remaining = sum(10 - o for o, _ in explicit.values())
    drive([b], lambda: len(b.consumed) >= remaining, what=f"{remaining} records from the explicit offsets")
    for p, (o, _) in explicit.items():
        assert sorted(r.offset for r in b.consumed if r.partition == p) == list(range(o, 10)), p


def scenario_static_member_rejoins(client: Client, bootstrap: str, topic: str, group: str):
    """Static membership (group.instance.id, KIP-345; KIP-848 static members): a static
    member that closes does not leave the group; one with the same instance id that comes
    back within the session timeout gets the same partitions, and the other member keeps
    its own, with no rebalance (its generation / member epoch stays as it was)."""
    create_topic(bootstrap, topic, 3)
    a = client.member(group, topic, instance_id="static-a")
    b = client.member(group, topic, instance_id="static-b")
    instance = {id(a): "static-a", id(b): "static-b"}

    def split():
        x, y = a.last_assignment, b.last_assignment
        return x and y and len(x) + len(y) == 3 and x | y == {0, 1, 2}
    drive([a, b], split, timeout=45, what="the two static members to share the 3 partitions")
    if a.is_leader():
        # kafka-python joins at most at JoinGroup v7 (no KIP-814 skip_assignment): a
        # returning leader runs the assignor before it has metadata and then rejoins, on
        # Kafka too. Restart the follower instead.
        a, b = b, a
    _assert_describe_matches(client, group, [a, b])
    a_parts, b_parts, b_gen, a_id = set(a.last_assignment), set(b.last_assignment), b.generation(), a.member_id()
    a.close()
    d = client.describe(group)  # (Java: through b's JVM)
    assert len(d.members) == 2 and a_id in {m.member_id for m in d.members}, \
        f"the static member left the group on close: {d}"

    a2 = client.member(group, topic, instance_id=instance[id(a)])
    drive([a2, b], lambda: a2.last_assignment == a_parts, timeout=30,
          what=f"the returning static member to get {sorted(a_parts)} back")
    for _ in range(3):
        drive([a2, b], lambda: True)
    assert b.last_assignment == b_parts, (b_parts, b.last_assignment)
    assert a2.last_assignment == a_parts
    assert b.generation() == b_gen, f"the other member's generation moved: {b_gen} -> {b.generation()}"
    d = _assert_describe_matches(client, group, [a2, b])
    assert a_id not in {m.member_id for m in d.members}, d
