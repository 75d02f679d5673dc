"""Ingest benchmark: raw protobuf parse rate vs end-to-end OTLP/HTTP ingest rate, same payloads, one run.

    python bench/ingest.py [--spans 100000] [--clients 4] [--batch 512]

(a) ``ExportTraceServiceRequest.ParseFromString`` over the payloads (spans/s, best of 3, one core);
(b) our decoder alone (spans/s, one core; for the breakdown);
(c) ``rca serve`` in its own process with a fresh store, ``--clients`` threads POSTing the payloads
    (application/x-protobuf), every span acknowledged with a 200, then the stored count checked
    through the API. Prints the rates and (c)/(a).
Payloads are made by the OpenTelemetry SDK's own OTLP encoder from SDK spans: 10 services with
resources, 9-span traces (server -> client -> db), 3-5 attributes per span, some with
per-request values, 2% errors.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time

SERVICES = ["frontend", "cart", "checkout", "payment", "shipping", "currency", "email", "ad", "recommendation",
            "catalog"]


def make_payloads(n_spans: int, batch: int, seed: int = 0) -> tuple[list[bytes], int]:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, Status, StatusCode

    rnd = random.Random(seed)
    memory = InMemorySpanExporter()
    tracers = {}
    for s in SERVICES:
        provider = TracerProvider(resource=Resource.create({
            "service.name": s, "service.instance.id": f"{s}-7d9f-{rnd.randrange(1000)}", "host.name": "node-1",
            "deployment.environment": "prod"}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracers[s] = provider.get_tracer("rca.bench", "1.0")
    for _ in range(n_spans // 9 + 1):
        with tracers["frontend"].start_as_current_span(
                "GET /api/cart", kind=SpanKind.SERVER,
                attributes={"http.method": "GET", "http.route": "/api/cart",
                            "http.target": f"/api/cart?user={rnd.randrange(10**6)}", "http.status_code": 200,
                            "net.peer.port": rnd.randrange(30000, 60000)}):
            for s in rnd.sample(SERVICES[1:], 4):
                with tracers[s].start_as_current_span(f"{s}.Get", kind=SpanKind.CLIENT, attributes={
                        "rpc.system": "grpc", "rpc.service": s, "rpc.method": "Get", "net.peer.name": s}):
                    with tracers[s].start_as_current_span(f"SELECT {s}", attributes={
                            "db.system": "postgresql", "db.statement": f"SELECT * FROM {s} WHERE id = $1",
                            "db.rows": rnd.randrange(100)}) as span:
                        if rnd.random() < 0.02:
                            span.set_status(Status(StatusCode.ERROR, "timeout"))
    spans = memory.get_finished_spans()[:n_spans]
    return [encode_spans(spans[i:i + batch]).SerializeToString() for i in range(0, len(spans), batch)], len(spans)


def rate(fn, payloads: list[bytes], n_spans: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for p in payloads:
            fn(p)
        best = min(best, time.perf_counter() - t0)
    return n_spans / best


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def end_to_end(payloads: list[bytes], n_spans: int, clients: int) -> tuple[float, int]:
    import httpx

    home = tempfile.mkdtemp(prefix="rca-bench-")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "rca.interfaces.cli.main", "--home", home, "serve",
                               "--port", str(port), "--log-level", "warning"],
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        with httpx.Client(base_url=url) as warm:  # decoder tables, first commit
            warm.post("/v1/traces", content=b"", headers={"content-type": "application/x-protobuf"})
        queue = list(enumerate(payloads))
        lock, failures = threading.Lock(), []

        def client() -> None:
            with httpx.Client(base_url=url, timeout=120,
                              headers={"content-type": "application/x-protobuf"}) as c:
                while True:
                    with lock:
                        if not queue:
                            return
                        _, body = queue.pop()
                    r = c.post("/v1/traces", content=body)
                    if r.status_code != 200:
                        failures.append(r.status_code)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        if failures:
            raise SystemExit(f"{len(failures)} requests failed: {sorted(set(failures))}")
        stored = httpx.get(f"{url}/api/v1/stats", timeout=60).json()["n_spans"]
        return n_spans / elapsed, stored
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=512, help="spans per request (the SDK's default batch size)")
    args = ap.parse_args()

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from rca.ingest.otlp_proto import decode_proto

    payloads, n = make_payloads(args.spans, args.batch)
    size = sum(map(len, payloads))
    print(f"payloads: {len(payloads)} requests, {n} spans, {size / n:.0f} bytes/span")
    parse = rate(ExportTraceServiceRequest.FromString, payloads, n)
    print(f"(a) raw protobuf parse (ParseFromString):   {parse:>12,.0f} spans/s")
    decode = rate(lambda p: decode_proto(p, "traces"), payloads, n)
    print(f"(b) decode_proto -> Arrow columns:          {decode:>12,.0f} spans/s  ({decode / parse:.3f} x parse)")
    e2e, stored = end_to_end(payloads, n, args.clients)
    print(f"(c) end-to-end OTLP/HTTP, {args.clients} clients, durable: {e2e:>8,.0f} spans/s")
    print(f"    stored and readable: {stored} of {n} spans {'OK' if stored == n else 'MISMATCH'}")
    print(f"ratio e2e / raw parse = {e2e / parse:.3f}   (cpus: {os.cpu_count()})")
    if stored != n:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
