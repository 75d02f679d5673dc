"""OTLP/protobuf -> columnar Batch (the same columns as ``rca.ingest.otlp_json``).

Traces take a columnar fast path: the request is parsed with a *lite* message
type (``LiteTraceRequest`` below) that has the exact wire layout of OTLP but
keeps each span's attributes, events and status as raw bytes. Every column is
then one list comprehension, ids are hex-encoded in bulk, attribute key/value
pairs are converted to JSON once per distinct encoding (SDK spans repeat most
of them), and validation (id lengths, end before start) is done with numpy
over whole columns. Logs and metrics use the generated classes row by row:
they are fewer and their cost is elsewhere (templating).
"""

from __future__ import annotations

from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf.message import DecodeError

from rca.errors import InvalidInput
from rca.ingest.batch import SCHEMAS, Batch, body_text, resource_identity, to_json

_I64_MAX = np.uint64(2**63 - 1)
_ZERO_PARENT = bytes(8)


def _lite_trace_request():
    """ExportTraceServiceRequest's wire layout, with Span.attributes/events/status and the resource and
    scope left as raw bytes (parsed only where present; attribute pairs are cached by their encoding)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    one, many = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    messages = {
        "Request": [("resource_spans", 1, F.TYPE_MESSAGE, many, ".rca_lite.ResourceSpans")],
        "ResourceSpans": [("resource", 1, F.TYPE_BYTES, one, ""),
                          ("scope_spans", 2, F.TYPE_MESSAGE, many, ".rca_lite.ScopeSpans")],
        "ScopeSpans": [("scope", 1, F.TYPE_BYTES, one, ""), ("spans", 2, F.TYPE_MESSAGE, many, ".rca_lite.Span")],
        "Span": [("trace_id", 1, F.TYPE_BYTES, one, ""), ("span_id", 2, F.TYPE_BYTES, one, ""),
                 ("parent_span_id", 4, F.TYPE_BYTES, one, ""), ("name", 5, F.TYPE_STRING, one, ""),
                 ("kind", 6, F.TYPE_INT32, one, ""), ("start_time_unix_nano", 7, F.TYPE_FIXED64, one, ""),
                 ("end_time_unix_nano", 8, F.TYPE_FIXED64, one, ""), ("attributes", 9, F.TYPE_BYTES, many, ""),
                 ("events", 11, F.TYPE_BYTES, many, ""), ("status", 15, F.TYPE_BYTES, one, "")],
    }
    fp = descriptor_pb2.FileDescriptorProto(name="rca_lite_trace.proto", package="rca_lite", syntax="proto3")
    for msg_name, fields in messages.items():
        m = fp.message_type.add(name=msg_name)
        for name, number, typ, label, type_name in fields:
            f = m.field.add(name=name, number=number, type=typ, label=label)
            if type_name:
                f.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("rca_lite.Request"))


LiteTraceRequest = _lite_trace_request()


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


class _Fragments(dict):
    """Serialized KeyValue bytes -> index of its JSON member text (``"key":value``) in ``texts``.

    Each distinct encoding is converted once; SDK spans repeat most of their attribute pairs.
    """

    def __init__(self, max_size: int = 200_000):
        super().__init__()
        self.texts: list[str] = []
        self.max_size = max_size
        self.generation = 0

    def __missing__(self, raw: bytes) -> int:
        from opentelemetry.proto.common.v1.common_pb2 import KeyValue

        if len(self.texts) >= self.max_size:  # bound the memory of long-running servers
            self.clear()
            self.texts = []
            self.generation += 1
        kv = KeyValue.FromString(raw)
        self.texts.append(to_json({kv.key: any_value(kv.value)})[1:-1])
        self[raw] = i = len(self.texts) - 1
        return i


_FRAGMENTS = _Fragments()


def _attributes_json(per_span: list) -> pa.Array:
    """Per-span lists of serialized KeyValues -> JSON object texts, joined in Arrow (no per-span Python)."""
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    counts = np.fromiter(map(len, per_span), np.int64, len(per_span))
    flat = list(chain.from_iterable(per_span))
    generation = _FRAGMENTS.generation
    ids = np.fromiter(map(_FRAGMENTS.__getitem__, flat), np.int64, len(flat))
    texts = _FRAGMENTS.texts  # a clear() swaps in a new list, so this one stays valid
    if _FRAGMENTS.generation != generation:  # the cache filled up mid-request: convert without it
        return pa.array([to_json(attributes(KeyValue.FromString(raw) for raw in kvs)) for kvs in per_span])
    uniq, inverse = np.unique(ids, return_inverse=True)
    members = pa.array([texts[i] for i in uniq], pa.string()).take(pa.array(inverse.astype(np.int64)))
    offsets = np.zeros(len(per_span) + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), members), ",")
    return pc.binary_join_element_wise("{", joined, "}", "")


def _resource(raw: bytes) -> tuple[str, str, str]:
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    attrs = attributes(Resource.FromString(raw).attributes) if raw else {}
    service, pod = resource_identity(attrs)
    return to_json(attrs), service, pod


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


def _statuses(raw: list[bytes]) -> tuple[list[int], list[str]]:
    if not any(raw):
        return [0] * len(raw), [""] * len(raw)
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    parsed = {b: Status.FromString(b) for b in set(raw)}
    return [parsed[b].code for b in raw], [parsed[b].message for b in raw]


def _hex_column(ids: list[bytes]) -> tuple[pa.Array, np.ndarray]:
    """Byte ids -> lowercase hex strings in one pass (one join, one hex, no per-id objects)."""
    lens = np.fromiter(map(len, ids), np.int64, len(ids))
    offsets = np.zeros(len(ids) + 1, np.int32)
    np.cumsum(lens * 2, out=offsets[1:])
    data = b"".join(ids).hex().encode("ascii")
    return pa.StringArray.from_buffers(len(ids), pa.py_buffer(offsets), pa.py_buffer(data)), lens


# ---------------------------------------------------------------- traces
def decode_traces(body: bytes) -> Batch:
    try:
        req = LiteTraceRequest.FromString(body)
    except DecodeError as exc:
        raise InvalidInput(f"malformed OTLP/protobuf traces request: {exc}") from exc
    tid, sid, pid, name, kind, start, end = [], [], [], [], [], [], []
    attrs, events, status, service, pod, resource, scope = [], [], [], [], [], [], []
    for rs in req.resource_spans:
        res_json, svc, pd = _resource(rs.resource)
        for ss in rs.scope_spans:
            sp = list(ss.spans)
            n = len(sp)
            if not n:
                continue
            tid += [s.trace_id for s in sp]
            sid += [s.span_id for s in sp]
            pid += [s.parent_span_id for s in sp]
            name += [s.name for s in sp]
            kind += [s.kind for s in sp]
            start += [s.start_time_unix_nano for s in sp]
            end += [s.end_time_unix_nano for s in sp]
            attrs += [s.attributes for s in sp]
            events += [s.events for s in sp]
            status += [s.status for s in sp]
            service += [svc] * n
            pod += [pd] * n
            resource += [res_json] * n
            scope += [_scope_name(ss.scope)] * n
    return _span_batch(tid, sid, pid, name, kind, start, end, attrs, events, status, service, pod, resource, scope)


def _span_batch(tid, sid, pid, name, kind, start, end, attrs, events, status, service, pod, resource, scope) -> Batch:
    batch = Batch()
    n = len(tid)
    if _ZERO_PARENT in pid:
        pid = [b"" if p == _ZERO_PARENT else p for p in pid]
    tid_arr, tid_len = _hex_column(tid)
    sid_arr, sid_len = _hex_column(sid)
    pid_arr, pid_len = _hex_column(pid)
    start_u = np.array(start, np.uint64)
    end_u = np.array(end, np.uint64)
    kind_a = np.array(kind, np.int64)
    codes, messages = _statuses(status)
    code_a = np.array(codes, np.int64)
    checks = [
        (tid_len != 16, "traceId must be 16 bytes"),
        (sid_len != 8, "spanId must be 8 bytes"),
        ((pid_len != 0) & (pid_len != 8), "parentSpanId must be empty or 8 bytes"),
        ((start_u > _I64_MAX) | (end_u > _I64_MAX), "timestamp out of range"),
        (end_u < start_u, "span ends before it starts"),
        ((kind_a < 0) | (kind_a > 5), "kind out of range 0..5"),
        ((code_a < 0) | (code_a > 2), "status code out of range 0..2"),
    ]
    if bytes(16) in tid or bytes(8) in sid:  # all-zero ids are as invalid as missing ones
        checks.append((np.array([t == bytes(16) or s == bytes(8) for t, s in zip(tid, sid)], bool),
                       "traceId/spanId is all zeros"))
    bad = np.zeros(n, bool)
    for mask, _ in checks:
        bad |= mask
    n_bad = int(bad.sum())
    if n_bad:
        for mask, reason in checks:
            idx = np.flatnonzero(mask)
            if len(idx):
                i = int(idx[0])
                batch.reject("spans", f"span {sid[i].hex() or '?'}: {reason} ({len(idx)} spans)", 0)
        batch.rejected["spans"] += n_bad
    start_i = start_u.astype(np.int64)
    end_i = end_u.astype(np.int64)
    ev_json = ["[]" if not e else _events_json(e) for e in events] if any(events) else ["[]"] * n
    cols = {
        "trace_id": tid_arr, "span_id": sid_arr, "parent_span_id": pid_arr,
        "service": pa.array(service, pa.string()), "pod": pa.array(pod, pa.string()),
        "name": pa.array(name, pa.string()), "kind": pa.array(np.where(bad, 0, kind_a).astype(np.int8)),
        "start_ns": pa.array(start_i), "end_ns": pa.array(end_i), "duration_ns": pa.array(end_i - start_i),
        "status_code": pa.array(np.where(bad, 0, code_a).astype(np.int8)),
        "status_message": pa.array(messages, pa.string()),
        "attributes": pa.array(_attributes_json(attrs), pa.string()),
        "events": pa.array(ev_json, pa.string()),
        "resource": pa.array(resource, pa.string()), "scope": pa.array(scope, pa.string()),
    }
    schema = SCHEMAS["spans"]
    table = pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)
    if n_bad:
        table = table.filter(pa.array(~bad))
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
