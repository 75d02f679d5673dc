"""Decoders: protobuf and JSON give the same columns for the same request; Jaeger JSON import."""

from __future__ import annotations

import base64
import json

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from rca.errors import InvalidInput
from rca.ingest.jaeger import decode_jaeger
from rca.ingest.otlp_json import decode_json
from rca.ingest.otlp_proto import decode_proto


def _to_otlp_json(msg) -> dict:
    """protobuf -> OTLP/JSON: json_format writes ids as base64; OTLP/JSON wants hex."""
    doc = json_format.MessageToDict(msg)

    def fix(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                    node[k] = base64.b64decode(v).hex()
                else:
                    fix(v)
        elif isinstance(node, list):
            for v in node:
                fix(v)
    fix(doc)
    return doc


def _rich_request() -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    for svc in ("front", "back"):
        rs = req.resource_spans.add()
        for k, v in (("service.name", svc), ("k8s.pod.name", f"{svc}-1")):
            kv = rs.resource.attributes.add()
            kv.key, kv.value.string_value = k, v
        ss = rs.scope_spans.add()
        ss.scope.name = "lib"
        for i in range(4):
            sp = ss.spans.add()
            sp.trace_id = bytes([i + 1]) * 16
            sp.span_id = bytes([i + 1, len(svc)]) + bytes(6)
            if i:
                sp.parent_span_id = bytes([i, len(svc)]) + bytes(6)
            sp.name, sp.kind = f"{svc}.op{i}", i % 4
            sp.start_time_unix_nano, sp.end_time_unix_nano = 1_700_000_000_000_000_000 + i, 1_700_000_000_500_000_000
            a = sp.attributes.add()
            a.key, a.value.int_value = "n", i
            b = sp.attributes.add()
            b.key = "mixed"
            b.value.array_value.values.add().string_value = "x"
            b.value.array_value.values.add().double_value = 1.5
            c = sp.attributes.add()
            c.key = "blob"
            c.value.bytes_value = b"\x01\xff"
            d = sp.attributes.add()
            d.key = "nested"
            inner = d.value.kvlist_value.values.add()
            inner.key, inner.value.bool_value = "ok", True
            if i == 2:
                sp.status.code, sp.status.message = 2, "bad"
                ev = sp.events.add()
                ev.name, ev.time_unix_nano = "exception", 1_700_000_000_000_000_100
                ea = ev.attributes.add()
                ea.key, ea.value.string_value = "exception.type", "Timeout"
    return req


def test_protobuf_and_json_decoders_agree_column_by_column():
    req = _rich_request()
    from_proto = decode_proto(req.SerializeToString(), "traces").tables["spans"]
    from_json = decode_json(json.dumps(_to_otlp_json(req)), "traces").tables["spans"]
    assert from_proto.num_rows == 8
    assert from_proto.schema == from_json.schema
    for name in from_proto.column_names:
        assert from_proto.column(name).to_pylist() == from_json.column(name).to_pylist(), name
    row = from_proto.slice(2, 1).to_pylist()[0]
    assert json.loads(row["attributes"]) == {"n": 2, "mixed": ["x", 1.5], "blob": "01ff", "nested": {"ok": True}}
    assert json.loads(row["events"]) == [{"time_ns": 1_700_000_000_000_000_100, "name": "exception",
                                          "attributes": {"exception.type": "Timeout"}}]


def test_protobuf_rejects_invalid_spans_and_keeps_the_rest():
    req = _rich_request()
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[0].trace_id = bytes(16)  # all zeros
    spans[1].parent_span_id = b"\x01"  # wrong length
    spans[3].kind = 9  # no such kind
    batch = decode_proto(req.SerializeToString(), "traces")
    assert batch.rejected["spans"] == 3
    assert sorted(batch.tables["spans"].column("name").to_pylist()) == \
        ["back.op0", "back.op1", "back.op2", "back.op3", "front.op2"]
    assert any("all zeros" in e for e in batch.errors) and any("parentSpanId" in e for e in batch.errors)


def test_protobuf_garbage_is_invalid_input():
    with pytest.raises(InvalidInput, match="malformed OTLP/protobuf traces request"):
        decode_proto(b"\x0a\xff\xff\xff\x0f", "traces")
    with pytest.raises(InvalidInput, match="unknown signal"):
        decode_proto(b"", "profiles")


def test_jaeger_export_maps_ids_parents_times_status_and_logs():
    doc = {"data": [{"traceID": "a1b2c3d4e5f60718", "processes": {
        "p1": {"serviceName": "frontend", "tags": [{"key": "hostname", "type": "string", "value": "web-1"}]},
        "p2": {"serviceName": "cart", "tags": []}},
        "spans": [
            {"traceID": "a1b2c3d4e5f60718", "spanID": "0000000000000001", "operationName": "GET /", "references": [],
             "startTime": 1700000000000000, "duration": 1500, "processID": "p1",
             "tags": [{"key": "span.kind", "type": "string", "value": "server"},
                      {"key": "http.status_code", "type": "int64", "value": 500}]},
            {"traceID": "a1b2c3d4e5f60718", "spanID": "2", "operationName": "cart.Get", "processID": "p2",
             "references": [{"refType": "CHILD_OF", "traceID": "a1b2c3d4e5f60718", "spanID": "0000000000000001"}],
             "startTime": 1700000000000100, "duration": 900,
             "tags": [{"key": "error", "type": "bool", "value": True}],
             "logs": [{"timestamp": 1700000000000200, "fields": [
                 {"key": "event", "type": "string", "value": "timeout"},
                 {"key": "retry", "type": "int64", "value": 1}]}]},
            {"traceID": "a1b2c3d4e5f60718", "spanID": "xyz", "operationName": "bad", "startTime": 1, "duration": 1},
        ]}]}
    batch = decode_jaeger(json.dumps(doc))
    rows = batch.tables["spans"].to_pylist()
    assert batch.rejected["spans"] == 1 and len(rows) == 2
    root, child = rows
    assert root["trace_id"] == "0000000000000000a1b2c3d4e5f60718" and root["parent_span_id"] == ""
    assert (root["service"], root["pod"], root["kind"], root["status_code"]) == ("frontend", "web-1", 2, 0)
    assert (root["start_ns"], root["duration_ns"]) == (1_700_000_000_000_000_000, 1_500_000)
    assert json.loads(root["attributes"])["http.status_code"] == 500
    assert child["span_id"] == "0000000000000002" and child["parent_span_id"] == "0000000000000001"
    assert (child["service"], child["status_code"], child["end_ns"]) == ("cart", 2, 1_700_000_000_001_000_000)
    assert json.loads(child["events"]) == [{"time_ns": 1_700_000_000_000_200_000, "name": "timeout",
                                            "attributes": {"retry": 1}}]
    with pytest.raises(InvalidInput, match="not a Jaeger export"):
        decode_jaeger('{"data": 5}')
