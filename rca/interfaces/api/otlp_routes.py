"""OTLP/HTTP receiver: POST /v1/traces, /v1/logs, /v1/metrics (protobuf or JSON, optionally gzip).

Responses follow the OTLP/HTTP spec: an Export*ServiceResponse in the request's
encoding (with ``partial_success`` when some records were rejected), or a
``google.rpc.Status`` for a request that cannot be taken at all. A 200 is sent
only after the data is durably stored (``Store.append_many``: logged and
fdatasync'd; concurrent requests share one fdatasync). The body is read on the
event loop; decompressing, decoding and storing run in a worker thread.
"""

from __future__ import annotations

import zlib
from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from rca.errors import InvalidInput, PayloadTooLarge, RcaError

router = APIRouter(tags=["otlp"])

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# signal -> (response class path, partial-success counter, table)
_SIGNALS = {
    "traces": ("opentelemetry.proto.collector.trace.v1.trace_service_pb2:ExportTraceServiceResponse",
               "rejected_spans", "spans"),
    "logs": ("opentelemetry.proto.collector.logs.v1.logs_service_pb2:ExportLogsServiceResponse",
             "rejected_log_records", "logs"),
    "metrics": ("opentelemetry.proto.collector.metrics.v1.metrics_service_pb2:ExportMetricsServiceResponse",
                "rejected_data_points", "metrics"),
}
# google.rpc.Code for each HTTP status we answer with
_RPC_CODE = {400: 3, 413: 8, 503: 14}


def _message_class(path: str):
    import importlib

    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _encode(message, encoding: str) -> bytes:
    if encoding == PROTOBUF:
        return message.SerializeToString()
    from google.protobuf import json_format

    return json_format.MessageToJson(message, indent=None).encode()


def _status_response(http_status: int, message: str, encoding: str) -> Response:
    from google.rpc import status_pb2

    status = status_pb2.Status(code=_RPC_CODE.get(http_status, 2), message=message)
    return Response(_encode(status, encoding), status_code=http_status, media_type=encoding)


def _encoding_of(request: Request) -> str | None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return {PROTOBUF: PROTOBUF, JSON: JSON}.get(media)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {int(declared)} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Decompress a gzip body, stopping as soon as the output would exceed ``limit`` bytes."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"corrupt gzip body: {exc}") from exc
    if len(out) > limit:
        raise PayloadTooLarge(f"decompressed body is over the limit of {limit} bytes")
    if not d.eof:
        raise InvalidInput("corrupt gzip body: truncated stream")
    return out


def _decode(body: bytes, encoding: str, signal: str):
    if encoding == PROTOBUF:
        from rca.ingest.otlp_proto import decode_proto

        return decode_proto(body, signal)
    from rca.ingest.otlp_json import decode_json

    return decode_json(body, signal)


def _decode_and_store(runtime, body: bytes, gzipped: bool, encoding: str, signal: str):
    """(In a worker thread.) The request's batch, durably stored."""
    from rca.interfaces.ingestion import store_batch

    if gzipped:
        body = gunzip_bounded(body, runtime.settings.max_body_bytes)
    batch = _decode(body, encoding, signal)
    store_batch(runtime, batch, body if encoding == PROTOBUF else None)
    return batch


@cache
def _accepted(signal: str, encoding: str) -> bytes:
    """The response to a request taken whole."""
    return _encode(_message_class(_SIGNALS[signal][0])(), encoding)


async def _export(request: Request, signal: str) -> Response:
    encoding = _encoding_of(request)
    if encoding is None:
        got = request.headers.get("content-type") or "none"
        return _status_response(400, f"unsupported Content-Type {got!r}: use {PROTOBUF} or {JSON}", JSON)
    content_encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if content_encoding not in ("identity", "gzip", ""):
        return _status_response(400, f"unsupported Content-Encoding {content_encoding!r}: use gzip or none",
                                encoding)
    runtime = request.app.state.runtime
    try:
        body = await _read_body(request, runtime.settings.max_body_bytes)
        batch = await run_in_threadpool(_decode_and_store, runtime, body, content_encoding == "gzip", encoding,
                                        signal)
    except RcaError as exc:
        return _status_response(exc.http_status, exc.message, encoding)
    response_cls, counter, table = _SIGNALS[signal]
    rejected = batch.rejected.get(table, 0)
    if not rejected:
        return Response(_accepted(signal, encoding), status_code=200, media_type=encoding)
    response = _message_class(response_cls)()
    setattr(response.partial_success, counter, rejected)
    response.partial_success.error_message = "; ".join(batch.errors[:5])
    return Response(_encode(response, encoding), status_code=200, media_type=encoding)


@router.post("/v1/traces", summary="OTLP/HTTP trace export")
async def export_traces(request: Request) -> Response:
    return await _export(request, "traces")


@router.post("/v1/logs", summary="OTLP/HTTP log export")
async def export_logs(request: Request) -> Response:
    return await _export(request, "logs")


@router.post("/v1/metrics", summary="OTLP/HTTP metric export")
async def export_metrics(request: Request) -> Response:
    return await _export(request, "metrics")
