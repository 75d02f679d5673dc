"""Feedback on an explain result: a confirmed hypothesis becomes (or updates) an incident
with the explain's telemetry fingerprint; a rejection is kept and counts against that
(service, kind) for similar fingerprints later."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import numpy as np

from rca.errors import InvalidInput, NotFound
from rca.kb.embed import embed_texts, from_blobs, to_blob
from rca.kb.explains import load_explain
from rca.kb.similar import PastCause
from rca.kb.text import check_text, text_for_explain
from rca.model import Evidence, Hypothesis, Incident

REJECTIONS_DDL = """
CREATE TABLE IF NOT EXISTS kb_rejections (
    explain_id VARCHAR NOT NULL,
    rank INTEGER NOT NULL,
    service VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    operation VARCHAR,
    created_ns BIGINT NOT NULL,
    model VARCHAR NOT NULL,
    embedding BLOB NOT NULL,
    PRIMARY KEY (explain_id, rank)
)"""


def hypothesis_from_dict(d: dict[str, Any]) -> Hypothesis:
    ev = [Evidence(**e) for e in d.get("evidence") or []]
    return Hypothesis(rank=int(d["rank"]), service=d["service"], kind=d.get("kind", "unknown"),
                      role=d.get("role", "root_cause"), score=float(d.get("score", 0.0)),
                      summary=d.get("summary", ""), operation=d.get("operation"), evidence=ev)


def incident_id_for(explain_id: str) -> str:
    return f"explain-{explain_id}"


def incident_from_hypothesis(explain_id: str, hyp: Hypothesis, fingerprint: dict[str, Any], fix: str = "",
                             created_ns: int | None = None) -> Incident:
    """The incident a confirmation records (also used by the leave-one-out evaluation)."""
    title = f"{hyp.kind} in {hyp.service}" + (f" ({hyp.operation})" if hyp.operation else "")
    created = datetime.fromtimestamp((created_ns or time.time_ns()) / 1e9, tz=timezone.utc)
    return Incident(
        id=incident_id_for(explain_id), title=title,
        summary=(fingerprint.get("summary") or hyp.summary or "")[:5000],
        root_cause_service=hyp.service, root_cause_operation=hyp.operation or "", root_cause_kind=hyp.kind,
        resolution=fix, links=[f"/api/v1/explain/{explain_id}"],
        created_at=created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        fingerprint=dict(fingerprint), confirmed=True,
    )


def _pick(result: dict[str, Any], rank: Any) -> Hypothesis:
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise InvalidInput("rank must be an integer", {"rank": rank})
    for d in result["hypotheses"]:
        if int(d.get("rank", -1)) == rank:
            return hypothesis_from_dict(d)
    raise InvalidInput(f"explain {result['id']} has no hypothesis with rank {rank}",
                       {"rank": rank, "ranks": [d.get("rank") for d in result["hypotheses"]]})


def record_feedback(kb, explain_id: str, *, confirm: int | None = None, reject: int | None = None,
                    fix: str | None = None) -> dict[str, Any]:
    """Apply one confirmation or rejection; returns what was recorded."""
    if (confirm is None) == (reject is None):
        raise InvalidInput("give exactly one of confirm or reject")
    fix = check_text(fix, "fix")
    store = kb.store
    store.execute(REJECTIONS_DDL)
    result = load_explain(store, explain_id)
    fingerprint = result.get("fingerprint") or {}
    inc_id = incident_id_for(explain_id)
    if confirm is not None:
        hyp = _pick(result, confirm)
        if not fix:
            try:
                fix = kb.get(inc_id).resolution  # a re-confirmation keeps the recorded fix
            except NotFound:
                fix = ""
        inc = incident_from_hypothesis(explain_id, hyp, fingerprint, fix, result.get("created_ns"))
        kb.add([inc], upsert=True)
        store.execute("DELETE FROM kb_rejections WHERE explain_id = ? AND rank = ?", [explain_id, confirm])
        return {"explain_id": explain_id, "confirmed": confirm, "incident": kb.get(inc_id).to_dict()}
    hyp = _pick(result, reject)
    if fix:
        raise InvalidInput("fix goes with confirm, not reject")
    hyps = [hypothesis_from_dict(d) for d in result["hypotheses"]]
    vec = embed_texts([text_for_explain(hyps, fingerprint)])[0]
    store.execute(
        "INSERT INTO kb_rejections VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (explain_id, rank) DO UPDATE SET "
        "service = excluded.service, kind = excluded.kind, created_ns = excluded.created_ns",
        [explain_id, reject, hyp.service, hyp.kind, hyp.operation or "", time.time_ns(), kb.model, to_blob(vec)])
    removed = None
    df = store.query("SELECT root_cause_service, root_cause_kind FROM incidents WHERE id = ?", [inc_id])
    if not df.empty and (df.iloc[0, 0], df.iloc[0, 1]) == (hyp.service, hyp.kind):
        kb.delete(inc_id)  # the confirmation it contradicts is withdrawn
        removed = inc_id
    return {"explain_id": explain_id, "rejected": reject, "service": hyp.service, "kind": hyp.kind,
            "withdrawn_incident": removed}


def _ensure_rejections(store) -> bool:
    if getattr(store, "read_only", False):
        present = store.query("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'kb_rejections'")
        return bool(present["n"].iloc[0])
    store.execute(REJECTIONS_DDL)
    return True


def count_rejections(store) -> int:
    if not _ensure_rejections(store):
        return 0
    return int(store.query("SELECT count(*) AS n FROM kb_rejections")["n"].iloc[0])


def near_rejections(store, vec: np.ndarray, model: str, min_similarity: float) -> list[PastCause]:
    """Rejected (service, kind) pairs whose fingerprint is at least ``min_similarity`` similar."""
    if not _ensure_rejections(store):
        return []
    df = store.query("SELECT service, kind, embedding FROM kb_rejections WHERE model = ?", [model])
    if df.empty:
        return []
    sims = from_blobs(df["embedding"].tolist()) @ np.asarray(vec, dtype=np.float32)
    return [PastCause(s, k, float(x), confirmed=False)
            for s, k, x in zip(df["service"], df["kind"], sims) if x >= min_similarity]
