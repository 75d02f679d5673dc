"""Per-span features: duration, self time, number of children, error signals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from rca.store.selftime import self_times

ERROR_SEVERITY = 17  # OTLP SeverityNumber ERROR


def _has_exception(events: pd.Series) -> np.ndarray:
    return events.fillna("").str.contains('"exception', regex=False).to_numpy()


def span_features(spans: pd.DataFrame, logs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per span: service, name, duration_ns, self_ns, n_children, error (0/1), error_logs."""
    out = spans[["trace_id", "span_id", "parent_span_id", "service", "name", "start_ns", "end_ns"]].copy()
    out["duration_ns"] = (spans["end_ns"] - spans["start_ns"]).astype("int64")
    out["self_ns"] = self_times(spans)
    n_children = spans.loc[spans["parent_span_id"] != ""].groupby(["trace_id", "parent_span_id"]).size()
    key = pd.MultiIndex.from_arrays([spans["trace_id"], spans["span_id"]])
    out["n_children"] = n_children.reindex(key).fillna(0).to_numpy().astype("int64")
    err = spans["status_code"].fillna(0).to_numpy() == 2
    if "events" in spans:
        err |= _has_exception(spans["events"])
    out["error"] = err.astype("int8")
    out["error_logs"] = 0
    if logs is not None and not logs.empty and "severity_number" in logs:
        bad = logs.loc[(logs["severity_number"] >= ERROR_SEVERITY) & (logs["span_id"] != "")]
        if not bad.empty:
            n_bad = bad.groupby(["trace_id", "span_id"]).size()
            out["error_logs"] = n_bad.reindex(key).fillna(0).to_numpy().astype("int64")
    return out


def exception_messages(events_json: str) -> list[str]:
    """exception.type: exception.message of a span's exception events (for evidence)."""
    if not events_json or "exception" not in events_json:
        return []
    out = []
    for ev in json.loads(events_json):
        if ev.get("name") == "exception":
            a = ev.get("attributes") or {}
            out.append(f"{a.get('exception.type', 'exception')}: {a.get('exception.message', '')}".strip(": "))
    return out
