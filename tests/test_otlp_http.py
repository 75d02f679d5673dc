"""OTLP/HTTP receiver: JSON and gzip requests, bad input answered precisely, partial success."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}
TID = "5b8efff798038103d269b633813fc60c"


def _json_request(spans: list[dict], service: str = "api") -> dict:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": spans}]}]}


def _span(span_id: str, start: int = 1_700_000_000_000_000_000, dur: int = 5_000_000, **extra) -> dict:
    return {"traceId": TID, "spanId": span_id, "name": "GET /x", "kind": 2, "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + dur), **extra}


def _proto_request(n: int, trace_hex: str = TID) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "pb-svc"
    ss = rs.scope_spans.add()
    for i in range(n):
        sp = ss.spans.add()
        sp.trace_id, sp.span_id = bytes.fromhex(trace_hex), (i + 1).to_bytes(8, "big")
        sp.name, sp.start_time_unix_nano, sp.end_time_unix_nano = f"op{i}", 1_000 + i, 2_000 + i
    return req.SerializeToString()


def _count(server) -> int:
    return httpx.get(f"{server.url}/api/v1/stats").json()["n_spans"]


def test_json_request_gets_json_response_and_is_stored(live_server):
    body = _json_request([_span("eee19b7ec3c1b174", attributes=[
        {"key": "http.status_code", "value": {"intValue": "503"}}], status={"code": 2, "message": "boom"})])
    r = httpx.post(f"{live_server.url}/v1/traces", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json" and r.json() == {}
    got = httpx.get(f"{live_server.url}/api/v1/traces/{TID}").json()["spans"][0]
    assert (got["span_id"], got["service"], got["status_code"], got["status_message"]) == \
        ("eee19b7ec3c1b174", "api", 2, "boom")
    assert got["attributes"] == {"http.status_code": 503}


def test_gzip_protobuf_request(live_server):
    r = httpx.post(f"{live_server.url}/v1/traces", content=gzip.compress(_proto_request(3)),
                   headers={**PB, "content-encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    resp = ExportTraceServiceResponse.FromString(r.content)
    assert not resp.HasField("partial_success")
    spans = httpx.get(f"{live_server.url}/api/v1/traces/{TID}").json()["spans"]
    assert sorted(s["name"] for s in spans) == ["op0", "op1", "op2"] and {s["service"] for s in spans} == {"pb-svc"}


def test_partial_success_keeps_valid_spans(live_server):
    body = _json_request([_span("00000000000000a1"), _span("abc", ), _span("00000000000000a2", dur=-10)])
    r = httpx.post(f"{live_server.url}/v1/traces", json=body)
    assert r.status_code == 200
    partial = r.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "spanId" in partial["errorMessage"] and "ends before it starts" in partial["errorMessage"]
    spans = httpx.get(f"{live_server.url}/api/v1/traces/{TID}").json()["spans"]
    assert [s["span_id"] for s in spans] == ["00000000000000a1"]

    req = ExportTraceServiceRequest.FromString(_proto_request(3))
    bad = req.resource_spans[0].scope_spans[0].spans
    bad[1].span_id = b"\x01\x02"  # wrong length
    bad[2].end_time_unix_nano = 10  # ends before it starts
    r = httpx.post(f"{live_server.url}/v1/traces", content=req.SerializeToString(), headers=PB)
    resp = ExportTraceServiceResponse.FromString(r.content)
    assert r.status_code == 200 and resp.partial_success.rejected_spans == 2
    assert "spanId must be 8 bytes" in resp.partial_success.error_message
    assert "ends before it starts" in resp.partial_success.error_message
    assert _count(live_server) == 2


def _status(r: httpx.Response, protobuf: bool) -> status_pb2.Status:
    if protobuf:
        assert r.headers["content-type"] == "application/x-protobuf"
        return status_pb2.Status.FromString(r.content)
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    return status_pb2.Status(code=doc.get("code", 0), message=doc["message"])


BAD = [
    ("malformed protobuf", PB, b"\xff\xff\xff\xff", True, 400, "malformed OTLP/protobuf traces request"),
    ("malformed json", JS, b'{"resourceSpans": [', False, 400, "malformed OTLP/JSON"),
    ("json not an object", JS, b"[1, 2]", False, 400, "must be a JSON object"),
    ("wrong content type", {"content-type": "text/plain"}, b"hello", False, 400, "unsupported Content-Type 'text/plain'"),
    ("corrupt gzip", {**PB, "content-encoding": "gzip"}, b"\x1f\x8b\x08\x00garbage", True, 400, "corrupt gzip body"),
    ("truncated gzip", {**PB, "content-encoding": "gzip"}, gzip.compress(b"x" * 1000)[:20], True, 400, "truncated"),
    ("unknown encoding", {**JS, "content-encoding": "br"}, b"{}", False, 400, "unsupported Content-Encoding 'br'"),
]


@pytest.mark.parametrize("what,headers,body,protobuf,code,message", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_precise_status_and_server_keeps_serving(live_server, what, headers, body, protobuf, code,
                                                                  message):
    assert httpx.post(f"{live_server.url}/v1/traces", content=_proto_request(2), headers=PB).status_code == 200
    r = httpx.post(f"{live_server.url}/v1/traces", content=body, headers=headers)
    assert r.status_code == code
    status = _status(r, protobuf)
    assert message in status.message and status.code == 3  # INVALID_ARGUMENT
    assert httpx.post(f"{live_server.url}/v1/traces", content=_proto_request(1, "ab" * 16), headers=PB).status_code == 200
    assert _count(live_server) == 3  # earlier data still there, later data stored


def test_body_over_limit_is_413_before_and_after_decompression(start_server, settings):
    server = start_server(settings.with_(max_body_bytes=64 * 1024))
    assert httpx.post(f"{server.url}/v1/traces", content=_proto_request(5), headers=PB).status_code == 200
    big = _proto_request(2000)  # ~70 KB
    assert len(big) > 64 * 1024
    r = httpx.post(f"{server.url}/v1/traces", content=big, headers=PB)
    assert r.status_code == 413 and "over the limit of 65536 bytes" in status_pb2.Status.FromString(r.content).message

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    r = httpx.post(f"{server.url}/v1/traces", content=chunks(), headers=PB)
    assert r.status_code == 413
    bomb = gzip.compress(b'{"resourceSpans": []}' + b" " * 1_000_000)  # 1 MB of JSON in ~1 KB of gzip
    r = httpx.post(f"{server.url}/v1/traces", content=bomb, headers={**JS, "content-encoding": "gzip"})
    assert r.status_code == 413 and "decompressed body is over the limit" in r.json()["message"]
    assert r.json()["code"] == 8  # RESOURCE_EXHAUSTED
    assert _count(server) == 5
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_logs_and_metrics_json_endpoints(live_server):
    logs = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "db"}}]},
                              "scopeLogs": [{"logRecords": [
                                  {"timeUnixNano": "1700000000000000000", "severityNumber": 17,
                                   "body": {"stringValue": "connection refused"}, "traceId": TID,
                                   "spanId": "eee19b7ec3c1b174"},
                                  {"timeUnixNano": "1700000000000000001", "traceId": "zz"}]}]}]}
    r = httpx.post(f"{live_server.url}/v1/logs", json=logs)
    assert r.status_code == 200 and r.json()["partialSuccess"]["rejectedLogRecords"] == "1"
    metrics = {"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name",
                                                                 "value": {"stringValue": "db"}}]},
                                    "scopeMetrics": [{"metrics": [{"name": "cpu", "gauge": {"dataPoints": [
                                        {"timeUnixNano": "1700000000000000000", "asDouble": 0.5}]}}]}]}]}
    r = httpx.post(f"{live_server.url}/v1/metrics", content=json.dumps(metrics), headers=JS)
    assert r.status_code == 200 and r.json() == {}
    stats = httpx.get(f"{live_server.url}/api/v1/stats").json()
    assert (stats["n_logs"], stats["n_metric_points"]) == (1, 1)


def test_unknown_trace_is_404_with_the_error_shape(live_server):
    r = httpx.get(f"{live_server.url}/api/v1/traces/{'ab' * 16}")
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "not_found", "message": f"trace {'ab' * 16} not found",
                                  "details": {"trace_id": "ab" * 16}}}
    r = httpx.get(f"{live_server.url}/api/v1/traces/not-hex")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
    r = httpx.get(f"{live_server.url}/api/v1/traces", params={"start": "yesterday-ish"})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("start: not a time")
