"""OTLP/protobuf -> columnar Batch (the same columns as ``rca.ingest.otlp_json``).

Traces are read by compiled kernels (``rca.ingest.otlp_wire``) straight from the wire bytes into
Arrow buffers: ids as hex, names, attributes and events as JSON text, checks as bit masks. Python
adds what is per request rather than per span: the resources and scopes (few, cached by their
encoding), the text of doubles, the rare spans the kernels leave to it (key/value lists, nested
arrays, repeated fields inside one attribute), and the reasons for rejected spans. Logs and metrics
use the generated classes row by row: they are fewer and their cost is elsewhere (templating).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache

import numpy as np
import pyarrow as pa
from google.protobuf.message import DecodeError

from rca.errors import InvalidInput
from rca.ingest.batch import SCHEMAS, Batch, body_text, resource_identity, to_json

_SPANS = SCHEMAS["spans"]
# Bump when the rows a valid request decodes to change: the store's log keeps requests as received and
# decodes them again after a crash, which must give the rows that were acknowledged.
DECODER_VERSION = 1
_REASONS = ("traceId must be 16 bytes", "spanId must be 8 bytes", "parentSpanId must be empty or 8 bytes",
            "timestamp out of range", "span ends before it starts", "kind out of range 0..5",
            "status code out of range 0..2", "traceId/spanId is all zeros")  # bit k of otlp_wire's BAD


@lru_cache(maxsize=1)
def _lite_span():
    """Span's wire layout with attributes and events kept as raw bytes (each is parsed on its own, so
    protobuf's nesting limit counts from it), for the spans the kernels leave to Python."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fp = descriptor_pb2.FileDescriptorProto(name="rca_lite_span.proto", package="rca_lite", syntax="proto3")
    m = fp.message_type.add(name="Span")
    m.field.add(name="attributes", number=9, type=F.TYPE_BYTES, label=F.LABEL_REPEATED)
    m.field.add(name="events", number=11, type=F.TYPE_BYTES, label=F.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("rca_lite.Span"))


# ---------------------------------------------------------------- AnyValue
def any_value(v) -> object:
    """An OTLP AnyValue message -> a plain Python value (as the JSON decoder produces)."""
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return attributes(v.kvlist_value.values)
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which)


def attributes(kvs) -> dict:
    return {kv.key: any_value(kv.value) for kv in kvs}


@lru_cache(maxsize=4096)
def _resource(raw: bytes) -> tuple[str, str, str]:
    """A Resource's (JSON, service, pod), cached by its encoding (a process sends the same one)."""
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    attrs = attributes(Resource.FromString(raw).attributes) if raw else {}
    service, pod = resource_identity(attrs)
    return to_json(attrs), service, pod


@lru_cache(maxsize=4096)
def _scope_name(raw: bytes) -> str:
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope

    return InstrumentationScope.FromString(raw).name if raw else ""


def _events_json(raw_events: list) -> str:
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    out = []
    for raw in raw_events:
        e = Span.Event.FromString(raw)
        out.append({"time_ns": e.time_unix_nano, "name": e.name, "attributes": attributes(e.attributes)})
    return to_json(out)


def _attributes_json(raw_kvs: list) -> str:
    """Span attributes as one JSON object, one member per KeyValue as sent (repeated keys kept)."""
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    members = (to_json({kv.key: any_value(kv.value)})[1:-1] for kv in map(KeyValue.FromString, raw_kvs))
    return "{" + ",".join(members) + "}"


def _double_json(x: float) -> str:
    return json.dumps(x) if math.isfinite(x) else json.dumps(str(x))  # as to_json: non-finite -> "nan"


# ---------------------------------------------------------------- traces
def _malformed(what: str) -> InvalidInput:
    return InvalidInput(f"malformed OTLP/protobuf traces request: {what}")


def _texts(encoded: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 texts -> (bytes, int64 offsets), the layout the kernels read."""
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=offsets[1:])
    return np.frombuffer(b"".join(encoded), np.uint8).copy(), offsets


def _read(wire, body: bytes):
    """Run the kernels: count, fill; fill again with the doubles' texts when there are doubles."""
    b = np.frombuffer(body, np.uint8)
    n_res, n_scope, n, err, at = wire.count_request(b)
    if err:
        raise _malformed(f"{wire.ERRORS[err]} (byte {at})")
    none = np.zeros(0, np.uint8), np.zeros(1, np.int64)
    out = wire.fill_request(b, n_res, n_scope, n, *none, False)
    if not out[-2] and len(out[-3]):
        out = wire.fill_request(b, n_res, n_scope, n, *_texts([_double_json(x).encode() for x in
                                                              out[-3].view(np.float64).tolist()]), True)
    if out[-2]:
        raise _malformed(f"{wire.ERRORS[out[-2]]} (byte {out[-1]})")
    return out[:-3]


def _string_column(data, offsets: np.ndarray) -> pa.Array:
    return pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))


@lru_cache(maxsize=1024)
def _dictionaries(resources: tuple[bytes, ...], scopes: tuple[bytes, ...]) -> tuple[pa.Array, ...]:
    """A request's resources and scopes (as encoded) -> the dictionaries of the per-resource columns
    (``batch.PER_RESOURCE``): the resources' JSON, services and pods (one entry per resource), and the
    scopes' names (one per scope). Requests from one process repeat them."""
    try:
        res = [_resource(raw) for raw in resources]
        names = [_scope_name(raw) for raw in scopes]
    except DecodeError as exc:
        raise _malformed(f"resource or scope: {exc}") from exc
    return tuple(pa.array(texts, pa.string()) for texts in
                 ([r[0] for r in res], [r[1] for r in res], [r[2] for r in res], names))


def _repeated_columns(wire, body: bytes, res_rng, scope_rng, ints) -> list[pa.Array]:
    """resource, service, pod and scope, one per span: each span's resource (scope) index into the
    request's dictionary of them (scopes without spans are not read, as before)."""
    resources = tuple(body[lo:hi] if lo >= 0 else b"" for lo, hi in res_rng.tolist())
    scopes = tuple(body[lo:hi] if k and lo >= 0 else b"" for lo, hi, k in scope_rng.tolist())  # (b"": not read)
    res_json, service, pod, scope = _dictionaries(resources, scopes)
    by_resource, by_scope = pa.array(ints[wire.RESOURCE].astype(np.int32)), pa.array(ints[wire.SCOPE].astype(np.int32))
    return [pa.DictionaryArray.from_arrays(by_resource, d) for d in (res_json, service, pod)] + \
        [pa.DictionaryArray.from_arrays(by_scope, scope)]


def _int_column(values: np.ndarray, dtype) -> pa.Array:
    return pa.Array.from_buffers(dtype, len(values), [None, pa.py_buffer(values)])


def _render_in_python(wire, body: bytes, ints, offs, bufs) -> list[pa.Array]:
    """Attributes and events of the spans flagged SLOW, spliced into the kernels' columns."""
    rows = np.flatnonzero(ints[wire.SLOW])
    attrs, events = [], []
    try:
        for lo, hi in zip(ints[wire.SPAN_LO, rows].tolist(), ints[wire.SPAN_HI, rows].tolist()):
            span = _lite_span().FromString(body[lo:hi])
            attrs.append(_attributes_json(span.attributes))
            events.append(_events_json(span.events) if span.events else "[]")
    except DecodeError as exc:
        raise _malformed(f"span attributes or events: {exc}") from exc
    columns = []
    for row, texts in ((wire.ATTRIBUTES, attrs), (wire.EVENTS, events)):
        data, offsets = wire.splice_texts(bufs[row], offs[row], rows, *_texts([t.encode() for t in texts]))
        if not len(offsets):
            raise _malformed(wire.ERRORS[wire.E_TOO_LARGE])
        columns.append(_string_column(data, offsets))
    return columns


def decode_traces(body: bytes) -> Batch:
    from rca.ingest import otlp_wire as wire

    body = bytes(body)
    ints, offs, bufs, res_rng, scope_rng = _read(wire, body)
    n = ints.shape[1]
    strings = [_string_column(bufs[k], offs[k]) for k in range(7)]
    if ints[wire.SLOW].any():
        strings[wire.ATTRIBUTES], strings[wire.EVENTS] = _render_in_python(wire, body, ints, offs, bufs)
    res_json, service, pod, scope = _repeated_columns(wire, body, res_rng, scope_rng, ints)
    i8, i64 = pa.int8(), pa.int64()
    table = pa.Table.from_arrays([  # the order of SCHEMAS["spans"]
        strings[wire.TRACE_ID], strings[wire.SPAN_ID], strings[wire.PARENT_ID], service, pod, strings[wire.NAME],
        _int_column(ints[wire.KIND].astype(np.int8), i8), _int_column(ints[wire.START], i64),
        _int_column(ints[wire.END], i64), _int_column(ints[wire.DURATION], i64),
        _int_column(ints[wire.CODE].astype(np.int8), i8), strings[wire.STATUS_MESSAGE], strings[wire.ATTRIBUTES],
        strings[wire.EVENTS], res_json, scope,
    ], schema=_SPANS)
    batch = Batch()
    bad = ints[wire.BAD]
    if n and bad.any():
        ok = bad == 0
        for bit, reason in enumerate(_REASONS):
            idx = np.flatnonzero(bad & (1 << bit))
            if len(idx):
                sid = strings[wire.SPAN_ID][int(idx[0])].as_py()
                batch.reject("spans", f"span {sid or '?'}: {reason} ({len(idx)} spans)", 0)
        batch.rejected["spans"] += int(n - ok.sum())
        table = table.filter(pa.array(ok))
    batch.tables["spans"] = table
    return batch


# ---------------------------------------------------------------- logs
def _hex_or_empty(raw: bytes, n_bytes: int, what: str) -> str:
    if not raw or raw == bytes(n_bytes):
        return ""
    if len(raw) != n_bytes:
        raise ValueError(f"{what} must be {n_bytes} bytes, got {len(raw)}")
    return raw.hex()


def _body_text(v) -> str:
    return body_text(any_value(v))


def decode_logs(body: bytes) -> Batch:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    try:
        req = ExportLogsServiceRequest.FromString(body)
    except DecodeError as exc:
        raise InvalidInput(f"malformed OTLP/protobuf logs request: {exc}") from exc
    batch = Batch()
    cols: dict[str, list] = {f.name: [] for f in SCHEMAS["logs"] if f.name != "template_id"}
    for rl in req.resource_logs:
        res = attributes(rl.resource.attributes)
        service, pod = resource_identity(res)
        res_json = to_json(res)
        for sl in rl.scope_logs:
            scope = sl.scope.name
            for lr in sl.log_records:
                try:
                    tid = _hex_or_empty(lr.trace_id, 16, "traceId")
                    sid = _hex_or_empty(lr.span_id, 8, "spanId")
                    t, obs = lr.time_unix_nano, lr.observed_time_unix_nano
                    if max(t, obs) > 2**63 - 1:
                        raise ValueError("timestamp out of range")
                    sev = lr.severity_number
                    if not 0 <= sev <= 24:
                        raise ValueError(f"severityNumber {sev} out of range")
                    row = (t or obs, obs or t, tid, sid, service, pod, sev, lr.severity_text,
                           _body_text(lr.body), to_json(attributes(lr.attributes)), res_json, scope)
                except ValueError as exc:
                    batch.reject("logs", f"log record: {exc}")
                    continue
                for col, value in zip(cols.values(), row):
                    col.append(value)
    batch.tables["logs"] = Batch.table_from_columns("logs", cols)
    return batch


# ---------------------------------------------------------------- metrics
def decode_metrics(body: bytes) -> Batch:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    try:
        req = ExportMetricsServiceRequest.FromString(body)
    except DecodeError as exc:
        raise InvalidInput(f"malformed OTLP/protobuf metrics request: {exc}") from exc
    batch = Batch()
    cols: dict[str, list] = {f.name: [] for f in SCHEMAS["metrics"]}
    json_type = {"exponential_histogram": "exponentialHistogram"}
    for rm in req.resource_metrics:
        res = attributes(rm.resource.attributes)
        service, pod = resource_identity(res)
        res_json = to_json(res)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                mtype = m.WhichOneof("data")
                if mtype is None:
                    batch.reject("metrics", f"metric {m.name!r}: no data")
                    continue
                for dp in getattr(m, mtype).data_points:
                    try:
                        if dp.time_unix_nano > 2**63 - 1:
                            raise ValueError("timestamp out of range")
                        if mtype in ("gauge", "sum"):
                            value = float(dp.as_int) if dp.WhichOneof("value") == "as_int" else dp.as_double
                        else:
                            value = dp.sum / dp.count if dp.count else float("nan")
                        attrs = to_json(attributes(dp.attributes))
                    except ValueError as exc:
                        batch.reject("metrics", f"data point of {m.name!r}: {exc}")
                        continue
                    row = (dp.time_unix_nano, service, pod, m.name, m.unit, json_type.get(mtype, mtype), value,
                           attrs, res_json)
                    for col, v in zip(cols.values(), row):
                        col.append(v)
    batch.tables["metrics"] = Batch.table_from_columns("metrics", cols)
    return batch


DECODERS = {"traces": decode_traces, "logs": decode_logs, "metrics": decode_metrics}


def decode_proto(body: bytes, signal: str) -> Batch:
    """Decode one OTLP/protobuf Export{Trace,Logs,Metrics}ServiceRequest."""
    if signal not in DECODERS:
        raise InvalidInput(f"unknown signal {signal!r}; expected traces, logs or metrics")
    return DECODERS[signal](body)
