"""Everything acknowledged with a 200 survives stopping the server, or killing it, and starting a new one."""

from __future__ import annotations

import threading

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import start_serve, stop_serve


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
    with httpx.Client(base_url=first.url, headers={"content-type": "application/x-protobuf"}, timeout=60) as client:
        for t in range(1, 21):
            r = client.post("/v1/traces", content=_request(t, 7))
            assert r.status_code == 200
            acked += 7
    first.stop()

    second = start_server(settings)
    stats = httpx.get(f"{second.url}/api/v1/stats", timeout=60).json()
    assert (stats["n_spans"], stats["n_traces"]) == (acked, 20)
    doc = httpx.get(f"{second.url}/api/v1/traces/{(17).to_bytes(16, 'big').hex()}").json()
    assert sorted(s["name"] for s in doc["spans"]) == [f"op{i}" for i in range(7)]
    # and the new server keeps accepting data
    assert httpx.post(f"{second.url}/v1/traces", content=_request(99, 1), timeout=60,
                      headers={"content-type": "application/x-protobuf"}).status_code == 200
    assert httpx.get(f"{second.url}/api/v1/stats").json()["n_spans"] == acked + 1


def test_acknowledged_data_survives_kill_9(tmp_path):
    home = tmp_path / "home"
    server, url = start_serve(home)
    try:
        def post(traces: range) -> None:
            with httpx.Client(base_url=url, headers={"content-type": "application/x-protobuf"}, timeout=60) as c:
                for t in traces:
                    assert c.post("/v1/traces", content=_request(t, 9)).status_code == 200

        def post_concurrently(first: int) -> None:  # 4 clients, 10 requests each
            threads = [threading.Thread(target=post, args=(range(first + 10 * k, first + 10 * (k + 1)),))
                       for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        post_concurrently(1)
        assert httpx.get(f"{url}/api/v1/stats", timeout=60).json()["n_spans"] == 40 * 9  # stored in DuckDB by this read
        post_concurrently(41)  # acknowledged, and only logged when the server dies
    finally:
        server.kill()  # SIGKILL: no shutdown, no close, no drain
        server.wait(timeout=30)
    assert list((home / "rca.duckdb.ingest-log").glob("*.wal"))  # what the restart must replay

    server, url = start_serve(home)  # (the killed server's server.json is stale: its pid is not this one)
    try:
        stats = httpx.get(f"{url}/api/v1/stats", timeout=60).json()
        assert (stats["n_spans"], stats["n_traces"]) == (80 * 9, 80)  # all of it, and nothing twice
        doc = httpx.get(f"{url}/api/v1/traces/{(77).to_bytes(16, 'big').hex()}", timeout=60).json()
        assert sorted(s["name"] for s in doc["spans"]) == [f"op{i}" for i in range(9)]
    finally:
        stop_serve(server)
