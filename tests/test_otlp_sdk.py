"""The real OpenTelemetry SDK exporters (OTLP/HTTP protobuf) against a real server, read back by id."""

from __future__ import annotations

import httpx
import pytest



def _provider(service: str, exporter, memory):
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service, "k8s.pod.name": f"{service}-0"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider


@pytest.fixture
def sdk_traces(live_server):
    """Two services' spans exported through OTLPSpanExporter; returns (server, finished ReadableSpans)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

    memory = InMemorySpanExporter()
    front = _provider("frontend", OTLPSpanExporter(endpoint=f"{live_server.url}/v1/traces", timeout=10), memory)
    cart = _provider("cart", OTLPSpanExporter(endpoint=f"{live_server.url}/v1/traces", timeout=10), memory)
    tf, tc = front.get_tracer("shop.frontend", "1.2"), cart.get_tracer("shop.cart")
    with tf.start_as_current_span("GET /cart", kind=SpanKind.SERVER,
                                  attributes={"http.method": "GET", "http.status_code": 500, "ratio": 0.25,
                                              "cached": False, "tags": ["a", "b"], "ids": [1, 2]}) as root:
        with tc.start_as_current_span("cart.Get", kind=SpanKind.CLIENT, context=set_span_in_context(root),
                                      attributes={"rpc.system": "grpc"}) as child:
            child.add_event("retry", {"attempt": 2})
            child.set_status(Status(StatusCode.ERROR, "deadline exceeded"))
        root.set_status(Status(StatusCode.ERROR))
    with tf.start_as_current_span("GET /health", kind=SpanKind.SERVER) as ok:
        ok.set_status(Status(StatusCode.OK))
    front.shutdown()
    cart.shutdown()
    return live_server, memory.get_finished_spans()


def test_sdk_spans_read_back_field_by_field(sdk_traces):
    server, finished = sdk_traces
    assert len(finished) == 3
    for sdk_span in finished:
        tid = format(sdk_span.context.trace_id, "032x")
        r = httpx.get(f"{server.url}/api/v1/traces/{tid}")
        assert r.status_code == 200, r.text
        stored = {s["span_id"]: s for s in r.json()["spans"]}
        got = stored[format(sdk_span.context.span_id, "016x")]
        assert got["trace_id"] == tid
        assert got["parent_span_id"] == (format(sdk_span.parent.span_id, "016x") if sdk_span.parent else "")
        assert got["name"] == sdk_span.name
        assert got["kind"] == sdk_span.kind.value + 1  # SDK SpanKind.INTERNAL=0 is OTLP SPAN_KIND_INTERNAL=1
        assert got["start_ns"] == sdk_span.start_time and got["end_ns"] == sdk_span.end_time
        assert got["duration_ns"] == sdk_span.end_time - sdk_span.start_time
        assert got["status_code"] == sdk_span.status.status_code.value
        assert got["status_message"] == (sdk_span.status.description or "")
        assert got["attributes"] == {k: list(v) if isinstance(v, tuple) else v
                                     for k, v in sdk_span.attributes.items()}
        assert got["service"] == sdk_span.resource.attributes["service.name"]
        assert got["resource"]["service.name"] == got["service"]
        assert got["pod"] == f"{got['service']}-0"
        assert got["scope"] == sdk_span.instrumentation_scope.name
        assert [(e["name"], e["time_ns"], e["attributes"]) for e in got["events"]] == \
            [(e.name, e.timestamp, dict(e.attributes)) for e in sdk_span.events]


def test_sdk_trace_self_time_and_listing(sdk_traces):
    server, finished = sdk_traces
    root = next(s for s in finished if s.name == "GET /cart")
    child = next(s for s in finished if s.name == "cart.Get")
    doc = httpx.get(f"{server.url}/api/v1/traces/{format(root.context.trace_id, '032x')}").json()
    by_name = {s["name"]: s for s in doc["spans"]}
    assert by_name["GET /cart"]["self_time_ns"] == (root.end_time - root.start_time) - (child.end_time - child.start_time)
    assert by_name["cart.Get"]["self_time_ns"] == child.end_time - child.start_time
    assert doc["error"] is True and doc["services"] == ["cart", "frontend"]
    listed = httpx.get(f"{server.url}/api/v1/traces", params={"service": "cart"}).json()["traces"]
    assert [t["trace_id"] for t in listed] == [doc["trace_id"]]
    assert listed[0]["root_operation"] == "GET /cart" and listed[0]["n_spans"] == 2 and listed[0]["error"] is True
    services = {s["service"]: s for s in httpx.get(f"{server.url}/api/v1/services").json()["services"]}
    assert services["frontend"]["n_spans"] == 2 and services["cart"]["n_spans"] == 1


def test_sdk_logs_are_linked_to_their_spans(live_server):
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    resource = Resource.create({"service.name": "checkout"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{live_server.url}/v1/traces")))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{live_server.url}/v1/logs")))
    logger = logger_provider.get_logger("checkout.orders")
    try:
        with tracer_provider.get_tracer("checkout").start_as_current_span("PlaceOrder") as span:
            logger.emit(body="order o-17 placed", severity_number=SeverityNumber.INFO, severity_text="INFO",
                        attributes={"order.id": "o-17"})
            logger.emit(body="payment declined for order o-17", severity_number=SeverityNumber.ERROR,
                        severity_text="ERROR")
        logger_provider.force_flush()
    finally:
        logger_provider.shutdown()
        tracer_provider.shutdown()
    tid, sid = format(span.get_span_context().trace_id, "032x"), format(span.get_span_context().span_id, "016x")
    doc = httpx.get(f"{live_server.url}/api/v1/traces/{tid}").json()
    assert [s["span_id"] for s in doc["spans"]] == [sid]
    logs = doc["logs"]
    assert [r["body"] for r in logs] == ["order o-17 placed", "payment declined for order o-17"]
    assert all(r["trace_id"] == tid and r["span_id"] == sid and r["service"] == "checkout" for r in logs)
    assert [r["severity_number"] for r in logs] == [9, 17]
    assert [r["severity_text"] for r in logs] == ["INFO", "ERROR"]
    assert logs[0]["attributes"] == {"order.id": "o-17"}
    assert all(isinstance(r["template_id"], int) for r in logs)
