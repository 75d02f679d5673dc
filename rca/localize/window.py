"""Window-level localization: rank services (and operations within them) for an incident window."""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlencode

import numpy as np
import pandas as pd

from rca.localize.callgraph import CallGraph, propagate
from rca.localize.evidence import window_evidence
from rca.anomaly.invariants import InvariantIndex
from rca.anomaly.shift import baseline_stats
from rca.localize.signals import (METRIC_KEYS, SELF_QUANTILE, ServiceSignals, as_rates,
                                  invariant_signal, log_signals, metric_signals, pattern_signal, self_time_frame,
                                  self_time_signal, silence_signal, span_patterns, span_signals, unreachable_signal)
from rca.localize.telemetry import Telemetry
from rca.model import Evidence, Explanation, Hypothesis

# how much each signal counts toward a service's own anomaly
WEIGHTS = {"log_mix": 0.5, "error_logs": 1.0, "op_mix": 0.5, "latency": 0.5, "resource": 0.3, "network": 0.3,
           "self_time": 0.5, "silence": 1.0, "log_invariant": 0.5}
THRESHOLD = 3.0
KIND_OF_SIGNAL = {"resource": "resource", "network": "network", "latency": "latency", "self_time": "latency",
                  "silence": "error", "log_invariant": "error"}  # own score at which a service counts as anomalous
NO_CLEAR_CAUSE = "no clear root cause: no service's telemetry in this window differs clearly from its own baseline"


def window_signals(tel: Telemetry, start_ns: int, end_ns: int, span_model=None, templates=None) -> ServiceSignals:
    spans = tel.spans
    log_mix, err_logs, mix = log_signals(tel.logs, start_ns, end_ns)
    scored = None
    if span_model is not None and not spans.empty:
        in_w = (spans["start_ns"] >= start_ns) & (spans["start_ns"] < end_ns)
        trace_ids = spans.loc[in_w, "trace_id"].unique()
        window_spans = spans[spans["trace_id"].isin(trace_ids)]
        wlogs = tel.logs[tel.logs["trace_id"].isin(trace_ids)] if not tel.logs.empty else None
        scored = span_model.score_samples(window_spans, wlogs)
        scored = scored[(scored["start_ns"] >= start_ns) & (scored["start_ns"] < end_ns)]
    op_mix, latency, ops = span_signals(spans, scored, start_ns, end_ns)
    # baselines over all loaded data, computed once per Telemetry: robust statistics, and the window is a
    # small minority of what is loaded (explaining many windows then costs little more than one)
    rates = tel.cached("metric_rates", lambda: as_rates(tel.metrics))
    m_base = tel.cached("metric_baseline", lambda: baseline_stats(rates, METRIC_KEYS, "value"))
    resource, network, shifts = metric_signals(rates, start_ns, end_ns, m_base)
    st_frame = tel.cached("self_frame", lambda: self_time_frame(spans, tel.self_ns()))
    st_base = tel.cached("self_baseline", lambda: baseline_stats(st_frame, ["service", "name"], "v", SELF_QUANTILE))
    self_time, self_shifts = self_time_signal(st_frame, spans, start_ns, end_ns, st_base)
    silence = silence_signal(spans, start_ns, end_ns).add(unreachable_signal(spans, start_ns, end_ns), fill_value=0.0)
    patterns = tel.cached("span_patterns", lambda: span_patterns(tel.logs))
    pattern, pattern_mix = pattern_signal(patterns, start_ns, end_ns)
    log_mix = log_mix.combine(pattern, max, fill_value=0.0) if len(pattern) else log_mix
    invariants = tel.cached("log_invariants", lambda: InvariantIndex(tel.logs, tel.spans,
                                                                     statement=_statements(tel, templates)))
    invariant, broken = invariant_signal(invariants, start_ns, end_ns)
    return ServiceSignals(log_mix, err_logs, op_mix, latency, resource, network, self_time, silence, invariant,
                          details={"log_mix": mix, "op_mix": ops, "scored": scored, "metric_shifts": shifts,
                                   "self_shifts": self_shifts, "broken_invariants": broken,
                                   "invariant_index": invariants})


def _statements(tel: Telemetry, templates) -> dict[int, int] | None:
    if templates is None or tel.logs.empty:
        return None
    return templates.statements(tel.logs["template_id"].dropna().astype("int64").unique())


def _kind(row: pd.Series, error_templates: bool) -> str:
    contrib = {k: row[k] * w for k, w in WEIGHTS.items()}
    top = max(contrib, key=contrib.get)
    if top in KIND_OF_SIGNAL:
        return KIND_OF_SIGNAL[top]
    if top == "log_mix" and not error_templates and row["error_logs"] < THRESHOLD:
        return "unknown"  # the logs changed, but not towards errors
    return "error"


def explain_window(tel: Telemetry, start_ns: int, end_ns: int, span_model=None, templates=None,
                   max_hypotheses: int = 5) -> Explanation:
    """Rank services for ``[start_ns, end_ns)`` using ``tel`` (the window plus its baseline)."""
    t0 = time.perf_counter()
    sig = window_signals(tel, start_ns, end_ns, span_model, templates)
    frame = sig.frame()
    own = sum(frame[k] * w for k, w in WEIGHTS.items()) if not frame.empty else pd.Series(dtype=float)
    graph = CallGraph(tel.service_edges())
    final, roles = propagate(own.to_dict(), graph, THRESHOLD)
    ranked = sorted(final.items(), key=lambda kv: (-kv[1], kv[0]))
    explanation = Explanation(id=uuid.uuid4().hex[:12], query={"start": int(start_ns), "end": int(end_ns)},
                              created_ns=time.time_ns())
    top_score = ranked[0][1] if ranked else 0.0
    if top_score < THRESHOLD:
        explanation.message = NO_CLEAR_CAUSE
        explanation.ranking = [s for s, _ in ranked]
        explanation.seconds = time.perf_counter() - t0
        return explanation
    hyps = []
    for service, score in ranked[:max_hypotheses]:
        if score < THRESHOLD * 0.5 and hyps:
            break
        row = frame.loc[service]
        evidence, operation, error_templates, summary_bits = window_evidence(
            service, sig, tel, start_ns, end_ns, templates)
        if not evidence:  # weak on every signal: still say which ones, and where to look
            parts = ", ".join(f"{k.replace('_', ' ')} {row[k]:.1f}" for k in WEIGHTS if row[k] >= 0.5)
            evidence.append(Evidence(
                "trace", {"service": service},
                f"no single strong signal; anomaly scores (robust SDs above usual): {parts or 'all below 0.5'}",
                "/api/v1/traces?" + urlencode({"service": service, "start": int(start_ns), "end": int(end_ns)})))
        kind = _kind(row, error_templates)
        role = roles.get(service, "root_cause")
        hyps.append(Hypothesis(
            rank=len(hyps) + 1, service=service, operation=operation, kind=kind, role=role,
            score=float(1.0 - np.exp(-score / 10.0)),
            summary=_summary(service, kind, role, summary_bits, graph, final),
            evidence=evidence))
    explanation.hypotheses = hyps
    explanation.ranking = [s for s, _ in ranked]
    explanation.fingerprint = fingerprint(hyps, sig, templates)
    explanation.seconds = time.perf_counter() - t0
    return explanation


def _summary(service: str, kind: str, role: str, bits: list[str], graph: CallGraph, final: dict) -> str:
    what = {"latency": "is slow in its own code", "error": "is failing", "resource": "is short of resources",
            "network": "has network trouble", "unknown": "changed its behaviour"}[kind]
    lead = f"{service} {what}"
    if role == "root_cause":
        callers = sorted(graph.ancestors(service) & {s for s, v in final.items() if v >= THRESHOLD})
        tail = f"; {', '.join(callers[:3])} show the knock-on effects" if callers else ""
    elif role == "propagation":
        tail = "; this looks like a knock-on effect of a service it calls"
    else:
        tail = "; users see this, but it is explained by services further down"
    return lead + (f" ({'; '.join(bits[:2])})" if bits else "") + tail + "."


def fingerprint(hyps: list[Hypothesis], sig: ServiceSignals, templates=None) -> dict:
    """What the knowledge base compares incidents by: services, operations, templates, metric shifts."""
    services = [h.service for h in hyps]
    ops = [f"{h.service}/{h.operation}" for h in hyps if h.operation]
    tmpl = []
    for h in hyps:
        for ev in h.evidence:
            if ev.type == "log_template" and ev.ref.get("template"):
                tmpl.append(ev.ref["template"])
    shifts = sig.details.get("metric_shifts")
    metric_shifts = []
    if shifts is not None and not shifts.empty:
        top = shifts[shifts["service"].isin(services)].nlargest(5, "z")
        metric_shifts = [f"{s}:{n}" for s, n in zip(top["service"], top["name"])]
    summary = " ".join(h.summary for h in hyps[:2])
    return {"services": services, "operations": ops, "templates": tmpl[:10], "metric_shifts": metric_shifts,
            "summary": summary}
