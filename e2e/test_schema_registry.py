"""The Schema Registry built into every node (Confluent's REST API on
`schema.registry.listener`), with Confluent's own clients: the legacy
`confluent_kafka.avro` AvroProducer/AvroConsumer (as Confluent's README shows them, with
`schema.registry.url`), `confluent_kafka.schema_registry`'s client, its Avro and JSON
Schema serializers, and plain REST calls with their compatibility verdicts and error
codes (Avro and JSON Schema, references between subjects); on a three-node
cluster where changes made through any node go to one writer (the leader of `_schemas`),
and a writer killed with -9 loses nothing: the others go on answering and registering
with the ids unchanged, and the restarted node rebuilds its registry from the topic.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import pytest

from e2e_util import wait_until

avro = pytest.importorskip("confluent_kafka.avro", reason="confluent-kafka[avro] is not installed (e2e/setup.sh)")

CT = "application/vnd.schemaregistry.v1+json"


def sr(url: str, method: str, path: str, body=None, raw: bytes | None = None) -> tuple[int, object]:
    """One REST call: (HTTP status, decoded JSON body, or text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": CT, "Accept": CT})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def record(name: str, fields: list[tuple[str, object] | tuple[str, object, object]]) -> str:
    fs = []
    for f in fields:
        d = {"name": f[0], "type": f[1]}
        if len(f) > 2:
            d["default"] = f[2]
        fs.append(d)
    return json.dumps({"type": "record", "name": name, "namespace": "e2e", "fields": fs})


def consume(cluster, topic: str, n: int, decode) -> list:
    """Reads n records of topic from the start in a group of its own; each value in
    Confluent's wire format (magic byte 0, then the schema id), decoded."""
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(1)
        if m is not None and not m.error():
            assert m.value()[0] == 0
            got.append(decode(m.value()))
    c.close()
    return got


@pytest.fixture(scope="module")
def cluster(strom_cluster):
    return strom_cluster


def urls(cluster) -> list[str]:
    return [n.registry_url for n in cluster.nodes]


def test_seed_002_avro_producer_and_consumer(cluster):
    """Confluent's AvroProducer example, pointed at a node's registry."""
    from confluent_kafka import avro as cavro
    from confluent_kafka.avro import AvroConsumer, AvroProducer

    topic = f"avro-{uuid.uuid4().hex[:8]}"
    value_schema_str = """
    {
       "namespace": "my.test",
       "name": "value",
       "type": "record",
       "fields" : [
         {
           "name" : "name",
           "type" : "string"
         }
       ]
    }
    """
    key_schema_str = """
    {
       "namespace": "my.test",
       "name": "key",
       "type": "record",
       "fields" : [
         {
           "name" : "name",
           "type" : "string"
         }
       ]
    }
    """
    value_schema = cavro.loads(value_schema_str)
    key_schema = cavro.loads(key_schema_str)
    delivered = []

    def delivery_report(err, msg):
        assert err is None, err
        delivered.append(msg.offset())

    avroProducer = AvroProducer({
        'bootstrap.servers': cluster.bootstrap,
        'on_delivery': delivery_report,
        'schema.registry.url': urls(cluster)[0],
    }, default_key_schema=key_schema, default_value_schema=value_schema)
    for i in range(10):
        avroProducer.produce(topic=topic, value={"name": f"Value {i}"}, key={"name": f"Key {i}"})
    avroProducer.flush()
    assert len(delivered) == 10

    # Read back through another node's registry.
    c = AvroConsumer({'bootstrap.servers': cluster.bootstrap, 'group.id': f"g-{topic}",
                      'auto.offset.reset': 'earliest', 'schema.registry.url': urls(cluster)[1]})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < 10 and time.monotonic() < deadline:
        m = c.poll(1)
        if m is not None and not m.error():
            got.append((m.key()["name"], m.value()["name"]))
    c.close()
    assert sorted(got) == sorted((f"Key {i}", f"Value {i}") for i in range(10))
    status, subjects = sr(urls(cluster)[2], "GET", "/subjects")
    assert status == 200 and {f"{topic}-key", f"{topic}-value"} <= set(subjects)
    # Each record carries magic 0 and the value schema's id.
    _, latest = sr(urls(cluster)[2], "GET", f"/subjects/{topic}-value/versions/latest")
    assert latest["version"] == 1 and "schemaType" not in latest
    _, by_id = sr(urls(cluster)[0], "GET", f"/schemas/ids/{latest['id']}")
    assert json.loads(by_id["schema"])["name"] == "value"


def test_schema_registry_client_and_avro_serializers(cluster):
    from confluent_kafka import Producer
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    topic = f"sr-{uuid.uuid4().hex[:8]}"
    schema = record("User", [("name", "string"), ("age", "int")])
    client = SchemaRegistryClient({"url": urls(cluster)[1]})
    ser = AvroSerializer(client, schema)
    p = Producer({"bootstrap.servers": cluster.bootstrap})
    for i in range(20):
        p.produce(topic, value=ser({"name": f"u{i}", "age": i}, SerializationContext(topic, MessageField.VALUE)))
    assert p.flush(30) == 0
    reader = SchemaRegistryClient({"url": urls(cluster)[2]})
    des = AvroDeserializer(reader)
    got = consume(cluster, topic, 20, lambda v: des(v, SerializationContext(topic, MessageField.VALUE)))
    assert sorted(g["age"] for g in got) == list(range(20))

    # The client's own calls: register (idempotent), lookup, versions, compatibility.
    s1 = Schema(schema, "AVRO")
    sid = client.register_schema(f"{topic}-value", s1)
    assert client.register_schema(f"{topic}-value", s1) == sid
    assert reader.lookup_schema(f"{topic}-value", s1).version == 1
    assert reader.get_versions(f"{topic}-value") == [1]
    added = Schema(record("User", [("name", "string"), ("age", "int"), ("email", "string", "")]), "AVRO")
    assert client.test_compatibility(f"{topic}-value", added) is True
    broken = Schema(record("User", [("name", "string"), ("age", "string")]), "AVRO")
    assert client.test_compatibility(f"{topic}-value", broken) is False
    assert client.get_compatibility() == "BACKWARD"
    new_id = client.register_schema(f"{topic}-value", added)
    assert new_id != sid
    latest = reader.get_latest_version(f"{topic}-value")
    assert (latest.version, latest.schema_id) == (2, new_id)


def test_rest_compatibility_verdicts_and_error_codes(cluster):
    u = urls(cluster)[0]
    s = f"rest-{uuid.uuid4().hex[:8]}"
    v1 = record("R", [("a", "int")])
    code, body = sr(u, "POST", f"/subjects/{s}/versions", {"schema": v1})
    assert code == 200, body
    id1 = body["id"]
    # Same schema, other spelling: the same id, no new version.
    assert sr(u, "POST", f"/subjects/{s}/versions", {"schema": json.dumps(json.loads(v1), indent=4)})[1] == {"id": id1}
    cases = [
        # (level, new schema, compatible?)
        ("BACKWARD", record("R", [("a", "int"), ("b", "string", "x")]), True),
        ("BACKWARD", record("R", [("a", "int"), ("b", "string")]), False),
        ("BACKWARD", record("R", [("a", "long")]), True),  # int promotes to long
        ("BACKWARD", record("R", [("a", "string")]), False),
        ("FORWARD", record("R", [("a", "int"), ("b", "string")]), True),
        ("FORWARD", record("R", []), False),
        ("FORWARD", record("R", [("a", "long")]), False),  # old readers cannot read long as int
        ("FULL", record("R", [("a", "int"), ("b", "string", "x")]), True),
        ("FULL", record("R", [("a", "int"), ("b", "string")]), False),
        ("NONE", record("R", [("a", "string")]), True),
    ]
    for level, new, ok in cases:
        assert sr(u, "PUT", f"/config/{s}", {"compatibility": level}) == (200, {"compatibility": level})
        code, body = sr(u, "POST", f"/compatibility/subjects/{s}/versions/latest?verbose=true", {"schema": new})
        assert code == 200 and body["is_compatible"] is ok, (level, new, body)
        if not ok:
            assert body["messages"], body
    # Registration follows the verdict: 409 with Confluent's message, nothing stored.
    sr(u, "PUT", f"/config/{s}", {"compatibility": "BACKWARD"})
    code, body = sr(u, "POST", f"/subjects/{s}/versions", {"schema": record("R", [("a", "string")])})
    assert code == 409 and body["error_code"] == 409, body
    assert body["message"].startswith(f'Schema being registered is incompatible with an earlier schema for subject "{s}"')
    assert sr(u, "GET", f"/subjects/{s}/versions")[1] == [1]
    # Errors with Confluent's codes, nothing stored.
    assert sr(u, "POST", f"/subjects/{s}/versions", {"schema": "{nope"})[1]["error_code"] == 42201
    assert sr(u, "POST", f"/subjects/{s}/versions", {"schema": '"int"', "schemaType": "XML"})[1]["error_code"] == 42201
    assert sr(u, "POST", f"/subjects/{s}/versions", {"schema": '{"type":"record","name":"X","fields":[{"name":"r","type":"Missing"}]}'})[1]["error_code"] == 42201
    code, body = sr(u, "POST", f"/subjects/{s}/versions", raw=json.dumps({"schema": "x" * (3 << 20)}).encode())
    assert (code, body["error_code"]) == (422, 42209)
    assert sr(u, "GET", f"/subjects/{s}/versions/9")[1]["error_code"] == 40402
    assert sr(u, "GET", "/subjects/no-such-subject/versions")[1]["error_code"] == 40401
    assert sr(u, "GET", f"/subjects/{s}/versions/zero")[1]["error_code"] == 42202
    assert sr(u, "GET", "/schemas/ids/999999")[1]["error_code"] == 40403
    assert sr(u, "PUT", "/config", {"compatibility": "SOMETIMES"})[1]["error_code"] == 42203
    assert sr(u, "GET", f"/subjects/{s}/versions")[1] == [1]
    # Deletes: soft first, then permanent.
    assert sr(u, "DELETE", f"/subjects/{s}?permanent=true")[1]["error_code"] == 40405
    assert sr(u, "DELETE", f"/subjects/{s}") == (200, [1])
    assert s not in sr(u, "GET", "/subjects")[1]
    assert s in sr(u, "GET", "/subjects?deleted=true")[1]
    assert sr(u, "GET", f"/schemas/ids/{id1}")[0] == 200  # ids outlive a soft delete
    assert sr(u, "DELETE", f"/subjects/{s}?permanent=true") == (200, [1])
    assert s not in sr(u, "GET", "/subjects?deleted=true")[1]
    # Every node agrees (each follows the topic).
    for other in urls(cluster):
        wait_until(lambda: s not in sr(other, "GET", "/subjects?deleted=true")[1], 10, what="deletion seen")


def test_changes_through_every_node_go_to_one_writer(cluster):
    ids = {}
    for i, u in enumerate(urls(cluster)):
        s = f"each-{uuid.uuid4().hex[:6]}-{i}"
        code, body = sr(u, "POST", f"/subjects/{s}/versions", {"schema": record(f"E{i}", [("n", "int")])})
        assert code == 200, body
        ids[s] = body["id"]
        # Read your own write, from the node that took it.
        assert sr(u, "GET", f"/subjects/{s}/versions/1")[1]["id"] == body["id"]
    assert len(set(ids.values())) == len(ids), f"ids must be unique across nodes: {ids}"
    for u in urls(cluster):
        for s, i in ids.items():
            wait_until(lambda: sr(u, "GET", f"/subjects/{s}/versions/latest")[0] == 200, 10, what=f"{s} on {u}")
            assert sr(u, "GET", f"/subjects/{s}/versions/latest")[1]["id"] == i


def test_the_writer_killed_the_others_answer_and_register_with_ids_unchanged(cluster_factory):
    from confluent_kafka.admin import AdminClient

    c = cluster_factory(3)
    us = {n.node_id: n.registry_url for n in c.nodes}
    made = {}
    for i in range(5):
        s = f"k-{i}"
        code, body = sr(us[1], "POST", f"/subjects/{s}/versions", {"schema": record(f"K{i}", [("n", "int")])})
        assert code == 200, body
        made[s] = body["id"]
    # Node 1 reads its own writes; the others follow `_schemas` and catch up.
    for u in us.values():
        for s in made:
            wait_until(lambda: sr(u, "GET", f"/subjects/{s}/versions/1")[0] == 200, 30, what=f"{s} on {u}")
    md = AdminClient({"bootstrap.servers": c.bootstrap}).list_topics("_schemas", timeout=10)
    writer = md.topics["_schemas"].partitions[0].leader
    assert len(md.topics["_schemas"].partitions[0].replicas) == 3
    c.kill9(writer)
    others = [n for n in us if n != writer]
    for n in others:
        for s, i in made.items():
            assert sr(us[n], "GET", f"/subjects/{s}/versions/1")[1]["id"] == i
    # Registration goes on through the others once a new leader takes `_schemas`.
    t0 = time.monotonic()

    def registered():
        code, body = sr(us[others[0]], "POST", "/subjects/after-kill/versions", {"schema": record("After", [("n", "int")])})
        return code == 200 and body
    body = wait_until(registered, 60, interval=0.5, what="a registration after the writer's kill")
    new_id = body["id"]
    assert new_id > max(made.values()), (new_id, made)
    print(f"[schema registry] registering again {time.monotonic() - t0:.1f} s after the writer's kill")
    for n in others:
        assert sr(us[n], "POST", "/subjects/after-kill/versions", {"schema": record("After", [("n", "int")])})[1] == {"id": new_id}
    # The killed node comes back and rebuilds its registry from the topic.
    c.restart(writer)
    wait_until(lambda: sr(us[writer], "GET", "/subjects/after-kill/versions/1")[0] == 200, 30,
               what="the restarted node's registry caught up")
    for s, i in {**made, "after-kill": new_id}.items():
        assert sr(us[writer], "GET", f"/subjects/{s}/versions/1")[1]["id"] == i


def obj(props: dict, required=(), additional=None) -> str:
    s = {"type": "object", "properties": props}
    if required:
        s["required"] = list(required)
    if additional is not None:
        s["additionalProperties"] = additional
    return json.dumps(s)


def test_json_schema_serializer_round_trip_and_verdicts(cluster):
    """confluent_kafka.schema_registry.json's JSONSerializer/JSONDeserializer (which
    validate each record against the schema the registry serves), then JSON Schema
    compatibility verdicts over REST, references between subjects, and bad schemas."""
    pytest.importorskip("jsonschema", reason="confluent-kafka[json] is not installed (e2e/setup.sh)")
    from confluent_kafka import Producer
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    topic = f"js-{uuid.uuid4().hex[:8]}"
    schema = json.dumps({
        "$schema": "http://json-schema.org/draft-07/schema#", "title": "User", "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name"], "additionalProperties": False,
    })
    client = SchemaRegistryClient({"url": urls(cluster)[0]})
    ser = JSONSerializer(schema, client)
    p = Producer({"bootstrap.servers": cluster.bootstrap})
    for i in range(20):
        p.produce(topic, value=ser({"name": f"u{i}", "age": i}, SerializationContext(topic, MessageField.VALUE)))
    assert p.flush(30) == 0
    # The serializer checks records against the schema before anything is sent.
    with pytest.raises(Exception):
        ser({"age": -1}, SerializationContext(topic, MessageField.VALUE))
    des = JSONDeserializer(None, schema_registry_client=SchemaRegistryClient({"url": urls(cluster)[1]}))
    got = consume(cluster, topic, 20, lambda v: des(v, SerializationContext(topic, MessageField.VALUE)))
    assert sorted(g["age"] for g in got) == list(range(20))
    latest = client.get_latest_version(f"{topic}-value")
    assert latest.schema.schema_type == "JSON" and latest.version == 1
    assert client.register_schema(f"{topic}-value", Schema(schema, "JSON")) == latest.schema_id
    _, types = sr(urls(cluster)[2], "GET", "/schemas/types")
    assert "JSON" in types

    # Verdicts: the closed model above can gain an optional property (no old record has
    # it) but not a required one without a default; an open model cannot gain a typed
    # property (old records may carry anything under that name).
    u = urls(cluster)[2]
    s = f"{topic}-value"
    closed_added = json.loads(schema)
    closed_added["properties"]["email"] = {"type": "string"}
    closed_required = json.loads(json.dumps(closed_added))
    closed_required["required"] = ["name", "email"]
    narrowed = json.loads(schema)
    narrowed["properties"]["age"] = {"type": "integer", "minimum": 10}
    widened = json.loads(schema)
    widened["properties"]["age"] = {"type": "number"}
    cases = [
        ("BACKWARD", closed_added, True),
        ("BACKWARD", closed_required, False),
        ("BACKWARD", narrowed, False),
        ("BACKWARD", widened, True),
        ("FORWARD", widened, False),
        ("FORWARD", narrowed, True),
        ("FULL", closed_added, False),  # old readers refuse the new property (closed model)
        ("NONE", {"type": "string"}, True),
    ]
    for level, new, ok in cases:
        assert sr(u, "PUT", f"/config/{s}", {"compatibility": level})[0] == 200
        code, body = sr(u, "POST", f"/compatibility/subjects/{s}/versions/latest?verbose=true",
                        {"schema": json.dumps(new), "schemaType": "JSON"})
        assert code == 200 and body["is_compatible"] is ok, (level, new, body)
    sr(u, "PUT", f"/config/{s}", {"compatibility": "BACKWARD"})
    code, body = sr(u, "POST", f"/subjects/{s}/versions", {"schema": json.dumps(closed_required), "schemaType": "JSON"})
    assert code == 409, body
    open_s = f"open-{topic}"
    assert sr(u, "POST", f"/subjects/{open_s}/versions", {"schema": obj({"a": {"type": "string"}}), "schemaType": "JSON"})[0] == 200
    code, body = sr(u, "POST", f"/compatibility/subjects/{open_s}/versions/latest?verbose=true",
                    {"schema": obj({"a": {"type": "string"}, "b": {"type": "integer"}}), "schemaType": "JSON"})
    assert body["is_compatible"] is False and any("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL" in m for m in body["messages"]), body

    # References: a schema that uses another subject's schema by name.
    addr = f"addr-{topic}"
    addr_schema = obj({"city": {"type": "string"}}, required=["city"])
    assert sr(u, "POST", f"/subjects/{addr}/versions", {"schema": addr_schema, "schemaType": "JSON"})[0] == 200
    person = json.dumps({"type": "object", "properties": {"home": {"$ref": "address.json"}}})
    refs = [{"name": "address.json", "subject": addr, "version": 1}]
    code, body = sr(u, "POST", f"/subjects/person-{topic}/versions", {"schema": person, "schemaType": "JSON", "references": refs})
    assert code == 200, body
    _, got = sr(urls(cluster)[0], "GET", f"/schemas/ids/{body['id']}")
    assert got["schemaType"] == "JSON" and got["references"] == refs
    # A reference that names nothing, a `$ref` that resolves nowhere, a schema of the
    # wrong shape: 422 with 42201, nothing stored.
    for bad, r in [
        (person, [{"name": "address.json", "subject": "no-such-subject", "version": 1}]),
        (json.dumps({"properties": {"a": {"$ref": "#/definitions/missing"}}}), []),
        (json.dumps({"type": "strnig"}), []),
        (json.dumps({"properties": {"a": 5}}), []),
        ("[1, 2]", []),
        ("{nope", []),
    ]:
        code, body = sr(u, "POST", f"/subjects/bad-{topic}/versions", {"schema": bad, "schemaType": "JSON", "references": r})
        assert (code, body["error_code"]) == (422, 42201), (bad, code, body)
    assert sr(u, "GET", f"/subjects/bad-{topic}/versions")[1]["error_code"] == 40401


def test_protobuf_serializer_round_trip_references_and_verdicts(cluster):
    """confluent_kafka.schema_registry.protobuf's ProtobufSerializer/Deserializer with a
    message whose file imports another file (registered by the serializer as a subject
    of its own, then referenced) and Google's Timestamp; the registry stores `.proto`
    text and serves the base64 descriptor with `format=serialized`. Then Protobuf
    compatibility verdicts over REST, and bad schemas."""
    pytest.importorskip("google.protobuf", reason="confluent-kafka[protobuf] is not installed (e2e/setup.sh)")
    from confluent_kafka import Producer
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

    uid = uuid.uuid4().hex[:8]
    F = descriptor_pb2.FieldDescriptorProto
    pool = descriptor_pool.DescriptorPool()
    ts = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(ts)
    pool.Add(ts)
    addr = descriptor_pb2.FileDescriptorProto(name=f"e2e/address_{uid}.proto", package=f"e2e{uid}", syntax="proto3")
    a = addr.message_type.add(name="Address")
    a.field.add(name="city", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    pool.Add(addr)
    user = descriptor_pb2.FileDescriptorProto(name=f"e2e/user_{uid}.proto", package=f"e2e{uid}", syntax="proto3",
                                              dependency=[addr.name, "google/protobuf/timestamp.proto"])
    u = user.message_type.add(name="User")
    u.field.add(name="name", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    u.field.add(name="age", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    u.field.add(name="home", number=3, type=F.TYPE_MESSAGE, type_name=f".e2e{uid}.Address", label=F.LABEL_OPTIONAL)
    u.field.add(name="created", number=4, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp", label=F.LABEL_OPTIONAL)
    u.field.add(name="tags", number=5, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    pool.Add(user)
    User = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"e2e{uid}.User"))

    topic = f"pb-{uid}"
    client = SchemaRegistryClient({"url": urls(cluster)[0]})
    ser = ProtobufSerializer(User, client, {"use.deprecated.format": False})
    p = Producer({"bootstrap.servers": cluster.bootstrap})
    for i in range(20):
        m = User(name=f"u{i}", age=i, tags=["a", f"t{i}"])
        m.home.city = f"c{i}"
        m.created.seconds = 1_700_000_000 + i
        p.produce(topic, value=ser(m, SerializationContext(topic, MessageField.VALUE)))
    assert p.flush(30) == 0
    des = ProtobufDeserializer(User, {"use.deprecated.format": False},
                               schema_registry_client=SchemaRegistryClient({"url": urls(cluster)[1]}))
    got = consume(cluster, topic, 20, lambda v: des(v, SerializationContext(topic, MessageField.VALUE)))
    assert sorted((g.age, g.home.city, g.created.seconds, list(g.tags)) for g in got) == \
        [(i, f"c{i}", 1_700_000_000 + i, ["a", f"t{i}"]) for i in range(20)]
    # What the registry holds: the dependency under its own subject, the value schema
    # referencing it, stored as .proto text; the descriptor again with format=serialized.
    u2 = urls(cluster)[2]
    code, latest = sr(u2, "GET", f"/subjects/{topic}-value/versions/latest")
    assert code == 200 and latest["schemaType"] == "PROTOBUF", latest
    assert latest["references"] == [{"name": addr.name, "subject": addr.name, "version": 1}], latest
    assert "message User {" in latest["schema"] and "import \"google/protobuf/timestamp.proto\";" in latest["schema"]
    _, raw = sr(u2, "GET", f"/schemas/ids/{latest['id']}?format=serialized")
    import base64
    fd = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(raw["schema"]))
    assert [f.name for f in fd.message_type[0].field] == ["name", "age", "home", "created", "tags"]
    assert list(fd.dependency) == [addr.name, "google/protobuf/timestamp.proto"]
    # The same schema as text gets the same id.
    code, again = sr(u2, "POST", f"/subjects/{topic}-value/versions",
                     {"schema": latest["schema"], "schemaType": "PROTOBUF", "references": latest["references"]})
    assert (code, again.get("id")) == (200, latest["id"]), again

    # Verdicts, as Confluent's Protobuf rules give them.
    s = f"pbrest-{uid}"
    v1 = 'syntax = "proto3";\npackage shop;\nmessage Order {\n  string id = 1;\n  int32 qty = 2;\n  oneof pay { string card = 3; string iban = 4; }\n}\n'
    assert sr(u2, "POST", f"/subjects/{s}/versions", {"schema": v1, "schemaType": "PROTOBUF"})[0] == 200
    cases = [
        ("BACKWARD", v1.replace("int32 qty = 2;", "int32 qty = 2;\n  string note = 5;"), True),   # field added
        ("BACKWARD", v1.replace("int32 qty = 2;", "int64 qty = 2;"), True),                      # int32 -> int64
        ("BACKWARD", v1.replace("int32 qty = 2;", "string qty = 2;"), False),                    # scalar kind changed
        ("BACKWARD", v1.replace("string id = 1;\n  int32 qty = 2;", "int32 qty = 2;"), True),    # field removed
        ("BACKWARD", v1.replace(" string iban = 4; ", " "), False),                              # oneof field removed
        ("BACKWARD", v1.replace("message Order", "message Purchase"), False),                    # message removed
        ("BACKWARD", v1.replace("package shop;", "package store;"), False),                      # package changed
        ("FORWARD", v1.replace("int32 qty = 2;", "int64 qty = 2;"), True),
        ("FULL", v1.replace("int32 qty = 2;", "int32 qty = 2;\n  string note = 5;"), True),
    ]
    for level, new, ok in cases:
        assert sr(u2, "PUT", f"/config/{s}", {"compatibility": level})[0] == 200
        code, body = sr(u2, "POST", f"/compatibility/subjects/{s}/versions/latest?verbose=true",
                        {"schema": new, "schemaType": "PROTOBUF"})
        assert code == 200 and body["is_compatible"] is ok, (level, new, body)
    for bad in ["message {", 'syntax = "proto3";\nmessage A { Missing m = 1; }', 'syntax = "proto3";\nimport "nowhere.proto";\nmessage A {}']:
        code, body = sr(u2, "POST", f"/subjects/bad-{s}/versions", {"schema": bad, "schemaType": "PROTOBUF"})
        assert (code, body["error_code"]) == (422, 42201), (bad, code, body)
    assert sr(u2, "GET", f"/subjects/bad-{s}/versions")[1]["error_code"] == 40401
