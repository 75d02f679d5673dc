"""Time travel: one time-ordered replay of a trace or a window across services (span starts and
ends, log lines with their templates, metric shifts, anomaly flags), and the state at an instant.

``build_timeline`` is the one entry point; the CLI and the API both print its ``to_dict()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rca.errors import InvalidInput
from rca.localize.timeline_events import TIER_NOTE, event_dict, index_events, select_events
from rca.localize.timeline_frames import (MINUTE_NS, flag_spans, load_logs, load_metrics, load_spans,
                                          metric_shifts, with_templates, with_trace_self_times)
from rca.localize.timeline_state import state_at
from rca.store.trace_view import normalize_trace_id
from rca.timeutil import format_ns

DEFAULT_LIMIT = 500
MAX_LIMIT = 100_000
BASELINE_NS = 30 * MINUTE_NS  # spans and metric points this far around the window are the baseline
MAX_WINDOW_NS = 24 * 60 * MINUTE_NS
AT_WINDOW_NS = 5 * MINUTE_NS  # `--at` alone: the events of the five minutes up to it
TRACE_METRIC_PAD_NS = 30 * 1_000_000_000  # metric scrapes around a trace (two 15 s intervals)


@dataclass
class Timeline:
    """Events in display order (at most ``limit`` of ``n_events_total``) and, for ``at``, the state then."""

    query: dict[str, Any]
    start_ns: int | None
    end_ns: int | None
    events: list[dict[str, Any]]
    n_events_total: int
    state: dict[str, Any] | None = None
    note: str | None = None
    services: list[str] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return len(self.events) < self.n_events_total

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query, "start_ns": self.start_ns, "end_ns": self.end_ns,
            "start": format_ns(self.start_ns), "end": format_ns(self.end_ns), "services": self.services,
            "n_events": len(self.events), "n_events_total": self.n_events_total, "truncated": self.truncated,
            "note": self.note, "events": self.events, "at": self.state,
        }


def _services(services) -> list[str] | None:
    if services is None:
        return None
    if isinstance(services, str):
        services = [services]
    out = sorted({str(s).strip() for s in services if str(s).strip()})
    return out or None


def _window(trace_id, start_ns, end_ns, at_ns) -> tuple[int | None, int | None]:
    if trace_id is not None:
        if start_ns is not None or end_ns is not None:
            raise InvalidInput("give a trace id or a window (start and end), not both",
                               {"trace_id": trace_id, "start_ns": start_ns, "end_ns": end_ns})
        return None, None
    if start_ns is None and end_ns is None:
        if at_ns is None:
            raise InvalidInput("give a trace id, a window (start and end), or an instant (at)")
        return int(at_ns) - AT_WINDOW_NS, int(at_ns) + 1
    if start_ns is None or end_ns is None:
        raise InvalidInput("a window needs both start and end", {"start_ns": start_ns, "end_ns": end_ns})
    start_ns, end_ns = int(start_ns), int(end_ns)
    if end_ns <= start_ns:
        raise InvalidInput("end must be after start", {"start_ns": start_ns, "end_ns": end_ns})
    if end_ns - start_ns > MAX_WINDOW_NS:
        raise InvalidInput("window longer than 24 h: narrow it (or pick a trace)",
                           {"start_ns": start_ns, "end_ns": end_ns})
    if at_ns is not None and not start_ns <= int(at_ns) <= end_ns:
        raise InvalidInput("at must lie within the window", {"at_ns": int(at_ns)})
    return start_ns, end_ns


def build_timeline(store, templates, trace_id: str | None = None, start_ns: int | None = None,
                   end_ns: int | None = None, services=None, at_ns: int | None = None,
                   limit: int = DEFAULT_LIMIT) -> Timeline:
    """The timeline of one trace (``trace_id``) or of a window [start_ns, end_ns) (of ``services``).

    Raises NotFound for an unknown trace, InvalidInput for a malformed id, neither a trace nor a
    window, an empty or over-long window, or a limit out of range.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}", {"limit": limit})
    services = _services(services)
    tid = normalize_trace_id(trace_id) if trace_id is not None else None
    start_ns, end_ns = _window(tid, start_ns, end_ns, at_ns)
    query = {"trace_id": tid, "start_ns": start_ns, "end_ns": end_ns, "services": services,
             "at_ns": None if at_ns is None else int(at_ns), "limit": limit}
    trace = None
    if tid is not None:
        trace_spans, trace_logs = store.get_trace(tid)  # NotFound for an unknown trace
        trace_spans = with_trace_self_times(trace_spans)
        start_ns = int(trace_spans["start_ns"].min())
        end_ns = int(trace_spans["end_ns"].max()) + 1
        own = sorted(trace_spans["service"].dropna().astype(str).unique())
        around = load_spans(store, start_ns - BASELINE_NS, end_ns + BASELINE_NS, own)
        baseline = around[around["trace_id"] != tid]
        if services:
            trace_spans = trace_spans[trace_spans["service"].isin(services)].reset_index(drop=True)
            trace_logs = trace_logs[trace_logs["service"].isin(services)]
        spans = flag_spans(trace_spans, baseline)
        logs = trace_logs.reset_index(drop=True)
        metric_services = sorted(set(own) & set(services)) if services else own
        m_lo, m_hi = start_ns - TRACE_METRIC_PAD_NS, end_ns + TRACE_METRIC_PAD_NS
        trace = (trace_spans, trace_logs)
    else:
        around = load_spans(store, start_ns - BASELINE_NS, end_ns + BASELINE_NS, services)
        overlap = (around["start_ns"] < end_ns) & (around["end_ns"] >= start_ns)
        spans = flag_spans(around[overlap].reset_index(drop=True), around[~overlap])
        logs = load_logs(store, start_ns, end_ns, services)
        metric_services = services
        m_lo, m_hi = start_ns, end_ns
    shifts = metric_shifts(load_metrics(store, m_lo - BASELINE_NS, m_hi, metric_services), m_lo, m_hi)
    index = index_events(spans, logs, shifts, min(start_ns, m_lo), max(end_ns, m_hi))
    shown = select_events(index, limit)
    events = _event_dicts(shown, {"span": spans, "log": logs, "metric_shift": shifts}, templates)
    note = None
    if len(shown) < len(index):
        note = (f"showing {len(shown)} of {len(index)} events ({TIER_NOTE}; the last group sampled evenly over"
                f" time): narrow the window, pick services or raise the limit")
    state = None
    if at_ns is not None:
        state = state_at(store, templates, int(at_ns), metric_services if tid else services, trace=trace)
    shown_services = sorted({e["service"] for e in events})
    return Timeline(query=query, start_ns=start_ns, end_ns=end_ns, events=events,
                    n_events_total=len(index), state=state, note=note, services=shown_services)


def _event_dicts(shown: pd.DataFrame, frames: dict[str, pd.DataFrame], templates) -> list[dict]:
    """JSON events for the shown index rows, reading only those rows of their frames."""
    group = shown["src"].map(lambda s: s if s in ("log", "metric_shift") else "span").to_numpy()
    rows: dict[tuple[str, int], Any] = {}
    for name, frame in frames.items():
        wanted = sorted(set(shown["row"].to_numpy()[group == name].tolist()))
        if not wanted:
            continue
        part = frame.iloc[wanted]
        if name == "log":
            part = with_templates(part, templates)
        rows.update({(name, r): t for r, t in zip(wanted, part.itertuples(index=False))})
    return [event_dict(src, rows[(g, int(row))], int(t))
            for src, g, row, t in zip(shown["src"], group, shown["row"], shown["time_ns"])]
