"""REST: /api/v1/incidents (the knowledge base) and /api/v1/explain/{id}/feedback."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Request

router = APIRouter(prefix="/api/v1", tags=["knowledge base"])


def _kb(request: Request):
    return request.app.state.runtime.kb


@router.post("/incidents", status_code=201)
def add_incident(request: Request, body: Any = Body(...)) -> dict:
    """Record one incident (object) or several (list, all or nothing)."""
    from rca.errors import InvalidInput
    from rca.kb.incidents import check_unique, incident_from_dict

    items = body if isinstance(body, list) else [body]
    if not items:
        raise InvalidInput("no incidents given")
    incidents = []
    for i, item in enumerate(items):
        try:
            incidents.append(incident_from_dict(item))
        except InvalidInput as exc:
            if isinstance(body, list):
                raise type(exc)(f"item {i + 1}: {exc.message}", dict(exc.details, item=i + 1)) from exc
            raise
    check_unique(incidents, [f"item {i + 1}" for i in range(len(incidents))])
    _kb(request).add(incidents)
    out = [i.to_dict() for i in incidents]
    return {"incidents": out} if isinstance(body, list) else out[0]


@router.get("/incidents")
def list_incidents(request: Request, limit: int = Query(100, ge=1, le=10_000),
                   offset: int = Query(0, ge=0)) -> dict:
    kb = _kb(request)
    return {"total": kb.count(), "incidents": [i.to_dict() for i in kb.list(limit=limit, offset=offset)]}


@router.get("/incidents/search")
def search_incidents(request: Request, q: str = Query(..., description="What happened, in words"),
                     k: int = Query(5, ge=1, le=100)) -> dict:
    return {"query": q, "results": [h.to_dict() for h in _kb(request).search(q, k)]}


@router.get("/incidents/{incident_id}")
def get_incident(request: Request, incident_id: str) -> dict:
    return _kb(request).get(incident_id).to_dict()


@router.delete("/incidents/{incident_id}")
def delete_incident(request: Request, incident_id: str) -> dict:
    return {"deleted": _kb(request).delete(incident_id).id}


@router.post("/explain/{explain_id}/feedback")
def explain_feedback(request: Request, explain_id: str, body: dict = Body(...)) -> dict:
    """Body ``{"confirm": rank, "fix": "..."}`` or ``{"reject": rank}``."""
    from rca.errors import InvalidInput
    from rca.kb.feedback import record_feedback

    unknown = sorted(set(body) - {"confirm", "reject", "fix"})
    if unknown:
        raise InvalidInput(f"unknown feedback field(s): {', '.join(unknown)}", {"fields": unknown})
    return record_feedback(_kb(request), explain_id, confirm=body.get("confirm"), reject=body.get("reject"),
                           fix=body.get("fix"))
