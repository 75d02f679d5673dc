"""Reading the store back: one trace (span tree + logs), trace lists, services, stats."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from rca.errors import InvalidInput

router = APIRouter(prefix="/api/v1", tags=["read"])


def _time(value: str | None, what: str) -> int | None:
    if value is None or value == "":
        return None
    from rca.timeutil import parse_time

    try:
        return parse_time(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc.message}", {"parameter": what}) from None


def _records(df) -> list[dict]:
    import pandas as pd

    out = []
    for row in df.to_dict(orient="records"):
        out.append({k: (None if v is None or (isinstance(v, float) and pd.isna(v)) else
                        v.item() if hasattr(v, "item") else v) for k, v in row.items()})
    return out


@router.get("/traces/{trace_id}", summary="One trace: spans (with self time) and linked logs")
def get_trace(trace_id: str, request: Request) -> dict:
    from rca.store.trace_view import read_trace

    return read_trace(request.app.state.runtime.store, trace_id).to_dict()


@router.get("/traces", summary="Traces, newest first")
def list_traces(request: Request, service: str | None = None, start: str | None = None, end: str | None = None,
                limit: int = Query(100, ge=1, le=10_000)) -> dict:
    start_ns, end_ns = _time(start, "start"), _time(end, "end")
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise InvalidInput("end must be after start", {"start": start, "end": end})
    df = request.app.state.runtime.store.list_traces(service=service or None, start_ns=start_ns, end_ns=end_ns,
                                                     limit=limit)
    traces = _records(df)
    for t in traces:
        t["error"] = bool(t["error"])
    return {"traces": traces, "n_traces": len(traces)}


@router.get("/services", summary="Services seen, with counts per signal")
def services(request: Request) -> dict:
    return {"services": _records(request.app.state.runtime.store.services())}


@router.get("/stats", summary="What the store holds")
def stats(request: Request) -> dict:
    return request.app.state.runtime.store.stats()
