"""The frames analysis reads from the store for a window and its baseline, loaded once."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

HOUR_NS = 3_600_000_000_000
SPAN_COLS = ("trace_id, span_id, parent_span_id, service, pod, name, kind, start_ns, end_ns, status_code, events, "
             "CASE WHEN kind = 3 AND status_code = 2 THEN CAST(attributes AS VARCHAR) END AS attributes")
LOG_COLS = "time_ns, trace_id, span_id, service, pod, severity_number, template_id"
METRIC_COLS = "time_ns, service, pod, name, metric_type, value"


@dataclass
class Telemetry:
    spans: pd.DataFrame
    logs: pd.DataFrame
    metrics: pd.DataFrame
    start_ns: int | None
    end_ns: int | None

    def service_edges(self) -> pd.DataFrame:
        """Caller -> callee edges over all loaded spans (the baseline knows callees that are down now); cached."""
        from rca.localize.callgraph import service_edges

        return self.cached("service_edges", lambda: service_edges(self.spans))

    def cached(self, name: str, build):
        """A value derived from these frames, built once."""
        key = f"_cache_{name}"
        if key not in self.__dict__:
            self.__dict__[key] = build()
        return self.__dict__[key]

    def self_ns(self) -> pd.Series:
        """Self time of every loaded span (aligned with ``spans``); cached."""
        from rca.store.selftime import self_times

        return self.cached("self_ns", lambda: self_times(self.spans))

    def covers(self, start_ns: int, end_ns: int) -> bool:
        return (self.start_ns is None or self.start_ns <= start_ns) and (self.end_ns is None or self.end_ns >= end_ns)


def load_telemetry(store, start_ns: int | None, end_ns: int | None, canonical=None) -> Telemetry:
    """Spans, logs and finite metric points in [start_ns, end_ns) (None = unbounded).

    ``canonical`` maps stored template ids to their current (merged) id.
    """
    where_s, where_t, params = [], [], []
    if start_ns is not None:
        where_s.append("start_ns >= ?")
        where_t.append("time_ns >= ?")
        params.append(int(start_ns))
    if end_ns is not None:
        where_s.append("start_ns < ?")
        where_t.append("time_ns < ?")
        params.append(int(end_ns))
    ws = " AND ".join(where_s) or "TRUE"
    wt = " AND ".join(where_t) or "TRUE"
    spans = store.query(f"SELECT {SPAN_COLS} FROM spans WHERE {ws}", params)
    logs = store.query(f"SELECT {LOG_COLS} FROM logs WHERE {wt}", params)
    metrics = store.query(f"SELECT {METRIC_COLS} FROM metrics WHERE {wt} AND isfinite(value)", params)
    if canonical is not None and not logs.empty:
        ids = logs["template_id"].dropna().unique()
        mapping = {int(i): canonical(int(i)) for i in ids}
        logs["template_id"] = logs["template_id"].map(mapping)
    return Telemetry(spans, logs, metrics, start_ns, end_ns)


def baseline_range(store, start_ns: int, end_ns: int, hours: float) -> tuple[int, int]:
    """The range to read for a window: ``hours`` before and after it, within the store's data."""
    return int(start_ns - hours * HOUR_NS), int(end_ns + hours * HOUR_NS)
