"""POST /api/v1/explain and GET /api/v1/explain/{id}."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from rca.interfaces.api.params import query_time

router = APIRouter(prefix="/api/v1", tags=["explain"])


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_id: str | None = None
    start: str | int | None = None
    end: str | int | None = None
    use_kb: bool = True


@router.post("/explain", summary="Rank root-cause hypotheses for a trace or an incident window")
def post_explain(body: ExplainRequest, request: Request) -> dict:
    from rca.interfaces.explaining import explain

    runtime = request.app.state.runtime
    result = explain(runtime, trace_id=body.trace_id, start_ns=query_time(body.start, "start"),
                     end_ns=query_time(body.end, "end"), use_kb=body.use_kb)
    return result.to_dict()


@router.get("/explain/{explain_id}", summary="A stored explain result")
def get_explain(explain_id: str, request: Request) -> dict:
    from rca.kb.explains import load_explain

    return load_explain(request.app.state.runtime.store, explain_id)
