"""Store a decoded Batch: template the log bodies, infer missing severities, append
everything as one batch. Shared by the OTLP/HTTP receiver and `rca ingest`.

Batches are stored concurrently (the store's log lets concurrent appends share
one fdatasync); only templating is one at a time, and the template state is
persisted before the rows that refer to its ids are appended."""

from __future__ import annotations

import threading

import pyarrow as pa

from rca.ingest.batch import Batch
from rca.interfaces.runtime import Runtime

_template_lock = threading.Lock()
_AS_REQUEST = ("spans", "metrics")  # tables stored as decoded (logs get template ids and severities)


def _with_templates(runtime: Runtime, logs: pa.Table) -> pa.Table:
    from rca.templates.severity import infer_severity

    bodies = logs.column("body").to_pylist()
    ids = runtime.templates.learn(bodies)
    logs = logs.set_column(logs.schema.get_field_index("template_id"), "template_id", pa.array(ids, pa.int32()))
    sev = logs.column("severity_number").to_pylist()
    if any(s == 0 for s in sev):
        inferred = infer_severity([b for b, s in zip(bodies, sev) if s == 0])
        it = iter(inferred)
        sev = [next(it) if s == 0 else s for s in sev]
        logs = logs.set_column(logs.schema.get_field_index("severity_number"), "severity_number",
                               pa.array(sev, pa.int8()))
    return logs


def store_batch(runtime: Runtime, batch: Batch, request: bytes | None = None) -> dict[str, int]:
    """Append the batch's tables (logs templated first); returns rows stored per table. ``request``: the
    OTLP/protobuf request the batch is the decoding of (the store may log it instead of the rows)."""
    tables = {k: v for k, v in batch.tables.items() if v is not None and v.num_rows}
    if not tables:
        return {k: 0 for k in batch.tables}
    if "logs" in tables:
        with _template_lock:  # ids and the persisted state move together
            tables["logs"] = _with_templates(runtime, tables["logs"])
            runtime.templates.persist(runtime.store)  # before the rows that refer to its ids
    requests = {t: request for t in tables if t in _AS_REQUEST} if request is not None else None
    counts = runtime.store.append_many(tables, requests)
    return {k: counts.get(k, 0) for k in batch.tables}
