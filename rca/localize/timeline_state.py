"""The state at one instant: spans in flight per service, the last log lines per service,
the current value of each metric per service."""

from __future__ import annotations

import pandas as pd

from rca.localize.timeline_frames import (LOG_COLS, METRIC_COLS, MINUTE_NS, SPAN_COLS, _where, with_templates)
from rca.timeutil import format_ns

STATE_LOOKBACK_NS = 5 * MINUTE_NS  # spans running longer, logs and points older than this are not "current"
MAX_SPANS_PER_SERVICE = 20
LOGS_PER_SERVICE = 5
LOG_ORDER = ["service", "time_ns", "trace_id", "span_id", "body"]  # total order: equal queries, equal answers


def span_link(trace_id: str, span_id: str) -> str:
    return f"/api/v1/traces/{trace_id}#span-{span_id}"


def _text(v) -> str | None:
    return None if v is None or (isinstance(v, float) and v != v) else str(v)


def _in_flight(spans: pd.DataFrame, at_ns: int) -> tuple[dict, dict]:
    running = spans[(spans["start_ns"] <= at_ns) & (spans["end_ns"] > at_ns)]
    running = running.sort_values(["service", "start_ns", "span_id"], kind="stable")
    out: dict[str, list] = {}
    counts: dict[str, int] = {}
    for service, group in running.groupby("service", sort=True):
        counts[str(service)] = int(len(group))
        out[str(service)] = [
            {"trace_id": r.trace_id, "span_id": r.span_id, "name": _text(r.name), "pod": _text(r.pod),
             "start_ns": int(r.start_ns), "start": format_ns(int(r.start_ns)),
             "elapsed_ns": int(at_ns - r.start_ns), "link": span_link(r.trace_id, r.span_id)}
            for r in group.head(MAX_SPANS_PER_SERVICE).itertuples(index=False)]
    return out, counts


def _last_logs(logs: pd.DataFrame, at_ns: int, templates) -> dict:
    logs = logs[logs["time_ns"] <= at_ns].sort_values(LOG_ORDER, kind="stable")
    logs = with_templates(logs.groupby("service", sort=True).tail(LOGS_PER_SERVICE), templates)
    out: dict[str, list] = {}
    for r in logs.itertuples(index=False):
        tid, sid = _text(r.trace_id) or "", _text(r.span_id) or ""
        out.setdefault(str(r.service), []).append({
            "time_ns": int(r.time_ns), "time": format_ns(int(r.time_ns)), "pod": _text(r.pod),
            "severity_number": int(r.severity_number), "severity": severity_name(int(r.severity_number),
                                                                                 _text(r.severity_text)),
            "body": _text(r.body), "template_id": r.template_id, "template": r.template,
            "trace_id": tid or None, "span_id": sid or None,
            "link": span_link(tid, sid) if tid and sid else None})
    return out


def _current_metrics(points: pd.DataFrame) -> dict:
    """Latest point per (service, pod, name); a service's value is the mean over its pods."""
    if points.empty:
        return {}
    latest = points.sort_values("time_ns", kind="stable").groupby(["service", "pod", "name"], dropna=False).tail(1)
    means = latest.groupby(["service", "name"], sort=True)["value"].mean()
    out: dict[str, dict] = {}
    for (service, name), value in means.items():
        out.setdefault(str(service), {})[str(name)] = float(value)
    return out


_SEVERITY = [(21, "FATAL"), (17, "ERROR"), (13, "WARN"), (9, "INFO"), (5, "DEBUG"), (1, "TRACE")]


def severity_name(number: int, text: str | None = None) -> str:
    if text:
        return text
    return next((name for floor, name in _SEVERITY if number >= floor), "")


def state_at(store, templates, at_ns: int, services=None, trace=None) -> dict:
    """The state at ``at_ns``. ``trace`` = (spans, logs) frames of one trace: spans and logs come
    from it alone; metrics always come from the store (of ``services``)."""
    lo, hi = at_ns - STATE_LOOKBACK_NS, at_ns + 1
    if trace is not None:
        spans, logs = trace
        logs = logs[logs["time_ns"] >= lo]
    else:
        cond, params = _where("start_ns", lo, hi, services)
        spans = store.query(f"SELECT {SPAN_COLS} FROM spans WHERE {cond} AND end_ns > ?", params + [int(at_ns)])
        cond, params = _where("time_ns", lo, hi, services)
        logs = store.query(f"""SELECT {LOG_COLS} FROM logs WHERE {cond}
                               QUALIFY row_number() OVER (PARTITION BY service ORDER BY time_ns DESC, trace_id DESC, span_id DESC, body DESC) <= ?""",
                           params + [LOGS_PER_SERVICE])
    cond, params = _where("time_ns", lo, hi, services)
    points = store.query(f"""SELECT {METRIC_COLS} FROM metrics WHERE {cond} AND isfinite(value)
                             QUALIFY row_number() OVER (PARTITION BY service, pod, name ORDER BY time_ns DESC) = 1""",
                         params)
    in_flight, counts = _in_flight(spans, at_ns)
    return {"time_ns": int(at_ns), "time": format_ns(int(at_ns)), "in_flight": in_flight,
            "n_in_flight": counts, "last_logs": _last_logs(logs, at_ns, templates),
            "metrics": _current_metrics(points)}
