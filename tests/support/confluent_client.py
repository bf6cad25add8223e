"""Confluent's own Python client (confluent-kafka's SchemaRegistryClient, ProtobufSerializer
and ProtobufDeserializer) against protoreg's Confluent API. No Kafka broker is needed to
serialize. Every check raises on failure; the last line printed is `ok`.

Usage: confluent_client.py REGISTRY_URL TOKEN DESCRIPTOR_SET
  DESCRIPTOR_SET: `protoreg build` of shop/v1/order.proto (imports acme/common/v1/money.proto
  and google/protobuf/timestamp.proto); message classes are made from it at run time.
"""

import base64
import json
import sys
import urllib.error
import urllib.request

from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

URL, TOKEN, DESCRIPTORS = sys.argv[1], sys.argv[2], sys.argv[3]


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}")


def expect_error(fn, code, what):
    try:
        fn()
    except SchemaRegistryError as e:
        check(e.error_code == code, f"{what}: error_code {e.error_code} == {code} ({e.error_message})")
        return e
    raise AssertionError(f"{what}: no error")


def rest(method, path, body=None):
    """A raw call with Basic auth, for what the client library does not expose."""
    req = urllib.request.Request(URL + path, method=method)
    req.add_header("Authorization", "Basic " + base64.b64encode(f"ci:{TOKEN}".encode()).decode())
    req.add_header("Content-Type", "application/vnd.schemaregistry.v1+json")
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(req, data) as r:
            return r.status, r.headers.get("Content-Type"), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), json.loads(e.read())


# Message classes from the descriptor set alone (as generated code would carry them).
fds = descriptor_pb2.FileDescriptorSet()
with open(DESCRIPTORS, "rb") as f:
    fds.ParseFromString(f.read())
pool = descriptor_pool.DescriptorPool()
for fd in fds.file:
    pool.Add(fd)
Order = message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.v1.Order"))
Money = message_factory.GetMessageClass(pool.FindMessageTypeByName("acme.common.v1.Money"))

client = SchemaRegistryClient({"url": URL, "basic.auth.user.info": f"ci:{TOKEN}"})
check(client.get_subjects() == ["inventory"], "only the /v1 push at first")

# Serialize: the serializer registers money.proto as its own subject (named by its import
# path) and the order schema with a reference to it; timestamp.proto is a known type.
order = Order(id="o-1", total=Money(currency="EUR", units=12, nanos=500000000))
order.created_at.seconds = 1_700_000_000
ctx = SerializationContext("orders", MessageField.VALUE)
serializer = ProtobufSerializer(Order, client, {"auto.register.schemas": True})
data = serializer(order, ctx)
check(data[0] == 0, "Confluent framing: magic byte 0")
schema_id = int.from_bytes(data[1:5], "big")

subjects = client.get_subjects()
check(
    sorted(subjects) == ["acme/common/v1/money.proto", "inventory", "orders-value"],
    f"auto-registered subjects {subjects}",
)
latest = client.get_latest_version("orders-value")
check(latest.schema_id == schema_id, "the framed id is the registered schema's id")
check(latest.version == 1, "version 1")
refs = [(r.name, r.subject, r.version) for r in latest.schema.references]
check(
    refs == [("acme/common/v1/money.proto", "acme/common/v1/money.proto", 1)],
    f"references {refs}",
)
check("message Order" in latest.schema.schema_str, "stored as .proto text")

# Deserialize, fetching the writer's schema (and its reference) by id.
deserializer = ProtobufDeserializer(Order, {}, client)
back = deserializer(data, ctx)
check(back == order, "deserialized equal")
plain = ProtobufDeserializer(Order, {})(data, ctx)
check(plain == order, "deserialized equal without the registry")

# Lookup, and the same content under another subject keeps its id.
found = client.lookup_schema("orders-value", latest.schema)
check((found.schema_id, found.version) == (schema_id, 1), "lookup_schema finds it")
copy_id = client.register_schema("orders-copy", latest.schema)
check(copy_id == schema_id, "the same schema under two subjects has one id")
check(
    sorted(client.get_subjects_by_schema_id(schema_id)) == ["orders-copy", "orders-value"],
    "subjects of the id",
)
check(client.get_schema_types() == ["PROTOBUF"], "schema types")
by_id = client.get_schema(schema_id)
check("message Order" in by_id.schema_str, "get_schema by id")

# Compatibility: changing a field's type is refused under BACKWARD; the verbose answer
# names buf's rule.
broken_text = latest.schema.schema_str.replace("string id = 1;", "int64 id = 1;")
check(broken_text != latest.schema.schema_str, "the edit applies")
broken = Schema(broken_text, "PROTOBUF", latest.schema.references)
check(client.test_compatibility("orders-value", broken) is False, "test_compatibility is false")
status, ctype, body = rest(
    "POST",
    "/compatibility/subjects/orders-value/versions/latest?verbose=true",
    broken.to_dict(),
)
check(status == 200 and body["is_compatible"] is False, f"verbose answer {body}")
check(any("FIELD_SAME_TYPE" in m for m in body["messages"]), f"names the buf rule: {body}")
check(ctype.startswith("application/vnd.schemaregistry.v1+json"), f"media type {ctype}")
err = expect_error(lambda: client.register_schema("orders-value", broken), 409, "incompatible push")
check("FIELD_SAME_TYPE" in err.error_message, "the refusal lists findings")

client.set_compatibility("orders-value", "NONE")
check(client.get_compatibility("orders-value") == "NONE", "set_compatibility")
check(client.test_compatibility("orders-value", broken) is True, "NONE accepts it")
client.set_compatibility("orders-value", "BACKWARD")

# Bad inputs map to the client's errors.
expect_error(lambda: client.get_latest_version("nope"), 40401, "unknown subject")
expect_error(lambda: client.get_version("orders-value", 9), 40402, "unknown version")
expect_error(lambda: client.get_schema(99999), 40403, "unknown id")
expect_error(
    lambda: client.register_schema("bad", Schema('syntax = "proto3"; message {', "PROTOBUF")),
    42201,
    "malformed schema",
)
missing_ref = Schema(
    'syntax = "proto3"; import "x/y.proto"; message A { x.Y y = 1; }',
    "PROTOBUF",
    [SchemaReference("x/y.proto", "x/y.proto", 3)],
)
expect_error(lambda: client.register_schema("bad", missing_ref), 42201, "reference to a missing version")
uncovered = Schema(
    'syntax = "proto3"; import "acme/common/v1/money.proto"; message A { acme.common.v1.Money m = 1; }',
    "PROTOBUF",
)
expect_error(lambda: client.register_schema("bad", uncovered), 42201, "an import no reference covers")
check("bad" not in client.get_subjects(), "refused schemas leave nothing")

# Deletes: a referenced schema cannot go; others soft, then permanently.
expect_error(
    lambda: client.delete_subject("acme/common/v1/money.proto"), 42206, "referenced subject"
)
check(client.delete_subject("orders-copy") == [1], "soft delete")
check("orders-copy" not in client.get_subjects(), "soft-deleted subject is hidden")
check(client.delete_subject("orders-copy", permanent=True) == [1], "permanent delete")
check(
    client.get_subjects_by_schema_id(schema_id) == ["orders-value"],
    "the id stays with its other subject",
)

# Modes: READONLY refuses writes; IMPORT keeps another registry's id and version.
client.update_mode("orders-value", "READONLY")
expect_error(lambda: client.register_schema("orders-value", broken), 42205, "read-only mode")
client.update_mode("orders-value", "READWRITE")
client.update_mode("imported", "IMPORT")
status, _, body = rest(
    "POST",
    "/subjects/imported/versions",
    {"schema": 'syntax = "proto3";\npackage legacy;\nmessage Old { string a = 1; }\n',
     "schemaType": "PROTOBUF", "id": 5000, "version": 7},
)
check(status == 200 and body["id"] == 5000 and body["version"] == 7, f"import keeps ids: {body}")
check(client.get_version("imported", 7).schema_id == 5000, "imported version readable")
client.update_mode("imported", "READWRITE")

# Versions another front door wrote read the same (pushed through /v1 by the test).
inventory = client.get_latest_version("inventory")
check("message Stock" in inventory.schema.schema_str, "a /v1 push reads through the Confluent API")
print("ok")
