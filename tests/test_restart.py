"""Everything acknowledged with a 200 survives stopping the server and starting a new one on the same home."""

from __future__ import annotations

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def _request(trace_no: int, n: int) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", f"svc{trace_no % 3}"
    ss = rs.scope_spans.add()
    for i in range(n):
        sp = ss.spans.add()
        sp.trace_id = trace_no.to_bytes(16, "big")
        sp.span_id = (trace_no * 1000 + i + 1).to_bytes(8, "big")
        sp.name, sp.start_time_unix_nano, sp.end_time_unix_nano = f"op{i}", 10**18 + i, 10**18 + 10 + i
    return req.SerializeToString()


def test_acknowledged_data_survives_restart(start_server, settings):
    first = start_server(settings)
    acked = 0
    with httpx.Client(base_url=first.url, headers={"content-type": "application/x-protobuf"}) as client:
        for t in range(1, 21):
            r = client.post("/v1/traces", content=_request(t, 7))
            assert r.status_code == 200
            acked += 7
    first.stop()

    second = start_server(settings)
    stats = httpx.get(f"{second.url}/api/v1/stats").json()
    assert (stats["n_spans"], stats["n_traces"]) == (acked, 20)
    doc = httpx.get(f"{second.url}/api/v1/traces/{(17).to_bytes(16, 'big').hex()}").json()
    assert sorted(s["name"] for s in doc["spans"]) == [f"op{i}" for i in range(7)]
    # and the new server keeps accepting data
    assert httpx.post(f"{second.url}/v1/traces", content=_request(99, 1),
                      headers={"content-type": "application/x-protobuf"}).status_code == 200
    assert httpx.get(f"{second.url}/api/v1/stats").json()["n_spans"] == acked + 1
