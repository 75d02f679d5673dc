"""Past incidents as evidence in an explain, and the bounded score adjustment they allow.

A hypothesis whose (service, kind) matches the confirmed root cause of a *very*
similar past incident gains at most ``max_boost``; one matching a rejected
(service, kind) for a very similar fingerprint loses at most ``max_boost``.
The adjustment is weighted by how far the similarity is above ``min_similarity``
(0 at the threshold, full at 1.0), so a hypothesis that leads by more than
``max_boost`` on telemetry alone can never be overtaken.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rca.model import Evidence, Hypothesis

MAX_BOOST = 0.15
MIN_SIMILARITY = 0.6  # "very similar": below this a past incident is shown, never scored
MIN_EVIDENCE_SIMILARITY = 0.3  # below this a past incident is not even shown


@dataclass(frozen=True)
class PastCause:
    """A root cause recorded for a past fingerprint: confirmed (supports) or rejected (counts against)."""

    service: str
    kind: str
    similarity: float
    confirmed: bool = True


def _weight(similarity: float, min_similarity: float) -> float:
    return float(np.clip((similarity - min_similarity) / max(1e-9, 1.0 - min_similarity), 0.0, 1.0))


def _kind_match(a: str, b: str) -> float:
    if a == b:
        return 1.0
    return 0.75 if "unknown" in (a, b) else 0.5


def adjust_scores(hypotheses: list[Hypothesis], causes: list[PastCause], *, max_boost: float = MAX_BOOST,
                  min_similarity: float = MIN_SIMILARITY) -> list[Hypothesis]:
    """New, re-ranked hypotheses with score += max_boost * (support - against), clipped to [0, 1].

    support: best weighted similarity of a confirmed cause on the same service (kind mismatch
    counts less); against: best weighted similarity of a rejected cause with the same (service, kind).
    Ties keep the telemetry order.
    """
    out = []
    for h in hypotheses:
        support = max((_weight(c.similarity, min_similarity) * _kind_match(c.kind, h.kind)
                       for c in causes if c.confirmed and c.service == h.service), default=0.0)
        against = max((_weight(c.similarity, min_similarity)
                       for c in causes if not c.confirmed and c.service == h.service and c.kind == h.kind),
                      default=0.0)
        delta = max_boost * (support - against)
        out.append(replace(h, score=float(np.clip(h.score + delta, 0.0, 1.0)), evidence=list(h.evidence)))
    order = sorted(range(len(out)), key=lambda i: (-out[i].score, hypotheses[i].rank, i))
    return [replace(out[i], rank=r) for r, i in enumerate(order, start=1)]


def find_similar(kb, hypotheses: list[Hypothesis], fingerprint: dict[str, Any], k: int = 3):
    """(query vector, top-k SearchHits) for an explain result."""
    from rca.kb.embed import embed_texts
    from rca.kb.text import text_for_explain

    text = text_for_explain(hypotheses, fingerprint)
    if not text.strip():
        return None, []
    vec = embed_texts([text])[0]
    return vec, kb.search_vector(vec, k)


def attach_similar(kb, hypotheses: list[Hypothesis], fingerprint: dict[str, Any], k: int = 3, *,
                   max_boost: float = MAX_BOOST, min_similarity: float = MIN_SIMILARITY) -> list[Hypothesis]:
    """Attach the top-k similar past incidents as evidence and apply the bounded boost/penalty.

    Each incident goes to the hypotheses on its root-cause service, or to the top hypothesis
    when none matches. Returns new Hypothesis objects; the input is not modified.
    """
    from rca.kb.feedback import count_rejections, near_rejections

    if not hypotheses:
        return []
    if kb.count() == 0 and count_rejections(kb.store) == 0:  # nothing to compare with: skip the model
        return [replace(h, evidence=list(h.evidence)) for h in hypotheses]
    vec, hits = find_similar(kb, hypotheses, fingerprint, k)
    if vec is None:
        return [replace(h, evidence=list(h.evidence)) for h in hypotheses]
    causes = [PastCause(h.incident.root_cause_service, h.incident.root_cause_kind, h.similarity)
              for h in hits if h.incident.confirmed and h.incident.root_cause_service]
    causes += near_rejections(kb.store, vec, kb.model, min_similarity)
    ranked = adjust_scores(hypotheses, causes, max_boost=max_boost, min_similarity=min_similarity)
    for hit in hits:
        if hit.similarity < MIN_EVIDENCE_SIMILARITY:
            continue
        inc = hit.incident
        ev = Evidence(
            type="incident",
            ref={"incident_id": inc.id, "similarity": round(hit.similarity, 4),
                 "root_cause_service": inc.root_cause_service, "root_cause_kind": inc.root_cause_kind},
            detail=f"{inc.title} — fix: {inc.resolution or 'none recorded'}",
            link=f"/api/v1/incidents/{inc.id}",
        )
        targets = [h for h in ranked if h.service == inc.root_cause_service] or ranked[:1]
        for h in targets:
            h.evidence.append(ev)
    return ranked
