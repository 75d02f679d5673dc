"""Ingest benchmark: raw protobuf parse rate vs end-to-end OTLP/HTTP ingest rate, same payloads, one run.

    python bench/ingest.py [--spans 200000] [--clients 4] [--rounds 5] [--batch 512 --batch 8192]

For each batch size (spans per request; default 512, the SDK's default, and 8192, the Collector batch
processor's default send_batch_size):
(a) ``ExportTraceServiceRequest.ParseFromString`` over the payloads (spans/s, best of 3, one core);
(b) our decoder alone (spans/s, best of 3, one core; for the breakdown);
(c) ``rca serve`` in its own process with a fresh store, ``--clients`` threads POSTing the payloads
    (application/x-protobuf; stdlib http.client with keep-alive, a light client), every span acknowledged
    with a 200 (durable: logged and fdatasync'd), timed from the first request until the stored span count,
    read back through the API, is complete (reads see logged batches at once; DuckDB's tables get them
    from the store's background writer later); the span and trace counts are checked; best of
    ``--rounds`` rounds, each with a fresh server and store, warmed first as a running server is: the
    same number of other spans sent the same way, then a pause in which the writer stores them, and
    the files of earlier rounds written back (``sync``) so that the kernel does not do it during this
    one (all rounds printed, and their median: on a shared 2-core VM, rounds of the same code differ
    by up to a third, mostly in kernel time);
(d) the store alone, in this process: the decoded batches appended by ``--clients`` threads to a fresh
    store (logged as their requests, as the server does), timed until a read sees them all, and until
    all are stored in DuckDB's tables (``flush``): the second is the rate the store sustains once its
    log is full (appends then wait for the writer), which DuckDB's INSERT bounds, see (e);
(e) what storing costs DuckDB, once for all batch sizes: every decoded span as one Arrow table in one
    ``INSERT`` into a fresh DuckDB file's spans table (the store's schema with its trace-id index, without
    the index, and a leaner layout a redesign could choose), no HTTP, no decoding, no log: its rate, and its
    CPU time per span (DuckDB runs one INSERT on one core: ``SET threads`` 1 and 2 agree). With decoding's
    CPU time per span (b) that bounds any sustained ingest that stores spans as rows so: at most ``cpus /
    (insert + decode CPU)`` spans/s, even with free HTTP and perfect use of every core.
Prints the rates and each one's ratio to (a) measured in the same run (the machine may be shared).
Payloads are made by the OpenTelemetry SDK's own OTLP encoder from SDK spans: 10 services with
resources, 9-span traces (server -> client -> db), 3-5 attributes per span, some with
per-request values, 2% errors.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

SERVICES = ["frontend", "cart", "checkout", "payment", "shipping", "currency", "email", "ad", "recommendation",
            "catalog"]


def make_spans(n_spans: int, seed: int = 0) -> list:
    """SDK ReadableSpans: 9-span traces over 10 services."""
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
    return list(memory.get_finished_spans()[:n_spans])


def encode_payloads(spans: list, batch: int) -> list[bytes]:
    """ExportTraceServiceRequest bodies of ``batch`` spans each, by the SDK's OTLP encoder."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return [encode_spans(spans[i:i + batch]).SerializeToString() for i in range(0, len(spans), batch)]


def rate(fn, payloads: list[bytes], n_spans: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for p in payloads:
            fn(p)
        best = min(best, time.perf_counter() - t0)
    return n_spans / best


SETTLE_S = 3.0  # the writer stores a 200k-span warm-up round within ~1 s of the pause, then checkpoints


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fan_out(items: list, clients: int, work) -> None:
    """Run ``work(take)`` in ``clients`` threads; ``take()`` hands out ``items`` in order, then None."""
    it, lock = iter(items), threading.Lock()

    def take():
        with lock:
            return next(it, None)

    threads = [threading.Thread(target=work, args=(take,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def end_to_end(payloads: list[bytes], warmup: list[bytes], n_spans: int, n_traces: int, clients: int) -> float:
    """(c), one round: spans/s from the first request until the whole count is read back through the API."""
    home = tempfile.mkdtemp(prefix="rca-bench-")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "rca.interfaces.cli.main", "--home", home, "serve",
                               "--port", str(port), "--log-level", "warning"],
                              env={**os.environ, "PYTHONWARNINGS": "ignore"}, stdout=subprocess.DEVNULL)
    headers = {"content-type": "application/x-protobuf"}

    def call(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            conn.request(method, path, body=body, headers=headers if body is not None else {})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def stats() -> dict:
        status, body = call("GET", "/api/v1/stats")
        assert status == 200, body
        return json.loads(body)

    try:
        for _ in range(600):
            try:
                call("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        failures = []

        def client(take) -> None:  # http.client, keep-alive: a light client (httpx costs more CPU than the server)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            try:
                while (body := take()) is not None:
                    conn.request("POST", "/v1/traces", body=body, headers=headers)
                    r = conn.getresponse()
                    r.read()
                    if r.status != 200:
                        failures.append(r.status)
            finally:
                conn.close()

        # a warm server, as one that has been running is: a round of other spans (same batch size), stored
        # in DuckDB's tables by the background writer once appends pause, before the clock starts
        fan_out(warmup, clients, client)
        time.sleep(SETTLE_S)
        os.sync()  # (earlier rounds' files written back now, not by the kernel's timer during this one)
        before = stats()
        t0 = time.perf_counter()
        fan_out(payloads, clients, client)
        t_acked = time.perf_counter()
        after = stats()
        elapsed = time.perf_counter() - t0
        if failures:
            raise SystemExit(f"{len(failures)} requests failed: {sorted(set(failures))}")
        stored = (after["n_spans"] - before["n_spans"], after["n_traces"] - before["n_traces"])
        if stored != (n_spans, n_traces):
            raise SystemExit(f"stored (spans, traces) {stored}, expected {(n_spans, n_traces)}")
        print(f"    round: acked after {t_acked - t0:.3f}s, read back {time.perf_counter() - t_acked:.3f}s later: "
              f"{n_spans / elapsed:,.0f} spans/s")
        return n_spans / elapsed
    finally:
        server.terminate()
        server.wait(timeout=120)
        shutil.rmtree(home, ignore_errors=True)


def store_alone(batches: list, payloads: list[bytes], n_spans: int, clients: int) -> tuple[float, float]:
    """(d): spans/s appending decoded batches (logged as their requests) from ``clients`` threads, until a
    read sees them all, and until all are in DuckDB's tables."""
    from rca.store.duck import DuckStore

    home = tempfile.mkdtemp(prefix="rca-bench-")
    try:
        with DuckStore(os.path.join(home, "rca.duckdb")) as store:
            store.append_many(batches[0].tables)  # warm; counted out below
            store.flush()
            base = store.stats()["n_spans"]
            n = n_spans - batches[0].counts()["spans"]

            def writer(take) -> None:
                while (item := take()) is not None:
                    store.append_many(item[0].tables, {"spans": item[1]})

            t0 = time.perf_counter()
            fan_out(list(zip(batches[1:], payloads[1:])), clients, writer)
            seen = store.stats()["n_spans"] - base
            t_seen = time.perf_counter() - t0
            store.flush()
            t_stored = time.perf_counter() - t0
            stored = store.stats()["n_spans"] - base
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if (seen, stored) != (n, n):
        raise SystemExit(f"store alone: read {seen} and stored {stored} spans, expected {n}")
    return n / t_seen, n / t_stored


# (e), a leaner layout a redesign could choose: binary ids, names dictionary-encoded, the resource kept once
# per service elsewhere (so not here)
_LEAN = """SELECT ('0x' || trace_id)::UHUGEINT AS trace_id, ('0x' || span_id)::UBIGINT AS span_id,
  CASE WHEN parent_span_id = '' THEN NULL ELSE ('0x' || parent_span_id)::UBIGINT END AS parent_span_id,
  service, pod, name, kind, start_ns, end_ns, duration_ns, status_code, status_message, attributes, events, scope
  FROM rows"""


def duckdb_ceiling(tables: list, with_index: bool, lean: bool = False) -> tuple[float, float]:
    """(e): (spans/s, CPU seconds per span) of one INSERT of all ``tables`` (concatenated) into a fresh
    DuckDB spans table: the store's schema, or (``lean``) the leaner layout above, prepared before the
    clock starts. Nothing else runs in this process meanwhile, so its CPU time is the INSERT's."""
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc

    from rca.schema import TABLES

    rows = pa.concat_tables(tables).combine_chunks()
    home = tempfile.mkdtemp(prefix="rca-bench-")
    try:
        con = duckdb.connect(os.path.join(home, "ceiling.duckdb"))
        if lean:
            rows = con.sql(_LEAN).to_arrow_table()
            for c in ("service", "pod", "name", "scope", "status_message"):
                rows = rows.set_column(rows.column_names.index(c), c, pc.dictionary_encode(rows[c]))
            con.execute("CREATE TABLE spans AS SELECT * FROM rows LIMIT 0")
        else:
            con.execute(f"CREATE TABLE spans ({', '.join(f'{c} {t}' for c, t in TABLES['spans'].items())})")
        if with_index:
            con.execute("CREATE INDEX spans_trace ON spans(trace_id)")
        t0, c0 = time.perf_counter(), time.process_time()
        con.execute("INSERT INTO spans SELECT * FROM rows")
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == rows.num_rows
        con.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return rows.num_rows / elapsed, cpu / rows.num_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=200_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5, help="rounds of (c), each with a fresh server (best counts)")
    ap.add_argument("--batch", type=int, action="append",
                    help="spans per request, repeatable (default: 512 and 8192)")
    ap.add_argument("--skip-store", action="store_true", help="skip (d), the store alone")
    args = ap.parse_args()
    batches = args.batch or [512, 8192]

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from rca.ingest.otlp_proto import decode_proto

    spans = make_spans(args.spans)
    n, n_traces = len(spans), len({s.context.trace_id for s in spans})
    warmup_spans = make_spans(args.spans, seed=1)
    print(f"{n} spans in {n_traces} traces; {args.clients} clients; cpus: {os.cpu_count()}")
    rows = []
    for batch in batches:
        payloads = encode_payloads(spans, batch)
        size = sum(map(len, payloads))
        print(f"\nbatch {batch}: {len(payloads)} requests, {size / n:.0f} bytes/span")
        parse = rate(ExportTraceServiceRequest.FromString, payloads, n)
        print(f"(a) raw protobuf parse (ParseFromString):  {parse:>12,.0f} spans/s")
        decode = rate(lambda p: decode_proto(p, "traces"), payloads, n)
        print(f"(b) decode_proto -> Arrow columns:         {decode:>12,.0f} spans/s  {decode / parse:.3f} x (a)")
        warmup = encode_payloads(warmup_spans, batch)
        rounds = sorted(end_to_end(payloads, warmup, n, n_traces, args.clients) for _ in range(args.rounds))
        e2e, median = rounds[-1], rounds[len(rounds) // 2]
        print(f"(c) end-to-end OTLP/HTTP, stored+readable: {e2e:>12,.0f} spans/s  {e2e / parse:.3f} x (a)  "
              f"(all {n} spans, {n_traces} traces read back; best of {args.rounds}; median {median / parse:.3f} x (a))")
        row = [batch, parse, decode, e2e]
        if not args.skip_store:
            decoded = [decode_proto(p, "traces") for p in payloads]
            seen, stored = store_alone(decoded, payloads, n, args.clients)
            print(f"(d) store alone, append until readable:    {seen:>12,.0f} spans/s  {seen / parse:.3f} x (a)")
            print(f"    ... until in DuckDB's tables:          {stored:>12,.0f} spans/s  {stored / parse:.3f} x (a)  "
                  "(sustained)")
            row += [seen, stored]
        rows.append(row)
    payloads = encode_payloads(spans, 8192)
    tables = [decode_proto(p, "traces").tables["spans"] for p in payloads]
    parse = rate(ExportTraceServiceRequest.FromString, payloads, n)
    decode_cpu = 1 / rate(lambda p: decode_proto(p, "traces"), payloads, n)  # one thread: its wall time is CPU time
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    print(f"\n(a) raw protobuf parse, again:              {parse:>12,.0f} spans/s; decoding {decode_cpu * 1e6:.2f} us "
          "CPU per span")
    bounds = []
    for label, kw in (("store schema, indexed", {"with_index": True}),
                      ("... without the trace-id index", {"with_index": False}),
                      ("binary ids, dictionary names, indexed", {"with_index": True, "lean": True})):
        speed, cpu = duckdb_ceiling(tables, **kw)
        bound = cpus / (cpu + decode_cpu)
        bounds.append((label, bound / parse))
        print(f"(e) one INSERT, {label}: {speed:,.0f} spans/s ({speed / parse:.3f} x (a)), {cpu * 1e6:.2f} us CPU "
              f"per span; bound with decoding on {cpus} cores: {bound:,.0f} spans/s = {bound / parse:.3f} x (a)")
    print("\nbatch   (c)/(a)   (b)/(a)" + ("   (d)/(a) readable   (d)/(a) in tables" if not args.skip_store else ""))
    for row in rows:
        print(f"{row[0]:>5}   {row[3] / row[1]:7.3f}   {row[2] / row[1]:7.3f}"
              + (f"   {row[4] / row[1]:16.3f}   {row[5] / row[1]:19.3f}" if len(row) > 4 else ""))
    print("bound (e) for any ingest storing spans as DuckDB rows: "
          + ", ".join(f"{ratio:.3f} x (a) ({label})" for label, ratio in bounds))


if __name__ == "__main__":
    main()
