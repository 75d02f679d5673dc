"""The compiled OTLP/protobuf trace decoder gives, byte for byte, what the protobuf-library decoder it
replaced gave (kept below as the reference), on SDK payloads, hand-built edge cases and damaged bodies."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from google.protobuf.message import DecodeError

from rca.errors import InvalidInput
from rca.ingest.batch import SCHEMAS, Batch, resource_identity, to_json
from rca.ingest.otlp_proto import any_value, attributes, decode_proto, decode_traces


# ---------------------------------------------------------------- the reference: the previous decoder
def _lite_request():
    """ExportTraceServiceRequest's wire layout, with resource, scope, attributes, events, status as bytes."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    one, many = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    messages = {
        "Request": [("resource_spans", 1, F.TYPE_MESSAGE, many, ".ref.ResourceSpans")],
        "ResourceSpans": [("resource", 1, F.TYPE_BYTES, one, ""),
                          ("scope_spans", 2, F.TYPE_MESSAGE, many, ".ref.ScopeSpans")],
        "ScopeSpans": [("scope", 1, F.TYPE_BYTES, one, ""), ("spans", 2, F.TYPE_MESSAGE, many, ".ref.Span")],
        "Span": [("trace_id", 1, F.TYPE_BYTES, one, ""), ("span_id", 2, F.TYPE_BYTES, one, ""),
                 ("parent_span_id", 4, F.TYPE_BYTES, one, ""), ("name", 5, F.TYPE_STRING, one, ""),
                 ("kind", 6, F.TYPE_INT32, one, ""), ("start_time_unix_nano", 7, F.TYPE_FIXED64, one, ""),
                 ("end_time_unix_nano", 8, F.TYPE_FIXED64, one, ""), ("attributes", 9, F.TYPE_BYTES, many, ""),
                 ("events", 11, F.TYPE_BYTES, many, ""), ("status", 15, F.TYPE_BYTES, one, "")],
    }
    fp = descriptor_pb2.FileDescriptorProto(name="ref_trace.proto", package="ref", syntax="proto3")
    for msg_name, fields in messages.items():
        m = fp.message_type.add(name=msg_name)
        for name, number, typ, label, type_name in fields:
            f = m.field.add(name=name, number=number, type=typ, label=label)
            if type_name:
                f.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("ref.Request"))


LiteRequest = _lite_request()


def _ref_attributes(raw_kvs) -> str:
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    kvs = [KeyValue.FromString(raw) for raw in raw_kvs]
    return "{" + ",".join(to_json({kv.key: any_value(kv.value)})[1:-1] for kv in kvs) + "}"


def _ref_events(raw_events) -> str:
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    if not raw_events:
        return "[]"
    out = []
    for raw in raw_events:
        e = Span.Event.FromString(raw)
        out.append({"time_ns": e.time_unix_nano, "name": e.name,
                    "attributes": attributes(e.attributes)})
    return to_json(out)


def _ref_resource(raw: bytes):
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    attrs = attributes(Resource.FromString(raw).attributes) if raw else {}
    return (to_json(attrs), *resource_identity(attrs))


def _ref_scope(raw: bytes) -> str:
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope

    return InstrumentationScope.FromString(raw).name if raw else ""


def reference_decode(body: bytes) -> Batch:
    """The previous decode_traces, minus its caches."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    try:
        req = LiteRequest.FromString(body)
    except DecodeError as exc:
        raise InvalidInput(f"malformed OTLP/protobuf traces request: {exc}") from exc
    rows = []
    for rs in req.resource_spans:
        res_json, service, pod = _ref_resource(rs.resource)
        for ss in rs.scope_spans:
            if ss.spans:
                scope = _ref_scope(ss.scope)
            rows += [(s, service, pod, res_json, scope) for s in ss.spans]
    sp = [r[0] for r in rows]
    tid, sid = [s.trace_id for s in sp], [s.span_id for s in sp]
    pid = [b"" if s.parent_span_id == bytes(8) else s.parent_span_id for s in sp]
    start = np.array([s.start_time_unix_nano for s in sp], np.uint64)
    end = np.array([s.end_time_unix_nano for s in sp], np.uint64)
    kind = np.array([s.kind for s in sp], np.int64)
    statuses = [Status.FromString(s.status) for s in sp] if any(s.status for s in sp) else [Status()] * len(sp)
    code = np.array([st.code for st in statuses], np.int64)
    lens = [np.array([len(x) for x in ids], np.int64) for ids in (tid, sid, pid)]
    checks = [
        (lens[0] != 16, "traceId must be 16 bytes"),
        (lens[1] != 8, "spanId must be 8 bytes"),
        ((lens[2] != 0) & (lens[2] != 8), "parentSpanId must be empty or 8 bytes"),
        ((start > np.uint64(2**63 - 1)) | (end > np.uint64(2**63 - 1)), "timestamp out of range"),
        (end < start, "span ends before it starts"),
        ((kind < 0) | (kind > 5), "kind out of range 0..5"),
        ((code < 0) | (code > 2), "status code out of range 0..2"),
        (np.array([t == bytes(16) or s == bytes(8) for t, s in zip(tid, sid)], bool), "traceId/spanId is all zeros"),
    ]
    batch = Batch()
    bad = np.zeros(len(sp), bool)
    for mask, reason in checks:
        bad |= mask
        idx = np.flatnonzero(mask)
        if len(idx):
            batch.reject("spans", f"span {sid[idx[0]].hex() or '?'}: {reason} ({len(idx)} spans)", 0)
    batch.rejected["spans"] += int(bad.sum())
    start_i, end_i = start.astype(np.int64), end.astype(np.int64)
    cols = {
        "trace_id": [x.hex() for x in tid], "span_id": [x.hex() for x in sid], "parent_span_id": [x.hex() for x in pid],
        "service": [r[1] for r in rows], "pod": [r[2] for r in rows], "name": [s.name for s in sp],
        "kind": np.where(bad, 0, kind).astype(np.int8), "start_ns": start_i, "end_ns": end_i,
        "duration_ns": end_i - start_i, "status_code": np.where(bad, 0, code).astype(np.int8),
        "status_message": [st.message for st in statuses],
        "attributes": [_ref_attributes(s.attributes) for s in sp], "events": [_ref_events(s.events) for s in sp],
        "resource": [r[3] for r in rows], "scope": [r[4] for r in rows],
    }
    schema = SCHEMAS["spans"]
    table = pa.Table.from_arrays([pa.array(cols[f.name], f.type) for f in schema], schema=schema)
    batch.tables["spans"] = table.filter(pa.array(~bad))
    return batch


def outcome(decode, body: bytes):
    """What a decoder makes of a body: (table, rejected, errors), or "invalid" (InvalidInput / DecodeError)."""
    try:
        batch = decode(body)
    except (InvalidInput, DecodeError):
        return "invalid"
    return batch.tables["spans"], batch.rejected, batch.errors


def assert_same(body: bytes):
    want, got = outcome(reference_decode, body), outcome(decode_traces, body)
    if want == "invalid" or got == "invalid":
        assert got == want, body.hex()
        return got
    assert got[0].schema == want[0].schema
    for name in want[0].column_names:  # byte for byte, column by column
        assert got[0].column(name).to_pylist() == want[0].column(name).to_pylist(), (name, body.hex())
    assert got[1:] == want[1:]
    return got


# ---------------------------------------------------------------- wire bytes by hand
def varint(n: int) -> bytes:
    n &= 2**64 - 1
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def tag(field: int, wt: int) -> bytes:
    return varint(field << 3 | wt)


def ld(field: int, payload: bytes) -> bytes:
    return tag(field, 2) + varint(len(payload)) + payload


def fixed64(field: int, n: int) -> bytes:
    return tag(field, 1) + (n & 2**64 - 1).to_bytes(8, "little")


def vfield(field: int, n: int) -> bytes:
    return tag(field, 0) + varint(n)


def kv(key: bytes, value: bytes | None) -> bytes:
    return ld(1, key) + (ld(2, value) if value is not None else b"")


def double(x: float) -> bytes:
    return tag(4, 1) + np.float64(x).tobytes()


def span(*fields: bytes, tid=b"\x01" * 16, sid=b"\x02" * 8, start=10, end=20) -> bytes:
    head = (ld(1, tid) if tid is not None else b"") + (ld(2, sid) if sid is not None else b"")
    return head + fixed64(7, start) + fixed64(8, end) + b"".join(fields)


def request(*spans: bytes, resource: bytes = ld(1, kv(b"service.name", ld(1, b"svc"))), scope=ld(1, b"lib")) -> bytes:
    return ld(1, ld(1, resource) + ld(2, ld(1, scope) + b"".join(ld(2, s) for s in spans)))


def attr(key: bytes, value: bytes | None) -> bytes:
    return ld(9, kv(key, value))


# ---------------------------------------------------------------- tests
def _sdk_request() -> bytes:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, Status, StatusCode

    memory = InMemorySpanExporter()
    providers = []
    for svc in ("frontend", "cart"):
        p = TracerProvider(resource=Resource.create({"service.name": svc, "k8s.pod.name": f"{svc}-0"}))
        p.add_span_processor(SimpleSpanProcessor(memory))
        providers.append(p)
    tf, tc = providers[0].get_tracer("shop.frontend", "1.2"), providers[1].get_tracer("shop.cart")
    with tf.start_as_current_span("GET /cart", kind=SpanKind.SERVER, attributes={
            "http.method": "GET", "http.status_code": 500, "ratio": 0.25, "big": 1e300, "tiny": -2.5e-308,
            "nan": float("nan"), "inf": float("-inf"), "cached": False, "tags": ["a", "b"], "ids": [1, -2**63],
            "floats": [0.1, 2.0], "flags": [True, False], "unicode": "naïve ☃ 𝄞",
            "escapes": 'q"b\\n\n\t\x01\x7f'}):
        with tc.start_as_current_span("cart.Get", kind=SpanKind.CLIENT, attributes={"rpc.system": "grpc"}) as child:
            child.add_event("retry", {"attempt": 2, "delay": 0.5, "why": "time\nout"})
            child.add_event("gave up")
            child.add_link(child.get_span_context(), {"link.attr": 1})  # links are not stored
            child.set_status(Status(StatusCode.ERROR, "deadline exceeded ☠"))
        with tf.start_as_current_span("empty", kind=SpanKind.INTERNAL) as ok:
            ok.set_status(Status(StatusCode.OK))
    return encode_spans(memory.get_finished_spans()).SerializeToString()


def test_sdk_request_matches_reference_byte_for_byte():
    table, rejected, errors = assert_same(_sdk_request())
    assert table.num_rows == 3 and rejected["spans"] == 0 and errors == []
    root = table.filter(pa.compute.equal(table.column("name"), "GET /cart")).to_pylist()[0]
    assert '"ratio":0.25,"big":1e+300,"tiny":-2.5e-308,"nan":"nan","inf":"-inf"' in root["attributes"]
    assert '"ids":[1,-9223372036854775808],"floats":[0.1,2.0]' in root["attributes"]


def test_bench_payloads_match_reference():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from ingest import encode_payloads, make_spans

    spans = make_spans(1200)
    payloads = encode_payloads(spans, 512) + encode_payloads(spans, 8192)
    assert sum(assert_same(p)[0].num_rows for p in payloads) == 2 * len(spans) == 2400


ALL_ANY_VALUES = [
    ld(1, b"plain"), ld(1, b""), ld(1, "ünï ☃ 𝄞".encode()), ld(1, b'"\\/\x00\x08\x09\x0a\x0c\x0d\x1f\x7f'),
    vfield(2, 1), vfield(2, 0), vfield(2, 256), vfield(3, 0), vfield(3, -1), vfield(3, 2**63 - 1), vfield(3, -2**63),
    double(0.0), double(-0.0), double(1.5), double(1e16), double(123456789.123), double(float("nan")),
    double(float("inf")), double(float("-inf")), double(5e-324),
    ld(7, b""), ld(7, b"\x00\xff\x10"),
    ld(5, b""),
    ld(5, ld(1, ld(1, b"x")) + ld(1, vfield(3, 7)) + ld(1, b"") + ld(1, double(2.5)) + ld(1, ld(7, b"\xab"))),
    ld(6, b""), ld(6, ld(1, kv(b"a", vfield(2, 1))) + ld(1, kv(b"b", ld(6, ld(1, kv(b"c", None)))))),
    ld(6, ld(1, kv(b"dup", vfield(3, 1))) + ld(1, kv(b"x", None)) + ld(1, kv(b"dup", vfield(3, 2)))),  # a dict
    ld(6, ld(1, kv(b"a", vfield(2, 1)) + kv(b"b", vfield(3, 1)))),  # one KeyValue, its fields twice
    ld(5, ld(1, ld(5, ld(1, vfield(3, 1))))), ld(5, ld(1, ld(6, b""))),  # nested containers
    b"", ld(1, b"a") + vfield(3, 4),  # no value; two oneof fields (the last wins)
    ld(5, ld(1, ld(1, b"x"))) + ld(5, ld(1, ld(1, b"y"))),  # a message field twice: merged
    vfield(9, 5) + ld(1, b"unknown field first") + tag(3, 2) + varint(0),  # int_value with another wire type
]


@pytest.mark.parametrize("value", ALL_ANY_VALUES, ids=range(len(ALL_ANY_VALUES)))
def test_every_any_value_as_attribute_and_event_attribute(value):
    event = ld(11, fixed64(1, 2**64 - 1) + ld(2, b"ev") + ld(3, kv(b"k", value)) + ld(3, kv(b"k2", value)))
    assert_same(request(span(attr(b"k", value), attr(b"k2", value), event)))


def test_attribute_and_event_shapes():
    cases = [
        span(),  # no attributes, events, name, status, parent
        span(attr(b"a", ld(1, b"1")), attr(b"a", ld(1, b"2"))),  # span attributes keep repeated keys
        span(ld(9, b"")),  # an empty KeyValue: "":null
        span(ld(9, ld(1, b"k1") + ld(1, b"k2") + ld(2, vfield(3, 1)))),  # key twice: the last wins
        span(ld(9, ld(1, b"k") + ld(2, ld(1, b"a")) + ld(2, vfield(3, 3)))),  # value twice: merged
        span(ld(9, vfield(7, 1) + ld(1, b"k") + tag(2, 0) + varint(3))),  # value with another wire type: unknown
        span(ld(11, b"")),  # an empty event
        span(ld(11, ld(2, b"a") + ld(2, b"b") + fixed64(1, 5) + fixed64(1, 6))),  # last name and time win
        span(ld(11, ld(3, kv(b"k", vfield(3, 1))) + ld(3, kv(b"k", vfield(3, 2))))),  # event attrs: a dict
        span(ld(11, ld(2, b"x")), ld(11, ld(2, b"y")), attr(b"after", vfield(2, 1))),
        span(ld(11, tag(20, 3) + tag(21, 0) + varint(1) + tag(20, 4) + ld(2, b"groups skipped"))),
        span(tag(13, 2) + varint(3) + b"\xff\xff\xff"),  # links are an unknown field here, not parsed
        span(ld(3, b"\xff"), fixed64(16, 1), vfield(10, 3), tag(99, 5) + b"abcd"),  # unknown fields skipped
        span(tag(1, 0) + varint(1), ld(5, b"name with wrong-type fields"), ld(6, b"x"), vfield(7, 3)),
        span(ld(5, b"first"), ld(5, "second ☃".encode())),  # the last name wins
        span(ld(15, ld(2, b"msg") + vfield(3, 2))),
        span(ld(15, ld(2, b"a")), ld(15, vfield(3, 1))),  # status twice: the last wins whole
        span(ld(15, ld(1, b"\xff") + vfield(3, 2**32 + 1) + ld(2, b"x") + ld(2, b"y"))),
    ]
    assert_same(request(*cases))
    for case in cases:
        assert_same(request(case))


def test_ids_times_kinds_and_codes_are_checked_like_before():
    cases = [
        span(ld(4, bytes(8))),  # zero parent -> ""
        span(ld(4, b"\x01" * 8)),
        span(ld(4, bytes(16))),  # zero parent of the wrong length
        span(ld(4, b"\x01")),
        span(tid=bytes(16)), span(sid=bytes(8)), span(tid=None), span(sid=None), span(tid=b"\x01" * 15),
        span(sid=b"\x03" * 9), span(tid=b""), span(tid=b"\x05" * 40, sid=b"\x06" * 3),
        span(start=2**63, end=2**63 + 1), span(start=5, end=2**64 - 1), span(start=2**63 - 1, end=2**63 - 1),
        span(start=30, end=20), span(start=0, end=0),
        span(vfield(6, 5)), span(vfield(6, 6)), span(vfield(6, -1)), span(vfield(6, 2**32 + 3)), span(vfield(6, 2**31)),
        span(ld(15, vfield(3, 3))), span(ld(15, vfield(3, -1))), span(ld(15, vfield(3, 2**32 + 2))),
    ]
    for case in cases:
        assert_same(request(case, span(sid=b"\x09" * 8)))
    table, rejected, errors = assert_same(request(*cases))
    assert rejected["spans"] == len(cases) - table.num_rows > 10 and len(errors) == 8


def test_resources_and_scopes():
    s = span()
    cases = [
        request(s, resource=b""), request(s, scope=b""),
        ld(1, ld(2, ld(2, s))),  # no resource, no scope
        ld(1, ld(1, b"") + ld(1, ld(1, kv(b"service.name", ld(1, b"second"))))  # resource twice: the last wins
           + ld(2, ld(1, ld(1, b"s1")) + ld(1, ld(1, b"s2")) + ld(2, s))),
        ld(1, ld(2, ld(1, ld(1, b"\xff")))),  # a broken scope without spans is never read
        ld(1, ld(2, b"") + ld(2, ld(2, s)) + vfield(3, 1)) + ld(1, b"") + ld(1, ld(2, ld(2, s) + ld(2, s))),
        request(s, resource=ld(1, kv(b"service.name", ld(1, b"a"))) + ld(1, kv(b"k8s.pod.name", ld(1, b"p")))),
        request(s, resource=ld(1, kv(b"host.name", vfield(3, 5)))),
        b"", ld(1, b""), vfield(2, 7) + ld(3, b"unknown"),
    ]
    for body in cases:
        assert_same(body)


BROKEN = [
    b"\x0a\xff\xff\xff\x0f", b"\xff\xff\xff\xff", b"\x0a", b"\x0a\x05ab", b"\x08", b"\x08\x80", b"\x00",
    b"\x0f", b"\x0e", b"\x0c", b"\x0b", b"\x09abc", b"\x0d12", b"\x08" + b"\x80" * 10 + b"\x01",
    request(span(ld(5, b"\xff"))), request(span(ld(5, b"\xed\xa0\x80"))), request(span(ld(5, b"\xc0\x80"))),
    request(span(ld(5, b"\xf4\x90\x80\x80"))), request(span(ld(5, b"ok \xe2\x98"))),
    request(span(attr(b"\xff", None))), request(span(attr(b"k", ld(1, b"\xe0\x80\x80")))),
    request(span(attr(b"k", ld(5, ld(1, ld(1, b"\xff")))))), request(span(attr(b"k", ld(6, ld(1, kv(b"\xff", None)))))),
    request(span(ld(11, ld(2, b"\xff")))), request(span(ld(11, ld(3, kv(b"k", ld(1, b"\x80")))))),
    request(span(ld(15, ld(2, b"\xfe")))), request(span(ld(15, b"\x1a"))),
    request(span(ld(9, b"\x0a\x05ab"))), request(span(ld(9, b"\x12\x02\x08"))), request(span(ld(11, b"\x09abc"))),
    request(span(tag(20, 3) + tag(21, 4))), request(span(tag(20, 4))), request(span(tag(20, 3))),
    request(span(tag(20, 6))), request(span(tag(20, 7))), request(span(tag(0, 0) + varint(1))),
    request(span(b"\xff\xff\xff\xff\x7f" + varint(1))), request(span(b"\x80\x80\x80\x80\x80\x01")),
    request(span(tag(5, 2) + b"\x81\x80\x80\x80\x80\x00a")),
    request(span(fixed64(7, 1)[:-1])), request(span(tag(16, 5) + b"abc")),
    request(span(), resource=b"\x0a\x05"), request(span(), scope=b"\x0a\x01\xff"),
    request(span(), resource=ld(1, kv(b"k", ld(1, b"\xff")))),
]


@pytest.mark.parametrize("body", BROKEN, ids=range(len(BROKEN)))
def test_broken_bodies_are_invalid_input_with_a_reason(body):
    assert outcome(reference_decode, body) == "invalid"
    with pytest.raises(InvalidInput, match="malformed OTLP/protobuf traces request: .+"):
        decode_traces(body)
    with pytest.raises(InvalidInput, match="malformed OTLP/protobuf traces request"):
        decode_proto(body, "traces")


def test_group_nesting_limit_is_protobufs():
    for depth in (1, 96, 97, 98, 120):
        assert_same(request(span(tag(20, 3) * depth + tag(20, 4) * depth)))
        assert_same(request(span(ld(9, kv(b"k", vfield(2, 1)) + tag(30, 3) * depth + tag(30, 4) * depth))))
    for depth in (1, 48, 49, 50, 60):  # AnyValue arrays nested deeply: KeyValue -> AnyValue -> ArrayValue -> ...
        value = ld(1, b"x")
        for _ in range(depth):
            value = ld(5, ld(1, value))
        assert_same(request(span(attr(b"deep", value))))


def test_random_damage_to_real_requests_is_handled_like_before():
    rnd = random.Random(7)
    base = [_sdk_request(), request(span(attr(b"k", ALL_ANY_VALUES[23]), ld(11, ld(3, kv(b"e", double(1.25))))))]
    outcomes = []
    for _ in range(1500):
        body = bytearray(rnd.choice(base))
        for _ in range(rnd.randint(1, 3)):
            i = rnd.randrange(len(body))
            op = rnd.random()
            if op < 0.5:
                body[i] = rnd.randrange(256)
            elif op < 0.75:
                del body[i:i + rnd.randint(1, 4)]
            else:
                body[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 3)))
        got = assert_same(bytes(body))
        outcomes.append(got == "invalid")
    assert 0.1 < np.mean(outcomes) < 0.95  # both kinds of outcome were exercised


def test_rejects_in_a_large_request_and_all_columns_survive_filtering():
    spans = [span(attr(b"i", vfield(3, i)), ld(5, f"op{i}".encode()), tid=bytes([i % 250 + 1]) * 16,
                  sid=(bytes(8) if i % 7 == 0 else bytes([i % 250 + 1]) * 8)) for i in range(700)]
    table, rejected, errors = assert_same(request(*spans))
    assert rejected["spans"] == 100 and table.num_rows == 600
    assert errors == ["span 0000000000000000: traceId/spanId is all zeros (100 spans)"]


TEXT = 'aZ09 ._-/"\\\n\t\x00\x1f\x7féü☃𝄞'


def _text(rnd) -> bytes:
    return "".join(rnd.choice(TEXT) for _ in range(rnd.choice([0, 1, 7, 8, 9, 15, 16, 17, rnd.randrange(40)]))).encode()


def _any_value(rnd, depth: int = 0) -> bytes:
    kind = rnd.randrange(9 if depth < 2 else 7)
    value = [
        lambda: ld(1, _text(rnd)), lambda: vfield(2, rnd.choice([0, 1, 2**40])),
        lambda: vfield(3, rnd.choice([0, 1, -1, 2**63 - 1, -2**63, rnd.randrange(-10**12, 10**12)])),
        lambda: double(rnd.choice([0.0, -0.0, 1.5, 0.1, rnd.random() * 10 ** rnd.randint(-320, 308), float("nan"),
                                   float("inf"), -float("inf"), float(rnd.randrange(-10**17, 10**17))])),
        lambda: ld(7, rnd.randbytes(rnd.randrange(5))), lambda: b"",
        lambda: ld(1, b"x") + vfield(3, 1),  # two oneof fields
        lambda: ld(5, b"".join(ld(1, _any_value(rnd, depth + 1)) for _ in range(rnd.randrange(5)))),
        lambda: ld(6, b"".join(ld(1, kv(rnd.choice([b"a", b"b", _text(rnd)]), _any_value(rnd, depth + 1)))
                               for _ in range(rnd.randrange(4)))),
    ][kind]()
    return value + (vfield(15, 1) if rnd.random() < 0.1 else b"")  # an unknown field


def _random_span(rnd) -> bytes:
    keys = [b"http.method", b"k", _text(rnd)]
    fields = [attr(rnd.choice(keys), _any_value(rnd) if rnd.random() < 0.95 else None)
              for _ in range(rnd.randrange(7))]
    for _ in range(rnd.choice([0, 0, 1, 2])):
        fields.append(ld(11, fixed64(1, rnd.randrange(2**64)) + ld(2, _text(rnd)) + b"".join(
            ld(3, kv(rnd.choice(keys), _any_value(rnd))) for _ in range(rnd.randrange(4)))))
    if rnd.random() < 0.5:
        fields.append(ld(15, (ld(2, _text(rnd)) if rnd.random() < 0.5 else b"") + vfield(3, rnd.choice([0, 1, 2, 3]))))
    if rnd.random() < 0.7:
        fields.append(ld(4, rnd.choice([bytes(8), rnd.randbytes(8), b"\x01"])))
    fields += [ld(5, _text(rnd)), vfield(6, rnd.choice([0, 1, 2, 3, 4, 5, 6]))]
    rnd.shuffle(fields)
    start = rnd.randrange(2**62)
    return span(*fields, tid=rnd.choice([rnd.randbytes(16)] * 9 + [bytes(16), b"\x01"]),
                sid=rnd.choice([rnd.randbytes(8)] * 9 + [bytes(8)]), start=start,
                end=start + rnd.choice([0, 5, 10**9, -1]))


def test_random_requests_match_reference():
    rnd = random.Random(11)
    n_rows = n_rejected = 0
    for _ in range(300):
        body = b"".join(
            ld(1, ld(1, ld(1, kv(b"service.name", ld(1, _text(rnd))))) + b"".join(
                ld(2, ld(1, ld(1, _text(rnd))) + b"".join(ld(2, _random_span(rnd)) for _ in range(rnd.randrange(6))))
                for _ in range(rnd.randint(1, 2))))
            for _ in range(rnd.randint(1, 3)))
        table, rejected, _ = assert_same(body)
        n_rows, n_rejected = n_rows + table.num_rows, n_rejected + rejected["spans"]
    assert n_rows > 500 and n_rejected > 100


def test_import_of_the_decoder_module_is_light():
    import subprocess

    code = "import sys, rca.ingest.otlp_proto; print('numba' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_warm_up_compiles_and_decodes():
    from rca.ingest import otlp_wire

    otlp_wire.warm_up()
    assert assert_same(request(span()))[0].num_rows == 1


def test_worst_case_expansion_grows_the_buffers():
    worst = [
        span(attr(b"\x01" * 3000, ld(1, b"\x1f" * 5000))),  # every byte becomes \u00XX
        span(*[ld(11, b"")] * 3000),  # an empty event: 2 bytes in, ~50 out
        span(*[ld(9, b"")] * 3000, *[ld(11, ld(3, b""))] * 500),  # empty KeyValues: "":null
        span(attr(b"a", ld(5, ld(1, b"") * 3000)), attr(b"d", ld(5, ld(1, double(-2.2250738585072014e-308)) * 900))),
        span(ld(9, ld(1, b"k") + ld(2, vfield(3, -1)) * 1)),
    ]
    for spans in (worst, worst[::-1], worst * 3):
        assert assert_same(request(*spans))[0].num_rows == len(spans)


def test_threads_decode_at_once_like_one_by_one():
    from concurrent.futures import ThreadPoolExecutor

    bodies = [_sdk_request(), request(*[span(attr(b"d", double(i / 7))) for i in range(300)])] * 4
    one_by_one = [decode_traces(b).tables["spans"] for b in bodies]
    with ThreadPoolExecutor(4) as pool:
        at_once = list(pool.map(lambda b: decode_traces(b).tables["spans"], bodies))
    assert all(x.equals(y) for x, y in zip(one_by_one, at_once))
