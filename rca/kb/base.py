"""The knowledge base: incidents in the store (source of truth, embeddings included)
plus a FAISS index file next to it (a cache, verified against the store before use)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from rca.config import Settings
from rca.errors import InvalidInput, NotFound
from rca.kb.embed import DIM, embed_texts, from_blobs, model_name, to_blob
from rca.kb.incidents import INCIDENT_VEC_SEQ, INCIDENTS_DDL, incident_from_row
from rca.kb.index import FLAT_MAX, IndexUnusable, VectorIndex
from rca.kb.text import check_text, text_for_incident
from rca.model import Incident

MAX_K = 100
# Writes per store in this process. DuckDB lets one process write a file, and every
# KnowledgeBase write bumps this, so an unchanged number means the index in memory is
# current without asking the store; any change falls back to the full store check.
_WRITES: dict[str, int] = {}
_COLS = ("id", "vec_id", "title", "summary", "root_cause_service", "root_cause_operation", "root_cause_kind",
         "resolution", "links", "created_at", "resolved_at", "fingerprint", "confirmed", "updated_ns", "model",
         "embedding")
_TYPES = ("VARCHAR", "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "JSON", "VARCHAR",
          "VARCHAR", "JSON", "BOOLEAN", "BIGINT", "VARCHAR", "BLOB")
_META = ", ".join(c for c in _COLS if c != "embedding")


@dataclass
class SearchHit:
    incident: Incident
    similarity: float  # cosine similarity in [-1, 1]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.incident.to_dict(), similarity=round(self.similarity, 4))


def create_kb_tables(store) -> bool:
    """Create the incidents table if missing; False when a read-only store has none (an empty KB)."""
    if getattr(store, "read_only", False):
        df = store.query("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'incidents'")
        return bool(df["n"].iloc[0])
    store.execute(INCIDENT_VEC_SEQ)
    store.execute(INCIDENTS_DDL)
    return True


class KnowledgeBase:
    """Past incidents, searchable by meaning. ``KnowledgeBase(store, settings)``; nothing heavy loads until used."""

    def __init__(self, store, settings: Settings, *, flat_max: int = FLAT_MAX):
        self.store = store
        self.settings = settings
        self.index_path = settings.kb_index_path
        self.flat_max = flat_max
        self.model = model_name()
        self.last_rebuild_reason: str | None = None  # why the persisted index was not served, if it was not
        self._index: VectorIndex | None = None
        self._state: dict[str, Any] | None = None
        self._key = str(getattr(store, "path", id(store)))
        self._seen_writes = -1
        self._lock = threading.RLock()
        self.present = create_kb_tables(store)

    # ------------------------------------------------------------------ reads
    def count(self) -> int:
        if not self.present:
            return 0
        return int(self.store.query("SELECT count(*) AS n FROM incidents")["n"].iloc[0])

    def get(self, incident_id: str) -> Incident:
        if not self.present:
            raise NotFound(f"incident {incident_id} not found", {"id": incident_id})
        df = self.store.query(f"SELECT {_META} FROM incidents WHERE id = ?", [incident_id])
        if df.empty:
            raise NotFound(f"incident {incident_id} not found", {"id": incident_id})
        return incident_from_row(df.iloc[0].to_dict())

    def list(self, limit: int = 100, offset: int = 0) -> list[Incident]:
        if not self.present:
            return []
        df = self.store.query(f"SELECT {_META} FROM incidents ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
                              [int(limit), int(offset)])
        return [incident_from_row(r) for r in df.to_dict("records")]

    def search(self, text: str, k: int = 5) -> list[SearchHit]:
        text = check_text(text, "query", required=True)
        return self.search_vector(embed_texts([text])[0], k)

    def search_vector(self, vec: np.ndarray, k: int = 5) -> list[SearchHit]:
        k = _check_k(k)
        if not self.present:
            return []
        with self._lock:
            index = self._ensure_index()
            if index.ntotal == 0:
                return []
            sims, ids = index.search(vec, k)
        pairs = [(int(i), float(s)) for i, s in zip(ids[0], sims[0]) if i >= 0]
        if not pairs:
            return []
        marks = ", ".join("?" for _ in pairs)
        df = self.store.query(f"SELECT {_META} FROM incidents WHERE vec_id IN ({marks})", [i for i, _ in pairs])
        by_vec = {int(r["vec_id"]): r for r in df.to_dict("records")}
        return [SearchHit(incident_from_row(by_vec[i]), s) for i, s in pairs if i in by_vec]

    # ------------------------------------------------------------------ writes
    def add(self, incidents: list[Incident], *, upsert: bool = False) -> list[Incident]:
        """Embed and store incidents in one statement (all or nothing), then update the index."""
        if not incidents:
            return []
        ids = [inc.id for inc in incidents]
        if len(set(ids)) != len(ids):
            raise InvalidInput("duplicate incident ids in one request")
        vecs = embed_texts([text_for_incident(inc) for inc in incidents])
        with self._lock:
            index = self._ensure_index()
            existing = self._vec_ids(ids)
            if existing and not upsert:
                taken = sorted(existing)
                raise InvalidInput(f"incident(s) already exist: {', '.join(taken[:5])}", {"ids": taken})
            fresh = self.store.query("SELECT nextval('incidents_vec_id') AS v FROM range(?)",
                                     [len(ids) - len(existing)])["v"].tolist()
            vec_ids = [existing[i] if i in existing else int(fresh.pop()) for i in ids]
            now = time.time_ns()
            columns = [
                ids, vec_ids, [i.title for i in incidents], [i.summary for i in incidents],
                [i.root_cause_service for i in incidents], [i.root_cause_operation for i in incidents],
                [i.root_cause_kind for i in incidents], [i.resolution for i in incidents],
                [json.dumps(i.links) for i in incidents], [i.created_at for i in incidents],
                [i.resolved_at for i in incidents], [json.dumps(i.fingerprint) for i in incidents],
                [bool(i.confirmed) for i in incidents], [now] * len(ids), [self.model] * len(ids),
                [to_blob(v) for v in vecs],
            ]
            select = ", ".join(f"unnest(?::{t}[]) AS {c}" for c, t in zip(_COLS, _TYPES))
            update = ", ".join(f"{c} = excluded.{c}" for c in _COLS if c not in ("id", "vec_id"))
            self.store.execute(
                f"INSERT INTO incidents ({', '.join(_COLS)}) SELECT * FROM (SELECT {select}) "
                f"ON CONFLICT (id) DO UPDATE SET {update}", columns)
            replaced = np.array([existing[i] for i in ids if i in existing], dtype=np.int64)
            index.remove(replaced)
            index.add(np.array(vec_ids, dtype=np.int64), vecs)
            self._after_write(index)
        return incidents

    def delete(self, incident_id: str) -> Incident:
        with self._lock:
            inc = self.get(incident_id)
            index = self._ensure_index()
            vec_id = self._vec_ids([incident_id])[incident_id]
            self.store.execute("DELETE FROM incidents WHERE id = ?", [incident_id])
            index.remove(np.array([vec_id], dtype=np.int64))
            self._after_write(index)
        return inc

    def reindex(self, *, reembed: bool = False) -> dict[str, Any]:
        """Rebuild the index from the store; re-embed rows from another model (or all, if asked)."""
        with self._lock:
            n_reembedded = self._reembed(all_rows=reembed)
            self._index = None
            self._rebuild("requested")
            return {"n_incidents": self._index.ntotal, "kind": self._index.kind, "n_reembedded": n_reembedded,
                    "model": self.model, "index_path": str(self.index_path)}

    # ------------------------------------------------------------------ index upkeep
    def _vec_ids(self, ids: list[str]) -> dict[str, int]:
        marks = ", ".join("?" for _ in ids)
        df = self.store.query(f"SELECT id, vec_id FROM incidents WHERE id IN ({marks})", list(ids))
        return {r["id"]: int(r["vec_id"]) for r in df.to_dict("records")}

    def store_state(self) -> dict[str, Any]:
        """What the index must match: count + order-free digest of (id, vec_id, updated_ns) + model + dim."""
        row = self.store.query(
            "SELECT count(*) AS n, coalesce(bit_xor(hash(id, vec_id, updated_ns)), 0)::VARCHAR AS d FROM incidents"
        ).iloc[0]
        return {"count": int(row["n"]), "digest": str(row["d"]), "model": self.model, "dim": DIM}

    def _ensure_index(self) -> VectorIndex:
        writes = _WRITES.get(self._key, 0)
        if self._index is not None and writes == self._seen_writes:
            return self._index
        state = self.store_state()
        self._seen_writes = writes
        if self._index is not None and state == self._state:
            return self._index
        try:
            self._index = VectorIndex.load(self.index_path, state)
            self._state = state
        except IndexUnusable as exc:
            self._rebuild(str(exc))
        return self._index

    def _rebuild(self, reason: str) -> None:
        self.last_rebuild_reason = reason
        self._reembed(all_rows=False)
        df = self.store.query("SELECT vec_id, embedding FROM incidents ORDER BY vec_id")
        vecs = from_blobs(df["embedding"].tolist())
        self._index = VectorIndex.build(df["vec_id"].to_numpy(dtype=np.int64), vecs, DIM, flat_max=self.flat_max,
                                        random_state=self.settings.random_state)
        self._state = self.store_state()
        self._index.save(self.index_path, self._state)

    def _reembed(self, all_rows: bool) -> int:
        where = "" if all_rows else "WHERE model <> ?"
        df = self.store.query(f"SELECT {_META} FROM incidents {where}", [] if all_rows else [self.model])
        if df.empty:
            return 0
        incidents = [incident_from_row(r) for r in df.to_dict("records")]
        vecs = embed_texts([text_for_incident(i) for i in incidents])
        self.store.execute(
            "UPDATE incidents SET embedding = u.e, model = ?, updated_ns = ? FROM "
            "(SELECT unnest(?::VARCHAR[]) AS id, unnest(?::BLOB[]) AS e) u WHERE incidents.id = u.id",
            [self.model, time.time_ns(), [i.id for i in incidents], [to_blob(v) for v in vecs]])
        _WRITES[self._key] = self._seen_writes = _WRITES.get(self._key, 0) + 1
        return len(incidents)

    def _after_write(self, index: VectorIndex) -> None:
        _WRITES[self._key] = self._seen_writes = _WRITES.get(self._key, 0) + 1
        state = self.store_state()
        if index.wants_rebuild(state["count"], self.flat_max) or index.ntotal != state["count"]:
            self._rebuild("index kind no longer fits the size" if index.ntotal == state["count"] else "count drift")
            return
        self._state = state
        index.save(self.index_path, state)


def _check_k(k: Any) -> int:
    try:
        k = int(k)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("k must be an integer") from exc
    if not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be between 1 and {MAX_K}", {"k": k})
    return k
