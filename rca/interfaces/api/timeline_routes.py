"""REST: GET /api/v1/timeline, the time-ordered replay of a trace or a window (same JSON as `rca timeline --json`)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from rca.interfaces.api.params import query_time

router = APIRouter(prefix="/api/v1", tags=["timeline"])


@router.get("/timeline", summary="Span starts/ends, logs, metric shifts and anomaly flags in time order")
def timeline(request: Request, trace_id: str | None = None, start: str | None = None, end: str | None = None,
             service: list[str] | None = Query(None, description="Only these services (repeatable)."),
             at: str | None = Query(None, description="Also the state at this instant."),
             limit: int = Query(500, ge=1, le=100_000)) -> dict:
    """One trace (``trace_id``) or a window (``start`` and ``end``: ISO 8601, Unix seconds, ``-15m``);
    with ``at``, the spans in flight, last log lines and metric values then."""
    from rca.localize.timeline import build_timeline

    runtime = request.app.state.runtime
    return build_timeline(runtime.store, runtime.templates, trace_id=trace_id or None,
                          start_ns=query_time(start, "start"), end_ns=query_time(end, "end"), services=service,
                          at_ns=query_time(at, "at"), limit=limit).to_dict()
