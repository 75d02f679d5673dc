"""OTLP/JSON -> columnar Batch, without protobuf's json_format.

Done by hand because OTLP/JSON differs from proto3 JSON: trace/span ids are
hex strings (json_format would decode them as base64 into wrong bytes).
64-bit integers may come as strings, enums as integers or names, unknown
fields are ignored; lowerCamelCase and snake_case keys are both accepted.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from rca.errors import InvalidInput
from rca.ingest.batch import Batch, body_text, resource_identity, to_json

_HEX = re.compile(r"[0-9a-fA-F]*\Z")
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_ZERO_TRACE = "0" * 32


def _g(d: dict, camel: str, snake: str, default=None):
    v = d.get(camel)
    if v is None:
        v = d.get(snake, default)
    return v


def _int(v, default: int = 0) -> int:
    if v is None or v == "":
        return default
    if isinstance(v, bool):
        raise ValueError("boolean where an integer was expected")
    if isinstance(v, (int,)):
        return v
    if isinstance(v, float):
        if v != int(v):
            raise ValueError(f"non-integer value {v}")
        return int(v)
    return int(str(v))


def _float(v) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        return float(v)  # "NaN", "Infinity", "-Infinity", "1.5"
    raise ValueError(f"not a number: {v!r}")


def any_value(v: Any) -> Any:
    """An OTLP/JSON AnyValue -> a plain Python value."""
    if not isinstance(v, dict):
        return v
    if "stringValue" in v or "string_value" in v:
        return _g(v, "stringValue", "string_value")
    if "intValue" in v or "int_value" in v:
        return _int(_g(v, "intValue", "int_value"))
    if "doubleValue" in v or "double_value" in v:
        return _float(_g(v, "doubleValue", "double_value"))
    if "boolValue" in v or "bool_value" in v:
        return bool(_g(v, "boolValue", "bool_value"))
    if "arrayValue" in v or "array_value" in v:
        arr = _g(v, "arrayValue", "array_value") or {}
        return [any_value(x) for x in arr.get("values", [])]
    if "kvlistValue" in v or "kvlist_value" in v:
        kv = _g(v, "kvlistValue", "kvlist_value") or {}
        return attributes(kv.get("values", []))
    if "bytesValue" in v or "bytes_value" in v:
        return base64.b64decode(_g(v, "bytesValue", "bytes_value")).hex()
    return None


def attributes(kvs: list | None) -> dict[str, Any]:
    if not kvs:
        return {}
    return {kv["key"]: any_value(kv.get("value")) for kv in kvs}


def _hex_id(v: Any, n_hex: int, what: str, allow_empty: bool) -> str:
    if v is None or v == "":
        if allow_empty:
            return ""
        raise ValueError(f"{what} is missing")
    if not isinstance(v, str) or len(v) != n_hex or not _HEX.match(v):
        raise ValueError(f"{what} must be {n_hex} hex characters, got {v!r}")
    v = v.lower()
    if v == "0" * n_hex:
        if allow_empty:
            return ""
        raise ValueError(f"{what} is all zeros")
    return v


def _resource(rs: dict) -> tuple[dict, str, str, str]:
    attrs = attributes((rs.get("resource") or {}).get("attributes"))
    service, pod = resource_identity(attrs)
    return attrs, to_json(attrs), service, pod


def _scopes(rs: dict, camel: str, snake: str):
    for sc in _g(rs, camel, snake) or []:
        scope = (sc.get("scope") or sc.get("instrumentationLibrary") or {}).get("name", "") or ""
        yield sc, scope


def decode_traces(doc: dict) -> Batch:
    batch = Batch()
    cols: dict[str, list] = {c: [] for c in ("trace_id", "span_id", "parent_span_id", "service", "pod", "name", "kind",
                                               "start_ns", "end_ns", "duration_ns", "status_code", "status_message",
                                               "attributes", "events", "resource", "scope")}
    for rs in _g(doc, "resourceSpans", "resource_spans") or []:
        _, res_json, service, pod = _resource(rs)
        for sc, scope in _scopes(rs, "scopeSpans", "scope_spans"):
            for sp in sc.get("spans") or []:
                try:
                    tid = _hex_id(_g(sp, "traceId", "trace_id"), 32, "traceId", False)
                    sid = _hex_id(_g(sp, "spanId", "span_id"), 16, "spanId", False)
                    pid = _hex_id(_g(sp, "parentSpanId", "parent_span_id"), 16, "parentSpanId", True)
                    start = _int(_g(sp, "startTimeUnixNano", "start_time_unix_nano"))
                    end = _int(_g(sp, "endTimeUnixNano", "end_time_unix_nano"))
                    if end < start:
                        raise ValueError(f"span {sid} ends before it starts")
                    status = sp.get("status") or {}
                    code = status.get("code", 0)
                    code = _STATUS_NAMES.get(code, code) if isinstance(code, str) else int(code)
                    kind = sp.get("kind", 0)
                    kind = _KIND_NAMES.get(kind, 0) if isinstance(kind, str) else int(kind)
                    if not 0 <= kind <= 5:
                        raise ValueError(f"span {sid}: kind {kind} out of range 0..5")
                    if not 0 <= code <= 2:
                        raise ValueError(f"span {sid}: status code {code} out of range 0..2")
                    events = [
                        {"time_ns": _int(_g(e, "timeUnixNano", "time_unix_nano")), "name": e.get("name", ""),
                         "attributes": attributes(e.get("attributes"))}
                        for e in sp.get("events") or []
                    ]
                    attrs = to_json(attributes(sp.get("attributes")))
                    evs = to_json(events)
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    batch.reject("spans", f"span: {exc}")
                    continue
                cols["trace_id"].append(tid)
                cols["span_id"].append(sid)
                cols["parent_span_id"].append(pid)
                cols["service"].append(service)
                cols["pod"].append(pod)
                cols["name"].append(sp.get("name", "") or "")
                cols["kind"].append(kind)
                cols["start_ns"].append(start)
                cols["end_ns"].append(end)
                cols["duration_ns"].append(end - start)
                cols["status_code"].append(code)
                cols["status_message"].append(status.get("message", "") or "")
                cols["attributes"].append(attrs)
                cols["events"].append(evs)
                cols["resource"].append(res_json)
                cols["scope"].append(scope)
    batch.tables["spans"] = Batch.table_from_columns("spans", cols)
    return batch


_KIND_NAMES = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3,
               "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
_SEVERITY_NAMES = {f"SEVERITY_NUMBER_{n}": i for i, n in enumerate(
    ["UNSPECIFIED", "TRACE", "TRACE2", "TRACE3", "TRACE4", "DEBUG", "DEBUG2", "DEBUG3", "DEBUG4", "INFO", "INFO2",
     "INFO3", "INFO4", "WARN", "WARN2", "WARN3", "WARN4", "ERROR", "ERROR2", "ERROR3", "ERROR4", "FATAL", "FATAL2",
     "FATAL3", "FATAL4"])}


def _body_text(body: Any) -> str:
    return body_text(any_value(body) if isinstance(body, dict) else body)


def decode_logs(doc: dict) -> Batch:
    batch = Batch()
    cols: dict[str, list] = {c: [] for c in ("time_ns", "observed_ns", "trace_id", "span_id", "service", "pod",
                                               "severity_number", "severity_text", "body", "attributes", "resource",
                                               "scope")}
    for rs in _g(doc, "resourceLogs", "resource_logs") or []:
        _, res_json, service, pod = _resource(rs)
        for sc, scope in _scopes(rs, "scopeLogs", "scope_logs"):
            for lr in _g(sc, "logRecords", "log_records") or []:
                try:
                    t = _int(_g(lr, "timeUnixNano", "time_unix_nano"))
                    obs = _int(_g(lr, "observedTimeUnixNano", "observed_time_unix_nano"))
                    tid = _hex_id(_g(lr, "traceId", "trace_id"), 32, "traceId", True)
                    sid = _hex_id(_g(lr, "spanId", "span_id"), 16, "spanId", True)
                    sev = _g(lr, "severityNumber", "severity_number", 0)
                    sev = _SEVERITY_NAMES.get(sev, 0) if isinstance(sev, str) else int(sev)
                    if not 0 <= sev <= 24:
                        raise ValueError(f"severityNumber {sev} out of range")
                    body = _body_text(lr.get("body"))
                    attrs = to_json(attributes(lr.get("attributes")))
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    batch.reject("logs", f"log record: {exc}")
                    continue
                cols["time_ns"].append(t or obs)
                cols["observed_ns"].append(obs or t)
                cols["trace_id"].append(tid)
                cols["span_id"].append(sid)
                cols["service"].append(service)
                cols["pod"].append(pod)
                cols["severity_number"].append(sev)
                cols["severity_text"].append(_g(lr, "severityText", "severity_text", "") or "")
                cols["body"].append(body)
                cols["attributes"].append(attrs)
                cols["resource"].append(res_json)
                cols["scope"].append(scope)
    batch.tables["logs"] = Batch.table_from_columns("logs", cols)
    return batch


def decode_metrics(doc: dict) -> Batch:
    batch = Batch()
    cols: dict[str, list] = {c: [] for c in ("time_ns", "service", "pod", "name", "unit", "metric_type", "value",
                                               "attributes", "resource")}
    for rs in _g(doc, "resourceMetrics", "resource_metrics") or []:
        _, res_json, service, pod = _resource(rs)
        for sc, _scope in _scopes(rs, "scopeMetrics", "scope_metrics"):
            for m in sc.get("metrics") or []:
                name, unit = m.get("name", ""), m.get("unit", "") or ""
                for mtype in ("gauge", "sum", "histogram", "summary", "exponentialHistogram"):
                    data = m.get(mtype)
                    if data is not None:
                        break
                else:
                    batch.reject("metrics", f"metric {name!r}: no data")
                    continue
                for dp in _g(data, "dataPoints", "data_points") or []:
                    try:
                        t = _int(_g(dp, "timeUnixNano", "time_unix_nano"))
                        if mtype in ("gauge", "sum"):
                            if "asDouble" in dp or "as_double" in dp:
                                value = _float(_g(dp, "asDouble", "as_double"))
                            elif "asInt" in dp or "as_int" in dp:
                                value = float(_int(_g(dp, "asInt", "as_int")))
                            else:
                                value = 0.0  # proto3 default left out
                        else:
                            count = _int(dp.get("count"))
                            total = _float(dp.get("sum", 0.0))
                            value = total / count if count else float("nan")
                        attrs = to_json(attributes(dp.get("attributes")))
                    except (ValueError, TypeError, KeyError, AttributeError) as exc:
                        batch.reject("metrics", f"data point of {name!r}: {exc}")
                        continue
                    cols["time_ns"].append(t)
                    cols["service"].append(service)
                    cols["pod"].append(pod)
                    cols["name"].append(name)
                    cols["unit"].append(unit)
                    cols["metric_type"].append(mtype)
                    cols["value"].append(value)
                    cols["attributes"].append(attrs)
                    cols["resource"].append(res_json)
    batch.tables["metrics"] = Batch.table_from_columns("metrics", cols)
    return batch


DECODERS = {"traces": decode_traces, "logs": decode_logs, "metrics": decode_metrics}
_KEYS = {"resourceSpans": "traces", "resource_spans": "traces", "resourceLogs": "logs", "resource_logs": "logs",
         "resourceMetrics": "metrics", "resource_metrics": "metrics"}


def signal_of(doc: dict) -> str | None:
    for k in doc:
        if k in _KEYS:
            return _KEYS[k]
    return None


def decode_json(data: bytes | str | dict, signal: str | None = None) -> Batch:
    """Decode one OTLP/JSON Export*ServiceRequest. ``signal`` (traces/logs/metrics) is inferred when None."""
    if isinstance(data, dict):
        doc = data
    else:
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"malformed OTLP/JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidInput("malformed OTLP/JSON: the body must be a JSON object")
    if signal is None:
        signal = signal_of(doc)
        if signal is None:
            raise InvalidInput("not an OTLP export request: no resourceSpans/resourceLogs/resourceMetrics key")
    try:
        return DECODERS[signal](doc)
    except (AttributeError, TypeError) as exc:
        raise InvalidInput(f"malformed OTLP/JSON {signal} request: {exc}") from exc
