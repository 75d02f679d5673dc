"""Where evidence links land: log lines by service/template/trace/time, metric points by service/name/time."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from rca.interfaces.api.params import filters, query_time, records

router = APIRouter(prefix="/api/v1", tags=["evidence"])


@router.get("/logs", summary="Log records by service, template, trace and time")
def get_logs(request: Request, service: str | None = None, template_id: int | None = None,
             trace_id: str | None = None, start: str | None = None, end: str | None = None,
             limit: int = Query(100, ge=1, le=5000)) -> dict:
    runtime = request.app.state.runtime
    text, ids = None, None
    if template_id is not None:
        # stored rows keep the id they were mined with; templates merged since then share one canonical id
        templates = runtime.templates
        canon = templates.canonical_id(template_id)
        ids = [int(t) for t in templates.templates()["template_id"] if templates.canonical_id(int(t)) == canon]
        ids = ids or [template_id]
        text = templates.text_or_none(template_id)
    cond, params = filters({"service": service, "trace_id": trace_id and trace_id.lower(), "template_id": ids},
                           "time_ns", query_time(start, "start"), query_time(end, "end"))
    store = runtime.store
    total = int(store.query(f"SELECT count(*) AS n FROM logs WHERE {cond}", params)["n"].iloc[0])
    df = store.query(f"SELECT * FROM logs WHERE {cond} ORDER BY time_ns LIMIT {int(limit)}", params)
    return {"n_total": total, "template": text, "logs": records(df, ("attributes", "resource"))}


@router.get("/metrics", summary="Metric points by service, name and time")
def get_metrics(request: Request, service: str | None = None, name: str | None = None, start: str | None = None,
                end: str | None = None, limit: int = Query(1000, ge=1, le=20000)) -> dict:
    cond, params = filters({"service": service, "name": name}, "time_ns", query_time(start, "start"),
                           query_time(end, "end"))
    df = request.app.state.runtime.store.query(
        f"SELECT time_ns, service, pod, name, unit, value FROM metrics WHERE {cond} ORDER BY time_ns "
        f"LIMIT {int(limit)}", params)
    return {"points": records(df)}
