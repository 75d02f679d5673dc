"""Jaeger JSON (the query service's ``/api/traces`` export, or the UI's "Download JSON") -> Batch.

``{"data": [{"traceID", "spans": [...], "processes": {"p1": {"serviceName", "tags"}}}]}``:
ids are hex (trace ids padded to 32), times and durations are microseconds,
the CHILD_OF reference is the parent, tags become attributes (``error=true``
-> status 2, ``span.kind`` -> kind) and logs become span events.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rca.errors import InvalidInput
from rca.ingest.batch import Batch, resource_identity, to_json

_HEX = re.compile(r"[0-9a-fA-F]{1,32}\Z")
_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}


def _id(v: Any, n_hex: int, what: str) -> str:
    if not isinstance(v, str) or not _HEX.match(v) or len(v) > n_hex:
        raise ValueError(f"{what} must be up to {n_hex} hex characters, got {v!r}")
    v = v.lower().rjust(n_hex, "0")
    if v == "0" * n_hex:
        raise ValueError(f"{what} is all zeros")
    return v


def _tags(tags: list | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for t in tags or []:
        value = t.get("value")
        if t.get("type") == "int64" and isinstance(value, str):
            value = int(value)
        elif t.get("type") == "float64" and isinstance(value, str):
            value = float(value)
        elif t.get("type") == "bool" and isinstance(value, str):
            value = value.lower() == "true"
        out[str(t["key"])] = value
    return out


def _us(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"{what} must be a number of microseconds, got {v!r}")
    return int(v) * 1000


def _parent(span: dict, trace_id: str) -> str:
    refs = span.get("references") or []
    for kind in ("CHILD_OF", "FOLLOWS_FROM"):
        for ref in refs:
            if ref.get("refType", "CHILD_OF") == kind and ref.get("spanID"):
                if ref.get("traceID") and _id(ref["traceID"], 32, "reference traceID") != trace_id:
                    continue  # a link into another trace is not a parent
                return _id(ref["spanID"], 16, "reference spanID")
    if span.get("parentSpanID"):
        return _id(span["parentSpanID"], 16, "parentSpanID")
    return ""


def _status(attrs: dict) -> tuple[int, str]:
    err = attrs.get("error")
    code = str(attrs.get("otel.status_code", "")).upper()
    if err is True or (isinstance(err, str) and err.lower() == "true") or code == "ERROR":
        return 2, str(attrs.get("otel.status_description", "") or "")
    return (1, "") if code == "OK" else (0, "")


def _traces_of(doc: Any) -> list:
    if isinstance(doc, dict) and "data" in doc:
        doc = doc["data"]
    if isinstance(doc, dict) and "spans" in doc:
        doc = [doc]
    if not isinstance(doc, list):
        raise InvalidInput("not a Jaeger export: expected {\"data\": [traces]} or a list of traces")
    return doc


def decode_jaeger(data: bytes | str | dict | list) -> Batch:
    """Decode a Jaeger JSON export; individually invalid spans are counted in ``batch.rejected``."""
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"malformed Jaeger JSON: {exc}") from exc
    batch = Batch()
    cols: dict[str, list] = {c: [] for c in ("trace_id", "span_id", "parent_span_id", "service", "pod", "name",
                                               "kind", "start_ns", "end_ns", "duration_ns", "status_code",
                                               "status_message", "attributes", "events", "resource", "scope")}
    for tr in _traces_of(data):
        if not isinstance(tr, dict):
            raise InvalidInput("not a Jaeger export: each trace must be an object with spans and processes")
        processes = {}
        for pid, proc in (tr.get("processes") or {}).items():
            res = {"service.name": proc.get("serviceName") or "unknown_service", **_tags(proc.get("tags"))}
            service, pod = resource_identity(res)
            processes[pid] = (service, pod or str(res.get("hostname", "")), to_json(res))
        for sp in tr.get("spans") or []:
            try:
                tid = _id(sp.get("traceID", tr.get("traceID")), 32, "traceID")
                sid = _id(sp.get("spanID"), 16, "spanID")
                start = _us(sp.get("startTime"), "startTime")
                duration = _us(sp.get("duration", 0), "duration")
                if duration < 0:
                    raise ValueError(f"span {sid} has a negative duration")
                attrs = _tags(sp.get("tags"))
                code, message = _status(attrs)
                events = [{"time_ns": _us(lg.get("timestamp"), "log timestamp"),
                           "name": str(f.get("event", "log")) if (f := _tags(lg.get("fields"))) else "log",
                           "attributes": {k: v for k, v in f.items() if k != "event"}}
                          for lg in sp.get("logs") or []]
                proc = sp.get("process")
                if proc is not None:
                    res = {"service.name": proc.get("serviceName") or "unknown_service", **_tags(proc.get("tags"))}
                    service, pod = resource_identity(res)
                    proc_row = (service, pod, to_json(res))
                else:
                    proc_row = processes.get(sp.get("processID"), ("unknown_service", "", "{}"))
                row = (tid, sid, _parent(sp, tid), proc_row[0], proc_row[1], str(sp.get("operationName", "")),
                       _KINDS.get(str(attrs.get("span.kind", "")).lower(), 0), start, start + duration, duration,
                       code, message, to_json(attrs), to_json(events), proc_row[2],
                       str(attrs.get("otel.library.name", attrs.get("otel.scope.name", "")) or ""))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                batch.reject("spans", f"span: {exc}")
                continue
            for col, v in zip(cols.values(), row):
                col.append(v)
    batch.tables["spans"] = Batch.table_from_columns("spans", cols)
    return batch
