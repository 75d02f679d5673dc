"""The FastAPI application: OTLP/HTTP receiver + REST API + web UI, on one port.

Routers live in small modules (one per concern); domain errors are mapped to
the one JSON error shape here, once.
"""

from __future__ import annotations

import importlib

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from rca.errors import RcaError
from rca.interfaces.runtime import Runtime

# module path -> attribute holding an APIRouter
ROUTERS = [
    "rca.interfaces.api.otlp_routes:router",
    "rca.interfaces.api.read_routes:router",
    "rca.interfaces.api.explain_routes:router",
    "rca.interfaces.api.evidence_routes:router",
    "rca.interfaces.api.kb_routes:router",
    "rca.interfaces.api.timeline_routes:router",
]


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="rca", version="0.1.0", description="Root-cause analysis for microservices")
    app.state.runtime = runtime

    @app.exception_handler(RcaError)
    async def _rca_error(request: Request, exc: RcaError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", "")} for e in exc.errors()]
        msg = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors) or "invalid request"
        return JSONResponse(error_body("invalid_input", msg, {"errors": errors}), status_code=422)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"status": "ok"}

    for target in ROUTERS:
        module, attr = target.split(":")
        app.include_router(getattr(importlib.import_module(module), attr))
    return app
