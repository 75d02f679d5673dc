"""Trace-level localization: where did this request's latency or failure originate?

The originating span is told apart from the ones that only waited on it: a span whose
own (self) time is far above its operation's baseline, or the deepest failing span
whose children did not fail, is an origin; its ancestors that merely took longer or
failed because of it are propagation, and the root span is the impact users saw.
"""

from __future__ import annotations

import time
import uuid

import numpy as np
import pandas as pd

from rca.localize.evidence import ERRORISH, clip, span_link
from rca.model import Evidence, Explanation, Hypothesis

SELF_Z = 3.0  # robust SDs of log self time that count as "slow here"
NO_CLEAR_CAUSE = "no clear root cause: every span of this trace is within its operation's usual range"


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.1f} ms"


def explain_trace(trace_id: str, spans: pd.DataFrame, logs: pd.DataFrame, span_model, templates=None,
                  max_hypotheses: int = 5) -> Explanation:
    t0 = time.perf_counter()
    scored = span_model.score_samples(spans, logs).set_index("span_id", drop=False)
    events = spans.set_index("span_id").get("events")
    children = scored.groupby("parent_span_id")["span_id"].apply(list).to_dict()
    err = scored["error"] == 1
    child_err = {sid: any(err.get(c, False) for c in children.get(sid, [])) for sid in scored.index}
    error_origin = err & ~pd.Series(child_err)
    slow_origin = (scored["self_z"] >= SELF_Z) & (scored["self_ns"] > 1e6)
    error_logs = scored["error_logs"] > 0
    score = (np.clip(scored["self_z"], 0, 20) * slow_origin + 6.0 * error_origin + 2.0 * error_logs
             + 2.0 * scored["anomalous"])
    explanation = Explanation(id=uuid.uuid4().hex[:12], query={"trace_id": trace_id}, created_ns=time.time_ns())
    candidates = score[(slow_origin | error_origin | error_logs)].sort_values(ascending=False)
    if candidates.empty:
        explanation.message = NO_CLEAR_CAUSE
        explanation.seconds = time.perf_counter() - t0
        return explanation

    parents = scored["parent_span_id"].to_dict()
    ancestors_of_top: set[str] = set()
    p = parents.get(candidates.index[0], "")
    while p and p in parents:
        ancestors_of_top.add(p)
        p = parents.get(p, "")

    hyps: list[Hypothesis] = []
    seen: set[tuple[str, str]] = set()
    for sid, s in candidates.items():
        sp = scored.loc[sid]
        key = (sp["service"], sp["name"])
        if key in seen:
            continue
        seen.add(key)
        kind = "error" if (error_origin[sid] or error_logs[sid]) and not slow_origin[sid] else "latency"
        role = "propagation" if sid in ancestors_of_top else "root_cause"
        if role == "propagation" and not sp["parent_span_id"]:
            role = "impact"  # the request users saw
        if not hyps:
            role = "root_cause"
        evidence = [Evidence("span", {"trace_id": trace_id, "span_id": sid, "operation": sp["name"]},
                             f"{sp['service']} {sp['name']}: {_ms(sp['duration_ns'])} total, {_ms(sp['self_ns'])} in "
                             f"its own code ({sp['self_z']:+.1f} robust SDs vs its usual self time)"
                             + ("; failed" if err[sid] else ""), span_link(trace_id, sid))]
        if events is not None and isinstance(events.get(sid), str) and "exception" in events.get(sid, ""):
            from rca.anomaly.features import exception_messages

            for msg in exception_messages(events[sid])[:2]:
                evidence.append(Evidence("span", {"trace_id": trace_id, "span_id": sid}, f"exception: {msg}",
                                         span_link(trace_id, sid)))
        mine = logs[logs["span_id"] == sid] if not logs.empty else logs
        for _, lg in mine.sort_values("severity_number", ascending=False).head(3).iterrows():
            text = lg["body"]
            if lg["severity_number"] < 13 and not ERRORISH.search(text):
                continue
            evidence.append(Evidence("log", {"trace_id": trace_id, "span_id": sid},
                                     f"log: {clip(text, 200)}", span_link(trace_id, sid)))
            tid = lg.get("template_id")
            if templates is not None and tid is not None and tid == tid:
                evidence.append(Evidence("log_template", {"service": sp["service"], "template_id": int(tid),
                                                          "template": templates.template_text(int(tid))},
                                         f"template: {clip(templates.template_text(int(tid)), 160)}",
                                         f"/api/v1/logs?service={sp['service']}&template_id={int(tid)}"))
        why = []
        if slow_origin[sid]:
            why.append(f"spent {_ms(sp['self_ns'])} in its own code, far above usual")
        if error_origin[sid]:
            why.append("is the deepest failing span (its callees did not fail)")
        if error_logs[sid]:
            why.append(f"logged {int(sp['error_logs'])} error line(s)")
        summary = f"{sp['service']} {sp['name']} " + " and ".join(why) if why else f"{sp['service']} {sp['name']} is unusual"
        if role == "propagation":
            summary += "; it sits above a deeper suspect, so this is likely a knock-on effect"
        elif role == "impact":
            summary += "; this is what the caller saw, explained by the deeper suspect"
        hyps.append(Hypothesis(rank=len(hyps) + 1, service=sp["service"], operation=sp["name"], kind=kind, role=role,
                               score=float(1 - np.exp(-s / 10.0)), summary=summary + ".", evidence=evidence))
        if len(hyps) >= max_hypotheses:
            break

    root = scored[scored["parent_span_id"] == ""]
    if len(root) and hyps and root.index[0] not in {e.ref.get("span_id") for h in hyps for e in h.evidence}:
        r = root.iloc[0]
        hyps.append(Hypothesis(
            rank=len(hyps) + 1, service=r["service"], operation=r["name"], kind=hyps[0].kind, role="impact",
            score=float(min(hyps[-1].score, 0.3)),
            summary=f"users saw {r['name']} take {_ms(r['duration_ns'])}" + (" and fail" if err[r['span_id']] else "")
            + f"; explained by {hyps[0].service} {hyps[0].operation}.",
            evidence=[Evidence("trace", {"trace_id": trace_id}, f"the whole trace: {len(scored)} spans",
                               f"/api/v1/traces/{trace_id}")]))
    explanation.hypotheses = hyps
    explanation.ranking = list(dict.fromkeys(h.service for h in hyps))
    explanation.fingerprint = {
        "services": explanation.ranking, "operations": [f"{h.service}/{h.operation}" for h in hyps],
        "templates": [e.ref["template"] for h in hyps for e in h.evidence if e.type == "log_template"][:10],
        "metric_shifts": [], "summary": " ".join(h.summary for h in hyps[:2]),
    }
    explanation.seconds = time.perf_counter() - t0
    return explanation
