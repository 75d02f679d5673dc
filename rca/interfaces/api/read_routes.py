"""Reading the store back: one trace (span tree + logs), trace lists, services, stats, log templates."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from rca.errors import InvalidInput
from rca.interfaces.api.params import query_time, records

router = APIRouter(prefix="/api/v1", tags=["read"])


@router.get("/traces/{trace_id}", summary="One trace: spans (with self time) and linked logs")
def get_trace(trace_id: str, request: Request) -> dict:
    from rca.store.trace_view import read_trace

    return read_trace(request.app.state.runtime.store, trace_id).to_dict()


@router.get("/traces", summary="Traces, newest first")
def list_traces(request: Request, service: str | None = None, start: str | None = None, end: str | None = None,
                limit: int = Query(100, ge=1, le=100_000)) -> dict:
    start_ns, end_ns = query_time(start, "start"), query_time(end, "end")
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise InvalidInput("end must be after start", {"start": start, "end": end})
    df = request.app.state.runtime.store.list_traces(service=service or None, start_ns=start_ns, end_ns=end_ns,
                                                     limit=limit)
    traces = records(df)
    for t in traces:
        t["error"] = bool(t["error"])
    return {"traces": traces, "n_traces": len(traces)}


@router.get("/services", summary="Services seen, with counts per signal")
def services(request: Request) -> dict:
    return {"services": records(request.app.state.runtime.store.services())}


@router.get("/stats", summary="What the store holds")
def stats(request: Request) -> dict:
    return request.app.state.runtime.store.stats()


@router.get("/templates", summary="Log templates of a window, most frequent first, with new/rare/error flags")
def templates(request: Request, service: str | None = None, start: str | None = None, end: str | None = None,
              limit: int = Query(50, ge=1)) -> dict:
    from rca.templates.report import summarize_templates

    runtime = request.app.state.runtime
    return summarize_templates(runtime.store, runtime.templates, service or None, query_time(start, "start"),
                               query_time(end, "end"), limit).to_dict()
