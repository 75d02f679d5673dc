"""POST /api/v1/explain, GET /api/v1/explain/{id}, and the log/metric views evidence links land on."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict

from rca.errors import InvalidInput

router = APIRouter(prefix="/api/v1", tags=["explain"])


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_id: str | None = None
    start: str | int | None = None
    end: str | int | None = None
    use_kb: bool = True


def _time(value, what: str) -> int | None:
    from rca.timeutil import parse_time

    if value is None:
        return None
    try:
        return parse_time(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc.message}", {what: value}) from exc


@router.post("/explain", summary="Rank root-cause hypotheses for a trace or an incident window")
def post_explain(body: ExplainRequest, request: Request) -> dict:
    from rca.interfaces.explaining import explain

    runtime = request.app.state.runtime
    result = explain(runtime, trace_id=body.trace_id, start_ns=_time(body.start, "start"),
                     end_ns=_time(body.end, "end"), use_kb=body.use_kb)
    return result.to_dict()


@router.get("/explain/{explain_id}", summary="A stored explain result")
def get_explain(explain_id: str, request: Request) -> dict:
    from rca.kb.explains import load_explain

    return load_explain(request.app.state.runtime.store, explain_id)


def _records(df) -> list[dict]:
    import json

    import numpy as np

    out = []
    for row in df.replace({np.nan: None}).to_dict(orient="records"):
        for k in ("attributes", "resource"):
            if isinstance(row.get(k), str):
                row[k] = json.loads(row[k])
        out.append(row)
    return out


@router.get("/logs", summary="Log records by service, template, trace and time")
def get_logs(request: Request, service: str | None = None, template_id: int | None = None,
             trace_id: str | None = None, start: str | None = None, end: str | None = None,
             limit: int = Query(100, ge=1, le=5000)) -> dict:
    runtime = request.app.state.runtime
    where, params = [], []
    for col, val in (("service", service), ("trace_id", trace_id and trace_id.lower())):
        if val:
            where.append(f"{col} = ?")
            params.append(val)
    lo, hi = _time(start, "start"), _time(end, "end")
    if lo is not None:
        where.append("time_ns >= ?")
        params.append(lo)
    if hi is not None:
        where.append("time_ns < ?")
        params.append(hi)
    if template_id is not None:
        ids = [template_id]
        templates = runtime.templates
        known = templates.templates()
        ids = [int(t) for t in known["template_id"] if templates.canonical_id(int(t)) == templates.canonical_id(template_id)] or ids
        where.append(f"template_id IN ({', '.join('?' for _ in ids)})")
        params += ids
    cond = " AND ".join(where) or "TRUE"
    store = runtime.store
    total = int(store.query(f"SELECT count(*) AS n FROM logs WHERE {cond}", params)["n"].iloc[0])
    df = store.query(f"SELECT * FROM logs WHERE {cond} ORDER BY time_ns LIMIT {int(limit)}", params)
    text = runtime.templates.text_or_none(template_id) if template_id is not None else None
    return {"n_total": total, "template": text, "logs": _records(df)}


@router.get("/metrics", summary="Metric points by service, name and time")
def get_metrics(request: Request, service: str | None = None, name: str | None = None, start: str | None = None,
                end: str | None = None, limit: int = Query(1000, ge=1, le=20000)) -> dict:
    runtime = request.app.state.runtime
    where, params = [], []
    for col, val in (("service", service), ("name", name)):
        if val:
            where.append(f"{col} = ?")
            params.append(val)
    lo, hi = _time(start, "start"), _time(end, "end")
    if lo is not None:
        where.append("time_ns >= ?")
        params.append(lo)
    if hi is not None:
        where.append("time_ns < ?")
        params.append(hi)
    cond = " AND ".join(where) or "TRUE"
    df = runtime.store.query(f"SELECT time_ns, service, pod, name, unit, value FROM metrics WHERE {cond} "
                             f"ORDER BY time_ns LIMIT {int(limit)}", params)
    df["value"] = df["value"].astype(float)
    return {"points": _records(df.astype(object).where(df.notna(), None))}
