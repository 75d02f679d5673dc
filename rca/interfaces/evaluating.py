"""`rca eval CASES.jsonl`: ingest a labelled suite into a store, train, explain every case window, score."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from rca.config import Settings
from rca.interfaces.runtime import Runtime
from rca.localize.evaluation import CaseResult, accuracy, read_cases, summarize


def evaluate_cases(settings: Settings, cases_path: str | Path, store_home: str | Path | None = None,
                   kb_loo: bool = False, on_case: Callable[[CaseResult], None] | None = None) -> dict[str, Any]:
    """Score window-level explain on the cases; see ``rca.localize.evaluation.summarize`` for the shape."""
    cases = read_cases(cases_path)
    with tempfile.TemporaryDirectory(prefix="rca-eval-") as tmp:
        home = Path(store_home) if store_home else Path(tmp)
        runtime = Runtime(settings.with_(home=home))
        try:
            timings: dict[str, float] = {}
            if store_home is None:
                from rca.interfaces.cli.ingest_cmd import ingest_paths

                t0 = time.perf_counter()
                ingest_paths(runtime, [Path(cases_path).resolve().parent])
                timings["ingest_seconds"] = time.perf_counter() - t0
            result = _score(runtime, cases, kb_loo, on_case, timings)
        finally:
            runtime.close()
    return result


def _score(runtime: Runtime, cases, kb_loo: bool, on_case, timings: dict[str, float]) -> dict[str, Any]:
    from rca.interfaces.explaining import BASELINE_HOURS, explain, span_model
    from rca.localize.telemetry import HOUR_NS, load_telemetry

    t0 = time.perf_counter()
    span_model(runtime)  # trained once, like `rca train` on the stored baseline
    timings["train_seconds"] = time.perf_counter() - t0
    lo = min(c.start_ns for c in cases) - int(BASELINE_HOURS * HOUR_NS)
    hi = max(c.end_ns for c in cases) + int(BASELINE_HOURS * HOUR_NS)
    t0 = time.perf_counter()
    tel = load_telemetry(runtime.store, lo, hi, canonical=runtime.templates.canonical_id)
    timings["load_seconds"] = time.perf_counter() - t0
    results: list[CaseResult] = []
    for case in cases:
        t0 = time.perf_counter()
        ex = explain(runtime, start_ns=case.start_ns, end_ns=case.end_ns, use_kb=False, save=False, telemetry=tel)
        seconds = time.perf_counter() - t0
        # labels are read only now, after ranking
        truth = (case.labels.get("root_cause") or {}).get("service", "")
        r = CaseResult(case.case_id, truth, str(case.labels.get("fault_type", "unknown")), ex.ranking, seconds,
                       ex.to_dict())
        results.append(r)
        if on_case:
            on_case(r)
    out = summarize(results)
    out.update(timings)
    if kb_loo:
        out.update(_kb_loo(results))
    return out


def _kb_loo(results: list[CaseResult]) -> dict[str, Any]:
    from rca.kb.loo import kb_leave_one_out

    loo = kb_leave_one_out([{"case_id": r.case_id, "truth_service": r.truth, "fault_type": r.fault_type,
                             "fingerprint": r.explanation.get("fingerprint") or {},
                             "hypotheses": r.explanation.get("hypotheses") or []} for r in results], k=3)
    # the KB re-ranks the hypotheses (top 5); services below them keep the telemetry order
    with_kb = []
    for r, row in zip(results, loo):
        head = row["ranking"]
        with_kb.append(head + [s for s in r.ranking if s not in head])
    without = accuracy(results)
    withk = accuracy(results, with_kb)
    out = {}
    for k in ("ac1", "ac3", "ac5", "avg5"):
        out[f"{k}_without_kb"] = without[k]
        out[f"{k}_with_kb"] = withk[k]
    out["kb_loo_cases"] = [{"case_id": r.case_id, "ranking_with_kb": x[:5], "neighbours": row["neighbours"]}
                           for r, x, row in zip(results, with_kb, loo)]
    return out
