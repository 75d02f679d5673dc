"""Emission through the real OpenTelemetry SDK.

One TracerProvider and one LoggerProvider per pod (the SDK ties a resource to a provider).
Spans get explicit start/end times; their ids come from the simulation's seeded id stream
through :class:`ReplayIdGenerator`. Either to an OTLP/HTTP endpoint (protobuf exporters) or,
with ``out_dir``, to in-memory exporters whose spans/logs are encoded with the OTLP proto
encoders and written as OTLP/JSON lines.

Metrics: the SDK's metric reader stamps points with the current time, so simulated gauges are
built as ``ExportMetricsServiceRequest`` protobufs directly (endpoint) or by the direct JSON
encoder (files).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

import rca
from rca.simulate.otlp_files import SCOPE_NAME, JsonFileSink, resource_attributes

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class ReplayIdGenerator(IdGenerator):
    """Hands the SDK the ids the seeded simulation chose (set before each ``start_span``)."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


def _ctx(tid: str, sid: str, remote: bool) -> Context:
    return trace.set_span_in_context(NonRecordingSpan(SpanContext(int(tid, 16), int(sid, 16), is_remote=remote,
                                                                  trace_flags=_SAMPLED)), Context())


def _hex_ids(obj) -> None:
    """OTLP/JSON uses hex ids where proto3 JSON would use base64."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                obj[k] = base64.b64decode(v).hex()
            else:
                _hex_ids(v)
    elif isinstance(obj, list):
        for x in obj:
            _hex_ids(x)


def to_otlp_json(message) -> str:
    from google.protobuf.json_format import MessageToDict

    doc = MessageToDict(message, use_integers_for_enums=True)
    _hex_ids(doc)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


class SdkSink:
    """Feeds engine records through per-pod SDK providers."""

    def __init__(self, engine, endpoint: str | None = None, out_dir: Path | None = None, compresslevel: int = 6,
                 max_items: int = 2000):
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.max_items = max_items
        self.ids = ReplayIdGenerator()
        self.tracers, self.loggers, self.providers = [], [], []
        if self.endpoint:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self.span_exp = OTLPSpanExporter(endpoint=f"{self.endpoint}/v1/traces")
            self.log_exp = OTLPLogExporter(endpoint=f"{self.endpoint}/v1/logs")
            span_proc = BatchSpanProcessor(self.span_exp, max_queue_size=200_000, max_export_batch_size=1000)
            log_proc = BatchLogRecordProcessor(self.log_exp, max_queue_size=200_000, max_export_batch_size=1000)
            self.files = None
        else:
            from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

            self.span_exp, self.log_exp = InMemorySpanExporter(), InMemoryLogRecordExporter()
            span_proc, log_proc = SimpleSpanProcessor(self.span_exp), SimpleLogRecordProcessor(self.log_exp)
            self.files = JsonFileSink(out_dir, engine, max_items=max_items, compresslevel=compresslevel)
            self.span_buf: list = []
            self.log_buf: list = []
        for pod in engine.pods:
            res = Resource(resource_attributes(engine, pod))
            tp = TracerProvider(resource=res, id_generator=self.ids, shutdown_on_exit=False)
            tp.add_span_processor(span_proc)
            lp = LoggerProvider(resource=res, shutdown_on_exit=False)
            lp.add_log_record_processor(log_proc)
            self.providers += [tp, lp]
            self.tracers.append(tp.get_tracer(SCOPE_NAME, rca.__version__))
            self.loggers.append(lp.get_logger(SCOPE_NAME, rca.__version__))
        self.span_proc, self.log_proc = span_proc, log_proc
        self.engine = engine

    def write_spans(self, rows: list[tuple], engine=None) -> None:
        ids = self.ids
        for start, end, tid, sid, pid, pod, name, kind, code, msg, attrs, events in rows:
            ids.trace_id, ids.span_id = int(tid, 16), int(sid, 16)
            ctx = _ctx(tid, pid, kind == 2) if pid else Context()
            span = self.tracers[pod].start_span(name, context=ctx, kind=SpanKind(kind - 1),
                                                attributes=dict(attrs) if attrs else None, start_time=start)
            for t, ev_name, ev_attrs in events:
                span.add_event(ev_name, dict(ev_attrs), timestamp=t)
            if code:
                span.set_status(Status(StatusCode.ERROR, msg))
            span.end(end_time=end)
        if self.files is not None:
            self._drain("traces")

    def write_logs(self, rows: list[tuple], engine=None) -> None:
        from opentelemetry._logs import SeverityNumber

        for t, pod, tid, sid, sev, text, body, attrs in rows:
            self.loggers[pod].emit(timestamp=t, observed_timestamp=t, context=_ctx(tid, sid, False) if tid else Context(),
                                   severity_number=SeverityNumber(sev), severity_text=text, body=body,
                                   attributes=dict(attrs) if attrs else None)
        if self.files is not None:
            self._drain("logs")

    def _drain(self, signal: str, final: bool = False) -> None:
        from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        if signal == "traces":
            buf, encode = self.span_buf, encode_spans
            buf.extend(self.span_exp.get_finished_spans())
            self.span_exp.clear()
        else:
            buf, encode = self.log_buf, encode_logs
            buf.extend(self.log_exp.get_finished_logs())
            self.log_exp.clear()
        w = self.files.writers[signal]
        while len(buf) >= self.max_items or (final and buf):
            chunk = buf[: self.max_items]
            del buf[: self.max_items]
            w.gz.write((to_otlp_json(encode(chunk)) + "\n").encode())
            w.n_lines += 1
            w.n_items += len(chunk)

    def write_metrics(self, points: list[tuple], engine) -> None:
        if self.files is not None:
            self.files.write_metrics(points, engine)
            return
        import httpx
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
        from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
        from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, \
            ScopeMetrics
        from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource

        scope = InstrumentationScope(name=SCOPE_NAME, version=rca.__version__)
        with httpx.Client(timeout=30) as client:
            for i in range(0, len(points), self.max_items):
                by_pod: dict[int, list] = {}
                for t, pod, name, unit, value in points[i:i + self.max_items]:
                    by_pod.setdefault(pod, []).append(Metric(name=name, unit=unit, gauge=Gauge(
                        data_points=[NumberDataPoint(time_unix_nano=t, as_double=value)])))
                req = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
                    resource=PbResource(attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in
                                                    resource_attributes(engine, engine.pods[pod]).items()]),
                    scope_metrics=[ScopeMetrics(scope=scope, metrics=ms)]) for pod, ms in by_pod.items()])
                resp = client.post(f"{self.endpoint}/v1/metrics", content=req.SerializeToString(),
                                   headers={"Content-Type": "application/x-protobuf"})
                resp.raise_for_status()

    def close(self) -> dict[str, dict[str, int]]:
        self.span_proc.force_flush()
        self.log_proc.force_flush()
        if self.files is not None:
            self._drain("traces", final=True)
            self._drain("logs", final=True)
            counts = self.files.close()
        else:
            counts = {}
        for p in self.providers:
            p.shutdown()
        return counts

    def abort(self) -> None:
        if self.files is not None:
            self.files.abort()
        for p in self.providers:
            p.shutdown()
