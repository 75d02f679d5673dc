"""The frames a timeline is cut from, with their flags: spans (self time against the
operation's other spans), logs (templates, severity) and metric points (shift against the
series' median before the window). All vectorized; one query per signal."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rca.anomaly.shift import MAD_SCALE
from rca.store.selftime import self_times

MINUTE_NS = 60_000_000_000
SPAN_COLS = "trace_id, span_id, parent_span_id, service, pod, name, start_ns, end_ns, status_code, status_message"
LOG_COLS = "time_ns, trace_id, span_id, service, pod, severity_number, severity_text, body, template_id"
METRIC_COLS = "time_ns, service, pod, name, unit, value"

SLOW_Z = 4.0  # robust z of log self time above the operation's median
MIN_LOG_SCALE = 0.1  # MAD floor on the log scale: deviations under ~10% never count
MIN_SPAN_BASELINE = 10
METRIC_ENTER_Z = 5.0  # a series is shifted from the first point past this ...
METRIC_EXIT_Z = 2.0  # ... until a point comes back under this (hysteresis: no flapping)
MIN_METRIC_BASELINE = 5
Z_CLIP = 1000.0
ERROR_SEVERITY = 17
WARN_SEVERITY = 13


def _where(time_col: str, lo_ns: int, hi_ns: int, services=None, alias: str = "") -> tuple[str, list]:
    """``alias.time_col`` in [lo_ns, hi_ns) and, if given, ``alias.service`` among ``services``."""
    a = f"{alias}." if alias else ""
    where, params = [f"{a}{time_col} >= ?", f"{a}{time_col} < ?"], [int(lo_ns), int(hi_ns)]
    if services:
        where.append(f"{a}service IN ({', '.join('?' for _ in services)})")
        params += list(services)
    return " AND ".join(where), params


def load_spans(store, lo_ns: int, hi_ns: int, services=None) -> pd.DataFrame:
    """Spans starting in [lo_ns, hi_ns) (of ``services`` if given) with ``self_ns``.

    When only some services are read, their children in other services are read too
    (for the self time, then dropped): a client span's self time excludes the server span.
    """
    cond, params = _where("start_ns", lo_ns, hi_ns, services)
    spans = store.query(f"SELECT {SPAN_COLS} FROM spans WHERE {cond}", params)
    if services and not spans.empty:
        p_cond, p_params = _where("start_ns", lo_ns, hi_ns, services, alias="p")
        others = ", ".join("?" for _ in services)
        children = store.query(
            f"""SELECT c.trace_id, c.span_id, c.parent_span_id, c.start_ns, c.end_ns, c.status_code FROM spans c
                WHERE c.start_ns >= ? AND c.service NOT IN ({others})
                  AND EXISTS (SELECT 1 FROM spans p WHERE {p_cond}
                              AND p.trace_id = c.trace_id AND p.span_id = c.parent_span_id)""",
            [int(lo_ns), *services, *p_params])
        both = pd.concat([spans[children.columns], children], ignore_index=True)
        spans["self_ns"] = self_times(both).to_numpy()[: len(spans)]
        spans["child_error"] = _child_error(both)[: len(spans)]
        return spans
    return _with_self_times(spans)


def _child_error(spans: pd.DataFrame) -> np.ndarray:
    """Whether each span has a child with error status (so its own error may be propagated)."""
    if spans.empty:
        return np.zeros(0, bool)
    err = spans[spans["status_code"] == 2]
    parents = pd.MultiIndex.from_arrays([err["trace_id"], err["parent_span_id"]])
    return pd.MultiIndex.from_arrays([spans["trace_id"], spans["span_id"]]).isin(parents)


def _with_self_times(spans: pd.DataFrame) -> pd.DataFrame:
    spans["self_ns"] = self_times(spans).to_numpy() if not spans.empty else np.zeros(0, np.int64)
    spans["child_error"] = _child_error(spans)
    return spans


def with_trace_self_times(spans: pd.DataFrame) -> pd.DataFrame:
    """One whole trace's spans (as the store returns them) with ``self_ns`` and ``child_error``."""
    return _with_self_times(spans[[c.strip() for c in SPAN_COLS.split(",")]].reset_index(drop=True))


def flag_spans(window: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """``window`` + ``self_z`` (log self time vs the same (service, name) in ``baseline``),
    ``b_self_ns`` (baseline median), ``slow``, ``error``, ``anomalous`` and ``origin`` (slow, or an
    error that no erroring child explains: where a failure starts rather than where it passes)."""
    out = window.copy()
    keys = ["service", "name"]
    if baseline.empty or out.empty:
        stats = pd.DataFrame(columns=["med", "mad", "n"], index=pd.MultiIndex.from_arrays([[], []], names=keys))
    else:
        b = baseline[keys].copy()
        b["l"] = np.log1p(baseline["self_ns"].to_numpy(float).clip(0))
        med = b.groupby(keys)["l"].median().rename("med")
        dev = (b["l"] - b.join(med, on=keys)["med"]).abs()
        mad = (dev.groupby([b["service"], b["name"]]).median() * MAD_SCALE).rename("mad")
        mad.index.names = keys
        stats = pd.concat([med, mad, b.groupby(keys).size().rename("n")], axis=1)
    joined = out[keys].join(stats, on=keys)
    log_self = np.log1p(out["self_ns"].to_numpy(float).clip(0))
    enough = joined["n"].fillna(0).to_numpy() >= MIN_SPAN_BASELINE
    scale = np.maximum(joined["mad"].fillna(0).to_numpy(float), MIN_LOG_SCALE)
    z = np.where(enough, (log_self - joined["med"].fillna(0).to_numpy(float)) / scale, np.nan)
    out["self_z"] = np.clip(z, -Z_CLIP, Z_CLIP)
    out["b_self_ns"] = np.where(enough, np.expm1(joined["med"].fillna(0).to_numpy(float)), np.nan)
    out["slow"] = np.nan_to_num(z, nan=0.0) > SLOW_Z
    out["error"] = out["status_code"].to_numpy() == 2
    out["anomalous"] = out["slow"] | out["error"]
    out["origin"] = out["slow"] | (out["error"] & ~out["child_error"].to_numpy(bool))
    return out


def load_logs(store, lo_ns: int, hi_ns: int, services=None) -> pd.DataFrame:
    cond, params = _where("time_ns", lo_ns, hi_ns, services)
    return store.query(f"SELECT {LOG_COLS} FROM logs WHERE {cond}", params)


def with_templates(logs: pd.DataFrame, templates) -> pd.DataFrame:
    """``template_id`` mapped to its current (merged) id and ``template`` text (None where unknown)."""
    out = logs.copy()
    ids = out["template_id"].dropna().unique() if not out.empty else []
    canon: dict[int, int] = {}
    text: dict[int, str | None] = {}
    for i in ids:
        c = int(templates.canonical_id(int(i))) if templates is not None else int(i)
        canon[int(i)] = c
        text[int(i)] = templates.text_or_none(c) if templates is not None else None
    tid = out["template_id"]
    out["template"] = [None if pd.isna(v) else text[int(v)] for v in tid]
    out["template_id"] = [None if pd.isna(v) else canon[int(v)] for v in tid]
    return out


def load_metrics(store, lo_ns: int, hi_ns: int, services=None) -> pd.DataFrame:
    cond, params = _where("time_ns", lo_ns, hi_ns, services)
    return store.query(f"SELECT {METRIC_COLS} FROM metrics WHERE {cond} AND isfinite(value)", params)


def metric_shifts(points: pd.DataFrame, start_ns: int, end_ns: int) -> pd.DataFrame:
    """Points in [start_ns, end_ns) where a (service, pod, name) series enters or leaves a shift.

    Each window point gets a robust z against the series' points before ``start_ns`` (median,
    MAD, floor 5% of the median). A series is shifted from the first point with |z| past
    ``METRIC_ENTER_Z`` until a point with |z| under ``METRIC_EXIT_Z``. Returns those points
    with ``z``, ``b_median`` and ``state`` ("shifted" / "recovered").
    """
    cols = list(points.columns) + ["z", "b_median", "state"]
    if points.empty:
        return pd.DataFrame(columns=cols)
    keys = ["service", "pod", "name"]
    pts = points.assign(pod=points["pod"].fillna(""))
    before = pts[pts["time_ns"] < start_ns]
    win = pts[(pts["time_ns"] >= start_ns) & (pts["time_ns"] < end_ns)]
    if before.empty or win.empty:
        return pd.DataFrame(columns=cols)
    med = before.groupby(keys)["value"].median().rename("b_median")
    dev = (before["value"] - before.join(med, on=keys)["b_median"]).abs()
    mad = (dev.groupby([before[k] for k in keys]).median() * MAD_SCALE).rename("b_mad")
    mad.index.names = keys
    n_b = before.groupby(keys).size().rename("n_b")
    stats = pd.concat([med, mad, n_b], axis=1)
    w = win.join(stats, on=keys)
    w = w[w["n_b"].fillna(0) >= MIN_METRIC_BASELINE].sort_values(keys + ["time_ns"], kind="stable")
    if w.empty:
        return pd.DataFrame(columns=cols)
    scale = np.maximum(w["b_mad"].to_numpy(float), 0.05 * np.abs(w["b_median"].to_numpy(float))) + 1e-9
    z = (w["value"].to_numpy(float) - w["b_median"].to_numpy(float)) / scale
    az = np.abs(z)
    level = pd.Series(np.where(az > METRIC_ENTER_Z, 1.0, np.where(az < METRIC_EXIT_Z, 0.0, np.nan)), index=w.index)
    state = level.groupby([w[k] for k in keys], sort=False).ffill().fillna(0.0)
    prev = state.groupby([w[k] for k in keys], sort=False).shift(1).fillna(0.0)
    w = w.assign(z=np.clip(z, -Z_CLIP, Z_CLIP), state=np.where(state > 0, "shifted", "recovered"))
    return w.loc[(state != prev).to_numpy(), cols].reset_index(drop=True)
