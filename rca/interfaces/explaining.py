"""Explain and train, as every interface (CLI, API, demo, eval) runs them.

Read paths never change a saved model: when none is trained yet, a span model is
fitted in memory on the stored baseline and kept for the process.
"""

from __future__ import annotations

import threading

from rca.errors import InvalidInput
from rca.interfaces.runtime import Runtime
from rca.model import Explanation

MAX_TRAIN_SPANS = 300_000
BASELINE_HOURS = 12.0
_lock = threading.Lock()


def span_model(runtime: Runtime):
    """The trained span model (models dir), else one fitted in memory on the stored data; cached."""
    from rca.anomaly.spans import SpanAnomalyModel
    from rca.errors import NotFitted

    cached = runtime.__dict__.get("_span_model")
    if cached is not None:
        return cached
    with _lock:
        try:
            model = SpanAnomalyModel.load(runtime.settings.models_dir)
        except NotFitted:
            model = _fit(runtime, None, None)
        runtime.__dict__["_span_model"] = model
    return model


def _fit(runtime: Runtime, start_ns: int | None, end_ns: int | None):
    from rca.anomaly.spans import SpanAnomalyModel

    where, params = [], []
    if start_ns is not None:
        where.append("start_ns >= ?")
        params.append(start_ns)
    if end_ns is not None:
        where.append("start_ns < ?")
        params.append(end_ns)
    cond = " AND ".join(where) or "TRUE"
    store = runtime.store
    # ordered: the forests subsample rows, so the same data must reach them in the same order every time
    spans = store.query(f"SELECT * FROM spans WHERE trace_id IN (SELECT trace_id FROM spans WHERE {cond} "
                        f"AND parent_span_id = '' ORDER BY hash(trace_id) LIMIT {MAX_TRAIN_SPANS // 10}) "
                        "ORDER BY start_ns, trace_id, span_id", params)
    if spans.empty:
        raise InvalidInput("no spans stored in that range to train on")
    logs = store.query("SELECT trace_id, span_id, severity_number FROM logs WHERE trace_id IN "
                       f"(SELECT DISTINCT trace_id FROM spans WHERE {cond})", params)
    return SpanAnomalyModel(random_state=runtime.settings.random_state,
                            min_samples=runtime.settings.min_samples_per_operation).fit(spans, logs)


def train(runtime: Runtime, start_ns: int | None = None, end_ns: int | None = None) -> dict:
    model = _fit(runtime, start_ns, end_ns)
    model.save(runtime.settings.models_dir)
    runtime.__dict__["_span_model"] = model
    return {"models_dir": str(runtime.settings.models_dir), "n_operations": len(model.models_) - 1,
            "n_operations_seen": int(len(model.op_stats_))}


def explain(runtime: Runtime, trace_id: str | None = None, start_ns: int | None = None, end_ns: int | None = None,
            use_kb: bool = True, save: bool = True, telemetry=None) -> Explanation:
    """Explain one trace or one incident window; attach similar past incidents; store the result."""
    if trace_id is None and (start_ns is None or end_ns is None):
        raise InvalidInput("give a trace id, or both start and end of a window")
    if trace_id is not None and (start_ns is not None or end_ns is not None):
        raise InvalidInput("give either a trace id or a window, not both")
    if trace_id is not None:
        from rca.localize.trace import explain_trace
        from rca.store.trace_view import normalize_trace_id

        tid = normalize_trace_id(trace_id)
        spans, logs = runtime.store.get_trace(tid)
        result = explain_trace(tid, spans, logs, span_model(runtime), runtime.templates)
    else:
        from rca.localize.telemetry import HOUR_NS, load_telemetry
        from rca.localize.window import explain_window

        if end_ns <= start_ns:
            raise InvalidInput("the window's end must be after its start", {"start": start_ns, "end": end_ns})
        tel = telemetry
        if tel is None or not tel.covers(start_ns, end_ns):
            lo = int(start_ns - BASELINE_HOURS * HOUR_NS)
            hi = int(end_ns + BASELINE_HOURS * HOUR_NS)
            tel = load_telemetry(runtime.store, lo, hi, canonical=runtime.templates.canonical_id)
        result = explain_window(tel, start_ns, end_ns, span_model(runtime), runtime.templates)
    if use_kb and result.hypotheses:
        from rca.kb.similar import attach_similar

        result.hypotheses = attach_similar(runtime.kb, result.hypotheses, result.fingerprint,
                                           k=runtime.settings.kb_top_k)
    if save:
        from rca.kb.explains import save_explain

        save_explain(runtime.store, result.to_dict(), result.query)
    return result
