"""Reading one trace back as model objects: spans (with self time) and the logs linked to them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rca.errors import InvalidInput
from rca.model import LogRecord, Span
from rca.store.selftime import self_times

_HEX = re.compile(r"[0-9a-f]{1,32}\Z")


def normalize_trace_id(text: str) -> str:
    """A trace id as typed (any case, 16- or 32-hex like Jaeger's) -> 32 lowercase hex; InvalidInput otherwise."""
    tid = str(text).strip().lower()
    if not _HEX.match(tid):
        raise InvalidInput(f"not a trace id: {text!r} (expected up to 32 hex characters)", {"trace_id": str(text)})
    return tid.rjust(32, "0")


def _json(text: Any, empty: Any) -> Any:
    if text is None or (isinstance(text, float) and text != text):
        return empty
    return json.loads(text) if isinstance(text, str) else text


def _str(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and v != v) else str(v)


def spans_from_frame(df: pd.DataFrame) -> list[Span]:
    return [
        Span(trace_id=r.trace_id, span_id=r.span_id, parent_span_id=_str(r.parent_span_id), service=_str(r.service),
             name=_str(r.name), start_ns=int(r.start_ns), end_ns=int(r.end_ns), kind=int(r.kind),
             status_code=int(r.status_code), status_message=_str(r.status_message), pod=_str(r.pod),
             attributes=_json(r.attributes, {}), resource=_json(r.resource, {}), events=_json(r.events, []),
             scope=_str(r.scope))
        for r in df.itertuples(index=False)
    ]


def logs_from_frame(df: pd.DataFrame) -> list[LogRecord]:
    return [
        LogRecord(time_ns=int(r.time_ns), service=_str(r.service), body=_str(r.body), trace_id=_str(r.trace_id),
                  span_id=_str(r.span_id), observed_ns=int(r.observed_ns), severity_number=int(r.severity_number),
                  severity_text=_str(r.severity_text), pod=_str(r.pod),
                  template_id=None if pd.isna(r.template_id) else int(r.template_id),
                  attributes=_json(r.attributes, {}), resource=_json(r.resource, {}))
        for r in df.itertuples(index=False)
    ]


@dataclass
class TraceView:
    """One trace: its spans in start order, each span's self time, and its log records."""

    trace_id: str
    spans: list[Span]
    self_time_ns: dict[str, int]
    logs: list[LogRecord] = field(default_factory=list)

    @property
    def start_ns(self) -> int:
        return min(s.start_ns for s in self.spans)

    @property
    def duration_ns(self) -> int:
        return max(s.end_ns for s in self.spans) - self.start_ns

    def roots(self) -> list[Span]:
        ids = {s.span_id for s in self.spans}
        return [s for s in self.spans if not s.parent_span_id or s.parent_span_id not in ids]

    def children(self) -> dict[str, list[Span]]:
        out: dict[str, list[Span]] = {}
        for s in self.spans:
            out.setdefault(s.parent_span_id, []).append(s)
        return out

    def to_dict(self) -> dict[str, Any]:
        spans = []
        for s in self.spans:
            d = s.to_dict()
            d["self_time_ns"] = self.self_time_ns[s.span_id]
            spans.append(d)
        return {
            "trace_id": self.trace_id, "start_ns": self.start_ns, "duration_ns": self.duration_ns,
            "n_spans": len(self.spans), "n_logs": len(self.logs),
            "services": sorted({s.service for s in self.spans}),
            "error": any(s.status_code == 2 for s in self.spans),
            "spans": spans, "logs": [r.to_dict() for r in self.logs],
        }


def read_trace(store, trace_id: str) -> TraceView:
    """Load a trace from the store; raises NotFound for an unknown id, InvalidInput for a malformed one."""
    tid = normalize_trace_id(trace_id)
    spans_df, logs_df = store.get_trace(tid)
    selfs = self_times(spans_df)
    spans = spans_from_frame(spans_df)
    return TraceView(trace_id=tid, spans=spans,
                     self_time_ns={s.span_id: int(v) for s, v in zip(spans, selfs.to_numpy())},
                     logs=logs_from_frame(logs_df))
