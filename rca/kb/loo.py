"""Leave-one-out evaluation of the knowledge base (``rca eval --kb-loo``).

For each case, the KB holds the OTHER cases' confirmed root causes, recorded exactly
as a confirmation through feedback would record them (``incident_from_hypothesis``),
and the case's hypotheses are re-ranked by the same ``adjust_scores`` an explain uses.
Similarity is exact cosine (what the flat FAISS index returns); the case itself is
never in its own KB.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rca.errors import InvalidInput
from rca.kb.feedback import hypothesis_from_dict, incident_from_hypothesis
from rca.kb.similar import MAX_BOOST, MIN_SIMILARITY, PastCause, adjust_scores
from rca.kb.text import text_for_explain, text_for_incident
from rca.model import Hypothesis

_KIND_WORDS = (
    ("latency", ("delay", "latency", "slow", "timeout")),
    ("network", ("network", "loss", "partition", "corrupt", "bandwidth", "dns")),
    ("resource", ("cpu", "memory", "mem", "disk", "io", "stress", "contention", "exhaust")),
    ("error", ("exception", "error", "abort", "return", "fault", "crash", "kill", "failure")),
)


def kind_for_fault(fault_type: str) -> str:
    """Map a dataset fault type (e.g. ``cpu_contention``) to a hypothesis kind."""
    words = (fault_type or "").lower().replace("-", "_").split("_")
    for kind, keys in _KIND_WORDS:
        if any(w in keys for w in words):
            return kind
    return "unknown"


def _services(hyps: list[Hypothesis]) -> list[str]:
    out: list[str] = []
    for h in sorted(hyps, key=lambda h: h.rank):
        if h.service not in out:
            out.append(h.service)
    return out


def kb_leave_one_out(cases: list[dict[str, Any]], *, k: int = 3, max_boost: float = MAX_BOOST,
                     min_similarity: float = MIN_SIMILARITY) -> list[dict[str, Any]]:
    """Rankings with the KB applied, one dict per case, in input order.

    ``cases``: [{"case_id", "truth_service", "fault_type", "fingerprint": {...},
    "hypotheses": [Hypothesis dicts]}]. Returns [{"case_id", "baseline": [services],
    "ranking": [services], "neighbours": [{"case_id", "similarity", "root_cause_service"}]}].
    """
    from rca.kb.embed import embed_texts

    if not cases:
        return []
    ids = [c.get("case_id") for c in cases]
    if len(set(ids)) != len(ids) or any(not isinstance(i, str) or not i for i in ids):
        raise InvalidInput("every case needs a distinct string case_id")
    hyps = [[hypothesis_from_dict(d) for d in c.get("hypotheses") or []] for c in cases]
    incidents = [
        incident_from_hypothesis(
            c["case_id"],
            Hypothesis(rank=1, service=c["truth_service"], kind=kind_for_fault(c.get("fault_type", "")),
                       role="root_cause", score=1.0, summary=""),
            c.get("fingerprint") or {},
        )
        for c in cases
    ]
    queries = embed_texts([text_for_explain(h, c.get("fingerprint") or {}) for h, c in zip(hyps, cases)])
    keys = embed_texts([text_for_incident(i) for i in incidents])
    sims = queries @ keys.T
    np.fill_diagonal(sims, -np.inf)  # a case is never in its own KB
    out = []
    for i, case in enumerate(cases):
        n_other = len(cases) - 1
        top = np.argsort(-sims[i], kind="stable")[: min(k, n_other)]
        causes = [PastCause(incidents[j].root_cause_service, incidents[j].root_cause_kind, float(sims[i, j]))
                  for j in top]
        ranked = adjust_scores(hyps[i], causes, max_boost=max_boost, min_similarity=min_similarity)
        out.append({
            "case_id": case["case_id"],
            "baseline": _services(hyps[i]),
            "ranking": _services(ranked),
            "neighbours": [{"case_id": ids[j], "similarity": round(float(sims[i, j]), 4),
                            "root_cause_service": incidents[j].root_cause_service} for j in top],
        })
    return out
