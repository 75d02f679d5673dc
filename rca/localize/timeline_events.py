"""Timeline events: an index frame over the flagged spans, logs and metric shifts (one row per
event, built vectorized), and the JSON form of the few rows that are shown."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rca.localize.timeline_frames import ERROR_SEVERITY, WARN_SEVERITY
from rca.localize.timeline_state import severity_name, span_link
from rca.timeutil import format_duration, format_ns

KINDS = ["span_start", "log", "metric_shift", "span_end", "anomaly"]  # order of events at the same instant
KIND_RANK = {k: i for i, k in enumerate(KINDS)}
# what survives truncation first: 0 slow spans, errors where they start, metric shifts; 1 errors passed
# on by a failing child, error logs; 2 warnings, starts/ends of anomalous spans; 3 other logs; 4 other spans
TIER_NOTE = ("slow spans, errors where they start and metric shifts first, then propagated errors and error"
             " logs, then warnings and anomalous spans, then the rest")


def index_events(spans: pd.DataFrame, logs: pd.DataFrame, shifts: pd.DataFrame,
                 start_ns: int, end_ns: int) -> pd.DataFrame:
    """One row per event in [start_ns, end_ns): ``time_ns, rank, service, key, tier, src, row``
    (``src``/``row`` point back into the frame it came from), in display order."""
    parts = []

    def add(frame: pd.DataFrame, mask, time_col: str, kind: str, key, tier) -> None:
        mask = np.asarray(mask, bool)
        if not mask.any():
            return
        sel = frame.loc[mask]
        parts.append(pd.DataFrame({
            "time_ns": sel[time_col].to_numpy(np.int64), "rank": KIND_RANK[kind],
            "service": sel["service"].astype(str).to_numpy(),
            "key": np.asarray(key, object)[mask] if not np.isscalar(key) else key,
            "tier": np.asarray(tier)[mask] if not np.isscalar(tier) else tier,
            "src": kind, "row": np.flatnonzero(mask)}))

    if not spans.empty:
        span_key = (spans["trace_id"] + spans["span_id"]).to_numpy(object)
        span_tier = np.where(spans["anomalous"].to_numpy(bool), 2, 4)
        starts, ends = spans["start_ns"].to_numpy(), spans["end_ns"].to_numpy()
        in_end = (ends >= start_ns) & (ends < end_ns)
        add(spans, (starts >= start_ns) & (starts < end_ns), "start_ns", "span_start", span_key, span_tier)
        add(spans, in_end, "end_ns", "span_end", span_key, span_tier)
        add(spans, in_end & spans["anomalous"].to_numpy(bool), "end_ns", "anomaly", span_key,
            np.where(spans["origin"].to_numpy(bool), 0, 1))
    if not logs.empty:
        sev = logs["severity_number"].to_numpy()
        times = logs["time_ns"].to_numpy()
        key = (logs["trace_id"].fillna("") + logs["span_id"].fillna("") + logs["body"].fillna("")).to_numpy(object)
        add(logs, (times >= start_ns) & (times < end_ns), "time_ns", "log", key,
            np.where(sev >= ERROR_SEVERITY, 1, np.where(sev >= WARN_SEVERITY, 2, 3)))
    if not shifts.empty:
        add(shifts, np.ones(len(shifts), bool), "time_ns", "metric_shift",
            (shifts["pod"].astype(str) + "\x1f" + shifts["name"].astype(str)).to_numpy(object), 0)
    if not parts:
        return pd.DataFrame({c: [] for c in ["time_ns", "rank", "service", "key", "tier", "src", "row"]})
    events = pd.concat(parts, ignore_index=True)
    order = np.lexsort((events["key"].to_numpy(str), events["service"].to_numpy(str),
                        events["rank"].to_numpy(), events["time_ns"].to_numpy()))
    return events.iloc[order].reset_index(drop=True)


def select_events(events: pd.DataFrame, limit: int) -> pd.DataFrame:
    """At most ``limit`` events: whole tiers in priority order, the last one that does not fit
    sampled evenly over time; display order kept."""
    if len(events) <= limit:
        return events
    keep = np.zeros(len(events), bool)
    budget = limit
    tiers = events["tier"].to_numpy()
    for tier in np.unique(tiers):
        idx = np.flatnonzero(tiers == tier)
        if len(idx) <= budget:
            keep[idx] = True
            budget -= len(idx)
            continue
        keep[idx[(np.arange(budget) * len(idx)) // budget]] = True
        break
    return events.loc[keep].reset_index(drop=True)


def _opt(v):
    if v is None or (isinstance(v, float) and v != v):
        return None
    return v.item() if hasattr(v, "item") else v


def _value(v: float, unit: str | None) -> str:
    return f"{v:.4g}" + (f" {unit}" if unit else "")


def event_dict(src: str, r, time_ns: int) -> dict:
    """The JSON form of one event; ``r`` is its row (a namedtuple) in the frame it came from."""
    base = {"time_ns": int(time_ns), "time": format_ns(int(time_ns)), "service": str(r.service), "kind": src}
    if src in ("span_start", "span_end", "anomaly"):
        ref = {"trace_id": r.trace_id, "span_id": r.span_id}
        link = span_link(r.trace_id, r.span_id)
        data = {"name": r.name, "pod": _opt(r.pod), "duration_ns": int(r.end_ns - r.start_ns),
                "self_ns": int(r.self_ns), "status_code": int(r.status_code)}
        if src == "span_start":
            detail = f"start {r.name}"
        elif src == "span_end":
            msg = _opt(r.status_message)
            status = (", ERROR" + (f" {msg}" if msg else "")) if r.status_code == 2 else ""
            detail = (f"end {r.name} after {format_duration(r.end_ns - r.start_ns)}"
                      f" (self {format_duration(r.self_ns)}){status}")
        else:
            reasons = [w for w, on in (("slow", r.slow), ("error", r.error)) if on]
            data.update(reasons=reasons, origin=bool(r.origin), self_z=_opt(round(float(r.self_z), 2)),
                        baseline_self_ns=_opt(None if r.b_self_ns != r.b_self_ns else int(r.b_self_ns)),
                        status_message=_opt(r.status_message) or None)
            parts = []
            if r.slow:
                parts.append(f"slow {r.name}: self {format_duration(r.self_ns)} vs median "
                             f"{format_duration(r.b_self_ns)} (z={r.self_z:+.1f})")
            if r.error:
                where = "error in" if r.origin else "error (from a callee) in"
                parts.append(f"{where} {r.name}" + (f": {r.status_message}" if _opt(r.status_message) else ""))
            detail = "; ".join(parts)
        return {**base, "ref": ref, "detail": detail, "link": link, "flagged": src == "anomaly" or bool(r.anomalous),
                "data": data}
    if src == "log":
        tid, sid = _opt(r.trace_id) or "", _opt(r.span_id) or ""
        sev = severity_name(int(r.severity_number), _opt(r.severity_text))
        return {**base, "ref": {"trace_id": tid or None, "span_id": sid or None, "template_id": _opt(r.template_id)},
                "detail": f"{sev} {r.body}".strip(), "link": span_link(tid, sid) if tid and sid else None,
                "flagged": int(r.severity_number) >= ERROR_SEVERITY,
                "data": {"pod": _opt(r.pod), "severity_number": int(r.severity_number), "severity": sev,
                         "body": _opt(r.body), "template": _opt(r.template)}}
    # metric_shift
    unit = _opt(r.unit)
    if r.state == "shifted":
        detail = (f"{r.name} on {r.pod}: {_value(r.value, unit)} vs median {_value(r.b_median, unit)} before"
                  f" (z={r.z:+.1f})")
    else:
        detail = f"{r.name} on {r.pod} back to {_value(r.value, unit)} (median {_value(r.b_median, unit)} before)"
    return {**base, "ref": {"pod": _opt(r.pod), "metric": r.name}, "detail": detail, "link": None,
            "flagged": r.state == "shifted",
            "data": {"value": float(r.value), "unit": unit, "baseline_median": float(r.b_median),
                     "z": round(float(r.z), 2), "state": r.state}}
